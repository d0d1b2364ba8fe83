"""Stage 1: PainFormer embeddings of every input image, cached in resumable Zarr stores."""

from painformer.embed.aggregate import AGGREGATIONS, aggregate, fit_items
from painformer.embed.extract import EmbedSettings, extract_embeddings
from painformer.embed.sources import StoreSource, VideoSource, open_source

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
