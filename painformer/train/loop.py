"""Training one fold of an experiment and writing its folder (paper Table IV settings).

AdamW with the preset's lr and weight decay; a per-epoch learning rate
(:func:`cosine_lr`): ``warmup_epochs`` of linear warm-up from the minimum lr,
a cosine decay to the minimum lr (1 % of the peak), then ``cooldown_epochs``
at the minimum. Label-smoothed cross-entropy; the
preset's dropout sits before the classifier; Basic and Masking augmentations
act on the original embeddings of each training batch, before the
normalisation (a fixed affine input layer fitted on the training split).

There is no model selection: the model after the last epoch is evaluated
once on the test split, which is never looked at during training.

Cost: a fold's task samples are read from the stores once, aggregated and
moved to the device before the first epoch; a batch is an index gather from
those tensors, with no data loader. On CUDA the forward passes run under bf16
autocast (the Mixer's matrix products); losses, the optimiser and the
probabilities stay float32. The CPU path is plain float32. A step never waits
for the device: augmentation draws come from a generator on the training
device, the epoch's loss and correct count add up on the device and are read
once per epoch, and on CUDA AdamW is the fused kernel.

Several folds of one experiment train together in ``painformer.train.stack``;
this module is the one-fold path (``folds_per_job: 1``) and the fallback
for what cannot be stacked.

Determinism: one fold seed (preset seed + a stable hash of experiment and
fold) seeds the weights, dropout, the batch order (its own CPU generator) and
the augmentations (its own generator on the training device). On a CPU, with the same thread
count, two runs give bit-identical predictions; on CUDA, kernels may sum in
varying order and bf16 rounds the products, so results agree only to that
rounding.
"""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from painformer.errors import InputError
from painformer.train.augment import augment_streams
from painformer.train.config import Experiment, Preset
from painformer.train.data import (
    ExperimentData,
    Standardizer,
    fit_normalizer,
    split_fold,
)
from painformer.train.fusion import FusionModel, build_model
from painformer.utils import atomic_path, seed_everything

LOG = logging.getLogger(__name__)
# The schedule's floor, as a fraction of the peak lr (Table IV gives none).
MIN_LR_FRACTION = 0.01
EVAL_BATCH = 256


def fold_seed(experiment: Experiment, fold: str) -> int:
    """Preset seed combined with a stable (process-independent) hash of experiment and fold."""
    return (experiment.preset.seed * 1_000_003 + zlib.crc32(f"{experiment.name}/{fold}".encode())) % 2**31


@dataclass(frozen=True)
class FoldResult:
    """Everything a fold folder records."""

    experiment: Experiment
    fold: str
    seed: int
    device: str
    classes: tuple[str, ...]
    n_train: int
    test_samples: np.ndarray
    test_subjects: np.ndarray
    test_labels: np.ndarray  # (n_test,) int
    probabilities: np.ndarray  # (n_test, n_classes) float64
    history: list[dict]
    train_seconds: float
    model: FusionModel
    normalizer: Standardizer

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


def _to_device(streams: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(values)).to(device) for name, values in streams.items()}


def cosine_lr(epoch: int, *, epochs: int, lr: float, warmup_epochs: int, cooldown_epochs: int) -> float:
    """The learning rate of 0-based ``epoch``: linear warm-up from the floor, one cosine decay, then the floor.

    The floating-point operations are those of timm's ``CosineLRScheduler`` (warm-up prefix, one
    cycle, stepped per epoch), so runs keep the learning rates, and hence the predictions, of the
    releases that used it, without importing timm. Before any step the optimiser's own lr is in
    force: the floor with a warm-up, the peak without one.
    """
    min_lr = lr * MIN_LR_FRACTION
    if epoch == 0:
        return min_lr if warmup_epochs else lr
    if epoch < warmup_epochs:
        return min_lr + epoch * ((lr - min_lr) / warmup_epochs)
    t = epoch - warmup_epochs
    decay_epochs = epochs - warmup_epochs - cooldown_epochs
    if t >= decay_epochs:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * float(t) / float(decay_epochs)))


def epoch_lr(preset: Preset, epoch: int) -> float:
    return cosine_lr(
        epoch,
        epochs=preset.epochs,
        lr=preset.lr,
        warmup_epochs=preset.warmup_epochs,
        cooldown_epochs=preset.cooldown_epochs,
    )


