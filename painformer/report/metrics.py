"""Classification metrics shared by training, the linear probe and reporting.

Every figure in the tables comes from :func:`compute_metrics`, so a number printed by
the training loop and the same number in a report table cannot drift apart.

The paper's Rec and F1 on a two-class task are those of the pain class (the task's last
class): on BioVid every subject has as many no-pain as pain samples, so a macro recall
would equal the accuracy in every fold. Macro recall and macro F1 stay the headline of a
multi-class task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score, roc_auc_score

MacroOver = Literal["all", "present"]
# Keys of a two-class task, ``None`` where a task has more classes or the value is undefined.
BINARY_KEYS = ("sensitivity", "specificity", "precision", "f1", "auc")
# Every metric compute_metrics returns as a fraction 0..1 (or None).
METRIC_KEYS = ("accuracy", *BINARY_KEYS, "recall_macro", "f1_macro")


def headline_keys(classes: Sequence[str]) -> tuple[str, str, str]:
    """The paper's Acc, Rec, F1 for a task: the pain class's recall and F1 with two classes, macro otherwise."""
    return ("accuracy", "sensitivity", "f1") if len(classes) == 2 else ("accuracy", "recall_macro", "f1_macro")


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def binary_metrics(
    confusion: np.ndarray, positive_scores: np.ndarray | None, positive_truth: np.ndarray
) -> dict[str, float | None]:
    """Sensitivity, specificity, precision, F1 of the positive class and AUC from a 2x2 confusion matrix.

    Rows and columns are (negative, positive). A ratio with nothing to count is ``None``
    (sensitivity of a test side with no positive sample, AUC of a test side with one class),
    except precision when nothing is predicted positive: 0, the convention of scikit-learn's
    ``zero_division=0``, so that a model that never predicts pain scores 0 rather than n/a.
    """
    (tn, fp), (fn, tp) = (int(value) for value in confusion[0]), (int(value) for value in confusion[1])
    auc = None
    if positive_scores is not None and 0 < int(positive_truth.sum()) < positive_truth.size:
        auc = float(roc_auc_score(positive_truth, positive_scores))
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp) if tp + fp else 0.0,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "auc": auc,
    }


def compute_metrics(
    true: Sequence[str],
    predicted: Sequence[str],
    classes: Sequence[str],
    probabilities: np.ndarray | None = None,
    *,
    macro_over: MacroOver = "all",
) -> dict:
    """Accuracy, the two-class metrics, macro recall, macro F1 (fractions 0..1) and the confusion matrix.

    ``classes`` fixes the label order of the confusion matrix (rows: true class,
    columns: predicted class). With exactly two classes, the last is the positive (pain)
    class and ``sensitivity``, ``specificity``, ``precision``, ``f1`` (of that class) and,
    given ``probabilities`` ((n, len(classes)) in the order of ``classes``), ``auc`` are
    filled in; a task of more classes has no single pain class and gets ``None`` for them.

    ``macro_over="all"`` averages recall and F1 over every class in ``classes`` (a class
    never seen scores 0); ``"present"`` averages only over the classes that occur in
    ``true``: a single subject's test set may lack a class, and counting that class as a 0
    would punish the subject for the data it was given rather than for its predictions.

    Raises ``ValueError`` when the inputs differ in length, are empty, hold a label outside
    ``classes``, or the probabilities have the wrong shape.
    """
    true_labels = [str(label) for label in true]
    predicted_labels = [str(label) for label in predicted]
    class_list = [str(name) for name in classes]
    if len(true_labels) != len(predicted_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions")
    if not true_labels:
        raise ValueError("no predictions to score")
    if len(class_list) < 2:
        raise ValueError(f"a classification task needs at least two classes, got {class_list}")
    if len(set(class_list)) != len(class_list):
        raise ValueError(f"duplicate class names in {class_list}")
    unknown = sorted((set(true_labels) | set(predicted_labels)) - set(class_list))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {class_list}")
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=float)
        if probabilities.shape != (len(true_labels), len(class_list)):
            raise ValueError(
                f"probabilities have shape {probabilities.shape}, expected {(len(true_labels), len(class_list))}"
            )
        if not np.all(np.isfinite(probabilities)):
            raise ValueError("probabilities hold a non-finite value")
    if macro_over == "all":
        averaged = class_list
    elif macro_over == "present":
        present = set(true_labels)
        averaged = [name for name in class_list if name in present]
    else:
        raise ValueError(f"macro_over must be 'all' or 'present', not {macro_over!r}")
    confusion = confusion_matrix(true_labels, predicted_labels, labels=class_list)
    if len(class_list) == 2:
        truth = np.array([label == class_list[1] for label in true_labels])
        scores = None if probabilities is None else probabilities[:, 1]
        binary = binary_metrics(confusion, scores, truth)
    else:
        binary = dict.fromkeys(BINARY_KEYS)
    return {
        "n": len(true_labels),
        "accuracy": float(accuracy_score(true_labels, predicted_labels)),
        **binary,
        "recall_macro": float(
            recall_score(true_labels, predicted_labels, labels=averaged, average="macro", zero_division=0)
        ),
        "f1_macro": float(f1_score(true_labels, predicted_labels, labels=averaged, average="macro", zero_division=0)),
        "confusion": confusion.astype(int).tolist(),
    }


def mean_and_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the defined values; the std of one value is NaN.

    ``None`` (a metric a fold cannot define, e.g. sensitivity without a pain sample) is left
    out. The sample std is used because subjects are a sample of the population the figure
    is meant to describe.
    """
    array = np.asarray([value for value in values if value is not None], dtype=float)
    if array.size == 0:
        return float("nan"), float("nan")
    std = float(array.std(ddof=1)) if array.size > 1 else float("nan")
    return float(array.mean()), std
