# Configuration, sample sheet and input functions shared by every rule.

import functools
import json
import os
import shlex
from pathlib import Path

import pandas as pd
import yaml
from snakemake.utils import validate

from painformer.train.config import list_folds, load_experiments
from painformer.utils import nvidia_gpu_present

validate(config, "../schemas/config.schema.yaml")

DATASET = config["dataset"]
RESULTS = f"results/{DATASET['name']}"
SAMPLES = f"{RESULTS}/samples.tsv"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
EXPERIMENTS = load_experiments(config)
# Absolute: the sample table is validated after parsing, when relative paths no longer resolve.
SAMPLES_SCHEMA = os.path.join(
    workflow.basedir, "workflow", "schemas", "samples.schema.yaml"
)
FRAME_MODELS = ("thermal", "depth")
# The software of every rule (used with `--software-deployment-method conda`).
CONDA_ENV = "../../envs/painformer.yaml"


EXPERIMENT_PATTERN = "|".join(sorted(EXPERIMENTS))


wildcard_constraints:
    modality="[a-z]+",
    representation="[a-z_]+",
    signal="ecg|emg|gsr|fnirs",
    frame_model="thermal|depth",
    experiment=EXPERIMENT_PATTERN,
    fold="[^/]+",


def store_path(marker):
    """The Zarr store written beside a job's completion marker."""
    return str(marker).removesuffix(".complete") + ".zarr"


def get_output_store(wildcards, output):
    return store_path(output[0])


def get_first_output_dir(wildcards, output):
    """The folder of a job's first output (a command's --out folder)."""
    return os.path.dirname(output[0])


# -- dataset ---------------------------------------------------------------------
def get_dataset_samples_csv(wildcards):
    """BioVid's own sample list (the demo's completion marker); AI4Pain has none."""
    if DATASET["format"] != "biovid":
        return []
    return os.path.join(DATASET["root"], "samples.csv")


# dataset.demo keys -> painformer demo-data options (each left out keeps the generator's default)
DEMO_SIGNAL_OPTIONS = {
    "low_responder_fraction": "--low-responder-fraction",
    "face_strength": "--face-strength",
    "ecg_strength": "--ecg-strength",
    "emg_strength": "--emg-strength",
    "gsr_strength": "--gsr-strength",
}


def get_demo_signal_args(wildcards=None):
    demo = DATASET.get("demo") or {}
    return " ".join(
        f"{option} {demo[key]}"
        for key, option in DEMO_SIGNAL_OPTIONS.items()
        if demo.get(key) is not None
    )


def get_ai4pain_layout_arg(wildcards=None):
    layout = DATASET.get("ai4pain")
    if DATASET["format"] != "ai4pain" or not layout:
        return ""
    return f"--ai4pain-layout '{json.dumps(layout, sort_keys=True)}'"


@functools.lru_cache(maxsize=4)
def _read_samples(path, mtime):
    table = pd.read_csv(path, sep="\t", dtype={"split": str}, keep_default_na=False)
    validate(table, SAMPLES_SCHEMA)
    return table


def sample_table():
    """The sample table written by the `index` checkpoint (cached per file version)."""
    path = checkpoints.index.get().output.samples
    return _read_samples(path, os.path.getmtime(path))


# -- biosignal images and video frames --------------------------------------------
def get_thermal_checkpoint(wildcards=None):
    configured = config.get("thermal", {}).get("checkpoint")
    return configured if configured else f"{RESULTS}/models/thermal_generator.pt"


def get_thermal_pairs(wildcards=None):
    configured = config.get("thermal", {}).get("pairs")
    return configured if configured else os.path.join(DATASET["root"], "thermal_pairs")


def get_depth_model_dir(wildcards=None):
    depth = config.get("depth", {})
    if depth.get("model_dir"):
        return depth["model_dir"]
    if depth.get("tiny_when_missing"):
        return f"{RESULTS}/models/depth_tiny"
    raise ValueError(
        "an experiment uses depth/frames but depth.model_dir is not set: download "
        "depth-anything/Depth-Anything-V2-Small-hf (config.json, model.safetensors, "
        "preprocessor_config.json) into a local directory and set depth.model_dir to it"
    )


def get_frame_model(wildcards):
    if wildcards.frame_model == "thermal":
        return get_thermal_checkpoint()
    return get_depth_model_dir()


def get_frame_model_flag(wildcards):
    return "--checkpoint" if wildcards.frame_model == "thermal" else "--model-dir"


# -- embeddings -------------------------------------------------------------------
def get_embed_upstream(wildcards):
    """What an embedding job reads besides the sample table."""
    if wildcards.modality == "rgb":
        return []
    if wildcards.modality in FRAME_MODELS:
        return [f"{RESULTS}/frames/{wildcards.modality}.complete"]
    return [
        f"{RESULTS}/images/{wildcards.modality}/{wildcards.representation}.complete"
    ]


# Which library decodes video frames (auto: decord when installed, else PyAV), for every job that decodes.
VIDEO_DECODER = config["video"].get("decoder", "auto")


def get_video_args(wildcards=None):
    """How frames are taken from a video: the same for RGB embeddings and the frame models."""
    video = config["video"]
    args = f"--num-frames {video['num_frames']} --crop {video.get('crop', 'center')} --decoder {VIDEO_DECODER}"
    if video.get("fps") is not None:
        args += f" --fps {video['fps']}"
    return args


