"""Synthetic thermal video: run a trained generator over every sample's frames.

For each sample the RGB frames come from ``painformer.video.read_frames``
(224x224 uint8), are resized to the generator's image size, translated, and
resized back to 224x224 uint8. Results go to a resumable ``SampleStore``
(kind ``frames``, array ``frames`` of shape (n_samples, num_frames, 224, 224, 3));
decoding of the next sample overlaps generation of the current one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from painformer.errors import InputError
from painformer.stores import SampleMeta, SampleStore, write_completion_marker
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


def _default_reader() -> FrameReader:
    from painformer.video import read_frames

    return read_frames


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
    if table.empty:
        raise InputError("the sample table is empty")
    from painformer.video import resolve_decoder

    decoder = resolve_decoder(settings.decoder)
    reader = frame_reader or functools.partial(_default_reader(), decoder=decoder)
    device = select_device(settings.device)
    generator, content = load_generator(checkpoint, device=device)
    image_size = int(content["image_size"])
    digest = sha256_file(checkpoint)
    store = SampleStore.create_or_resume(
        out,
        kind="frames",
        array_name="frames",
        meta=SampleMeta.from_table(table),
        item_shape=(settings.num_frames, FRAME_SIZE, FRAME_SIZE, 3),
        dtype="uint8",
        fingerprint={
            "model": "thermal_generator",
            "checkpoint_sha256": digest,
            "num_frames": settings.num_frames,
            "crop": settings.crop,
            "image_size": image_size,
            # only when set, so that stores made before the rate check existed still resume
            **({"fps": settings.fps} if settings.fps is not None else {}),
            "decoder": decoder,
        },
        attrs={
            "modality": "thermal",
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": digest,
            "generator_config": content["generator_config"],
        },
        force=force,
    )
    videos = [str(v) for v in table["video"]]
    samples = [str(s) for s in table["sample"]]

    def load(index: int) -> np.ndarray:
        path = videos[index]
        if not Path(path).is_file():
            raise InputError(f"{path}: video of sample {samples[index]} is missing")
        rate = {"fps": settings.fps} if settings.fps is not None else {}
        frames = reader(path, num_frames=settings.num_frames, crop=settings.crop, **rate)
        expected = (settings.num_frames, FRAME_SIZE, FRAME_SIZE, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise InputError(f"{path}: decoded frames {frames.shape} {frames.dtype}, expected {expected} uint8")
        return frames

    pending = store.pending()
    log.info(
        "%d of %d samples to translate (generator %dx%d, device %s)",
        len(pending),
        len(store),
        image_size,
        image_size,
        device,
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(load, pending[0]) if pending else None
        for position, index in enumerate(pending):
            frames = upcoming.result()
            if position + 1 < len(pending):
                upcoming = pool.submit(load, pending[position + 1])
            thermal = translate_frames(
                generator, frames, image_size=image_size, device=device, batch_size=settings.batch_size
            )
            store.write(index, thermal)
            log.debug("sample %s done", samples[index])
    if complete_marker is not None:
        write_completion_marker(store, complete_marker)
    return store
