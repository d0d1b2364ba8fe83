"""Training speed of multi-task pretraining: seconds per image of one backbone update.

One step = forward of a batch of random 224x224 images through PainFormer (drop-path on, as in
pretraining), a float32 loss on the 160-d embeddings, backward and an AdamW update: the part of
``painformer pretrain`` that dominates its run time (augmentation and task heads excluded).
Rows: float32 and bfloat16 autocast (the ``training.precision`` setting), at the given batch
sizes; the first steps are warm-up and not timed.

    python benchmarks/pretrain_step.py [--device auto] [--batches 8 16] [--steps 4] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from painformer.models.painformer import PainFormer
from painformer.utils import select_device


def seconds_per_image(*, device: torch.device, batch: int, bfloat16: bool, steps: int, warmup: int = 1) -> float:
    torch.manual_seed(0)
    model = PainFormer(drop_path_rate=0.1).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, 224, 224, device=device)
    timings = []
    for step in range(warmup + steps):
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            embeddings = model.forward_features(images)
        loss = embeddings.float().pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2] / batch  # median step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads")
    print("| batch | float32 s/image | bfloat16 s/image | speed-up |")
    print("|---|---|---|---|")
    for batch in args.batches:
        full = seconds_per_image(device=device, batch=batch, bfloat16=False, steps=args.steps)
        half = seconds_per_image(device=device, batch=batch, bfloat16=True, steps=args.steps)
        print(f"| {batch} | {full:.3f} | {half:.3f} | {full / half:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
