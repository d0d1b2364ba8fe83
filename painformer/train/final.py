"""The final model of an experiment: trained on every subject of its task, written for use elsewhere.

A final model folder holds three files and nothing that needs this repository's results tree:

- ``model.safetensors``: the fusion model's weights and the normaliser statistics (no pickle);
  its metadata names the experiment and the sha256 of the experiment definition, so a weights
  file copied from another experiment's folder is recognised;
- ``config.json``: everything to rebuild the model and the input pipeline that fed it (the
  experiment, classes, streams, normaliser statistics, each input's embedding-store
  fingerprint: backbone sha256, render parameters or video settings, the dataset format with the
  biosignal folder and sampling rate of BioVid or the file layout of AI4Pain, so that a new tree is
  indexed and read the way the training tree was);
- ``README.md``: a model card;
- ``thermal_generator.pt``, for an experiment that reads ``thermal/frames``: the generator that
  made its thermal frames (trained inside a run, it lives nowhere but under results/). A depth
  model is not copied: ``config.json`` records the sha256 of its directory
  (:func:`painformer.depth.model.model_dir_sha256`) and whether it is the untrained stand-in.

Training is the fold training of :mod:`painformer.train.loop` with every task sample on the
training side, under the fold seed of the fold name ``final``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from painformer.data.signals import BIOVID_FS, BIOVID_SIGNAL_COLUMNS
from painformer.errors import CheckpointError, InputError
from painformer.names import VIDEO_MODALITIES
from painformer.train.config import Experiment

LOG = logging.getLogger(__name__)

FINAL_FOLD = "final"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
FILES = (MODEL_FILE, CONFIG_FILE, CARD_FILE)
THERMAL_FILE = "thermal_generator.pt"
VIDEO_KEYS = ("num_frames", "crop", "fps", "decoder")
FORMAT_VERSION = 1
DATASET_FORMATS = ("biovid", "ai4pain")
NORMALIZER_PREFIX = "normalizer."


def experiment_sha256(experiment_dict: dict[str, Any]) -> str:
    """A stable digest of an experiment definition (sorted-key JSON)."""
    return hashlib.sha256(json.dumps(experiment_dict, sort_keys=True).encode()).hexdigest()


def biosignal_folder(table) -> str | None:
    """``filtered`` or ``raw``: the BioVid biosignal folder the sample table points into (None: neither)."""
    kinds = set()
    for path in table["biosignals"].astype(str):
        parts = Path(path).parts
        for kind in ("filtered", "raw"):
            if f"biosignals_{kind}" in parts:
                kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else None


def dataset_format(experiment: Experiment, requested: str | None) -> str:
    """The dataset layout the model's inputs come from: as requested, else ai4pain for an fNIRS input."""
    reads_fnirs = any(name.startswith("fnirs/") for name in experiment.inputs)
    found = requested or ("ai4pain" if reads_fnirs else "biovid")
    if found not in DATASET_FORMATS:
        raise InputError(f"dataset format {found!r}: expected one of {', '.join(DATASET_FORMATS)}")
    if reads_fnirs and found != "ai4pain":
        raise InputError(f"experiment {experiment.name!r} reads fNIRS, which only AI4Pain-format trees hold")
    biosignals = [name for name in experiment.inputs if name.split("/")[0] in BIOVID_SIGNAL_COLUMNS]
    if biosignals and found != "biovid":
        raise InputError(f"experiment {experiment.name!r} reads {biosignals}, which only BioVid-format trees hold")
    return found


