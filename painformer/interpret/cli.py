"""Command: ``painformer attention`` (attention-map overlays, paper Fig. 5)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from painformer.errors import InputError

log = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention",
        help="write attention-map overlays of chosen samples (Fig. 5)",
        description="Compute PainFormer's stage-3/4 self-attention maps for the images of chosen samples "
        "(video frames, or the biosignal image of a representation) and write PNG panels "
        "(image | overlay) to --out. Without a checkpoint the maps come from an untrained backbone.",
    )
    parser.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    parser.add_argument("--modality", required=True, choices=["rgb", "thermal", "depth", "ecg", "emg", "gsr", "fnirs"])
    parser.add_argument("--representation", default="frames", choices=["frames", "waveform", "spec_angle", "spec_phase", "spec_psd"])
    parser.add_argument("--images", help="upstream image store (biosignal images, thermal or depth frames)")
    parser.add_argument("--checkpoint", default="none", help="PainFormer checkpoint, or 'none' for an untrained backbone")
    parser.add_argument("--sample", action="append", required=True, help="sample name (repeatable)")
    parser.add_argument("--out", required=True, help="output folder for the PNGs")
    parser.add_argument("--num-frames", type=_positive, default=4, help="frames per video (video modalities)")
    parser.add_argument("--crop", default="center", choices=["center", "face"], help="frame crop (RGB)")
    parser.add_argument("--stages", type=int, nargs="+", default=[3, 4], choices=[3, 4])
    parser.add_argument("--reduce", default="mean", choices=["mean", "max"], help="how heads are combined")
    parser.add_argument("--rollout", action="store_true", help="attention rollout within each stage")
    parser.add_argument("--overlay-only", action="store_true", help="write the overlay alone, not the image | overlay panel")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.set_defaults(func=run_attention)


def run_attention(args: argparse.Namespace) -> int:
    from PIL import Image

    from painformer.data import read_sample_table
    from painformer.embed.sources import open_source
    from painformer.interpret.maps import attention_maps, overlay
    from painformer.models import load_painformer

    table = read_sample_table(args.samples)
    known = set(table["sample"].astype(str))
    unknown = [s for s in args.sample if s not in known]
    if unknown:
        raise InputError(f"{args.samples}: no sample named {', '.join(unknown)}")
    chosen = table[table["sample"].astype(str).isin(args.sample)].reset_index(drop=True)
    num_frames = args.num_frames if args.representation == "frames" else None
    source = open_source(
        table=chosen, modality=args.modality, representation=args.representation,
        images=args.images, num_frames=num_frames, crop=args.crop,
    )
    checkpoint = None if args.checkpoint.lower() in ("none", "") else args.checkpoint
    if checkpoint is None:
        log.warning("attention maps from an UNTRAINED backbone: they show the architecture's bias, not learned focus")
    model = load_painformer(checkpoint, device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(source.meta.samples):
        images = np.asarray(source.load(index))  # (n_items, 224, 224, 3)
        heat = attention_maps(model, images, stages=tuple(args.stages), reduce=args.reduce, rollout=args.rollout)
        blended = overlay(images, heat)
        for item, (image, mixed) in enumerate(zip(images, blended)):
            picture = mixed if args.overlay_only else np.concatenate([image, mixed], axis=1)
            path = out / f"{sample}-{args.modality}-{args.representation}-{item:02d}.png"
            Image.fromarray(picture).save(path)
            print(path)
    return 0
