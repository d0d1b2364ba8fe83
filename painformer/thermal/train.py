"""Training the RGB -> thermal cGAN (U-Net generator, PatchGAN discriminator).

Loss (pix2pix): the discriminator minimises BCE-with-logits of real pairs
against 1 and generated pairs against 0 (halved); the generator minimises the
adversarial BCE of its pairs against 1 plus ``lambda_l1`` times the L1
distance to the real thermal image. Adam with betas (0.5, 0.999).

Files written beside ``out`` (the final checkpoint):

```
<out>                          generator state dict + constructor config + image size + training metadata
<out>.state/last.pt            G, D, both optimisers, last finished epoch, loss history (resume point)
<out>.losses.tsv               epoch g_l1 g_adv d_loss holdout_l1 holdout_psnr holdout_ssim
<out>.samples/epoch_NNN.png    rows: rgb | generated | target, columns: held-out pairs
```

Determinism: the initial weights come from the seed; each epoch's shuffling
and flips come from a generator seeded with (seed, epoch), so a run resumed
after epoch k computes exactly what an uninterrupted run computes (on CPU).
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import torch
import torch.nn.functional as F
from torch import nn

from painformer.errors import CheckpointError, InputError
from painformer.thermal.discriminator import PatchConfig, PatchDiscriminator
from painformer.thermal.generator import UNetConfig, UNetGenerator
from painformer.thermal.pairs import (
    find_pairs,
    holdout_names,
    load_pairs,
    pairs_fingerprint,
)
from painformer.thermal.quality import l1_per_image, psnr_per_image, ssim_per_image
from painformer.utils import atomic_path, select_device

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "painformer-thermal-generator"
STATE_FORMAT = "painformer-thermal-train-state"
LOSS_COLUMNS = ("epoch", "g_l1", "g_adv", "d_loss", "holdout_l1", "holdout_psnr", "holdout_ssim")
GRID_COLUMNS = 8


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights (``device`` aside)."""

    epochs: int = 4
    image_size: int = 64
    batch_size: int = 16
    seed: int = 0
    lambda_l1: float = 100.0
    lr: float = 2e-4
    holdout: float = 0.1
    flip: bool = True
    generator: UNetConfig = field(default_factory=UNetConfig)
    discriminator: PatchConfig = field(default_factory=PatchConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"epochs and batch size must be positive, got {self.epochs}, {self.batch_size}")
        multiple = 2**self.generator.depth
        if self.image_size < 16 or self.image_size % multiple:
            raise InputError(
                f"image size {self.image_size} must be at least 16 and a multiple of {multiple} "
                f"(2**depth for a generator of depth {self.generator.depth})"
            )

    def resume_key(self) -> dict[str, Any]:
        """Settings a resumed run must share with the saved state (more epochs may be asked for)."""
        values = asdict(self)
        values.pop("epochs")
        return values


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    epochs_run: int
    resumed_from: int
    history: list[dict[str, float]]
    n_train: int
    n_holdout: int


