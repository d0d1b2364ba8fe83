"""Render every sample's biosignal into a resumable image store.

One store per (dataset, signal, representation): array ``images`` of shape
(n_samples, 224, 224, 3) uint8 for ECG/EMG/GSR, (n_samples, C, 224, 224, 3) for
fNIRS (one waveform image per HbO2 channel). Samples are loaded in parallel
threads (reading CSVs dominates), rendered a batch at a time and written one
chunk per sample, so an interrupted job resumes from the store's done mask.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.errors import InputError, PainformerError
from painformer.render.images import FlatSignalError, render_batch
from painformer.render.params import SIGNALS, RenderParams, check_representation
from painformer.stores import (
    SampleInputs,
    SampleMeta,
    SampleStore,
    StoreLayout,
    StoreStage,
    check_table,
    fill_store,
    input_path,
)

log = logging.getLogger(__name__)

# Bumped whenever the drawing code changes what an image looks like, so that
# stores rendered by an older version are not resumed with newer images.
RENDERER_VERSION = 1
ARRAY_NAME = "images"
KIND = "images"

SignalLoader = Callable[[str, str], tuple[np.ndarray, float]]


@dataclass(frozen=True)
class LoadedSignal:
    """One sample's signal, checked: (T,) for ECG/EMG/GSR, (C, T) for fNIRS."""

    index: int
    path: str
    values: np.ndarray
    fs: float
    sample: str = ""


def _default_loader() -> SignalLoader:
    from painformer.data import load_signal

    return load_signal


def load_checked(*, index: int, path: str, signal: str, loader: SignalLoader, sample: str = "") -> LoadedSignal:
    """Load one sample's signal and refuse anything that would render as garbage, naming the file."""
    if not path or path == "nan":
        raise InputError(f"sample {sample or index}: no biosignal file in the sample table (column biosignals)")
    try:
        values, fs = loader(path, signal)
    except PainformerError:
        raise
    except (OSError, ValueError, KeyError, IndexError) as error:
        raise InputError(f"{path}: cannot read {signal} ({type(error).__name__}: {error})") from error
    values = np.asarray(values, dtype=np.float64)
    expected_ndim = 2 if signal == "fnirs" else 1
    if values.ndim != expected_ndim:
        raise InputError(f"{path}: {signal} has shape {values.shape}, expected {expected_ndim} dimension(s)")
    if values.shape[-1] < 2 or (signal == "fnirs" and values.shape[0] < 1):
        raise InputError(f"{path}: {signal} has shape {values.shape}, too short to draw")
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1, values.shape[-1]).any(axis=0))[0])
        raise InputError(f"{path}: {signal} contains {int(bad.sum())} NaN or infinite values (first at sample {first})")
    if not (np.isfinite(fs) and fs > 0):
        raise InputError(f"{path}: invalid sampling rate {fs!r}")
    return LoadedSignal(index=index, path=path, values=values, fs=float(fs), sample=sample)


def render_loaded(batch: list[LoadedSignal], representation: str, params: RenderParams) -> dict[int, np.ndarray]:
    """Render a list of loaded samples; samples sharing length, channel count and rate go in one call."""
    groups: dict[tuple, list[LoadedSignal]] = {}
    for item in batch:
        groups.setdefault((item.values.shape, item.fs), []).append(item)
    images: dict[int, np.ndarray] = {}
    for (shape, fs), items in groups.items():
        stacked = np.stack([item.values for item in items]).reshape(-1, shape[-1])
        try:
            rendered = render_batch(stacked, fs, representation, params=params)
        except FlatSignalError as error:
            raise _name_flat_sample(error, items, shape, representation) from error
        per_sample = rendered.reshape(len(items), *shape[:-1], *rendered.shape[1:])
        for item, image in zip(items, per_sample):
            images[item.index] = image
    return images


