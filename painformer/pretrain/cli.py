"""Commands: ``painformer pretrain`` (plus ``make-demo-tasks`` and ``probe`` under it)."""

from __future__ import annotations

import argparse
import json
import logging

from painformer.cli_types import positive_int
from painformer.errors import InputError
from painformer.names import BIOVID_SIGNALS, PRETRAIN_REPRESENTATIONS
from painformer.video.cli import add_decoder_option

log = logging.getLogger(__name__)


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="multi-task pretraining of the PainFormer backbone (Eq. 10)",
        description="Train the PainFormer backbone on several labelled image datasets at once, one auxiliary "
        "classifier and one learned loss weight per task. Writes DIR/log.tsv, DIR/last.pt (resumable run "
        "state) and DIR/painformer.pth (the published checkpoint format). Sub-commands: make-demo-tasks, probe.",
    )
    parser.add_argument("--tasks", help="tasks.yaml: tasks (name, dataset, num_classes) and training settings")
    parser.add_argument("--out", help="run folder")
    parser.add_argument("--epochs", type=positive_int, help="override training.epochs")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument(
        "--stop-after-epoch", type=positive_int, help="stop after this epoch (continue later with --resume)"
    )
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="processes decoding and augmenting batches (0: in the main process)",
    )
    parser.set_defaults(func=run_pretrain)
    commands = parser.add_subparsers(dest="pretrain_command", metavar="SUBCOMMAND")

    demo = commands.add_parser(
        "make-demo-tasks",
        help="write HDF5 pretraining tasks from the demo dataset",
        description="Build small pretraining tasks from a sample table: subject identity from face frames and "
        "pain class from biosignal images, one task per signal. Writes one HDF5 file per task and DIR/tasks.yaml.",
    )
    demo.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--frames-per-video", type=positive_int, default=4)
    demo.add_argument(
        "--signal",
        nargs="+",
        default=["gsr"],
        choices=BIOVID_SIGNALS,
        help="biosignals of the pain tasks, one task each (default: gsr)",
    )
    demo.add_argument(
        "--representation",
        default="spec_psd",
        choices=PRETRAIN_REPRESENTATIONS,
        help="biosignal image of the signal task; 'spectrograms': the three spectrogram types in equal shares",
    )
    demo.add_argument("--probe-subjects", type=int, default=3, help="subjects held out of every task, for the probe")
    demo.add_argument(
        "--frame-window",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("START", "END"),
        help="take the frames from this part of each clip, as fractions of its length (default: 0 1, the whole clip)",
    )
    add_decoder_option(demo)
    demo.set_defaults(func=run_make_demo_tasks)

    probe = commands.add_parser(
        "probe",
        help="leave-one-subject-out logistic regression on a backbone's embeddings of an HDF5 task",
        description="Embed the images of an HDF5 task file (with a 'subjects' dataset) and report the "
        "leave-one-subject-out accuracy of a logistic regression: how much a backbone's embeddings carry.",
    )
    probe.add_argument("--task", required=True, help="HDF5 file with images, labels, subjects")
    probe.add_argument("--checkpoint", action="append", required=True, help="checkpoint or 'none' (repeatable)")
    probe.add_argument("--device", default="auto")
    probe.add_argument("--json", help="write the results here as JSON")
    probe.set_defaults(func=run_probe)


def run_pretrain(args: argparse.Namespace) -> int:
    import torch

    from painformer.pretrain.config import load_pretrain_config
    from painformer.pretrain.train import pretrain

    if not args.tasks or not args.out:
        raise InputError("painformer pretrain needs --tasks tasks.yaml and --out DIR")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_pretrain_config(args.tasks, epochs=args.epochs)
    pretrain(
        config,
        out=args.out,
        device=args.device,
        resume=args.resume,
        stop_after_epoch=args.stop_after_epoch,
        loader_workers=args.loader_workers,
    )
    return 0


def run_make_demo_tasks(args: argparse.Namespace) -> int:
    from painformer.pretrain.demo import make_demo_tasks

    start, end = args.frame_window
    if not 0.0 <= start < end <= 1.0:
        raise InputError(f"--frame-window: expected two fractions 0 <= START < END <= 1, got {start} {end}")
    written = make_demo_tasks(
        samples=args.samples,
        out=args.out,
        frames_per_video=args.frames_per_video,
        signals=args.signal,
        representation=args.representation,
        probe_subjects=args.probe_subjects,
        frame_window=(start, end),
        decoder=args.decoder,
    )
    for path in written:
        print(path)
    return 0


def run_probe(args: argparse.Namespace) -> int:
    from painformer.pretrain.probe import probe_checkpoints

    results = probe_checkpoints(task=args.task, checkpoints=args.checkpoint, device=args.device)
    for result in results:
        print(
            f"{result['checkpoint']}\taccuracy {result['accuracy']:.4f}\t"
            f"per-subject standardised {result['accuracy_subject_normalised']:.4f}\t(chance {result['chance']:.4f}, {result['n_images']} images, {result['n_subjects']} subjects)"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0
