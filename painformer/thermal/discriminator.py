"""PatchGAN discriminator on concatenated (RGB, thermal) pairs.

Rather than one real/fake score per image, it scores overlapping patches:
with ``num_layers=3`` each output logit sees a 70x70 input window (the
pix2pix "70x70 PatchGAN"). This judges local texture and leaves global
structure to the L1 term, with far fewer parameters than a full-image critic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class PatchConfig:
    in_channels: int = 6
    base_width: int = 32
    num_layers: int = 3
    max_width: int = 256

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")

    def to_dict(self) -> dict:
        return asdict(self)


class PatchDiscriminator(nn.Module):
    """conv4x4/2 (no norm) -> (num_layers - 1) x conv4x4/2+norm -> conv4x4/1+norm -> conv4x4/1 to 1 logit."""

    def __init__(self, *, in_channels: int = 6, base_width: int = 32, num_layers: int = 3, max_width: int = 256):
        super().__init__()
        self.config = PatchConfig(
            in_channels=in_channels, base_width=base_width, num_layers=num_layers, max_width=max_width
        )
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_width, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        width = base_width
        for index in range(1, num_layers + 1):
            stride = 2 if index < num_layers else 1
            next_width = min(base_width * 2**index, max_width)
            layers += [
                nn.Conv2d(width, next_width, kernel_size=4, stride=stride, padding=1, bias=False),
                nn.InstanceNorm2d(next_width, affine=True),
                nn.LeakyReLU(0.2),
            ]
            width = next_width
        layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def receptive_field(self) -> int:
        """Input pixels seen by one output logit (70 for three layers)."""
        field = 1
        for module in reversed(self.net):
            if isinstance(module, nn.Conv2d):
                field = (field - 1) * module.stride[0] + module.kernel_size[0]
        return field

    def forward(self, rgb: torch.Tensor, thermal: torch.Tensor) -> torch.Tensor:
        """Patch logits (B, 1, h, w) for the pair; both inputs in [-1, 1]."""
        return self.net(torch.cat([rgb, thermal], dim=1))
