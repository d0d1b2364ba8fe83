"""Torch-free configurations of the Embedding-Mixer and the Video-Encoder.

``painformer.models`` imports torch; the workflow's dry runs check the config
without it. The frozen dataclasses here are the one list of the models'
constructor keywords and their defaults (the paper's configuration):
``painformer.models.mixer`` takes its defaults from them and checks its
keywords through them, and ``painformer.train.config`` checks an experiment's
``model`` / ``video_encoder`` mapping by building them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# ``fourier``: the paper's Perceiver features, frequencies up to ``max_freq / 2`` over positions in
# [-1, 1]; ``nyquist``: the same features with the top frequency at the token grid's Nyquist rate.
POSITION_ENCODINGS = ("fourier", "nyquist")
# ``none``: values as given; ``rms``: each embedding divided by the root mean square of its values.
INPUT_NORMS = ("none", "rms")
# ``scalar``: the paper's tokens, [value, position features]; ``modulated``: the value times each
# position feature appended, so that an evenly spread attention already reads a projection of the
# whole embedding onto the Fourier basis instead of little more than its mean.
TOKEN_FEATURES = ("scalar", "modulated")


def _check_tokens(config: Any) -> None:
    if config.position_encoding not in POSITION_ENCODINGS:
        raise ValueError(
            f"position_encoding must be one of {list(POSITION_ENCODINGS)}, got {config.position_encoding!r}"
        )
    if config.input_norm not in INPUT_NORMS:
        raise ValueError(f"input_norm must be one of {list(INPUT_NORMS)}, got {config.input_norm!r}")
    if config.token_features not in TOKEN_FEATURES:
        raise ValueError(f"token_features must be one of {list(TOKEN_FEATURES)}, got {config.token_features!r}")
    for name in ("num_latents", "latent_dim", "cross_dim_head", "ff_mult", "num_freq_bands", "output_dim"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class MixerConfig:
    """``EmbeddingMixer`` keywords; the defaults are the paper's configuration (Table I)."""

    num_classes: int = 2
    num_latents: int = 256
    latent_dim: int = 320
    cross_heads: int = 1
    cross_dim_head: int = 320
    self_heads: int = 8
    self_dim_head: int = 40
    depth: int = 2
    self_per_cross: int = 2
    ff_mult: int = 4
    num_freq_bands: int = 6
    max_freq: float = 10.0
    output_dim: int = 512
    dropout: float = 0.0
    attn_dropout: float = 0.0
    position_encoding: str = "fourier"
    input_norm: str = "none"
    token_features: str = "scalar"

    def __post_init__(self) -> None:
        _check_tokens(self)


@dataclass(frozen=True)
class VideoEncoderConfig:
    """``VideoEncoder`` keywords; the defaults are the paper's configuration (Table I)."""

    num_latents: int = 256
    latent_dim: int = 512
    cross_dim_head: int = 64
    ff_mult: int = 4
    num_freq_bands: int = 6
    max_freq: float = 10.0
    output_dim: int = 40
    position_encoding: str = "fourier"
    input_norm: str = "none"
    token_features: str = "scalar"

    def __post_init__(self) -> None:
        _check_tokens(self)


MODEL_CONFIGS = {"EmbeddingMixer": MixerConfig, "VideoEncoder": VideoEncoderConfig}


def config_keywords(class_name: str) -> tuple[str, ...]:
    """Constructor keyword names of ``EmbeddingMixer`` or ``VideoEncoder``, in signature order."""
    return tuple(f.name for f in dataclasses.fields(MODEL_CONFIGS[class_name]))
