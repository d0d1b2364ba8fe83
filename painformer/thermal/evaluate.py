"""How good is a trained generator? L1/PSNR/SSIM on held-out pairs versus trivial baselines.

A generator is only worth its cost if it beats images that need no learning:

* ``constant_mean``: every pixel the mean grey level of the training thermal images;
* ``rgb_to_grey``: the RGB input's luma (ITU-R BT.601), replicated to three channels.

Images are compared in [0, 1] at the generator's image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from painformer.errors import InputError
from painformer.thermal.pairs import find_pairs, load_pairs
from painformer.thermal.train import (
    generate,
    load_generator,
    quality_table,
    to_signed,
    to_unit,
)
from painformer.utils import select_device

LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class EvaluationRow:
    method: str
    l1: float
    psnr: float
    ssim: float


@dataclass(frozen=True)
class Evaluation:
    rows: tuple[EvaluationRow, ...]
    n_pairs: int
    split: str
    image_size: int

    def row(self, method: str) -> EvaluationRow:
        return next(r for r in self.rows if r.method == method)

    def format_table(self) -> str:
        lines = [
            f"{self.n_pairs} {self.split} pairs at {self.image_size}x{self.image_size} (L1 lower, PSNR/SSIM higher is better)",
            f"{'method':<16}{'L1':>10}{'PSNR dB':>10}{'SSIM':>10}",
        ]
        for r in self.rows:
            lines.append(f"{r.method:<16}{r.l1:>10.4f}{r.psnr:>10.2f}{r.ssim:>10.4f}")
        return "\n".join(lines)


def rgb_to_grey(rgb_unit: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> its luma replicated to 3 channels."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=rgb_unit.dtype).view(1, 3, 1, 1)
    return (rgb_unit * weights).sum(dim=1, keepdim=True).expand_as(rgb_unit)


def evaluate_generator(
    checkpoint: str | Path,
    pairs_dir: str | Path,
    *,
    split: str = "holdout",
    device: str = "auto",
    batch_size: int = 32,
) -> Evaluation:
    """Score the generator and both baselines on the checkpoint's held-out pairs (or ``split='all'``).

    ``split='holdout'`` needs the pairs folder the generator was trained on: the
    held-out names recorded in the checkpoint must all be found there.
    ``split='all'`` scores every pair, for a separate test folder.
    """
    target = select_device(device)
    generator, content = load_generator(checkpoint, device=target)
    size = int(content["image_size"])
    training = content.get("training", {})
    pairs = find_pairs(pairs_dir)
    if split == "holdout":
        wanted = list(training.get("holdout_names", []))
        if not wanted:
            raise InputError(
                f"{checkpoint}: trained without held-out pairs; evaluate a separate folder with --split all"
            )
        by_name = {p.name: p for p in pairs}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise InputError(
                f"{pairs_dir}: {len(missing)} held-out pairs of {checkpoint} are not there "
                f"(e.g. {', '.join(missing[:5])}); is this the training folder? Use --split all for another one"
            )
        pairs = [by_name[n] for n in wanted]
    elif split != "all":
        raise InputError(f"unknown split {split!r}; expected 'holdout' or 'all'")
    rgb, thermal = load_pairs(pairs, size=size)
    rgb, thermal = torch.from_numpy(rgb), torch.from_numpy(thermal)
    target_unit = to_unit(to_signed(thermal))
    rgb_unit = to_unit(to_signed(rgb))
    generated = generate(generator, rgb, device=target, batch_size=batch_size)
    mean = float(training.get("thermal_mean", 0.5))
    candidates = {
        "generator": generated,
        "constant_mean": torch.full_like(target_unit, mean),
        "rgb_to_grey": rgb_to_grey(rgb_unit),
    }
    rows = tuple(
        EvaluationRow(method=name, **quality_table(images, target_unit)) for name, images in candidates.items()
    )
    return Evaluation(rows=rows, n_pairs=len(pairs), split=split, image_size=size)
