"""Augmentations of embedding vectors for the pain task (paper III-E).

- *Basic*: with probability ``p`` a sample's vector is negated (polarity
  inversion) and Gaussian noise of standard deviation ``noise_std`` is added.
- *Masking*: with probability ``p`` a contiguous run covering a fraction drawn
  uniformly from ``mask_range`` of the vector is set to zero, at a uniformly
  random position.

Every random draw comes from the ``generator`` passed in (a CPU generator),
so one seed fixes the augmentations whatever device the batch lives on.
"""

from __future__ import annotations

import torch


def basic(x: torch.Tensor, *, p: float, noise_std: float, generator: torch.Generator) -> torch.Tensor:
    """(B, D) -> (B, D): the chosen rows become ``-x + N(0, noise_std^2)``, the others are unchanged."""
    if p <= 0.0:
        return x
    batch, dim = x.shape
    chosen = torch.rand(batch, generator=generator) < p  # (B,)
    noise = torch.randn(batch, dim, generator=generator) * noise_std  # (B, D), drawn whatever is chosen
    chosen = chosen.to(x.device)
    augmented = -x + noise.to(device=x.device, dtype=x.dtype)
    return torch.where(chosen[:, None], augmented, x)


def mask_lengths(dim: int, fractions: torch.Tensor) -> torch.Tensor:
    """Run lengths for mask fractions of a ``dim``-long vector: round(fraction x dim), at least 1."""
    return torch.clamp(torch.round(fractions * dim).to(torch.int64), min=1, max=dim)


def masking(x: torch.Tensor, *, p: float, mask_range: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(B, D) -> (B, D): in the chosen rows a contiguous run of ~fraction x D values is set to 0."""
    if p <= 0.0:
        return x
    batch, dim = x.shape
    low, high = mask_range
    chosen = torch.rand(batch, generator=generator) < p  # (B,)
    fractions = low + (high - low) * torch.rand(batch, generator=generator)  # (B,)
    lengths = mask_lengths(dim, fractions)  # (B,)
    starts = (torch.rand(batch, generator=generator) * (dim - lengths + 1)).to(torch.int64)  # (B,) in [0, D - len]
    positions = torch.arange(dim)[None, :]  # (1, D)
    run = (positions >= starts[:, None]) & (positions < (starts + lengths)[:, None]) & chosen[:, None]  # (B, D)
    return x.masked_fill(run.to(x.device), 0.0)


def augment_streams(
    streams: dict[str, torch.Tensor],
    *,
    basic_p: float,
    noise_std: float,
    masking_p: float,
    mask_range: tuple[float, float],
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Basic then Masking on each stream, each stream drawing its own decisions (in name order)."""
    out = {}
    for name in sorted(streams):
        values = basic(streams[name], p=basic_p, noise_std=noise_std, generator=generator)
        out[name] = masking(values, p=masking_p, mask_range=mask_range, generator=generator)
    return out
