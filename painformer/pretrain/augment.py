"""Pretraining augmentation (paper III-E), built from torchvision's transforms.

Per image, in order:

1. ``RandomResizedCrop`` to 224 (scale ``crop_scale_min``..1) and ``ColorJitter``
   of brightness, contrast and saturation: the paper's custom
   "brightness, contrast, saturation and cropping" augmentation;
2. one of ``TrivialAugmentWide`` or ``AugMix`` chosen at random (the paper
   uses both; applying both to every image would stack two full policies);
3. conversion to float in [0, 1] and ``GaussianNoise`` (clipped to [0, 1]);
4. the backbone's mean/std normalisation;
5. ``RandomErasing`` with a square box (aspect ratio 1) filled with zeros,
   i.e. the dataset-mean colour after normalisation: the paper's "masking
   out random square sections of input images".

Every switch lives in :class:`AugmentSettings`. The random draws come from
torch's global generator, which the trainer seeds and checkpoints.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import v2

from painformer.models.preprocess import PAINFORMER_MEAN, PAINFORMER_STD
from painformer.pretrain.config import AugmentSettings


def build_train_transform(settings: AugmentSettings, *, size: int = 224) -> v2.Compose:
    """uint8 (3, H, W) tensor -> augmented, normalised float32 (3, size, size)."""
    steps: list = []
    if settings.color_crop:
        steps.append(v2.RandomResizedCrop(size, scale=(settings.crop_scale_min, 1.0), antialias=True))
        strength = settings.color_strength
        steps.append(v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength))
    else:
        steps.append(v2.Resize((size, size), antialias=True))
    policies = []
    if settings.trivial_augment:
        policies.append(v2.TrivialAugmentWide())
    if settings.augmix:
        policies.append(v2.AugMix())
    if len(policies) == 2:
        steps.append(v2.RandomChoice(policies))
    elif policies:
        steps.append(policies[0])
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if settings.gaussian_noise_std > 0:
        steps.append(v2.GaussianNoise(mean=0.0, sigma=settings.gaussian_noise_std, clip=True))
    steps.append(v2.Normalize(mean=list(PAINFORMER_MEAN), std=list(PAINFORMER_STD)))
    if settings.square_mask_probability > 0:
        steps.append(
            v2.RandomErasing(p=settings.square_mask_probability, scale=(0.02, 0.15), ratio=(1.0, 1.0), value=0.0)
        )
    return v2.Compose(steps)


def build_eval_transform(*, size: int = 224) -> v2.Compose:
    """uint8 (3, H, W) tensor -> resized, normalised float32 (3, size, size); no randomness."""
    return v2.Compose(
        [
            v2.Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(PAINFORMER_MEAN), std=list(PAINFORMER_STD)),
        ]
    )


def to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) array -> uint8 (3, H, W) tensor, the layout torchvision expects."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)
