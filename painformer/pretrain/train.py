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

import csv
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

from painformer.errors import CheckpointError, InputError
from painformer.pretrain.augment import build_train_transform, to_chw_tensor
from painformer.pretrain.config import PretrainConfig
from painformer.pretrain.data import ProportionalBatches, TaskData, open_task
from painformer.pretrain.model import MultiTaskModel, task_losses_and_hits, weighted_total_loss
from painformer.utils import atomic_path, seed_everything, select_device

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


def _log_row(record: EpochRecord) -> list[str]:
    row = [str(record.epoch), f"{record.lr:.6g}", f"{record.total_loss:.6f}"]
    for loss, accuracy, weight in zip(record.task_loss, record.task_accuracy, record.task_weight):
        row += [f"{loss:.6f}", f"{accuracy:.6f}", f"{weight:.6f}"]
    return row + [f"{record.seconds:.2f}"]


def read_log(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``log.tsv`` as dictionaries keyed by column name."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _write_log(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)


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
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


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
    last_path, backbone_path, log_path = out / "last.pt", out / "painformer.pth", out / "log.tsv"
    if last_path.exists() and not resume:
        raise InputError(
            f"{last_path}: a run already exists here; pass --resume to continue it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)

    tasks = [open_task(spec, source=config.source) for spec in config.tasks]
    sizes = [len(t) for t in tasks]
    names = [t.name for t in config.tasks]
    torch_device = select_device(device)
    seed_everything(settings.seed)
    model = MultiTaskModel(
        task_names=names,
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
    columns = log_columns(names)
    rows: list[list[str]] = []
    start_epoch = 0

    if resume and last_path.exists():
        try:
            state = torch.load(last_path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for corrupt files
            raise CheckpointError(f"{last_path}: cannot read the run state ({error})") from error
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{last_path}: not a pretraining run state (format {state.get('format')!r})")
        if state["config"] != config.to_dict():
            raise InputError(
                f"{last_path}: the run was started with different tasks or settings; "
                "resume with the same tasks.yaml and --epochs, or choose another --out"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        batches.load_state_dict(state["batches"])
        _set_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        if log_path.exists():
            rows = [[r[c] for c in columns] for r in read_log(log_path) if int(r["epoch"]) <= start_epoch]
        log.info("resuming %s after epoch %d of %d", out, start_epoch, settings.epochs)
    elif resume:
        log.info("%s: no run state yet, starting a new run", last_path)

    transform = build_train_transform(settings.augment, size=settings.image_size)
    use_bfloat16 = settings.precision == "bfloat16" or (settings.precision == "auto" and torch_device.type == "cuda")
    records = []
    log.info(
        "pretraining %d tasks (%s), sizes %s, batch quotas %s, %d steps/epoch on %s (%s)",
        len(tasks),
        ", ".join(names),
        sizes,
        batches.quotas,
        steps,
        torch_device,
        "bfloat16 autocast" if use_bfloat16 else "float32",
    )
    last_epoch = settings.epochs if stop_after_epoch is None else min(settings.epochs, stop_after_epoch)
    for epoch in range(start_epoch + 1, last_epoch + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros(len(tasks))
        hit_sum = torch.zeros(len(tasks))
        seen = torch.zeros(len(tasks))
        total_sum = 0.0
        epoch_batches = StepBatches(
            tasks=tasks,
            plan=[batches.next_batch() for _ in range(steps)],
            first_update=(epoch - 1) * steps,
            seed=settings.seed,
            transform=transform,
        )
        loader = torch.utils.data.DataLoader(
            epoch_batches,
            batch_size=None,
            shuffle=False,
            num_workers=loader_workers,
            pin_memory=torch_device.type == "cuda",
            persistent_workers=False,
        )
        for step, (images, labels, counts) in enumerate(loader):
            update = (epoch - 1) * steps + step
            scheduler.step_update(num_updates=update)
            torch.manual_seed(step_seed(settings.seed, update, 1))  # drop-path draws
            with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=use_bfloat16):
                logits = model(images.to(torch_device, non_blocking=True), counts)
            losses, hits = task_losses_and_hits(
                [task_logits.float() for task_logits in logits],
                [lb.to(torch_device) for lb in labels],
                label_smoothing=settings.label_smoothing,
            )
            total = weighted_total_loss(losses, model.task_weights, weighting=settings.loss_weighting)
            if not torch.isfinite(total):
                raise RuntimeError(f"non-finite loss at epoch {epoch} step {step + 1}: task losses {losses.tolist()}")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            counts_tensor = torch.tensor(counts, dtype=torch.float32)
            loss_sum += losses.detach().cpu() * counts_tensor
            hit_sum += hits.detach().cpu().float()
            seen += counts_tensor
            total_sum += total.item()
            log.debug("epoch %d step %d/%d total %.4f", epoch, step + 1, steps, total_sum / (step + 1))
        record = EpochRecord(
            epoch=epoch,
            lr=float(optimizer.param_groups[0]["lr"]),
            total_loss=total_sum / steps,
            task_loss=tuple((loss_sum / seen).tolist()),
            task_accuracy=tuple((hit_sum / seen).tolist()),
            task_weight=tuple(model.task_weights.detach().cpu().tolist()),
            seconds=time.perf_counter() - started,
        )
        records.append(record)
        rows.append(_log_row(record))
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "config": config.to_dict(),
            "task_names": names,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "batches": batches.state_dict(),
            "rng": _rng_state(),
        }
        with atomic_path(last_path) as tmp:
            torch.save(state, tmp)
        save_backbone(model, backbone_path, config=config, epoch=epoch)
        _write_log(log_path, columns, rows)
        if progress:
            summary = ", ".join(
                f"{n}: loss {loss:.3f} acc {a:.3f} w {w:+.4f}"
                for n, loss, a, w in zip(names, record.task_loss, record.task_accuracy, record.task_weight)
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
        save_backbone(model, backbone_path, config=config, epoch=start_epoch)
    for task in tasks:
        if hasattr(task, "close"):
            task.close()
    return records


def describe_settings(config: PretrainConfig) -> dict[str, Any]:
    """Settings as plain data (for logs and the CLI)."""
    return {"tasks": [asdict(t) for t in config.tasks], "training": asdict(config.settings)}
