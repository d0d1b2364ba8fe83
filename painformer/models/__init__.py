"""Models: the PainFormer backbone, the Embedding-Mixer and the Video-Encoder."""

from painformer.models.loading import UNTRAINED, check_state_dict, load_painformer
from painformer.models.mixer import EmbeddingMixer, VideoEncoder, set_factored_attention
from painformer.models.painformer import EMBEDDING_DIM, PainFormer, painformer
from painformer.models.preprocess import PREPROCESS_PARAMS, preprocess

__all__ = [
    "EMBEDDING_DIM",
    "EmbeddingMixer",
    "VideoEncoder",
    "set_factored_attention",
    "PREPROCESS_PARAMS",
    "PainFormer",
    "UNTRAINED",
    "check_state_dict",
    "load_painformer",
    "painformer",
    "preprocess",
]
