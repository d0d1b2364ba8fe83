"""Training speed: demo-sized folds end to end, and the paper-sized Mixer step on 22,080-long video embeddings.

1. Demo: the demo config's experiments (config/config.yaml: preset, small Mixer widths) on
   synthetic embedding stores of the demo's size (6 subjects x 2 classes x 4 samples, 4 frames),
   one LOSO fold each through ``train_fold`` (40 training samples), seconds per fold; plus the
   wall time of one ``painformer train`` process (imports included).
2. Paper: the default Embedding-Mixer (Table I widths) on 22,080-long inputs (138 frames x 160),
   batch 32, full training steps (augmentation, forward, backward, AdamW); seconds per step and
   per epoch of a BioVid NP vs P4 LOSO fold (86 subjects x 40 samples = 3,440 training samples).

    python benchmarks/train.py [--threads 2] [--paper-steps 3] [--device auto]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
STORE_ITEMS = {"gsr/waveform": 1, "ecg/spec_psd": 1, "emg/waveform": 1, "emg/spec_psd": 1}
VIDEO_INPUTS = ("rgb/frames", "thermal/frames", "depth/frames")
BIOVID_TRAIN_SAMPLES = 86 * 40


def demo_dataset(root: Path, *, subjects: int, per_class: int, frames: int) -> Path:
    from painformer.data import write_sample_table
    from painformer.stores import SampleMeta, SampleStore

    rows = [
        {
            "dataset": "bench", "sample": f"s{s}-{c}-{k}", "subject": f"s{s}", "subject_id": str(s),
            "class_id": i * 4, "class_name": c, "video": "", "biosignals": "", "split": "",
        }
        for s in range(subjects) for i, c in enumerate(("BL1", "PA4")) for k in range(per_class)
    ]
    table = pd.DataFrame(rows)
    samples = write_sample_table(table, root / "samples.tsv")
    rng = np.random.default_rng(0)
    # Embeddings are LayerNorm outputs with a per-feature offset; polarity inversion depends on it.
    offset = rng.normal(scale=2.0, size=160)
    items = {**STORE_ITEMS, **{name: frames for name in VIDEO_INPUTS}}
    for name, count in items.items():
        modality, representation = name.split("/")
        store = SampleStore.create_or_resume(
            root / "embeddings" / modality / f"{representation}.zarr", kind="embeddings", array_name="embeddings",
            meta=SampleMeta.from_table(table), item_shape=(count, 160), dtype="float32", fingerprint={},
        )
        for i, class_name in enumerate(table["class_name"]):
            values = offset + rng.normal(size=(count, 160)) + (0.5 if class_name == "PA4" else -0.5)
            store.write(i, values.astype(np.float32))
    return samples


def bench_demo(threads: int) -> None:
    from painformer.data import read_sample_table
    from painformer.train.config import list_folds, load_experiments
    from painformer.train.data import load_experiment_data
    from painformer.train.loop import train_fold

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    experiments = load_experiments(config)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        demo = config["dataset"]["demo"]
        samples = demo_dataset(
            root, subjects=demo["subjects"], per_class=demo["samples_per_class"], frames=config["video"]["num_frames"]
        )
        table = read_sample_table(samples)
        print(f"demo folds ({threads} thread(s), {config['video']['num_frames']} frames):")
        for name, experiment in experiments.items():
            fold = list_folds(experiment, table)[0]
            data = load_experiment_data(experiment, table, root / "embeddings")
            started, cpu_started = time.perf_counter(), time.process_time()
            result = train_fold(experiment, fold, data, device=torch.device("cpu"))
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            accuracy = float((result.predicted == result.test_labels).mean())
            print(
                f"  {name:22s} {experiment.fusion:21s} train {result.n_train:3d} samples, "
                f"{experiment.preset.epochs} epochs: {seconds:6.2f} s/fold wall, {cpu_seconds:6.2f} s CPU; "
                f"test accuracy {accuracy:.2f} (classes +-0.5 sd apart)"
            )
        name = next(iter(experiments))
        exp_yaml = root / "experiment.yaml"
        exp_yaml.write_text(yaml.safe_dump(config))
        fold = list_folds(experiments[name], table)[0]
        command = [
            sys.executable, "-m", "painformer.cli", "train", "--config", str(exp_yaml), "--experiment", name,
            "--fold", fold, "--samples", str(samples), "--embeddings", str(root / "embeddings"),
            "--out", str(root / "fold"), "--threads", str(threads), "--device", "cpu",
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        print(f"  one `painformer train` process ({name}, imports included): {time.perf_counter() - started:.2f} s")


def bench_paper(threads: int, steps: int, device_name: str) -> None:
    from painformer.train.augment import augment_streams
    from painformer.train.fusion import build_model
    from painformer.utils import select_device

    torch.set_num_threads(threads)
    device = select_device(device_name)
    torch.manual_seed(0)
    model = build_model(
        fusion="none", stream_names=("fused",), num_classes=2, dropout=0.0, mixer_kwargs={}, video_encoder_kwargs={}
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.1)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 138 * 160, device=device)
    y = torch.randint(0, 2, (32,), device=device)

    def step() -> None:
        batch = augment_streams(
            {"fused": x}, basic_p=0.5, noise_std=0.1, masking_p=0.5, mask_range=(0.1, 0.2), generator=generator
        )
        loss = torch.nn.functional.cross_entropy(model(batch)[0], y, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator, kernels
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - started) / steps
    steps_per_epoch = -(-BIOVID_TRAIN_SAMPLES // 32)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"paper size on {device} ({threads} thread(s)): Embedding-Mixer {parameters / 1e6:.2f} M params, "
        f"input 22,080, batch 32: {per_step:.2f} s/step, {per_step * steps_per_epoch:.0f} s/epoch "
        f"({steps_per_epoch} steps, {BIOVID_TRAIN_SAMPLES} training samples)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paper-steps", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="device of the paper-size measurement")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    if not args.skip_demo:
        bench_demo(args.threads)
    bench_paper(args.threads, args.paper_steps, args.device)


if __name__ == "__main__":
    main()
