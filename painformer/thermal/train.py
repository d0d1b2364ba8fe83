"""Training the RGB -> thermal cGAN (U-Net generator, PatchGAN discriminator).

Loss (pix2pix): the discriminator minimises BCE-with-logits of real pairs
against 1 and generated pairs against 0 (halved); the generator minimises the
adversarial BCE of its pairs against 1 plus ``lambda_l1`` times the L1
distance to the real thermal image. Adam with betas (0.5, 0.999).

Files written beside ``out`` (the final checkpoint):

```
<out>                          generator state dict + constructor config + image size + training metadata
<out>.state/last.pt            G, D, both optimisers, last finished epoch, loss history (resume point)
<out>.losses.tsv               epoch g_l1 g_adv d_loss holdout_l1 holdout_psnr holdout_ssim
<out>.samples/epoch_NNN.png    rows: rgb | generated | target, columns: held-out pairs
```

Determinism: the initial weights come from the seed; each epoch's shuffling
and flips come from a generator seeded with (seed, epoch), so a run resumed
after epoch k computes exactly what an uninterrupted run computes (on CPU).
A saved state made with other settings or pairs is refused, naming what
differs, unless ``replace_stale`` (the workflow's choice) starts a new run.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import torch
import torch.nn.functional as F
from torch import nn

from painformer.checkpoints import EpochLog, check_format, load_checkpoint, refuse_mismatch, save_checkpoint
from painformer.errors import CheckpointError, InputError
from painformer.thermal.discriminator import PatchConfig, PatchDiscriminator
from painformer.thermal.generator import UNetConfig, UNetGenerator
from painformer.thermal.pairs import (
    find_pairs,
    holdout_names,
    load_pairs,
    pairs_fingerprint,
)
from painformer.thermal.quality import l1_per_image, psnr_per_image, ssim_per_image
from painformer.utils import atomic_path, select_device

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "painformer-thermal-generator"
STATE_FORMAT = "painformer-thermal-train-state"
LOSS_COLUMNS = ("epoch", "g_l1", "g_adv", "d_loss", "holdout_l1", "holdout_psnr", "holdout_ssim")
GRID_COLUMNS = 8


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights (``device`` aside)."""

    epochs: int = 4
    image_size: int = 64
    batch_size: int = 16
    seed: int = 0
    lambda_l1: float = 100.0
    lr: float = 2e-4
    holdout: float = 0.1
    flip: bool = True
    generator: UNetConfig = field(default_factory=UNetConfig)
    discriminator: PatchConfig = field(default_factory=PatchConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"epochs and batch size must be positive, got {self.epochs}, {self.batch_size}")
        multiple = 2**self.generator.depth
        if self.image_size < 16 or self.image_size % multiple:
            raise InputError(
                f"image size {self.image_size} must be at least 16 and a multiple of {multiple} "
                f"(2**depth for a generator of depth {self.generator.depth})"
            )

    def resume_key(self) -> dict[str, Any]:
        """Settings a resumed run must share with the saved state (more epochs may be asked for)."""
        values = asdict(self)
        values.pop("epochs")
        return values


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    epochs_run: int
    resumed_from: int
    history: list[dict[str, float]]
    n_train: int
    n_holdout: int


