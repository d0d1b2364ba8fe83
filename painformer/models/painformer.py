"""PainFormer: the hierarchical spectral/self-attention backbone (paper III-A1).

The architecture follows the authors' published checkpoint, so that its
``state_dict`` keys and shapes load unchanged (373 tensors, 19.60 M parameters
without a head):

- a convolutional stem (7x7/2 conv + two 3x3 convs, BatchNorm and ReLU, then a
  3x3/2 projection) gives 56x56 tokens of width 64;
- four stages of widths (64, 128, 320, 160) and depths (3, 4, 12, 3) on grids
  56, 28, 14, 7; stages 1-2 mix tokens with a learnable spectral gate (FFT ->
  complex filter -> inverse FFT), stages 3-4 with multi-head self-attention;
- every block is ``x + mix(norm1(x))`` then ``x + mlp(norm2(x))``, the MLP being
  fc1 -> depthwise 3x3 conv on the token grid -> GELU -> fc2;
- the head prepends the mean token as a class token, runs one class-attention
  block and takes the normalised class token: the 160-d embedding.

The module keeps timm's feature API: ``forward_features`` returns the stage-4
tokens, ``forward_head`` the pooled embedding (or class logits when a
classifier head is configured), ``num_features`` is 160.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from painformer.models.preprocess import PAINFORMER_INPUT_SIZE, PAINFORMER_MEAN, PAINFORMER_STD

EMBEDDING_DIM = 160

LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)


class ConvStem(nn.Module):
    """Stage-1 patch embedding: (B, 3, 224, 224) -> (B, 56*56, out_dim)."""

    def __init__(self, *, in_chans: int = 3, hidden_dim: int = 64, out_dim: int = 64):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_chans, hidden_dim, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(hidden_dim, out_dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(self.conv(x))
        _, _, height, width = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        return self.norm(x), height, width


class Downsample(nn.Module):
    """Stages 2-4 patch embedding: a 3x3/2 conv halving the grid, then LayerNorm."""

    def __init__(self, *, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        _, _, height, width = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        return self.norm(x), height, width


class SpectralGating(nn.Module):
    """Token mixing in the frequency domain with a learnable complex filter (Eqs. 4-6)."""

    def __init__(self, *, dim: int, grid: int):
        super().__init__()
        self.grid = grid
        # Stored as (real, imag) pairs: the published checkpoint's layout.
        self.complex_weight = nn.Parameter(torch.randn(grid, grid // 2 + 1, dim, 2) * 0.02)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, tokens, channels = x.shape
        dtype = x.dtype
        # FFTs run in float32 whatever the autocast dtype: half-precision FFTs are
        # restricted to power-of-two sizes and lose the filter's precision.
        x = x.view(batch, height, width, channels).to(torch.float32)  # (B, H, W, C)
        spectrum = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")  # (B, H, W//2+1, C)
        # contiguous(): a model moved to channels_last memory stores this 4-D
        # parameter permuted, which view_as_complex cannot read.
        spectrum = spectrum * torch.view_as_complex(self.complex_weight.float().contiguous())
        x = torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm="ortho")
        return x.reshape(batch, tokens, channels).to(dtype)  # (B, N, C)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate query and key/value projections (Eq. 8)."""

    def __init__(self, *, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)
        self.attention_map: torch.Tensor | None = None
        self.keep_attention = False

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, tokens, channels = x.shape
        q = self.q(x).reshape(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, N, d)
        kv = self.kv(x).reshape(batch, tokens, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)  # each (B, h, N, d)
        if self.keep_attention:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, h, N, N)
            self.attention_map = attn.detach()
            x = attn @ v
        else:
            x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(batch, tokens, channels)  # (B, N, C)
        return self.proj(x)


class DepthwiseConv(nn.Module):
    """3x3 depthwise convolution applied on the token grid."""

    def __init__(self, *, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, tokens, channels = x.shape
        x = x.transpose(1, 2).reshape(batch, channels, height, width)  # (B, C, H, W)
        return self.dwconv(x).flatten(2).transpose(1, 2)  # (B, N, C)


class ConvMlp(nn.Module):
    """fc1 -> depthwise conv -> GELU -> fc2 (Eq. 7)."""

    def __init__(self, *, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DepthwiseConv(dim=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), height, width)))


