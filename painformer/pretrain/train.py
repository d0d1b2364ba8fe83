"""Multi-task pretraining of the PainFormer backbone (paper III-D, Eq. 10, Table IV).

Outputs in the run folder:

- ``log.tsv``: one row per epoch: lr, total loss, and for every task its mean
  cross-entropy, accuracy and loss weight ``w_i``;
- ``last.pt``: everything needed to continue (model, heads, ``w_i``,
  optimiser, scheduler, epoch, batch sampler and random generator states),
  rewritten atomically after every epoch;
- ``painformer.pth``: ``{"model_state_dict": backbone}``, the published
  checkpoint format that :func:`painformer.models.load_painformer` reads.

An interrupted run continues from ``last.pt`` with ``resume=True`` and draws
the same batches as an uninterrupted one (CPU, same seed).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.scheduler import CosineLRScheduler

from painformer.checkpoints import (
    EpochLog,
    check_format,
    load_checkpoint,
    read_epoch_log,
    refuse_mismatch,
    save_checkpoint,
)
from painformer.errors import InputError
from painformer.pretrain.augment import build_train_transform, to_chw_tensor
from painformer.pretrain.config import PretrainConfig
from painformer.pretrain.data import ProportionalBatches, TaskData, open_task
from painformer.pretrain.model import MultiTaskModel, task_losses_and_hits, weighted_total_loss
from painformer.utils import seed_everything, select_device

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "painformer-pretrain-v1"


@dataclass(frozen=True)
class EpochRecord:
    """One row of ``log.tsv``."""

    epoch: int
    lr: float
    total_loss: float
    task_loss: tuple[float, ...]
    task_accuracy: tuple[float, ...]
    task_weight: tuple[float, ...]
    seconds: float


def log_columns(task_names: Sequence[str]) -> list[str]:
    columns = ["epoch", "lr", "total_loss"]
    for name in task_names:
        columns += [f"loss_{name}", f"accuracy_{name}", f"w_{name}"]
    return columns + ["seconds"]


LOG_FORMATS = {"lr": ".6g", "seconds": ".2f"}


def _log_row(record: EpochRecord, task_names: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": record.epoch, "lr": record.lr, "total_loss": record.total_loss}
    for name, loss, accuracy, weight in zip(task_names, record.task_loss, record.task_accuracy, record.task_weight):
        row.update({f"loss_{name}": loss, f"accuracy_{name}": accuracy, f"w_{name}": weight})
    return {**row, "seconds": record.seconds}


def read_log(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``log.tsv`` as dictionaries keyed by column name."""
    return read_epoch_log(path)


def _rng_state() -> dict[str, Any]:
    legacy = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"name": legacy[0], "keys": torch.from_numpy(legacy[1].astype(np.int64)), "rest": list(legacy[2:])},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["numpy"]["name"], keys, *state["numpy"]["rest"]))
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))


