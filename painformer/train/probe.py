"""A linear probe beside every Mixer fold: how much a logistic regression finds in the same inputs.

When the Mixer predicts one class in every fold, nobody can tell from its numbers alone whether
the embeddings carry no signal or the Mixer failed to find it. The probe answers that on the
same fold (same training side, same test side, read from the same arrays) with a model that
cannot collapse for lack of tuning:

- its input is the experiment's fused vector: the ``fused`` stream (one input, the inputs'
  sum or their concatenation), or for Eq. 12 the non-video embedding concatenated with the sum
  of the video embeddings; decision fusion has one probe per input and averages their class
  probabilities, as the Mixers' decision does;
- each feature is standardised with the training side's mean and std, whatever the preset's
  ``normalize`` (an L2 penalty means nothing on unscaled features);
- the L2 strength ``C`` comes from a small fixed grid, chosen by the mean log-loss over an
  inner split of the training side by subject (grouped k-fold; the standardisation of the
  whole training side serves the inner fits too), so no test sample decides it and each
  inner validation subject is judged by a model that never saw its labels; ties go to the
  stronger penalty.

It writes ``probe_predictions.tsv`` (the columns of ``predictions.tsv``) and ``probe.json``
(metrics, the chosen ``C``, the inner log-losses, the cost in seconds) into the fold folder.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from painformer.report.folds import PROBE_FILE, PROBE_PREDICTIONS_FILE
from painformer.train.config import Experiment
from painformer.train.data import ExperimentData, split_fold
from painformer.utils import atomic_path

# Inverse L2 strengths tried, strongest penalty first (ties keep the earlier one).
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# C used when the training side cannot be split by subject (fewer than two subjects).
FALLBACK_C = 1e-2
INNER_FOLDS = 3
MAX_ITER = 2000


def probe_inputs(experiment: Experiment, data: ExperimentData) -> dict[str, np.ndarray]:
    """The probe's input vectors: one per decision-fusion input, else the streams concatenated."""
    if experiment.fusion == "decision":
        return dict(data.streams)
    return {"fused": np.concatenate([data.streams[name] for name in data.streams], axis=1)}


def design(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probe's design matrices: standardised with the training rows' statistics (a constant feature
    is only centred), then, where features outnumber training rows, re-expressed in the span of the
    training rows.

    The second step changes no prediction: the L2-penalised optimum's weights are a combination of
    the training rows (the gradient of the loss lies in their span). With the Cholesky factor of the
    rows' Gram matrix, X X^T = L L^T, the rows of Q = L^-1 X are orthonormal and X = L Q, so a
    logistic regression on L (a test row x becomes x Q^T) fits the same model with the same penalty;
    the same holds on any subset of the rows, as the inner split uses them. A BioVid video fold (138
    frames concatenated) turns from 3,440 x 22,080 into 3,440 x 3,440, with one O(n^3 / 3) factorisation.
    Centred rows make X X^T singular: a ridge of 1e-6 of its mean diagonal (each row a private
    feature 1e-3 of its norm) makes it factorisable without changing what the probe finds.
    """
    from scipy.linalg import cho_factor, solve_triangular

    # In place: a BioVid video fold's training side is 600 MB in float64.
    train = train.astype(np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std < 1e-6] = 1.0
    train -= mean
    train /= std
    test = (test.astype(np.float64) - mean) / std
    if train.shape[1] <= train.shape[0]:
        return train, test
    gram = train @ train.T
    ridge = 1e-6 * max(float(np.trace(gram)) / gram.shape[0], 1e-12)
    factor, _ = cho_factor(gram + ridge * np.eye(gram.shape[0]), lower=True)
    lower = np.tril(factor)
    return lower, solve_triangular(lower, train @ test.T, lower=True).T


def _fit_predict(train: np.ndarray, labels: np.ndarray, test: np.ndarray, c: float, n_classes: int) -> np.ndarray:
    """Class probabilities of ``test`` (n, n_classes) from an L2 logistic regression on ``train``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=MAX_ITER)
    with warnings.catch_warnings():
        # The weakest penalties converge slowly on separable data; the iteration cap bounds the
        # cost and the inner split judges the result.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train, labels)
    probabilities = np.zeros((test.shape[0], n_classes))
    probabilities[:, model.classes_] = model.predict_proba(test)
    return probabilities