class Block(nn.Module):
    """One PainFormer layer: token mixing (spectral or attention) then the conv MLP."""

    def __init__(
        self,
        *,
        dim: int,
        mixer: str,
        grid: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path: float = 0.0,
    ):
        super().__init__()
        # Attribute order fixes the state-dict order of the published checkpoint.
        self.norm1 = LayerNorm6(dim)
        self.norm2 = LayerNorm6(dim)
        if mixer == "spectral":
            self.attn: nn.Module = SpectralGating(dim=dim, grid=grid)
        elif mixer == "attention":
            self.attn = SelfAttention(dim=dim, num_heads=num_heads)
        else:
            raise ValueError(f"unknown token mixer {mixer!r}")
        self.mlp = ConvMlp(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class ClassAttention(nn.Module):
    """The class token (first token) attends to every token; only it is updated."""

    def __init__(self, *, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.kv = nn.Linear(dim, dim * 2)
        self.q = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, channels = x.shape
        kv = self.kv(x).reshape(batch, tokens, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)  # each (B, h, N, d)
        q = self.q(x[:, :1]).reshape(batch, 1, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, 1, d)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, h, 1, N)
        cls = (attn @ v).transpose(1, 2).reshape(batch, 1, channels)  # (B, 1, C)
        return self.proj(cls)


class ClassBlock(nn.Module):
    """Class-attention block of the head: attention then a plain FFN, class token only."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = LayerNorm6(dim)
        self.norm2 = LayerNorm6(dim)
        self.attn = ClassAttention(dim=dim, num_heads=num_heads)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.act = nn.GELU()
        self.mlp.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x[:, :1] + self.attn(self.norm1(x))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)


class PainFormer(nn.Module):
    """The PainFormer backbone; ``embed`` maps (B, 3, 224, 224) to (B, 160)."""

    def __init__(
        self,
        *,
        in_chans: int = 3,
        img_size: int = PAINFORMER_INPUT_SIZE,
        embed_dims: Sequence[int] = (64, 128, 320, 160),
        depths: Sequence[int] = (3, 4, 12, 3),
        num_heads: Sequence[int] = (2, 4, 10, 16),
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        mixers: Sequence[str] = ("spectral", "spectral", "attention", "attention"),
        stem_hidden_dim: int = 64,
        num_classes: int = 0,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.num_stages = len(depths)
        self.num_features = self.embed_dim = embed_dims[-1]
        self.num_classes = num_classes
        drop_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        grid = img_size // 4
        start = 0
        for stage, (dim, depth) in enumerate(zip(embed_dims, depths), start=1):
            if stage == 1:
                patch_embed: nn.Module = ConvStem(in_chans=in_chans, hidden_dim=stem_hidden_dim, out_dim=dim)
            else:
                patch_embed = Downsample(in_dim=embed_dims[stage - 2], out_dim=dim)
                grid = math.ceil(grid / 2)
            blocks = nn.ModuleList(
                Block(
                    dim=dim,
                    mixer=mixers[stage - 1],
                    grid=grid,
                    num_heads=num_heads[stage - 1],
                    mlp_ratio=mlp_ratios[stage - 1],
                    drop_path=drop_rates[start + i],
                )
                for i in range(depth)
            )
            start += depth
            setattr(self, f"patch_embed{stage}", patch_embed)
            setattr(self, f"block{stage}", blocks)
            setattr(self, f"norm{stage}", LayerNorm6(dim))
        self.post_network = nn.ModuleList(
            [ClassBlock(dim=embed_dims[-1], num_heads=num_heads[-1], mlp_ratio=mlp_ratios[-1])]
        )
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                module.bias.data.zero_()

    # -- attention maps ----------------------------------------------------------
    def attention_modules(self) -> list[SelfAttention]:
        """The self-attention modules of stages 3-4, in forward order (Fig. 5)."""
        return [m for m in self.modules() if isinstance(m, SelfAttention)]

    # -- feature API -------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> stage-4 tokens (B, N4, 160), N4 = 49 at 224x224."""
        batch = x.shape[0]
        for stage in range(1, self.num_stages + 1):
            x, height, width = getattr(self, f"patch_embed{stage}")(x)
            for block in getattr(self, f"block{stage}"):
                x = block(x, height, width)
            if stage != self.num_stages:
                x = getattr(self, f"norm{stage}")(x)
                x = x.reshape(batch, height, width, -1).permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)
        return x

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Stage-4 tokens -> the 160-d embedding (``pre_logits``) or class logits."""
        cls = tokens.mean(dim=1, keepdim=True)  # (B, 1, C)
        x = torch.cat([cls, tokens], dim=1)  # (B, 1+N, C)
        for block in self.post_network:
            x = block(x)
        embedding = getattr(self, f"norm{self.num_stages}")(x[:, 0])
        return embedding if pre_logits else self.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (B, 3, 224, 224) images -> (B, 160) embeddings."""
        return self.forward_head(self.forward_features(x), pre_logits=True)

    def embed_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Embeddings plus the self-attention maps of the same forward pass.

        Returns ``(embedding (B, 160), maps)`` where ``maps`` lists, in forward
        order, each stage-3 block's (B, 10, 196, 196) and each stage-4 block's
        (B, 16, 49, 49) softmax attention (rows sum to one).
        """
        modules = self.attention_modules()
        for module in modules:
            module.keep_attention = True
        try:
            embedding = self.embed(x)
            maps = [module.attention_map for module in modules]
        finally:
            for module in modules:
                module.keep_attention = False
                module.attention_map = None
        return embedding, maps


# timm's default config: the input pipeline of the published checkpoint. It names no download
# location because the weights are distributed by the authors on request, not by a hub; a local
# file is given with ``pretrained_cfg_overlay=dict(file=PATH)``.
default_cfgs = generate_default_cfgs(
    {
        "painformer": {
            "input_size": (3, PAINFORMER_INPUT_SIZE, PAINFORMER_INPUT_SIZE),
            "fixed_input_size": False,
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            "mean": PAINFORMER_MEAN,
            "std": PAINFORMER_STD,
            "num_classes": 0,
            "first_conv": "patch_embed1.conv.0",
            "classifier": "head",
            "license": "see the authors' release of the PainFormer checkpoint",
        }
    }
)


def _checkpoint_filter(state: dict, model: PainFormer) -> dict:
    """The same unwrapping and fit checks as ``load_painformer``, for timm's pretrained loader."""
    from painformer.models.loading import _extract_state_dict, check_state_dict

    source = str(model.pretrained_cfg.get("file") or "checkpoint")
    return check_state_dict(model, _extract_state_dict(state, Path(source)), source)


