"""U-Net generator for RGB -> thermal image translation (pix2pix family).

The encoder halves the resolution ``depth`` times with strided 4x4
convolutions; the decoder doubles it back with transposed convolutions and
concatenates the encoder feature map of the same resolution (the skip
connections carry the face's geometry, so the network only has to learn the
change of appearance). Input and output are RGB in [-1, 1]; the output passes
through ``tanh``. Any image size that is a multiple of ``2 ** depth`` works,
because every layer is convolutional.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """Constructor settings, stored in checkpoints so a generator can be rebuilt exactly."""

    in_channels: int = 3
    out_channels: int = 3
    depth: int = 4
    base_width: int = 16
    max_width: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")
        if self.base_width < 1 or self.max_width < self.base_width:
            raise ValueError(f"need 1 <= base_width <= max_width, got {self.base_width}, {self.max_width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def width(self, level: int) -> int:
        """Channels after encoder level ``level`` (0-based): doubling, capped at ``max_width``."""
        return min(self.base_width * 2**level, self.max_width)

    def to_dict(self) -> dict:
        return asdict(self)


class _Down(nn.Module):
    """Strided conv halving the resolution; no norm at the outermost and innermost levels."""

    def __init__(self, *, in_channels: int, out_channels: int, normalize: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=not normalize)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True) if normalize else nn.Identity()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class _Up(nn.Module):
    """Transposed conv doubling the resolution, then ReLU (applied before the next layer)."""

    def __init__(self, *, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(self.norm(self.conv(x))))


class UNetGenerator(nn.Module):
    """pix2pix-style U-Net: ``depth`` down steps, ``depth`` up steps with skip connections."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 4,
        base_width: int = 16,
        max_width: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.config = UNetConfig(
            in_channels=in_channels,
            out_channels=out_channels,
            depth=depth,
            base_width=base_width,
            max_width=max_width,
            dropout=dropout,
        )
        cfg = self.config
        self.down = nn.ModuleList()
        previous = in_channels
        for level in range(depth):
            # The outermost layer sees raw pixels and the innermost may be 1x1: neither is normalised.
            normalize = 0 < level < depth - 1
            self.down.append(_Down(in_channels=previous, out_channels=cfg.width(level), normalize=normalize))
            previous = cfg.width(level)
        self.up = nn.ModuleList()
        for level in reversed(range(1, depth)):
            # Input: the previous decoder output, concatenated with the skip (except at the bottom).
            skip = 0 if level == depth - 1 else cfg.width(level)
            self.up.append(_Up(in_channels=cfg.width(level) + skip, out_channels=cfg.width(level - 1), dropout=dropout))
        outer_in = cfg.width(0) * (2 if depth > 1 else 1)
        self.outer = nn.ConvTranspose2d(outer_in, out_channels, kernel_size=4, stride=2, padding=1)

    @classmethod
    def from_config(cls, config: UNetConfig | dict) -> UNetGenerator:
        values = config.to_dict() if isinstance(config, UNetConfig) else dict(config)
        return cls(**values)

    @property
    def size_multiple(self) -> int:
        """Image sides must be a multiple of this."""
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.size_multiple or x.shape[-2] % self.size_multiple:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of {self.size_multiple} (2**depth)")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself is not concatenated with itself
        for layer in self.up:
            x = layer(x)
            x = torch.cat([x, skips.pop()], dim=1)
        return torch.tanh(self.outer(x))