def _param_groups(model: MultiTaskModel, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and filters only: not on biases, norms, or the loss weights w_i."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if name == "task_weights" or parameter.ndim <= 1:
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def steps_per_epoch(config: PretrainConfig, sizes: Sequence[int]) -> int:
    """Batches per epoch: the configured number, or enough to cover every sample once on average."""
    if config.settings.steps_per_epoch is not None:
        return config.settings.steps_per_epoch
    return max(1, -(-sum(sizes) // config.settings.batch_size))


def _backbone_from_checkpoint(model: MultiTaskModel, path: str) -> None:
    from painformer.models.loading import load_painformer

    source = load_painformer(path)
    model.backbone.load_state_dict(source.state_dict(), strict=True)


def step_seed(seed: int, update: int, purpose: int) -> int:
    """Seed of one step's random draws (0: augmentation, 1: model), a pure function of the step.

    Reseeding every step makes a run's randomness independent of how many
    data-loader workers produced the batches and of where it was resumed.
    """
    return (seed * 1_000_003 + update * 7919 + purpose) % (2**63 - 1)


class StepBatches(torch.utils.data.Dataset):
    """One epoch's planned batches; item ``i`` is step ``i``'s augmented images and labels."""

    def __init__(
        self, *, tasks: Sequence[TaskData], plan: list[list[tuple[int, int]]], first_update: int, seed: int, transform
    ):
        self.tasks = list(tasks)
        self.plan = plan
        self.first_update = first_update
        self.seed = seed
        self.transform = transform

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, step: int) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
        torch.manual_seed(step_seed(self.seed, self.first_update + step, 0))
        n_tasks = len(self.tasks)
        images, labels = [], [[] for _ in range(n_tasks)]
        counts = [0] * n_tasks
        for task, index in self.plan[step]:
            images.append(self.transform(to_chw_tensor(self.tasks[task].image(index))))
            labels[task].append(int(self.tasks[task].labels[index]))
            counts[task] += 1
        return torch.stack(images), [torch.tensor(lb, dtype=torch.long) for lb in labels], counts


def save_backbone(model: MultiTaskModel, path: Path, *, config: PretrainConfig, epoch: int) -> None:
    """Write the published checkpoint format, plus a note of how it was made."""
    payload = {
        "model_state_dict": {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()},
        "pretraining": {"tasks": [t.name for t in config.tasks], "epochs_done": epoch, "source": config.source},
    }
    save_checkpoint(payload, path)


@dataclass
class _Run:
    """Everything a pretraining run trains and draws from."""

    config: PretrainConfig
    tasks: list[TaskData]
    names: list[str]
    device: torch.device
    model: MultiTaskModel
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    batches: ProportionalBatches
    steps: int

    @property
    def use_bfloat16(self) -> bool:
        precision = self.config.settings.precision
        return precision == "bfloat16" or (precision == "auto" and self.device.type == "cuda")


def _build(config: PretrainConfig, device: str) -> _Run:
    """Tasks, model, optimiser, schedule and batch sampler of a new run (seeded)."""
    settings = config.settings
    tasks = [open_task(spec, source=config.source) for spec in config.tasks]
    sizes = [len(t) for t in tasks]
    torch_device = select_device(device)
    seed_everything(settings.seed)
    model = MultiTaskModel(
        task_names=[t.name for t in config.tasks],
        num_classes=[t.num_classes for t in config.tasks],
        head_hidden=settings.head_hidden,
        drop_path_rate=settings.drop_path_rate,
    )
    if settings.init_checkpoint:
        _backbone_from_checkpoint(model, settings.init_checkpoint)
    model.to(torch_device)
    optimizer = torch.optim.AdamW(_param_groups(model, settings.weight_decay), lr=settings.lr)
    steps = steps_per_epoch(config, sizes)
    cosine_epochs = max(1, settings.epochs - settings.cooldown_epochs)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=cosine_epochs * steps,
        lr_min=settings.lr * settings.min_lr_ratio,
        warmup_t=settings.warmup_epochs * steps,
        warmup_lr_init=settings.lr * settings.min_lr_ratio,
        t_in_epochs=False,
    )
    batches = ProportionalBatches(sizes=sizes, batch_size=settings.batch_size, seed=settings.seed)
    return _Run(
        config=config,
        tasks=tasks,
        names=[t.name for t in config.tasks],
        device=torch_device,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        batches=batches,
        steps=steps,
    )


def _resume(run: _Run, path: Path) -> int:
    """Restore the run state saved at ``path``; return the last finished epoch. A state saved with
    other tasks or settings is refused, naming what differs."""
    state = check_format(load_checkpoint(path, what="run state"), path, CHECKPOINT_FORMAT, "pretraining run state")
    refuse_mismatch(
        path,
        state["config"],
        run.config.to_dict(),
        "resume with the same tasks.yaml and --epochs, or choose another --out (or delete this run folder)",
    )
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.batches.load_state_dict(state["batches"])
    _set_rng_state(state["rng"])
    return int(state["epoch"])


def _train_epoch(run: _Run, epoch: int, *, transform, loader_workers: int) -> EpochRecord:
    """One epoch of ``run.steps`` updates; the epoch's mean losses, accuracies and weights."""
    started = time.perf_counter()
    settings = run.config.settings
    model, steps, n_tasks = run.model, run.steps, len(run.tasks)
    model.train()
    loss_sum = torch.zeros(n_tasks)
    hit_sum = torch.zeros(n_tasks)
    seen = torch.zeros(n_tasks)
    total_sum = 0.0
    epoch_batches = StepBatches(
        tasks=run.tasks,
        plan=[run.batches.next_batch() for _ in range(steps)],
        first_update=(epoch - 1) * steps,
        seed=settings.seed,
        transform=transform,
    )
    loader = torch.utils.data.DataLoader(
        epoch_batches,
        batch_size=None,
        shuffle=False,
        num_workers=loader_workers,
        pin_memory=run.device.type == "cuda",
        persistent_workers=False,
    )
    for step, (images, labels, counts) in enumerate(loader):
        update = (epoch - 1) * steps + step
        run.scheduler.step_update(num_updates=update)
        torch.manual_seed(step_seed(settings.seed, update, 1))  # drop-path draws
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.use_bfloat16):
            logits = model(images.to(run.device, non_blocking=True), counts)
        losses, hits = task_losses_and_hits(
            [task_logits.float() for task_logits in logits],
            [lb.to(run.device) for lb in labels],
            label_smoothing=settings.label_smoothing,
        )
        total = weighted_total_loss(losses, model.task_weights, weighting=settings.loss_weighting)
        if not torch.isfinite(total):
            raise RuntimeError(f"non-finite loss at epoch {epoch} step {step + 1}: task losses {losses.tolist()}")
        run.optimizer.zero_grad(set_to_none=True)
        total.backward()
        run.optimizer.step()
        counts_tensor = torch.tensor(counts, dtype=torch.float32)
        loss_sum += losses.detach().cpu() * counts_tensor
        hit_sum += hits.detach().cpu().float()
        seen += counts_tensor
        total_sum += total.item()
        log.debug("epoch %d step %d/%d total %.4f", epoch, step + 1, steps, total_sum / (step + 1))
    return EpochRecord(
        epoch=epoch,
        lr=float(run.optimizer.param_groups[0]["lr"]),
        total_loss=total_sum / steps,
        task_loss=tuple((loss_sum / seen).tolist()),
        task_accuracy=tuple((hit_sum / seen).tolist()),
        task_weight=tuple(model.task_weights.detach().cpu().tolist()),
        seconds=time.perf_counter() - started,
    )


