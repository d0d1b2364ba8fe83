"""Uncertainty of the figures: bootstrap intervals over subjects, paired effect sizes, Holm's correction.

Subjects, not samples, are the unit of resampling and pairing: a subject's samples share a
face, a skin and a sensor placement, so they are not independent trials, and a LOSO mean is
a mean over subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from painformer.report.metrics import compute_metrics

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
# One fixed seed: the same tables give the same intervals on every run and machine.
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval of a mean over subjects; ``low``/``high`` are None with a ``note``."""

    low: float | None
    high: float | None
    n_subjects: int
    note: str = ""

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "n_subjects": self.n_subjects, "note": self.note}


def per_subject_metrics(predictions: pd.DataFrame, classes: Sequence[str]) -> dict[str, dict]:
    """``compute_metrics`` of each subject's predictions (with probabilities where recorded), sorted by subject."""
    probability_columns = [f"prob_{name}" for name in classes]
    has_probabilities = all(column in predictions.columns for column in probability_columns)
    result = {}
    for subject, rows in predictions.groupby("subject", sort=True):
        probabilities = rows[probability_columns].to_numpy(dtype=float) if has_probabilities else None
        scores = compute_metrics(rows["true"], rows["predicted"], classes, probabilities)
        scores.pop("confusion")
        result[str(subject)] = scores
    return result


def bootstrap_interval(
    values: Sequence[float | None],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Percentile bootstrap interval of the mean of per-subject ``values``, subjects resampled with replacement.

    Subjects whose value is undefined (``None``) are left out; with fewer than two subjects
    left there is nothing to resample and the interval is n/a with the reason in ``note``.
    The percentile method is used because it stays defined when every subject has the
    same value, where BCa divides by zero.
    """
    defined = np.asarray([value for value in values if value is not None], dtype=float)
    if defined.size < 2:
        return Interval(None, None, int(defined.size), f"n/a: {defined.size} subject(s), a bootstrap needs 2")
    result = stats.bootstrap(
        (defined,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Interval(float(interval.low), float(interval.high), int(defined.size))


def rank_biserial(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Matched-pairs rank-biserial correlation of ``first - second``: (R+ - R-) / (R+ + R-).

    R+ and R- are the rank sums of the positive and negative differences, ranked by absolute
    value with ties averaged; zero differences are dropped, as the Wilcoxon test's default
    ``zero_method="wilcox"`` drops them. +1: every subject is better in ``first``; -1: in
    ``second``; None when every difference is zero.
    """
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    differences = differences[differences != 0]
    if differences.size == 0:
        return None
    ranks = stats.rankdata(np.abs(differences))
    positive, negative = ranks[differences > 0].sum(), ranks[differences < 0].sum()
    return float((positive - negative) / (positive + negative))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input order; ``None`` (a test not run) stays None.

    With m tests sorted by p, the k-th smallest becomes max over j <= k of min(1, (m - j + 1) p_(j)):
    rejecting where the adjusted p is below alpha keeps the family-wise error rate at alpha.
    """
    tested = [(index, float(value)) for index, value in enumerate(p_values) if value is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    count = len(tested)
    for rank, (index, value) in enumerate(sorted(tested, key=lambda item: item[1])):
        running = max(running, min(1.0, (count - rank) * value))
        adjusted[index] = running
    return adjusted
