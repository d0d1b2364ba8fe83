"""Reading the fold folders that training writes, with every inconsistency reported by file.

A report is only as trustworthy as the files it reads, so this module checks what it can:
the metrics file agrees with the predictions next to it, every fold scores the same class
list, no sample is predicted twice across folds (the pooled figures would count it twice),
the per-epoch history is numeric, and the linear probe (when the fold has one) predicted
exactly the Mixer's test samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painformer.errors import InputError
from painformer.report.metrics import BINARY_KEYS, METRIC_KEYS, compute_metrics

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.tsv"
HISTORY_FILE = "history.tsv"
CONFIG_FILE = "config.json"
# Written by the linear probe beside the Mixer's files (painformer.train.probe).
PROBE_FILE = "probe.json"
PROBE_PREDICTIONS_FILE = "probe_predictions.tsv"

REQUIRED_METRIC_KEYS = (
    "fold",
    "classes",
    "test_subjects",
    "n_test",
    "accuracy",
    "recall_macro",
    "f1_macro",
    "confusion",
)
PREDICTION_COLUMNS = ("sample", "subject", "true", "predicted")
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy")

# Settings copied from a fold's config.json into the report, when the training wrote them.
DESCRIPTIVE_KEYS = ("inputs", "fusion", "aggregation", "task", "protocol", "preset")
TRAINING_KEYS = ("epochs", "basic_p", "masking_p", "mask_range", "label_smoothing", "dropout")

# A fold's accuracy in metrics.json and the one recomputed from predictions.tsv may differ
# only by float rounding.
ACCURACY_TOLERANCE = 1e-6
# Metrics that are ratios of confusion counts, so a recorded value must match the recomputed one.
COUNT_KEYS = ("sensitivity", "specificity", "precision", "f1")


@dataclass(frozen=True)
class FoldResult:
    """One fold's recorded metrics, predictions and training history."""

    directory: Path
    experiment: str
    fold: str
    classes: tuple[str, ...]
    test_subjects: tuple[str, ...]
    accuracy: float
    recall_macro: float
    f1_macro: float
    confusion: tuple[tuple[int, ...], ...]
    predictions: pd.DataFrame = field(repr=False)
    history: pd.DataFrame = field(repr=False)
    config: dict = field(repr=False)
    extra: dict = field(repr=False)
    # Every key of compute_metrics' METRIC_KEYS (None where undefined), the recorded values where recorded.
    metrics: dict = field(repr=False, default_factory=dict)
    # The linear probe of the same fold: {"record", "predictions", "metrics"}, or None when the fold has none.
    probe: dict | None = field(repr=False, default=None)

    @property
    def n(self) -> int:
        return len(self.predictions)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: missing (a fold folder needs {METRICS_FILE}, {PREDICTIONS_FILE}, {HISTORY_FILE})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None


def _read_tsv(path: Path, *, required: Sequence[str], text_columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: missing (a fold folder needs {METRICS_FILE}, {PREDICTIONS_FILE}, {HISTORY_FILE})")
    try:
        table = pd.read_csv(path, sep="\t", dtype={name: str for name in text_columns}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable tab-separated table ({error})") from None
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing} (has {list(table.columns)})")
    if table.empty:
        raise InputError(f"{path}: no rows")
    return table


def _fraction(value: Any, *, name: str, path: Path) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {name} is {value!r}, not a number") from None
    if not (0.0 <= number <= 1.0):
        raise InputError(f"{path}: {name} is {number}, outside 0..1")
    return number


def _read_metrics(path: Path) -> dict:
    metrics = _read_json(path)
    if not isinstance(metrics, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(metrics).__name__}")
    missing = [key for key in REQUIRED_METRIC_KEYS if key not in metrics]
    if missing:
        raise InputError(f"{path}: missing keys {missing}")
    classes = metrics["classes"]
    if not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes):
        raise InputError(f"{path}: 'classes' must list at least two distinct class names, found {classes!r}")
    subjects = metrics["test_subjects"]
    if not isinstance(subjects, list) or not subjects:
        raise InputError(f"{path}: 'test_subjects' must be a non-empty list, found {subjects!r}")
    confusion = metrics["confusion"]
    size = len(classes)
    if (
        not isinstance(confusion, list)
        or len(confusion) != size
        or any(not isinstance(row, list) or len(row) != size for row in confusion)
    ):
        raise InputError(f"{path}: 'confusion' must be a {size}x{size} matrix in the order of 'classes'")
    return metrics


