"""Command: ``painformer video inspect`` (what the frame reader would take from each video)."""

from __future__ import annotations

import argparse

from painformer.cli_types import frame_rate
from painformer.names import CROPS

DECODER_CHOICES = ("auto", "decord", "pyav")
RESAMPLED_FPS_HELP = "expected frame rate (BioVid 25, AI4Pain 30): other rates are resampled, with a warning"


def add_decoder_option(parser: argparse.ArgumentParser) -> None:
    """``--decoder``, shared by every command that decodes video frames."""
    parser.add_argument(
        "--decoder",
        default="auto",
        choices=DECODER_CHOICES,
        help="video decoder: decord, pyav, or auto (decord when installed, else PyAV; the same frames either way)",
    )


def add_frame_options(parser: argparse.ArgumentParser, *, fps_help: str = RESAMPLED_FPS_HELP) -> None:
    """``--crop``, ``--fps`` and ``--decoder``: how every command that reads video frames cuts and decodes them."""
    parser.add_argument("--crop", default=CROPS[0], choices=CROPS, help="frame crop: centre square or face box")
    parser.add_argument("--fps", type=frame_rate, help=fps_help)
    add_decoder_option(parser)


def add_commands(subparsers) -> None:
    video = subparsers.add_parser(
        "video",
        help="video decoding: inspect frame counts, rates and crop boxes",
        description="Frames are decoded with decord or PyAV (--decoder), N evenly spaced (round(linspace(0, len-1, N))), "
        "cropped to a square (centre, or one face box per video) and resized to 224x224. With --fps, "
        "a video at another rate is resampled by timestamp to that rate first.",
    )
    commands = video.add_subparsers(dest="video_command", metavar="ACTION", required=True)
    inspect = commands.add_parser(
        "inspect",
        help="print frame count, resolution, frame rate, sampled indices and the crop box of each video",
    )
    inspect.add_argument("videos", nargs="+", metavar="VIDEO")
    inspect.add_argument("--num-frames", type=int, help="frames to sample (default: all)")
    add_frame_options(inspect, fps_help="expected frame rate (BioVid 25, AI4Pain 30); default: each video's own")
    inspect.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from painformer.video.frames import FrameSampling, choose_box, decode_planned

    sampling = FrameSampling(args.num_frames)
    print("video\tframes\theight\twidth\tfps\tindices\tcrop\tbox_x\tbox_y\tbox_side")
    for path in args.videos:
        plan, frames = decode_planned(path, sampling=sampling, fps=args.fps, decoder=args.decoder)
        box, source = choose_box(frames, crop=args.crop, path=path)
        shown = ",".join(str(i) for i in plan.indices[:8]) + (",..." if len(plan.indices) > 8 else "")
        print(
            f"{path}\t{plan.total_frames}\t{frames.shape[1]}\t{frames.shape[2]}\t{plan.video_fps:.3g}\t{shown}\t"
            f"{source}\t{box.x}\t{box.y}\t{box.side}"
        )
    return 0
