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

from painformer.errors import InputError, StoreError
from painformer.names import input_problem
from painformer.stores import (
    SampleInputs,
    SampleMeta,
    SampleStore,
    input_path,
    read_sample_video,
    video_fingerprint,
)


class ImageSource(Protocol):
    meta: SampleMeta
    num_items: int

    def load(self, index: int) -> np.ndarray: ...

    def fingerprint(self) -> dict[str, Any]: ...

    # Optional: ``inputs(index) -> SampleInputs`` and ``inputs_attr() -> dict`` let a store
    # recompute exactly the samples whose inputs changed (VideoSource and StoreSource have them).


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
        return read_sample_video(
            self.videos[index],
            sample=self.meta.samples[index],
            num_frames=self.num_frames,
            crop=self.crop,
            fps=self.fps,
            decoder=self.decoder,
        )

    def fingerprint(self) -> dict[str, Any]:
        return {
            "source": "video",
            **video_fingerprint(num_frames=self.num_frames, crop=self.crop, fps=self.fps, decoder=self.decoder),
        }

    def inputs(self, index: int) -> SampleInputs:
        return SampleInputs(files=(input_path(self.videos[index]),))

    def inputs_attr(self) -> dict[str, Any]:
        return {"files": [[input_path(video)] for video in self.videos]}


@dataclass
class StoreSource:
    """Images from an upstream store (biosignal images, thermal or depth frames)."""

    path: Path
    table: pd.DataFrame
    # What the embedding store is asked to hold: the upstream store must have been made for it.
    modality: str | None = None
    representation: str | None = None
    meta: SampleMeta = field(init=False)

    def __post_init__(self) -> None:
        self.store = SampleStore.open_complete(self.path)
        self._check_upstream()
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
        self.checksums = self.store.checksums()

    def _check_upstream(self) -> None:
        """Refuse an upstream store made for another modality or representation than the one asked for."""
        if self.modality is None:
            return
        attrs = self.store.attrs
        if attrs.get("kind") == "images":
            made = (attrs.get("signal"), attrs.get("representation"))
        elif attrs.get("kind") == "frames":
            made = (attrs.get("modality"), "frames")
        else:
            made = (attrs.get("kind"), None)
        if made != (self.modality, self.representation):
            what = "/".join(str(part) for part in made if part is not None)
            raise StoreError(
                f"{self.path}: holds {what} images, not {self.modality}/{self.representation}; "
                "give the store made for the requested modality and representation"
            )

    def load(self, index: int) -> np.ndarray:
        images = self.store.read(self.rows[index])
        return images[None] if images.ndim == 3 else images  # (n_items, 224, 224, 3)

    def fingerprint(self) -> dict[str, Any]:
        attrs = self.store.attrs
        return {"source": "store", "kind": attrs.get("kind"), "upstream": attrs.get("fingerprint")}

    def inputs(self, index: int) -> SampleInputs:
        return SampleInputs(upstream=self.checksums[self.rows[index]].tobytes())

    def inputs_attr(self) -> dict[str, Any]:
        return {"upstream": str(Path(self.path).resolve())}


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
    return StoreSource(path=Path(images), table=table, modality=modality, representation=representation)
