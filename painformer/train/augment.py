"""Augmentations of embedding vectors for the pain task (paper III-E).

- *Basic*: with probability ``p`` a sample's vector is negated (polarity
  inversion) and Gaussian noise of standard deviation ``noise_std`` is added.
- *Masking*: with probability ``p`` a contiguous run covering a fraction drawn
  uniformly from ``mask_range`` of the vector is set to zero, at a uniformly
  random position.

Every random draw comes from the ``generator`` passed in, on that generator's
device: training passes a generator on the training device, so a step never
copies random numbers from the host. Drawing (``draw_*``) is separate from
applying (``apply_*``) so that a stacked trainer can draw each fold's numbers
from the fold's own generator and apply all folds' draws in one batched op.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StreamDraws:
    """One stream's augmentation draws for a batch: Basic choice and noise, the Masking run."""

    inverted: torch.Tensor | None  # (B,) bool, or None when Basic is off
    noise: torch.Tensor | None  # (B, D) float, already scaled by noise_std
    masked: torch.Tensor | None  # (B, D) bool, True where Masking zeroes a value


def draw_basic(batch: int, dim: int, *, p: float, noise_std: float, generator: torch.Generator):
    """(chosen (B,) bool, noise (B, D)) or (None, None) when ``p`` is 0 (then nothing is drawn)."""
    if p <= 0.0:
        return None, None
    device = generator.device
    chosen = torch.rand(batch, generator=generator, device=device) < p  # (B,)
    noise = torch.randn(batch, dim, generator=generator, device=device) * noise_std  # drawn whatever is chosen
    return chosen, noise


def apply_basic(x: torch.Tensor, chosen: torch.Tensor | None, noise: torch.Tensor | None) -> torch.Tensor:
    if chosen is None:
        return x
    return torch.where(chosen[..., None], -x + noise.to(dtype=x.dtype), x)


def basic(x: torch.Tensor, *, p: float, noise_std: float, generator: torch.Generator) -> torch.Tensor:
    """(B, D) -> (B, D): the chosen rows become ``-x + N(0, noise_std^2)``, the others are unchanged."""
    chosen, noise = draw_basic(x.shape[0], x.shape[1], p=p, noise_std=noise_std, generator=generator)
    if chosen is None:
        return x
    return apply_basic(x, chosen.to(x.device), noise.to(x.device))


def mask_lengths(dim: int, fractions: torch.Tensor) -> torch.Tensor:
    """Run lengths for mask fractions of a ``dim``-long vector: round(fraction x dim), at least 1."""
    return torch.clamp(torch.round(fractions * dim).to(torch.int64), min=1, max=dim)


def draw_masking(
    batch: int, dim: int, *, p: float, mask_range: tuple[float, float], generator: torch.Generator
) -> torch.Tensor | None:
    """(B, D) bool, True on the zeroed run of each chosen row; None when ``p`` is 0 (nothing drawn)."""
    if p <= 0.0:
        return None
    device = generator.device
    low, high = mask_range
    chosen = torch.rand(batch, generator=generator, device=device) < p  # (B,)
    fractions = low + (high - low) * torch.rand(batch, generator=generator, device=device)  # (B,)
    lengths = mask_lengths(dim, fractions)  # (B,)
    starts = (torch.rand(batch, generator=generator, device=device) * (dim - lengths + 1)).to(torch.int64)
    positions = torch.arange(dim, device=device)[None, :]  # (1, D)
    return (positions >= starts[:, None]) & (positions < (starts + lengths)[:, None]) & chosen[:, None]  # (B, D)


def apply_masking(x: torch.Tensor, run: torch.Tensor | None) -> torch.Tensor:
    return x if run is None else x.masked_fill(run, 0.0)


def masking(x: torch.Tensor, *, p: float, mask_range: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(B, D) -> (B, D): in the chosen rows a contiguous run of ~fraction x D values is set to 0."""
    run = draw_masking(x.shape[0], x.shape[1], p=p, mask_range=mask_range, generator=generator)
    return apply_masking(x, None if run is None else run.to(x.device))


def draw_augmentations(
    batch: int,
    dims: dict[str, int],
    *,
    basic_p: float,
    noise_std: float,
    masking_p: float,
    mask_range: tuple[float, float],
    generator: torch.Generator,
) -> dict[str, StreamDraws]:
    """Basic then Masking draws for each stream, in name order (the order ``augment_streams`` applies them)."""
    draws = {}
    for name in sorted(dims):
        chosen, noise = draw_basic(batch, dims[name], p=basic_p, noise_std=noise_std, generator=generator)
        run = draw_masking(batch, dims[name], p=masking_p, mask_range=mask_range, generator=generator)
        draws[name] = StreamDraws(inverted=chosen, noise=noise, masked=run)
    return draws


def apply_augmentations(streams: dict[str, torch.Tensor], draws: dict[str, StreamDraws]) -> dict[str, torch.Tensor]:
    """Apply draws (per-batch (B, ...) or stacked (K, B, ...)) to same-shaped streams."""
    out = {}
    for name in sorted(streams):
        item = draws[name]
        out[name] = apply_masking(apply_basic(streams[name], item.inverted, item.noise), item.masked)
    return out


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
    batch = next(iter(streams.values())).shape[0]
    draws = draw_augmentations(
        batch,
        {name: values.shape[1] for name, values in streams.items()},
        basic_p=basic_p,
        noise_std=noise_std,
        masking_p=masking_p,
        mask_range=mask_range,
        generator=generator,
    )
    return apply_augmentations(streams, draws)
