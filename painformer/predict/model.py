"""Opening a final model folder: every file present, weights and config of the same experiment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from painformer.errors import InputError
from painformer.train.config import Experiment, load_experiments
from painformer.train.final import (
    CONFIG_FILE,
    DATASET_FORMATS,
    FILES,
    MODEL_FILE,
    NORMALIZER_PREFIX,
    experiment_sha256,
)


@dataclass(frozen=True)
class FinalModel:
    folder: Path
    config: dict[str, Any]
    experiment: Experiment
    model: Any  # FusionModel, eval mode, CPU
    normalizer: Any  # Standardizer
    layout: Any = None  # Ai4PainLayout of an AI4Pain model

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def signals(self) -> list[str]:
        """The modalities of the inputs, in input order."""
        return [name.split("/")[0] for name in self.experiment.inputs]

    @property
    def data_format(self) -> str:
        """biovid or ai4pain; a config.json written before the format was recorded is BioVid's."""
        return self.config.get("dataset_format") or "biovid"


def recorded_layout(config: dict[str, Any], folder: Path):
    """The AI4Pain layout the training tree was read with (None for a BioVid model)."""
    from painformer.data.ai4pain import DEFAULT_LAYOUT, Ai4PainLayout

    if (config.get("dataset_format") or "biovid") != "ai4pain":
        return None
    recorded = config.get("ai4pain_layout")
    if not recorded:
        return DEFAULT_LAYOUT
    return Ai4PainLayout.from_mapping(recorded, source=f"{folder / CONFIG_FILE}: ai4pain_layout")


def read_model_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: model folder not found")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder}: not a complete final model folder; missing {', '.join(missing)}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{folder / CONFIG_FILE}: not valid JSON ({error})") from None
    for key in ("experiment", "experiment_sha256", "classes", "stream_names", "backbone_sha256", "inputs"):
        if key not in config:
            raise InputError(f"{folder / CONFIG_FILE}: lacks the key {key!r}")
    if experiment_sha256(config["experiment"]) != config["experiment_sha256"]:
        raise InputError(f"{folder / CONFIG_FILE}: the experiment definition does not match its recorded sha256")
    return config


def rebuild_experiment(definition: dict[str, Any], *, source: Path) -> Experiment:
    """The Experiment of a recorded ``Experiment.to_dict()``, through the same validation as a config file."""
    raw = {key: definition[key] for key in ("inputs", "fusion", "aggregation", "task", "protocol", "model")}
    raw["preset"] = definition["preset_name"]
    if definition.get("video_encoder"):
        raw["video_encoder"] = definition["video_encoder"]
    if definition.get("fnirs_aggregation"):
        raw["fnirs_aggregation"] = definition["fnirs_aggregation"]
    try:
        experiments = load_experiments(
            {"presets": {definition["preset_name"]: definition["preset"]}, "experiments": {definition["name"]: raw}}
        )
    except InputError as error:
        raise InputError(f"{source}: {error}") from None
    return experiments[definition["name"]]


def open_final_model(folder: str | Path) -> FinalModel:
    """Check and load a final model folder; one clear error per problem."""
    from safetensors import SafetensorError, safe_open

    from painformer.train.data import Standardizer
    from painformer.train.fusion import build_model

    folder = Path(folder)
    config = read_model_config(folder)
    experiment = rebuild_experiment(config["experiment"], source=folder / CONFIG_FILE)
    data_format = config.get("dataset_format") or "biovid"
    if data_format not in DATASET_FORMATS:
        raise InputError(f"{folder / CONFIG_FILE}: unknown dataset_format {data_format!r}; known: {DATASET_FORMATS}")
    fnirs = [name for name in experiment.inputs if name.startswith("fnirs/")]
    if fnirs and data_format != "ai4pain":
        raise InputError(
            f"{folder / CONFIG_FILE}: experiment {experiment.name!r} reads {fnirs} but records no AI4Pain format"
        )
    # A recorded layout that no longer loads is refused here, before any work.
    layout = recorded_layout(config, folder)
    weights = folder / MODEL_FILE
    try:
        with safe_open(str(weights), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise InputError(f"{weights}: not a readable safetensors file ({error})") from None
    if (
        metadata.get("experiment") != experiment.name
        or metadata.get("experiment_sha256") != config["experiment_sha256"]
    ):
        raise InputError(
            f"{weights}: weights of experiment {metadata.get('experiment')!r} "
            f"(definition sha256 {str(metadata.get('experiment_sha256'))[:12]}), but {CONFIG_FILE} describes "
            f"{experiment.name!r} ({config['experiment_sha256'][:12]})"
        )
    streams = list(config["stream_names"])
    means, stds = {}, {}
    for name in streams:
        try:
            means[name] = tensors.pop(f"{NORMALIZER_PREFIX}{name}.mean").numpy()
            stds[name] = tensors.pop(f"{NORMALIZER_PREFIX}{name}.std").numpy()
        except KeyError:
            raise InputError(f"{weights}: no normaliser statistics of the stream {name!r}") from None
    model = build_model(
        fusion=experiment.fusion,
        stream_names=tuple(streams),
        num_classes=len(config["classes"]),
        dropout=experiment.preset.dropout,
        mixer_kwargs=experiment.model,
        video_encoder_kwargs=experiment.video_encoder,
    )
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise InputError(f"{weights}: the weights do not fit the model of {CONFIG_FILE} ({error})") from None
    model.eval()
    return FinalModel(
        folder=folder,
        config=config,
        experiment=experiment,
        model=model,
        normalizer=Standardizer(means=means, stds=stds),
        layout=layout,
    )
