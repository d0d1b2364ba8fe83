"""Commands ``painformer index`` (dataset tree -> sample table) and ``painformer demo-data``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from painformer.errors import InputError
from painformer.video.cli import add_decoder_option

log = logging.getLogger(__name__)

DEFAULT_REPORT = "bad_samples.tsv"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser(
        "index",
        help="check a dataset tree and write its sample table",
        description="Check every sample of a BioVid Part A or AI4Pain tree (biosignal/fNIRS files, videos, "
        "the listing) and write the sample table. All problems are reported at once in --report.",
    )
    index.add_argument("--dataset", required=True, choices=["biovid", "ai4pain"], help="dataset format")
    index.add_argument("--root", required=True, help="dataset root folder")
    index.add_argument(
        "--biosignals",
        default="filtered",
        choices=["filtered", "raw"],
        help="BioVid: biosignals_filtered/ or biosignals_raw/ (default filtered)",
    )
    index.add_argument("--classes", default="", help="comma-separated class names to keep; empty: all classes")
    index.add_argument(
        "--on-bad-sample",
        default="fail",
        choices=["fail", "exclude"],
        help="fail: any problem stops indexing; exclude: drop the samples with problems",
    )
    index.add_argument(
        "--report",
        default=None,
        help="TSV of problems (sample, file, problem); always written (default: bad_samples.tsv next to --out)",
    )
    index.add_argument("--out", required=True, help="sample table to write (TSV)")
    index.add_argument("--name", default=None, help="value of the dataset column (default: the --dataset value)")
    index.add_argument(
        "--ai4pain-layout", default=None, help="AI4Pain layout as a JSON object or JSON file (keys in docs/datasets.md)"
    )
    index.add_argument(
        "--video-check",
        default="open",
        choices=["open", "decode", "exists"],
        help="open: the video decoder opens each video and finds frames (default); decode: also decode the "
        "first frame (about 4x slower); exists: only check the file is there",
    )
    add_decoder_option(index)
    index.add_argument("--workers", type=int, default=None, help="threads checking files (default: 2 per CPU, max 16)")
    index.set_defaults(func=run_index)

    demo = subparsers.add_parser(
        "demo-data",
        help="generate the demo dataset (BioVid Part A layout)",
        description="Write a small synthetic dataset in the BioVid Part A layout: rendered face videos, "
        "GSR/ECG/EMG files and paired RGB/thermal images. A complete tree with the same settings "
        "is left untouched.",
    )
    demo.add_argument("root", help="folder to write the dataset to")
    demo.add_argument("--subjects", type=int, default=6)
    demo.add_argument("--samples-per-class", type=int, default=4)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--thermal-pairs", type=int, default=None, help="paired RGB/thermal images (default: generator's)"
    )
    demo.add_argument("--workers", type=int, default=None, help="processes (default: the CPUs available)")
    demo.add_argument(
        "--low-responder-fraction",
        type=float,
        default=None,
        help="fraction of subjects who barely react to pain (default 0.15: one of 6)",
    )
    for modality, what in (
        ("face", "expression and pain-driven head motion"),
        ("ecg", "heart-rate rise"),
        ("emg", "trapezius EMG swell"),
        ("gsr", "skin-conductance response"),
    ):
        demo.add_argument(
            f"--{modality}-strength",
            type=float,
            default=None,
            help=f"scale of the {what} with pain (default 1.0; 0: no pain signal)",
        )
    demo.set_defaults(func=run_demo_data)


def parse_classes(text: str) -> list[str] | None:
    """``'BL1,PA4'`` -> ``['BL1', 'PA4']``; empty -> None (all classes)."""
    classes = [name.strip() for name in text.split(",") if name.strip()]
    if len(set(classes)) != len(classes):
        raise InputError(f"--classes {text!r}: a class is listed twice")
    return classes or None


def run_index(args: argparse.Namespace) -> int:
    from painformer.data.tables import write_sample_table
    from painformer.data.validation import summarize_problems, write_problem_report

    classes = parse_classes(args.classes)
    name = args.name or args.dataset
    if args.report is None:
        args.report = str(Path(args.out).parent / DEFAULT_REPORT)
    if Path(args.report).resolve() == Path(args.out).resolve():
        raise InputError(f"--report and --out are the same file: {args.out}")
    video_options = {
        "check_videos": args.video_check != "exists",
        "decode_videos": args.video_check == "decode",
        "video_decoder": args.decoder,
    }
    if args.dataset == "biovid":
        if args.ai4pain_layout:
            raise InputError("--ai4pain-layout applies to --dataset ai4pain only")
        from painformer.data.biovid import index_biovid

        table, problems = index_biovid(
            args.root, biosignals=args.biosignals, classes=classes, **video_options, dataset=name, workers=args.workers
        )
    else:
        from painformer.data.ai4pain import DEFAULT_LAYOUT, Ai4PainLayout, index_ai4pain

        layout = Ai4PainLayout.from_json(args.ai4pain_layout) if args.ai4pain_layout else DEFAULT_LAYOUT
        table, problems = index_ai4pain(
            args.root, layout=layout, classes=classes, **video_options, dataset=name, workers=args.workers
        )
    write_problem_report(problems, args.report)
    if problems and args.on_bad_sample == "fail":
        raise InputError(
            f"{args.root}: {summarize_problems(problems)}\n(full list in {args.report}; "
            "--on-bad-sample exclude drops the bad samples instead)"
        )
    if problems:
        bad_samples = len({problem.sample for problem in problems if problem.sample})
        log.warning(
            "%s: excluded %d samples with problems, %d problems in all (see %s)",
            args.root,
            bad_samples,
            len(problems),
            args.report,
        )
    if table.empty:
        raise InputError(f"{args.root}: no samples left to index (classes {classes or 'all'})")
    write_sample_table(table, args.out)
    counts = table["class_name"].value_counts().to_dict()
    log.info(
        "%s: wrote %d samples of %d subjects (%s) to %s",
        args.root,
        len(table),
        table["subject"].nunique(),
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        args.out,
    )
    return 0


def run_demo_data(args: argparse.Namespace) -> int:
    from painformer.data.demo import generate_demo_dataset

    # Options left unset take the generator's defaults, kept in one place.
    names = (
        "thermal_pairs",
        "workers",
        "low_responder_fraction",
        "face_strength",
        "ecg_strength",
        "emg_strength",
        "gsr_strength",
    )
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    root = generate_demo_dataset(
        Path(args.root), subjects=args.subjects, samples_per_class=args.samples_per_class, seed=args.seed, **options
    )
    log.info("demo dataset ready in %s", root)
    return 0