def side_paths(out: str | Path) -> dict[str, Path]:
    """The files written beside the checkpoint (see module doc)."""
    out = Path(out)
    return {
        "state": Path(f"{out}.state") / "last.pt",
        "losses": Path(f"{out}.losses.tsv"),
        "samples": Path(f"{out}.samples"),
    }


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_unit(signed: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return signed.add(1.0).mul(0.5).clamp(0.0, 1.0)


def _init_weights(module: nn.Module) -> None:
    """pix2pix initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm scales, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.InstanceNorm2d, nn.BatchNorm2d)) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(settings: TrainSettings) -> tuple[UNetGenerator, PatchDiscriminator]:
    torch.manual_seed(settings.seed)
    generator = UNetGenerator.from_config(settings.generator)
    discriminator = PatchDiscriminator(**settings.discriminator.to_dict())
    generator.apply(_init_weights)
    discriminator.apply(_init_weights)
    return generator, discriminator


@torch.no_grad()
def generate(generator: UNetGenerator, rgb: torch.Tensor, *, device: torch.device, batch_size: int) -> torch.Tensor:
    """Generated thermal images in [0, 1], (B, 3, H, W) on CPU, for uint8 RGB (B, H, W, 3)."""
    outputs = []
    for start in range(0, len(rgb), batch_size):
        batch = to_signed(rgb[start : start + batch_size].to(device))
        outputs.append(to_unit(generator(batch)).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 3, *rgb.shape[1:3])


def quality_table(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean L1, PSNR (dB) and SSIM over images in [0, 1]."""
    return {
        "l1": float(l1_per_image(prediction, target).mean()),
        "psnr": float(psnr_per_image(prediction, target).mean()),
        "ssim": float(ssim_per_image(prediction, target).mean()),
    }


def write_sample_grid(path: Path, rgb: torch.Tensor, generated: torch.Tensor, target: torch.Tensor) -> None:
    """PNG with three rows (rgb, generated, target); inputs (B, 3, H, W) in [0, 1]."""
    rows = [torch.cat(list(images), dim=2) for images in (rgb, generated, target)]  # (3, H, B*W) each
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: could not write the sample grid")


def _write_losses(path: Path, history: list[dict[str, float]]) -> None:
    lines = ["\t".join(LOSS_COLUMNS)]
    for row in history:
        lines.append("\t".join(str(int(row[c])) if c == "epoch" else f"{row[c]:.6f}" for c in LOSS_COLUMNS))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _load_state(path: Path, *, key: dict[str, Any], fingerprint: str, epochs: int) -> dict[str, Any] | None:
    """The saved training state when it was made by the same settings on the same pairs, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:  # corrupt: start over
        log.warning("%s: unreadable training state (%s); starting over", path, error)
        return None
    if state.get("format") != STATE_FORMAT or state.get("settings") != key:
        log.warning("%s: saved with different settings; starting over", path)
        return None
    if state.get("pairs_fingerprint") != fingerprint:
        log.warning("%s: saved for different image pairs; starting over", path)
        return None
    if int(state["epoch"]) > epochs:
        log.warning("%s: already %d epochs, more than the %d asked for; starting over", path, state["epoch"], epochs)
        return None
    return state


def train_generator(
    *,
    pairs_dir: str | Path,
    out: str | Path,
    settings: TrainSettings,
    device: str = "auto",
) -> TrainResult:
    """Train (or resume training) and write the checkpoint and side files (module doc)."""
    started = time.perf_counter()
    out = Path(out)
    paths = side_paths(out)
    pairs = find_pairs(pairs_dir)
    names = [p.name for p in pairs]
    held = set(holdout_names(names, fraction=settings.holdout, seed=settings.seed))
    train_index = [i for i, n in enumerate(names) if n not in held]
    hold_index = [i for i, n in enumerate(names) if n in held]
    rgb_all, thermal_all = load_pairs(pairs, size=settings.image_size)
    rgb_all, thermal_all = torch.from_numpy(rgb_all), torch.from_numpy(thermal_all)
    train_rgb, train_thermal = rgb_all[train_index], thermal_all[train_index]
    hold_rgb, hold_thermal = rgb_all[hold_index], thermal_all[hold_index]
    fingerprint = pairs_fingerprint(pairs)
    target = select_device(device)

    generator, discriminator = build_models(settings)
    generator.to(target)
    discriminator.to(target)
    opt_g = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    history: list[dict[str, float]] = []
    start_epoch = 0
    state = _load_state(paths["state"], key=settings.resume_key(), fingerprint=fingerprint, epochs=settings.epochs)
    if state is not None:
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_generator"])
        opt_d.load_state_dict(state["opt_discriminator"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        log.info("resuming after epoch %d of %d from %s", start_epoch, settings.epochs, paths["state"])

    n_train = len(train_index)
    log.info(
        "%d training pairs, %d held out, %dx%d, device %s",
        n_train,
        len(hold_index),
        settings.image_size,
        settings.image_size,
        target,
    )
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        generator.train()
        discriminator.train()
        order_rng = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
        order = torch.randperm(n_train, generator=order_rng)
        flips = torch.rand(n_train, generator=order_rng) < 0.5
        sums = {"g_l1": 0.0, "g_adv": 0.0, "d_loss": 0.0}
        for start in range(0, n_train, settings.batch_size):
            index = order[start : start + settings.batch_size]
            rgb = to_signed(train_rgb[index].to(target))
            thermal = to_signed(train_thermal[index].to(target))
            if settings.flip:
                flip = flips[index].to(target)[:, None, None, None]
                rgb = torch.where(flip, rgb.flip(-1), rgb)
                thermal = torch.where(flip, thermal.flip(-1), thermal)
            fake = generator(rgb)

            opt_d.zero_grad(set_to_none=True)
            real_logits = discriminator(rgb, thermal)
            fake_logits = discriminator(rgb, fake.detach())
            d_loss = 0.5 * (
                F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            )
            d_loss.backward()
            opt_d.step()

            opt_g.zero_grad(set_to_none=True)
            fooled_logits = discriminator(rgb, fake)
            g_adv = F.binary_cross_entropy_with_logits(fooled_logits, torch.ones_like(fooled_logits))
            g_l1 = F.l1_loss(fake, thermal)
            (g_adv + settings.lambda_l1 * g_l1).backward()
            opt_g.step()

            weight = len(index)
            sums["g_l1"] += g_l1.item() * weight
            sums["g_adv"] += g_adv.item() * weight
            sums["d_loss"] += d_loss.item() * weight

        row: dict[str, float] = {"epoch": epoch, **{k: v / max(n_train, 1) for k, v in sums.items()}}
        generator.eval()
        if hold_index:
            generated = generate(generator, hold_rgb, device=target, batch_size=settings.batch_size)
            quality = quality_table(generated, to_unit(to_signed(hold_thermal)))
            row.update(holdout_l1=quality["l1"], holdout_psnr=quality["psnr"], holdout_ssim=quality["ssim"])
            shown_rgb, shown_thermal = hold_rgb[:GRID_COLUMNS], hold_thermal[:GRID_COLUMNS]
            shown_generated = generated[:GRID_COLUMNS]
        else:
            row.update(holdout_l1=math.nan, holdout_psnr=math.nan, holdout_ssim=math.nan)
            shown_rgb, shown_thermal = train_rgb[:GRID_COLUMNS], train_thermal[:GRID_COLUMNS]
            shown_generated = generate(generator, shown_rgb, device=target, batch_size=settings.batch_size)
        history.append(row)
        write_sample_grid(
            paths["samples"] / f"epoch_{epoch:03d}.png",
            to_unit(to_signed(shown_rgb)),
            shown_generated,
            to_unit(to_signed(shown_thermal)),
        )
        with atomic_path(paths["state"]) as tmp:
            torch.save(
                {
                    "format": STATE_FORMAT,
                    "settings": settings.resume_key(),
                    "pairs_fingerprint": fingerprint,
                    "epoch": epoch,
                    "history": history,
                    "generator": generator.state_dict(),
                    "discriminator": discriminator.state_dict(),
                    "opt_generator": opt_g.state_dict(),
                    "opt_discriminator": opt_d.state_dict(),
                },
                tmp,
            )
        _write_losses(paths["losses"], history)
        log.info(
            "epoch %d/%d  g_l1 %.4f  g_adv %.4f  d_loss %.4f  holdout L1 %.4f PSNR %.2f SSIM %.4f",
            epoch,
            settings.epochs,
            row["g_l1"],
            row["g_adv"],
            row["d_loss"],
            row["holdout_l1"],
            row["holdout_psnr"],
            row["holdout_ssim"],
        )

    from painformer import __version__

    training = {
        **{k: v for k, v in asdict(settings).items() if k != "generator"},  # stored as generator_config
        "pairs_dir": str(pairs_dir),
        "pairs_fingerprint": fingerprint,
        "holdout_names": sorted(held),
        "n_train": n_train,
        "n_holdout": len(hold_index),
        "thermal_mean": float(train_thermal.float().mean() / 255.0) if n_train else 0.5,
        "final": history[-1] if history else {},
        "device": str(target),
        "train_seconds": round(time.perf_counter() - started, 3),
        "package_version": __version__,
    }
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "format_version": 1,
        "generator_config": settings.generator.to_dict(),
        "image_size": settings.image_size,
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "training": training,
    }
    with atomic_path(out) as tmp:
        torch.save(checkpoint, tmp)
    return TrainResult(
        checkpoint=out,
        epochs_run=settings.epochs - start_epoch,
        resumed_from=start_epoch,
        history=history,
        n_train=n_train,
        n_holdout=len(hold_index),
    )


def load_generator(
    checkpoint: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[UNetGenerator, dict[str, Any]]:
    """Rebuild a trained generator (eval mode, on ``device``) and return it with the checkpoint dict."""
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: thermal generator checkpoint does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error})") from error
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a thermal generator checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    try:
        generator = UNetGenerator.from_config(content["generator_config"])
        generator.load_state_dict(content["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: the weights do not fit the stored generator config ({error})") from error
    generator.to(device).eval()
    return generator, content
