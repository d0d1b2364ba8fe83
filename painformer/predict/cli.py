"""Command: ``painformer predict``."""

from __future__ import annotations

import argparse

from painformer.cli_types import positive_int


def add_commands(subparsers) -> None:
    predict = subparsers.add_parser(
        "predict",
        help="apply a final model to new recordings (a dataset tree or a sample table)",
        description="Index the samples (labels optional), render or decode and embed exactly the inputs the model "
        "reads into a cache folder that later calls reuse, and write one row per sample: sample, subject, "
        "predicted class and one probability column per class.",
    )
    predict.add_argument("--model", required=True, help="final model folder (results/<name>/final/<experiment>)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--root",
        help="tree in the layout of the model's dataset: BioVid (samples.csv may leave class_id/class_name empty) "
        "or AI4Pain (file names may leave the class out)",
    )
    source.add_argument("--samples", help="sample table (TSV); class_id/class_name may be empty or absent")
    predict.add_argument("--out", required=True, help="predictions table to write (TSV)")
    predict.add_argument("--cache", help="folder of images and embeddings (default: <out stem>.cache beside --out)")
    predict.add_argument(
        "--checkpoint", help="the backbone checkpoint the model was trained with (none: an untrained-backbone model)"
    )
    predict.add_argument(
        "--depth-model",
        help="for a model that reads depth frames: the depth model directory it was trained with (checked by "
        "sha256; not needed for the untrained tiny stand-in, which is rebuilt)",
    )
    predict.add_argument(
        "--ai4pain-layout",
        help="for an AI4Pain model: the new tree's file and folder names where they differ from the training "
        "tree's (JSON object or file with splits, fnirs_dir, video_dir, *_suffix, stem_pattern, labels)",
    )
    predict.add_argument("--batch-size", type=positive_int, default=16)
    predict.add_argument("--threads", type=positive_int, help="torch CPU threads")
    predict.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    predict.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    import torch

    from painformer.predict.run import predict

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = predict(
        args.model,
        out=args.out,
        root=args.root,
        samples=args.samples,
        cache=args.cache,
        checkpoint=args.checkpoint,
        depth_model=args.depth_model,
        device=args.device,
        batch_size=args.batch_size,
        ai4pain_layout=args.ai4pain_layout,
    )
    print(f"wrote {args.out} ({len(rows)} samples)")
    return 0
