"""Synthetic thermal video: run a trained generator over every sample's frames.

For each sample the RGB frames come from ``painformer.video.read_frames``
(224x224 uint8), are resized to the generator's image size, translated, and
resized back to 224x224 uint8. Results go to a resumable ``SampleStore``
(kind ``frames``, array ``frames`` of shape (n_samples, num_frames, 224, 224, 3));
decoding of the next sample overlaps generation of the current one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from painformer.errors import CheckpointError, InputError
from painformer.stores import (
    SampleMeta,
    SampleStore,
    StoreLayout,
    VideoFramesStage,
    check_table,
    fill_store,
)
from painformer.thermal.train import load_generator
from painformer.utils import select_device, sha256_file

log = logging.getLogger(__name__)

FRAME_SIZE = 224
FrameReader = Callable[..., np.ndarray]


@dataclass(frozen=True)
class ApplySettings:
    """``fps``: the dataset's frame rate; videos at another rate are resampled (``painformer.video``).

    ``decoder``: the video decoder, ``auto``, ``decord`` or ``pyav`` (``painformer.video.decoders``).
    """

    num_frames: int
    crop: str = "center"
    batch_size: int = 32
    device: str = "auto"
    fps: float | None = None
    decoder: str = "auto"


@torch.no_grad()
def translate_frames(
    generator: torch.nn.Module, frames: np.ndarray, *, image_size: int, device: torch.device, batch_size: int
) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB -> uint8 (N, 224, 224, 3) synthetic thermal."""
    outputs = []
    for start in range(0, len(frames), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size])).to(device)
        x = batch.permute(0, 3, 1, 2).float().div(255.0)
        if x.shape[-2:] != (image_size, image_size):
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        y = generator(x.mul(2.0).sub(1.0)).add(1.0).mul(0.5)
        y = F.interpolate(y, size=(FRAME_SIZE, FRAME_SIZE), mode="bilinear", align_corners=False)
        outputs.append(y.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(outputs)


def _checkpoint_content(checkpoint: str | Path) -> dict:
    """The generator checkpoint's dictionary (image size and config), without building the generator."""
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: thermal generator checkpoint does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error})") from error
    if not isinstance(content, dict) or "image_size" not in content or "generator_config" not in content:
        raise CheckpointError(f"{path}: not a thermal generator checkpoint")
    return content


class ThermalStage(VideoFramesStage):
    """Synthetic thermal frames: decode one sample's video (a thread, one sample ahead), translate it."""

    verb = "translate"

    def __init__(
        self, *, table: pd.DataFrame, checkpoint: str | Path, settings: ApplySettings, reader: FrameReader | None
    ):
        self.checkpoint, self.settings, self.reader = checkpoint, settings, reader
        content = _checkpoint_content(checkpoint)
        self.image_size = int(content["image_size"])
        self.generator_config = content["generator_config"]
        self.digest = sha256_file(checkpoint)
        self.watch_videos(table)
        self.description = f"thermal generator {self.image_size}x{self.image_size}"

    def layout(self) -> StoreLayout:
        return self.frames_layout(
            frame_size=FRAME_SIZE,
            fingerprint={"model": "thermal_generator", "checkpoint_sha256": self.digest, "image_size": self.image_size},
            attrs={
                "modality": "thermal",
                "checkpoint": str(self.checkpoint),
                "checkpoint_sha256": self.digest,
                "generator_config": self.generator_config,
            },
        )

    def prepare(self, store: SampleStore, pending: list[int]) -> None:
        self.device = select_device(self.settings.device)
        self.generator, _ = load_generator(self.checkpoint, device=self.device)
        log.info("%d of %d samples to translate on %s", len(pending), len(store), self.device)

    def compute(self, batch: list[tuple[int, np.ndarray]]) -> np.ndarray:
        return np.stack(
            [
                translate_frames(
                    self.generator,
                    frames,
                    image_size=self.image_size,
                    device=self.device,
                    batch_size=self.settings.batch_size,
                )
                for _, frames in batch
            ]
        )


def apply_generator(
    *,
    table: pd.DataFrame,
    checkpoint: str | Path,
    out: str | Path,
    settings: ApplySettings,
    complete_marker: str | Path | None = None,
    frame_reader: FrameReader | None = None,
    force: bool | str = False,
) -> SampleStore:
    """Fill ``out`` with thermal frames for every sample of ``table``, resuming from its done mask."""
    check_table(table, ("sample", "subject", "class_name", "video"))
    stage = ThermalStage(table=table, checkpoint=checkpoint, settings=settings, reader=frame_reader)
    return fill_store(out, stage, meta=SampleMeta.from_table(table), force=force, complete_marker=complete_marker)
