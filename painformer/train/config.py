"""Experiment definitions: training presets and Mixer experiments read from the pipeline config.

The Snakefile imports this module to learn which experiments exist, which
embedding stores each one reads and which folds it has, so it stays free of
torch and is quick: ``list_folds`` runs once per experiment in every dry run.

Cross-references the config schema cannot check are validated here, each error
naming the experiment (or preset) and the offending key:

- every input names a known ``modality/representation`` (video modalities
  take ``frames``, signals an image representation);
- the preset exists and every ``overrides`` key is a preset field;
- ``model`` and ``video_encoder`` keys are keywords of the EmbeddingMixer /
  VideoEncoder constructors (read from their torch-free config dataclasses in
  ``painformer.model_config``, so that a dry run need not import torch) and
  valid values for them, except what the experiment fixes itself (``num_classes``
  from the task, ``dropout`` from the preset);
- ``fusion: none`` has exactly one input, the others at least two;
- ``video_encoder_concat`` (Eq. 12) has exactly one non-video input and at
  least one video input;
- ``add`` (Eq. 14) adds vectors of the same length, which rules out mixing
  ``concat``-aggregated videos (n_frames x 160) with single embeddings (160);
- the task is known (its classes come from :func:`painformer.data.task_classes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from painformer.errors import InputError
from painformer.model_config import MODEL_CONFIGS, config_keywords
from painformer.names import AGGREGATIONS, FUSIONS, VIDEO_MODALITIES, input_problem

# How multi-item signal inputs (fNIRS channels) become one embedding beside a video input.
FNIRS_AGGREGATIONS = ("sum", "mean")
PROTOCOLS = ("loso", "holdout")
NORMALIZATIONS = ("none", "standard")
HOLDOUT_FOLD = "holdout"
# Constructor keywords an experiment may not set: the task fixes the classes, the preset the dropout.
FIXED_MODEL_KEYWORDS = {"num_classes": "the task fixes it", "dropout": "the preset's 'dropout' sets it"}


@dataclass(frozen=True)
class Preset:
    """Training hyper-parameters shared by experiments (paper Table IV).

    ``basic_p`` / ``masking_p``: probability that a training embedding gets the
    Basic augmentation (polarity inversion + Gaussian noise of ``noise_std``)
    / the Masking augmentation (a contiguous run of a fraction drawn from
    ``mask_range`` set to zero). ``warmup_epochs`` of linear warm-up and
    ``cooldown_epochs`` at the minimum lr frame the cosine schedule.
    ``normalize: standard`` standardises each feature with statistics of the
    training split only.
    """

    epochs: int
    basic_p: float
    masking_p: float
    mask_range: tuple[float, float]
    label_smoothing: float
    dropout: float
    lr: float
    weight_decay: float
    batch_size: int
    warmup_epochs: int
    cooldown_epochs: int
    noise_std: float
    normalize: str
    seed: int

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["mask_range"] = list(self.mask_range)
        return values


PRESET_FIELDS = tuple(f.name for f in dataclasses.fields(Preset))


@dataclass(frozen=True)
class Experiment:
    """One Mixer experiment: what it reads, how it fuses, what it predicts, how it is split.

    ``inputs`` are ``modality/representation`` names of embedding stores.
    ``model`` holds EmbeddingMixer keywords, ``video_encoder`` VideoEncoder
    keywords (used by ``video_encoder_concat`` only). ``preset`` already has
    the experiment's ``overrides`` applied.
    """

    name: str
    inputs: tuple[str, ...]
    fusion: str
    aggregation: str
    task: str
    protocol: str
    preset: Preset
    preset_name: str = ""
    model: Mapping[str, Any] = field(default_factory=dict)
    video_encoder: Mapping[str, Any] = field(default_factory=dict)
    fnirs_aggregation: str = "sum"

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the task, in label order."""
        from painformer.data import task_classes

        return tuple(task_classes(self.task))

    @property
    def video_inputs(self) -> tuple[str, ...]:
        return tuple(name for name in self.inputs if is_video_input(name))

    @property
    def other_inputs(self) -> tuple[str, ...]:
        return tuple(name for name in self.inputs if not is_video_input(name))

    def input_aggregation(self, name: str) -> str:
        """How the items of input ``name`` become one vector.

        Video frames follow ``aggregation``. Multi-item non-video inputs
        (fNIRS channels) follow it too when the experiment has no video
        input; beside a video they follow ``fnirs_aggregation`` (``sum`` by
        default: the paper aggregates them "similarly" to the frames' Eq. 13),
        so that frames and channels both give 160 values to add (Eq. 14).
        Single-item inputs are the same under every aggregation except
        ``concat``, where they are their one embedding.
        """
        if is_video_input(name) or not self.video_inputs:
            return self.aggregation
        return self.fnirs_aggregation

    def to_dict(self) -> dict[str, Any]:
        """The resolved definition, as written to a fold's ``config.json``."""
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "fusion": self.fusion,
            "aggregation": self.aggregation,
            "task": self.task,
            "protocol": self.protocol,
            "preset_name": self.preset_name,
            "preset": self.preset.to_dict(),
            "model": dict(self.model),
            "video_encoder": dict(self.video_encoder),
            "fnirs_aggregation": self.fnirs_aggregation,
        }


