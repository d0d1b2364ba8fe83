"""The Embedding-Mixer and the Video-Encoder: Perceiver-style latent models (paper III-A2, III-A3).

Both read an embedding of any length L (160 for one PainFormer embedding, 200 for
a GSR + video fusion, 22,080 for 138 video frames x 160) as a sequence of L
scalar tokens. Each token carries its value and Fourier features of its index,
so one set of weights serves every input length. A learned array of 256
latents cross-attends to the tokens (1 head); the Embedding-Mixer's latents
then self-attend (8 heads). Every attention is followed by a GEGLU feed-forward
(the paper's MLP-3). The output is the mean over latents, LayerNorm and a
linear map.

Cost accounting (Table I, verified by measurement): multiply-accumulates of
linear and convolution layers only; attention products are not counted; the
input is the longest embedding the model meets, L = 22,080.

- ``VideoEncoder()``: 1 cross-attention (head dim 64), no self-attention,
  latent width 512, output 40 -> 3.373 M parameters and 0.862 G MACs, Table I's
  3.37 M / 0.86 G.
- ``EmbeddingMixer()``: 2 layers of (1 cross + 2 self-attention). No public
  configuration reproduces Table I's 9.85 M / 2.94 G exactly. Keeping the
  GEGLU ratio 4 and giving every attention an inner width equal to the latent
  width (the d x d projections of Eq. 8: 1 cross head of 320, 8 self heads of
  40), latent width 320 comes closest: 9.71 M parameters (-1.4 %) and 2.81 G
  MACs (-4.5 %) at L = 22,080 (2.41 G, -18 %, at L = 160, so Table I's FLOPs
  are those of the 22,080-long video embedding). Head dims of 64 instead give
  10.35 M / 2.66 G; a latent width of 512 about 23 M.

Execution differs from the counted formulation only in how cross-attention is
associated (see ``Attention``): the function is the same, the cost at long
inputs far lower.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from painformer.model_config import (
    INPUT_NORMS,
    POSITION_ENCODINGS,
    TOKEN_FEATURES,
    MixerConfig,
    VideoEncoderConfig,
)
from painformer.models.registry import register_model


def fourier_position_features(
    length: int,
    *,
    num_freq_bands: int,
    max_freq: float,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Fourier features of token indices: (length, 1 + 2 * num_freq_bands).

    Index positions are spread over [-1, 1]; each position p gives
    ``[p, sin(pi f p)..., cos(pi f p)...]`` for ``num_freq_bands`` frequencies f
    linearly spaced in [1, max_freq / 2] (the Perceiver encoding).
    """
    positions = torch.linspace(-1.0, 1.0, steps=length, device=device, dtype=torch.float32)
    frequencies = torch.linspace(1.0, max_freq / 2, steps=num_freq_bands, device=device, dtype=torch.float32)
    angles = positions[:, None] * frequencies[None, :] * math.pi  # (L, bands)
    features = torch.cat([positions[:, None], angles.sin(), angles.cos()], dim=-1)  # (L, 1 + 2*bands)
    return features.to(dtype)


# Keeps an all-zero embedding finite under ``input_norm: rms`` (values are then all zero).
RMS_EPS = 1e-12