def get_embed_source_args(wildcards, input):
    if wildcards.modality == "rgb":
        return get_video_args()
    return f"--images {store_path(input.upstream[0])}"


def get_backbone_checkpoint(wildcards=None):
    """The embed jobs' backbone: pretrained here (pretrain.enabled), configured, or "none"."""
    if (config.get("pretrain") or {}).get("enabled"):
        return f"{RESULTS}/models/pretrain/painformer.pth"
    return config["backbone"].get("checkpoint") or "none"


# The synthetic dataset of pretrain.demo, if any: its tree and its sample table.
PRETRAIN_DATA = f"{RESULTS}/pretrain_data"


def get_pretrain_samples(wildcards=None):
    """The sample table the demo pretraining tasks are built from: their own dataset's or this one's."""
    if (config.get("pretrain") or {}).get("demo"):
        return f"{PRETRAIN_DATA}/samples.tsv"
    return SAMPLES


def get_backbone_checkpoint_input(wildcards):
    backbone = get_backbone_checkpoint(wildcards)
    return [] if backbone == "none" else [backbone]


# -- training and reports -----------------------------------------------------------
TRAIN_DEVICE = (config.get("training") or {}).get("device", "auto")


def get_train_gpus(wildcards=None):
    """1 where a train job will run on CUDA (it then waits for the `gpu` resource), else 0."""
    if TRAIN_DEVICE == "cpu":
        return 0
    return int(TRAIN_DEVICE != "auto" or nvidia_gpu_present())


def get_experiment_definition(wildcards):
    """The raw definition of one experiment plus its preset: a change to either reruns its folds only."""
    raw = config["experiments"][wildcards.experiment]
    return {
        "presets": {raw["preset"]: config["presets"][raw["preset"]]},
        "experiments": {wildcards.experiment: raw},
    }


def get_experiment_embeddings(wildcards):
    return [
        f"{RESULTS}/embeddings/{name}.complete"
        for name in EXPERIMENTS[wildcards.experiment].inputs
    ]


def get_folds(experiment):
    return list_folds(EXPERIMENTS[experiment], sample_table())


def get_fold_dirs(wildcards):
    return [
        f"{RESULTS}/runs/{wildcards.experiment}/fold-{fold}"
        for fold in get_folds(wildcards.experiment)
    ]


def get_fold_metrics(wildcards):
    return [f"{directory}/metrics.json" for directory in get_fold_dirs(wildcards)]


def get_experiment_tables(wildcards=None):
    return [f"{RESULTS}/tables/{name}.json" for name in sorted(EXPERIMENTS)]


def get_tables_dir(wildcards, output):
    return os.path.dirname(output.json)


def get_experiment_plots_dir(wildcards, output):
    return os.path.dirname(output.confusion)


def get_summary_plots_dir(wildcards, output):
    return os.path.dirname(output.plot)


def get_compare_args(wildcards=None):
    pairs = config.get("report", {}).get("compare", [])
    return " ".join(f"--compare {a}:{b}" for a, b in pairs)


def get_provenance_notes(wildcards=None):
    """--note lines for the summary: where the backbone, depth and thermal models came from.

    A run on an untrained backbone or on the stand-in depth model checks the pipeline only;
    the summary says so first, before any number.
    """
    used = {name.split("/")[0] for e in EXPERIMENTS.values() for name in e.inputs}
    backbone_checkpoint = get_backbone_checkpoint()
    if backbone_checkpoint == "none":
        backbone = (
            "Backbone: UNTRAINED random initialisation (backbone.checkpoint is null): the embeddings "
            "carry no learned knowledge; this run checks the pipeline, its numbers are not results."
        )
    elif (config.get("pretrain") or {}).get("enabled"):
        backbone = (
            f"Backbone: pretrained in this run (pretrain.enabled), {backbone_checkpoint}: "
            "not the published PainFormer weights."
        )
    else:
        backbone = f"Backbone: PainFormer checkpoint {backbone_checkpoint}."
    depth = config.get("depth", {})
    if "depth" not in used:
        depth_note = "Depth frames: not used by any experiment."
    elif depth.get("model_dir"):
        depth_note = f"Depth frames: Depth Anything model from {depth['model_dir']}."
    else:
        depth_note = (
            "Depth frames: from a tiny UNTRAINED stand-in Depth Anything model (depth.model_dir is "
            "null): the depth frames, and every result that uses them, are NOT meaningful."
        )
    thermal = config.get("thermal", {})
    if "thermal" not in used:
        thermal_note = "Thermal frames: not used by any experiment."
    elif thermal.get("checkpoint"):
        thermal_note = (
            f"Thermal frames: RGB->thermal generator given ({thermal['checkpoint']})."
        )
    else:
        demo = (
            ""
            if thermal.get("pairs") or not DATASET.get("demo")
            else "the synthetic demo "
        )
        epochs = thermal.get("train", {}).get("epochs", 4)
        thermal_note = (
            f"Thermal frames: RGB->thermal generator trained in this run on {demo}pairs "
            f"{get_thermal_pairs()} (thermal.train.epochs = {epochs})."
        )
    return " ".join(
        f"--note {shlex.quote(note)}" for note in (backbone, depth_note, thermal_note)
    )