def is_video_input(name: str) -> bool:
    """Whether ``modality/representation`` names a per-frame video embedding store."""
    return name.split("/", 1)[0] in VIDEO_MODALITIES


def _preset_from_raw(name: str, raw: Mapping[str, Any], *, where: str) -> Preset:
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: preset {name!r} must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(PRESET_FIELDS))
    if unknown:
        raise InputError(f"{where}: preset {name!r} has unknown key(s) {unknown}; known: {list(PRESET_FIELDS)}")
    missing = [key for key in PRESET_FIELDS if key not in raw]
    if missing:
        raise InputError(f"{where}: preset {name!r} lacks key(s) {missing}")
    return _validated_preset(dict(raw), where=f"{where}: preset {name!r}")


def _validated_preset(values: dict[str, Any], *, where: str) -> Preset:
    def number(key: str, *, integer: bool = False, low: float | None = None, high: float | None = None) -> Any:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            kind = "an integer" if integer else "a number"
            raise InputError(f"{where}: key {key!r} must be {kind}, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(f"{where}: key {key!r} = {value!r} is outside [{low}, {high}]")
        return int(value) if integer else float(value)

    mask_range = values["mask_range"]
    if (
        not isinstance(mask_range, (list, tuple))
        or len(mask_range) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mask_range)
        or not 0.0 <= mask_range[0] <= mask_range[1] <= 1.0
    ):
        raise InputError(
            f"{where}: key 'mask_range' must be [low, high] with 0 <= low <= high <= 1, got {mask_range!r}"
        )
    if values["normalize"] not in NORMALIZATIONS:
        raise InputError(f"{where}: key 'normalize' must be one of {list(NORMALIZATIONS)}, got {values['normalize']!r}")
    epochs = number("epochs", integer=True, low=1)
    if number("warmup_epochs", integer=True, low=0) + number("cooldown_epochs", integer=True, low=0) >= epochs:
        raise InputError(
            f"{where}: keys 'warmup_epochs' + 'cooldown_epochs' ({values['warmup_epochs']} + "
            f"{values['cooldown_epochs']}) must leave some of the {epochs} epochs for the cosine decay"
        )
    return Preset(
        epochs=epochs,
        basic_p=number("basic_p", low=0.0, high=1.0),
        masking_p=number("masking_p", low=0.0, high=1.0),
        mask_range=(float(mask_range[0]), float(mask_range[1])),
        label_smoothing=number("label_smoothing", low=0.0, high=1.0),
        dropout=number("dropout", low=0.0, high=1.0),
        lr=number("lr", low=0.0),
        weight_decay=number("weight_decay", low=0.0),
        batch_size=number("batch_size", integer=True, low=1),
        warmup_epochs=number("warmup_epochs", integer=True, low=0),
        cooldown_epochs=number("cooldown_epochs", integer=True, low=0),
        noise_std=number("noise_std", low=0.0),
        normalize=values["normalize"],
        seed=number("seed", integer=True, low=0),
    )


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str, *, where: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise InputError(f"{where}: key {key!r} must be one of {list(choices)}, got {value!r}")
    return value


def constructor_keywords(class_name: str) -> tuple[str, ...]:
    """Keyword names of ``painformer.models.mixer.<class_name>.__init__``, from its torch-free config dataclass."""
    return config_keywords(class_name)