def scalar_tokens(
    x: torch.Tensor,
    *,
    num_freq_bands: int,
    max_freq: float,
    position_encoding: str = "fourier",
    input_norm: str = "none",
    token_features: str = "scalar",
) -> torch.Tensor:
    """(B, L) embedding -> (B, L, C) tokens: [value, position features...], C = 2 + 2 * num_freq_bands.

    ``token_features: modulated`` appends the value times each position
    feature (C = 3 + 4 * num_freq_bands). Attention spread evenly over the
    tokens, as at initialisation, then averages ``value x features``: the
    embedding projected onto the Fourier basis, which a linear head can read.
    With the paper's ``scalar`` tokens the same average carries little more
    than the embedding's mean, and the latents must first learn to attend to
    single positions before any dimension can be told from another.

    ``input_norm: rms`` divides each embedding by the root mean square of its L
    values first, which makes the tokens, hence the model, blind to a positive
    constant factor of the input (a sum of 300 frame embeddings reads like one).
    """
    if x.ndim != 2:
        raise ValueError(f"expected a (batch, length) tensor, got shape {tuple(x.shape)}")
    batch, length = x.shape
    if input_norm == "rms":
        x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + RMS_EPS)
    elif input_norm != "none":
        raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
    if position_encoding not in POSITION_ENCODINGS:
        raise ValueError(f"position_encoding must be one of {POSITION_ENCODINGS}, got {position_encoding!r}")
    # nyquist: the highest band is the token grid's Nyquist frequency, whatever the length.
    top_freq = float(length) if position_encoding == "nyquist" else max_freq
    positions = fourier_position_features(
        length, num_freq_bands=num_freq_bands, max_freq=top_freq, device=x.device, dtype=x.dtype
    )
    values = x.unsqueeze(-1)  # (B, L, 1)
    positions = positions.expand(batch, length, -1)  # (B, L, 1 + 2*bands)
    if token_features == "scalar":
        return torch.cat([values, positions], dim=-1)  # (B, L, C)
    if token_features == "modulated":
        return torch.cat([values, positions, values * positions], dim=-1)  # (B, L, C)
    raise ValueError(f"token_features must be one of {TOKEN_FEATURES}, got {token_features!r}")


def token_width(num_freq_bands: int, token_features: str) -> int:
    """Channels of one token: the value, then 1 + 2 * bands position features (times two when modulated)."""
    position_width = 1 + 2 * num_freq_bands
    return 1 + position_width * (2 if token_features == "modulated" else 1)


