"""Reading physiological signal files, with the checks that keep garbage out of the images.

A biosignal image is only as good as the file it is drawn from: a NaN, a missing column or
a file recorded at another rate renders without error into a misleading picture. So every
reader here validates the file and reports *all* its problems at once, naming the file.

BioVid Part A ``*_bio.csv``: tab-separated, header ``time gsr ecg emg_trapezius`` (some copies
add ``emg_corrugator emg_zygomaticus``), ``time`` in microseconds, 512 Hz, 2816 rows (5.5 s).

Sampling checks (shared with the fNIRS reader), all on the time column:

- the time stamps strictly increase;
- no step deviates from the median step by more than ``step_tolerance`` (50 %) of it: a gap
  (lost samples) or a repeated stamp shows up here, while the rounding of 1953.125 us steps
  to whole microseconds does not;
- the rate estimated from the whole record, ``(n - 1) / (t_last - t_first)``, is within
  ``fs_tolerance`` (2 %) of the expected rate: a file at another rate, or with the time in
  another unit, fails here;
- the record lasts at least ``min_seconds`` (5 s for BioVid: its windows are 5.5 s, so only
  truncated files fail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from painformer.errors import InputError
from painformer.names import SIGNALS

if TYPE_CHECKING:
    from painformer.data.ai4pain import Ai4PainLayout

BIOVID_FS = 512.0
BIOVID_MIN_SECONDS = 5.0
BIOVID_TIME_UNIT_SECONDS = 1e-6
BIOVID_REQUIRED_COLUMNS = ("time", "gsr", "ecg", "emg_trapezius")
BIOVID_OPTIONAL_COLUMNS = ("emg_corrugator", "emg_zygomaticus")
# Signal names used across the package -> the BioVid column holding it.
BIOVID_SIGNAL_COLUMNS = MappingProxyType({"ecg": "ecg", "emg": "emg_trapezius", "gsr": "gsr"})


@dataclass(frozen=True)
class SamplingCheck:
    """How strictly a time column must match the expected rate (see the module docstring)."""

    expected_fs: float
    min_seconds: float
    fs_tolerance: float = 0.02
    step_tolerance: float = 0.5

    def __post_init__(self) -> None:
        if self.expected_fs <= 0 or self.min_seconds < 0 or self.fs_tolerance <= 0 or self.step_tolerance <= 0:
            raise InputError(f"invalid sampling check {self}: rates, durations and tolerances must be positive")


def sampling_problems(time_seconds: np.ndarray, check: SamplingCheck) -> tuple[float, list[str]]:
    """Estimate the sampling rate of ``time_seconds`` and list what is wrong with it.

    Returns ``(fs, problems)``; ``fs`` is NaN when it cannot be estimated.
    """
    n = len(time_seconds)
    min_rows = max(int(np.ceil(check.min_seconds * check.expected_fs)), 2)
    needed = f"need at least {min_rows} rows ({check.min_seconds:g} s at {check.expected_fs:g} Hz)"
    if n < 2:
        return float("nan"), [f"{n} rows, {needed}"]
    steps = np.diff(time_seconds)
    problems = []
    if not np.all(steps > 0):
        first = int(np.argmax(~(steps > 0)))
        problems.append(f"time does not strictly increase (row {first + 2} of the data)")
    median = float(np.median(steps))
    if median > 0:
        deviation = np.abs(steps - median) / median
        if np.any(deviation > check.step_tolerance):
            first = int(np.argmax(deviation > check.step_tolerance))
            problems.append(
                f"irregular sampling: step {steps[first]:.6g} s at data row {first + 2}, median step {median:.6g} s"
            )
    span = float(time_seconds[-1] - time_seconds[0])
    fs = (n - 1) / span if span > 0 else float("nan")
    rate_ok = np.isfinite(fs) and abs(fs - check.expected_fs) <= check.fs_tolerance * check.expected_fs
    if n < min_rows:
        # The rate the file was recorded at is the likely cause (a 100 Hz export of a 5.5 s
        # window is 550 rows), so it is named beside the rows needed.
        recorded = f"at {fs:.6g} Hz from the time column, {span:.3f} s" if np.isfinite(fs) else "without a usable time"
        problems.append(f"too short: {n} rows ({recorded}), {needed}")
    elif rate_ok and span < check.min_seconds - 1.0 / check.expected_fs:
        problems.append(f"record lasts {span:.3f} s, need at least {check.min_seconds:g} s")
    if not rate_ok:
        problems.append(
            f"sampling rate {fs:.6g} Hz from the time column, expected {check.expected_fs:g} Hz "
            f"(tolerance {check.fs_tolerance:.0%})"
        )
    return fs, problems


def read_table_problems(path: Path, *, required: tuple[str, ...]) -> tuple[pd.DataFrame | None, list[str]]:
    """Read a tab-separated numeric file; list missing columns, non-numbers, NaN and inf per column."""
    try:
        frame = pd.read_csv(path, sep="\t", engine="c")
    except FileNotFoundError:
        return None, ["file not found"]
    except pd.errors.EmptyDataError:
        return None, ["empty file"]
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        return None, [f"not a readable tab-separated file ({str(error).strip().splitlines()[0]})"]
    frame.columns = [str(column).strip() for column in frame.columns]
    problems = []
    missing = [column for column in required if column not in frame.columns]
    if missing:
        problems.append(f"missing columns {missing} (header has {list(frame.columns)})")
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = values[numeric.isna() & values.notna()]
            if len(bad):
                problems.append(
                    f"column {column!r} has non-numeric values (first {bad.iloc[0]!r} at data row {bad.index[0] + 1})"
                )
                continue
            frame[column] = numeric
        array = frame[column].to_numpy(dtype=np.float64)
        not_finite = ~np.isfinite(array)
        if not_finite.any():
            first = int(np.argmax(not_finite))
            problems.append(
                f"column {column!r} has {int(not_finite.sum())} NaN/inf values (first at data row {first + 1})"
            )
    return frame, problems


@dataclass(frozen=True)
class Biosignals:
    """One BioVid biosignal file: its rate and one (T,) float64 array per column (time excluded)."""

    path: Path
    fs: float
    signals: Mapping[str, np.ndarray] = field(repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.signals[name]

    @property
    def n_samples(self) -> int:
        return len(next(iter(self.signals.values())))


def biosignal_problems(
    path: str | Path, *, expected_fs: float = BIOVID_FS, min_seconds: float = BIOVID_MIN_SECONDS
) -> tuple[Biosignals | None, list[str]]:
    """Read a BioVid ``*_bio.csv`` and list every problem; the record is None when there is any."""
    path = Path(path)
    frame, problems = read_table_problems(path, required=BIOVID_REQUIRED_COLUMNS)
    if frame is None or "time" not in frame.columns or problems:
        return None, problems
    time_seconds = frame["time"].to_numpy(dtype=np.float64) * BIOVID_TIME_UNIT_SECONDS
    fs, sampling = sampling_problems(time_seconds, SamplingCheck(expected_fs=expected_fs, min_seconds=min_seconds))
    if sampling:
        return None, sampling
    signals = {column: frame[column].to_numpy(dtype=np.float64) for column in frame.columns if column != "time"}
    return Biosignals(path=path, fs=float(fs), signals=MappingProxyType(signals)), []


def read_biosignals(
    path: str | Path, *, expected_fs: float = BIOVID_FS, min_seconds: float = BIOVID_MIN_SECONDS
) -> Biosignals:
    """Read and check a BioVid ``*_bio.csv``; InputError lists every problem with the file name."""
    record, problems = biosignal_problems(path, expected_fs=expected_fs, min_seconds=min_seconds)
    if record is None:
        raise InputError(f"{path}: " + "; ".join(problems))
    return record


def load_signal(path: str | Path, signal: str, *, layout: Ai4PainLayout | None = None) -> tuple[np.ndarray, float]:
    """One signal of one sample as float64 values and the sampling rate.

    ``ecg``, ``emg`` (the trapezius EMG) and ``gsr`` come from a BioVid ``*_bio.csv`` as (T,);
    ``fnirs`` comes from an AI4Pain fNIRS file as (C, T) HbO2 of the good channels, read with
    ``layout`` (default: the documented default layout).
    """
    if signal in BIOVID_SIGNAL_COLUMNS:
        record = read_biosignals(path)
        return record[BIOVID_SIGNAL_COLUMNS[signal]], record.fs
    if signal == "fnirs":
        from painformer.data.ai4pain import DEFAULT_LAYOUT, read_fnirs

        recording = read_fnirs(path, layout=layout or DEFAULT_LAYOUT)
        return recording.hbo2, recording.fs
    raise InputError(f"{path}: unknown signal {signal!r}; known signals: {', '.join(SIGNALS)}")