def input_fingerprints(experiment: Experiment, embeddings_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Each input's embedding-store fingerprint: what made its embeddings (backbone, images, settings)."""
    from painformer.stores import SampleStore
    from painformer.train.data import store_path

    found = {}
    for name in experiment.inputs:
        store = SampleStore.open_complete(store_path(embeddings_dir, name))
        found[name] = store.attrs.get("fingerprint", {})
    return found


def frames_fingerprint(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """What decoded a video input's frames: the embedding source itself (RGB) or its upstream frames store."""
    source = fingerprint.get("input") or {}
    return source if source.get("source") == "video" else source.get("upstream") or {}


def video_settings(experiment: Experiment, fingerprints: dict[str, dict]) -> dict[str, Any] | None:
    """num_frames, crop, fps and decoder of the video inputs' frames (None: no video input)."""
    found = {}
    for name in experiment.inputs:
        if name.split("/")[0] in VIDEO_MODALITIES:
            made = frames_fingerprint(fingerprints[name])
            found[name] = {key: made.get(key) for key in VIDEO_KEYS}
    settings = {json.dumps(value, sort_keys=True) for value in found.values()}
    if len(settings) > 1:
        raise InputError(
            f"experiment {experiment.name!r}: its video inputs were decoded with different settings {found}"
        )
    return next(iter(found.values())) if found else None


def thermal_record(experiment: Experiment, fingerprints: dict[str, dict], checkpoint: str | Path | None) -> dict:
    """The thermal generator to bundle: it must be the one whose sha256 the thermal frames store recorded."""
    from painformer.utils import sha256_file

    made = frames_fingerprint(fingerprints["thermal/frames"])
    if checkpoint is None:
        raise InputError(
            f"experiment {experiment.name!r} reads thermal/frames: give the thermal generator that made its "
            "frames (--thermal-checkpoint), it is bundled with the final model"
        )
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: thermal generator checkpoint not found")
    digest = sha256_file(path)
    if digest != made.get("checkpoint_sha256"):
        raise InputError(
            f"{path}: sha256 {digest} is not the generator that made the thermal frames of experiment "
            f"{experiment.name!r} ({made.get('checkpoint_sha256')})"
        )
    return {"file": THERMAL_FILE, "sha256": digest, "image_size": made.get("image_size")}


def depth_record(experiment: Experiment, fingerprints: dict[str, dict], model_dir: str | Path | None) -> dict:
    """The depth model's identity: its directory digest, checked against the depth frames store's hashes."""
    from painformer.depth.model import describe_model_dir, model_dir_sha256

    made = frames_fingerprint(fingerprints["depth/frames"])
    if model_dir is None:
        raise InputError(
            f"experiment {experiment.name!r} reads depth/frames: give the depth model directory that made its "
            "frames (--depth-model), its sha256 is recorded with the final model"
        )
    try:
        info = describe_model_dir(model_dir)
        digest = model_dir_sha256(model_dir)
    except CheckpointError as error:
        raise InputError(str(error)) from None
    if (info.config_sha256, info.weights_sha256) != (made.get("config_sha256"), made.get("weights_sha256")):
        raise InputError(
            f"{model_dir}: not the depth model that made the depth frames of experiment {experiment.name!r} "
            f"(weights sha256 {info.weights_sha256}, the frames store recorded {made.get('weights_sha256')})"
        )
    return {
        "sha256": digest,
        "name": info.name,
        "untrained_tiny": info.untrained_tiny,
        "normalization": made.get("normalization"),
    }


def frame_model_records(
    experiment: Experiment,
    fingerprints: dict[str, dict],
    *,
    thermal_checkpoint: str | Path | None,
    depth_model_dir: str | Path | None,
) -> tuple[dict | None, dict | None]:
    """The thermal generator and depth model records of config.json (None for an input the experiment lacks)."""
    thermal = thermal_record(experiment, fingerprints, thermal_checkpoint) if "thermal/frames" in fingerprints else None
    depth = depth_record(experiment, fingerprints, depth_model_dir) if "depth/frames" in fingerprints else None
    return thermal, depth


def train_final(experiment: Experiment, data, *, device):
    """Train the experiment's model on every sample of ``data``; returns the fold result (in-sample scores)."""
    from painformer.train.loop import train_fold

    everything = np.arange(len(data))
    return train_fold(experiment, FINAL_FOLD, data, device=device, split=(everything, everything))


def _loso_summary(summary_path: str | Path | None) -> dict | None:
    if not summary_path or not Path(summary_path).is_file():
        return None
    try:
        return json.loads(Path(summary_path).read_text())
    except json.JSONDecodeError:
        raise InputError(f"{summary_path}: not a JSON summary") from None


def write_final(
    result,
    *,
    table,
    embeddings_dir: str | Path,
    out: str | Path,
    summary_path: str | Path | None = None,
    dataset: str = "",
    thermal_checkpoint: str | Path | None = None,
    depth_model_dir: str | Path | None = None,
    data_format: str | None = None,
    ai4pain_layout=None,
) -> Path:
    """Write model.safetensors, config.json and README.md of a trained final model into ``out``, and the
    thermal generator (``thermal_checkpoint``) of an experiment that reads thermal frames.

    ``depth_model_dir``: the depth model that made the depth frames of an experiment that reads them.
    ``data_format``: biovid or ai4pain (None: ai4pain for an experiment that reads fNIRS, else biovid);
    ``ai4pain_layout``: the :class:`~painformer.data.ai4pain.Ai4PainLayout` of the training tree
    (None: the default layout).
    """
    import shutil

    import torch
    from safetensors.torch import save_file

    import painformer
    from painformer.data.ai4pain import DEFAULT_LAYOUT
    from painformer.utils import atomic_path

    experiment = result.experiment
    data_format = dataset_format(experiment, data_format)
    layout = (ai4pain_layout or DEFAULT_LAYOUT) if data_format == "ai4pain" else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    experiment_dict = experiment.to_dict()
    digest = experiment_sha256(experiment_dict)
    classes = list(result.classes)
    fingerprints = input_fingerprints(experiment, embeddings_dir)
    backbones = sorted({fp.get("checkpoint_sha256", "unknown") for fp in fingerprints.values()})
    if len(backbones) != 1:
        raise InputError(
            f"experiment {experiment.name!r}: its embedding stores come from several backbones {backbones}"
        )
    thermal, depth = frame_model_records(
        experiment, fingerprints, thermal_checkpoint=thermal_checkpoint, depth_model_dir=depth_model_dir
    )
    train_accuracy = float((result.predicted == result.test_labels).mean())
    counts = np.bincount(result.test_labels, minlength=len(classes))
    subjects = sorted(set(result.test_subjects.tolist()))
    config = {
        "format_version": FORMAT_VERSION,
        "painformer_version": painformer.__version__,
        "experiment": experiment_dict,
        "experiment_sha256": digest,
        "classes": classes,
        "stream_names": list(result.model.stream_names),
        "normalizer": {
            name: {"mean": result.normalizer.means[name].tolist(), "std": result.normalizer.stds[name].tolist()}
            for name in result.model.stream_names
        },
        "backbone_sha256": backbones[0],
        "inputs": fingerprints,
        "video": video_settings(experiment, fingerprints),
        "thermal_generator": thermal,
        "depth_model": depth,
        "dataset_format": data_format,
        "ai4pain_layout": layout.to_dict() if layout else None,
        "biosignals": biosignal_folder(table) if layout is None else None,
        "biosignal_sampling_rate_hz": BIOVID_FS if layout is None else layout.fs,
        "trained_on": {
            "dataset": dataset,
            "n_samples": int(len(result.test_labels)),
            "subjects": subjects,
            "samples_per_class": {name: int(count) for name, count in zip(classes, counts)},
        },
        "seed": result.seed,
        "train_accuracy_in_sample": round(train_accuracy, 6),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    for name in result.model.stream_names:
        tensors[f"{NORMALIZER_PREFIX}{name}.mean"] = torch.from_numpy(result.normalizer.means[name].copy())
        tensors[f"{NORMALIZER_PREFIX}{name}.std"] = torch.from_numpy(result.normalizer.stds[name].copy())
    metadata = {"experiment": experiment.name, "experiment_sha256": digest, "format_version": str(FORMAT_VERSION)}
    # The generator, card and config first, the weights last: a folder with weights is a finished one.
    if thermal is not None:
        with atomic_path(out / THERMAL_FILE) as tmp:
            shutil.copyfile(thermal_checkpoint, tmp)
    with atomic_path(out / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    with atomic_path(out / CARD_FILE) as tmp:
        tmp.write_text(model_card(config, _loso_summary(summary_path)))
    with atomic_path(out / MODEL_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    LOG.info(
        "%s: final model on %d samples of %d subjects (in-sample accuracy %.4f) -> %s",
        experiment.name,
        len(result.test_labels),
        len(subjects),
        train_accuracy,
        out,
    )
    return out


def _loso_lines(summary: dict | None) -> list[str]:
    """The mean over subjects of each headline metric with its bootstrap interval (tables/<experiment>.json)."""
    if not summary:
        return ["No LOSO summary of this experiment was found when the model was written."]
    mean, intervals = summary.get("mean") or {}, summary.get("ci") or {}
    lines = [
        "Results of the same experiment under its evaluation protocol (mean over folds, bootstrap CI over subjects):",
        "",
    ]
    for key, interval in intervals.items():
        value = mean.get(key)
        if value is None or not isinstance(interval, dict) or interval.get("low") is None:
            lines.append(f"- {key}: {value if value is not None else 'n/a'} (no interval)")
            continue
        lines.append(
            f"- {key}: {100 * value:.1f} % (CI {100 * interval['low']:.1f}-{100 * interval['high']:.1f} %, "
            f"{interval.get('n_subjects', '?')} subjects)"
        )
    if len(lines) == 2:
        lines.append("- (the summary holds no mean/ci figures)")
    return lines


def _frame_model_lines(config: dict) -> list[str]:
    lines = []
    video = config.get("video")
    if video:
        fps = f"{video['fps']} fps" if video.get("fps") else "each video's own frame rate"
        lines.append(f"- video frames: {video['num_frames']} per sample, {video['crop']} crop, {fps}")
    thermal = config.get("thermal_generator")
    if thermal:
        lines.append(f"- thermal generator: {thermal['file']} in this folder (sha256 {thermal['sha256']})")
    depth = config.get("depth_model")
    if depth:
        note = " (UNTRAINED tiny stand-in: its depth maps are not meaningful)" if depth["untrained_tiny"] else ""
        lines.append(f"- depth model: {depth['name']}, directory sha256 {depth['sha256']}{note}")
    return lines


def _depth_use(config: dict) -> str:
    depth = config.get("depth_model")
    if not depth:
        return ""
    if depth["untrained_tiny"]:
        return " (the untrained tiny depth stand-in is rebuilt; no depth model to give)"
    return " with `--depth-model DIR`, DIR holding the depth model above"


def model_card(config: dict, summary: dict | None) -> str:
    experiment = config["experiment"]
    trained = config["trained_on"]
    untrained = config["backbone_sha256"] == "untrained"
    lines = [
        f"# Final model: {experiment['name']}",
        "",
        "**Intended use: research only. This is not a medical device and must not be used to diagnose, "
        "monitor or treat anyone.**",
        "",
    ]
    if untrained:
        lines += [
            "> WARNING: the embeddings this model was trained on came from an UNTRAINED, randomly "
            "initialised PainFormer backbone. The model only checks the pipeline; it says nothing about "
            "PainFormer's performance.",
            "",
        ]
    lines += [
        "## Task and data",
        "",
        f"- task: {experiment['task']} (classes {', '.join(config['classes'])})",
        f"- inputs: {', '.join(experiment['inputs'])}; fusion {experiment['fusion']}",
        f"- dataset: {trained['dataset'] or 'unnamed'}; {trained['n_samples']} samples of "
        f"{len(trained['subjects'])} subjects ({json.dumps(trained['samples_per_class'])})",
        f"- dataset format: {config.get('dataset_format') or 'biovid'}; biosignals: {config['biosignals'] or 'n/a'}",
        f"- backbone sha256: {config['backbone_sha256']}",
        *_frame_model_lines(config),
        "",
        "## Protocol",
        "",
        f"Trained on every subject of the task (no held-out side) with the preset {experiment['preset_name']!r}, "
        f"seed {config['seed']}, normaliser fitted on all training samples. In-sample accuracy "
        f"{config['train_accuracy_in_sample']:.4f} (not an estimate of performance on new people).",
        "",
        "## Expected performance",
        "",
        *_loso_lines(summary),
        "",
        "## Use",
        "",
        "`painformer predict --model THIS_FOLDER --root NEW_TREE --out predictions.tsv`" + _depth_use(config),
        "",
        f"painformer {config['painformer_version']}",
        "",
    ]
    return "\n".join(lines)
