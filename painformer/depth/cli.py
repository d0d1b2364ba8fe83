"""Commands: ``painformer depth make-tiny | apply``."""

from __future__ import annotations

import argparse

from painformer.cli_types import positive_int
from painformer.video.cli import add_frame_options


def add_commands(subparsers) -> None:
    depth = subparsers.add_parser(
        "depth",
        help="estimated depth video: Depth Anything (transformers) from a local model directory",
        description="Depth frames from RGB frames with a local Depth Anything checkpoint "
        "(depth-anything/Depth-Anything-V2-Small-hf), stored as uint8 Zarr frames.",
    )
    commands = depth.add_subparsers(dest="depth_command", metavar="ACTION", required=True)

    tiny = commands.add_parser(
        "make-tiny",
        help="write a tiny UNTRAINED Depth Anything model (pipeline testing only; its depth is not meaningful)",
    )
    tiny.add_argument(
        "out_dir",
        metavar="DIR",
        help="directory to write (config.json, model.safetensors, preprocessor_config.json, README.md)",
    )
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=run_make_tiny)

    apply = commands.add_parser(
        "apply",
        help="estimate depth for every sample's frames into a resumable Zarr store",
    )
    apply.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    apply.add_argument("--model-dir", required=True, help="local Depth Anything model directory")
    apply.add_argument("--num-frames", type=positive_int, required=True)
    add_frame_options(apply)
    apply.add_argument(
        "--normalization",
        default="video",
        choices=["video", "frame"],
        help="8-bit stretch: one min/max per video (stable over time) or per frame",
    )
    apply.add_argument("--out", required=True, help="output store, e.g. results/demo/frames/depth.zarr")
    apply.add_argument("--complete-marker", help="JSON file written only once every sample is done")
    apply.add_argument("--batch-size", type=positive_int, default=16, help="frames per model batch")
    apply.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    apply.add_argument("--threads", type=positive_int, help="torch CPU threads")
    apply.add_argument("--force", action="store_true", help="delete an existing store made differently and start over")
    apply.add_argument(
        "--replace-stale",
        action="store_true",
        help="resume a store made the same way, replace one made differently (for workflows)",
    )
    apply.set_defaults(func=run_apply)


def run_make_tiny(args: argparse.Namespace) -> int:
    from painformer.depth.model import make_tiny_depth_model

    out = make_tiny_depth_model(args.out_dir, seed=args.seed)
    print(
        f"wrote {out}: UNTRAINED tiny Depth Anything model (seed {args.seed}); "
        "its depth maps are NOT meaningful, it only exercises the pipeline"
    )
    return 0


def run_apply(args: argparse.Namespace) -> int:
    import torch

    from painformer.data import read_sample_table
    from painformer.depth.apply import DepthSettings, apply_depth

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = DepthSettings(
        num_frames=args.num_frames,
        crop=args.crop,
        normalization=args.normalization,
        batch_size=args.batch_size,
        device=args.device,
        fps=args.fps,
        decoder=args.decoder,
    )
    store = apply_depth(
        table=read_sample_table(args.samples),
        model_dir=args.model_dir,
        out=args.out,
        settings=settings,
        complete_marker=args.complete_marker,
        force="stale" if args.replace_stale else args.force,
    )
    summary = store.summary()
    print(
        f"wrote {args.out}: {summary['samples_done']}/{summary['samples_total']} samples, shape {tuple(summary['shape'])}"
    )
    return 0
