# Configuration, sample sheet and input functions shared by every rule.

import functools
import json
import math
import os
import shlex
from pathlib import Path

import pandas as pd
import yaml
from snakemake.exceptions import IncompleteCheckpointException
from snakemake.utils import validate

from painformer import names
from painformer.config_checks import check_workflow_config
from painformer.experiment_grid import apply_experiment_grid
from painformer.train.config import (
    is_video_input,
    list_folds,
    load_experiments,
    load_training_jobs,
)
from painformer.utils import nvidia_gpu_present

apply_experiment_grid(config)
# Before the schema: its messages for these keys are less direct than these one-line errors.
TRAINING = load_training_jobs(config.get("training"))
validate(config, "../schemas/config.schema.yaml")

DATASET = config["dataset"]
RESULTS = f"results/{DATASET['name']}"
SAMPLES = f"{RESULTS}/samples.tsv"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
EXPERIMENTS = load_experiments(config)
check_workflow_config(config)
# Absolute: the sample table is validated after parsing, when relative paths no longer resolve.
SAMPLES_SCHEMA = os.path.join(
    workflow.basedir, "workflow", "schemas", "samples.schema.yaml"
)
FRAME_MODELS = names.FRAME_MODELS
# The software of every rule (used with `--software-deployment-method conda`).
CONDA_ENV = "../../envs/painformer.yaml"


EXPERIMENT_PATTERN = names.alternation(sorted(EXPERIMENTS))


wildcard_constraints:
    modality=names.alternation(names.MODALITIES),
    representation=names.alternation(names.REPRESENTATIONS),
    signal=names.alternation(names.SIGNALS),
    frame_model=names.alternation(names.FRAME_MODELS),
    experiment=EXPERIMENT_PATTERN,
    fold="[^/]+",
    fold_group="group-[0-9]+",


def store_path(marker):
    """The Zarr store written beside a job's completion marker."""
    return str(marker).removesuffix(".complete") + ".zarr"


def get_output_store(wildcards, output):
    return store_path(output[0])


def get_first_output_dir(wildcards, output):
    """The folder of a job's first output (a command's --out folder)."""
    return os.path.dirname(output[0])


def get_experiment_run_dir(wildcards, input):
    """An experiment's run folder, where its fold folders go: the folder of its definition."""
    return os.path.dirname(input.experiment)


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
    demo = DATASET["demo"] or {}
    return " ".join(
        f"{option} {shlex.quote(str(demo[key]))}"
        for key, option in DEMO_SIGNAL_OPTIONS.items()
        if demo.get(key) is not None
    )


def get_ai4pain_layout_arg(wildcards=None):
    layout = DATASET["ai4pain"]
    if DATASET["format"] != "ai4pain" or not layout:
        return ""
    return f"--ai4pain-layout {shlex.quote(json.dumps(layout, sort_keys=True))}"


def get_fnirs_layout_arg(wildcards):
    """fNIRS files are read with the layout they were indexed with."""
    return get_ai4pain_layout_arg() if wildcards.signal == "fnirs" else ""


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
@functools.lru_cache(maxsize=8)
def _raw_files_state(path, mtime, column):
    from painformer.stores import (
        files_state,
    )  # zarr is imported only when such a job is planned

    return files_state(
        name
        for name in _read_samples(path, mtime)[column]
        if isinstance(name, str) and name
    )


def raw_files_state(column):
    """A params function: the size and modification time of every raw file of the sample table's
    ``column``. Snakemake reruns a job whose params changed (rerun trigger ``params``), and the job's
    store then recomputes exactly the samples whose files changed (their input fingerprints).
    """

    def state(wildcards):
        path = checkpoints.index.get().output.samples
        return _raw_files_state(path, os.path.getmtime(path), column)

    return state


def get_embed_raw_state(wildcards):
    """RGB embeddings read the videos themselves; other modalities read an upstream store."""
    if wildcards.modality != "rgb":
        return ""
    return raw_files_state("video")(wildcards)


def get_thermal_checkpoint(wildcards=None):
    configured = config["thermal"]["checkpoint"]
    return configured if configured else f"{RESULTS}/models/thermal_generator.pt"


def get_thermal_pairs(wildcards=None):
    configured = config["thermal"]["pairs"]
    return configured if configured else os.path.join(DATASET["root"], "thermal_pairs")


def get_depth_model_dir(wildcards=None):
    depth = config["depth"]
    if depth["model_dir"]:
        return depth["model_dir"]
    if depth["tiny_when_missing"]:
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
VIDEO_DECODER = config["video"]["decoder"]