def side_paths(out: str | Path) -> dict[str, Path]:
    """The files written beside the checkpoint (see module doc)."""
    out = Path(out)
    return {
        "state": Path(f"{out}.state") / "last.pt",
        "losses": Path(f"{out}.losses.tsv"),
        "samples": Path(f"{out}.samples"),
    }


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_unit(signed: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return signed.add(1.0).mul(0.5).clamp(0.0, 1.0)


def _init_weights(module: nn.Module) -> None:
    """pix2pix initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm scales, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.InstanceNorm2d, nn.BatchNorm2d)) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(settings: TrainSettings) -> tuple[UNetGenerator, PatchDiscriminator]:
    torch.manual_seed(settings.seed)
    generator = UNetGenerator.from_config(settings.generator)
    discriminator = PatchDiscriminator(**settings.discriminator.to_dict())
    generator.apply(_init_weights)
    discriminator.apply(_init_weights)
    return generator, discriminator


@torch.no_grad()
def generate(generator: UNetGenerator, rgb: torch.Tensor, *, device: torch.device, batch_size: int) -> torch.Tensor:
    """Generated thermal images in [0, 1], (B, 3, H, W) on CPU, for uint8 RGB (B, H, W, 3)."""
    outputs = []
    for start in range(0, len(rgb), batch_size):
        batch = to_signed(rgb[start : start + batch_size].to(device))
        outputs.append(to_unit(generator(batch)).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 3, *rgb.shape[1:3])


def quality_table(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean L1, PSNR (dB) and SSIM over images in [0, 1]."""
    return {
        "l1": float(l1_per_image(prediction, target).mean()),
        "psnr": float(psnr_per_image(prediction, target).mean()),
        "ssim": float(ssim_per_image(prediction, target).mean()),
    }


def write_sample_grid(path: Path, rgb: torch.Tensor, generated: torch.Tensor, target: torch.Tensor) -> None:
    """PNG with three rows (rgb, generated, target); inputs (B, 3, H, W) in [0, 1]."""
    rows = [torch.cat(list(images), dim=2) for images in (rgb, generated, target)]  # (3, H, B*W) each
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: could not write the sample grid")


def _epoch_log(out: Path, history: list[dict[str, float]]) -> EpochLog:
    epoch_log = EpochLog(side_paths(out)["losses"], LOSS_COLUMNS)
    epoch_log.extend(history)
    return epoch_log


@dataclass
class _Pairs:
    """The image pairs of a run, split into training and held-out pairs (uint8 tensors)."""

    train_rgb: torch.Tensor
    train_thermal: torch.Tensor
    hold_rgb: torch.Tensor
    hold_thermal: torch.Tensor
    held: set[str]
    fingerprint: str


def _load_pairs(pairs_dir: str | Path, settings: TrainSettings) -> _Pairs:
    pairs = find_pairs(pairs_dir)
    names = [p.name for p in pairs]
    held = set(holdout_names(names, fraction=settings.holdout, seed=settings.seed))
    train_index = [i for i, n in enumerate(names) if n not in held]
    hold_index = [i for i, n in enumerate(names) if n in held]
    rgb_all, thermal_all = load_pairs(pairs, size=settings.image_size)
    rgb_all, thermal_all = torch.from_numpy(rgb_all), torch.from_numpy(thermal_all)
    return _Pairs(
        train_rgb=rgb_all[train_index],
        train_thermal=thermal_all[train_index],
        hold_rgb=rgb_all[hold_index],
        hold_thermal=thermal_all[hold_index],
        held=held,
        fingerprint=pairs_fingerprint(pairs),
    )


@dataclass
class _Models:
    generator: UNetGenerator
    discriminator: PatchDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def _build(settings: TrainSettings, device: torch.device) -> _Models:
    generator, discriminator = build_models(settings)
    generator.to(device)
    discriminator.to(device)
    return _Models(
        generator=generator,
        discriminator=discriminator,
        opt_g=torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=(0.5, 0.999)),
        opt_d=torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=(0.5, 0.999)),
    )


def _resume(
    models: _Models, path: Path, *, settings: TrainSettings, fingerprint: str, replace_stale: bool
) -> tuple[int, list[dict[str, float]]]:
    """Restore the state saved at ``path``: (last finished epoch, loss history); (0, []) without one.

    A state made with other settings, for other pairs, or with more epochs than asked
    for is refused, naming what differs; with ``replace_stale`` it is replaced instead
    (a new run starts, with a warning).
    """
    if not path.exists():
        return 0, []
    try:
        state = check_format(load_checkpoint(path, what="training state"), path, STATE_FORMAT, "thermal training state")
        refuse_mismatch(
            path,
            {**state["settings"], "pairs": state["pairs_fingerprint"]},
            {**settings.resume_key(), "pairs": fingerprint},
            f"use the same settings and pairs, or delete {path.parent} to start over",
        )
        if int(state["epoch"]) > settings.epochs:
            raise InputError(
                f"{path}: the saved run has {state['epoch']} epochs, more than the {settings.epochs} asked for; "
                f"ask for at least {state['epoch']} or delete {path.parent} to start over"
            )
    except (CheckpointError, InputError) as error:
        if not replace_stale:
            raise
        log.warning("%s; starting a new run", error)
        return 0, []
    models.generator.load_state_dict(state["generator"])
    models.discriminator.load_state_dict(state["discriminator"])
    models.opt_g.load_state_dict(state["opt_generator"])
    models.opt_d.load_state_dict(state["opt_discriminator"])
    return int(state["epoch"]), list(state["history"])