def _create(pretrained: bool = False, **kwargs) -> PainFormer:
    from painformer.errors import CheckpointError
    from painformer.utils import sha256_file

    kwargs.pop("cache_dir", None)
    file = None
    if pretrained:
        overlay = kwargs.get("pretrained_cfg_overlay") or {}
        file = overlay.get("file")
        if not file:
            raise CheckpointError(
                "painformer weights cannot be downloaded; pass the local checkpoint with "
                "timm.create_model('painformer', pretrained=True, pretrained_cfg_overlay=dict(file=PATH)) "
                "or use painformer.models.load_painformer(checkpoint=PATH)"
            )
        if not Path(file).is_file():
            raise CheckpointError(f"{file}: checkpoint file not found")
    try:
        model = build_model_with_cfg(
            PainFormer, "painformer", pretrained, pretrained_filter_fn=_checkpoint_filter, **kwargs
        )
    except CheckpointError:
        raise
    except Exception as error:  # torch raises several types for corrupt files
        if file is None:
            raise
        raise CheckpointError(f"{file}: cannot read checkpoint ({error})") from error
    if file is not None:
        model.checkpoint_sha256 = sha256_file(Path(file))
    return model


@register_model
def painformer(pretrained: bool = False, **kwargs) -> PainFormer:
    """PainFormer as published: 19.60 M parameters, 160-d embedding."""
    return _create(pretrained, **kwargs)
