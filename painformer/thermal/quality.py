"""Image-quality measures for generated thermal images: L1, PSNR, SSIM.

All take float tensors in [0, 1] of shape (B, C, H, W) and return one value
per image, so results can be averaged over any set of images. SSIM follows
Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, valid (unpadded) filtering, averaged over channels - the
convention of ``skimage.metrics.structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l1_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).abs().flatten(1).mean(dim=1)


def psnr_per_image(prediction: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for data range 1."""
    mse = (prediction - target).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(eps))


def _gaussian_window(size: int, sigma: float, channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel_1d = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel_1d = kernel_1d / kernel_1d.sum()
    kernel_2d = torch.outer(kernel_1d, kernel_1d)
    return kernel_2d.to(dtype=dtype, device=device).expand(channels, 1, size, size).contiguous()


def ssim_per_image(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity per image (see module doc); images must be >= window_size."""
    if prediction.shape != target.shape or prediction.ndim != 4:
        raise ValueError(f"expected two (B, C, H, W) tensors of equal shape, got {prediction.shape}, {target.shape}")
    if min(prediction.shape[-2:]) < window_size:
        raise ValueError(
            f"images of size {tuple(prediction.shape[-2:])} are smaller than the SSIM window {window_size}"
        )
    x = prediction.to(torch.float64)
    y = target.to(torch.float64)
    channels = x.shape[1]
    window = _gaussian_window(window_size, sigma, channels, x.dtype, x.device)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).to(prediction.dtype)