def _name_flat_sample(
    error: FlatSignalError, items: list[LoadedSignal], shape: tuple[int, ...], representation: str
) -> InputError:
    """The batch renderer knows rows only; name the first such sample, its file and, for fNIRS, the channel."""
    channels = shape[0] if len(shape) == 2 else 1
    row = error.rows[0]
    item = items[row // channels]
    where = f", channel {row % channels}" if channels > 1 else ""
    others = len({r // channels for r in error.rows}) - 1
    also = f" ({others} more such sample(s) in this batch)" if others else ""
    return InputError(
        f"sample {item.sample or item.index} ({item.path}{where}): the signal is constant in every STFT "
        f"segment, so its {representation} image would be blank; render it as a waveform or leave the "
        f"sample out{also}"
    )


class RenderStage(StoreStage):
    """Biosignal images: load a sample's signal (threads), render a batch of them at once."""

    def __init__(
        self,
        *,
        paths: list[str],
        names: list[str],
        signal: str,
        representation: str,
        params: RenderParams,
        loader: SignalLoader,
        batch_size: int,
        loader_threads: int,
    ):
        self.paths, self.names = paths, names
        self.watched = [input_path(path) for path in paths]
        self.signal, self.representation, self.params, self.loader = signal, representation, params, loader
        self.batch_size = batch_size
        self.loader_threads = max(1, loader_threads)
        # The next batch loads while the current one is rendered and written.
        self.lookahead = batch_size
        self.verb, self.description = "render", f"render {signal}/{representation}"
        self.item_shape: tuple[int, ...] = (params.size, params.size, 3)
        if signal == "fnirs":
            # Every sample must have the first sample's channel count: the store has one shape.
            first = load_checked(index=0, path=paths[0], signal=signal, loader=loader, sample=names[0])
            self.item_shape = (first.values.shape[0], *self.item_shape)

    def layout(self) -> StoreLayout:
        from painformer import __version__

        return StoreLayout(
            kind=KIND,
            array_name=ARRAY_NAME,
            item_shape=self.item_shape,
            dtype="uint8",
            fingerprint={
                "signal": self.signal,
                "representation": self.representation,
                "render_params": self.params.to_dict(),
                "renderer_version": RENDERER_VERSION,
            },
            attrs={"signal": self.signal, "representation": self.representation, "package_version": __version__},
        )

    def load(self, index: int) -> LoadedSignal:
        item = load_checked(
            index=index, path=self.paths[index], signal=self.signal, loader=self.loader, sample=self.names[index]
        )
        if self.signal == "fnirs" and item.values.shape[0] != self.item_shape[0]:
            raise InputError(
                f"{item.path}: {item.values.shape[0]} fNIRS channels, but {self.paths[0]} has "
                f"{self.item_shape[0]}; every sample needs the same channels"
            )
        return item

    def inputs(self, index: int) -> SampleInputs:
        return SampleInputs(files=(self.watched[index],))

    def inputs_attr(self) -> dict:
        return {"files": [[path] for path in self.watched]}

    def compute(self, batch: list[tuple[int, LoadedSignal]]) -> np.ndarray:
        images = render_loaded([item for _, item in batch], self.representation, self.params)
        return np.stack([images[index] for index, _ in batch])


def render_signal_store(
    *,
    table: pd.DataFrame,
    signal: str,
    representation: str,
    out: str | Path,
    params: RenderParams | None = None,
    batch_size: int = 64,
    loader_threads: int = 2,
    force: bool | str = False,
    loader: SignalLoader | None = None,
    progress: bool = True,
    complete_marker: str | Path | None = None,
) -> SampleStore:
    """Fill (or resume) the image store ``out`` with every sample of ``table``.

    ``loader(path, signal) -> (values, fs)`` defaults to ``painformer.data.load_signal``.
    ``progress`` shows a progress bar over the pending samples on stderr.
    Returns the store; every sample is done when this returns.
    """
    if signal not in SIGNALS:
        raise InputError(f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}")
    check_representation(representation)
    check_table(table, ("sample", "subject", "class_name", "biosignals"))
    if batch_size < 1:
        raise InputError(f"batch size must be positive, got {batch_size}")
    stage = RenderStage(
        paths=["" if pd.isna(p) else str(p) for p in table["biosignals"].tolist()],
        names=[str(s) for s in table["sample"].tolist()],
        signal=signal,
        representation=representation,
        params=params or RenderParams(),
        loader=loader or _default_loader(),
        batch_size=batch_size,
        loader_threads=loader_threads,
    )
    return fill_store(
        out,
        stage,
        meta=SampleMeta.from_table(table),
        force=force,
        complete_marker=complete_marker,
        progress=progress,
    )
