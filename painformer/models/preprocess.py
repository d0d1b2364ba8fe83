"""Turning uint8 RGB images into the normalised tensors PainFormer expects."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

# Input normalisation of the published checkpoint (VGGFace2 statistics) and its input size.
PAINFORMER_MEAN = (0.6068, 0.4517, 0.3800)
PAINFORMER_STD = (0.2492, 0.2173, 0.2082)
PAINFORMER_INPUT_SIZE = 224

PREPROCESS_PARAMS = {
    "size": PAINFORMER_INPUT_SIZE,
    "resize": "bilinear-antialias",
    "mean": list(PAINFORMER_MEAN),
    "std": list(PAINFORMER_STD),
}


def preprocess(images: np.ndarray | torch.Tensor, *, size: int = PAINFORMER_INPUT_SIZE) -> torch.Tensor:
    """uint8 RGB images (B, H, W, 3) or (H, W, 3) -> normalised float32 (B, 3, size, size).

    Images not already ``size`` x ``size`` are resized (bilinear with
    anti-aliasing; crop beforehand to keep the aspect ratio). Normalisation
    uses the VGGFace2 mean and std of the published checkpoint.
    """
    tensor = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"expected uint8 RGB images, got {tensor.dtype}")
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise ValueError(f"expected (B, H, W, 3) RGB images, got shape {tuple(tensor.shape)}")
    x = tensor.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean, std = normalisation_constants(PAINFORMER_MEAN, PAINFORMER_STD, x.device, x.dtype)
    return (x - mean) / std


@functools.cache
def normalisation_constants(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, C, 1, 1) mean and std tensors, made once per device and dtype.

    Building them per batch from Python floats costs a host-to-device copy on a GPU,
    which waits for the copy engine: a stall between batches.
    """
    shape = (1, len(mean), 1, 1)
    # Normal tensors even when first asked for under inference_mode: a cached inference
    # tensor could not be saved for backward by a later caller that needs input gradients.
    with torch.inference_mode(False):
        return (
            torch.tensor(mean, dtype=dtype, device=device).view(shape),
            torch.tensor(std, dtype=dtype, device=device).view(shape),
        )
