"""Report figures, drawn with matplotlib's Agg backend so they render without a display.

Each function writes one PNG atomically: a crash leaves no half-written figure that
Snakemake could take for a finished output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from painformer.utils import atomic_path

DPI = 120


def _save(figure: plt.Figure, out: str | Path) -> None:
    figure.tight_layout()
    with atomic_path(out, suffix=".png") as path:
        figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)


def plot_confusion(*, confusion: np.ndarray, classes: Sequence[str], title: str, out: str | Path) -> None:
    """Counts with row percentages (share of each true class) in every cell.

    The colour follows the row percentage, so classes of different sizes are comparable.
    """
    counts = np.asarray(confusion, dtype=float)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    size = len(classes)
    figure, axes = plt.subplots(figsize=(1.3 * size + 2.5, 1.1 * size + 1.8))
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for row in range(size):
        for column in range(size):
            colour = "white" if shares[row, column] > 0.6 else "black"
            axes.text(
                column,
                row,
                f"{int(counts[row, column])}\n{100 * shares[row, column]:.1f}%",
                ha="center",
                va="center",
                color=colour,
                fontsize=9,
            )
    axes.set_xticks(range(size), labels=list(classes))
    axes.set_yticks(range(size), labels=list(classes))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    _save(figure, out)


def plot_subjects(
    *, per_subject: Mapping[str, float], chance: float, mean_accuracy: float | None, title: str, out: str | Path
) -> None:
    """Accuracy per subject as bars, with the chance level and the mean over folds as lines."""
    subjects = list(per_subject)
    values = [100.0 * per_subject[subject] for subject in subjects]
    figure, axes = plt.subplots(figsize=(max(4.0, 0.18 * len(subjects) + 2.0), 3.5))
    axes.bar(range(len(subjects)), values, color="tab:blue", width=0.8)
    axes.axhline(100.0 * chance, color="tab:red", linestyle="--", linewidth=1, label=f"chance {100 * chance:.1f}%")
    if mean_accuracy is not None:
        axes.axhline(100.0 * mean_accuracy, color="black", linewidth=1, label=f"mean {100 * mean_accuracy:.2f}%")
    axes.set_xticks(range(len(subjects)), labels=subjects, rotation=90, fontsize=6 if len(subjects) > 30 else 8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    _save(figure, out)


def plot_curves(*, history: pd.DataFrame, title: str, out: str | Path) -> None:
    """Train loss and train accuracy per epoch: mean over folds with a +-1 std band."""
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = history["epoch"].to_numpy()
    for axes, name, label in (
        (loss_axes, "train_loss", "train loss"),
        (accuracy_axes, "train_accuracy", "train accuracy"),
    ):
        mean = history[f"{name}_mean"].to_numpy()
        std = np.nan_to_num(history[f"{name}_std"].to_numpy())
        axes.plot(epochs, mean, color="tab:blue", label="mean over folds")
        axes.fill_between(epochs, mean - std, mean + std, color="tab:blue", alpha=0.25, label="+-1 std")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    _save(figure, out)


def plot_summary(
    *, names: Sequence[str], means: np.ndarray, stds: np.ndarray, chances: Sequence[float], out: str | Path
) -> None:
    """Grouped bars (accuracy, recall, F1 in %) per experiment with std error bars and chance marks.

    ``means`` and ``stds`` are (n_experiments, 3) arrays in percent; NaN std draws no bar.
    """
    count = len(names)
    positions = np.arange(count)
    width = 0.26
    figure, axes = plt.subplots(figsize=(max(5.0, 1.1 * count + 2.0), 4.0))
    for offset, (_column, label) in enumerate((("accuracy", "accuracy"), ("recall", "recall"), ("f1", "F1"))):
        errors = np.where(np.isnan(stds[:, offset]), 0.0, stds[:, offset])
        axes.bar(positions + (offset - 1) * width, means[:, offset], width, yerr=errors, capsize=2, label=label)
    axes.hlines(
        [100.0 * value for value in chances],
        positions - 1.5 * width,
        positions + 1.5 * width,
        colors="tab:red",
        linestyles="--",
        zorder=3,
        label="chance",
    )
    axes.set_xticks(positions, labels=list(names), rotation=30, ha="right", fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("%  (mean +- std over folds)")
    axes.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, 1.15))
    _save(figure, out)