def _read_predictions(path: Path, classes: Sequence[str]) -> pd.DataFrame:
    table = _read_tsv(path, required=PREDICTION_COLUMNS, text_columns=PREDICTION_COLUMNS)
    unknown = sorted((set(table["true"]) | set(table["predicted"])) - set(classes))
    if unknown:
        raise InputError(f"{path}: labels {unknown} are not among the fold's classes {list(classes)}")
    duplicated = table["sample"][table["sample"].duplicated()].tolist()
    if duplicated:
        raise InputError(f"{path}: samples predicted more than once: {duplicated[:5]}")
    return table.loc[:, [*PREDICTION_COLUMNS, *[c for c in table.columns if c.startswith("prob_")]]]


def _read_history(path: Path) -> pd.DataFrame:
    table = _read_tsv(path, required=HISTORY_COLUMNS, text_columns=())
    for name in HISTORY_COLUMNS:
        values = pd.to_numeric(table[name], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise InputError(
                f"{path}: column {name!r} holds a non-numeric value {table[name].iloc[row]!r} in row {row + 1}"
            )
        table[name] = values.astype(float)
    return table.loc[:, list(HISTORY_COLUMNS)]


def _probabilities(predictions: pd.DataFrame, classes: Sequence[str], path: Path) -> np.ndarray | None:
    """The ``prob_<class>`` columns as an (n, classes) array, or None when the file has none."""
    columns = [f"prob_{name}" for name in classes]
    if not all(column in predictions.columns for column in columns):
        return None
    values = predictions[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path}: a prob_ column holds a value that is not a finite number")
    return values


def _fold_metrics(metrics: dict, predictions: pd.DataFrame, classes: Sequence[str], *, path: Path) -> dict:
    """Every metric of the fold, recomputed from its predictions and checked against the recorded ones."""
    recomputed = compute_metrics(
        predictions["true"], predictions["predicted"], classes, _probabilities(predictions, classes, path)
    )
    values = {key: recomputed[key] for key in METRIC_KEYS}
    for key in BINARY_KEYS:
        recorded = metrics.get(key)
        if recorded is None:
            continue
        recorded = _fraction(recorded, name=key, path=path)
        if key in COUNT_KEYS and (values[key] is None or abs(values[key] - recorded) > ACCURACY_TOLERANCE):
            raise InputError(f"{path}: {key} {recorded:.6f} disagrees with its predictions ({values[key]})")
        values[key] = recorded
    return values


def read_probe(directory: Path, classes: Sequence[str], test_samples: set[str]) -> dict | None:
    """The fold's linear-probe record and predictions, checked against the Mixer's test side; None if absent."""
    record_path, predictions_path = directory / PROBE_FILE, directory / PROBE_PREDICTIONS_FILE
    if not record_path.exists() and not predictions_path.exists():
        return None
    for path in (record_path, predictions_path):
        if not path.exists():
            raise InputError(f"{path}: missing, though the fold folder holds the other probe file")
    record = _read_json(record_path)
    if not isinstance(record, dict):
        raise InputError(f"{record_path}: expected a JSON object, found {type(record).__name__}")
    predictions = _read_predictions(predictions_path, classes)
    if set(predictions["sample"]) != test_samples:
        raise InputError(
            f"{predictions_path}: the probe predicted other samples than the fold's {PREDICTIONS_FILE} "
            f"({len(predictions)} vs {len(test_samples)})"
        )
    metrics = _fold_metrics(record, predictions, classes, path=record_path)
    return {"record": record, "predictions": predictions, "metrics": metrics}


def read_fold(directory: str | Path) -> FoldResult:
    """Read and cross-check one fold folder; bad or missing files raise InputError naming them."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: fold folder does not exist")
    metrics_path = directory / METRICS_FILE
    metrics = _read_metrics(metrics_path)
    classes = tuple(str(name) for name in metrics["classes"])
    predictions_path = directory / PREDICTIONS_FILE
    predictions = _read_predictions(predictions_path, classes)
    history = _read_history(directory / HISTORY_FILE)

    recorded_n = metrics.get("n_test")
    if recorded_n is not None and int(recorded_n) != len(predictions):
        raise InputError(
            f"{predictions_path}: {len(predictions)} predictions but {metrics_path} records n_test={recorded_n}"
        )
    accuracy = _fraction(metrics["accuracy"], name="accuracy", path=metrics_path)
    recomputed = float(np.mean(predictions["true"].to_numpy() == predictions["predicted"].to_numpy()))
    if abs(recomputed - accuracy) > ACCURACY_TOLERANCE:
        raise InputError(
            f"{metrics_path}: accuracy {accuracy:.6f} disagrees with {predictions_path} ({recomputed:.6f})"
        )
    subjects_seen = set(predictions["subject"])
    test_subjects = tuple(str(subject) for subject in metrics["test_subjects"])
    strangers = sorted(subjects_seen - set(test_subjects))
    if strangers:
        raise InputError(f"{predictions_path}: subjects {strangers} are not among the fold's test_subjects")

    config_path = directory / CONFIG_FILE
    config = _read_json(config_path) if config_path.exists() else {}
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: expected a JSON object, found {type(config).__name__}")
    extra = {key: metrics[key] for key in ("epochs", "seed", "train_seconds", "device", "n_train") if key in metrics}
    values = _fold_metrics(metrics, predictions, classes, path=metrics_path)
    recall_macro = _fraction(metrics["recall_macro"], name="recall_macro", path=metrics_path)
    f1_macro = _fraction(metrics["f1_macro"], name="f1_macro", path=metrics_path)
    values.update(accuracy=accuracy, recall_macro=recall_macro, f1_macro=f1_macro)
    return FoldResult(
        directory=directory,
        experiment=str(metrics.get("experiment", "")),
        fold=str(metrics["fold"]),
        classes=classes,
        test_subjects=test_subjects,
        accuracy=accuracy,
        recall_macro=recall_macro,
        f1_macro=f1_macro,
        confusion=tuple(tuple(int(value) for value in row) for row in metrics["confusion"]),
        predictions=predictions,
        history=history,
        config=config,
        extra=extra,
        metrics=values,
        probe=read_probe(directory, classes, set(predictions["sample"])),
    )


def read_folds(directories: Sequence[str | Path], *, experiment: str) -> list[FoldResult]:
    """Read every fold of one experiment and check that they belong together."""
    if not directories:
        raise InputError(f"experiment {experiment}: no fold folders given")
    folds = [read_fold(directory) for directory in directories]
    first = folds[0]
    for fold in folds:
        metrics_path = fold.directory / METRICS_FILE
        if fold.experiment and fold.experiment != experiment:
            raise InputError(f"{metrics_path}: belongs to experiment {fold.experiment!r}, not {experiment!r}")
        if fold.classes != first.classes:
            raise InputError(
                f"{metrics_path}: classes {list(fold.classes)} differ from {list(first.classes)} "
                f"in {first.directory / METRICS_FILE}"
            )
    seen: dict[str, Path] = {}
    for fold in folds:
        for sample in fold.predictions["sample"]:
            if sample in seen:
                raise InputError(
                    f"{fold.directory / PREDICTIONS_FILE}: sample {sample!r} is also predicted in "
                    f"{seen[sample] / PREDICTIONS_FILE}; pooled metrics would count it twice"
                )
            seen[sample] = fold.directory
    names = [fold.fold for fold in folds]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InputError(f"experiment {experiment}: fold names {repeated} occur in more than one folder")
    return folds


def _find_setting(config: dict, key: str) -> Any:
    """A setting of a fold's config.json: at its top level, else in its ``preset``, else one level down.

    ``preset`` is the experiment's name for its preset: training records it as
    ``preset_name``, beside the resolved ``preset`` settings.
    """
    if key == "preset":
        name = config.get("preset_name")
        return name if isinstance(name, str) and name else None
    if key in config and not isinstance(config[key], dict):
        return config[key]
    nested = [config["preset"]] if isinstance(config.get("preset"), dict) else []
    nested += [value for name, value in config.items() if name != "preset" and isinstance(value, dict)]
    for value in nested:
        if key in value and not isinstance(value[key], dict):
            return value[key]
    return None


def experiment_settings(folds: Sequence[FoldResult]) -> dict:
    """Inputs, fusion, task, preset name and training settings as recorded by the folds, when present.

    The first fold's config.json is the source; a fold with a different value for one of the
    descriptive settings means folders of different experiments were mixed, which is an error.
    """
    settings: dict[str, Any] = {}
    for key in (*DESCRIPTIVE_KEYS, *TRAINING_KEYS):
        value = _find_setting(folds[0].config, key)
        if value is None and key == "epochs":
            value = folds[0].extra.get("epochs")
        if value is not None:
            settings[key] = value
    for fold in folds[1:]:
        for key in DESCRIPTIVE_KEYS:
            if key not in settings:
                continue
            other = _find_setting(fold.config, key)
            if other is not None and other != settings[key]:
                raise InputError(
                    f"{fold.directory / CONFIG_FILE}: {key} {other!r} differs from {settings[key]!r} "
                    f"in {folds[0].directory / CONFIG_FILE}"
                )
    return settings


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: the std of a single fold is written as null."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
