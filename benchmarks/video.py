"""Video modalities: decoding speed, thermal and depth throughput, frame-store size per video.

    python benchmarks/video.py [--demo-root /tmp/bench_demo] [--threads 2] [--repeats 3] [--decoders decord pyav]
        [--depth-model-dir DIR] [--thermal-checkpoint X.pt] [--storage-videos 2] [--device auto]

Prints one table:

- **decode**: frames/s and ms per video of ``painformer.video.read_frames`` over
  every demo video, with each decoder (decord and PyAV, timed in turn), for all
  frames and for 4 evenly spaced frames, with the centre crop and the face crop
  (Haar cascade, one box per video), and for 4 frames with an expected frame
  rate (``fps=25``: the check only; ``fps=50``: the 25 fps videos resampled by
  timestamp); then on as many lossy clips with a key frame every 25 frames,
  where reading 4 frames can skip ahead (seek) instead of decoding from the
  first frame. The PyAV rows say how far PyAV's pixels are from decord's;
- **thermal**: frames/s of ``translate_frames`` (224 -> 64 -> 224, the path of
  ``thermal apply``) at batch 16 over one video's frames, with a generator of the default architecture
  and random pix2pix initial weights (speed does not depend on the weights);
- **depth**: frames/s of ``estimate_depth`` at batch 16 with the tiny untrained
  Depth Anything (``painformer depth make-tiny``) and, with
  ``--depth-model-dir``, with that model;
- **storage**: bytes per video of the thermal and depth frame stores written by
  ``apply_generator`` / ``apply_depth`` exactly as the workflow runs them (Zarr v3
  uint8 ``SampleStore`` (n, frames, 224, 224, 3), one chunk per sample, default
  codec), for 4 frames and for every frame of a video, over the first
  ``--storage-videos`` demo videos. Sizes depend on the content: the thermal
  figure is for ``--thermal-checkpoint`` (a trained generator, e.g. the demo
  workflow's ``results/demo/models/thermal_generator.pt``) or else for the
  random generator, whose output says little about a trained one's; the
  depth figure is for the tiny untrained model's maps (a real model's
  smoother maps compress differently).

Every timing is the best of ``--repeats`` runs after a warm-up run. The demo
dataset (2 subjects, 1 sample per class: 10 videos of 256x256, 138 frames, 25
fps) is generated in ``--demo-root`` when absent. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from painformer.video import read_frames

BATCH_SIZE = 16
FRAME_SIZE = 224


@dataclass(frozen=True)
class Row:
    """One line of the printed table; empty strings where a column does not apply."""

    what: str
    case: str
    frames_per_s: str = ""
    ms_per_video: str = ""
    bytes_per_video: str = ""
    note: str = ""


def best_seconds(run: Callable[[], object], *, repeats: int, device: torch.device) -> float:
    """Shortest wall time of ``repeats`` calls of ``run`` after one warm-up call."""

    def timed() -> float:
        started = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return min(timed() for _ in range(repeats))


def ensure_demo(root: Path) -> Path:
    """The demo dataset at ``root``, generated (2 subjects, 1 sample per class) when it is not there."""
    if not (root / "samples.csv").is_file():
        from painformer.data.demo import generate_demo_dataset

        print(f"generating the demo dataset in {root} ...", flush=True)
        generate_demo_dataset(root, subjects=2, samples_per_class=1, seed=0)
    return root


def interleaved_best(runs: dict[str, Callable[[], object]], *, repeats: int) -> tuple[dict[str, float], dict]:
    """Shortest wall time of each run over ``repeats`` rounds that take the runs in turn (after a warm-up of each),
    so that a change in machine load hits every run alike; also each run's warm-up result."""
    results = {name: run() for name, run in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best, results


def decoder_rows(
    videos: list[Path], *, decoders: list[str], repeats: int, num_frames: int | None, crop: str, note: str, **options
) -> list[Row]:
    """read_frames over ``videos`` with each decoder, side by side; the PyAV row says how far its pixels are."""
    runs = {
        name: lambda name=name: [
            read_frames(v, num_frames=num_frames, crop=crop, decoder=name, **options) for v in videos
        ]
        for name in decoders
    }
    seconds, results = interleaved_best(runs, repeats=repeats)
    frames = sum(len(f) for f in next(iter(results.values())))
    label = "all frames" if num_frames is None else f"{num_frames} sampled frames"
    rate = f", fps={options['fps']:g}" if options.get("fps") else ""
    rows = []
    for name in decoders:
        difference = ""
        if name != decoders[0]:
            largest = max(
                int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(results[decoders[0]], results[name])
            )
            difference = f"; pixels differ from {decoders[0]}'s by at most {largest}/255"
        rows.append(
            Row(
                what="decode",
                case=f"{name}: {label}, {crop} crop{rate}",
                frames_per_s=f"{frames / seconds[name]:.0f}",
                ms_per_video=f"{1e3 * seconds[name] / len(videos):.1f}",
                note=f"{len(videos)} {note}{difference}",
            )
        )
    return rows


def decode_rows(videos: list[Path], *, decoders: list[str], repeats: int, scratch: Path) -> list[Row]:
    """Each decoder per (frames, crop) setting on the demo videos, then on clips with frequent key frames."""
    rows = []
    each = f"videos, {len(read_frames(videos[0], num_frames=None, size=8))} frames each -> 224x224"
    for num_frames in (None, 4):
        for crop in ("center", "face"):
            rows += decoder_rows(
                videos, decoders=decoders, repeats=repeats, num_frames=num_frames, crop=crop, note=each
            )
    # The frame-rate check reads every frame's timestamp; at another rate the frames are chosen by timestamp.
    for fps, what in ((25.0, "rate checked, matches"), (50.0, "rate checked, resampled")):
        rows += decoder_rows(
            videos,
            decoders=decoders,
            repeats=repeats,
            num_frames=4,
            crop="center",
            fps=fps,
            note=f"videos at 25 fps; {what}",
        )
    # The demo videos have one key frame (x264's default interval is 250 frames), so any frame is reached by
    # decoding from the first; with a key frame every second a reader can skip (seek) ahead instead.
    clips = [keyframe_clip(scratch / f"gop25_{i}.mp4", seed=i) for i in range(len(videos))]
    for num_frames in (None, 4):
        rows += decoder_rows(
            clips,
            decoders=decoders,
            repeats=repeats,
            num_frames=num_frames,
            crop="center",
            note="clips of 138 frames 256x256, key frame every 25, B-frames",
        )
    return rows


def keyframe_clip(path: Path, *, seed: int, frames: int = 138, size: int = 256) -> Path:
    """A lossy H.264 clip (crf 23, yuv420p, B-frames) with a key frame every 25 frames; moving texture and noise."""
    import av

    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "23", "g": "25", "bf": "3"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.stack([(cols + 3 * i) % 256, (rows + 5 * i) % 256, (cols + rows + 7 * i) // 2 % 256], axis=-1)
            image = np.clip(image + rng.integers(-10, 11, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def random_generator_checkpoint(path: Path) -> Path:
    """A loadable checkpoint of the default generator with pix2pix random initialisation (never trained)."""
    from painformer.thermal.train import CHECKPOINT_FORMAT, TrainSettings, build_models

    settings = TrainSettings()
    generator, _ = build_models(settings)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "format_version": 1,
            "generator_config": settings.generator.to_dict(),
            "image_size": settings.image_size,
            "state_dict": generator.state_dict(),
            "training": {"note": "random initialisation for benchmarking, never trained"},
        },
        path,
    )
    return path


def thermal_row(checkpoint: Path, weights: str, frames: np.ndarray, *, repeats: int, device: torch.device) -> Row:
    from painformer.thermal import load_generator, translate_frames

    generator, content = load_generator(checkpoint, device=device)
    size = int(content["image_size"])
    seconds = best_seconds(
        lambda: translate_frames(generator, frames, image_size=size, device=device, batch_size=BATCH_SIZE),
        repeats=repeats,
        device=device,
    )
    parameters = sum(p.numel() for p in generator.parameters())
    return Row(
        what="thermal",
        case=f"default U-Net generator ({weights}), batch {BATCH_SIZE}",
        frames_per_s=f"{len(frames) / seconds:.1f}",
        note=f"{parameters / 1e6:.2f} M parameters, 224 -> {size} -> 224, {len(frames)} frames",
    )


def depth_row(model_dir: Path, label: str, frames: np.ndarray, *, repeats: int, device: torch.device) -> Row:
    from painformer.depth import estimate_depth, load_depth_model
    from painformer.depth.estimate import processor_input_size

    model, processor = load_depth_model(model_dir, device)
    seconds = best_seconds(
        lambda: estimate_depth(frames, model, processor, device, BATCH_SIZE), repeats=repeats, device=device
    )
    height, width = processor_input_size(processor, FRAME_SIZE, FRAME_SIZE)
    parameters = sum(p.numel() for p in model.parameters())
    return Row(
        what="depth",
        case=f"{label}, batch {BATCH_SIZE}",
        frames_per_s=f"{len(frames) / seconds:.1f}",
        note=f"{parameters / 1e6:.2f} M parameters, input {height}x{width}, {len(frames)} frames",
    )


def chunk_bytes(store_path: Path) -> int:
    """Bytes of the frame array's chunks on disk (metadata and the done mask left out)."""
    return sum(p.stat().st_size for p in (store_path / "frames").rglob("*") if p.is_file() and p.name != "zarr.json")


def storage_rows(
    table, *, thermal_checkpoint: Path, thermal_weights: str, depth_dir: Path, scratch: Path, device: torch.device
) -> list[Row]:
    """Write the thermal and depth stores as the workflow does and report their size per video."""
    from painformer.depth.apply import DepthSettings, apply_depth
    from painformer.thermal import ApplySettings, apply_generator

    total_frames = {len(read_frames(v, num_frames=None)) for v in table["video"]}
    if len(total_frames) != 1:
        raise SystemExit(f"storage videos differ in length ({sorted(total_frames)}); pick videos of equal length")
    all_frames = total_frames.pop()
    n = len(table)
    rows = []
    for num_frames in (4, all_frames):
        raw = num_frames * FRAME_SIZE * FRAME_SIZE * 3
        writers = {
            f"thermal ({thermal_weights})": lambda out, k=num_frames: apply_generator(
                table=table,
                checkpoint=thermal_checkpoint,
                out=out,
                settings=ApplySettings(num_frames=k, batch_size=BATCH_SIZE, device=str(device)),
            ),
            "depth (tiny untrained model)": lambda out, k=num_frames: apply_depth(
                table=table,
                model_dir=depth_dir,
                out=out,
                settings=DepthSettings(num_frames=k, batch_size=BATCH_SIZE, device=str(device)),
            ),
        }
        for label, write in writers.items():
            out = scratch / f"{label.split()[0]}_{num_frames}.zarr"
            started = time.perf_counter()
            write(out)
            seconds = time.perf_counter() - started
            size = chunk_bytes(out) / n
            rows.append(
                Row(
                    what="storage",
                    case=f"{label}, {num_frames} frames",
                    ms_per_video=f"{1e3 * seconds / n:.0f}",
                    bytes_per_video=f"{size:,.0f}",
                    note=f"raw {raw:,} B, {raw / size:.1f}x smaller; mean of {n} videos; ms = whole apply run",
                )
            )
    return rows


def print_table(rows: list[Row]) -> None:
    header = ("what", "case", "frames/s", "ms/video", "bytes/video", "note")
    print("| " + " | ".join(header) + " |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row.what} | {row.case} | {row.frames_per_s} | {row.ms_per_video} | {row.bytes_per_video} | {row.note} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-root", default="/tmp/bench_demo", help="demo dataset (generated when absent)")
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best one reported)")
    parser.add_argument("--depth-model-dir", help="also time this Depth Anything directory (e.g. V2-Small)")
    parser.add_argument("--thermal-checkpoint", help="trained generator for the thermal rows (default: random init)")
    parser.add_argument("--storage-videos", type=int, default=2, help="demo videos written to each frame store")
    parser.add_argument("--model-frames", type=int, default=32, help="frames per timed depth run (thermal: one video)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--decoders", nargs="+", choices=["decord", "pyav"], help="video decoders to time (default: those installed)"
    )
    parser.add_argument("--decode-only", action="store_true", help="only the decode rows")
    args = parser.parse_args()

    import cv2
    from transformers.utils import logging as transformers_logging

    from painformer.data.biovid import index_biovid
    from painformer.depth.model import make_tiny_depth_model
    from painformer.utils import select_device
    from painformer.video.decoders import decord_installed

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    device = select_device(args.device)
    root = ensure_demo(Path(args.demo_root))
    table, problems = index_biovid(root)
    if problems or table.empty:
        raise SystemExit(f"{root}: not a usable demo dataset ({len(problems)} problems, {len(table)} samples)")
    videos = [Path(v) for v in table["video"]]
    started = time.perf_counter()

    decoders = args.decoders or (["decord", "pyav"] if decord_installed() else ["pyav"])
    video_frames = read_frames(videos[0], num_frames=None)
    model_frames = np.concatenate([video_frames, read_frames(videos[1], num_frames=None)])[: args.model_frames]
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        rows = decode_rows(videos, decoders=decoders, repeats=args.repeats, scratch=scratch)
        if args.decode_only:
            finish(args, device, videos, root, rows, started)
            return
        random_checkpoint = random_generator_checkpoint(scratch / "random.pt")
        rows.append(thermal_row(random_checkpoint, "random init", video_frames, repeats=args.repeats, device=device))
        if args.thermal_checkpoint:
            thermal_checkpoint, thermal_weights = (
                Path(args.thermal_checkpoint),
                f"trained: {Path(args.thermal_checkpoint).name}",
            )
        else:
            thermal_checkpoint, thermal_weights = random_checkpoint, "random init"
        tiny_dir = make_tiny_depth_model(scratch / "tiny_depth", seed=0)
        rows.append(
            depth_row(tiny_dir, "tiny untrained Depth Anything", model_frames, repeats=args.repeats, device=device)
        )
        if args.depth_model_dir:
            rows.append(
                depth_row(
                    Path(args.depth_model_dir),
                    Path(args.depth_model_dir).name,
                    model_frames,
                    repeats=args.repeats,
                    device=device,
                )
            )
        rows.extend(
            storage_rows(
                table.head(args.storage_videos),
                thermal_checkpoint=thermal_checkpoint,
                thermal_weights=thermal_weights,
                depth_dir=tiny_dir,
                scratch=scratch,
                device=device,
            )
        )

    finish(args, device, videos, root, rows, started)


def finish(args, device: torch.device, videos: list[Path], root: Path, rows: list[Row], started: float) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\ndevice {device}, {torch.get_num_threads()} torch threads, {args.threads} OpenCV threads, "
        f"best of {args.repeats} after a warm-up; {len(videos)} demo videos in {root}; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    print_table(rows)
    print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