def make_optimizer(parameters, *, preset: Preset, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; fused on CUDA (one kernel per step). On the CPU torch's default (per-tensor) update keeps
    the predictions of earlier releases bit for bit."""
    fused = True if device.type == "cuda" else None
    return torch.optim.AdamW(parameters, lr=preset.lr, weight_decay=preset.weight_decay, fused=fused)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; disabled elsewhere, which leaves the CPU computation untouched."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict_probabilities(
    model: FusionModel, streams: dict[str, torch.Tensor], *, batch_size: int = EVAL_BATCH
) -> np.ndarray:
    """Class probabilities of every sample, in evaluation mode: (N, n_classes) float64."""
    model.eval()
    count = next(iter(streams.values())).shape[0]
    device = next(iter(streams.values())).device
    parts = []
    for start in range(0, count, batch_size):
        batch = {name: values[start : start + batch_size] for name, values in streams.items()}
        with autocast(device):
            probabilities = model.predict_proba(batch)
        parts.append(probabilities.double().cpu())
    return torch.cat(parts).numpy()


def train_epoch(
    model: FusionModel,
    optimizer: torch.optim.Optimizer,
    streams: dict[str, torch.Tensor],
    labels: torch.Tensor,
    *,
    preset: Preset,
    means: dict[str, torch.Tensor],
    stds: dict[str, torch.Tensor],
    order_generator: torch.Generator,
    augment_generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the training samples in a seeded order: (loss summed over samples, correct predictions),
    both 0-d tensors on the device (float64, int64), so that no step waits for the device.

    Each batch is augmented on the original embeddings, then normalised with the
    training split's statistics, then trained on with label-smoothed
    cross-entropy summed over the model's classifiers.
    """
    model.train()
    device = labels.device
    count = labels.shape[0]
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    order = torch.randperm(count, generator=order_generator)
    # Pinned and non-blocking on CUDA: the copy does not stop the host.
    order = order.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else order.to(device)
    for start in range(0, count, preset.batch_size):
        batch_idx = order[start : start + preset.batch_size]
        batch = {name: values[batch_idx] for name, values in streams.items()}
        batch = augment_streams(
            batch,
            basic_p=preset.basic_p,
            noise_std=preset.noise_std,
            masking_p=preset.masking_p,
            mask_range=preset.mask_range,
            generator=augment_generator,
        )
        batch = {name: (values - means[name]) / stds[name] for name, values in batch.items()}
        batch_labels = labels[batch_idx]
        with autocast(device):
            logits = model(batch)
        logits = [item.float() for item in logits]  # the identity on the CPU, where they are float32 already
        loss = sum(F.cross_entropy(item, batch_labels, label_smoothing=preset.label_smoothing) for item in logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            # float64, as the host-side sum of earlier releases: the history keeps its values bit for bit.
            total_loss += loss.detach().double() * batch_labels.shape[0]
            correct += (FusionModel.probabilities(logits).argmax(dim=1) == batch_labels).sum()
    return total_loss, correct


def build_experiment_model(experiment: Experiment, data: ExperimentData, *, device: torch.device) -> torch.nn.Module:
    """The experiment's fusion model for ``data``'s streams and classes, on ``device``; a model keyword
    the constructors do not take is an input error naming the experiment."""
    try:
        return build_model(
            fusion=experiment.fusion,
            stream_names=tuple(data.streams),
            num_classes=len(data.classes),
            dropout=experiment.preset.dropout,
            mixer_kwargs=experiment.model,
            video_encoder_kwargs=experiment.video_encoder,
        ).to(device)
    except TypeError as error:
        raise InputError(f"experiment {experiment.name!r}: key 'model' or 'video_encoder': {error}") from None


def train_fold(
    experiment: Experiment,
    fold: str,
    data: ExperimentData,
    *,
    device: torch.device,
    split: tuple[np.ndarray, np.ndarray] | None = None,
) -> FoldResult:
    """Train on the fold's training split for the preset's epochs; predict its test split once.

    ``split`` (train, test indices) replaces the protocol's split: a final model trains on every
    sample of the task.
    """
    preset = experiment.preset
    train_idx, test_idx = split if split is not None else split_fold(experiment, fold, data)
    train, test = data.subset(train_idx), data.subset(test_idx)
    normalizer = fit_normalizer(preset.normalize, train.streams)
    # Augmentations act on the original embeddings (paper III-E); the normaliser is a fixed input
    # layer after them. Centring first would make polarity inversion mirror every sample about the
    # class-pooled mean, erasing any class difference along the mean-difference direction.
    train_streams = _to_device(train.streams, device)
    test_streams = _to_device(normalizer.apply(test.streams), device)
    means = _to_device(normalizer.means, device)
    stds = _to_device(normalizer.stds, device)
    train_labels = torch.from_numpy(train.labels).to(device)

    seed = fold_seed(experiment, fold)
    seed_everything(seed)
    model = build_experiment_model(experiment, data, device=device)
    optimizer = make_optimizer(model.parameters(), preset=preset, device=device)
    order_generator = torch.Generator().manual_seed(seed + 1)
    augment_generator = torch.Generator(device=device).manual_seed(seed + 2)

    n_train = len(train)
    history = []
    started = time.perf_counter()
    sums = []
    for epoch in range(preset.epochs):
        lr = epoch_lr(preset, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        sums.append(
            train_epoch(
                model,
                optimizer,
                train_streams,
                train_labels,
                preset=preset,
                means=means,
                stds=stds,
                order_generator=order_generator,
                augment_generator=augment_generator,
            )
        )
    # One read of the device at the end rather than one per epoch.
    for epoch, (total_loss, correct) in enumerate(sums):
        total_loss, correct = float(total_loss), int(correct)
        history.append(
            {
                "epoch": epoch + 1,
                "lr": epoch_lr(preset, epoch),
                "train_loss": total_loss / n_train,
                "train_accuracy": correct / n_train,
            }
        )
    train_seconds = time.perf_counter() - started

    return FoldResult(
        experiment=experiment,
        fold=fold,
        seed=seed,
        device=str(device),
        classes=data.classes,
        n_train=n_train,
        test_samples=test.samples,
        test_subjects=test.subjects,
        test_labels=test.labels,
        probabilities=predict_probabilities(model, test_streams),
        history=history,
        train_seconds=train_seconds,
        model=model,
        normalizer=normalizer,
    )


def fold_metrics(result: FoldResult) -> dict:
    """The ``metrics.json`` content of a fold."""
    from painformer.report.metrics import compute_metrics

    classes = list(result.classes)
    scores = compute_metrics(
        [classes[i] for i in result.test_labels],
        [classes[i] for i in result.predicted],
        classes,
        result.probabilities,
        macro_over="all",
    )
    return {
        "experiment": result.experiment.name,
        "fold": result.fold,
        "classes": classes,
        "test_subjects": sorted(set(result.test_subjects.tolist())),
        "n_train": result.n_train,
        "n_test": int(result.test_labels.shape[0]),
        **{key: value for key, value in scores.items() if key != "n"},
        "epochs": result.experiment.preset.epochs,
        "seed": result.seed,
        "train_seconds": round(result.train_seconds, 3),
        "device": result.device,
    }


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_fold(result: FoldResult, out_dir: str | Path) -> dict:
    """Write the fold folder (config.json, history.tsv, predictions.tsv, model.pt, then metrics.json)."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(result.classes)
    config = {**result.experiment.to_dict(), "fold": result.fold, "seed": result.seed, "classes": classes}
    _write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")

    history = pd.DataFrame(result.history, columns=["epoch", "lr", "train_loss", "train_accuracy"])
    _write_text(out / "history.tsv", history.to_csv(sep="\t", index=False))

    predictions = pd.DataFrame(
        {
            "sample": result.test_samples,
            "subject": result.test_subjects,
            "true": [classes[i] for i in result.test_labels],
            "predicted": [classes[i] for i in result.predicted],
        }
    )
    for column, name in enumerate(classes):
        predictions[f"prob_{name}"] = result.probabilities[:, column]
    _write_text(out / "predictions.tsv", predictions.to_csv(sep="\t", index=False, float_format="%.6f"))

    checkpoint = {
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "experiment": result.experiment.to_dict(),
        "fold": result.fold,
        "seed": result.seed,
        "classes": classes,
        "stream_names": list(result.model.stream_names),
        "normalizer": {
            "means": {k: torch.from_numpy(v) for k, v in result.normalizer.means.items()},
            "stds": {k: torch.from_numpy(v) for k, v in result.normalizer.stds.items()},
        },
    }
    with atomic_path(out / "model.pt") as tmp:
        torch.save(checkpoint, tmp)

    metrics = fold_metrics(result)
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
