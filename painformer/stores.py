"""Resumable per-sample Zarr v3 stores.

Every stage that produces one array per sample (rendered biosignal images,
thermal/depth frames, PainFormer embeddings) writes into a ``SampleStore``:

```
store.zarr/                 Zarr v3 group; attrs: kind, samples, subjects, classes,
                            fingerprint, integrity, inputs
  {array_name}              (n_samples, *item_shape), one chunk per sample, compressed
  checksums                 (n_samples, 16) uint8: BLAKE2b of each sample's bytes (zeros: none)
  inputs                    (n_samples, 32) uint8: fingerprint of each sample's inputs
  done                      (n_samples,) bool: True once that sample is written
```

A sample's chunk is written first (even when it equals the fill value, so that
a missing chunk is always a fault), then its checksum and input fingerprint,
then its ``done`` flag; the local store replaces files atomically, so a job
killed at any point (SIGKILL included) leaves either a finished sample or one
the next run recomputes. The checksum is the authority: every read checks it,
so a missing or corrupt chunk is never taken for data, and an unreadable
``done`` mask is rebuilt from the checksums.

``fingerprint`` holds whatever decides the content of every sample (checkpoint
hash, preprocessing parameters); reopening with a different fingerprint is
refused unless the caller asks to start over. The per-sample input fingerprint
decides which samples are stale: the size and modification time of the
sample's files as a shortcut, their content hash as the authority (so a copy
that did not keep the times recomputes nothing), or the checksum of the
upstream store's sample it was computed from.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import logging
import os
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
CHECKSUMS = "checksums"
INPUTS = "inputs"
DIGEST_SIZE = 16
# Stores made before per-sample checksums have no ``integrity`` attribute and are not resumed.
INTEGRITY_VERSION = 1
# Samples per chunk of the checksum and input arrays: a damaged chunk costs at most this many recomputations.
RECORD_CHUNK = 256
NO_DIGEST = bytes(DIGEST_SIZE)


def sample_checksum(value: np.ndarray) -> bytes:
    """The digest of one sample's bytes as stored (C order, the store's dtype)."""
    return hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=DIGEST_SIZE).digest()


@dataclass(frozen=True)
class SampleInputs:
    """What one sample was computed from: raw files, or an upstream store's sample (its checksum)."""

    files: tuple[str, ...] = ()
    upstream: bytes | None = None

    def stat_digest(self) -> bytes:
        """Cheap: size and modification time of each file (a missing file gives its own digest)."""
        if self.upstream is not None:
            return self.upstream
        digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
        for path in self.files:
            try:
                info = os.stat(path)
                digest.update(f"{info.st_size}:{info.st_mtime_ns}\0".encode())
            except OSError:
                digest.update(b"missing\0")
        return digest.digest()

    def content_digest(self) -> bytes:
        """Authoritative: the bytes of each file."""
        if self.upstream is not None:
            return self.upstream
        digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
        for path in self.files:
            try:
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                digest.update(f"\0{os.path.getsize(path)}\0".encode())
            except OSError:
                digest.update(b"missing\0")
        return digest.digest()

    def record(self) -> bytes:
        return self.stat_digest() + self.content_digest()


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

    def __init__(self, path: Path, group: zarr.Group, array_name: str, mode: str = "r+"):
        self.path = Path(path)
        self.group = group
        self.array_name = array_name
        self.mode = mode
        # Why the done mask was rebuilt from the checksums on this opening, if it was.
        self.done_rebuilt: str | None = None
        self._checksums: np.ndarray | None = None  # read once per opening, updated by writes

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
            config={"write_empty_chunks": True},
        )
        records = max(1, min(n, RECORD_CHUNK))
        group.create_array(CHECKSUMS, shape=(n, DIGEST_SIZE), chunks=(records, DIGEST_SIZE), dtype="uint8")
        group.create_array(INPUTS, shape=(n, 2 * DIGEST_SIZE), chunks=(records, 2 * DIGEST_SIZE), dtype="uint8")
        group.create_array(DONE, shape=(n,), chunks=(max(n, 1),), dtype=bool, fill_value=False)
        group.attrs.update(
            {
                "kind": kind,
                "integrity": INTEGRITY_VERSION,
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
        return cls(path, group, name, mode)

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
        if not self.has_checksums:
            problems.append("it was made before stores recorded per-sample checksums")
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
        # Write every chunk, also one equal to the fill value: a missing chunk must mean a fault.
        return self.group[self.array_name].with_config({"write_empty_chunks": True})

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

    @property
    def has_checksums(self) -> bool:
        return self.group.attrs.get("integrity") == INTEGRITY_VERSION and CHECKSUMS in self.group

    def __len__(self) -> int:
        return int(self.group[self.array_name].shape[0])

    def _records(self, name: str, width: int) -> np.ndarray:
        """A per-sample record array; rows of an unreadable chunk read as zeros (nothing recorded)."""
        n = len(self)
        out = np.zeros((n, width), dtype=np.uint8)
        if name not in self.group:
            return out
        array = self.group[name]
        step = int(array.chunks[0])
        for start in range(0, n, step):
            try:
                out[start : start + step] = array[start : start + step]
            except Exception as error:  # a damaged chunk: its samples count as never written
                logger.warning("%s: unreadable %s for samples %d-%d (%s)", self.path, name, start, start + step, error)
        return out

    def checksums(self) -> np.ndarray:
        if self._checksums is None:
            self._checksums = self._records(CHECKSUMS, DIGEST_SIZE)
            self._checksums.flags.writeable = False
        return self._checksums

    def input_records(self) -> np.ndarray:
        return self._records(INPUTS, 2 * DIGEST_SIZE)

    def done_mask(self) -> np.ndarray:
        try:
            done = np.asarray(self.group[DONE][:], dtype=bool)
            if done.shape != (len(self),):
                raise ValueError(f"shape {done.shape}")
            return done
        except Exception as error:
            if not self.has_checksums:
                raise StoreError(f"{self.path}: the done mask is unreadable ({error})") from None
            return self._rebuild_done(f"{type(error).__name__}: {error}")

    def _rebuild_done(self, reason: str) -> np.ndarray:
        done = (self.checksums() != 0).any(axis=1)
        self.done_rebuilt = reason
        logger.warning("%s: the done mask is unreadable (%s); rebuilt from the checksums", self.path, reason)
        if self.mode != "r":
            self.group[DONE][:] = done
        return done

    def pending(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.done_mask())]

    def is_complete(self) -> bool:
        return bool(self.done_mask().all())

    def write(self, index: int, value: np.ndarray, inputs: bytes | None = None) -> None:
        """Write one sample's array, then flag it done (in that order)."""
        self.write_many([index], np.asarray(value)[None], None if inputs is None else [inputs])

    def write_many(self, indices: list[int], values: np.ndarray, inputs: Sequence[bytes] | None = None) -> None:
        """Write several samples' arrays (``values[k]`` for ``indices[k]``), then flag them all done.

        ``inputs[k]`` is the input fingerprint (``SampleInputs.record``) of
        ``indices[k]``. Runs of consecutive indices go to the store as one slice
        each; every array is written before any checksum, and every checksum
        before any done flag.
        """
        array = self.array
        values = np.asarray(values)
        expected = (len(indices), *array.shape[1:])
        if values.shape != expected:
            raise StoreError(f"{self.path}: samples {list(indices)} have shape {values.shape}, expected {expected}")
        # The checksum is of the bytes the store holds, so take the store's dtype first.
        values = values.astype(array.dtype, copy=False)
        order = np.argsort(indices, kind="stable")
        sorted_indices = np.asarray(indices, dtype=np.int64)[order]
        breaks = np.flatnonzero(np.diff(sorted_indices) != 1) + 1
        runs = [
            (int(run[0]), int(run[-1]) + 1, positions)
            for run, positions in zip(np.split(sorted_indices, breaks), np.split(order, breaks))
        ]
        for start, stop, positions in runs:
            array[start:stop] = values[positions]
        sums = np.frombuffer(b"".join(sample_checksum(value) for value in values), dtype=np.uint8)
        sums = sums.reshape(len(indices), DIGEST_SIZE)
        records = None
        if inputs is not None:
            records = np.frombuffer(b"".join(inputs), dtype=np.uint8).reshape(len(indices), 2 * DIGEST_SIZE)
        self._checksums = None
        for start, stop, positions in runs:
            self.group[CHECKSUMS][start:stop] = sums[positions]
            if records is not None:
                self.group[INPUTS][start:stop] = records[positions]
        done = self.group[DONE]
        for start, stop, _ in runs:
            done[start:stop] = True

    def set_input_records(self, indices: list[int], records: Sequence[bytes]) -> None:
        """Replace input fingerprints (a file whose times changed but whose content did not)."""
        table = self.input_records()
        for index, record in zip(indices, records):
            table[index] = np.frombuffer(record, dtype=np.uint8)
        self.group[INPUTS][:] = table

    # -- checked reads -------------------------------------------------------------
    def _chunk_exists(self, index: int) -> bool:
        array = self.group[self.array_name]
        key = array.metadata.encode_chunk_key((index,) + (0,) * (array.ndim - 1))
        return (self.path / self.array_name / key).exists()

    def sample_problem(
        self, index: int, checksum: bytes, array: zarr.Array | None = None
    ) -> tuple[str | None, np.ndarray | None]:
        """Read one sample and check it against its checksum: (problem or None, data or None)."""
        if checksum == NO_DIGEST:
            return "no checksum recorded (never written)", None
        try:
            value = np.asarray((self.group[self.array_name] if array is None else array)[index])
        except Exception as error:
            return f"corrupt chunk ({type(error).__name__}: {error})", None
        if sample_checksum(value) != checksum:
            if not self._chunk_exists(index):
                return "missing chunk", None
            return "its data does not match its checksum (corrupt chunk)", None
        return None, value

    def _read_checked(self, indices: Sequence[int]) -> np.ndarray:
        if not self.has_checksums:
            raise StoreError(
                f"{self.path}: made before stores recorded per-sample checksums; rerun the job that writes it"
            )
        sums = self.checksums()
        array = self.group[self.array_name]
        out = []
        for index in indices:
            problem, value = self.sample_problem(int(index), sums[int(index)].tobytes(), array)
            if problem:
                raise StoreError(
                    f"{self.path}: sample {self.samples[int(index)]} cannot be read: {problem}; "
                    "rerun the job that writes this store to recompute it"
                )
            out.append(value)
        return np.stack(out) if out else np.zeros((0, *self.array.shape[1:]), dtype=self.array.dtype)

    def read(self, index: int | slice | None = None) -> np.ndarray:
        """One sample (``int``) or several (``slice``, ``None`` for all), each checked against its checksum."""
        if isinstance(index, (int, np.integer)):
            return self._read_checked([int(index)])[0]
        return self._read_checked(range(len(self))[slice(None) if index is None else index])

    def read_many(self, indices: Sequence[int]) -> np.ndarray:
        """Samples ``indices`` (any order), each checked against its checksum."""
        return self._read_checked(indices)

    def bad_samples(self, indices: Sequence[int] | None = None) -> dict[int, str]:
        """Every done sample (of ``indices``) whose chunk is missing or does not match its checksum."""
        sums = self.checksums()
        done = self.done_mask()
        candidates = range(len(self)) if indices is None else indices
        array = self.group[self.array_name]
        problems = {}
        for index in candidates:
            if done[index]:
                problem, _ = self.sample_problem(int(index), sums[int(index)].tobytes(), array)
                if problem:
                    problems[int(index)] = problem
        return problems

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
    # Per-sample lists (names, input files) stay in the store: the marker is a summary.
    summary["attrs"] = {k: v for k, v in store.attrs.items() if k not in ("samples", "subjects", "classes", "inputs")}
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

    def inputs(self, index: int) -> SampleInputs | None:
        """What sample ``index`` is computed from (``None``: nothing per sample to watch)."""
        return None

    def inputs_attr(self) -> dict[str, Any] | None:
        """How ``painformer inspect --verify`` finds every sample's inputs again (stored in the attrs)."""
        return None

    def stream(self, loaded: Iterator[tuple[int, Any]]) -> Iterator[tuple[list[int], np.ndarray]]:
        """``(indices, values)`` to write, from ``(index, loaded)`` pairs in pending order."""
        batch: list[tuple[int, Any]] = []
        for item in loaded:
            batch.append(item)
            if len(batch) >= self.batch_size:
                yield from self._computed(batch)
                batch = []
        if batch:
            yield from self._computed(batch)

    def _computed(self, batch: list[tuple[int, Any]]) -> Iterator[tuple[list[int], np.ndarray]]:
        try:
            values = self.compute(batch)
        except Exception:
            if len(batch) == 1:
                raise
            # One bad sample fails the batch: compute the samples one by one, keep those before
            # it and raise its own error.
            for item in batch:
                yield [item[0]], self.compute([item])
            raise
        yield [index for index, _ in batch], values


class VideoFramesStage(StoreStage):
    """A stage whose samples are decoded videos (thermal and depth frames): it watches each sample's
    video and decodes it with the settings' ``num_frames``, ``crop``, ``fps`` and ``decoder``."""

    reader: Callable[..., np.ndarray] | None = None

    def watch_videos(self, table: Any) -> None:
        """Record the videos of ``table`` (a sample table) and resolve the decoder."""
        from painformer.video import resolve_decoder

        self.decoder = resolve_decoder(self.settings.decoder)
        self.videos = [str(v) for v in table["video"]]
        self.watched = [input_path(video) for video in self.videos]
        self.samples = [str(s) for s in table["sample"]]

    def inputs(self, index: int) -> SampleInputs:
        return SampleInputs(files=(self.watched[index],))

    def inputs_attr(self) -> dict:
        return {"files": [[path] for path in self.watched]}

    def frames_layout(self, *, frame_size: int, fingerprint: dict[str, Any], attrs: dict[str, Any]) -> StoreLayout:
        """A uint8 store of ``num_frames`` square RGB frames per sample; the video settings join ``fingerprint``."""
        settings = self.settings
        return StoreLayout(
            kind="frames",
            array_name="frames",
            item_shape=(settings.num_frames, frame_size, frame_size, 3),
            dtype="uint8",
            fingerprint={
                **fingerprint,
                **video_fingerprint(
                    num_frames=settings.num_frames, crop=settings.crop, fps=settings.fps, decoder=self.decoder
                ),
            },
            attrs=attrs,
        )

    def load(self, index: int) -> np.ndarray:
        settings = self.settings
        return read_sample_video(
            self.videos[index],
            sample=self.samples[index],
            num_frames=settings.num_frames,
            crop=settings.crop,
            fps=settings.fps,
            decoder=self.decoder,
            reader=self.reader,
        )


def check_table(table, columns: Sequence[str]) -> None:
    """Refuse an empty sample table or one lacking a column a stage reads."""
    if table.empty:
        raise InputError("the sample table is empty")
    for column in columns:
        if column not in table.columns:
            raise InputError(f"the sample table has no {column!r} column")


def inputs_from_attrs(store: SampleStore) -> Callable[[int], SampleInputs] | None:
    """Each sample's inputs as recorded in the store's attributes (``None`` when none were)."""
    described = store.attrs.get("inputs") or {}
    if "files" in described:
        files = described["files"]
        return lambda index: SampleInputs(files=tuple(files[index]))
    if "upstream" in described:
        upstream = SampleStore.open(described["upstream"], mode="r")
        sums = upstream.checksums()
        row = {name: i for i, name in enumerate(upstream.samples)}
        names = store.samples

        def upstream_inputs(index: int) -> SampleInputs:
            position = row.get(names[index])
            # A sample gone from upstream can match no recorded fingerprint.
            return SampleInputs(upstream=NO_DIGEST if position is None else sums[position].tobytes())

        return upstream_inputs
    return None


def stale_samples(
    store: SampleStore, inputs_of: Callable[[int], SampleInputs | None], indices: Iterable[int]
) -> tuple[list[int], list[tuple[int, bytes]]]:
    """Samples whose inputs changed since they were computed, and fresh records for those whose
    files only got new times (same content)."""
    records = store.input_records()
    stale, refreshed = [], []
    for index in indices:
        inputs = inputs_of(index)
        if inputs is None:
            continue
        recorded = records[index].tobytes()
        stat = inputs.stat_digest()
        if stat == recorded[:DIGEST_SIZE]:
            continue
        content = inputs.content_digest()
        if content == recorded[DIGEST_SIZE:]:
            refreshed.append((index, stat + content))
        else:
            stale.append(index)
    return stale, refreshed


def _names(store: SampleStore, indices: Sequence[int], limit: int = 10) -> str:
    samples = store.samples
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    return ", ".join(samples[i] for i in indices[:limit]) + more


def plan_pending(store: SampleStore, inputs_of: Callable[[int], SampleInputs | None]) -> list[int]:
    """The samples to compute: never written, missing or corrupt, or computed from inputs that changed.

    Samples found bad or stale lose their done flag first, so that nothing reads
    them as finished while they are recomputed.
    """
    done = store.done_mask()
    written = [int(i) for i in np.flatnonzero(done)]
    bad = store.bad_samples(written)
    if bad:
        logger.warning(
            "%s: %d sample(s) missing or corrupt, recomputed: %s",
            store.path,
            len(bad),
            "; ".join(f"{store.samples[i]} ({problem})" for i, problem in list(bad.items())[:10]),
        )
    stale, refreshed = stale_samples(store, inputs_of, [i for i in written if i not in bad])
    if refreshed:
        store.set_input_records([i for i, _ in refreshed], [record for _, record in refreshed])
    if stale:
        logger.info("%s: inputs changed for %d sample(s), recomputed: %s", store.path, len(stale), _names(store, stale))
    redo = sorted(set(bad) | set(stale))
    if redo:
        store.group[DONE].oindex[np.asarray(redo)] = False
        done[redo] = False
    return [int(i) for i in np.flatnonzero(~done)]


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

    Pending: never written, missing or corrupt (checksums), or computed from
    inputs that changed (input fingerprints). Loads run ahead in background
    threads (``stage.lookahead`` samples) while the current batch is computed;
    each computed batch is written at once. When a sample fails, the samples
    before it are still written, then its error is raised. Once every sample is
    done the completion marker is written. Returns the store.
    """
    from tqdm import tqdm

    layout = stage.layout()
    described = stage.inputs_attr()
    store = SampleStore.create_or_resume(
        out,
        kind=layout.kind,
        array_name=layout.array_name,
        meta=meta,
        item_shape=layout.item_shape,
        dtype=layout.dtype,
        fingerprint=layout.fingerprint,
        attrs={**layout.attrs, "inputs": described},
        force=force,
    )
    if store.attrs.get("inputs") != _jsonable(described):
        store.update_attrs(inputs=described)
    pending = plan_pending(store, stage.inputs)
    logger.info("%s: %d of %d samples to %s (%s)", out, len(pending), len(store), stage.verb, stage.description)
    if pending:
        stage.prepare(store, pending)
        records: dict[int, bytes] = {}

        def load(index: int) -> Any:
            # The fingerprint is taken before the data is read: a file changing in between makes
            # the next run see a mismatch and recompute, never keep data newer than its record.
            inputs = stage.inputs(index)
            records[index] = (inputs or SampleInputs()).record()
            return stage.load(index)

        failure: list[BaseException] = []

        def loaded() -> Iterator[tuple[int, Any]]:
            try:
                yield from prefetch(load, pending, threads=stage.loader_threads, lookahead=stage.lookahead)
            except Exception as error:  # the samples loaded before it are still computed and written
                failure.append(error)

        with tqdm(
            total=len(pending),
            desc=stage.description or stage.verb,
            unit="sample",
            disable=not progress,
            mininterval=2.0,
            file=sys.stderr,
        ) as bar:
            for indices, values in stage.stream(loaded()):
                store.write_many(indices, values, [records.pop(i) for i in indices])
                bar.update(len(indices))
        if failure:
            raise failure[0]
    if complete_marker is not None:
        write_completion_marker(store, complete_marker)
    return store


def verify_store(path: str | Path) -> tuple[SampleStore, list[str]]:
    """Read every sample of a store; one line per fault (unreadable done mask, sample not written,
    missing or corrupt chunk, inputs changed since it was computed). No lines: the store is whole."""
    store = SampleStore.open(path, mode="r")
    if not store.has_checksums:
        return store, [f"{store.path}: made before stores recorded per-sample checksums; it cannot be verified"]
    lines = []
    done = store.done_mask()
    if store.done_rebuilt:
        lines.append(f"done mask: unreadable ({store.done_rebuilt}); rebuilt from the checksums")
    names = store.samples
    for index in np.flatnonzero(~done):
        lines.append(f"sample {names[index]}: not written")
    written = [int(i) for i in np.flatnonzero(done)]
    bad = store.bad_samples(written)
    for index, problem in bad.items():
        lines.append(f"sample {names[index]}: {problem}")
    inputs_of = inputs_from_attrs(store)
    if inputs_of is not None:
        stale, _ = stale_samples(store, inputs_of, [i for i in written if i not in bad])
        for index in stale:
            lines.append(f"sample {names[index]}: inputs changed since it was computed")
    return store, lines


def files_state(paths: Iterable[str]) -> str:
    """One digest of the size and modification time of every file (for a workflow to notice changes).

    Cheap (one ``stat`` per file); a file that is missing gives its own digest.
    """
    parts = []
    for path in paths:
        try:
            info = os.stat(path)
            parts.append(f"{path}\0{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}\0missing")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=DIGEST_SIZE).hexdigest()


def input_path(path: str) -> str:
    """A sample's input file as recorded in its store: absolute, so that ``inspect`` finds it from anywhere."""
    return os.path.abspath(path) if path and path != "nan" else ""


def video_fingerprint(*, num_frames: int | None, crop: str, fps: float | None, decoder: str) -> dict[str, Any]:
    """The keys every store of decoded video frames shares (extended by each stage). ``decoder`` is
    the resolved backend (decord or pyav), so a store is never resumed with the other one's frames."""
    # The rate enters only when given, so that stores made before it existed still resume.
    return {"num_frames": num_frames, "crop": crop, **({"fps": fps} if fps is not None else {}), "decoder": decoder}


def read_sample_video(
    path: str,
    *,
    sample: str,
    num_frames: int,
    crop: str,
    fps: float | None,
    decoder: str,
    reader: Callable[..., np.ndarray] | None = None,
    size: int = 224,
) -> np.ndarray:
    """Decode one sample's video with ``decoder`` (or a given ``reader``) and refuse frames of another
    shape than every sample's."""
    if reader is None:
        from painformer.video import read_frames

        reader = functools.partial(read_frames, decoder=decoder)
    if not Path(path).is_file():
        raise InputError(f"{path}: video of sample {sample} is missing")
    rate = {"fps": fps} if fps is not None else {}
    frames = reader(path, num_frames=num_frames, crop=crop, **rate)
    expected = (num_frames, size, size, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise InputError(f"{path}: decoded frames {frames.shape} {frames.dtype}, expected {expected} uint8")
    return frames
