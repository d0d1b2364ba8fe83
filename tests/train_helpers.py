"""Synthetic embedding stores shared by the training tests: class-dependent embeddings in real Zarr stores."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from painformer.data import write_sample_table
from painformer.stores import SampleMeta, SampleStore

SUBJECTS = ("s1", "s2", "s3", "s4")
PER_CLASS = 10  # samples per class per subject: 20 test samples per fold, so 1 error is 95 %
NUM_FRAMES = 3
DIM = 160
SMALL_MIXER = {
    "num_latents": 8,
    "latent_dim": 32,
    "cross_dim_head": 16,
    "self_heads": 2,
    "self_dim_head": 8,
    "depth": 1,
    "self_per_cross": 1,
    "output_dim": 32,
}
SMALL_VIDEO_ENCODER = {"num_latents": 8, "latent_dim": 32, "cross_dim_head": 16, "output_dim": 8}
PRESET = {
    "epochs": 30,
    "basic_p": 0.2,
    "masking_p": 0.2,
    "mask_range": [0.1, 0.2],
    "label_smoothing": 0.1,
    "dropout": 0.0,
    "lr": 1.0e-3,
    "weight_decay": 0.01,
    "batch_size": 16,
    "warmup_epochs": 2,
    "cooldown_epochs": 2,
    "noise_std": 0.05,
    "normalize": "standard",
    "seed": 0,
}
# What a fold folder holds once its training and probe are done.
FOLD_FILES = [
    "config.json",
    "history.tsv",
    "metrics.json",
    "model.pt",
    "predictions.tsv",
    "probe.json",
    "probe_predictions.tsv",
]
# Stores: name -> items per sample. PA1 samples exist in the table and stores but not in the task.
STORES = {
    "gsr/waveform": 1,
    "ecg/spec_psd": 1,
    "rgb/frames": NUM_FRAMES,
    "thermal/frames": NUM_FRAMES,
    "depth/frames": NUM_FRAMES,
}


def synthetic_table() -> pd.DataFrame:
    rows = []
    for subject_index, subject in enumerate(SUBJECTS):
        for class_id, class_name in ((0, "BL1"), (1, "PA1"), (4, "PA4")):
            for k in range(PER_CLASS):
                rows.append(
                    {
                        "dataset": "synthetic",
                        "sample": f"{subject}-{class_name}-{k}",
                        "subject": subject,
                        "subject_id": str(subject_index),
                        "class_id": class_id,
                        "class_name": class_name,
                        "video": "",
                        "biosignals": "",
                        "split": "train" if subject in ("s1", "s2", "s3") else "validation",
                    }
                )
    return pd.DataFrame(rows).sort_values(["subject", "sample"]).reset_index(drop=True)


def new_embedding_store(path, table: pd.DataFrame, *, item_shape: tuple[int, int], fingerprint: dict) -> SampleStore:
    """An empty float32 embedding store for the samples of ``table``."""
    return SampleStore.create_or_resume(
        path,
        kind="embeddings",
        array_name="embeddings",
        meta=SampleMeta.from_table(table),
        item_shape=item_shape,
        dtype="float32",
        fingerprint=fingerprint,
    )


def write_synthetic_store(path, table: pd.DataFrame, items: int, *, seed: int, offset: float = 0.0) -> None:
    """Embeddings ~ N(0, 1) plus a class-dependent shift on the first 40 features (and a per-store offset)."""
    rng = np.random.default_rng(seed)
    store = new_embedding_store(path, table, item_shape=(items, DIM), fingerprint={"synthetic": seed})
    shift = {"BL1": -1.0, "PA1": 0.0, "PA4": 1.0}
    for i, class_name in enumerate(table["class_name"]):
        values = rng.normal(size=(items, DIM)) + offset
        values[:, :40] += shift[class_name]
        store.write(i, values.astype(np.float32))


def experiments_config(**experiments) -> dict:
    defaults = {"task": "NP_vs_P4", "protocol": "loso", "preset": "p", "model": SMALL_MIXER, "aggregation": "concat"}
    return {
        "presets": {"p": copy.deepcopy(PRESET)},
        "experiments": {name: {**defaults, **raw} for name, raw in experiments.items()},
    }


FUSION_EXPERIMENTS = {
    "single": {"inputs": ["gsr/waveform"], "fusion": "none"},
    "video_sum": {"inputs": ["rgb/frames"], "fusion": "none", "aggregation": "sum"},
    "add": {"inputs": ["rgb/frames", "thermal/frames"], "fusion": "add"},
    "concat": {"inputs": ["gsr/waveform", "ecg/spec_psd"], "fusion": "concat"},
    "decision": {"inputs": ["rgb/frames", "thermal/frames", "depth/frames"], "fusion": "decision"},
    "eq12": {
        "inputs": ["gsr/waveform", "rgb/frames", "thermal/frames", "depth/frames"],
        "fusion": "video_encoder_concat",
        "video_encoder": SMALL_VIDEO_ENCODER,
    },
}


@pytest.fixture(autouse=True)
def one_thread():
    """Train single-threaded, as the workflow's jobs do; tiny models only lose to thread hand-offs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_synthetic_dataset(root: Path, table: pd.DataFrame) -> dict:
    """The sample table and one store per entry of STORES under `root`, each store with its own seed and offset."""
    samples = write_sample_table(table, root / "samples.tsv")
    for index, (name, items) in enumerate(STORES.items()):
        modality, representation = name.split("/")
        write_synthetic_store(
            root / "embeddings" / modality / f"{representation}.zarr", table, items, seed=index, offset=3.0 * index
        )
    return {"root": root, "table": table, "samples": samples, "embeddings": root / "embeddings"}
