"""Models: the PainFormer backbone, the Embedding-Mixer and the Video-Encoder.

The Mixer and the preprocessing need only torch and load with the package; the backbone's names
load their module on first use, so that code needing only the Mixer (the train stage) does not
import timm, which the backbone's module needs.
"""

from __future__ import annotations

import importlib

from painformer.models.mixer import EmbeddingMixer, VideoEncoder, set_factored_attention
from painformer.models.preprocess import PREPROCESS_PARAMS, preprocess

_LAZY_EXPORTS = {
    "EMBEDDING_DIM": "painformer.models.painformer",
    "PainFormer": "painformer.models.painformer",
    "UNTRAINED": "painformer.models.loading",
    "check_state_dict": "painformer.models.loading",
    "load_painformer": "painformer.models.loading",
}
# The modules whose factories timm's registry lists (painformer, embedding_mixer, video_encoder).
TIMM_MODULES = ("painformer.models.painformer", "painformer.models.mixer")

__all__ = [
    "EMBEDDING_DIM",
    "EmbeddingMixer",
    "PREPROCESS_PARAMS",
    "PainFormer",
    "UNTRAINED",
    "VideoEncoder",
    "check_state_dict",
    "load_painformer",
    "preprocess",
    "set_factored_attention",
]


def __getattr__(name: str):
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
