"""Models: the PainFormer backbone, the Embedding-Mixer and the Video-Encoder."""

from painformer.models.loading import UNTRAINED, check_state_dict, load_painformer
from painformer.models.painformer import EMBEDDING_DIM, PainFormer, painformer
from painformer.models.preprocess import PREPROCESS_PARAMS, preprocess

__all__ = [
    "EMBEDDING_DIM",
    "PREPROCESS_PARAMS",
    "PainFormer",
    "UNTRAINED",
    "check_state_dict",
    "load_painformer",
    "painformer",
    "preprocess",
]
