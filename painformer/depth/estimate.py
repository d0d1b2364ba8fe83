"""RGB frames -> 8-bit depth frames with a Depth Anything model.

Preprocessing follows the model directory's own image processor (target size
with its aspect and multiple-of rules, rescale, mean/std), but runs as one
batched tensor operation on the model's device instead of per image through
PIL: decoded frames are already uint8 arrays, and on a GPU the per-image path
would cost more than the model. When the processor asks for padding, which
this path does not reproduce, the processor itself is called instead.

Normalisation to 0..255: Depth Anything predicts relative inverse depth with an
arbitrary scale and shift per image, so the output has to be stretched to 8
bits. ``normalization="video"`` (the default) uses one minimum and maximum over
all frames of the sample: a face that keeps still keeps its grey levels, and
the frame-to-frame changes the backbone sees are changes of the face, not of
the stretch. ``"frame"`` stretches each frame on its own (maximum contrast per
frame, at the price of flicker). A constant prediction maps to 0. The map is
replicated to three channels because the backbone takes RGB.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

NORMALIZATIONS = ("video", "frame")
OUTPUT_SIZE = 224


def _constrain_to_multiple_of(value: float, multiple: int) -> int:
    rounded = round(value / multiple) * multiple
    if rounded < multiple:
        rounded = math.ceil(value / multiple) * multiple
    return int(rounded)


def _resample_mode(resample) -> str:
    """Torch interpolation mode for a processor's resample setting (PIL code, PIL enum or torchvision mode)."""
    if resample == 2 or "bilinear" in str(resample).lower():
        return "bilinear"
    return "bicubic"


def processor_input_size(processor, height: int, width: int) -> tuple[int, int]:
    """The (height, width) a DPT-style processor resizes a height x width image to."""
    if not getattr(processor, "do_resize", True):
        return height, width
    size = processor.size
    target_h = size["height"] if "height" in size else size["shortest_edge"]
    target_w = size["width"] if "width" in size else size["shortest_edge"]
    scale_h, scale_w = target_h / height, target_w / width
    if getattr(processor, "keep_aspect_ratio", False):
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h
    multiple = int(getattr(processor, "ensure_multiple_of", 1) or 1)
    return _constrain_to_multiple_of(scale_h * height, multiple), _constrain_to_multiple_of(scale_w * width, multiple)


@functools.cache
def _mean_and_std(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: tensors built from Python floats per batch cost a blocking
    # host-to-device copy on a GPU.
    with torch.inference_mode(False):  # cached: must not be an inference tensor
        return tuple(torch.tensor(v, dtype=dtype, device=device).view(1, -1, 1, 1) for v in (mean, std))


def preprocess_frames(frames: torch.Tensor, processor) -> torch.Tensor:
    """uint8 (B, H, W, 3) on any device -> float32 pixel_values (B, 3, h, w) as the processor makes them."""
    x = frames.permute(0, 3, 1, 2).float()
    if getattr(processor, "do_rescale", True):
        x = x * float(processor.rescale_factor)
    height, width = processor_input_size(processor, x.shape[-2], x.shape[-1])
    if (height, width) != tuple(x.shape[-2:]):
        mode = _resample_mode(getattr(processor, "resample", 3))
        shrinking = height < x.shape[-2] or width < x.shape[-1]
        x = F.interpolate(x, size=(height, width), mode=mode, align_corners=False, antialias=shrinking)
    if getattr(processor, "do_normalize", True):
        mean, std = _mean_and_std(
            tuple(map(float, processor.image_mean)), tuple(map(float, processor.image_std)), x.device, x.dtype
        )
        x = (x - mean) / std
    return x


def _pixel_values(batch: np.ndarray, processor, device: torch.device) -> torch.Tensor:
    if getattr(processor, "do_pad", False):
        return processor(images=list(batch), return_tensors="pt")["pixel_values"].to(device)
    return preprocess_frames(torch.from_numpy(np.ascontiguousarray(batch)).to(device), processor)


@torch.no_grad()
def predict_depth(frames: np.ndarray, model, processor, device: torch.device, batch_size: int) -> np.ndarray:
    """Raw relative depth, float32 (N, 224, 224), bilinearly resized from the model's output grid."""
    device = torch.device(device)
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        autocast = torch.autocast("cuda", dtype=dtype)
    else:
        autocast = torch.autocast("cpu", enabled=False)  # float32 on CPU
    outputs = []
    for start in range(0, len(frames), batch_size):
        pixel_values = _pixel_values(frames[start : start + batch_size], processor, device)
        with autocast:
            depth = model(pixel_values=pixel_values).predicted_depth
        depth = F.interpolate(
            depth.float().unsqueeze(1), size=(OUTPUT_SIZE, OUTPUT_SIZE), mode="bilinear", align_corners=False
        ).squeeze(1)
        outputs.append(depth.cpu().numpy())
    return np.concatenate(outputs).astype(np.float32, copy=False)


def depth_to_uint8(depth: np.ndarray, *, normalization: str = "video") -> np.ndarray:
    """float (N, H, W) -> uint8 (N, H, W, 3), min-max stretched per video or per frame (module doc)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown depth normalization {normalization!r}; expected one of {', '.join(NORMALIZATIONS)}")
    depth = depth.astype(np.float64)
    axes = None if normalization == "video" else (1, 2)
    low = depth.min(axis=axes, keepdims=True)
    span = depth.max(axis=axes, keepdims=True) - low
    scaled = np.where(span > 1e-12, (depth - low) / np.where(span > 1e-12, span, 1.0), 0.0)
    grey = np.rint(scaled * 255.0).clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def estimate_depth(
    frames: np.ndarray,
    model,
    processor,
    device: torch.device | str,
    batch_size: int = 16,
    *,
    normalization: str = "video",
) -> np.ndarray:
    """uint8 RGB frames (N, H, W, 3) of one video -> uint8 depth frames (N, 224, 224, 3)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    raw = predict_depth(frames, model, processor, torch.device(device), batch_size)
    return depth_to_uint8(raw, normalization=normalization)
