"""Export a sample store to HDF5 for tools that do not read Zarr, and describe stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from painformer.stores import SampleStore
from painformer.utils import atomic_path


def export_h5(store_path: str | Path, out: str | Path) -> Path:
    """Write the store's array, done mask, sample identities and attributes to HDF5.

    Datasets: ``<array>`` (same shape/dtype), ``done``, ``sample``, ``subject``,
    ``class_name`` (UTF-8 strings); file attributes: every store attribute
    (JSON-encoded when not a scalar).
    """
    store = SampleStore.open(store_path, mode="r")
    strings = h5py.string_dtype("utf-8")
    with atomic_path(out, suffix=".h5") as tmp, h5py.File(tmp, "w") as handle:
        data = handle.create_dataset(
            store.array_name,
            shape=store.array.shape,
            dtype=store.array.dtype,
            chunks=(1, *store.array.shape[1:]),
            compression="gzip",
            compression_opts=4,
        )
        done = store.done_mask()
        # Only written samples, each checked against its checksum: a missing chunk never exports as zeros.
        for index in np.flatnonzero(done):
            data[index] = store.read(int(index))
        handle.create_dataset("done", data=done)
        handle.create_dataset("sample", data=np.array(store.samples, dtype=object), dtype=strings)
        handle.create_dataset("subject", data=np.array(store.subjects, dtype=object), dtype=strings)
        handle.create_dataset("class_name", data=np.array(store.classes, dtype=object), dtype=strings)
        for key, value in store.attrs.items():
            if key in ("samples", "subjects", "classes"):
                continue
            handle.attrs[key] = (
                value if isinstance(value, (int, float, str, bool)) else json.dumps(value, sort_keys=True)
            )
    return Path(out)


def describe(store_path: str | Path) -> dict[str, Any]:
    """Shape, completeness and metadata of a store, for ``painformer inspect``."""
    store = SampleStore.open(store_path, mode="r")
    summary = store.summary()
    summary["subjects"] = len(set(store.subjects))
    summary["classes"] = sorted(set(store.classes))
    summary["attrs"] = {k: v for k, v in store.attrs.items() if k not in ("samples", "subjects", "classes")}
    return summary
