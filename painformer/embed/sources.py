"""Where the images to embed come from: decoded videos or upstream image stores.

Every source yields, per sample, a uint8 array (n_items, 224, 224, 3): the
frames of a video, the single image of a biosignal representation, or one
image per fNIRS channel. ``fingerprint`` describes everything that decides
those pixels, so an embedding store records (and checks) its provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from painformer.embed.names import input_problem
from painformer.errors import InputError, StoreError
from painformer.stores import SampleMeta, SampleStore


class ImageSource(Protocol):
    meta: SampleMeta
    num_items: int

    def load(self, index: int) -> np.ndarray: ...

    def fingerprint(self) -> dict[str, Any]: ...


@dataclass
class VideoSource:
    """RGB frames decoded from each sample's video file."""

    table: pd.DataFrame
    num_frames: int | None
    crop: str = "center"
    # The dataset's frame rate: videos at another rate are resampled (None: each video's own rate).
    fps: float | None = None
    # auto, decord or pyav (painformer.video.decoders); resolved here, so the fingerprint names the one used.
    decoder: str = "auto"
    meta: SampleMeta = field(init=False)

    def __post_init__(self) -> None:
        from painformer.video import resolve_decoder

        self.decoder = resolve_decoder(self.decoder)
        self.meta = SampleMeta.from_table(self.table)
        self.videos = [str(v) for v in self.table["video"]]
        if self.num_frames is None:
            raise InputError("embedding RGB frames needs a fixed --num-frames so that every sample has the same shape")
        self.num_items = int(self.num_frames)

    def load(self, index: int) -> np.ndarray:
        from painformer.video import read_frames

        path = self.videos[index]
        if not Path(path).is_file():
            raise InputError(f"{path}: video of sample {self.meta.samples[index]} is missing")
        return read_frames(path, num_frames=self.num_frames, crop=self.crop, fps=self.fps, decoder=self.decoder)

    def fingerprint(self) -> dict[str, Any]:
        # The rate enters only when given, so that stores made before it existed still resume.
        rate = {"fps": self.fps} if self.fps is not None else {}
        return {"source": "video", "num_frames": self.num_frames, "crop": self.crop, **rate, "decoder": self.decoder}


@dataclass
class StoreSource:
    """Images from an upstream store (biosignal images, thermal or depth frames)."""

    path: Path
    table: pd.DataFrame
    meta: SampleMeta = field(init=False)

    def __post_init__(self) -> None:
        self.store = SampleStore.open_complete(self.path)
        self.meta = SampleMeta.from_table(self.table)
        stored = self.store.samples
        known = set(stored)
        missing = [s for s in self.meta.samples if s not in known]
        if missing:
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise StoreError(
                f"{self.path}: {len(missing)} samples of the sample table are missing upstream "
                f"({', '.join(missing[:10])}{more})"
            )
        position = {name: i for i, name in enumerate(stored)}
        self.rows = [position[s] for s in self.meta.samples]
        item_shape = tuple(self.store.array.shape[1:])
        if item_shape[-3:] != (224, 224, 3):
            raise StoreError(f"{self.path}: images of shape {item_shape}, expected (..., 224, 224, 3)")
        self.num_items = 1 if len(item_shape) == 3 else int(item_shape[0])

    def load(self, index: int) -> np.ndarray:
        images = self.store.read(self.rows[index])
        return images[None] if images.ndim == 3 else images  # (n_items, 224, 224, 3)

    def fingerprint(self) -> dict[str, Any]:
        attrs = self.store.attrs
        return {"source": "store", "kind": attrs.get("kind"), "upstream": attrs.get("fingerprint")}


def open_source(
    *,
    table: pd.DataFrame,
    modality: str,
    representation: str,
    images: str | Path | None = None,
    num_frames: int | None = None,
    crop: str = "center",
    fps: float | None = None,
    decoder: str = "auto",
) -> ImageSource:
    """The image source for a modality/representation (RGB from videos, all else from a store)."""
    problem = input_problem(modality, representation)
    if problem:
        raise InputError(f"{modality}/{representation}: {problem}")
    if modality == "rgb" and images is None:
        return VideoSource(table=table, num_frames=num_frames, crop=crop, fps=fps, decoder=decoder)
    if images is None:
        raise InputError(f"{modality}/{representation}: give the upstream image store with --images")
    return StoreSource(path=Path(images), table=table)
