"""Depth Anything models from a local directory, and a tiny untrained stand-in.

The pipeline never downloads weights: ``depth.model_dir`` points at a directory
holding a ``transformers`` depth-estimation checkpoint, normally
depth-anything/Depth-Anything-V2-Small-hf (``config.json``,
``model.safetensors``, ``preprocessor_config.json``).

``make_tiny_depth_model`` writes a randomly initialised Depth Anything of the
same architecture family (a 4-layer, 32-wide DINOv2 backbone, ~0.18 M
parameters) in the same layout. It lets the workflow and the tests run the
real loading and inference code without the 100 MB checkpoint; its depth maps
are NOT meaningful, and the directory, its config and every store made with it
say so.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from painformer.errors import CheckpointError
from painformer.utils import select_device, sha256_file

log = logging.getLogger(__name__)

REAL_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
TINY_MARKER = "painformer_untrained_tiny"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
HOW_TO_GET = (
    f"download {REAL_MODEL} (config.json, model.safetensors, preprocessor_config.json) into a local "
    f"directory, e.g. `hf download {REAL_MODEL} --local-dir models/depth-anything-v2-small`, and set "
    "depth.model_dir to it (or build an untrained stand-in that only exercises the pipeline with "
    "`painformer depth make-tiny DIR`)"
)
TINY_README = """\
# UNTRAINED tiny Depth Anything model

This directory was written by `painformer depth make-tiny` (seed {seed}). Its weights are RANDOM:
the depth maps it produces are NOT meaningful. It exists so that the pipeline and its tests can run
the real Depth Anything code path without downloading a checkpoint.

For real depth frames, {how_to_get}.
"""


@dataclass(frozen=True)
class TinyDepthSpec:
    """Sizes of the tiny untrained model (small enough to run on CPU in tests)."""

    hidden_size: int = 32
    num_layers: int = 4
    num_heads: int = 2
    image_size: int = 224
    patch_size: int = 14
    neck_hidden_sizes: tuple[int, int, int, int] = (8, 16, 32, 64)
    fusion_hidden_size: int = 16
    head_hidden_size: int = 8


@dataclass(frozen=True)
class DepthModelInfo:
    """What identifies a model directory's content, recorded in every store made with it."""

    model_dir: str
    name: str
    config_sha256: str
    weights_sha256: str
    untrained_tiny: bool

    def as_dict(self) -> dict:
        return {
            "model_dir": self.model_dir,
            "name": self.name,
            "config_sha256": self.config_sha256,
            "weights_sha256": self.weights_sha256,
            "untrained_tiny": self.untrained_tiny,
        }