def _keywords(raw: Mapping[str, Any], key: str, class_name: str, *, where: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: key {key!r} must be a mapping of constructor keywords, got {value!r}")
    accepted = constructor_keywords(class_name)
    fixed = {name: why for name, why in FIXED_MODEL_KEYWORDS.items() if name in value and name in accepted}
    if fixed:
        reasons = "; ".join(f"{name}: {why}" for name, why in fixed.items())
        raise InputError(f"{where}: key {key!r} must not set {sorted(fixed)} ({reasons})")
    allowed = [name for name in accepted if name not in FIXED_MODEL_KEYWORDS]
    unknown = sorted(str(name) for name in value if name not in allowed)
    if unknown:
        raise InputError(f"{where}: key {key!r} has unknown {class_name} keyword(s) {unknown}; valid: {allowed}")
    try:
        MODEL_CONFIGS[class_name](**{str(name): item for name, item in value.items()})
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: key {key!r}: {error}") from None
    return dict(value)


def _experiment_from_raw(name: str, raw: Mapping[str, Any], presets: Mapping[str, Preset]) -> Experiment:
    where = f"experiment {name!r}"
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: definition must be a mapping, got {type(raw).__name__}")
    known_keys = {
        "inputs",
        "fusion",
        "aggregation",
        "task",
        "protocol",
        "preset",
        "overrides",
        "model",
        "video_encoder",
        "fnirs_aggregation",
    }
    unknown = sorted(set(raw) - known_keys)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; known: {sorted(known_keys)}")

    inputs = raw.get("inputs")
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)) or not inputs:
        raise InputError(f"{where}: key 'inputs' must be a non-empty list of modality/representation names")
    for item in inputs:
        if not isinstance(item, str) or item.count("/") != 1 or not all(item.split("/")):
            raise InputError(f"{where}: key 'inputs' holds {item!r}, not a modality/representation name")
        problem = input_problem(*item.split("/"))
        if problem:
            raise InputError(f"{where}: key 'inputs' holds {item!r}: {problem}")
    if len(set(inputs)) != len(inputs):
        raise InputError(f"{where}: key 'inputs' lists an input twice: {list(inputs)}")
    inputs = tuple(inputs)

    fusion = _choice(raw, "fusion", FUSIONS, "none", where=where)
    aggregation = _choice(raw, "aggregation", AGGREGATIONS, "concat", where=where)
    fnirs_aggregation = _choice(raw, "fnirs_aggregation", FNIRS_AGGREGATIONS, "sum", where=where)
    protocol = _choice(raw, "protocol", PROTOCOLS, "loso", where=where)

    preset_name = raw.get("preset")
    if preset_name not in presets:
        raise InputError(f"{where}: key 'preset' names {preset_name!r}, not one of the presets {sorted(presets)}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise InputError(f"{where}: key 'overrides' must be a mapping, got {overrides!r}")
    bad = sorted(set(overrides) - set(PRESET_FIELDS))
    if bad:
        raise InputError(f"{where}: key 'overrides' has unknown key(s) {bad}; known: {list(PRESET_FIELDS)}")
    preset = presets[preset_name]
    if overrides:
        preset = _validated_preset({**preset.to_dict(), **overrides}, where=f"{where}: key 'overrides'")

    task = raw.get("task")
    if not isinstance(task, str):
        raise InputError(f"{where}: key 'task' must be a task name, got {task!r}")
    from painformer.data import task_classes  # lazy: the data package pulls in pandas

    try:
        task_classes(task)
    except InputError as error:
        raise InputError(f"{where}: key 'task': {error}") from None

    experiment = Experiment(
        name=name,
        inputs=inputs,
        fusion=fusion,
        aggregation=aggregation,
        task=task,
        protocol=protocol,
        preset=preset,
        preset_name=preset_name,
        model=_keywords(raw, "model", "EmbeddingMixer", where=where),
        video_encoder=_keywords(raw, "video_encoder", "VideoEncoder", where=where),
        fnirs_aggregation=fnirs_aggregation,
    )
    _check_fusion(experiment, where=where)
    return experiment


def _check_fusion(experiment: Experiment, *, where: str) -> None:
    inputs, fusion = experiment.inputs, experiment.fusion
    if fusion == "none" and len(inputs) != 1:
        raise InputError(f"{where}: key 'fusion' is 'none' but there are {len(inputs)} inputs {list(inputs)}")
    if fusion != "none" and len(inputs) < 2:
        raise InputError(f"{where}: key 'fusion' is {fusion!r} but there is only one input {list(inputs)}")
    if fusion == "video_encoder_concat" and (len(experiment.other_inputs) != 1 or not experiment.video_inputs):
        raise InputError(
            f"{where}: key 'fusion' is 'video_encoder_concat' (Eq. 12), which needs exactly one non-video "
            f"input and at least one video input; got non-video {list(experiment.other_inputs)}, "
            f"video {list(experiment.video_inputs)}"
        )
    if fusion == "add":
        lengths = {name: _length_kind(experiment, name) for name in inputs}
        if len(set(lengths.values())) > 1:
            raise InputError(
                f"{where}: key 'fusion' is 'add' (Eq. 14) but the inputs' vectors differ in length: "
                + ", ".join(f"{name} -> {kind}" for name, kind in lengths.items())
            )


def _length_kind(experiment: Experiment, name: str) -> str:
    """A symbolic vector length: frame-concatenated videos are n_frames x 160, the rest 160."""
    how = experiment.input_aggregation(name)
    if how == "concat" and is_video_input(name):
        return "n_frames x 160"
    if how == "concat" and name.split("/", 1)[0] == "fnirs":
        return "n_channels x 160"
    return "160"


def load_experiments(config: Mapping[str, Any]) -> dict[str, Experiment]:
    """Parse and cross-check ``config['presets']`` and ``config['experiments']``.

    Accepts the full pipeline config or the ``{"presets", "experiments"}``
    subset the workflow writes per experiment. Raises ``InputError`` naming
    the experiment or preset and the key at fault.
    """
    if not isinstance(config, Mapping):
        raise InputError(f"config must be a mapping, got {type(config).__name__}")
    raw_presets = config.get("presets")
    raw_experiments = config.get("experiments")
    if not isinstance(raw_presets, Mapping) or not raw_presets:
        raise InputError("config: key 'presets' must be a non-empty mapping of preset name -> settings")
    if not isinstance(raw_experiments, Mapping) or not raw_experiments:
        raise InputError("config: key 'experiments' must be a non-empty mapping of experiment name -> definition")
    presets = {str(name): _preset_from_raw(str(name), raw, where="config") for name, raw in raw_presets.items()}
    return {str(name): _experiment_from_raw(str(name), raw, presets) for name, raw in raw_experiments.items()}


def list_folds(experiment: Experiment, table: Any) -> list[str]:
    """Fold names of ``experiment`` on a sample table (folds live in ``fold-<name>`` folders).

    ``loso``: the sorted subjects with at least one sample of the task's
    classes (one fold per left-out subject). ``holdout``: the single fold
    ``"holdout"`` (train split -> validation split).
    """
    if experiment.protocol == "holdout":
        return [HOLDOUT_FOLD]
    for column in ("subject", "class_name"):
        if column not in table.columns:
            raise InputError(f"sample table lacks the column {column!r} (experiment {experiment.name!r})")
    selected = table["subject"][table["class_name"].isin(experiment.classes)]
    return sorted(str(subject) for subject in selected.unique())


@dataclass(frozen=True)
class TrainingJobs:
    """How the workflow's train jobs run (config key ``training``).

    ``folds_per_job``: folds trained together in one job (an int >= 1, or ``"all"``); ``gpu_share``:
    the fraction of one GPU a train job on CUDA takes (1: a whole GPU; 0.25: four jobs side by
    side); ``compile``: ``torch.compile`` the stacked step on CUDA.
    """

    device: str = "auto"
    folds_per_job: int | str = "all"
    gpu_share: float = 1.0
    compile: bool = False

    def groups(self, folds: list[str]) -> list[list[str]]:
        """The folds in job-sized groups, in order."""
        size = len(folds) if self.folds_per_job == "all" else int(self.folds_per_job)
        return [folds[start : start + size] for start in range(0, len(folds), max(size, 1))]


def load_training_jobs(raw: Any) -> TrainingJobs:
    """The ``training`` section, each bad value a one-line error naming its key."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise InputError(f"config key 'training' must be a mapping, got {raw!r}")
    folds_per_job = raw.get("folds_per_job", "all")
    if folds_per_job != "all" and (
        isinstance(folds_per_job, bool) or not isinstance(folds_per_job, int) or folds_per_job < 1
    ):
        raise InputError(
            f"config key 'training.folds_per_job' must be a whole number >= 1 or 'all', got {folds_per_job!r}"
        )
    gpu_share = raw.get("gpu_share", 1.0)
    if isinstance(gpu_share, bool) or not isinstance(gpu_share, (int, float)) or not 0 < gpu_share <= 1:
        more = (
            " (more than one GPU; a job runs on one)" if isinstance(gpu_share, (int, float)) and gpu_share > 1 else ""
        )
        raise InputError(f"config key 'training.gpu_share' must be in (0, 1], got {gpu_share!r}{more}")
    compile_ = raw.get("compile", False)
    if not isinstance(compile_, bool):
        raise InputError(f"config key 'training.compile' must be true or false, got {compile_!r}")
    return TrainingJobs(
        device=str(raw.get("device", "auto")),
        folds_per_job=folds_per_job,
        gpu_share=float(gpu_share),
        compile=compile_,
    )
