"""Classification metrics shared by training and reporting.

Every figure in the tables comes from :func:`compute_metrics`, so a number printed by
the training loop and the same number in a report table cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

MacroOver = Literal["all", "present"]


def compute_metrics(
    true: Sequence[str],
    predicted: Sequence[str],
    classes: Sequence[str],
    *,
    macro_over: MacroOver = "all",
) -> dict:
    """Accuracy, macro recall, macro F1 (fractions 0..1) and the confusion matrix.

    ``classes`` fixes the label order of the confusion matrix (rows: true class,
    columns: predicted class). ``macro_over="all"`` averages recall and F1 over every
    class in ``classes`` (a class never seen scores 0); ``"present"`` averages only
    over the classes that occur in ``true``: a single subject's test set may lack a
    class, and counting that class as a 0 would punish the subject for the data it
    was given rather than for its predictions.

    Raises ``ValueError`` when the inputs differ in length, are empty, or hold a
    label outside ``classes``.
    """
    true_labels = [str(label) for label in true]
    predicted_labels = [str(label) for label in predicted]
    class_list = [str(name) for name in classes]
    if len(true_labels) != len(predicted_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions")
    if not true_labels:
        raise ValueError("no predictions to score")
    if len(set(class_list)) != len(class_list):
        raise ValueError(f"duplicate class names in {class_list}")
    unknown = sorted((set(true_labels) | set(predicted_labels)) - set(class_list))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {class_list}")
    if macro_over == "all":
        averaged = class_list
    elif macro_over == "present":
        present = set(true_labels)
        averaged = [name for name in class_list if name in present]
    else:
        raise ValueError(f"macro_over must be 'all' or 'present', not {macro_over!r}")
    confusion = confusion_matrix(true_labels, predicted_labels, labels=class_list)
    return {
        "n": len(true_labels),
        "accuracy": float(accuracy_score(true_labels, predicted_labels)),
        "recall_macro": float(
            recall_score(true_labels, predicted_labels, labels=averaged, average="macro", zero_division=0)
        ),
        "f1_macro": float(f1_score(true_labels, predicted_labels, labels=averaged, average="macro", zero_division=0)),
        "confusion": confusion.astype(int).tolist(),
    }


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the std of a single value is NaN.

    The sample std is used because subjects are a sample of the population the
    figure is meant to describe.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return float("nan"), float("nan")
    std = float(array.std(ddof=1)) if array.size > 1 else float("nan")
    return float(array.mean()), std
