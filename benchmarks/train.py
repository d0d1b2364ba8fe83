"""Training cost: seconds per fold-epoch, folds stacked in one process vs one fold per process.

Default table (``painformer.train.stack`` against ``painformer.train.loop``):

- stacked: K = 1, 6 and 87 folds of one experiment trained as one stacked model
  (``StackedTrainer.run_epoch``), for a demo-sized fold (config/config.yaml: the demo preset, batch
  16, 40 training samples = 3 batches, the default Embedding-Mixer on 160 values) and for a
  BioVid-sized fold (preset p600 of config/biovid.yaml, batch 32, 3,440 training samples = 108
  batches; single-input Mixer on 160 values; ``--video`` adds the 22,080-long video Mixer at K = 1
  and 6). Each K gets K subjects with just enough samples for a batch or more; the time per
  fold-step is scaled to the epoch's batch count (the stacked step costs the same whatever the
  dataset's size: a batch is an index gather);
- one fold per process: ``train_epoch`` of one fold (the ``--fold`` path) plus the start-up every
  process pays (imports, store reads, writing the folder) shared over the preset's epochs. The
  start-up is measured: wall time of a ``painformer train --fold`` process on demo-sized stores minus
  its ``train_seconds``; the same for a ``--folds all`` process (one start-up for all its folds).

It also times ``python -c "import torch"``, ``painformer --help`` and the imports of ``painformer
train`` in fresh processes. CPU rows by default; ``--device cuda`` for the GPU rows.

    python benchmarks/train.py [--threads 1] [--device cpu] [--video] [--models [--quick | --batches N]]

``--models`` prints the older table instead: seconds per epoch of one BioVid fold for the three
paper-sized models (single-input Mixer, video Mixer, Eq. 12) with ``train_epoch``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
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


def seconds_of_train_epoch(
    model, optimizer, streams: dict, labels, *, count: int, preset, device: torch.device
) -> float:
    """Wall seconds of one ``train_epoch`` over the first ``count`` samples, standardisation an identity."""
    from painformer.train.loop import train_epoch

    means = {name: torch.zeros(values.shape[1], device=device) for name, values in streams.items()}
    stds = {name: torch.ones(values.shape[1], device=device) for name, values in streams.items()}
    synchronize(device)
    started = time.perf_counter()
    train_epoch(
        model,
        optimizer,
        {name: values[:count] for name, values in streams.items()},
        labels[:count],
        preset=preset,
        means=means,
        stds=stds,
        order_generator=torch.Generator().manual_seed(1),
        augment_generator=torch.Generator(device=device).manual_seed(2),
    )
    synchronize(device)
    return time.perf_counter() - started


def time_epoch(name: str, *, fusion: str, lengths: dict[str, int], samples: int, device: torch.device, preset) -> dict:
    """Seconds of ``train_epoch`` over ``samples`` random training samples (after a one-batch warm-up)."""
    from painformer.train.fusion import build_model

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

    def run(count: int) -> float:
        return seconds_of_train_epoch(model, optimizer, streams, labels, count=count, preset=preset, device=device)

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


@contextlib.contextmanager
def demo_train_command(config: dict, threads: int):
    """A demo dataset with its embedding stores in a temporary folder; yields (folder, the
    `painformer train` command for the config's first experiment, without --fold(s) and --out)."""
    demo = config["dataset"]["demo"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = demo_dataset(
            root, subjects=demo["subjects"], per_class=demo["samples_per_class"], frames=config["video"]["num_frames"]
        )
        experiment_yaml = root / "experiment.yaml"
        experiment_yaml.write_text(yaml.safe_dump(config))
        command = [sys.executable, "-m", "painformer.cli", "train", "--config", str(experiment_yaml)]
        command += ["--experiment", next(iter(config["experiments"])), "--samples", str(samples)]
        command += ["--embeddings", str(root / "embeddings"), "--threads", str(threads), "--device", "cpu"]
        yield root, command


def bench_demo_process(threads: int) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    name = next(iter(config["experiments"]))
    with demo_train_command(config, threads) as (root, command):
        started = time.perf_counter()
        subprocess.run([*command, "--fold", "s0", "--out", str(root / "fold")], check=True, capture_output=True)
        seconds = time.perf_counter() - started
    epochs = config["presets"][config["experiments"][name]["preset"]]["epochs"]
    print(
        f"one `painformer train` process, demo experiment {name} ({epochs} epochs, imports included): {seconds:.2f} s"
    )


def run_seconds(code: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(code, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def bench_imports() -> None:
    python = sys.executable
    rows = {
        'python -c "import torch"': [python, "-c", "import torch"],
        "painformer --help": [python, "-m", "painformer.cli", "--help"],
        "imports of painformer train (no timm)": [
            python,
            "-c",
            "import sys, painformer.train.stack, painformer.train.probe, painformer.train.final;"
            " assert 'timm' not in sys.modules",
        ],
    }
    for name, command in rows.items():
        seconds = min(run_seconds(command) for _ in range(3))
        print(f"  {name:46s} {seconds:6.2f} s (best of 3)")


def synthetic_data(*, subjects: int, per_subject: int, lengths: dict[str, int], seed: int = 0):
    """LOSO data of ``subjects`` subjects with ``per_subject`` samples (half BL1, half PA4) each."""
    from painformer.train.data import ExperimentData

    rng = np.random.default_rng(seed)
    count = subjects * per_subject
    labels = np.tile(np.arange(per_subject) % 2, subjects).astype(np.int64)
    return ExperimentData(
        samples=np.array([f"x{i}" for i in range(count)]),
        subjects=np.repeat([f"s{i:02d}" for i in range(subjects)], per_subject),
        labels=labels,
        splits=np.full(count, ""),
        classes=("BL1", "PA4"),
        streams={name: rng.normal(size=(count, length)).astype(np.float32) for name, length in lengths.items()},
    )


def experiment_of(preset, *, fusion: str, inputs: tuple[str, ...], model: dict):
    from painformer.train.config import Experiment

    return Experiment(
        name="bench",
        inputs=inputs,
        fusion=fusion,
        aggregation="concat",
        task="NP_vs_P4",
        protocol="loso",
        preset=preset,
        model=model,
    )


def stacked_fold_step(experiment, lengths: dict[str, int], folds: int, device: torch.device, steps: int) -> float:
    """Seconds per fold-step of ``folds`` folds stacked: ``steps`` steps timed after a warm-up step."""
    from painformer.train.stack import StackedTrainer

    subjects = max(folds, 2)
    batch = experiment.preset.batch_size
    per_subject = max(2, 2 * math.ceil(batch / (2 * (subjects - 1))))
    data = synthetic_data(subjects=subjects, per_subject=per_subject, lengths=lengths)
    names = sorted(set(data.subjects.tolist()))[:folds]
    trainer = StackedTrainer(experiment, names, data, device=device)
    trainer.run_epoch(0, max_steps=1)
    synchronize(device)
    started = time.perf_counter()
    trainer.run_epoch(1, max_steps=steps)
    synchronize(device)
    return (time.perf_counter() - started) / (folds * min(steps, trainer.steps))


def single_fold_step(experiment, lengths: dict[str, int], device: torch.device, batches: int) -> float:
    """Seconds per step of the one-fold path (``train_epoch``), ``batches`` full batches timed after one."""
    from painformer.train.fusion import build_model
    from painformer.train.loop import make_optimizer

    preset = experiment.preset
    torch.manual_seed(0)
    model = build_model(
        fusion=experiment.fusion,
        stream_names=tuple(lengths),
        num_classes=2,
        dropout=preset.dropout,
        mixer_kwargs=experiment.model,
        video_encoder_kwargs={},
    ).to(device)
    optimizer = make_optimizer(model.parameters(), preset=preset, device=device)
    data = synthetic_data(subjects=1, per_subject=batches * preset.batch_size, lengths=lengths)
    streams = {n: torch.from_numpy(v).to(device) for n, v in data.streams.items()}
    labels = torch.from_numpy(data.labels).to(device)

    def run(count: int) -> float:
        return seconds_of_train_epoch(model, optimizer, streams, labels, count=count, preset=preset, device=device)

    run(preset.batch_size)
    return run(batches * preset.batch_size) / batches


def process_startup(threads: int) -> dict:
    """Start-up seconds of a `painformer train` process: wall time minus the metrics' train_seconds."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo = config["dataset"]["demo"]
    # Few epochs: the start-up is what is measured here (the training's own time is subtracted).
    config["presets"]["demo"].update(epochs=3, warmup_epochs=1, cooldown_epochs=1)
    out = {}
    with demo_train_command(config, threads) as (root, base):
        wall = run_seconds([*base, "--fold", "s0", "--out", str(root / "one")])
        trained = json.loads((root / "one" / "metrics.json").read_text())["train_seconds"]
        out["one fold"] = (wall, wall - trained)
        wall = run_seconds([*base, "--folds", "all", "--out", str(root / "all")])
        trained = sum(json.loads(p.read_text())["train_seconds"] for p in (root / "all").glob("fold-*/metrics.json"))
        out[f"{demo['subjects']} folds stacked"] = (wall, wall - trained)
    return out


def bench_stacked(
    *, device: torch.device, threads: int, video: bool, folds: list[int], biovid_folds: list[int], biovid_steps: int
) -> None:
    from painformer.train.config import load_experiments

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo = load_experiments(config)[next(iter(config["experiments"]))]
    print(f"start-up of one `painformer train` process (demo stores, {threads} thread(s), cpu):")
    startup = process_startup(threads)
    for name, (wall, seconds) in startup.items():
        print(f"  {name:24s} wall {wall:6.2f} s, start-up (wall - train_seconds) {seconds:6.2f} s")
    per_process = startup["one fold"][1]
    # (label, preset, model kwargs, training samples, stream lengths, steps timed)
    sizes = [("demo", demo.preset, dict(demo.model), 40, {"fused": 160}, 3)]
    sizes.append(("BioVid 160", paper_preset(), {}, BIOVID_TRAIN_SAMPLES, {"fused": 160}, biovid_steps))
    if video:
        sizes.append(("BioVid video", paper_preset(), {}, BIOVID_TRAIN_SAMPLES, {"fused": VIDEO_LENGTH}, 1))
    print(
        f"seconds per fold-epoch on {device}, {threads} thread(s); one fold per process adds the start-up "
        f"({per_process:.2f} s) shared over the preset's epochs; 'stacked' adds it shared over K folds too:"
    )
    print(f"  {'fold size':14s} {'epochs':>6s} {'K':>3s} {'stacked':>10s} {'one per process':>16s} {'ratio':>6s}")
    for label, preset, model, train_samples, lengths, steps in sizes:
        experiment = experiment_of(preset, fusion="none", inputs=("gsr/waveform",), model=model)
        batches = math.ceil(train_samples / preset.batch_size)
        alone = single_fold_step(experiment, lengths, device, batches=min(steps, batches)) * batches
        alone += per_process / preset.epochs
        for count in folds if label == "demo" else biovid_folds:
            stacked = stacked_fold_step(experiment, lengths, count, device, steps) * batches
            stacked += per_process / (preset.epochs * count)
            print(f"  {label:14s} {preset.epochs:6d} {count:3d} {stacked:10.4f} {alone:16.4f} {stacked / alone:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (training jobs use 1)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--video", action="store_true", help="stacked table: add the 22,080-long video Mixer")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 6, 87], help="stacked table: K values")
    parser.add_argument(
        "--biovid-folds", type=int, nargs="+", default=[1, 6, 87], help="stacked table: K values, BioVid-sized folds"
    )
    parser.add_argument(
        "--biovid-steps", type=int, default=1, help="stacked table: steps timed for a BioVid-sized fold (scaled to 108)"
    )
    parser.add_argument("--skip-imports", action="store_true", help="leave out the import timings")
    parser.add_argument("--models", action="store_true", help="the per-model table of one BioVid fold instead")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--batches", type=int, help="--models: time this many batches and scale to an epoch (default: a full epoch)"
    )
    size.add_argument("--quick", action="store_true", help="--models: time 2 batches")
    parser.add_argument("--demo", action="store_true", help="--models: also time one `painformer train` process")
    args = parser.parse_args()
    if args.batches is not None and args.batches < 1:
        parser.error("--batches must be at least 1")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.models:
        bench_models(batches=2 if args.quick else args.batches, device=device, threads=args.threads)
        if args.demo:
            bench_demo_process(args.threads)
        return
    if not args.skip_imports:
        print("start-up (fresh processes):")
        bench_imports()
    bench_stacked(
        device=device,
        threads=args.threads,
        video=args.video,
        folds=args.folds,
        biovid_folds=args.biovid_folds,
        biovid_steps=args.biovid_steps,
    )
    if device.type != "cuda":
        print("CUDA rows: not measured (run with --device cuda on a GPU machine)")


if __name__ == "__main__":
    main()