def _save(run: _Run, epoch: int, *, last_path: Path, backbone_path: Path) -> None:
    """The resume point and the backbone after ``epoch``."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "config": run.config.to_dict(),
        "task_names": run.names,
        "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "batches": run.batches.state_dict(),
        "rng": _rng_state(),
    }
    save_checkpoint(state, last_path)
    save_backbone(run.model, backbone_path, config=run.config, epoch=epoch)


def pretrain(
    config: PretrainConfig,
    *,
    out: str | Path,
    device: str = "auto",
    resume: bool = False,
    stop_after_epoch: int | None = None,
    loader_workers: int = 0,
    progress: bool = True,
) -> list[EpochRecord]:
    """Train (or continue training) and return the records of the epochs run now.

    ``stop_after_epoch`` ends the call after that epoch's checkpoint, leaving a
    run that ``resume=True`` continues: training in chunks under a job time limit.
    """
    out = Path(out)
    settings = config.settings
    last_path, backbone_path = out / "last.pt", out / "painformer.pth"
    if last_path.exists() and not resume:
        raise InputError(
            f"{last_path}: a run already exists here; pass --resume to continue it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)

    run = _build(config, device)
    epoch_log = EpochLog(out / "log.tsv", log_columns(run.names), LOG_FORMATS)
    start_epoch = 0
    if resume and last_path.exists():
        start_epoch = _resume(run, last_path)
        epoch_log.restore(start_epoch)
        log.info("resuming %s after epoch %d of %d", out, start_epoch, settings.epochs)
    elif resume:
        log.info("%s: no run state yet, starting a new run", last_path)

    transform = build_train_transform(settings.augment, size=settings.image_size)
    records = []
    log.info(
        "pretraining %d tasks (%s), sizes %s, batch quotas %s, %d steps/epoch on %s (%s)",
        len(run.tasks),
        ", ".join(run.names),
        [len(t) for t in run.tasks],
        run.batches.quotas,
        run.steps,
        run.device,
        "bfloat16 autocast" if run.use_bfloat16 else "float32",
    )
    last_epoch = settings.epochs if stop_after_epoch is None else min(settings.epochs, stop_after_epoch)
    for epoch in range(start_epoch + 1, last_epoch + 1):
        record = _train_epoch(run, epoch, transform=transform, loader_workers=loader_workers)
        records.append(record)
        _save(run, epoch, last_path=last_path, backbone_path=backbone_path)
        epoch_log.append(_log_row(record, run.names))
        if progress:
            summary = ", ".join(
                f"{n}: loss {loss:.3f} acc {a:.3f} w {w:+.4f}"
                for n, loss, a, w in zip(run.names, record.task_loss, record.task_accuracy, record.task_weight)
            )
            log.info(
                "epoch %d/%d total %.4f lr %.3g (%s) %.1fs",
                epoch,
                settings.epochs,
                record.total_loss,
                record.lr,
                summary,
                record.seconds,
            )
    if not backbone_path.exists() and last_path.exists():
        # Finished run whose backbone file was removed: rebuild it from the run state.
        save_backbone(run.model, backbone_path, config=config, epoch=start_epoch)
    for task in run.tasks:
        if hasattr(task, "close"):
            task.close()
    return records


def describe_settings(config: PretrainConfig) -> dict[str, Any]:
    """Settings as plain data (for logs and the CLI)."""
    return {"tasks": [asdict(t) for t in config.tasks], "training": asdict(config.settings)}
