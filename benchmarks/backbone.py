"""Backbone throughput and memory, plus the Embedding-Mixer's training-step memory at L = 22,080.

Table 1: images/s of ``model.embed`` on random normalised 224x224 inputs at
batch 1, 8 and 32, in float32 and in bfloat16 (autocast) where the device has
native bf16 (CUDA with bf16, or a CPU with AVX512-BF16/AMX), with the peak
memory of each run: peak RSS on CPU, peak allocated GPU memory on CUDA.

Table 2 (``--mixer``): one forward+backward of the Embedding-Mixer (5 classes)
at batch 32 on 22,080-long inputs (the video embedding), with factored and with
textbook cross-attention: seconds and peak memory.

Every configuration runs in a fresh process, so each peak is its own.

    python benchmarks/backbone.py [--device auto] [--batches 1 8 32] [--seconds 3] [--threads N] [--mixer]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast runs on hardware support rather than emulation."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def embed_worker(*, device: torch.device, batch: int, dtype: str, seconds: float) -> dict:
    """Images/s of ``embed`` at one batch size and dtype, timed for at least ``seconds`` after a warm-up."""
    from painformer.models import load_painformer

    model = load_painformer(checkpoint=None, device=str(device))
    generator = torch.Generator().manual_seed(0)
    # Random inputs with the statistics of normalised images.
    images = torch.randn(batch, 3, 224, 224, generator=generator).to(device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    with torch.inference_mode(), autocast:
        model.embed(images)
        synchronize(device)
        iterations = 0
        start = time.perf_counter()
        while True:
            model.embed(images)
            iterations += 1
            synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return {"images_per_s": iterations * batch / elapsed, "iterations": iterations, "peak_mb": peak_memory_mb(device)}


def mixer_worker(*, device: torch.device, factored: bool) -> dict:
    """One Embedding-Mixer training step at batch 32 on 22,080-long inputs."""
    from painformer.models.mixer import EmbeddingMixer, set_factored_attention

    torch.manual_seed(0)
    model = EmbeddingMixer(num_classes=5).to(device).train()
    set_factored_attention(model, factored)
    x = torch.randn(32, 22_080, device=device)
    labels = torch.randint(0, 5, (32,), device=device)
    synchronize(device)
    baseline = peak_memory_mb(device)
    start = time.perf_counter()
    torch.nn.functional.cross_entropy(model(x), labels).backward()
    synchronize(device)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb(device), "baseline_mb": baseline}


def run_worker(args: argparse.Namespace, worker_args: list[str]) -> dict:
    command = [sys.executable, __file__, "--device", args.device, *worker_args]
    if args.threads:
        command += ["--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark worker {worker_args} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per configuration")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--mixer", action="store_true", help="also measure the Embedding-Mixer training step")
    parser.add_argument("--worker", choices=["embed", "mixer"], help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--factored", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from painformer.utils import select_device

    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker == "embed":
        print(json.dumps(embed_worker(device=device, batch=args.batch, dtype=args.dtype, seconds=args.seconds)))
        return
    if args.worker == "mixer":
        print(json.dumps(mixer_worker(device=device, factored=bool(args.factored))))
        return

    dtypes = ["fp32", "bf16"] if native_bf16(device) else ["fp32"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    memory = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB"
    print(f"PainFormer embed, {name}, torch {torch.__version__}" + ("" if "bf16" in dtypes else " (no native bf16)"))
    print(f"{'batch':>5} {'dtype':>5} {'images/s':>10} {'iters':>6} {memory:>13}")
    for batch in args.batches:
        for dtype in dtypes:
            row = run_worker(
                args, ["--worker", "embed", "--batch", str(batch), "--dtype", dtype, "--seconds", str(args.seconds)]
            )
            print(f"{batch:>5} {dtype:>5} {row['images_per_s']:>10.1f} {row['iterations']:>6} {row['peak_mb']:>13.0f}")
    if args.mixer:
        print()
        print("Embedding-Mixer forward+backward, batch 32, L = 22,080, 5 classes")
        print(f"{'cross-attention':>15} {'seconds':>8} {memory:>13} {'after init':>11}")
        for factored in (1, 0):
            row = run_worker(args, ["--worker", "mixer", "--factored", str(factored)])
            label = "factored" if factored else "textbook"
            print(f"{label:>15} {row['seconds']:>8.2f} {row['peak_mb']:>13.0f} {row['baseline_mb']:>11.0f}")


if __name__ == "__main__":
    main()
