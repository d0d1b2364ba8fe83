"""Embedding extraction throughput and memory.

Prints, for CPU float32 at batch 8 and 32:
- infer-only images/s (model.embed on ready tensors),
- a plain reference loop (preprocess then forward, one batch after another, no overlap,
  no channels-last) end to end from an image store,
- the streaming pipeline (background loading, cross-sample batching, per-sample Zarr writes)
  end to end from the same store, and its speed-up over the reference;
then the peak RSS of the pipeline for a store of N and of 10 x N samples (each in a fresh
process), which shows that memory does not grow with the number of samples.

    python benchmarks/embed.py [--samples 48] [--items 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from painformer.embed import EmbedSettings, extract_embeddings
from painformer.embed.sources import StoreSource
from painformer.models import load_painformer, preprocess
from painformer.stores import SampleMeta, SampleStore


def make_store(path: Path, samples: int, items: int) -> pd.DataFrame:
    table = pd.DataFrame({
        "sample": [f"s{i:05d}" for i in range(samples)],
        "subject": [f"p{i % 8}" for i in range(samples)],
        "class_name": ["BL1" if i % 2 else "PA4" for i in range(samples)],
    })
    store = SampleStore.create_or_resume(path, kind="biosignal_images", array_name="images",
                                         meta=SampleMeta.from_table(table), item_shape=(items, 224, 224, 3),
                                         dtype="uint8", fingerprint={"bench": True})
    rng = np.random.default_rng(0)
    for i in range(samples):
        store.write(i, rng.integers(0, 256, (items, 28, 28, 3), dtype=np.uint8).repeat(8, 1).repeat(8, 2))
    return table


def reference(model, store: SampleStore, batch: int) -> float:
    images = store.array
    n = len(store) * images.shape[1]
    out = np.empty((n, 160), np.float32)
    start = time.perf_counter()
    flat = []
    with torch.inference_mode():
        for i in range(len(store)):
            flat.extend(store.read(i))
            while len(flat) >= batch or (i == len(store) - 1 and flat):
                chunk, flat = flat[:batch], flat[batch:]
                out[:len(chunk)] = model.embed(preprocess(np.stack(chunk))).numpy()
    return n / (time.perf_counter() - start)


def infer_only(model, batch: int, repeats: int = 3) -> float:
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        model.embed(x)
        start = time.perf_counter()
        for _ in range(repeats):
            model.embed(x)
    return batch * repeats / (time.perf_counter() - start)


def pipeline(model, store_path: Path, table: pd.DataFrame, out: Path, batch: int) -> float:
    source = StoreSource(path=store_path, table=table)
    start = time.perf_counter()
    extract_embeddings(source=source, out=out, model=model, modality="gsr", representation="waveform",
                       settings=EmbedSettings(batch_size=batch, device="cpu", loader_threads=2), progress=False)
    return len(table) * source.num_items / (time.perf_counter() - start)


def rss_child(samples: int, items: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = make_store(Path(tmp) / "images.zarr", samples, items)
        model = load_painformer(None)
        pipeline(model, Path(tmp) / "images.zarr", table, Path(tmp) / "emb.zarr", 16)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--items", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(args.rss_child, args.items)
        return
    model = load_painformer(None)
    print(f"CPU, float32, torch {torch.__version__}, {args.threads} threads, {args.samples} samples x {args.items} images")
    print(f"{'batch':>5} {'infer-only img/s':>17} {'reference e2e img/s':>20} {'pipeline e2e img/s':>19} {'speed-up':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        table = make_store(Path(tmp) / "images.zarr", args.samples, args.items)
        store = SampleStore.open(Path(tmp) / "images.zarr", mode="r")
        for batch in (8, 32):
            infer = infer_only(model, batch)
            ref = reference(model, store, batch)
            pipe = pipeline(model, Path(tmp) / "images.zarr", table, Path(tmp) / f"emb{batch}.zarr", batch)
            print(f"{batch:>5} {infer:>17.2f} {ref:>20.2f} {pipe:>19.2f} {pipe / ref:>8.2f}x")
    print("\npeak RSS of the streaming pipeline (fresh process each):")
    for samples in (args.samples, 10 * args.samples):
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(samples), "--items", str(args.items),
                              "--threads", str(args.threads)], capture_output=True, text=True, check=True)
        print(f"  {samples:>6} samples x {args.items} images: {float(out.stdout.strip().splitlines()[-1]):8.1f} MiB")


if __name__ == "__main__":
    main()
