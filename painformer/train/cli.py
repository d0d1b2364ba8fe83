"""Command: ``painformer train`` (one experiment; one fold, or several trained together)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from painformer.cli_types import positive_int
from painformer.errors import InputError

LOG = logging.getLogger(__name__)


def add_commands(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train and evaluate folds of an Embedding-Mixer experiment on cached embeddings",
        description="Train the experiment's model on each fold's training split for the preset's epochs, "
        "evaluate it once on the test split (LOSO: the left-out subject; holdout: the validation split) "
        "and write metrics.json, predictions.tsv, history.tsv, config.json and model.pt into the fold "
        "folder. With --folds, the folds train together as one stacked model in this process.",
    )
    train.add_argument("--config", required=True, help="YAML with 'presets' and 'experiments' (or the full config)")
    train.add_argument("--experiment", required=True, help="experiment name in --config")
    which = train.add_mutually_exclusive_group(required=True)
    which.add_argument("--fold", help="one fold: the left-out subject (loso) or 'holdout'; --out is its folder")
    which.add_argument(
        "--folds",
        nargs="+",
        metavar="FOLD",
        help="several folds trained together, or 'all'; fold F goes to --out/fold-F",
    )
    which.add_argument(
        "--final",
        action="store_true",
        help="the final model: train on every sample of the task (no test side) and write model.safetensors, "
        "config.json and a model card README.md into --out",
    )
    train.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    train.add_argument("--embeddings", required=True, help="folder of <modality>/<representation>.zarr stores")
    train.add_argument("--out", required=True, help="the fold folder (--fold) or the experiment's folder (--folds)")
    train.add_argument("--marker", help="with --folds: a JSON file written once every fold folder is complete")
    train.add_argument("--summary", help="with --final: the experiment's LOSO table JSON, quoted in the model card")
    train.add_argument("--dataset", default="", help="with --final: the dataset name for the model card")
    train.add_argument(
        "--thermal-checkpoint",
        help="with --final, for an experiment that reads thermal/frames: the generator that made them (bundled)",
    )
    train.add_argument(
        "--depth-model",
        help="with --final, for an experiment that reads depth/frames: the depth model directory that made them "
        "(its sha256 is recorded)",
    )
    train.add_argument(
        "--dataset-format",
        choices=("biovid", "ai4pain"),
        help="with --final: the layout of the tree the samples come from, recorded so that predict indexes new "
        "trees the same way (default: ai4pain for an experiment that reads fNIRS, else biovid)",
    )
    train.add_argument(
        "--ai4pain-layout",
        help="with --final and an AI4Pain tree: its layout as a JSON object or file (default: the default layout)",
    )
    train.add_argument("--compile", action="store_true", help="torch.compile the stacked step (CUDA only)")
    train.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    train.set_defaults(func=run_train)


def load_config_file(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: experiment config not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a mapping with 'presets' and 'experiments'")
    return config


def resolve_folds(requested: list[str], available: list[str], *, experiment: str) -> list[str]:
    """The folds to train, in request order ('all': every fold); an unknown, repeated or empty list is an error."""
    if requested == ["all"]:
        folds = list(available)
    else:
        folds = list(requested)
        unknown = [fold for fold in folds if fold not in available]
        if unknown:
            raise InputError(
                f"experiment {experiment!r}: fold(s) {unknown} unknown; its folds are {available} (or 'all')"
            )
        repeated = sorted({fold for fold in folds if folds.count(fold) > 1})
        if repeated:
            raise InputError(f"experiment {experiment!r}: fold(s) {repeated} requested twice")
    if not folds:
        raise InputError(f"experiment {experiment!r}: the fold list is empty")
    return folds


def finish_fold(result, data, out_dir: Path) -> dict:
    """Everything written for one trained fold: the one place its outputs are made, so that anything
    computed from a fold folder is added here."""
    from painformer.train.loop import write_fold
    from painformer.train.probe import write_probe

    metrics = write_fold(result, out_dir)
    # The linear-probe baseline on the same split, beside the Mixer's outputs (report.probe).
    write_probe(result.experiment, result.fold, data, out_dir)
    LOG.info(
        "%s fold %s: accuracy %.4f, macro recall %.4f, macro F1 %.4f (%d train, %d test, %.1f s on %s)",
        result.experiment.name,
        result.fold,
        metrics["accuracy"],
        metrics["recall_macro"],
        metrics["f1_macro"],
        metrics["n_train"],
        metrics["n_test"],
        metrics["train_seconds"],
        metrics["device"],
    )
    return metrics


def run_train(args: argparse.Namespace) -> int:
    import json

    from painformer.data import read_sample_table
    from painformer.train.config import list_folds, load_experiments

    config = load_config_file(args.config)
    try:
        experiments = load_experiments(config)
    except InputError as error:
        raise InputError(f"{args.config}: {error}") from None
    if args.experiment not in experiments:
        raise InputError(f"{args.config}: no experiment {args.experiment!r}; it defines {sorted(experiments)}")
    experiment = experiments[args.experiment]
    if args.marker and not args.folds:
        raise InputError("--marker goes with --folds")
    for option in ("summary", "thermal_checkpoint", "depth_model", "dataset_format", "ai4pain_layout"):
        if getattr(args, option) and not args.final:
            raise InputError(f"--{option.replace('_', '-')} goes with --final")
    table = read_sample_table(args.samples)
    out = Path(args.out)
    if args.final:
        return run_final(args, experiment, table, out)
    if args.folds is not None:
        folds = resolve_folds(args.folds, list_folds(experiment, table), experiment=experiment.name)
        fold_dirs = {fold: out / f"fold-{fold}" for fold in folds}
    else:
        folds, fold_dirs = [args.fold], {args.fold: out}

    # torch only now: the checks above answer a bad request in a fraction of a second.
    import torch

    from painformer.train.data import load_experiment_data
    from painformer.train.stack import train_folds
    from painformer.utils import atomic_path, select_device

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    data = load_experiment_data(experiment, table, args.embeddings)
    for result in train_folds(experiment, folds, data, device=device, compile=args.compile):
        finish_fold(result, data, fold_dirs[result.fold])
    if args.marker:
        marker = Path(args.marker)
        marker.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps({"experiment": experiment.name, "folds": folds}, indent=2) + "\n")
    return 0


def run_final(args: argparse.Namespace, experiment, table, out: Path) -> int:
    import torch

    from painformer.data.ai4pain import Ai4PainLayout
    from painformer.train.data import load_experiment_data
    from painformer.train.final import (
        dataset_format,
        frame_model_records,
        input_fingerprints,
        train_final,
        write_final,
    )
    from painformer.utils import select_device

    data_format = dataset_format(experiment, args.dataset_format)
    if args.ai4pain_layout and data_format != "ai4pain":
        raise InputError("--ai4pain-layout applies to AI4Pain-format trees only (--dataset-format ai4pain)")
    layout = Ai4PainLayout.from_json(args.ai4pain_layout) if args.ai4pain_layout else None

    # The frame models are checked before training, so that a missing one costs no training time.
    frame_model_records(
        experiment,
        input_fingerprints(experiment, args.embeddings),
        thermal_checkpoint=args.thermal_checkpoint,
        depth_model_dir=args.depth_model,
    )
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    data = load_experiment_data(experiment, table, args.embeddings)
    result = train_final(experiment, data, device=device)
    write_final(
        result,
        table=table,
        embeddings_dir=args.embeddings,
        out=out,
        summary_path=args.summary,
        dataset=args.dataset,
        thermal_checkpoint=args.thermal_checkpoint,
        depth_model_dir=args.depth_model,
        data_format=data_format,
        ai4pain_layout=layout,
    )
    return 0
