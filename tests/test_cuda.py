"""The GPU path of every stage that runs on one: a tiny real job on CUDA against the same job on the CPU.

Run with ``pytest -m cuda`` (``benchmarks/gpu_check.sh`` does, with the GPU benchmarks);
skipped where torch sees no CUDA device. ``PAINFORMER_TEST_DEVICE`` names another
device to compare with the CPU (default ``cuda``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from test_depth import face_video
from test_embed import make_image_store, make_table
from test_pretrain import _tasks, _write_folder_task, _write_h5_task, _write_yaml
from test_thermal import TINY

from painformer.depth import estimate_depth, load_depth_model, make_tiny_depth_model, predict_depth
from painformer.embed import EmbedSettings, extract_embeddings
from painformer.embed.sources import StoreSource
from painformer.models import load_painformer
from painformer.pretrain import load_pretrain_config, pretrain, read_log
from painformer.thermal import TrainSettings, load_generator, train_generator
from painformer.thermal.drawn_faces import make_face_pairs
from painformer.thermal.train import generate
from painformer.video import read_frames

DEVICE = os.environ.get("PAINFORMER_TEST_DEVICE", "cuda")


def _device_available(name: str) -> bool:
    kind = torch.device(name).type
    return kind == "cpu" or (kind == "cuda" and torch.cuda.is_available())


pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not _device_available(DEVICE), reason=f"no {DEVICE} device"),
]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = torch.from_numpy(a).reshape(-1, a.shape[-1]).double(), torch.from_numpy(b).reshape(-1, b.shape[-1]).double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())


def report(name: str, value: float, limit: str) -> None:
    """One line per comparison; gpu_check.sh collects them into its table."""
    print(f"\nTOLERANCE\t{name}\t{value:.6g}\t{limit}")


def test_embed_on_the_device_matches_the_cpu(tmp_path):
    # 7 samples x 3 images at batch 4: batches straddle samples and the last one is partial,
    # so the reused pinned buffers are refilled with batches of another size.
    table = make_table(7)
    make_image_store(tmp_path / "images.zarr", table, items=3)
    source = StoreSource(path=tmp_path / "images.zarr", table=table)
    model = load_painformer(None)

    def embed(name: str, device: str, precision: str) -> np.ndarray:
        store = extract_embeddings(
            source=source,
            out=tmp_path / f"{name}.zarr",
            model=model,
            modality="gsr",
            representation="waveform",
            settings=EmbedSettings(batch_size=4, device=device, precision=precision),
            progress=False,
        )
        assert store.is_complete()
        return store.read()

    reference = embed("cpu", "cpu", "float32")
    full = embed("device_float32", DEVICE, "float32")
    half = embed("device_auto", DEVICE, "auto")
    model.to("cpu")
    report("embed float32 device vs CPU (min cosine)", min_cosine(full, reference), ">= 0.99999")
    report("embed auto device vs CPU float32 (min cosine)", min_cosine(half, reference), ">= 0.999")
    assert min_cosine(full, reference) >= 0.99999
    np.testing.assert_allclose(full, reference, rtol=1e-3, atol=1e-3)
    assert min_cosine(half, reference) >= 0.999


def test_pretraining_on_the_device_matches_the_cpu(tmp_path):
    files = {
        "folder": _write_folder_task(tmp_path / "folder", classes=2, per_class=2, seed=0),
        "h5": _write_h5_task(tmp_path / "task.h5", n=6, classes=3, seed=1),
    }
    # float32 and no drop path: drop-path masks come from the device's own generator.
    config = load_pretrain_config(
        _write_yaml(tmp_path / "tasks.yaml", _tasks(files), epochs=2, precision="float32", drop_path_rate=0.0)
    )
    runs = []
    for name, device in (("reference", "cpu"), ("device", DEVICE)):
        pretrain(config, out=tmp_path / name, device=device, progress=False)
        state = torch.load(tmp_path / name / "last.pt", weights_only=True)
        runs.append((read_log(tmp_path / name / "log.tsv"), state["model"]))
    (cpu_log, cpu_model), (device_log, device_model) = runs
    assert len(cpu_log) == len(device_log) == 2
    for cpu_row, device_row in zip(cpu_log, device_log):
        assert float(device_row["total_loss"]) == pytest.approx(float(cpu_row["total_loss"]), rel=1e-3, abs=1e-4)
    largest = max(float((device_model[k].float() - cpu_model[k].float()).abs().max()) for k in cpu_model)
    report("pretraining 2 steps float32, largest weight difference", largest, "<= 1e-3")
    assert largest <= 1e-3


def test_thermal_training_on_the_device_matches_the_cpu(tmp_path):
    pairs = make_face_pairs(tmp_path / "pairs", count=12, size=48)
    runs = (("reference", "cpu"), ("device", DEVICE))
    results = [
        train_generator(
            pairs_dir=pairs, out=tmp_path / f"{name}.pt", settings=TrainSettings(epochs=1, **TINY), device=device
        )
        for name, device in runs
    ]
    assert all(result.epochs_run == 1 for result in results)
    cpu, gpu = results[0].history[0], results[1].history[0]
    for key in ("g_l1", "d_loss", "holdout_l1"):
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-2), key
    rgb = torch.from_numpy(np.stack([np.full((32, 32, 3), value, np.uint8) for value in (40, 128, 220)]))
    outputs = [
        generate(load_generator(tmp_path / f"{name}.pt")[0], rgb, device=torch.device("cpu"), batch_size=3)
        for name, _ in runs
    ]
    largest = float((outputs[0] - outputs[1]).abs().max())
    report("thermal 1 epoch, generated image difference (0..1)", largest, "<= 0.02")
    assert largest <= 0.02


def test_depth_on_the_device_matches_the_cpu(tmp_path):
    model_dir = make_tiny_depth_model(tmp_path / "depth_tiny", seed=0)
    frames = read_frames(face_video(tmp_path / "face.mp4"), num_frames=6)
    raw, grey = {}, {}
    for device in ("cpu", DEVICE):
        model, processor = load_depth_model(model_dir, device)
        raw[device] = predict_depth(frames, model, processor, torch.device(device), 4)
        grey[device] = estimate_depth(frames, model, processor, device, 4).astype(int)
    correlation = float(np.corrcoef(raw["cpu"].ravel(), raw[DEVICE].ravel())[0, 1])
    report("depth raw maps, correlation with the CPU", correlation, ">= 0.99")
    report("depth uint8 maps, mean grey-level difference", float(np.abs(grey["cpu"] - grey[DEVICE]).mean()), "-")
    assert correlation >= 0.99
