"""Cost of the linear probe that every training fold runs beside the Mixer, on a BioVid-size fold.

A BioVid NP vs P4 LOSO fold: 87 subjects x 40 samples (20 per class), one subject left out, so
3,440 training and 40 test samples. Random embeddings of that size (with a small class shift, so
the fits are not degenerate) in two widths: 160 values (a summed or averaged video, a biosignal)
and 22,080 values (a video's 138 frame embeddings concatenated, Eq. 11). The probe runs as
training runs it (``run_probe``: 5 L2 strengths x 3 inner subject-wise splits, then the final
fit); the figure is its wall time, with the machine's load average beside it.

    python benchmarks/probe.py [--widths 160 22080] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

SUBJECTS = 87
PER_CLASS = 20


def fold(width: int, seed: int = 0):
    from painformer.train.config import load_experiments
    from painformer.train.data import ExperimentData

    preset = {
        "epochs": 2,
        "basic_p": 0.0,
        "masking_p": 0.0,
        "mask_range": [0.1, 0.2],
        "label_smoothing": 0.0,
        "dropout": 0.0,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "batch_size": 32,
        "warmup_epochs": 0,
        "cooldown_epochs": 0,
        "noise_std": 0.1,
        "normalize": "none",
        "seed": 0,
    }
    raw = {"inputs": ["rgb/frames"], "fusion": "none", "task": "NP_vs_P4", "preset": "p"}
    experiment = load_experiments({"presets": {"p": preset}, "experiments": {"video": raw}})["video"]
    rng = np.random.default_rng(seed)
    subjects = np.repeat([f"S{index:03d}" for index in range(SUBJECTS)], 2 * PER_CLASS)
    labels = np.tile(np.repeat([0, 1], PER_CLASS), SUBJECTS).astype(np.int64)
    values = rng.normal(size=(labels.size, width)).astype(np.float32)
    values[:, :8] += 0.3 * labels[:, None]
    data = ExperimentData(
        samples=np.array([f"x{index}" for index in range(labels.size)]),
        subjects=subjects,
        labels=labels,
        splits=np.full(labels.size, ""),
        classes=("BL1", "PA4"),
        streams={"fused": values},
    )
    return experiment, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[160, 138 * 160])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from painformer.train.probe import run_probe

    for width in args.widths:
        experiment, data = fold(width)
        for _ in range(args.repeats):
            load = os.getloadavg()[0]
            started = time.perf_counter()
            result = run_probe(experiment, "S000", data)
            seconds = time.perf_counter() - started
            accuracy = float((result["probabilities"].argmax(axis=1) == data.labels[result["test_idx"]]).mean())
            print(
                f"width {width:>6}: {seconds:7.1f} s per fold ({result['n_train']} training samples, "
                f"C={result['C']['fused']:g}, test accuracy {accuracy:.2f}); load average {load:.1f} "
                f"on {os.cpu_count()} CPUs"
            )


if __name__ == "__main__":
    main()