def get_video_args(wildcards=None):
    """How frames are taken from a video: the same for RGB embeddings and the frame models."""
    video = config["video"]
    args = [
        "--num-frames",
        video["num_frames"],
        "--crop",
        video["crop"],
        "--decoder",
        VIDEO_DECODER,
    ]
    if video["fps"] is not None:
        args += ["--fps", video["fps"]]
    return shlex.join(str(arg) for arg in args)


def get_embed_source_args(wildcards, input):
    if wildcards.modality == "rgb":
        return get_video_args()
    return f"--images {shlex.quote(store_path(input.upstream[0]))}"


def get_backbone_checkpoint(wildcards=None):
    """The embed jobs' backbone: pretrained here (pretrain.enabled), configured, or "none"."""
    if config["pretrain"]["enabled"]:
        return f"{RESULTS}/models/pretrain/painformer.pth"
    return config["backbone"]["checkpoint"] or "none"


# The synthetic dataset of pretrain.demo, if any: its tree and its sample table.
PRETRAIN_DATA = f"{RESULTS}/pretrain_data"


def get_pretrain_samples(wildcards=None):
    """The sample table the demo pretraining tasks are built from: their own dataset's or this one's."""
    if config["pretrain"]["demo"]:
        return f"{PRETRAIN_DATA}/samples.tsv"
    return SAMPLES


def get_backbone_checkpoint_input(wildcards):
    backbone = get_backbone_checkpoint(wildcards)
    return [] if backbone == "none" else [backbone]


# -- training and reports -----------------------------------------------------------
TRAIN_DEVICE = TRAINING.device
# A GPU's share is counted in hundredths: the profiles declare gpu_slots = 100 per GPU.
GPU_SLOTS_PER_GPU = 100


def _train_on_cuda():
    if TRAIN_DEVICE == "cpu":
        return False
    return TRAIN_DEVICE != "auto" or nvidia_gpu_present()


def get_train_gpus(wildcards=None):
    """1 where a train job takes a whole GPU (CUDA and gpu_share 1), else 0."""
    return int(_train_on_cuda() and TRAINING.gpu_share >= 1)


def get_train_gpu_slots(wildcards=None):
    """A train job's share of a GPU in hundredths (CUDA only): with gpu_share < 1 several fold
    groups run side by side on one GPU, bounded by the profile's gpu_slots."""
    if not _train_on_cuda():
        return 0
    return max(1, round(TRAINING.gpu_share * GPU_SLOTS_PER_GPU))


# Host memory of a train job (MB), measured on the CPU (peak RSS; docs/training.md): ~970 MB once
# torch is imported; a stacked fold's parameters, gradients, moments and activations add ~2,080 MB
# for the paper's Mixer at batch 32 and ~4 MB for the demo's small one, both
# TRAIN_MEM_PER_ACTIVATION_MB x latents x latent width x batch x attention blocks. On CUDA these
# live in GPU memory. The samples are held twice at most (as read, then fused).
TRAIN_MEM_BASE_MB = 1500
TRAIN_MEM_PER_ACTIVATION_MB = 1.4e-4
TRAIN_MEM_PER_CUDA_FOLD_MB = 50
MIXER_DEFAULTS = {
    "num_latents": 256,
    "latent_dim": 320,
    "depth": 2,
    "self_per_cross": 2,
}


def _train_fold_mb(experiment):
    if _train_on_cuda():
        return TRAIN_MEM_PER_CUDA_FOLD_MB
    model = {**MIXER_DEFAULTS, **experiment.model}
    blocks = model["depth"] * (1 + model["self_per_cross"])
    members = len(experiment.inputs) if experiment.fusion == "decision" else 1
    size = model["num_latents"] * model["latent_dim"] * experiment.preset.batch_size
    return TRAIN_MEM_PER_ACTIVATION_MB * size * blocks * members


def _train_data_mb(experiment):
    frames = config["video"]["num_frames"]
    length = sum(
        (
            frames * 160
            if is_video_input(name) and experiment.aggregation == "concat"
            else 160
        )
        for name in experiment.inputs
    )
    return 2 * len(sample_table()) * length * 4 / 1e6


def get_train_mem_mb(wildcards):
    experiment = EXPERIMENTS[wildcards.experiment]
    folds = len(get_group_folds(wildcards))
    total = (
        TRAIN_MEM_BASE_MB
        + _train_data_mb(experiment)
        + folds * _train_fold_mb(experiment)
    )
    return int(math.ceil(total / 100) * 100)


def get_train_runtime(wildcards):
    """Minutes: the per-fold budget of one-fold jobs times the group's folds (stacking only saves)."""
    return 120 * len(get_group_folds(wildcards))


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


