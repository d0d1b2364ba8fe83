"""Resumable per-sample Zarr v3 stores.

Every stage that produces one array per sample (rendered biosignal images,
thermal/depth frames, PainFormer embeddings) writes into a ``SampleStore``:

```
store.zarr/                 Zarr v3 group; attrs: kind, samples, subjects, classes,
  {array_name}              (n_samples, *item_shape), one chunk per sample, compressed
  done                      (n_samples,) bool: True once that sample's chunk is written
```

A sample's chunk is written before its ``done`` flag, and the local store
replaces files atomically, so a job killed at any point (SIGKILL included)
leaves either a finished sample flagged done or an unflagged one that the next
run recomputes. ``fingerprint`` holds whatever decides the content (checkpoint
hash, preprocessing parameters); reopening with a different fingerprint is
refused unless the caller asks to start over.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from painformer.errors import InputError, StoreError

logger = logging.getLogger(__name__)

DONE = "done"


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so fingerprints compare equal however they were built."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


@dataclass(frozen=True)
class SampleMeta:
    """Per-sample identity stored with every array: names, subjects and classes."""

    samples: tuple[str, ...]
    subjects: tuple[str, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.samples) == len(self.subjects) == len(self.classes)):
            raise ValueError("samples, subjects and classes must have the same length")
        if len(set(self.samples)) != len(self.samples):
            raise ValueError("sample names must be unique")

    @classmethod
    def from_table(cls, table) -> SampleMeta:
        """Build from a sample table (pandas DataFrame with sample, subject, class_name)."""
        return cls(
            samples=tuple(str(s) for s in table["sample"]),
            subjects=tuple(str(s) for s in table["subject"]),
            classes=tuple(str(s) for s in table["class_name"]),
        )


class SampleStore:
    """A Zarr group with one chunk per sample and a ``done`` mask (see module doc)."""

    def __init__(self, path: Path, group: zarr.Group, array_name: str):
        self.path = Path(path)
        self.group = group
        self.array_name = array_name

    # -- creation and opening -------------------------------------------------
    @classmethod
    def create_or_resume(
        cls,
        path: str | Path,
        *,
        kind: str,
        array_name: str,
        meta: SampleMeta,
        item_shape: Sequence[int],
        dtype: str | np.dtype,
        fingerprint: dict[str, Any],
        attrs: dict[str, Any] | None = None,
        force: bool | Literal["stale"] = False,
    ) -> SampleStore:
        """Open ``path`` to continue filling it, or create it.

        An existing store is resumed only when its kind, sample list, shape,
        dtype and fingerprint all equal the requested ones; otherwise a
        ``StoreError`` names what differs. ``force=True`` deletes it and starts
        over; ``force="stale"`` deletes it only when it cannot be resumed (what a
        workflow wants once it has decided that the store's inputs changed).
        """
        path = Path(path)
        fingerprint = _jsonable(fingerprint)
        item_shape = tuple(int(s) for s in item_shape)
        dtype = np.dtype(dtype)
        if path.exists() and force is True:
            shutil.rmtree(path)
        if path.exists():
            store = cls.open(path, array_name=array_name)
            try:
                store._check_resumable(kind, meta, item_shape, dtype, fingerprint)
            except StoreError as error:
                if force != "stale":
                    raise
                logger.warning("%s; replacing the stale store", error)
                shutil.rmtree(path)
            else:
                return store

        tmp = path.with_name(path.name + ".creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        n = len(meta.samples)
        group.create_array(
            array_name,
            shape=(n, *item_shape),
            chunks=(1, *item_shape),
            dtype=dtype,
            fill_value=0,
        )
        group.create_array(DONE, shape=(n,), chunks=(max(n, 1),), dtype=bool, fill_value=False)
        group.attrs.update(
            {
                "kind": kind,
                "array": array_name,
                "samples": list(meta.samples),
                "subjects": list(meta.subjects),
                "classes": list(meta.classes),
                "fingerprint": fingerprint,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                **_jsonable(attrs or {}),
            }
        )
        # The group appears under its final name only once fully initialised.
        tmp.rename(path)
        return cls.open(path, array_name=array_name)

    @classmethod
    def open(cls, path: str | Path, array_name: str | None = None, mode: str = "r+") -> SampleStore:
        path = Path(path)
        if not path.exists():
            raise StoreError(f"{path}: store does not exist")
        try:
            group = zarr.open_group(path, mode=mode, zarr_format=3)
            name = array_name or group.attrs["array"]
            group[name]
            group[DONE]
        except (KeyError, FileNotFoundError, ValueError) as error:
            raise StoreError(f"{path}: not a painformer sample store ({error})") from error
        return cls(path, group, name)

    @classmethod
    def open_complete(cls, path: str | Path) -> SampleStore:
        """Open read-only, refusing a store in which some sample is not done."""
        store = cls.open(path, mode="r")
        missing = store.pending()
        if missing:
            names = [store.samples[i] for i in missing[:10]]
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise StoreError(
                f"{path}: incomplete store, {len(missing)} of {len(store)} samples not done "
                f"(e.g. {', '.join(names)}{more}); rerun the job that writes it"
            )
        return store

    def _check_resumable(self, kind, meta: SampleMeta, item_shape, dtype, fingerprint) -> None:
        attrs = self.group.attrs
        problems = []
        if attrs.get("kind") != kind:
            problems.append(f"kind {attrs.get('kind')!r} != {kind!r}")
        if tuple(attrs.get("samples", ())) != meta.samples:
            problems.append("the sample list differs")
        if tuple(self.array.shape[1:]) != item_shape:
            problems.append(f"item shape {tuple(self.array.shape[1:])} != {item_shape}")
        if np.dtype(self.array.dtype) != dtype:
            problems.append(f"dtype {self.array.dtype} != {dtype}")
        old = attrs.get("fingerprint", {})
        for key in sorted(set(old) | set(fingerprint)):
            if old.get(key) != fingerprint.get(key):
                problems.append(f"{key}: stored {old.get(key)!r}, requested {fingerprint.get(key)!r}")
        if problems:
            raise StoreError(
                f"{self.path}: existing store was made differently and cannot be resumed "
                f"({'; '.join(problems)}); use --force to delete it and start over"
            )

    # -- content ---------------------------------------------------------------
    @property
    def array(self) -> zarr.Array:
        return self.group[self.array_name]

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    @property
    def samples(self) -> list[str]:
        return list(self.group.attrs["samples"])

    @property
    def subjects(self) -> list[str]:
        return list(self.group.attrs["subjects"])

    @property
    def classes(self) -> list[str]:
        return list(self.group.attrs["classes"])

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def done_mask(self) -> np.ndarray:
        return np.asarray(self.group[DONE][:], dtype=bool)

    def pending(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.done_mask())]

    def is_complete(self) -> bool:
        return bool(self.done_mask().all())

    def write(self, index: int, value: np.ndarray) -> None:
        """Write one sample's array, then flag it done (in that order)."""
        self.write_many([index], np.asarray(value)[None])

    def write_many(self, indices: list[int], values: np.ndarray) -> None:
        """Write several samples' arrays (``values[k]`` for ``indices[k]``), then flag them all done.

        Runs of consecutive indices go to the store as one slice each, and the
        done flags as one update per run, after every array is written: a
        sample is never flagged before its data is in the store.
        """
        values = np.asarray(values)
        array = self.array
        expected = (len(indices), *array.shape[1:])
        if values.shape != expected:
            raise StoreError(f"{self.path}: samples {list(indices)} have shape {values.shape}, expected {expected}")
        order = np.argsort(indices, kind="stable")
        sorted_indices = np.asarray(indices, dtype=np.int64)[order]
        breaks = np.flatnonzero(np.diff(sorted_indices) != 1) + 1
        runs = [
            (int(run[0]), int(run[-1]) + 1, positions)
            for run, positions in zip(np.split(sorted_indices, breaks), np.split(order, breaks))
        ]
        for start, stop, positions in runs:
            array[start:stop] = values[positions]
        done = self.group[DONE]
        for start, stop, _ in runs:
            done[start:stop] = True

    def read(self, index: int | slice | None = None) -> np.ndarray:
        return np.asarray(self.array[slice(None) if index is None else index])

    def update_attrs(self, **values: Any) -> None:
        self.group.attrs.update(_jsonable(values))

    def summary(self) -> dict[str, Any]:
        done = self.done_mask()
        return {
            "path": str(self.path),
            "kind": self.group.attrs.get("kind"),
            "array": self.array_name,
            "shape": list(self.array.shape),
            "dtype": str(self.array.dtype),
            "samples_done": int(done.sum()),
            "samples_total": int(done.size),
            "complete": bool(done.all()),
        }


def write_completion_marker(store: SampleStore, marker: str | Path) -> None:
    """Write the small JSON file a workflow uses as 'this store is complete'.

    Refuses (``StoreError``) while any sample is pending, so the marker's
    existence always means a complete store.
    """
    from painformer.utils import atomic_path

    pending = store.pending()
    if pending:
        raise StoreError(f"{store.path}: {len(pending)} samples still pending; not marking complete")
    summary = store.summary()
    summary["attrs"] = {k: v for k, v in store.attrs.items() if k not in ("samples", "subjects", "classes")}
    with atomic_path(marker) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


# -- filling a store ---------------------------------------------------------------


def prefetch(
    load: Callable[[int], Any], indices: Iterable[int], *, threads: int, lookahead: int
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, load(i))`` in order while up to ``lookahead`` loads run in background threads."""
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="painformer-load") as pool:
        queue: deque = deque()
        iterator = iter(indices)
        for index in iterator:
            queue.append((index, pool.submit(load, index)))
            if len(queue) >= max(1, lookahead):
                break
        while queue:
            index, future = queue.popleft()
            next_index = next(iterator, None)
            if next_index is not None:
                queue.append((next_index, pool.submit(load, next_index)))
            yield index, future.result()


@dataclass(frozen=True)
class StoreLayout:
    """What a stage's store looks like and what decides its content.

    ``fingerprint`` is an explicit dict: a stage starts from the keys it shares
    with others (``video_fingerprint``) and adds its own, and every key is
    compared when a store is resumed.
    """

    kind: str
    array_name: str
    item_shape: tuple[int, ...]
    dtype: str
    fingerprint: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)


class StoreStage:
    """One stage's part in ``fill_store``: the layout, how to load a sample, how to compute a batch.

    ``load`` runs in loader threads (decoding, reading files); ``compute`` runs
    in the calling thread on up to ``batch_size`` loaded samples and returns
    their arrays stacked in order. ``prepare`` (loading a model) is called only
    when some sample is pending. A stage that batches across samples in its own
    way overrides ``stream`` instead of ``compute``.
    """

    batch_size: int = 1
    loader_threads: int = 1
    lookahead: int = 1
    verb: str = "compute"
    description: str = ""

    def layout(self) -> StoreLayout:
        raise NotImplementedError

    def prepare(self, store: SampleStore, pending: list[int]) -> None:
        """Called once before the first pending sample is loaded."""

    def load(self, index: int) -> Any:
        raise NotImplementedError

    def compute(self, batch: list[tuple[int, Any]]) -> np.ndarray:
        raise NotImplementedError

    def stream(self, loaded: Iterator[tuple[int, Any]]) -> Iterator[tuple[list[int], np.ndarray]]:
        """``(indices, values)`` to write, from ``(index, loaded)`` pairs in pending order."""
        batch: list[tuple[int, Any]] = []
        for item in loaded:
            batch.append(item)
            if len(batch) >= self.batch_size:
                yield [index for index, _ in batch], self.compute(batch)
                batch = []
        if batch:
            yield [index for index, _ in batch], self.compute(batch)


def check_table(table, columns: Sequence[str]) -> None:
    """Refuse an empty sample table or one lacking a column a stage reads."""
    if table.empty:
        raise InputError("the sample table is empty")
    for column in columns:
        if column not in table.columns:
            raise InputError(f"the sample table has no {column!r} column")


def fill_store(
    out: str | Path,
    stage: StoreStage,
    *,
    meta: SampleMeta,
    force: bool | Literal["stale"] = False,
    complete_marker: str | Path | None = None,
    progress: bool = False,
) -> SampleStore:
    """Create or resume the store ``out`` and compute every pending sample with ``stage``.

    Loads run ahead in background threads (``stage.lookahead`` samples) while
    the current batch is computed; each computed batch is written at once (data
    before done flags). Once every sample is done the completion marker is
    written. Returns the store.
    """
    from tqdm import tqdm

    layout = stage.layout()
    store = SampleStore.create_or_resume(
        out,
        kind=layout.kind,
        array_name=layout.array_name,
        meta=meta,
        item_shape=layout.item_shape,
        dtype=layout.dtype,
        fingerprint=layout.fingerprint,
        attrs=layout.attrs,
        force=force,
    )
    pending = store.pending()
    logger.info("%s: %d of %d samples to %s (%s)", out, len(pending), len(store), stage.verb, stage.description)
    if pending:
        stage.prepare(store, pending)
        loaded = prefetch(stage.load, pending, threads=stage.loader_threads, lookahead=stage.lookahead)
        with tqdm(
            total=len(pending),
            desc=stage.description or stage.verb,
            unit="sample",
            disable=not progress,
            mininterval=2.0,
            file=sys.stderr,
        ) as bar:
            for indices, values in stage.stream(loaded):
                store.write_many(indices, values)
                bar.update(len(indices))
    if complete_marker is not None:
        write_completion_marker(store, complete_marker)
    return store


def video_fingerprint(*, num_frames: int | None, crop: str, fps: float | None) -> dict[str, Any]:
    """The keys every store of decoded video frames shares (extended by each stage)."""
    # The rate enters only when given, so that stores made before it existed still resume.
    return {"num_frames": num_frames, "crop": crop, **({"fps": fps} if fps is not None else {})}


def read_sample_video(
    path: str,
    *,
    sample: str,
    num_frames: int,
    crop: str,
    fps: float | None,
    reader: Callable[..., np.ndarray] | None = None,
    size: int = 224,
) -> np.ndarray:
    """Decode one sample's video and refuse frames of another shape than every sample's."""
    if reader is None:
        from painformer.video import read_frames as reader
    if not Path(path).is_file():
        raise InputError(f"{path}: video of sample {sample} is missing")
    rate = {"fps": fps} if fps is not None else {}
    frames = reader(path, num_frames=num_frames, crop=crop, **rate)
    expected = (num_frames, size, size, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise InputError(f"{path}: decoded frames {frames.shape} {frames.dtype}, expected {expected} uint8")
    return frames
