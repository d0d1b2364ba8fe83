"""Stage 1: PainFormer embeddings of every input image, cached in resumable Zarr stores.

Names load on first use: training jobs need only the aggregation helpers, and should not
pay for importing the backbone (timm, torchvision) thousands of times.
"""

from __future__ import annotations

import importlib
from typing import Any

# Bound eagerly: the function `aggregate` shares its name with its (light) module, which
# would otherwise shadow it once imported.
from painformer.embed.aggregate import AGGREGATIONS, aggregate, fit_items

_LAZY = {
    "EmbedSettings": "painformer.embed.extract",
    "extract_embeddings": "painformer.embed.extract",
    "StoreSource": "painformer.embed.sources",
    "VideoSource": "painformer.embed.sources",
    "open_source": "painformer.embed.sources",
}

__all__ = [
    "AGGREGATIONS",
    "EmbedSettings",
    "StoreSource",
    "VideoSource",
    "aggregate",
    "extract_embeddings",
    "fit_items",
    "open_source",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'painformer.embed' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
