"""Pretraining task datasets and the batch mix shared across tasks.

A task's dataset is either an image folder (one sub-folder per class, classes
numbered in sorted folder order) or an HDF5 file with ``images`` uint8
(N, H, W, 3) and ``labels`` int (N,) (optionally ``subjects``, used only by the
linear probe). Every batch holds samples of every task, in proportion to the
task sizes (Table IV: "batch size is proportionally distributed across the 14
tasks").
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from painformer.errors import InputError
from painformer.pretrain.config import TaskSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class TaskData(Protocol):
    """Random access to one task's labelled uint8 RGB images."""

    path: Path
    labels: np.ndarray

    def __len__(self) -> int: ...

    def image(self, index: int) -> np.ndarray: ...


class ImageFolderTask:
    """``root/<class>/<image>``: classes are the sorted sub-folder names."""

    def __init__(self, root: Path):
        self.path = root
        self.class_names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files, labels = [], []
        for label, name in enumerate(self.class_names):
            for file in sorted((root / name).iterdir()):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(file)
                    labels.append(label)
        self.files = files
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> np.ndarray:
        from PIL import Image

        file = self.files[index]
        try:
            with Image.open(file) as handle:
                return np.asarray(handle.convert("RGB"), dtype=np.uint8)
        except OSError as error:
            raise InputError(f"{file}: cannot read image ({error})") from error


class HDF5Task:
    """An HDF5 file with ``images`` (N, H, W, 3) uint8 and ``labels`` (N,) int.

    Labels (and subjects) are read once; images are read on demand through a
    file handle opened lazily in each process, so data-loader workers never
    share an HDF5 handle across ``fork``.
    """

    def __init__(self, path: Path):
        import h5py

        self.path = path
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise InputError(f"{path}: cannot open as HDF5 ({error})") from error
        with handle:
            for name in ("images", "labels"):
                if name not in handle:
                    raise InputError(
                        f"{path}: HDF5 task file has no '{name}' dataset (expected images uint8 (N,H,W,3) and labels int (N,))"
                    )
            images = handle["images"]
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                raise InputError(f"{path}: 'images' must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
            labels = handle["labels"][()]
            if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
                raise InputError(f"{path}: 'labels' must be a 1-D integer array, got {labels.dtype} {labels.shape}")
            if len(labels) != images.shape[0]:
                raise InputError(f"{path}: {images.shape[0]} images but {len(labels)} labels")
            self.labels = labels.astype(np.int64)
            self.subjects = (
                np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in handle["subjects"][()]])
                if "subjects" in handle
                else None
            )
        self._handle = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def _images(self):
        import h5py

        if self._handle is None or self._pid != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._handle["images"]

    def image(self, index: int) -> np.ndarray:
        return np.asarray(self._images()[index])

    def all_images(self) -> np.ndarray:
        return np.asarray(self._images()[()])

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, None  # the receiving process opens its own
        return state


def open_task(spec: TaskSpec, *, source: str) -> TaskData:
    """Open and check a task's dataset; errors name the YAML file, the task and the dataset."""
    path = Path(spec.dataset)
    where = f"{source}: task {spec.name}: {path}"
    if not path.exists():
        raise InputError(f"{where}: dataset not found")
    if path.is_dir():
        data: TaskData = ImageFolderTask(path)
        found = len(data.class_names)
        if found != spec.num_classes:
            raise InputError(
                f"{where}: num_classes is {spec.num_classes} but the folder has {found} class sub-folders "
                f"({', '.join(data.class_names) or 'none'})"
            )
    else:
        data = HDF5Task(path)
    if len(data) == 0:
        raise InputError(f"{where}: the dataset holds no images")
    low, high = int(data.labels.min()), int(data.labels.max())
    if low < 0 or high >= spec.num_classes:
        raise InputError(
            f"{where}: labels span {low}..{high} but num_classes is {spec.num_classes} (labels must be 0..{spec.num_classes - 1})"
        )
    return data


def batch_quotas(sizes: Sequence[int], batch_size: int) -> list[int]:
    """Samples per task in one batch: proportional to task size, at least one each.

    Largest-remainder rounding so the quotas sum exactly to ``batch_size``; a
    task too small for one sample by proportion still gets one, taken from the
    largest quota.
    """
    if batch_size < len(sizes):
        raise ValueError(f"batch size {batch_size} cannot hold one sample of each of {len(sizes)} tasks")
    total = float(sum(sizes))
    exact = [batch_size * size / total for size in sizes]
    quotas = [max(1, math.floor(x)) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - math.floor(exact[i])), i))
    for i in by_remainder[: max(0, batch_size - sum(quotas))]:
        quotas[i] += 1
    while sum(quotas) > batch_size:
        largest = max(range(len(sizes)), key=lambda i: (quotas[i], -i))
        quotas[largest] -= 1
    return quotas


class ProportionalBatches:
    """Endless per-task shuffled streams, drawn ``quotas[i]`` at a time for each batch.

    Each task walks through its own random permutation and reshuffles when it
    runs out, so small tasks repeat more often than large ones within an
    epoch, exactly as their fixed share of every batch requires. The state
    (generator, permutations, positions) is saved with the checkpoint so a
    resumed run draws the same batches as an uninterrupted one.
    """

    def __init__(self, *, sizes: Sequence[int], batch_size: int, seed: int):
        self.sizes = [int(s) for s in sizes]
        self.quotas = batch_quotas(self.sizes, batch_size)
        self.rng = np.random.default_rng(seed)
        self.orders = [self.rng.permutation(size) for size in self.sizes]
        self.positions = [0] * len(self.sizes)

    def next_batch(self) -> list[tuple[int, int]]:
        """(task, sample index) pairs, grouped by task in task order."""
        batch = []
        for task, quota in enumerate(self.quotas):
            for _ in range(quota):
                if self.positions[task] >= self.sizes[task]:
                    self.orders[task] = self.rng.permutation(self.sizes[task])
                    self.positions[task] = 0
                batch.append((task, int(self.orders[task][self.positions[task]])))
                self.positions[task] += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "orders": [torch.from_numpy(np.ascontiguousarray(order)) for order in self.orders],
            "positions": list(self.positions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.orders = [np.asarray(order, dtype=np.int64) for order in state["orders"]]  # tensors or lists
        self.positions = [int(p) for p in state["positions"]]
