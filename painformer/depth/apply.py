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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.depth.estimate import NORMALIZATIONS, OUTPUT_SIZE, estimate_depth
from painformer.depth.model import describe_model_dir, load_depth_model
from painformer.errors import InputError
from painformer.stores import SampleMeta, SampleStore, write_completion_marker
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
    from painformer.video import read_frames, resolve_decoder

    if table.empty:
        raise InputError("the sample table is empty")
    for column in ("sample", "subject", "class_name", "video"):
        if column not in table.columns:
            raise InputError(f"the sample table has no {column!r} column")
    info = describe_model_dir(model_dir)
    decoder = resolve_decoder(settings.decoder)
    store = SampleStore.create_or_resume(
        out,
        kind="frames",
        array_name="frames",
        meta=SampleMeta.from_table(table),
        item_shape=(settings.num_frames, OUTPUT_SIZE, OUTPUT_SIZE, 3),
        dtype="uint8",
        fingerprint={
            "model": "depth_anything",
            "config_sha256": info.config_sha256,
            "weights_sha256": info.weights_sha256,
            "num_frames": settings.num_frames,
            "crop": settings.crop,
            "normalization": settings.normalization,
            # only when set, so that stores made before the rate check existed still resume
            **({"fps": settings.fps} if settings.fps is not None else {}),
            "decoder": decoder,
        },
        attrs={"modality": "depth", "depth_model": info.as_dict()},
        force=force,
    )
    pending = store.pending()
    if not pending:
        log.info("%s: all %d samples already done", out, len(store))
        if complete_marker is not None:
            write_completion_marker(store, complete_marker)
        return store

    device = select_device(settings.device)
    model, processor = load_depth_model(model_dir, device)
    videos = [str(v) for v in table["video"]]
    samples = [str(s) for s in table["sample"]]

    def load(index: int) -> np.ndarray:
        path = videos[index]
        if not Path(path).is_file():
            raise InputError(f"{path}: video of sample {samples[index]} is missing")
        return read_frames(path, num_frames=settings.num_frames, crop=settings.crop, fps=settings.fps, decoder=decoder)

    log.info(
        "%d of %d samples to process with %s on %s%s",
        len(pending),
        len(store),
        info.name,
        device,
        " (UNTRAINED tiny model: depth NOT meaningful)" if info.untrained_tiny else "",
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(load, pending[0])
        for position, index in enumerate(pending):
            frames = upcoming.result()
            if position + 1 < len(pending):
                upcoming = pool.submit(load, pending[position + 1])
            depth = estimate_depth(
                frames, model, processor, device, settings.batch_size, normalization=settings.normalization
            )
            store.write(index, depth)
            log.debug("sample %s done", samples[index])
    if complete_marker is not None:
        write_completion_marker(store, complete_marker)
    return store
