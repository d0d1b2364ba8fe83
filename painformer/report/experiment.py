"""One experiment's table: a row per fold, then the mean, std, pooled and bootstrap-interval rows.

The paper reports LOSO results as the mean over subjects, so ``mean`` is the headline
figure; ``std`` (sample std over folds) shows how much subjects differ, and ``pooled``
(all predictions scored together) is the figure a single held-out split would give and
the count the chance-level binomial test needs; ``ci`` (a bootstrap over subjects) says how
far the mean could move with other subjects. The fold's linear probe, when it ran, gets the
same figures under ``probe``.
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
from painformer.report.inference import bootstrap_interval, per_subject_metrics
from painformer.report.metrics import METRIC_KEYS, compute_metrics, headline_keys, mean_and_std
from painformer.utils import atomic_path

# What a fold's probe.json adds to the probe's fold rows: the chosen L2 strength and the cost.
PROBE_RECORD_KEYS = ("C", "features", "n_train", "seconds")

# Columns of the per-experiment TSV: every metric under its key, as percentages.
TABLE_KEYS = METRIC_KEYS


def pooled_predictions(folds: Sequence[FoldResult], *, probe: bool = False) -> pd.DataFrame:
    """Every fold's predictions (or its probe's) in one table, with the fold name as a column."""
    frames = [(fold.probe["predictions"] if probe else fold.predictions).assign(fold=fold.fold) for fold in folds]
    return pd.concat(frames, ignore_index=True)


def per_subject_accuracy(predictions: pd.DataFrame) -> dict[str, dict]:
    """Accuracy and sample count per subject, subjects in sorted order."""
    correct = predictions["true"].to_numpy() == predictions["predicted"].to_numpy()
    frame = pd.DataFrame({"subject": predictions["subject"].to_numpy(), "correct": correct})
    grouped = frame.groupby("subject", sort=True)["correct"]
    return {str(subject): {"accuracy": float(values.mean()), "n": int(values.size)} for subject, values in grouped}


def _pooled(predictions: pd.DataFrame, classes: list[str]) -> dict:
    probability_columns = [f"prob_{name}" for name in classes]
    probabilities = None
    if all(column in predictions.columns for column in probability_columns):
        values = predictions[probability_columns].to_numpy(dtype=float)
        # A fold without probabilities leaves NaN in the concatenation: no pooled AUC then.
        probabilities = values if np.all(np.isfinite(values)) else None
    metrics = compute_metrics(predictions["true"], predictions["predicted"], classes, probabilities)
    correct = int((predictions["true"].to_numpy() == predictions["predicted"].to_numpy()).sum())
    return {
        "n": metrics["n"],
        "correct": correct,
        **{key: metrics[key] for key in METRIC_KEYS},
        "confusion": metrics["confusion"],
    }


def metric_block(fold_values: Sequence[dict], predictions: pd.DataFrame, classes: list[str]) -> dict:
    """Mean and std over folds, pooled metrics, per-subject metrics and bootstrap intervals of one model."""
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for key in METRIC_KEYS:
        average, spread = mean_and_std([values[key] for values in fold_values])
        mean[key] = finite_or_none(average)
        std[key] = finite_or_none(spread)
    subjects = per_subject_metrics(predictions, classes)
    intervals = {
        key: bootstrap_interval([values[key] for values in subjects.values()]).to_dict()
        for key in headline_keys(classes)
    }
    return {
        "mean": mean,
        "std": std,
        "pooled": _pooled(predictions, classes),
        "per_subject": {subject: values["accuracy"] for subject, values in subjects.items()},
        "per_subject_n": {subject: values["n"] for subject, values in subjects.items()},
        "per_subject_metrics": {
            subject: {key: values[key] for key in headline_keys(classes)} for subject, values in subjects.items()
        },
        "ci": intervals,
    }


def _probe_block(folds: Sequence[FoldResult], classes: list[str]) -> tuple[dict | None, str]:
    """The probe's figures when every fold has one, else None and the reason."""
    missing = [fold.fold for fold in folds if fold.probe is None]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return None, f"no linear probe in fold(s) {', '.join(missing[:3])}{more}"
    block = metric_block([fold.probe["metrics"] for fold in folds], pooled_predictions(folds, probe=True), classes)
    block["folds"] = [
        {
            "fold": fold.fold,
            **fold.probe["metrics"],
            **{key: fold.probe["record"][key] for key in PROBE_RECORD_KEYS if key in fold.probe["record"]},
        }
        for fold in folds
    ]
    return block, ""


