"""Depth frames for every sample of a table, into a resumable Zarr store.

For each sample the RGB frames come from ``painformer.video.read_frames``
(224x224 uint8, the same frames the RGB modality embeds), depth is estimated
and stored as uint8 (num_frames, 224, 224, 3) in a ``SampleStore`` of kind
``frames`` (array ``frames``). Decoding the next sample overlaps inference on
the current one. The store's fingerprint holds the model's config and weight
hashes and the frame settings, so a store made with another model or other
settings is never silently resumed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.depth.estimate import NORMALIZATIONS, OUTPUT_SIZE, estimate_depth
from painformer.depth.model import describe_model_dir, load_depth_model
from painformer.errors import InputError
from painformer.stores import (
    SampleMeta,
    SampleStore,
    StoreLayout,
    VideoFramesStage,
    check_table,
    fill_store,
)
from painformer.utils import select_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepthSettings:
    """Which frames, how they are cropped, how depth is stretched to 8 bits, how inference runs.

    ``fps``: the dataset's frame rate; videos at another rate are resampled (``painformer.video``).
    ``decoder``: the video decoder, ``auto``, ``decord`` or ``pyav`` (``painformer.video.decoders``).
    """

    num_frames: int
    crop: str = "center"
    normalization: str = "video"
    batch_size: int = 16
    device: str = "auto"
    fps: float | None = None
    decoder: str = "auto"

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise InputError(f"num_frames must be positive, got {self.num_frames}")
        if self.normalization not in NORMALIZATIONS:
            raise InputError(
                f"unknown normalization {self.normalization!r}; expected one of {', '.join(NORMALIZATIONS)}"
            )


class DepthStage(VideoFramesStage):
    """Depth frames: decode one sample's video (a thread, one sample ahead), estimate its depth."""

    def __init__(self, *, table: pd.DataFrame, model_dir: str | Path, settings: DepthSettings):
        self.model_dir, self.settings = model_dir, settings
        self.info = describe_model_dir(model_dir)
        self.watch_videos(table)
        self.verb, self.description = "process", f"depth {self.info.name}"

    def layout(self) -> StoreLayout:
        info = self.info
        return self.frames_layout(
            frame_size=OUTPUT_SIZE,
            fingerprint={
                "model": "depth_anything",
                "config_sha256": info.config_sha256,
                "weights_sha256": info.weights_sha256,
                "normalization": self.settings.normalization,
            },
            attrs={"modality": "depth", "depth_model": info.as_dict()},
        )

    def prepare(self, store: SampleStore, pending: list[int]) -> None:
        self.device = select_device(self.settings.device)
        self.model, self.processor = load_depth_model(self.model_dir, self.device)
        log.info(
            "%d of %d samples to process with %s on %s%s",
            len(pending),
            len(store),
            self.info.name,
            self.device,
            " (UNTRAINED tiny model: depth NOT meaningful)" if self.info.untrained_tiny else "",
        )

    def compute(self, batch: list[tuple[int, np.ndarray]]) -> np.ndarray:
        settings = self.settings
        return np.stack(
            [
                estimate_depth(
                    frames,
                    self.model,
                    self.processor,
                    self.device,
                    settings.batch_size,
                    normalization=settings.normalization,
                )
                for _, frames in batch
            ]
        )


def apply_depth(
    *,
    table: pd.DataFrame,
    model_dir: str | Path,
    out: str | Path,
    settings: DepthSettings,
    complete_marker: str | Path | None = None,
    force: bool | str = False,
) -> SampleStore:
    """Fill ``out`` with depth frames for every sample of ``table``, resuming from its done mask."""
    check_table(table, ("sample", "subject", "class_name", "video"))
    stage = DepthStage(table=table, model_dir=model_dir, settings=settings)
    return fill_store(out, stage, meta=SampleMeta.from_table(table), force=force, complete_marker=complete_marker)
