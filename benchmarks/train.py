"""Training cost: seconds per epoch of one BioVid LOSO fold for the paper-sized models, at batch 32.

Three models with the paper's widths (Table I), each trained by ``train_epoch``, the function the
training jobs run per epoch (augmentation, normalisation, forward, backward, AdamW step), with the
settings of config/biovid.yaml's ``p600`` preset:

- single-input Mixer: one 160-d embedding (a biosignal image);
- video Mixer: 22,080-d, a video's 138 frame embeddings concatenated (Eq. 11);
- Eq. 12: a 160-d GSR embedding next to the Video-Encoder's 40-d code of a 22,080-d video
  embedding, one Mixer on the 200 values, trained end to end (``video_encoder_concat``).

A BioVid NP vs P4 LOSO fold trains on 86 subjects x 40 samples = 3,440 samples: 108 batches of 32.
By default a full epoch of random embeddings of that size is timed per model, after one warm-up
batch; ``--batches N`` times N batches instead and scales to the epoch (``--quick``: 2 batches, to
check that the script runs). The last lines give the cost of one experiment, 87 folds x 600
epochs, for each model. ``--demo`` adds the wall time of one ``painformer train`` process on a
demo-sized fold: the fixed cost every fold job pays (imports, reading stores, writing the folder).

    python benchmarks/train.py [--threads 1] [--device cpu] [--quick | --batches N] [--demo]
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
BATCH = 32
BIOVID_TRAIN_SAMPLES = 86 * 40  # NP vs P4, one subject left out
BIOVID_FOLDS = 87
PAPER_EPOCHS = 600
VIDEO_LENGTH = 138 * 160
# name -> (fusion, {stream: length}); stream names are those painformer.train.data builds.
MODELS = {
    "single-input Mixer (160)": ("none", {"fused": 160}),
    "video Mixer (22,080)": ("none", {"fused": VIDEO_LENGTH}),
    "Eq. 12 (160 + Video-Encoder 22,080)": ("video_encoder_concat", {"signal": 160, "video": VIDEO_LENGTH}),
}


def paper_preset():
    """The 600-epoch preset of the BioVid grid (Table V, last row of each input)."""
    from painformer.experiment_grid import expand_experiment_grid
    from painformer.train.config import load_experiments

    config = yaml.safe_load((REPO / "config" / "biovid.yaml").read_text())
    experiments = load_experiments({**config, "experiments": expand_experiment_grid(config)})
    return next(e.preset for e in experiments.values() if e.preset_name == "p600")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epoch(name: str, *, fusion: str, lengths: dict[str, int], samples: int, device: torch.device, preset) -> dict:
    """Seconds of ``train_epoch`` over ``samples`` random training samples (after a one-batch warm-up)."""
    from painformer.train.fusion import build_model
    from painformer.train.loop import train_epoch

    torch.manual_seed(0)
    model = build_model(
        fusion=fusion,
        stream_names=tuple(lengths),
        num_classes=2,
        dropout=preset.dropout,
        mixer_kwargs={},
        video_encoder_kwargs={},
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.lr, weight_decay=preset.weight_decay)
    streams = {stream: torch.randn(samples, length, device=device) for stream, length in lengths.items()}
    labels = torch.randint(0, 2, (samples,), device=device)
    means = {stream: torch.zeros(length, device=device) for stream, length in lengths.items()}
    stds = {stream: torch.ones(length, device=device) for stream, length in lengths.items()}

    def run(count: int) -> float:
        synchronize(device)
        started = time.perf_counter()
        train_epoch(
            model,
            optimizer,
            {s: v[:count] for s, v in streams.items()},
            labels[:count],
            preset=preset,
            means=means,
            stds=stds,
            order_generator=torch.Generator().manual_seed(1),
            augment_generator=torch.Generator().manual_seed(2),
        )
        synchronize(device)
        return time.perf_counter() - started

    run(BATCH)  # warm-up: allocator, kernel selection
    seconds = run(samples)
    batches = -(-samples // BATCH)
    epoch_batches = -(-BIOVID_TRAIN_SAMPLES // BATCH)
    per_batch = seconds / batches
    # A full epoch is measured as is; fewer batches are scaled by the epoch's batch count.
    per_epoch = seconds if samples == BIOVID_TRAIN_SAMPLES else per_batch * epoch_batches
    return {
        "name": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batches": batches,
        "per_batch": per_batch,
        "per_epoch": per_epoch,
        "measured": "full epoch"
        if samples == BIOVID_TRAIN_SAMPLES
        else f"{batches} batches, scaled to {epoch_batches}",
    }


def bench_models(*, batches: int | None, device: torch.device, threads: int) -> None:
    preset = paper_preset()
    samples = BIOVID_TRAIN_SAMPLES if batches is None else min(BIOVID_TRAIN_SAMPLES, batches * BATCH)
    print(
        f"seconds per epoch of a BioVid LOSO fold ({BIOVID_TRAIN_SAMPLES} training samples, batch {BATCH}) "
        f"on {device}, {threads} thread(s), preset p600 (basic {preset.basic_p}, masking {preset.masking_p}, "
        f"dropout {preset.dropout}){', bf16 autocast' if device.type == 'cuda' else ', float32'}:"
    )
    results = []
    for name, (fusion, lengths) in MODELS.items():
        result = time_epoch(name, fusion=fusion, lengths=lengths, samples=samples, device=device, preset=preset)
        results.append(result)
        print(
            f"  {name:36s} {result['parameters'] / 1e6:5.2f} M params: {result['per_batch']:8.3f} s/batch, "
            f"{result['per_epoch']:9.1f} s/epoch ({result['measured']})"
        )
    print(f"one experiment = {BIOVID_FOLDS} folds x {PAPER_EPOCHS} epochs, at these rates:")
    for result in results:
        hours = result["per_epoch"] * BIOVID_FOLDS * PAPER_EPOCHS / 3600
        if device.type == "cpu":
            cost = f"{hours:10.1f} h of {threads} thread(s) = {hours * threads:.1f} CPU-thread hours"
        else:
            cost = f"{hours:10.1f} GPU hours"
        print(f"  {result['name']:36s} {cost}")


def demo_dataset(root: Path, *, subjects: int, per_class: int, frames: int) -> Path:
    """Synthetic stores of the demo's size for the config's demo experiments."""
    from painformer.data import write_sample_table
    from painformer.stores import SampleMeta, SampleStore

    rows = [
        {
            "dataset": "bench",
            "sample": f"s{s}-{c}-{k}",
            "subject": f"s{s}",
            "subject_id": str(s),
            "class_id": i * 4,
            "class_name": c,
            "video": "",
            "biosignals": "",
            "split": "",
        }
        for s in range(subjects)
        for i, c in enumerate(("BL1", "PA4"))
        for k in range(per_class)
    ]
    table = pd.DataFrame(rows)
    samples = write_sample_table(table, root / "samples.tsv")
    rng = np.random.default_rng(0)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    names = {name for experiment in config["experiments"].values() for name in experiment["inputs"]}
    for name in sorted(names):
        modality, representation = name.split("/")
        count = frames if modality in ("rgb", "thermal", "depth") else 1
        store = SampleStore.create_or_resume(
            root / "embeddings" / modality / f"{representation}.zarr",
            kind="embeddings",
            array_name="embeddings",
            meta=SampleMeta.from_table(table),
            item_shape=(count, 160),
            dtype="float32",
            fingerprint={},
        )
        for i, class_name in enumerate(table["class_name"]):
            values = rng.normal(size=(count, 160)) + (0.5 if class_name == "PA4" else -0.5)
            store.write(i, values.astype(np.float32))
    return samples


def bench_demo_process(threads: int) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo = config["dataset"]["demo"]
    name = next(iter(config["experiments"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = demo_dataset(
            root, subjects=demo["subjects"], per_class=demo["samples_per_class"], frames=config["video"]["num_frames"]
        )
        experiment_yaml = root / "experiment.yaml"
        experiment_yaml.write_text(yaml.safe_dump(config))
        command = [
            sys.executable,
            "-m",
            "painformer.cli",
            "train",
            "--config",
            str(experiment_yaml),
            "--experiment",
            name,
            "--fold",
            "s0",
            "--samples",
            str(samples),
            "--embeddings",
            str(root / "embeddings"),
            "--out",
            str(root / "fold"),
            "--threads",
            str(threads),
            "--device",
            "cpu",
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - started
    epochs = config["presets"][config["experiments"][name]["preset"]]["epochs"]
    print(
        f"one `painformer train` process, demo experiment {name} ({epochs} epochs, imports included): {seconds:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (training jobs use 1)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--batches", type=int, help="time this many batches and scale to an epoch (default: a full epoch)"
    )
    size.add_argument("--quick", action="store_true", help="time 2 batches: checks that the benchmark runs")
    parser.add_argument("--demo", action="store_true", help="also time one `painformer train` process on demo data")
    args = parser.parse_args()
    if args.batches is not None and args.batches < 1:
        parser.error("--batches must be at least 1")
    torch.set_num_threads(args.threads)
    bench_models(batches=2 if args.quick else args.batches, device=torch.device(args.device), threads=args.threads)
    if args.demo:
        bench_demo_process(args.threads)


if __name__ == "__main__":
    main()
