"""Synthetic thermal: training time per epoch and generation throughput.

    python benchmarks/thermal.py [--pairs DIR] [--threads N] [--device auto]

Trains the default generator (64x64, batch 16) for a few epochs on DIR (or on
150 drawn face pairs made in a temporary folder) and times one epoch, then
times ``translate_frames`` (224 -> 64 -> 224, the path of ``thermal apply``)
at several batch sizes. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from painformer.thermal import (
    TrainSettings,
    load_generator,
    train_generator,
    translate_frames,
)
from painformer.thermal.drawn_faces import make_face_pairs
from painformer.utils import select_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", help="paired image folder (default: 150 drawn faces)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        pairs = Path(args.pairs) if args.pairs else make_face_pairs(Path(scratch) / "pairs", count=150, size=128)
        out = Path(scratch) / "gen.pt"
        print(f"device {device}, torch threads {torch.get_num_threads()}, pairs {pairs}")
        started = time.perf_counter()
        train_generator(pairs_dir=pairs, out=out, settings=TrainSettings(epochs=1), device=str(device))
        first = time.perf_counter() - started
        started = time.perf_counter()
        result = train_generator(
            pairs_dir=pairs, out=out, settings=TrainSettings(epochs=1 + args.epochs), device=str(device)
        )
        per_epoch = (time.perf_counter() - started) / args.epochs
        print(
            f"train  {result.n_train} pairs at 64x64, batch 16: first run (1 epoch, with loading) {first:.2f} s, "
            f"then {per_epoch:.2f} s per epoch"
        )

        generator, _ = load_generator(out, device=device)
        frames = np.random.default_rng(0).integers(0, 256, size=(64, 224, 224, 3), dtype=np.uint8)
        print(f"{'batch':>6}{'frames/s':>12}")
        for batch in (1, 8, 32, 64):
            translate_frames(generator, frames[:batch], image_size=64, device=device, batch_size=batch)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            repeats = 3
            for _ in range(repeats):
                translate_frames(generator, frames, image_size=64, device=device, batch_size=batch)
            elapsed = time.perf_counter() - started
            print(f"{batch:>6}{repeats * len(frames) / elapsed:>12.1f}")


if __name__ == "__main__":
    main()
