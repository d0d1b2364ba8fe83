"""Commands: ``painformer thermal train | evaluate | apply``."""

from __future__ import annotations

import argparse

import torch

from painformer.cli_types import positive_int
from painformer.video.cli import add_frame_options


def add_commands(subparsers) -> None:
    thermal = subparsers.add_parser(
        "thermal",
        help="synthetic thermal video: train, evaluate and apply an RGB->thermal cGAN",
        description="A pix2pix-family cGAN (U-Net generator, PatchGAN discriminator) translating RGB faces to thermal.",
    )
    commands = thermal.add_subparsers(dest="thermal_command", metavar="ACTION", required=True)

    train = commands.add_parser(
        "train",
        help="train the generator on paired RGB/thermal images (resumes an interrupted run)",
        description="PAIRS holds rgb/<name>.png and thermal/<name>.png (or <name>_rgb.png with <name>_thr.png). "
        "Writes OUT, OUT.state/last.pt, OUT.losses.tsv and OUT.samples/epoch_NNN.png.",
    )
    train.add_argument("--pairs", required=True, help="folder of paired images")
    train.add_argument(
        "--out", required=True, help="final generator checkpoint, e.g. results/demo/models/thermal_generator.pt"
    )
    train.add_argument("--epochs", type=positive_int, default=4)
    train.add_argument("--image-size", type=positive_int, default=64, help="training resolution (multiple of 2**depth)")
    train.add_argument("--batch-size", type=positive_int, default=16)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--lambda-l1", type=float, default=100.0, help="weight of the L1 term")
    train.add_argument("--lr", type=float, default=2e-4)
    train.add_argument(
        "--holdout", type=float, default=0.1, help="fraction of pairs held out (seeded, never trained on)"
    )
    train.add_argument("--depth", type=positive_int, default=4, help="U-Net down/up steps")
    train.add_argument("--base-width", type=positive_int, default=16, help="generator channels at the first level")
    train.add_argument("--max-width", type=positive_int, default=128, help="generator channel cap")
    train.add_argument("--disc-width", type=positive_int, default=32, help="discriminator channels at the first layer")
    train.add_argument("--disc-layers", type=positive_int, default=3, help="PatchGAN strided layers (3: 70x70 patches)")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    train.add_argument("--threads", type=positive_int, help="torch CPU threads")
    train.add_argument(
        "--replace-stale",
        action="store_true",
        help="resume a training state made the same way, start over from one made differently (for workflows)",
    )
    train.set_defaults(func=run_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="L1/PSNR/SSIM of the generator and two trivial baselines on held-out pairs",
    )
    evaluate.add_argument("--pairs", required=True, help="folder of paired images")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument(
        "--split",
        default="holdout",
        choices=["holdout", "all"],
        help="holdout: the checkpoint's held-out pairs; all: every pair (a separate test folder)",
    )
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(func=run_evaluate)

    apply = commands.add_parser(
        "apply",
        help="translate every sample's video frames into a resumable Zarr store of thermal frames",
    )
    apply.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    apply.add_argument("--checkpoint", required=True, help="generator checkpoint from 'painformer thermal train'")
    apply.add_argument("--num-frames", type=positive_int, required=True)
    add_frame_options(apply)
    apply.add_argument("--out", required=True, help="output store, e.g. results/demo/frames/thermal.zarr")
    apply.add_argument("--complete-marker", help="JSON file written only once every sample is done")
    apply.add_argument("--batch-size", type=positive_int, default=32, help="frames per generator batch")
    apply.add_argument("--device", default="auto")
    apply.add_argument("--threads", type=positive_int, help="torch CPU threads")
    apply.add_argument("--force", action="store_true", help="delete an existing store made differently and start over")
    apply.add_argument(
        "--replace-stale",
        action="store_true",
        help="resume a store made the same way, replace one made differently (for workflows)",
    )
    apply.set_defaults(func=run_apply)


def run_train(args: argparse.Namespace) -> int:
    from painformer.thermal.discriminator import PatchConfig
    from painformer.thermal.generator import UNetConfig
    from painformer.thermal.train import TrainSettings, side_paths, train_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(
        epochs=args.epochs,
        image_size=args.image_size,
        batch_size=args.batch_size,
        seed=args.seed,
        lambda_l1=args.lambda_l1,
        lr=args.lr,
        holdout=args.holdout,
        generator=UNetConfig(depth=args.depth, base_width=args.base_width, max_width=args.max_width),
        discriminator=PatchConfig(base_width=args.disc_width, num_layers=args.disc_layers),
    )
    result = train_generator(
        pairs_dir=args.pairs, out=args.out, settings=settings, device=args.device, replace_stale=args.replace_stale
    )
    paths = side_paths(args.out)
    print(
        f"wrote {result.checkpoint} ({result.n_train} training pairs, {result.n_holdout} held out; "
        f"{result.epochs_run} epochs run after epoch {result.resumed_from})"
    )
    print(f"losses {paths['losses']}  samples {paths['samples']}/")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from painformer.thermal.evaluate import evaluate_generator

    evaluation = evaluate_generator(args.checkpoint, args.pairs, split=args.split, device=args.device)
    print(evaluation.format_table())
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from painformer.data import read_sample_table
    from painformer.thermal.apply import ApplySettings, apply_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    table = read_sample_table(args.samples)
    settings = ApplySettings(
        num_frames=args.num_frames,
        crop=args.crop,
        batch_size=args.batch_size,
        device=args.device,
        fps=args.fps,
        decoder=args.decoder,
    )
    store = apply_generator(
        table=table,
        checkpoint=args.checkpoint,
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
