"""One experiment's table: a row per fold, then the mean, std and pooled rows.

The paper reports LOSO results as the mean over subjects, so ``mean`` is the headline
figure; ``std`` (sample std over folds) shows how much subjects differ, and ``pooled``
(all predictions scored together) is the figure a single held-out split would give and
the count the chance-level binomial test needs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.report.folds import (
    FoldResult,
    experiment_settings,
    finite_or_none,
    read_folds,
)
from painformer.report.metrics import compute_metrics, mean_and_std
from painformer.utils import atomic_path

METRIC_KEYS = ("accuracy", "recall_macro", "f1_macro")
# Column names of the per-experiment TSV for the three metrics (percentages there).
TABLE_COLUMNS = {"accuracy": "accuracy", "recall_macro": "recall", "f1_macro": "f1"}


def pooled_predictions(folds: Sequence[FoldResult]) -> pd.DataFrame:
    """Every fold's predictions in one table, with the fold name as a column."""
    return pd.concat([fold.predictions.assign(fold=fold.fold) for fold in folds], ignore_index=True)


def per_subject_accuracy(predictions: pd.DataFrame) -> dict[str, dict]:
    """Accuracy and sample count per subject, subjects in sorted order."""
    correct = predictions["true"].to_numpy() == predictions["predicted"].to_numpy()
    frame = pd.DataFrame({"subject": predictions["subject"].to_numpy(), "correct": correct})
    grouped = frame.groupby("subject", sort=True)["correct"]
    return {str(subject): {"accuracy": float(values.mean()), "n": int(values.size)} for subject, values in grouped}


def summarize_experiment(*, experiment: str, folds: Sequence[FoldResult]) -> dict:
    """Everything the experiment's JSON holds (fractions 0..1; NaN written as null)."""
    classes = list(folds[0].classes)
    fold_rows = [
        {
            "fold": fold.fold,
            "test_subjects": list(fold.test_subjects),
            "n": fold.n,
            "accuracy": fold.accuracy,
            "recall_macro": fold.recall_macro,
            "f1_macro": fold.f1_macro,
            "confusion": [list(row) for row in fold.confusion],
            **fold.extra,
        }
        for fold in folds
    ]
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for key in METRIC_KEYS:
        average, spread = mean_and_std([getattr(fold, key) for fold in folds])
        mean[key] = finite_or_none(average)
        std[key] = finite_or_none(spread)
    predictions = pooled_predictions(folds)
    pooled_metrics = compute_metrics(predictions["true"], predictions["predicted"], classes)
    correct = int((predictions["true"].to_numpy() == predictions["predicted"].to_numpy()).sum())
    subjects = per_subject_accuracy(predictions)
    summary = {
        "experiment": experiment,
        "classes": classes,
        "chance": 1.0 / len(classes),
        "n_folds": len(folds),
        "folds": fold_rows,
        "mean": mean,
        "std": std,
        "pooled": {
            "n": pooled_metrics["n"],
            "correct": correct,
            **{key: pooled_metrics[key] for key in METRIC_KEYS},
            "confusion": pooled_metrics["confusion"],
        },
        "per_subject": {subject: values["accuracy"] for subject, values in subjects.items()},
        "per_subject_n": {subject: values["n"] for subject, values in subjects.items()},
    }
    summary.update(experiment_settings(folds))
    return summary


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100.0 * value:.2f}"


def experiment_table(summary: dict) -> pd.DataFrame:
    """The TSV's rows: folds, then mean, std, pooled (metrics as percentages, 2 decimals)."""
    rows = [
        {
            "fold": row["fold"],
            "test_subjects": ",".join(row["test_subjects"]),
            "n": str(row["n"]),
            **{TABLE_COLUMNS[key]: _percent(row[key]) for key in METRIC_KEYS},
        }
        for row in summary["folds"]
    ]
    for name in ("mean", "std"):
        rows.append(
            {
                "fold": name,
                "test_subjects": "",
                "n": "",
                **{TABLE_COLUMNS[k]: _percent(summary[name][k]) for k in METRIC_KEYS},
            }
        )
    pooled = summary["pooled"]
    rows.append(
        {
            "fold": "pooled",
            "test_subjects": "",
            "n": str(pooled["n"]),
            **{TABLE_COLUMNS[k]: _percent(pooled[k]) for k in METRIC_KEYS},
        }
    )
    return pd.DataFrame(rows, columns=["fold", "test_subjects", "n", *TABLE_COLUMNS.values()])


def mean_history(folds: Sequence[FoldResult]) -> pd.DataFrame:
    """Per-epoch mean and sample std over folds of train loss and accuracy.

    Folds are aligned on the epoch number; an epoch some folds lack is averaged over the
    folds that have it (``folds`` column), so a fold cut short does not drop the curve.
    """
    stacked = pd.concat([fold.history.assign(fold=fold.fold) for fold in folds], ignore_index=True)
    grouped = stacked.groupby("epoch", sort=True)
    loss_mean = grouped["train_loss"].mean()
    frame = pd.DataFrame(
        {
            "epoch": loss_mean.index.to_numpy(dtype=float),
            "folds": grouped["fold"].count().to_numpy(),
            "train_loss_mean": loss_mean.to_numpy(),
            "train_loss_std": grouped["train_loss"].std(ddof=1).to_numpy(),
            "train_accuracy_mean": grouped["train_accuracy"].mean().to_numpy(),
            "train_accuracy_std": grouped["train_accuracy"].std(ddof=1).to_numpy(),
        }
    )
    return frame


def write_experiment_report(
    *, experiment: str, fold_dirs: Sequence[str | Path], out_dir: str | Path, plots_dir: str | Path
) -> dict:
    """Read the folds, write TABLES/NAME.tsv and .json and the three plots; return the summary."""
    from painformer.report.plots import plot_confusion, plot_curves, plot_subjects

    folds = read_folds(fold_dirs, experiment=experiment)
    summary = summarize_experiment(experiment=experiment, folds=folds)
    out_dir = Path(out_dir)
    plots_dir = Path(plots_dir)
    with atomic_path(out_dir / f"{experiment}.tsv") as path:
        experiment_table(summary).to_csv(path, sep="\t", index=False)
    with atomic_path(out_dir / f"{experiment}.json") as path:
        path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    plot_confusion(
        confusion=np.asarray(summary["pooled"]["confusion"]),
        classes=summary["classes"],
        title=f"{experiment}: pooled confusion (n={summary['pooled']['n']})",
        out=plots_dir / f"{experiment}_confusion.png",
    )
    plot_subjects(
        per_subject=summary["per_subject"],
        chance=summary["chance"],
        mean_accuracy=summary["mean"]["accuracy"],
        title=f"{experiment}: accuracy per subject",
        out=plots_dir / f"{experiment}_subjects.png",
    )
    plot_curves(
        history=mean_history(folds),
        title=f"{experiment}: training curves over {len(folds)} folds",
        out=plots_dir / f"{experiment}_curves.png",
    )
    return summary
