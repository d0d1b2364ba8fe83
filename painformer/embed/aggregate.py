"""Turning a sample's item embeddings (frames, channels) into one vector.

- ``concat`` (Eq. 11): the frames' embeddings one after another, (n_items * 160,).
  Videos whose frame count differs from ``num_items`` by a few frames are
  made to fit: missing frames are filled by repeating the last frame's
  embedding, surplus frames are dropped from the end. Repeating (rather than
  zero-padding) keeps the vector in the distribution the Mixer sees in training.
- ``sum`` (Eq. 13): element-wise sum over items, (160,).
- ``mean``: element-wise mean over items, (160,); for fNIRS channels, whose count
  may differ between datasets, the mean keeps the scale independent of it.
"""

from __future__ import annotations

import numpy as np

from painformer.names import AGGREGATIONS

# A video differing from the expected frame count by more than this is an error:
# it means different frame sampling, not the odd dropped frame.
MAX_FRAME_MISMATCH = 2


def fit_items(embeddings: np.ndarray, num_items: int, *, max_mismatch: int = MAX_FRAME_MISMATCH) -> np.ndarray:
    """Pad (repeat last) or trim (drop from the end) axis 1 of (N, n, D) to ``num_items``."""
    n = embeddings.shape[1]
    if n == num_items:
        return embeddings
    if abs(n - num_items) > max_mismatch:
        raise ValueError(f"{n} items where {num_items} were expected (more than {max_mismatch} apart)")
    if n > num_items:
        return embeddings[:, :num_items]
    pad = np.repeat(embeddings[:, -1:], num_items - n, axis=1)
    return np.concatenate([embeddings, pad], axis=1)


def aggregate(embeddings: np.ndarray, how: str, num_items: int | None = None) -> np.ndarray:
    """(N, n_items, D) item embeddings -> (N, D_out) one vector per sample (see module doc)."""
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 3:
        raise ValueError(f"expected (N, n_items, D) embeddings, got shape {embeddings.shape}")
    if how == "concat":
        if num_items is not None:
            embeddings = fit_items(embeddings, num_items)
        return embeddings.reshape(embeddings.shape[0], -1)  # (N, n_items * D)
    if how == "sum":
        return embeddings.sum(axis=1)
    if how == "mean":
        return embeddings.mean(axis=1)
    raise ValueError(f"unknown aggregation {how!r}; expected one of {AGGREGATIONS}")