def summarize_experiment(*, experiment: str, folds: Sequence[FoldResult], probe: bool = True) -> dict:
    """Everything the experiment's JSON holds (fractions 0..1; NaN and undefined values written as null).

    ``probe``: also summarise the folds' linear probe (``probe`` is null, with ``probe_note``
    saying why, when a fold has none).
    """
    classes = list(folds[0].classes)
    fold_rows = [
        {
            "fold": fold.fold,
            "test_subjects": list(fold.test_subjects),
            "n": fold.n,
            **fold.metrics,
            "confusion": [list(row) for row in fold.confusion],
            **fold.extra,
        }
        for fold in folds
    ]
    block = metric_block([fold.metrics for fold in folds], pooled_predictions(folds), classes)
    summary = {
        "experiment": experiment,
        "classes": classes,
        "chance": 1.0 / len(classes),
        "headline": list(headline_keys(classes)),
        "n_folds": len(folds),
        "folds": fold_rows,
        **block,
    }
    if probe:
        summary["probe"], note = _probe_block(folds, classes)
        if note:
            summary["probe_note"] = note
    summary.update(experiment_settings(folds))
    return summary


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100.0 * value:.2f}"


def experiment_table(summary: dict) -> pd.DataFrame:
    """The TSV's rows: folds, then mean, std, pooled and the bootstrap interval (percentages, 2 decimals).

    The probe's headline metrics follow the Mixer's as ``probe_<key>`` columns when it was summarised.
    """
    headline = summary.get("headline") or list(headline_keys(summary["classes"]))
    probe = summary.get("probe")
    probe_columns = [f"probe_{key}" for key in headline] if probe else []
    probe_folds = {row["fold"]: row for row in probe["folds"]} if probe else {}

    def probe_cells(values: dict | None) -> dict:
        return {f"probe_{key}": _percent((values or {}).get(key)) for key in headline} if probe_columns else {}

    rows = [
        {
            "fold": row["fold"],
            "test_subjects": ",".join(row["test_subjects"]),
            "n": str(row["n"]),
            **{key: _percent(row.get(key)) for key in TABLE_KEYS},
            **probe_cells(probe_folds.get(row["fold"])),
        }
        for row in summary["folds"]
    ]
    for name in ("mean", "std", "pooled"):
        rows.append(
            {
                "fold": name,
                "test_subjects": "",
                "n": str(summary["pooled"]["n"]) if name == "pooled" else "",
                **{key: _percent(summary[name].get(key)) for key in TABLE_KEYS},
                **probe_cells(probe[name] if probe else None),
            }
        )
    for name, end in (("ci_low", "low"), ("ci_high", "high")):
        rows.append(
            {
                "fold": name,
                "test_subjects": "",
                "n": "",
                **{key: _percent(summary["ci"][key][end]) if key in summary["ci"] else "" for key in TABLE_KEYS},
                **probe_cells({key: value[end] for key, value in probe["ci"].items()} if probe else None),
            }
        )
    return pd.DataFrame(rows, columns=["fold", "test_subjects", "n", *TABLE_KEYS, *probe_columns])


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
    *,
    experiment: str,
    fold_dirs: Sequence[str | Path],
    out_dir: str | Path,
    plots_dir: str | Path,
    probe: bool = True,
) -> dict:
    """Read the folds, write TABLES/NAME.tsv and .json and the three plots; return the summary."""
    from painformer.report.plots import plot_confusion, plot_curves, plot_subjects

    folds = read_folds(fold_dirs, experiment=experiment)
    summary = summarize_experiment(experiment=experiment, folds=folds, probe=probe)
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
