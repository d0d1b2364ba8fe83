"""Command: ``painformer attention`` (attention-map overlays, paper Fig. 5)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from painformer.cli_types import positive_int
from painformer.errors import InputError
from painformer.names import FRAMES, MODALITIES, REPRESENTATIONS
from painformer.video.cli import add_frame_options

log = logging.getLogger(__name__)


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention",
        help="write attention-map overlays of chosen samples (Fig. 5)",
        description="Compute PainFormer's stage-3/4 self-attention maps for the images of chosen samples "
        "(video frames, or the biosignal image of a representation) and write PNG panels "
        "(image | overlay) to --out, one per image, or with --sheet one picture of every chosen sample (a row per "
        "sample). Without a checkpoint the maps come from an untrained backbone. --image takes image files "
        "instead (PNG, JPEG; centre-cropped and resized to 224x224).",
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--samples", help="sample table (samples.tsv); with --modality and --sample or --pick")
    given.add_argument("--image", action="append", help="an image file (repeatable), instead of samples")
    parser.add_argument("--modality", choices=MODALITIES)
    parser.add_argument("--representation", default=FRAMES, choices=REPRESENTATIONS)
    parser.add_argument("--images", help="upstream image store (biosignal images, thermal or depth frames)")
    parser.add_argument(
        "--checkpoint", default="none", help="PainFormer checkpoint, or 'none' for an untrained backbone"
    )
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--sample", action="append", help="sample name (repeatable)")
    chosen.add_argument(
        "--pick",
        type=positive_int,
        metavar="N",
        help="choose N samples: per subject in table order, its first sample of each class",
    )
    written = parser.add_mutually_exclusive_group(required=True)
    written.add_argument("--out", help="output folder for one PNG per image")
    written.add_argument(
        "--sheet", help="one PNG of every chosen sample: a captioned row per sample, a panel per image"
    )
    parser.add_argument(
        "--max-items",
        type=positive_int,
        metavar="K",
        help="at most K images per sample, evenly spread (frames of a video, fNIRS channels)",
    )
    parser.add_argument("--num-frames", type=positive_int, default=4, help="frames per video (video modalities)")
    add_frame_options(parser)
    parser.add_argument("--stages", type=int, nargs="+", default=[3, 4], choices=[3, 4])
    parser.add_argument("--reduce", default="mean", choices=["mean", "max"], help="how heads are combined")
    parser.add_argument("--rollout", action="store_true", help="attention rollout within each stage")
    parser.add_argument(
        "--overlay-only", action="store_true", help="write the overlay alone, not the image | overlay panel"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.set_defaults(func=run_attention)


def image_file_items(paths: list[str]) -> Iterator[tuple[str, str, np.ndarray, list[int]]]:
    """(output name, caption, (1, 224, 224, 3) uint8, [0]) per image file: centre crop, resize."""
    from PIL import Image, UnidentifiedImageError

    from painformer.models.preprocess import PAINFORMER_INPUT_SIZE
    from painformer.video.frames import center_square, crop_and_resize

    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"{path}: image file not found")
        try:
            with Image.open(path) as opened:
                image = np.asarray(opened.convert("RGB"))[None]  # (1, H, W, 3)
        except (UnidentifiedImageError, OSError) as error:
            raise InputError(f"{path}: not a readable image ({error})") from error
        box = center_square(image.shape[1], image.shape[2])
        yield path.stem, path.name, crop_and_resize(image, box, size=PAINFORMER_INPUT_SIZE), [0]


def sample_items(args: argparse.Namespace) -> Iterator[tuple[str, str, np.ndarray, list[int]]]:
    """(output name, caption, (n_items, 224, 224, 3) uint8, item indices) per chosen sample."""
    from painformer.data import read_sample_table
    from painformer.embed.sources import open_source
    from painformer.interpret.sheet import pick_samples, spread_items

    if args.modality is None or not (args.sample or args.pick):
        raise InputError("--samples needs --modality and --sample or --pick")
    table = read_sample_table(args.samples)
    names = pick_samples(table, args.pick) if args.pick else list(args.sample)
    known = set(table["sample"].astype(str))
    unknown = [s for s in names if s not in known]
    if unknown:
        raise InputError(f"{args.samples}: no sample named {', '.join(unknown)}")
    chosen = table[table["sample"].astype(str).isin(names)].reset_index(drop=True)
    num_frames = args.num_frames if args.representation == "frames" else None
    source = open_source(
        table=chosen,
        modality=args.modality,
        representation=args.representation,
        images=args.images,
        num_frames=num_frames,
        crop=args.crop,
        fps=args.fps,
        decoder=args.decoder,
    )
    class_of = dict(zip(chosen["sample"].astype(str), chosen["class_name"].astype(str)))
    for index, sample in enumerate(source.meta.samples):
        loaded = np.asarray(source.load(index))  # (n_items, 224, 224, 3)
        items = spread_items(len(loaded), args.max_items)
        caption = f"{sample} ({class_of[sample]}), {args.modality}/{args.representation}, items {items}"
        yield f"{sample}-{args.modality}-{args.representation}", caption, loaded[items], items


def run_attention(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from painformer.interpret.maps import attention_maps, overlay
    from painformer.interpret.sheet import contact_sheet
    from painformer.models import load_painformer
    from painformer.utils import atomic_path

    inputs = image_file_items(args.image) if args.image else sample_items(args)
    checkpoint = None if args.checkpoint.lower() in ("none", "") else args.checkpoint
    if checkpoint is None:
        log.warning("attention maps from an UNTRAINED backbone: they show the architecture's bias, not learned focus")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_painformer(checkpoint, device=args.device)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for name, caption, images, items in inputs:
        heat = attention_maps(model, images, stages=tuple(args.stages), reduce=args.reduce, rollout=args.rollout)
        blended = overlay(images, heat)
        pictures = [
            mixed if args.overlay_only else np.concatenate([image, mixed], axis=1)
            for image, mixed in zip(images, blended)
        ]
        if out is None:
            rows.append(pictures)
            labels.append(caption)
            continue
        for item, picture in zip(items, pictures):
            path = out / f"{name}-{item:02d}.png"
            Image.fromarray(picture).save(path)
            print(path)
    if out is None:
        with atomic_path(args.sheet) as path:
            Image.fromarray(contact_sheet(rows, labels)).save(path, format="PNG")
        print(args.sheet)
    return 0
