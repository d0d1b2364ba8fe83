"""The pretraining description: tasks (datasets) plus training settings, read from YAML.

A ``tasks.yaml`` looks like::

    tasks:
      - name: identity             # letters, digits, '_' or '-'
        dataset: results/demo/pretrain_tasks/identity_frames.h5
        num_classes: 6
      - name: pain
        dataset: data/pain_spectrograms/   # image folder: one sub-folder per class
        num_classes: 2
    training:                      # every key optional; defaults follow Table IV
      batch_size: 126
      epochs: 200
      ...

Relative dataset paths are resolved against the working directory, like every
path in the sample tables. The defaults reproduce the paper's MTL row of
Table IV (AdamW, lr 2e-5, weight decay 0.1, cosine, 5 warm-up and 10
cool-down epochs, batch 126 shared across tasks in proportion to their sizes).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from painformer.errors import InputError

TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
LOSS_WEIGHTINGS = ("paper", "uncertainty")
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class TaskSpec:
    """One supervised pretraining task: a labelled image dataset and its class count."""

    name: str
    dataset: str
    num_classes: int


@dataclass(frozen=True)
class AugmentSettings:
    """Augmentation switches of paper section III-E (all library transforms)."""

    trivial_augment: bool = True
    augmix: bool = True
    color_crop: bool = True  # ColorJitter(brightness, contrast, saturation) + RandomResizedCrop
    crop_scale_min: float = 0.6
    color_strength: float = 0.3
    gaussian_noise_std: float = 0.05  # on [0, 1] pixels; 0 switches it off
    square_mask_probability: float = 0.25  # RandomErasing with a square (ratio 1) box


@dataclass(frozen=True)
class PretrainSettings:
    """Optimisation settings; defaults are Table IV's MTL row."""

    batch_size: int = 126
    epochs: int = 200
    lr: float = 2e-5
    weight_decay: float = 0.1
    warmup_epochs: int = 5
    cooldown_epochs: int = 10
    min_lr_ratio: float = 0.01  # lr at the end of the cosine and during cool-down, as a fraction of lr
    image_size: int = 224
    drop_path_rate: float = 0.1
    label_smoothing: float = 0.1
    head_hidden: int = 512
    loss_weighting: str = "paper"  # "paper": exp(w)L + w (Eq. 10); "uncertainty": exp(-w)L + w
    seed: int = 0
    steps_per_epoch: int | None = None  # None: ceil(total samples / batch_size)
    init_checkpoint: str | None = None  # start the backbone from a checkpoint instead of random weights
    # Autocast of the forward pass: "auto" is bfloat16 on CUDA and float32 on the CPU. bfloat16 on a
    # CPU with native bf16 (AVX-512 BF16, AMX) trains about twice as fast; the losses stay float32.
    precision: str = "auto"
    augment: AugmentSettings = field(default_factory=AugmentSettings)


@dataclass(frozen=True)
class PretrainConfig:
    """Tasks plus settings; ``source`` names the YAML file for error messages."""

    tasks: tuple[TaskSpec, ...]
    settings: PretrainSettings
    source: str = "<memory>"

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": [asdict(t) for t in self.tasks], "training": asdict(self.settings)}


def _build_dataclass(cls, values: Any, where: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise InputError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
    return cls(**values)


def _check_settings(settings: PretrainSettings, *, n_tasks: int, source: str) -> None:
    problems = []
    if settings.batch_size < n_tasks:
        problems.append(f"batch_size {settings.batch_size} is smaller than the number of tasks {n_tasks}")
    if settings.epochs < 1:
        problems.append(f"epochs must be >= 1, got {settings.epochs}")
    if settings.warmup_epochs < 0 or settings.cooldown_epochs < 0:
        problems.append("warmup_epochs and cooldown_epochs must be >= 0")
    if settings.cooldown_epochs >= settings.epochs and settings.cooldown_epochs > 0:
        problems.append(
            f"cooldown_epochs {settings.cooldown_epochs} leaves no cosine phase in {settings.epochs} epochs"
        )
    if settings.image_size != 224:
        problems.append(f"image_size must be 224 (the backbone's input size), got {settings.image_size}")
    if settings.loss_weighting not in LOSS_WEIGHTINGS:
        problems.append(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {settings.loss_weighting!r}")
    if settings.precision not in PRECISIONS:
        problems.append(f"precision must be one of {PRECISIONS}, got {settings.precision!r}")
    if not 0 <= settings.label_smoothing < 1:
        problems.append(f"label_smoothing must be in [0, 1), got {settings.label_smoothing}")
    if not 0 <= settings.drop_path_rate < 1:
        problems.append(f"drop_path_rate must be in [0, 1), got {settings.drop_path_rate}")
    if settings.head_hidden < 1:
        problems.append(f"head_hidden must be >= 1, got {settings.head_hidden}")
    if settings.steps_per_epoch is not None and settings.steps_per_epoch < 1:
        problems.append(f"steps_per_epoch must be >= 1, got {settings.steps_per_epoch}")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))


def parse_pretrain_config(raw: Any, *, source: str, epochs: int | None = None) -> PretrainConfig:
    """Validate a parsed YAML document; ``epochs`` overrides ``training.epochs``."""
    if not isinstance(raw, dict) or "tasks" not in raw:
        raise InputError(f"{source}: expected a mapping with a 'tasks' list (and optional 'training')")
    unknown = sorted(set(raw) - {"tasks", "training"})
    if unknown:
        raise InputError(f"{source}: unknown top-level keys {unknown}; expected 'tasks' and 'training'")
    entries = raw["tasks"]
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{source}: 'tasks' must be a non-empty list")
    tasks = []
    for position, entry in enumerate(entries, start=1):
        where = f"{source}: task {position}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a mapping with name, dataset, num_classes")
        missing = [k for k in ("name", "dataset", "num_classes") if k not in entry]
        if missing:
            raise InputError(f"{where}: missing {missing}")
        extra = sorted(set(entry) - {"name", "dataset", "num_classes"})
        if extra:
            raise InputError(f"{where}: unknown keys {extra}")
        name = str(entry["name"])
        if not TASK_NAME.match(name):
            raise InputError(
                f"{where}: task name {name!r} must start with a letter and use letters, digits, '_' or '-'"
            )
        num_classes = entry["num_classes"]
        if not isinstance(num_classes, int) or num_classes < 2:
            raise InputError(f"{where} ({name}): num_classes must be an integer >= 2, got {num_classes!r}")
        tasks.append(TaskSpec(name=name, dataset=str(entry["dataset"]), num_classes=num_classes))
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{source}: duplicate task names {duplicates}")
    training = dict(raw.get("training") or {})
    augment = _build_dataclass(AugmentSettings, training.pop("augment", None), f"{source}: training.augment")
    try:
        settings = _build_dataclass(PretrainSettings, training, f"{source}: training")
    except TypeError as error:
        raise InputError(f"{source}: training: {error}") from error
    settings = PretrainSettings(**{**asdict(settings), "augment": augment})
    if epochs is not None:
        settings = PretrainSettings(**{**asdict(settings), "augment": augment, "epochs": int(epochs)})
    _check_settings(settings, n_tasks=len(tasks), source=source)
    return PretrainConfig(tasks=tuple(tasks), settings=settings, source=source)


def load_pretrain_config(path: str | Path, *, epochs: int | None = None) -> PretrainConfig:
    """Read and validate ``tasks.yaml``; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: tasks file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML ({error})") from error
    return parse_pretrain_config(raw, source=str(path), epochs=epochs)