def _train_epoch(
    models: _Models, pairs: _Pairs, settings: TrainSettings, epoch: int, device: torch.device
) -> dict[str, float]:
    """One pass over the training pairs; the mean losses per pair."""
    generator, discriminator, opt_g, opt_d = models.generator, models.discriminator, models.opt_g, models.opt_d
    generator.train()
    discriminator.train()
    n_train = len(pairs.train_rgb)
    order_rng = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
    order = torch.randperm(n_train, generator=order_rng)
    flips = torch.rand(n_train, generator=order_rng) < 0.5
    sums = {"g_l1": 0.0, "g_adv": 0.0, "d_loss": 0.0}
    for start in range(0, n_train, settings.batch_size):
        index = order[start : start + settings.batch_size]
        rgb = to_signed(pairs.train_rgb[index].to(device))
        thermal = to_signed(pairs.train_thermal[index].to(device))
        if settings.flip:
            flip = flips[index].to(device)[:, None, None, None]
            rgb = torch.where(flip, rgb.flip(-1), rgb)
            thermal = torch.where(flip, thermal.flip(-1), thermal)
        fake = generator(rgb)

        opt_d.zero_grad(set_to_none=True)
        real_logits = discriminator(rgb, thermal)
        fake_logits = discriminator(rgb, fake.detach())
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
        d_loss.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        fooled_logits = discriminator(rgb, fake)
        g_adv = F.binary_cross_entropy_with_logits(fooled_logits, torch.ones_like(fooled_logits))
        g_l1 = F.l1_loss(fake, thermal)
        (g_adv + settings.lambda_l1 * g_l1).backward()
        opt_g.step()

        weight = len(index)
        sums["g_l1"] += g_l1.item() * weight
        sums["g_adv"] += g_adv.item() * weight
        sums["d_loss"] += d_loss.item() * weight
    return {k: v / max(n_train, 1) for k, v in sums.items()}


def _evaluate_epoch(
    generator: UNetGenerator, pairs: _Pairs, settings: TrainSettings, device: torch.device, grid: Path
) -> dict[str, float]:
    """Held-out quality (NaN without held-out pairs) and the epoch's sample grid."""
    generator.eval()
    if len(pairs.hold_rgb):
        generated = generate(generator, pairs.hold_rgb, device=device, batch_size=settings.batch_size)
        quality = quality_table(generated, to_unit(to_signed(pairs.hold_thermal)))
        row = {"holdout_l1": quality["l1"], "holdout_psnr": quality["psnr"], "holdout_ssim": quality["ssim"]}
        shown_rgb, shown_thermal = pairs.hold_rgb[:GRID_COLUMNS], pairs.hold_thermal[:GRID_COLUMNS]
        shown_generated = generated[:GRID_COLUMNS]
    else:
        row = {"holdout_l1": math.nan, "holdout_psnr": math.nan, "holdout_ssim": math.nan}
        shown_rgb, shown_thermal = pairs.train_rgb[:GRID_COLUMNS], pairs.train_thermal[:GRID_COLUMNS]
        shown_generated = generate(generator, shown_rgb, device=device, batch_size=settings.batch_size)
    write_sample_grid(grid, to_unit(to_signed(shown_rgb)), shown_generated, to_unit(to_signed(shown_thermal)))
    return row


def _save_state(
    models: _Models, path: Path, *, settings: TrainSettings, fingerprint: str, epoch: int, history: list
) -> None:
    save_checkpoint(
        {
            "format": STATE_FORMAT,
            "settings": settings.resume_key(),
            "pairs_fingerprint": fingerprint,
            "epoch": epoch,
            "history": history,
            "generator": models.generator.state_dict(),
            "discriminator": models.discriminator.state_dict(),
            "opt_generator": models.opt_g.state_dict(),
            "opt_discriminator": models.opt_d.state_dict(),
        },
        path,
    )