def get_fold_groups(experiment):
    """The experiment's folds in groups of training.folds_per_job: one train job each."""
    return TRAINING.groups(get_folds(experiment))


def get_group_folds(wildcards):
    groups = get_fold_groups(wildcards.experiment)
    index = int(wildcards.fold_group.removeprefix("group-"))
    if index >= len(groups):
        raise ValueError(
            f"experiment {wildcards.experiment}: {wildcards.fold_group} does not exist; "
            f"training.folds_per_job = {TRAINING.folds_per_job} makes {len(groups)} group(s)"
        )
    return groups[index]


def get_fold_dirs(wildcards):
    return [
        f"{RESULTS}/runs/{wildcards.experiment}/fold-{fold}"
        for fold in get_folds(wildcards.experiment)
    ]


def get_fold_metrics(wildcards):
    """What an experiment's report waits for: the completion marker of each of its fold groups,
    written once every fold folder of the group is complete."""
    return [
        f"{RESULTS}/runs/{wildcards.experiment}/groups/group-{index}.json"
        for index in range(len(get_fold_groups(wildcards.experiment)))
    ]


def get_experiment_tables(wildcards=None):
    return [f"{RESULTS}/tables/{name}.json" for name in sorted(EXPERIMENTS)]


def get_tables_dir(wildcards, output):
    return os.path.dirname(output.json)


def get_experiment_plots_dir(wildcards, output):
    return os.path.dirname(output.confusion)


def get_summary_plots_dir(wildcards, output):
    return os.path.dirname(output.plot)


def get_compare_args(wildcards=None):
    pairs = config["report"]["compare"]
    return " ".join(f"--compare {shlex.quote(f'{a}:{b}')}" for a, b in pairs)


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
    elif config["pretrain"]["enabled"]:
        backbone = (
            f"Backbone: pretrained in this run (pretrain.enabled), {backbone_checkpoint}: "
            "not the published PainFormer weights."
        )
    else:
        backbone = f"Backbone: PainFormer checkpoint {backbone_checkpoint}."
    depth = config["depth"]
    if "depth" not in used:
        depth_note = "Depth frames: not used by any experiment."
    elif depth["model_dir"]:
        depth_note = f"Depth frames: Depth Anything model from {depth['model_dir']}."
    else:
        depth_note = (
            "Depth frames: from a tiny UNTRAINED stand-in Depth Anything model (depth.model_dir is "
            "null): the depth frames, and every result that uses them, are NOT meaningful."
        )
    thermal = config["thermal"]
    if "thermal" not in used:
        thermal_note = "Thermal frames: not used by any experiment."
    elif thermal["checkpoint"]:
        thermal_note = (
            f"Thermal frames: RGB->thermal generator given ({thermal['checkpoint']})."
        )
    else:
        demo = "" if thermal["pairs"] or not DATASET["demo"] else "the synthetic demo "
        epochs = thermal["train"]["epochs"]
        thermal_note = (
            f"Thermal frames: RGB->thermal generator trained in this run on {demo}pairs "
            f"{get_thermal_pairs()} (thermal.train.epochs = {epochs})."
        )
    return " ".join(
        f"--note {shlex.quote(note)}" for note in (backbone, depth_note, thermal_note)
    )


# -- final models (workflow/rules/final.smk) ----------------------------------------
def final_frame_models(experiment):
    """The thermal generator (bundled) and depth model (recorded) of an experiment's frame inputs, by flag."""
    inputs = EXPERIMENTS[experiment].inputs
    models = {}
    if "thermal/frames" in inputs:
        models["--thermal-checkpoint"] = get_thermal_checkpoint()
    if "depth/frames" in inputs:
        models["--depth-model"] = get_depth_model_dir()
    return models


def get_final_frame_models(wildcards):
    return list(final_frame_models(wildcards.experiment).values())


def get_final_frame_model_args(wildcards):
    models = final_frame_models(wildcards.experiment)
    return shlex.join(
        part for flag, path in models.items() for part in (flag, str(path))
    )


def get_final_summary(wildcards):
    # Through the index checkpoint: the job's memory estimate reads the sample table.
    checkpoints.index.get()
    return f"{RESULTS}/tables/{wildcards.experiment}.json"


def get_final_mem_mb(wildcards):
    """One fold's worth of training memory: a final model is one model on every sample. Before the
    index checkpoint has run (a dry run) the sample table is unknown: the fixed parts only.
    """
    experiment = EXPERIMENTS[wildcards.experiment]
    try:
        data_mb = _train_data_mb(experiment)
    except IncompleteCheckpointException:
        data_mb = 0
    total = TRAIN_MEM_BASE_MB + data_mb + _train_fold_mb(experiment)
    return int(math.ceil(total / 100) * 100)
