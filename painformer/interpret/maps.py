"""Attention maps of the PainFormer backbone (paper section VI, Fig. 5).

The maps come from the softmax attention weights of the self-attention
blocks of stages 3 (12 blocks, 10 heads, 14x14 tokens) and 4 (3 blocks, 16
heads, 7x7 tokens), taken from the same forward pass that computes the
embedding (:meth:`PainFormer.embed_with_attention`).

Method, per image:

1. each block's (heads, N, N) attention is reduced over heads (``mean`` or
   ``max``), giving an (N, N) matrix A whose rows (queries) sum to one;
2. without rollout, a token's importance is the attention it *receives*:
   the mean of A over the queries (column means), one value per key token;
   with rollout (Abnar & Zuidema, 2020), the blocks of a stage are chained as
   ``R = prod_b (A_b + I) / 2`` (rows re-normalised), so attention that flows
   through the residual path is accounted for, and the importance is the
   column mean of R. Rollout stays within a stage: the strided convolution
   between stages 3 and 4 mixes tokens in a way attention weights do not
   describe;
3. a stage's importance (the mean over its blocks, or the rollout's) sums
   to one over its tokens (:func:`token_importance` returns these grids); it
   is upsampled bilinearly to 224x224 and the selected stages are averaged,
   each stage weighing the same whatever its number of blocks;
4. the result is scaled to [0, 1] per image (min-max; a flat map gives 0).

The paper interpolates the stage-4 heads onto the input; ``stages=(4,)``
reproduces that, ``(3, 4)`` (the default) adds the finer 14x14 stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from painformer.models.painformer import PainFormer
from painformer.models.preprocess import preprocess

STAGE_OF_GRID = {196: 3, 49: 4}  # tokens per block at 224x224 -> stage
REDUCTIONS = ("mean", "max")


def _reduce_heads(attention: torch.Tensor, reduce: str) -> torch.Tensor:
    """(B, h, N, N) -> (B, N, N)."""
    if reduce == "mean":
        return attention.mean(dim=1)
    if reduce == "max":
        reduced = attention.amax(dim=1)
        return reduced / reduced.sum(dim=-1, keepdim=True)  # rows sum to one again
    raise ValueError(f"unknown head reduction {reduce!r}; expected one of {REDUCTIONS}")


def _rollout(matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Chain (B, N, N) attention matrices through the residual connections."""
    batch, tokens, _ = matrices[0].shape
    identity = torch.eye(tokens, dtype=matrices[0].dtype, device=matrices[0].device).expand(batch, tokens, tokens)
    result = identity
    for attention in matrices:
        mixed = 0.5 * attention + 0.5 * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed @ result
    return result


def _grid_to_image(importance: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, N) token importance on a square grid -> (B, height, width)."""
    batch, tokens = importance.shape
    side = int(round(tokens**0.5))
    grid = importance.reshape(batch, 1, side, side)
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0]


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = flat.max(dim=1).values.view(-1, 1, 1) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def _check_options(stages: Sequence[int], reduce: str) -> tuple[int, ...]:
    wanted = tuple(sorted(set(int(s) for s in stages)))
    if not wanted or any(s not in (3, 4) for s in wanted):
        raise ValueError(f"stages must be a non-empty subset of (3, 4) (the self-attention stages), got {stages}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown head reduction {reduce!r}; expected one of {REDUCTIONS}")
    return wanted


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def _stage_importance(
    model: PainFormer, batch: torch.Tensor, *, stages: tuple[int, ...], reduce: str, rollout: bool
) -> dict[int, torch.Tensor]:
    """Normalised input batch -> per stage, (B, N) token importance; each row sums to one.

    Column means of a row-stochastic matrix sum to one, and so does their
    mean over a stage's blocks; rollout keeps the rows stochastic.
    """
    _, blocks = model.embed_with_attention(batch)
    per_stage: dict[int, list[torch.Tensor]] = {s: [] for s in stages}
    for attention in blocks:
        stage = STAGE_OF_GRID.get(attention.shape[-1])
        if stage in per_stage:
            per_stage[stage].append(_reduce_heads(attention.float(), reduce))
    importance = {}
    for stage, matrices in per_stage.items():
        if rollout:
            importance[stage] = _rollout(matrices).mean(dim=1)
        else:
            importance[stage] = torch.stack([a.mean(dim=1) for a in matrices]).mean(dim=0)
    return importance


@torch.no_grad()
def token_importance(
    model: PainFormer,
    images: np.ndarray,
    *,
    stages: Sequence[int] = (3, 4),
    reduce: str = "mean",
    rollout: bool = False,
) -> dict[int, np.ndarray]:
    """uint8 RGB images (N, H, W, 3) -> per stage, the token grids before upsampling.

    Stage 3 gives (N, 14, 14), stage 4 (N, 7, 7); every grid sums to one (the
    attention each token receives, as a share of all attention in the stage).
    """
    images = _check_images(images)
    wanted = _check_options(stages, reduce)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        importance = _stage_importance(
            model, preprocess(images).to(device), stages=wanted, reduce=reduce, rollout=rollout
        )
    finally:
        model.train(was_training)
    grids = {}
    for stage, values in importance.items():
        side = int(round(values.shape[1] ** 0.5))
        grids[stage] = values.reshape(len(images), side, side).cpu().numpy()  # (B, side, side)
    return grids


@torch.no_grad()
def attention_maps(
    model: PainFormer,
    images: np.ndarray,
    *,
    stages: Sequence[int] = (3, 4),
    reduce: str = "mean",
    rollout: bool = False,
    batch_size: int = 8,
) -> np.ndarray:
    """uint8 RGB images (N, 224, 224, 3) -> heat maps (N, 224, 224) float32 in [0, 1].

    Images of another size are resized for the backbone and the maps are
    returned at the images' own size.
    """
    images = _check_images(images)
    wanted = _check_options(stages, reduce)
    size = (int(images.shape[1]), int(images.shape[2]))  # maps come back at the images' own size
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(images), batch_size):
            batch = preprocess(images[start : start + batch_size]).to(device)
            importance = _stage_importance(model, batch, stages=wanted, reduce=reduce, rollout=rollout)
            stage_maps = [_grid_to_image(importance[stage], size) for stage in wanted]
            out.append(_normalise(torch.stack(stage_maps).mean(dim=0)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32)


def overlay(images: np.ndarray, heat: np.ndarray, *, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """Blend a colour-mapped heat map onto uint8 RGB images: (N, H, W, 3) or (H, W, 3)."""
    from matplotlib import colormaps

    images = np.asarray(images)
    heat = np.asarray(heat, dtype=np.float32)
    single = images.ndim == 3
    if single:
        images, heat = images[None], heat[None]
    if images.shape[:3] != heat.shape:
        raise ValueError(f"images {images.shape} and heat maps {heat.shape} do not match")
    colours = colormaps[colormap](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0  # (N, H, W, 3)
    blended = (1.0 - alpha) * images.astype(np.float32) + alpha * colours
    result = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return result[0] if single else result
