"""Commands: ``painformer embed``, ``painformer export``, ``painformer inspect``."""

from __future__ import annotations

import argparse
import json

import torch

from painformer.cli_types import positive_int
from painformer.errors import InputError
from painformer.names import MODALITIES, REPRESENTATIONS
from painformer.video.cli import add_frame_options


def add_commands(subparsers) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed every sample's images with PainFormer into a resumable Zarr store",
        description="Embed images (video frames, biosignal images) with the PainFormer backbone. "
        "RGB frames are decoded from the videos; every other modality reads the upstream image store "
        "given with --images. Rerunning resumes from the store's done mask.",
    )
    embed.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    embed.add_argument("--modality", required=True, choices=MODALITIES)
    embed.add_argument("--representation", required=True, choices=REPRESENTATIONS)
    embed.add_argument("--images", help="upstream image store (biosignal images, thermal or depth frames)")
    embed.add_argument("--num-frames", type=positive_int, help="frames sampled per video (RGB)")
    add_frame_options(embed)
    embed.add_argument(
        "--checkpoint", default="none", help="PainFormer checkpoint, or 'none' for an untrained backbone"
    )
    embed.add_argument("--out", required=True, help="output store, e.g. results/demo/embeddings/gsr/waveform.zarr")
    embed.add_argument("--complete-marker", help="JSON file written only once every sample is embedded")
    embed.add_argument("--batch-size", type=positive_int, default=16)
    embed.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    embed.add_argument("--threads", type=positive_int, help="torch CPU threads")
    embed.add_argument(
        "--loader-threads",
        type=positive_int,
        default=2,
        help="threads decoding or reading images ahead of the backbone",
    )
    embed.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="backbone arithmetic: auto = bfloat16 on CUDA, float32 (bit-reproducible) on the CPU",
    )
    embed.add_argument("--float16", action="store_true", help="store embeddings as float16")
    embed.add_argument("--compile", action="store_true", help="torch.compile the backbone (GPU)")
    embed.add_argument("--force", action="store_true", help="delete an existing store made differently and start over")
    embed.add_argument(
        "--replace-stale",
        action="store_true",
        help="resume a store made the same way, replace one made differently (for workflows)",
    )
    embed.add_argument("--no-progress", action="store_true")
    embed.set_defaults(func=run_embed)

    export = subparsers.add_parser("export", help="export a store to another format (HDF5)")
    export.add_argument("--format", default="h5", choices=["h5"])
    export.add_argument("store")
    export.add_argument("out")
    export.set_defaults(func=run_export)

    inspect = subparsers.add_parser(
        "inspect",
        help="print a store's shape, completeness and metadata; --verify reads every sample",
        description="Describe a sample store. With --verify, read every sample and check it against the "
        "checksum recorded when it was written, and its inputs against their recorded fingerprints: "
        "each missing, corrupt or stale sample is named and the exit status is 1.",
    )
    inspect.add_argument("store")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument(
        "--verify", action="store_true", help="read every sample; name each missing, corrupt or stale one"
    )
    inspect.set_defaults(func=run_inspect)


def run_embed(args: argparse.Namespace) -> int:
    from painformer.data import read_sample_table
    from painformer.embed.extract import EmbedSettings, extract_embeddings
    from painformer.embed.sources import open_source
    from painformer.models import load_painformer
    from painformer.utils import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    table = read_sample_table(args.samples)
    if table.empty:
        raise InputError(f"{args.samples}: the sample table is empty")
    source = open_source(
        table=table,
        modality=args.modality,
        representation=args.representation,
        images=args.images,
        num_frames=args.num_frames,
        crop=args.crop,
        fps=args.fps,
        decoder=args.decoder,
    )
    checkpoint = None if args.checkpoint.lower() in ("none", "") else args.checkpoint
    model = load_painformer(checkpoint)
    settings = EmbedSettings(
        batch_size=args.batch_size,
        device=str(select_device(args.device)),
        loader_threads=args.loader_threads,
        compile=args.compile,
        precision=args.precision,
        store_dtype="float16" if args.float16 else "float32",
    )
    extract_embeddings(
        source=source,
        out=args.out,
        model=model,
        modality=args.modality,
        representation=args.representation,
        settings=settings,
        force="stale" if args.replace_stale else args.force,
        progress=not args.no_progress,
        complete_marker=args.complete_marker,
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from painformer.embed.export import export_h5

    export_h5(args.store, args.out)
    print(f"wrote {args.out}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from painformer.embed.export import describe
    from painformer.stores import verify_store

    summary = describe(args.store)
    faults = None
    if args.verify:
        _, faults = verify_store(args.store)
        summary["faults"] = faults
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 1 if faults else 0
    print(f"store      {summary['path']}")
    print(
        f"kind       {summary['kind']}  array {summary['array']}  shape {tuple(summary['shape'])}  dtype {summary['dtype']}"
    )
    print(f"complete   {summary['complete']}  ({summary['samples_done']}/{summary['samples_total']} samples done)")
    print(f"subjects   {summary['subjects']}  classes {', '.join(summary['classes'])}")
    for key, value in sorted(summary["attrs"].items()):
        if key == "inputs" and isinstance(value, dict):
            value = {kind: f"{len(listed)} samples" if kind == "files" else listed for kind, listed in value.items()}
        print(f"{key:<10} {json.dumps(value, sort_keys=True)}")
    if faults is None:
        return 0
    for line in faults:
        print(f"FAULT      {line}")
    print(f"verified   {'OK' if not faults else f'{len(faults)} fault(s)'}: every sample read and checked")
    return 1 if faults else 0
