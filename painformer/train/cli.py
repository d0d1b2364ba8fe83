"""Command: ``painformer train`` (one experiment, one fold)."""

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
        help="train and evaluate one fold of an Embedding-Mixer experiment on cached embeddings",
        description="Train the experiment's model on the fold's training split for the preset's epochs, "
        "evaluate it once on the test split (LOSO: the left-out subject; holdout: the validation split) "
        "and write metrics.json, predictions.tsv, history.tsv, config.json and model.pt into --out.",
    )
    train.add_argument("--config", required=True, help="YAML with 'presets' and 'experiments' (or the full config)")
    train.add_argument("--experiment", required=True, help="experiment name in --config")
    train.add_argument("--fold", required=True, help="left-out subject (loso) or 'holdout'")
    train.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    train.add_argument("--embeddings", required=True, help="folder of <modality>/<representation>.zarr stores")
    train.add_argument("--out", required=True, help="fold folder to write")
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


def run_train(args: argparse.Namespace) -> int:
    import torch

    from painformer.data import read_sample_table
    from painformer.train.config import load_experiments
    from painformer.train.data import load_experiment_data
    from painformer.train.loop import train_fold, write_fold
    from painformer.train.probe import write_probe
    from painformer.utils import select_device

    config = load_config_file(args.config)
    try:
        experiments = load_experiments(config)
    except InputError as error:
        raise InputError(f"{args.config}: {error}") from None
    if args.experiment not in experiments:
        raise InputError(f"{args.config}: no experiment {args.experiment!r}; it defines {sorted(experiments)}")
    experiment = experiments[args.experiment]

    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    table = read_sample_table(args.samples)
    data = load_experiment_data(experiment, table, args.embeddings)
    result = train_fold(experiment, args.fold, data, device=device)
    metrics = write_fold(result, args.out)
    write_probe(experiment, args.fold, data, args.out)
    LOG.info(
        "%s fold %s: accuracy %.4f, macro recall %.4f, macro F1 %.4f (%d train, %d test, %.1f s on %s)",
        experiment.name,
        args.fold,
        metrics["accuracy"],
        metrics["recall_macro"],
        metrics["f1_macro"],
        metrics["n_train"],
        metrics["n_test"],
        metrics["train_seconds"],
        metrics["device"],
    )
    return 0