def _weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def describe_model_dir(model_dir: str | Path) -> DepthModelInfo:
    """Hashes and name of a model directory; CheckpointError when it is not one."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: depth model directory does not exist; {HOW_TO_GET}")
    missing = [name for name in ("config.json", "preprocessor_config.json") if not (model_dir / name).is_file()]
    weights = _weight_files(model_dir)
    if not weights:
        missing.append("model.safetensors")
    if missing:
        raise CheckpointError(f"{model_dir}: not a depth model directory (missing {', '.join(missing)}); {HOW_TO_GET}")
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{model_dir / 'config.json'}: unreadable config ({error}); {HOW_TO_GET}") from error
    if len(weights) == 1:
        weights_digest = sha256_file(weights[0])
    else:
        import hashlib

        weights_digest = hashlib.sha256("".join(sha256_file(p) for p in weights).encode()).hexdigest()
    untrained = bool(config.get(TINY_MARKER, False))
    name = str(config.get("_name_or_path") or "") or model_dir.name
    return DepthModelInfo(
        model_dir=str(model_dir),
        name="painformer tiny untrained depth model" if untrained else name,
        config_sha256=sha256_file(model_dir / "config.json"),
        weights_sha256=weights_digest,
        untrained_tiny=untrained,
    )


def model_dir_sha256(model_dir: str | Path) -> str:
    """One digest of the files a depth model directory is loaded from (configs and weights).

    Over the sorted names with each file's sha256, so it does not depend on listing order; files
    the loader never reads (a README, a download cache) do not enter it, so copies of the same model
    fetched in different ways agree.
    """
    import hashlib

    info = describe_model_dir(model_dir)  # refuses a directory that is not a model
    model_dir = Path(info.model_dir)
    files = [model_dir / "config.json", model_dir / "preprocessor_config.json", *_weight_files(model_dir)]
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def load_depth_model(model_dir: str | Path, device: str | torch.device = "auto"):
    """(model, image processor) from a local directory, model in eval mode on ``device``.

    Only local files are read (``local_files_only=True``); anything missing or
    unloadable is a CheckpointError saying how to obtain the real model.
    """
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    info = describe_model_dir(model_dir)
    device = device if isinstance(device, torch.device) else select_device(device)
    try:
        model = AutoModelForDepthEstimation.from_pretrained(str(model_dir), local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{model_dir}: cannot load a depth-estimation model ({first_line}); {HOW_TO_GET}"
        ) from error
    if info.untrained_tiny:
        log.warning("%s: UNTRAINED tiny depth model, its depth maps are NOT meaningful (pipeline test only)", model_dir)
    return model.to(device).eval(), processor


def _tiny_config(spec: TinyDepthSpec):
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=4 * spec.hidden_size,
        patch_size=spec.patch_size,
        image_size=spec.image_size,
        out_indices=list(range(1, spec.num_layers + 1))[-4:],
        reshape_hidden_states=False,  # the Depth Anything neck reshapes the tokens itself
        apply_layernorm=True,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=spec.patch_size,
        reassemble_hidden_size=spec.hidden_size,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=list(spec.neck_hidden_sizes),
        fusion_hidden_size=spec.fusion_hidden_size,
        head_hidden_size=spec.head_hidden_size,
        depth_estimation_type="relative",
        **{TINY_MARKER: True},
    )


@torch.no_grad()
def _variance_preserving_init(model: torch.nn.Module, *, seed: int) -> None:
    """Re-draw conv/linear weights with variance 1/fan_in and lift the output bias.

    With the library's default initialisation (std 0.02) a random model of this
    size outputs ~1e-8 and the final ReLU zeroes most pixels; this keeps its
    output image-dependent and mostly positive, which is all a stand-in needs.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            weight = module.weight
            if isinstance(module, torch.nn.ConvTranspose2d):
                fan_in = weight.shape[0] * weight[0, 0].numel()
            else:
                fan_in = weight[0].numel()
            weight.copy_(torch.randn(weight.shape, generator=generator) / math.sqrt(fan_in))
            if module.bias is not None:
                module.bias.zero_()
    model.head.conv3.bias.fill_(2.0)


def make_tiny_depth_model(out_dir: str | Path, *, seed: int = 0, spec: TinyDepthSpec = TinyDepthSpec()) -> Path:
    """Write the tiny untrained model (config, weights, preprocessor config, README) to ``out_dir``.

    Refuses to overwrite a directory that holds anything other than an earlier tiny model.
    """
    from transformers import DepthAnythingForDepthEstimation, DPTImageProcessor

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        config_path = out_dir / "config.json"
        is_tiny = config_path.is_file() and json.loads(config_path.read_text()).get(TINY_MARKER, False)
        if not is_tiny:
            raise CheckpointError(f"{out_dir}: exists and is not a tiny depth model; refusing to overwrite it")
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(_tiny_config(spec)).eval()
    _variance_preserving_init(model, seed=seed)
    processor = DPTImageProcessor(
        do_resize=True,
        size={"height": spec.image_size, "width": spec.image_size},
        keep_aspect_ratio=True,
        ensure_multiple_of=spec.patch_size,
        resample=3,  # bicubic, as Depth Anything's own processor
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_pad=False,
    )
    tmp = out_dir.with_name(out_dir.name + ".writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    processor.save_pretrained(str(tmp))
    (tmp / "README.md").write_text(TINY_README.format(seed=seed, how_to_get=HOW_TO_GET))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    log.warning(
        "%s: wrote an UNTRAINED tiny depth model (%d parameters); its depth maps are NOT meaningful",
        out_dir,
        sum(p.numel() for p in model.parameters()),
    )
    return out_dir
