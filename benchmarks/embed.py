"""Embedding extraction throughput and memory.

Reads images from an image store (default; biosignal images, thermal and depth frames
come from such stores) or, with ``--video WxH``, decodes RGB frames from synthetic
H.264 videos of that size (decode, centre crop and resize are then part of every
figure). Prints, for each precision (``--precisions``; float32 and bfloat16 on CPU,
bfloat16 on CUDA) at two batch sizes (8 and 32 on CPU, 32 and 128 on CUDA):
- infer-only images/s (the backbone on ready tensors, autocast in that precision;
  channels_last on CUDA);
- load-only images/s (what the background loader threads deliver: uint8 images read
  from the store or decoded and cropped, no inference);
- which side bounds the pipeline: ``loading`` when the loader threads deliver fewer
  images/s than the backbone takes (the device would wait on decoding), else ``backbone``;
- a plain reference loop end to end from an image store (read, preprocess, forward,
  one batch after another, no overlap, no channels_last; same precision);
- the streaming pipeline end to end from the same store (background loading,
  cross-sample batching, per-sample Zarr writes) and its speed-up over the reference.

On CUDA it also prints the fraction of the backbone's FLOP-bound limit that the
infer-only and pipeline figures reach (the bf16 matrix-product rate is measured in
the same run). Then the tolerance between thread counts, devices and precisions:
relative error, largest difference and lowest cosine similarity of CPU float32 on
one thread, CPU bf16 autocast and (on CUDA) CUDA float32 and CUDA bf16 embeddings
against CPU float32 on the same images.

Last, on CPU, the peak RSS of the pipeline for a store of N and of 10 x N samples
(each in a fresh process): memory does not grow with the number of samples.

    python benchmarks/embed.py [--device cpu|cuda] [--samples 48] [--items 2] [--threads 2] [--loader-threads 2]
                               [--video 1388x1038 --frames 8] [--repeats 3] [--precisions float32,bfloat16]
                               [--batches 8,32] [--no-tolerance] [--no-rss] [--summary]

``--summary`` adds machine-readable ``SUMMARY<TAB>key<TAB>value`` lines (benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import contextlib
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
from painformer.embed.sources import StoreSource, VideoSource
from painformer.models import load_painformer, preprocess
from painformer.models.flops import count_macs
from painformer.stores import SampleMeta, SampleStore, prefetch


def table_of(samples: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample": [f"s{i:05d}" for i in range(samples)],
            "subject": [f"p{i % 8}" for i in range(samples)],
            "class_name": ["BL1" if i % 2 else "PA4" for i in range(samples)],
        }
    )


def make_store(path: Path, samples: int, items: int) -> pd.DataFrame:
    table = table_of(samples)
    store = SampleStore.create_or_resume(
        path,
        kind="biosignal_images",
        array_name="images",
        meta=SampleMeta.from_table(table),
        item_shape=(items, 224, 224, 3),
        dtype="uint8",
        fingerprint={"bench": True},
    )
    rng = np.random.default_rng(0)
    for i in range(samples):
        store.write(i, rng.integers(0, 256, (items, 28, 28, 3), dtype=np.uint8).repeat(8, 1).repeat(8, 2))
    return table


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precision_context(device: torch.device, precision: str):
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def reference(model, source, batch: int, device: torch.device, precision: str) -> float:
    """Load, preprocess and embed one batch after another; nothing overlaps."""
    n = len(source.meta.samples) * source.num_items
    out = np.empty((n, 160), np.float32)
    synchronize(device)
    start = time.perf_counter()
    flat = []
    written = 0
    with torch.inference_mode(), precision_context(device, precision):
        for i in range(len(source.meta.samples)):
            flat.extend(source.load(i))
            last = i == len(source.meta.samples) - 1
            while len(flat) >= batch or (last and flat):
                chunk, flat = flat[:batch], flat[batch:]
                embeddings = model.embed(preprocess(np.stack(chunk)).to(device)).float().cpu().numpy()
                out[written : written + len(chunk)] = embeddings
                written += len(chunk)
    return n / (time.perf_counter() - start)


def infer_only(model, batch: int, device: torch.device, seconds: float, precision: str) -> float:
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
        model = model.to(memory_format=torch.channels_last)
    with torch.inference_mode(), precision_context(device, precision):
        for _ in range(2):
            model.embed(x)
        synchronize(device)
        iterations, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.embed(x)
            iterations += 1
            synchronize(device)
    model.to(memory_format=torch.contiguous_format)
    return iterations * batch / (time.perf_counter() - start)


def load_only(source, loader_threads: int) -> float:
    """Images/s the loader threads deliver: uint8 images read or decoded, no preprocessing, no inference."""

    def load(index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(source.load(index)))

    samples = len(source.meta.samples)
    start = time.perf_counter()
    for _ in prefetch(load, range(samples), threads=loader_threads, lookahead=4 * loader_threads):
        pass
    return samples * source.num_items / (time.perf_counter() - start)


def pipeline(
    model, source, out: Path, batch: int, device: torch.device, loader_threads: int, precision: str = "float32"
) -> float:
    synchronize(device)
    start = time.perf_counter()
    extract_embeddings(
        source=source,
        out=out,
        model=model,
        modality="gsr",
        representation="waveform",
        settings=EmbedSettings(
            batch_size=batch,
            device=str(device),
            loader_threads=loader_threads,
            lookahead=max(4, 2 * batch // source.num_items),
            precision=precision,
        ),
        progress=False,
        force=True,
    )
    return len(source.meta.samples) * source.num_items / (time.perf_counter() - start)


def make_videos(folder: Path, samples: int, width: int, height: int, frames: int = 138) -> pd.DataFrame:
    """Synthetic H.264 videos (moving gradients and a moving disc) and their sample table."""
    import av
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    table = table_of(samples)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i, sample in enumerate(table["sample"]):
        path = folder / f"{sample}.mp4"
        with av.open(str(path), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=25, options={"crf": "20", "preset": "veryfast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for t in range(frames):
                base = (np.sin(xx / 97 + t / 9 + i) + np.cos(yy / 71 - t / 13)) * 60 + 128
                frame = np.repeat(base[..., None], 3, axis=2).astype(np.uint8)
                centre = (int(width / 2 + width / 4 * np.sin(t / 11)), int(height / 2))
                cv2.circle(frame, centre, height // 6, (200, 120, 90), thickness=-1)
                yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
                for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(str(path))
    return table.assign(video=paths)


def bf16_matmul_tflops(device: torch.device, size: int = 8192) -> float:
    """Measured bf16 matrix-product rate on random data: the FLOP ceiling of this GPU."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    synchronize(device)
    repeats = 10
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def tolerance_table(model, device: torch.device, images: int = 32) -> None:
    """Embeddings of other thread counts, devices and precisions against CPU float32 (all threads)."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (images, 28, 28, 3), dtype=np.uint8).repeat(8, 1).repeat(8, 2)
    x = preprocess(pixels)
    threads = torch.get_num_threads()
    model.to("cpu")
    variants = {}
    with torch.inference_mode():
        reference_cpu = model.embed(x).double()
        torch.set_num_threads(1)
        variants["CPU float32, 1 thread"] = model.embed(x).double()
        torch.set_num_threads(threads)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            variants["CPU bf16 autocast"] = model.embed(x).double()
        if device.type == "cuda":
            model.to(device)
            variants["CUDA float32"] = model.embed(x.to(device)).double().cpu()
            last = model.to(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                variants["CUDA bf16 channels_last"] = (
                    last.embed(x.to(device).contiguous(memory_format=torch.channels_last)).double().cpu()
                )
            model.to(memory_format=torch.contiguous_format)
    model.to(device)
    print(f"\ntolerance against CPU float32 with {threads} threads ({images} images):")
    print(f"{'variant':>24} {'|a-b|/|b|':>10} {'max |a-b|':>10} {'min cosine':>11}")
    for name, values in variants.items():
        relative = (values - reference_cpu).norm() / reference_cpu.norm()
        cosine = torch.nn.functional.cosine_similarity(values, reference_cpu, dim=1).min()
        max_abs = (values - reference_cpu).abs().max()
        print(f"{name:>24} {relative:>10.2e} {max_abs:>10.2e} {cosine:>11.6f}")


def rss_child(samples: int, items: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = make_store(Path(tmp) / "images.zarr", samples, items)
        model = load_painformer(None)
        source = StoreSource(path=Path(tmp) / "images.zarr", table=table)
        pipeline(model, source, Path(tmp) / "emb.zarr", 16, torch.device("cpu"), 2)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--items", type=int, default=2, help="images per sample (store source)")
    parser.add_argument(
        "--video",
        metavar="WxH",
        help="read RGB frames from synthetic H.264 videos of this size "
        "(BioVid: 1388x1038, 138 frames) instead of an image store",
    )
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per video (with --video)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--loader-threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="reference and pipeline runs, interleaved; medians")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds of infer-only")
    parser.add_argument("--precisions", help="comma-separated; default float32,bfloat16 on CPU, bfloat16 on CUDA")
    parser.add_argument("--batches", help="comma-separated batch sizes; default 8,32 on CPU, 32,128 on CUDA")
    parser.add_argument("--no-tolerance", action="store_true", help="skip the tolerance table")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS runs")
    parser.add_argument("--summary", action="store_true", help="also print SUMMARY lines (gpu_check.sh)")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(args.rss_child, args.items)
        return
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batches = [int(b) for b in args.batches.split(",")] if args.batches else ([32, 128] if cuda else [8, 32])
    precisions = args.precisions.split(",") if args.precisions else (["bfloat16"] if cuda else ["float32", "bfloat16"])
    model = load_painformer(None).to(device)
    name = torch.cuda.get_device_name(device) if cuda else "CPU"

    def summary(key: str, value) -> None:
        if args.summary:
            print(f"SUMMARY\t{key}\t{value}", flush=True)

    summary("device", name)
    with tempfile.TemporaryDirectory() as tmp:
        if args.video:
            width, height = (int(v) for v in args.video.lower().split("x"))
            source = VideoSource(
                table=make_videos(Path(tmp) / "videos", args.samples, width, height), num_frames=args.frames
            )
            what = f"{args.samples} videos {width}x{height} x {args.frames} frames"
        else:
            table = make_store(Path(tmp) / "images.zarr", args.samples, args.items)
            source = StoreSource(path=Path(tmp) / "images.zarr", table=table)
            what = f"image store, {args.samples} samples x {args.items} images"
        print(
            f"{name}{', channels_last' if cuda else ''}, torch {torch.__version__}, {args.threads} threads, "
            f"{args.loader_threads} loader threads, {what}; medians of {args.repeats} interleaved runs"
        )
        if cuda:
            peak = bf16_matmul_tflops(device)
            flop_per_image = 2 * count_macs(model.to("cpu"), torch.zeros(1, 3, 224, 224))
            model.to(device)
            limit = peak * 1e12 / flop_per_image
            print(
                f"bf16 matrix-product rate {peak:.0f} TFLOP/s; backbone {flop_per_image / 1e9:.2f} GFLOP per image "
                f"-> FLOP-bound limit {limit:,.0f} images/s"
            )
            summary("flop_bound_images_per_s", f"{limit:.0f}")
        print(
            f"{'precision':>9} {'batch':>5} {'infer-only':>11} {'load-only':>10} {'bound by':>9} {'reference':>10} "
            f"{'pipeline':>9} {'speed-up':>9}" + ("  infer/limit  pipeline/limit" if cuda else "")
        )
        for precision in precisions:
            for batch in batches:
                infer = infer_only(model, batch, device, args.seconds, precision)
                loaded = load_only(source, args.loader_threads)
                runs = [
                    (
                        reference(model, source, batch, device, precision),
                        pipeline(
                            model,
                            source,
                            Path(tmp) / f"emb{batch}.zarr",
                            batch,
                            device,
                            args.loader_threads,
                            precision,
                        ),
                    )
                    for _ in range(args.repeats)
                ]
                ref = float(np.median([r for r, _ in runs]))
                pipe = float(np.median([p for _, p in runs]))
                bound = "loading" if loaded < infer else "backbone"
                line = (
                    f"{precision:>9} {batch:>5} {infer:>11.2f} {loaded:>10.1f} {bound:>9} {ref:>10.2f} {pipe:>9.2f} "
                    f"{pipe / ref:>8.2f}x"
                )
                if cuda:
                    line += f"  {infer / limit:>11.1%}  {pipe / limit:>14.1%}"
                    summary(
                        f"{precision}_batch{batch}_infer", f"{infer:.0f} images/s ({infer / limit:.1%} of FLOP bound)"
                    )
                    summary(
                        f"{precision}_batch{batch}_pipeline", f"{pipe:.0f} images/s ({pipe / limit:.1%} of FLOP bound)"
                    )
                    summary(f"{precision}_batch{batch}_bound_by", f"{bound} (load-only {loaded:.0f} images/s)")
                print(line, flush=True)
        print("(images/s; speed-up = pipeline / reference; bound by: the slower of loading and the backbone)")
    if not args.no_tolerance:
        tolerance_table(model, device)
    if cuda or args.video or args.no_rss:
        return
    print("\npeak RSS of the streaming pipeline (fresh process each):")
    for samples in (args.samples, 10 * args.samples):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--rss-child",
                str(samples),
                "--items",
                str(args.items),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"  {samples:>6} samples x {args.items} images: {float(out.stdout.strip().splitlines()[-1]):8.1f} MiB")


if __name__ == "__main__":
    main()