class Attention(nn.Module):
    """Pre-normalised multi-head attention of latents to a context (cross) or to themselves (self).

    With ``context_dim`` set, keys and values come from the normalised context
    tokens; otherwise from the normalised latents.

    Cross-attention to narrow tokens runs *factored*: keys and values are linear
    in the C-channel normalised tokens u (``k = u W_k^T``, ``v = u W_v^T``, no
    bias), so ``q k^T = (q W_k) u^T`` and ``softmax(.) v = (softmax(.) u) W_v^T``.
    Attending in the C = 14 token space instead of the head space (64-320) is
    the same function up to float rounding, but never materialises the
    (B, L, 2 x inner) keys/values and cuts the attention products by
    inner / C: at L = 22,080 this is what makes batch-32 training fit on a CPU.
    ``factored = False`` runs the textbook formulation (the one Table I counts).
    """

    def __init__(
        self,
        *,
        query_dim: int,
        context_dim: int | None = None,
        heads: int,
        dim_head: int,
        attn_dropout: float = 0.0,
    ):
        super().__init__()
        inner_dim = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.attn_dropout = attn_dropout
        self.norm = nn.LayerNorm(query_dim)
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(context_dim or query_dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, query_dim)
        self.factored = context_dim is not None and context_dim < dim_head

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = t.shape
        return t.view(batch, tokens, self.heads, self.dim_head).transpose(1, 2)  # (B, h, T, d)

    def _attend_factored(self, q: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Attention computed in the token space; q (B, h, N, d), source (B, L, C) -> (B, h, N, d)."""
        w_k, w_v = self.to_kv.weight.chunk(2, dim=0)  # each (h*d, C)
        w_k = w_k.view(self.heads, self.dim_head, -1)  # (h, d, C)
        w_v = w_v.view(self.heads, self.dim_head, -1)  # (h, d, C)
        channels = source.shape[-1]
        # Zero channels leave every dot product unchanged; a width that is a multiple
        # of 8 keeps CUDA's fused attention kernels eligible (they need aligned head dims).
        padding = (0, -channels % 8)
        q_tokens = F.pad(q @ w_k, padding)  # (B, h, N, C')
        u = F.pad(source, padding).unsqueeze(1).expand(-1, self.heads, -1, -1)  # (B, h, L, C')
        mixed = F.scaled_dot_product_attention(
            q_tokens,
            u,
            u,
            dropout_p=self.attn_dropout if self.training else 0.0,
            scale=self.dim_head**-0.5,
        )  # (B, h, N, C')
        return mixed[..., :channels] @ w_v.transpose(1, 2)  # (B, h, N, d)

    def forward(self, latents: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        batch, num_latents, _ = latents.shape
        queries = self.norm(latents)
        if self.norm_context is not None:
            if context is None:
                raise ValueError("cross-attention needs a context")
            source = self.norm_context(context)
        else:
            source = queries
        q = self._split_heads(self.to_q(queries))  # (B, h, N, d)
        if self.factored:
            out = self._attend_factored(q, source)
        else:
            k, v = (self._split_heads(t) for t in self.to_kv(source).chunk(2, dim=-1))  # each (B, h, L, d)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(batch, num_latents, self.heads * self.dim_head)  # (B, N, h*d)
        return self.to_out(out)


def set_factored_attention(model: nn.Module, enabled: bool) -> None:
    """Switch every narrow-context cross-attention of ``model`` between factored and textbook execution."""
    for module in model.modules():
        if isinstance(module, Attention) and module.norm_context is not None:
            module.factored = enabled and module.norm_context.normalized_shape[0] < module.dim_head


class GEGLUFeedForward(nn.Module):
    """Pre-normalised GEGLU feed-forward (MLP-3): Linear to 2 x mult x dim, value * GELU(gate), Linear back."""

    def __init__(self, *, dim: int, mult: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mult * 2)
        self.fc2 = nn.Linear(dim * mult, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc1(self.norm(x)).chunk(2, dim=-1)
        return self.fc2(value * F.gelu(gate))


class LatentLayer(nn.Module):
    """One Perceiver layer: cross-attention + FFN, then ``self_per_cross`` (self-attention + FFN)."""

    def __init__(
        self,
        *,
        latent_dim: int,
        context_dim: int,
        cross_heads: int,
        cross_dim_head: int,
        self_heads: int,
        self_dim_head: int,
        self_per_cross: int,
        ff_mult: int,
        attn_dropout: float,
    ):
        super().__init__()
        self.cross_attn = Attention(
            query_dim=latent_dim,
            context_dim=context_dim,
            heads=cross_heads,
            dim_head=cross_dim_head,
            attn_dropout=attn_dropout,
        )
        self.cross_ff = GEGLUFeedForward(dim=latent_dim, mult=ff_mult)
        self.self_blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "attn": Attention(
                        query_dim=latent_dim, heads=self_heads, dim_head=self_dim_head, attn_dropout=attn_dropout
                    ),
                    "ff": GEGLUFeedForward(dim=latent_dim, mult=ff_mult),
                }
            )
            for _ in range(self_per_cross)
        )

    def forward(self, latents: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        latents = latents + self.cross_attn(latents, tokens)
        latents = latents + self.cross_ff(latents)
        for block in self.self_blocks:
            latents = latents + block["attn"](latents)
            latents = latents + block["ff"](latents)
        return latents


class LatentEncoder(nn.Module):
    """Shared Perceiver trunk: (B, L) embedding -> (B, output_dim) via latents, mean, LayerNorm, Linear."""

    def __init__(
        self,
        *,
        num_latents: int,
        latent_dim: int,
        cross_heads: int,
        cross_dim_head: int,
        self_heads: int,
        self_dim_head: int,
        depth: int,
        self_per_cross: int,
        ff_mult: int,
        num_freq_bands: int,
        max_freq: float,
        output_dim: int,
        attn_dropout: float,
        position_encoding: str = "fourier",
        input_norm: str = "none",
        token_features: str = "scalar",
    ):
        super().__init__()
        self.num_freq_bands = num_freq_bands
        self.max_freq = max_freq
        self.position_encoding = position_encoding
        self.input_norm = input_norm
        self.token_features = token_features
        self.token_dim = token_width(num_freq_bands, token_features)
        self.latents = nn.Parameter(torch.empty(num_latents, latent_dim))
        self.layers = nn.ModuleList(
            LatentLayer(
                latent_dim=latent_dim,
                context_dim=self.token_dim,
                cross_heads=cross_heads,
                cross_dim_head=cross_dim_head,
                self_heads=self_heads,
                self_dim_head=self_dim_head,
                self_per_cross=self_per_cross,
                ff_mult=ff_mult,
                attn_dropout=attn_dropout,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(latent_dim)
        self.proj = nn.Linear(latent_dim, output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal (std 0.02) latents and linear weights, zero biases, unit LayerNorms."""
        nn.init.trunc_normal_(self.latents, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = scalar_tokens(
            x,
            num_freq_bands=self.num_freq_bands,
            max_freq=self.max_freq,
            position_encoding=self.position_encoding,
            input_norm=self.input_norm,
            token_features=self.token_features,
        )  # (B, L, C)
        latents = self.latents.unsqueeze(0).expand(x.shape[0], -1, -1)  # (B, N, D)
        for layer in self.layers:
            latents = layer(latents, tokens)
        return self.proj(self.norm(latents.mean(dim=1)))  # (B, output_dim)


# Keyword names the constructors hand to their config dataclass (which checks their values).
_MIXER_FIELDS = frozenset(f.name for f in dataclasses.fields(MixerConfig)) - {"num_classes"}
_VIDEO_ENCODER_FIELDS = frozenset(f.name for f in dataclasses.fields(VideoEncoderConfig))


class EmbeddingMixer(nn.Module):
    """The Embedding-Mixer: classifies an embedding of any length (paper III-A2, Fig. 1d).

    Defaults are the paper's configuration: 256 latents, 2 layers of
    (1 cross-attention with 1 head, 2 self-attentions with 8 heads), a 512-d
    output embedding, then a linear classifier. The latent width (320) and
    attention widths (1 cross head of 320, 8 self heads of 40) are the ones
    closest to Table I: 9.71 M parameters and 2.81 G MACs at L = 22,080 against
    9.85 M / 2.94 G (see the module docstring). ``dropout`` (the paper's
    DropOut, 0.0-0.8) acts on the 512-d embedding before the classifier;
    ``attn_dropout`` on attention weights.
    ``num_classes=0`` leaves the classifier out (``forward`` returns features).
    """

    def __init__(
        self,
        num_classes: int = MixerConfig.num_classes,
        *,
        num_latents: int = MixerConfig.num_latents,
        latent_dim: int = MixerConfig.latent_dim,
        cross_heads: int = MixerConfig.cross_heads,
        cross_dim_head: int = MixerConfig.cross_dim_head,
        self_heads: int = MixerConfig.self_heads,
        self_dim_head: int = MixerConfig.self_dim_head,
        depth: int = MixerConfig.depth,
        self_per_cross: int = MixerConfig.self_per_cross,
        ff_mult: int = MixerConfig.ff_mult,
        num_freq_bands: int = MixerConfig.num_freq_bands,
        max_freq: float = MixerConfig.max_freq,
        output_dim: int = MixerConfig.output_dim,
        dropout: float = MixerConfig.dropout,
        attn_dropout: float = MixerConfig.attn_dropout,
        position_encoding: str = MixerConfig.position_encoding,
        input_norm: str = MixerConfig.input_norm,
        token_features: str = MixerConfig.token_features,
    ):
        super().__init__()
        self.config = MixerConfig(
            num_classes=num_classes, **{name: value for name, value in locals().items() if name in _MIXER_FIELDS}
        )
        self.num_classes = num_classes
        self.num_features = output_dim
        self.encoder = LatentEncoder(
            num_latents=num_latents,
            latent_dim=latent_dim,
            cross_heads=cross_heads,
            cross_dim_head=cross_dim_head,
            self_heads=self_heads,
            self_dim_head=self_dim_head,
            depth=depth,
            self_per_cross=self_per_cross,
            ff_mult=ff_mult,
            num_freq_bands=num_freq_bands,
            max_freq=max_freq,
            output_dim=output_dim,
            attn_dropout=attn_dropout,
            position_encoding=position_encoding,
            input_norm=input_norm,
            token_features=token_features,
        )
        self.head_drop = nn.Dropout(dropout)
        self.head: nn.Module = nn.Linear(output_dim, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.head, nn.Linear):
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) embedding -> (B, 512) mixed embedding."""
        return self.encoder(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 512) -> (B, num_classes) logits, with dropout before the classifier."""
        return self.head(self.head_drop(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VideoEncoder(nn.Module):
    """The Video-Encoder: compresses a video embedding (22,080 long) to 40 values (paper III-A3, Fig. 1e).

    Defaults are the paper's configuration: 256 latents of width 512, one
    cross-attention (1 head of dim 64) with a GEGLU feed-forward (ratio 4), no
    self-attention, output mean -> LayerNorm -> Linear to 40: 3.373 M parameters
    and 0.862 G MACs at L = 22,080, Table I's 3.37 M / 0.86 G.
    """

    def __init__(
        self,
        *,
        num_latents: int = VideoEncoderConfig.num_latents,
        latent_dim: int = VideoEncoderConfig.latent_dim,
        cross_dim_head: int = VideoEncoderConfig.cross_dim_head,
        ff_mult: int = VideoEncoderConfig.ff_mult,
        num_freq_bands: int = VideoEncoderConfig.num_freq_bands,
        max_freq: float = VideoEncoderConfig.max_freq,
        output_dim: int = VideoEncoderConfig.output_dim,
        position_encoding: str = VideoEncoderConfig.position_encoding,
        input_norm: str = VideoEncoderConfig.input_norm,
        token_features: str = VideoEncoderConfig.token_features,
    ):
        super().__init__()
        self.config = VideoEncoderConfig(
            **{name: value for name, value in locals().items() if name in _VIDEO_ENCODER_FIELDS}
        )
        self.num_features = output_dim
        self.encoder = LatentEncoder(
            num_latents=num_latents,
            latent_dim=latent_dim,
            cross_heads=1,
            cross_dim_head=cross_dim_head,
            self_heads=1,
            self_dim_head=cross_dim_head,
            depth=1,
            self_per_cross=0,
            ff_mult=ff_mult,
            num_freq_bands=num_freq_bands,
            max_freq=max_freq,
            output_dim=output_dim,
            attn_dropout=0.0,
            position_encoding=position_encoding,
            input_norm=input_norm,
            token_features=token_features,
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) embedding -> (B, 40) encoding."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def _drop_timm_keywords(kwargs: dict) -> dict:
    # timm's create_model passes pretrained-config bookkeeping the models do not take.
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return kwargs


@register_model
def embedding_mixer(pretrained: bool = False, **kwargs) -> EmbeddingMixer:
    """Embedding-Mixer in the paper's configuration (no published weights)."""
    if pretrained:
        raise RuntimeError("embedding_mixer has no published weights; train it with `painformer train`")
    return EmbeddingMixer(**_drop_timm_keywords(kwargs))


@register_model
def video_encoder(pretrained: bool = False, **kwargs) -> VideoEncoder:
    """Video-Encoder in the paper's configuration (no published weights)."""
    if pretrained:
        raise RuntimeError("video_encoder has no published weights; it is trained with the Embedding-Mixer")
    return VideoEncoder(**_drop_timm_keywords(kwargs))
