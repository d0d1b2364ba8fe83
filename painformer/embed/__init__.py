"""Stage 1: PainFormer embeddings of every input image, cached in resumable Zarr stores.

Names load on first use: training jobs need only the aggregation helpers, and should not
pay for importing the backbone (timm, torchvision) thousands of times.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AGGREGATIONS": "painformer.embed.aggregate",
    "aggregate": "painformer.embed.aggregate",
    "fit_items": "painformer.embed.aggregate",
    "EmbedSettings": "painformer.embed.extract",
    "extract_embeddings": "painformer.embed.extract",
    "StoreSource": "painformer.embed.sources",
    "VideoSource": "painformer.embed.sources",
    "open_source": "painformer.embed.sources",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'painformer.embed' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