def choose_c(values: np.ndarray, labels: np.ndarray, subjects: np.ndarray, n_classes: int) -> tuple[float, dict]:
    """The grid's C with the lowest mean inner log-loss on the (standardised) training side, and each
    C's loss (None where no split could score)."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GroupKFold

    groups = np.unique(subjects)
    if groups.size < 2:
        return FALLBACK_C, {}
    splits = [
        (inner_train, inner_test)
        for inner_train, inner_test in GroupKFold(n_splits=min(INNER_FOLDS, groups.size)).split(
            values, labels, subjects
        )
        if np.unique(labels[inner_train]).size >= 2
    ]
    losses: dict[str, float | None] = {}
    for c in C_GRID:
        scores = [
            log_loss(
                labels[inner_test],
                np.clip(
                    _fit_predict(values[inner_train], labels[inner_train], values[inner_test], c, n_classes),
                    1e-15,
                    1,
                ),
                labels=list(range(n_classes)),
            )
            for inner_train, inner_test in splits
        ]
        losses[f"{c:g}"] = float(np.mean(scores)) if scores else None
    scored = [(loss, index) for index, loss in enumerate(losses.values()) if loss is not None]
    if not scored:
        return FALLBACK_C, losses
    return C_GRID[min(scored)[1]], losses


def run_probe(experiment: Experiment, fold: str, data: ExperimentData) -> dict:
    """Fit the fold's probe on its training side and predict its test side (see the module docstring)."""
    started = time.perf_counter()
    train_idx, test_idx = split_fold(experiment, fold, data)
    n_classes = len(data.classes)
    labels = data.labels[train_idx]
    chosen: dict[str, float] = {}
    losses: dict[str, dict] = {}
    parts = []
    inputs = probe_inputs(experiment, data)
    for name, values in inputs.items():
        train, test = design(values[train_idx], values[test_idx])
        chosen[name], losses[name] = choose_c(train, labels, data.subjects[train_idx], n_classes)
        parts.append(_fit_predict(train, labels, test, chosen[name], n_classes))
    return {
        "probabilities": np.mean(parts, axis=0),
        "test_idx": test_idx,
        "n_train": int(train_idx.size),
        "C": chosen,
        "inner_log_loss": losses,
        "features": {name: int(values.shape[1]) for name, values in inputs.items()},
        "seconds": time.perf_counter() - started,
    }


def write_probe(experiment: Experiment, fold: str, data: ExperimentData, out_dir: str | Path) -> dict:
    """Run the fold's probe and write ``probe_predictions.tsv`` and ``probe.json`` into ``out_dir``."""
    import pandas as pd

    from painformer.report.metrics import compute_metrics

    result = run_probe(experiment, fold, data)
    classes = list(data.classes)
    test_idx, probabilities = result["test_idx"], result["probabilities"]
    true = [classes[i] for i in data.labels[test_idx]]
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    predictions = pd.DataFrame(
        {"sample": data.samples[test_idx], "subject": data.subjects[test_idx], "true": true, "predicted": predicted}
    )
    for column, name in enumerate(classes):
        predictions[f"prob_{name}"] = probabilities[:, column]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / PROBE_PREDICTIONS_FILE) as path:
        path.write_text(predictions.to_csv(sep="\t", index=False, float_format="%.6f"))
    record = {
        "experiment": experiment.name,
        "fold": fold,
        "classes": classes,
        "test_subjects": sorted(set(data.subjects[test_idx].tolist())),
        "n_train": result["n_train"],
        "n_test": int(test_idx.size),
        **compute_metrics(true, predicted, classes, probabilities),
        "model": "standardised L2 logistic regression"
        + (", mean of per-input probabilities" if len(result["C"]) > 1 else ""),
        "C": result["C"],
        "C_grid": list(C_GRID),
        "inner_folds": INNER_FOLDS,
        "inner_log_loss": result["inner_log_loss"],
        "features": result["features"],
        "seconds": round(result["seconds"], 3),
    }
    record.pop("n")
    with atomic_path(out / PROBE_FILE) as path:
        path.write_text(json.dumps(record, indent=2) + "\n")
    return record
