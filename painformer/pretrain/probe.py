"""Linear probe: how much a backbone's embeddings carry about a labelled image set.

Embeds every image of an HDF5 task file (``images``, ``labels``, ``subjects``)
with a backbone and scores a standardised logistic regression under
leave-one-subject-out cross-validation. Comparing the pretrained backbone's
accuracy with the untrained one's shows what pretraining added.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from painformer.errors import InputError
from painformer.pretrain.data import HDF5Task


@torch.no_grad()
def embed_images(model, images: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 160) with the backbone's preprocessing."""
    from painformer.models.preprocess import preprocess

    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(images[start : start + batch_size]).to(device)
        parts.append(model.embed(batch).float().cpu().numpy())
    return np.concatenate(parts)


def standardise_per_subject(features: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """z-score every feature within each subject (uses no labels).

    Removes what makes one person's embeddings differ from another's on
    average, which otherwise dominates a leave-one-subject-out split.
    """
    result = np.empty_like(features, dtype=np.float64)
    for subject in np.unique(subjects):
        rows = subjects == subject
        part = features[rows].astype(np.float64)
        result[rows] = (part - part.mean(axis=0)) / (part.std(axis=0) + 1e-6)
    return result


def loso_logistic_accuracy(features: np.ndarray, labels: np.ndarray, subjects: np.ndarray) -> float:
    """Pooled accuracy of a logistic regression trained on all subjects but one, per subject."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    correct = 0
    for train, test in LeaveOneGroupOut().split(features, labels, subjects):
        if len(np.unique(labels[train])) < 2:
            raise InputError("a leave-one-subject-out fold has a single class in its training part")
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        classifier.fit(features[train], labels[train])
        correct += int((classifier.predict(features[test]) == labels[test]).sum())
    return correct / len(labels)


def probe_checkpoints(*, task: str | Path, checkpoints: Sequence[str], device: str = "auto") -> list[dict[str, Any]]:
    """LOSO logistic-regression accuracy of each checkpoint's embeddings (``none``: untrained).

    ``accuracy`` uses the embeddings as they are; ``accuracy_subject_normalised``
    after :func:`standardise_per_subject`.
    """
    from painformer.models.loading import load_painformer

    data = HDF5Task(Path(task))
    try:
        if data.subjects is None:
            raise InputError(f"{task}: the probe needs a 'subjects' dataset for leave-one-subject-out")
        images = data.all_images()
        labels, subjects = data.labels, data.subjects
    finally:
        data.close()
    if len(np.unique(subjects)) < 2:
        raise InputError(f"{task}: leave-one-subject-out needs at least two subjects")
    chance = float(np.bincount(labels).max() / len(labels))
    results = []
    for checkpoint in checkpoints:
        path = None if checkpoint.lower() in ("none", "") else checkpoint
        model = load_painformer(path, device=device)
        features = embed_images(model, images)
        results.append(
            {
                "checkpoint": checkpoint,
                "accuracy": loso_logistic_accuracy(features, labels, subjects),
                "accuracy_subject_normalised": loso_logistic_accuracy(
                    standardise_per_subject(features, subjects), labels, subjects
                ),
                "chance": chance,
                "n_images": int(len(labels)),
                "n_subjects": int(len(np.unique(subjects))),
            }
        )
    return results
