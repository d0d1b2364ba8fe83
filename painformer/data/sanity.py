"""A scientific sanity check of a BioVid-layout tree: do hand-made biosignal features separate two classes?

A dataset meant to test a pain model should carry a signal that a simple model finds and that
no single measurement gives away. This check computes three classic features per sample from
the biosignal files alone (nothing from the generator), and scores a standardised logistic
regression under leave-one-subject-out cross-validation, for each feature and for all together:

* ``gsr_amplitude``: the skin-conductance rise, peak after the first second minus the mean of
  the first second (uS);
* ``heart_rate``: mean heart rate from the R-R intervals of the R-peaks neurokit2 finds (bpm);
* ``emg_rms``: root mean square of the trapezius EMG over the window (uV).

On the default demo (6 subjects, 4 samples per class, seed 0), BL1 against PA4,
``benchmarks/demo_sanity.py`` prints the table; ``docs/datasets.md`` records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.errors import InputError

FEATURES = ("gsr_amplitude", "heart_rate", "emg_rms")
BASELINE_SECONDS = 1.0  # the demo's and BioVid's stimuli start no earlier than this into the window


def heart_rate(ecg: np.ndarray, fs: float, *, source: str = "ecg") -> float:
    """Mean heart rate in beats per minute from the R-peaks of ``ecg``."""
    import neurokit2 as nk

    _, info = nk.ecg_peaks(np.asarray(ecg, dtype=float), sampling_rate=round(fs), method="neurokit")
    peaks = np.asarray(info["ECG_R_Peaks"], dtype=float)
    if len(peaks) < 3:
        raise InputError(f"{source}: found {len(peaks)} R-peaks, need at least 3 to estimate the heart rate")
    return float(60.0 * fs / np.diff(peaks).mean())


def sample_features(biosignals: str | Path) -> dict[str, float]:
    """The features of one BioVid ``*_bio.csv`` file."""
    from painformer.data.signals import read_biosignals

    record = read_biosignals(biosignals)
    fs = record.fs
    gsr = record.signals["gsr"]
    baseline = round(BASELINE_SECONDS * fs)
    if len(gsr) <= 2 * baseline:
        raise InputError(f"{biosignals}: {len(gsr)} samples, too short for a {BASELINE_SECONDS:g} s GSR baseline")
    emg = record.signals["emg_trapezius"]
    return {
        "gsr_amplitude": float(gsr[baseline:].max() - gsr[:baseline].mean()),
        "heart_rate": heart_rate(record.signals["ecg"], fs, source=str(biosignals)),
        "emg_rms": float(np.sqrt(np.mean(np.square(emg - emg.mean())))),
    }


def feature_table(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per sample of a sample table: ``subject``, ``class_name`` and the ``FEATURES``."""
    rows = [
        {"sample": row.sample, "subject": row.subject, "class_name": row.class_name, **sample_features(row.biosignals)}
        for row in samples.itertuples()
    ]
    return pd.DataFrame(rows, columns=["sample", "subject", "class_name", *FEATURES])


def loso_predictions(features: np.ndarray, labels: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Predicted label of every sample, each by a model trained on the other subjects only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    predicted = np.empty_like(labels)
    for subject in np.unique(subjects):
        test = subjects == subject
        if len(np.unique(labels[~test])) < 2:
            raise InputError(f"subject {subject!r}: the other subjects do not hold both classes")
        model = make_pipeline(StandardScaler(), LogisticRegression())
        model.fit(features[~test], labels[~test])
        predicted[test] = model.predict(features[test])
    return predicted


@dataclass(frozen=True)
class SanityResult:
    accuracy: pd.DataFrame  # index: feature set; column "accuracy"
    per_subject: pd.DataFrame  # index: subject; one column per feature set
    features: pd.DataFrame  # feature_table() of the samples used


def sanity_check(samples: pd.DataFrame, classes: Sequence[str] = ("BL1", "PA4")) -> SanityResult:
    """LOSO accuracy of each feature alone and of all ``FEATURES`` together, ``classes[0]`` against ``classes[1]``."""
    if len(classes) != 2:
        raise InputError(f"the sanity check compares two classes, got {list(classes)}")
    kept = samples[samples["class_name"].isin(classes)]
    missing = [name for name in classes if name not in set(kept["class_name"])]
    if missing:
        raise InputError(f"the sample table holds no samples of {missing}")
    if kept["subject"].nunique() < 2:
        raise InputError("leave-one-subject-out needs at least 2 subjects")
    table = feature_table(kept)
    labels = (table["class_name"] == classes[1]).to_numpy(dtype=int)
    subjects = table["subject"].to_numpy()
    sets = {name: [name] for name in FEATURES} | {"all": list(FEATURES)}
    accuracy, per_subject = {}, {}
    for name, columns in sets.items():
        correct = loso_predictions(table[columns].to_numpy(dtype=float), labels, subjects) == labels
        accuracy[name] = float(correct.mean())
        per_subject[name] = pd.Series(correct).groupby(subjects).mean()
    return SanityResult(
        accuracy=pd.DataFrame({"accuracy": accuracy}), per_subject=pd.DataFrame(per_subject), features=table
    )


def format_result(result: SanityResult, classes: Sequence[str] = ("BL1", "PA4")) -> str:
    """The accuracy table and the per-subject accuracies as aligned text."""
    title = (
        f"LOSO accuracy, {classes[0]} vs {classes[1]}, {len(result.features)} samples of "
        f"{result.features['subject'].nunique()} subjects (chance 0.5)"
    )
    lines = [title, "", f"{'features':<16}{'accuracy':>9}"]
    lines += [f"{name:<16}{value:>9.3f}" for name, value in result.accuracy["accuracy"].items()]
    lines += ["", "per subject:", f"{'subject':<16}" + "".join(f"{name:>15}" for name in result.per_subject.columns)]
    for subject, row in result.per_subject.iterrows():
        lines.append(f"{subject:<16}" + "".join(f"{value:>15.3f}" for value in row))
    return "\n".join(lines)
