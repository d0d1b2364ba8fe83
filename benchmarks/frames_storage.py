"""How to keep computed frames (thermal, depth): Zarr uint8 chunks vs an H.264 mp4.

For one clip of N 224x224 RGB frames, prints size on disk, write time, read
time and fidelity (PSNR against the frames written; inf = lossless) for:
- Zarr v3 uint8, one chunk per sample (what ``SampleStore`` writes), with the
  default codec (zstd) and with blosc-zstd + byte shuffle;
- H.264 mp4 (libx264 through PyAV), crf 18 (visually lossless) in yuv420p, and
  crf 0 in yuv444p (lossless in YUV), read back with decord.
With ``--depth-model-dir`` it also times depth estimation of the same frames
(frames/s), e.g. with the tiny untrained model from ``painformer depth make-tiny``.

The frames are a real clip when ``--video`` is given (any mp4: the demo
dataset's, or a BioVid one), else a synthetic face clip: a drawn face moving
over a textured background, blurred like a camera image, with sensor noise.

    python benchmarks/frames_storage.py [--frames 50] [--video X.mp4] [--repeats 3]
        [--depth-model-dir DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from painformer.video import read_frames


def synthetic_clip(num_frames: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """A face-like clip: skin ellipse with eyes and mouth drifting over a textured, noisy background."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(40, 140, (size, size, 3), dtype=np.uint8), (0, 0), 6)
    frames = []
    for t in range(num_frames):
        image = texture.copy()
        cx = int(size / 2 + 12 * math.sin(t / 9))
        cy = int(size / 2 + 6 * math.cos(t / 13))
        cv2.ellipse(image, (cx, cy), (60, 78), 0, 0, 360, (205, 165, 145), -1)
        for side in (-1, 1):
            cv2.ellipse(image, (cx + side * 25, cy - 18), (12, 5 + (t % 20 < 3) * -4 + 4), 0, 0, 360, (40, 30, 30), -1)
        cv2.ellipse(image, (cx, cy + 38), (22, 4 + t % 7), 0, 0, 360, (140, 60, 60), -1)
        image = cv2.GaussianBlur(image, (0, 0), 1.2)
        noise = rng.normal(0, 3, image.shape)
        frames.append(np.clip(image + noise, 0, 255).astype(np.uint8))
    return np.stack(frames)


def depth_like_clip(num_frames: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """What depth frames look like: the face clip as a smooth grey map replicated to three channels."""
    grey = cv2.GaussianBlur(synthetic_clip(num_frames, size, seed).mean(axis=-1).astype(np.float32), (0, 0), 3)
    grey = np.rint(255 * (grey - grey.min()) / max(float(np.ptp(grey)), 1e-6)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def zarr_case(frames: np.ndarray, path: Path, compressors) -> tuple[float, float, np.ndarray]:
    start = time.perf_counter()
    group = zarr.open_group(path, mode="w", zarr_format=3)
    kwargs = {} if compressors == "default" else {"compressors": compressors}
    array = group.create_array("frames", shape=(1, *frames.shape), chunks=(1, *frames.shape), dtype="uint8", **kwargs)
    array[0] = frames
    write = time.perf_counter() - start
    start = time.perf_counter()
    decoded = np.asarray(zarr.open_group(path, mode="r")["frames"][0])
    return write, time.perf_counter() - start, decoded


def mp4_case(frames: np.ndarray, path: Path, crf: int, pix_fmt: str) -> tuple[float, float, np.ndarray]:
    start = time.perf_counter()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    write = time.perf_counter() - start
    start = time.perf_counter()
    decoded = read_frames(path, num_frames=None, crop="center", size=frames.shape[1])
    return write, time.perf_counter() - start, decoded


def best_of(repeats: int, run):
    results = [run() for _ in range(repeats)]
    return min(r[0] for r in results), min(r[1] for r in results), results[-1][2]


def depth_throughput(frames: np.ndarray, model_dir: str, batch_size: int, repeats: int) -> tuple[float, str]:
    from painformer.depth import estimate_depth, load_depth_model
    from painformer.depth.model import describe_model_dir
    from painformer.utils import select_device

    device = select_device("auto")
    model, processor = load_depth_model(model_dir, device)
    estimate_depth(frames[:batch_size], model, processor, device, batch_size)  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimate_depth(frames, model, processor, device, batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    return len(frames) / min(timings), f"{describe_model_dir(model_dir).name} on {device}, batch {batch_size}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--video", help="take the frames from this video instead of the synthetic clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--depth-model-dir", help="also time depth estimation with this model directory")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.video:
        clips = {f"{args.video}, {args.frames} evenly spaced frames": read_frames(args.video, num_frames=args.frames)}
    else:
        clips = {
            f"synthetic RGB face clip, {args.frames} frames": synthetic_clip(args.frames),
            f"synthetic depth-like clip (smooth grey x3), {args.frames} frames": depth_like_clip(args.frames),
        }
    for source, frames in clips.items():
        storage_table(source, frames, args.repeats)

    if args.depth_model_dir:
        frames = next(iter(clips.values()))
        fps, what = depth_throughput(frames, args.depth_model_dir, args.batch_size, args.repeats)
        print(f"depth estimation: {fps:.1f} frames/s ({what}, {torch.get_num_threads()} CPU threads)")


def storage_table(source: str, frames: np.ndarray, repeats: int) -> None:
    raw = frames.nbytes
    print(f"\n{source}: {frames.shape} uint8, raw {raw / 1e6:.2f} MB")

    cases = {
        "zarr uint8, default codec (zstd)": lambda p: zarr_case(frames, p / "a.zarr", "default"),
        "zarr uint8, blosc zstd-5 shuffle": lambda p: zarr_case(
            frames, p / "b.zarr", [BloscCodec(cname="zstd", clevel=5, shuffle=BloscShuffle.shuffle, typesize=1)]
        ),
        "mp4 H.264 crf 18 yuv420p": lambda p: mp4_case(frames, p / "c.mp4", 18, "yuv420p"),
        "mp4 H.264 crf 0 yuv444p": lambda p: mp4_case(frames, p / "d.mp4", 0, "yuv444p"),
    }
    print(
        f"{'storage':36s} {'size MB':>8s} {'ratio':>6s} {'write ms':>9s} {'read ms':>8s} {'read fps':>9s} {'PSNR dB':>8s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases.items():
            folder = Path(tmp) / name.split()[0] / str(abs(hash(name)))
            folder.mkdir(parents=True)
            write, read, decoded = best_of(repeats, lambda case=case, folder=folder: case(folder))
            size = sum(folder_size(p) for p in folder.iterdir())
            print(
                f"{name:36s} {size / 1e6:8.2f} {raw / size:6.1f} {write * 1e3:9.1f} {read * 1e3:8.1f} "
                f"{len(frames) / read:9.0f} {psnr(frames, decoded):8.2f}"
            )


if __name__ == "__main__":
    main()
