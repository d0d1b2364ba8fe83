"""Command: ``painformer video inspect`` (what the frame reader would take from each video)."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    video = subparsers.add_parser(
        "video", help="video decoding: inspect frame counts and crop boxes",
        description="Frames are decoded with decord, N evenly spaced (round(linspace(0, len-1, N))), "
        "cropped to a square (centre, or one face box per video) and resized to 224x224.",
    )
    commands = video.add_subparsers(dest="video_command", metavar="ACTION", required=True)
    inspect = commands.add_parser(
        "inspect", help="print frame count, resolution, sampled indices and the crop box of each video",
    )
    inspect.add_argument("videos", nargs="+", metavar="VIDEO")
    inspect.add_argument("--num-frames", type=int, help="frames to sample (default: all)")
    inspect.add_argument("--crop", default="center", choices=["center", "face"])
    inspect.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from painformer.video.frames import (
        FrameSampling,
        choose_box,
        count_frames,
        decode_frames,
    )

    sampling = FrameSampling(args.num_frames)
    print("video\tframes\theight\twidth\tindices\tcrop\tbox_x\tbox_y\tbox_side")
    for path in args.videos:
        total = count_frames(path)
        frames = decode_frames(path, sampling=sampling)
        box, source = choose_box(frames, crop=args.crop, path=path)
        indices = sampling.indices(total)
        shown = ",".join(str(i) for i in indices[:8]) + (",..." if len(indices) > 8 else "")
        print(f"{path}\t{total}\t{frames.shape[1]}\t{frames.shape[2]}\t{shown}\t{source}\t{box.x}\t{box.y}\t{box.side}")
    return 0