def _save_generator(
    generator: UNetGenerator,
    out: Path,
    *,
    settings: TrainSettings,
    pairs: _Pairs,
    pairs_dir: str | Path,
    history: list[dict[str, float]],
    device: torch.device,
    seconds: float,
) -> None:
    from painformer import __version__

    n_train = len(pairs.train_rgb)
    training = {
        **{k: v for k, v in asdict(settings).items() if k != "generator"},  # stored as generator_config
        "pairs_dir": str(pairs_dir),
        "pairs_fingerprint": pairs.fingerprint,
        "holdout_names": sorted(pairs.held),
        "n_train": n_train,
        "n_holdout": len(pairs.hold_rgb),
        "thermal_mean": float(pairs.train_thermal.float().mean() / 255.0) if n_train else 0.5,
        "final": history[-1] if history else {},
        "device": str(device),
        "train_seconds": round(seconds, 3),
        "package_version": __version__,
    }
    save_checkpoint(
        {
            "format": CHECKPOINT_FORMAT,
            "format_version": 1,
            "generator_config": settings.generator.to_dict(),
            "image_size": settings.image_size,
            "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
            "training": training,
        },
        out,
    )


def train_generator(
    *,
    pairs_dir: str | Path,
    out: str | Path,
    settings: TrainSettings,
    device: str = "auto",
    replace_stale: bool = False,
) -> TrainResult:
    """Train (or resume training) and write the checkpoint and side files (module doc).

    A saved training state made differently is refused, naming what differs, unless
    ``replace_stale`` (for workflows) lets a new run replace it.
    """
    started = time.perf_counter()
    out = Path(out)
    paths = side_paths(out)
    pairs = _load_pairs(pairs_dir, settings)
    target = select_device(device)
    models = _build(settings, target)
    start_epoch, history = _resume(
        models, paths["state"], settings=settings, fingerprint=pairs.fingerprint, replace_stale=replace_stale
    )
    if start_epoch:
        log.info("resuming after epoch %d of %d from %s", start_epoch, settings.epochs, paths["state"])
    epoch_log = _epoch_log(out, history)

    log.info(
        "%d training pairs, %d held out, %dx%d, device %s",
        len(pairs.train_rgb),
        len(pairs.hold_rgb),
        settings.image_size,
        settings.image_size,
        target,
    )
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        row: dict[str, float] = {"epoch": epoch, **_train_epoch(models, pairs, settings, epoch, target)}
        row.update(
            _evaluate_epoch(models.generator, pairs, settings, target, paths["samples"] / f"epoch_{epoch:03d}.png")
        )
        history.append(row)
        _save_state(
            models, paths["state"], settings=settings, fingerprint=pairs.fingerprint, epoch=epoch, history=history
        )
        epoch_log.append(row)
        log.info(
            "epoch %d/%d  g_l1 %.4f  g_adv %.4f  d_loss %.4f  holdout L1 %.4f PSNR %.2f SSIM %.4f",
            epoch,
            settings.epochs,
            row["g_l1"],
            row["g_adv"],
            row["d_loss"],
            row["holdout_l1"],
            row["holdout_psnr"],
            row["holdout_ssim"],
        )
    _save_generator(
        models.generator,
        out,
        settings=settings,
        pairs=pairs,
        pairs_dir=pairs_dir,
        history=history,
        device=target,
        seconds=time.perf_counter() - started,
    )
    return TrainResult(
        checkpoint=out,
        epochs_run=settings.epochs - start_epoch,
        resumed_from=start_epoch,
        history=history,
        n_train=len(pairs.train_rgb),
        n_holdout=len(pairs.hold_rgb),
    )


def load_generator(
    checkpoint: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[UNetGenerator, dict[str, Any]]:
    """Rebuild a trained generator (eval mode, on ``device``) and return it with the checkpoint dict."""
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: thermal generator checkpoint does not exist")
    content = check_format(
        load_checkpoint(path, what="thermal generator checkpoint"),
        path,
        CHECKPOINT_FORMAT,
        "thermal generator checkpoint",
    )
    try:
        generator = UNetGenerator.from_config(content["generator_config"])
        generator.load_state_dict(content["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: the weights do not fit the stored generator config ({error})") from error
    generator.to(device).eval()
    return generator, content
