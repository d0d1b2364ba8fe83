"""AI4Pain 2024: fNIRS (24 channels, HbO2/HHb, 50 Hz) and face video, No/Low/High pain.

No public loader fixes the file layout of this dataset, so every name the indexer relies on
is a field of :class:`Ai4PainLayout`, settable from JSON (``painformer index --ai4pain-layout``).
The default layout (documented in docs/datasets.md)::

    ROOT/<split>/fnirs/<subject>/<subject>_<class>_<n>.csv    split: train | validation | test
    ROOT/<split>/video/<subject>/<subject>_<class>_<n>.mp4    class: No | Low | High

Recordings without labels (new ones to predict) leave the class out: ``<subject>_<n>``.

Each fNIRS file is comma-separated with a ``time`` column in seconds and, per channel
``<ch>``, the columns ``<ch>_HbO2`` and ``<ch>_HHb``; 24 channels, of which the two named in
``excluded_channels`` are dropped as faulty. The model sees the HbO2 of the remaining
channels, in file order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painformer.data.signals import SamplingCheck, sampling_problems
from painformer.data.tables import SAMPLE_COLUMNS, sort_samples
from painformer.data.tasks import AI4PAIN_CLASSES
from painformer.data.validation import Problem, escapes_root, run_parallel, video_problems
from painformer.errors import InputError
from painformer.names import SAFE_NAME_RULE, describe_unsafe, unsafe_names

log = logging.getLogger(__name__)


def _default_channels() -> tuple[str, ...]:
    """24 source-detector pairs: S1_D1, S1_D2, S2_D2, S2_D3, ..., S12_D12, S12_D13."""
    return tuple(f"S{k // 2 + 1}_D{k // 2 + k % 2 + 1}" for k in range(24))


DEFAULT_CHANNELS = _default_channels()


@dataclass(frozen=True)
class Ai4PainLayout:
    """Where the AI4Pain files are and how to read them; every field has a documented default."""

    splits: tuple[str, ...] = ("train", "validation", "test")
    fnirs_dir: str = "fnirs"
    video_dir: str = "video"
    fnirs_suffix: str = ".csv"
    video_suffix: str = ".mp4"
    # File stem -> subject, class label and trial number (named groups subject, label, number). A stem
    # whose label group is absent or does not take part in the match is an unlabelled recording.
    stem_pattern: str = r"^(?P<subject>[A-Za-z0-9-]+)(?:_(?P<label>[A-Za-z]+))?_(?P<number>\d+)$"
    # Label in the file name -> class name (No, Low, High).
    labels: Mapping[str, str] = field(default_factory=lambda: {name: name for name in AI4PAIN_CLASSES})
    separator: str = ","
    time_column: str = "time"
    time_unit_seconds: float = 1.0
    hbo2_suffix: str = "_HbO2"
    hhb_suffix: str = "_HHb"
    n_channels: int = 24
    excluded_channels: tuple[str, ...] = DEFAULT_CHANNELS[-2:]
    fs: float = 50.0
    min_seconds: float = 2.0
    fs_tolerance: float = 0.02

    def __post_init__(self) -> None:
        try:
            pattern = re.compile(self.stem_pattern)
        except re.error as error:
            raise InputError(
                f"AI4Pain layout: stem_pattern {self.stem_pattern!r} is not a regular expression ({error})"
            ) from None
        if "subject" not in pattern.groupindex:
            raise InputError("AI4Pain layout: stem_pattern lacks the named group 'subject'")
        unknown = sorted(set(self.labels.values()) - set(AI4PAIN_CLASSES))
        if unknown:
            raise InputError(
                f"AI4Pain layout: labels map to unknown classes {unknown}; classes are {list(AI4PAIN_CLASSES)}"
            )
        if len(self.excluded_channels) >= self.n_channels or self.n_channels < 1:
            raise InputError(
                f"AI4Pain layout: {self.n_channels} channels with {len(self.excluded_channels)} excluded leaves none"
            )
        if self.fs <= 0 or self.time_unit_seconds <= 0:
            raise InputError("AI4Pain layout: fs and time_unit_seconds must be positive")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "AI4Pain layout") -> Ai4PainLayout:
        """Build a layout from a JSON-like mapping; unknown keys are an error, not ignored."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
        converted = {}
        for name, value in values.items():
            if name in ("splits", "excluded_channels"):
                if isinstance(value, str) or not isinstance(value, (list, tuple)):
                    raise InputError(f"{source}: {name} must be a list of strings, got {value!r}")
                value = tuple(str(item) for item in value)
            elif name == "labels" and not isinstance(value, Mapping):
                raise InputError(f"{source}: labels must be a mapping label -> class name, got {value!r}")
            converted[name] = value
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; :meth:`from_mapping` of it gives this layout back."""
        values = dataclasses.asdict(self)
        values["labels"] = dict(self.labels)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    @classmethod
    def from_json(cls, text_or_path: str) -> Ai4PainLayout:
        """A layout from a JSON object given inline or as the path of a JSON file."""
        values, source = read_layout_json(text_or_path)
        return cls.from_mapping(values, source=source)


# Fields that name files and folders only; the others say how a file's values are read.
NAMING_FIELDS = ("splits", "fnirs_dir", "video_dir", "fnirs_suffix", "video_suffix", "stem_pattern", "labels")


def read_layout_json(text_or_path: str) -> tuple[dict[str, Any], str]:
    """The JSON object given inline or as the path of a JSON file, and where it came from."""
    source = "--ai4pain-layout"
    text = text_or_path
    if not text_or_path.lstrip().startswith("{") and os.path.isfile(text_or_path):
        source, text = text_or_path, Path(text_or_path).read_text()
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{source}: not a JSON object nor a JSON file ({error})") from None
    if not isinstance(values, dict):
        raise InputError(f"{source}: expected a JSON object, got {type(values).__name__}")
    return values, source


DEFAULT_LAYOUT = Ai4PainLayout()


@dataclass(frozen=True)
class FnirsRecording:
    """One fNIRS file: HbO2 and HHb of the good channels, each (C, T) float64."""

    path: Path
    fs: float
    channels: tuple[str, ...]
    hbo2: np.ndarray = field(repr=False)
    hhb: np.ndarray = field(repr=False)


def fnirs_problems(
    path: str | Path, *, layout: Ai4PainLayout = DEFAULT_LAYOUT
) -> tuple[FnirsRecording | None, list[str]]:
    """Read an fNIRS file in ``layout`` and list every problem; the recording is None when there is any."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=layout.separator, engine="c")
    except FileNotFoundError:
        return None, ["file not found"]
    except pd.errors.EmptyDataError:
        return None, ["empty file"]
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        return None, [f"not a readable fNIRS table ({str(error).strip().splitlines()[0]})"]
    frame.columns = [str(column).strip() for column in frame.columns]
    problems = []
    if layout.time_column not in frame.columns:
        problems.append(f"no time column {layout.time_column!r} (header starts {list(frame.columns)[:6]})")
    hbo2 = [c[: -len(layout.hbo2_suffix)] for c in frame.columns if c.endswith(layout.hbo2_suffix)]
    hhb = {c[: -len(layout.hhb_suffix)] for c in frame.columns if c.endswith(layout.hhb_suffix)}
    if len(hbo2) != layout.n_channels:
        problems.append(f"{len(hbo2)} {layout.hbo2_suffix} columns, expected {layout.n_channels}")
    unpaired = sorted(set(hbo2) ^ hhb)
    if unpaired:
        problems.append(f"channels without both {layout.hbo2_suffix} and {layout.hhb_suffix}: {unpaired[:6]}")
    absent = [channel for channel in layout.excluded_channels if channel not in hbo2]
    if absent and not problems:
        problems.append(f"excluded channels {absent} are not in the file (channels: {hbo2[:4]}...)")
    if problems:
        return None, problems
    channels = tuple(channel for channel in hbo2 if channel not in layout.excluded_channels)
    columns = (
        [layout.time_column] + [c + layout.hbo2_suffix for c in channels] + [c + layout.hhb_suffix for c in channels]
    )
    try:
        values = frame[columns].to_numpy(dtype=np.float64)
    except ValueError:
        return None, ["non-numeric values in the time or channel columns"]
    not_finite = ~np.isfinite(values)
    if not_finite.any():
        bad_columns = [columns[i] for i in np.flatnonzero(not_finite.any(axis=0))]
        return None, [f"{int(not_finite.sum())} NaN/inf values in columns {bad_columns[:6]}"]
    check = SamplingCheck(expected_fs=layout.fs, min_seconds=layout.min_seconds, fs_tolerance=layout.fs_tolerance)
    fs, sampling = sampling_problems(values[:, 0] * layout.time_unit_seconds, check)
    if sampling:
        return None, sampling
    n = len(channels)
    return FnirsRecording(
        path=path,
        fs=float(fs),
        channels=channels,
        hbo2=np.ascontiguousarray(values[:, 1 : 1 + n].T),
        hhb=np.ascontiguousarray(values[:, 1 + n :].T),
    ), []


def read_fnirs(path: str | Path, *, layout: Ai4PainLayout = DEFAULT_LAYOUT) -> FnirsRecording:
    """Read and check an fNIRS file; InputError lists every problem with the file name."""
    recording, problems = fnirs_problems(path, layout=layout)
    if recording is None:
        raise InputError(f"{path}: " + "; ".join(problems))
    return recording


def _subject_id(subject: str, ordinal: int) -> str:
    return subject if subject.isdigit() else str(ordinal)


def index_ai4pain(
    root: str | Path,
    *,
    layout: Ai4PainLayout = DEFAULT_LAYOUT,
    classes: list[str] | None = None,
    check_videos: bool = True,
    decode_videos: bool = False,
    video_decoder: str = "auto",
    dataset: str = "ai4pain",
    workers: int | None = None,
    unlabelled: str | None = None,
    need_fnirs: bool = True,
    need_video: bool = True,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Index an AI4Pain tree: the table of good samples and every problem found.

    ``unlabelled``: the class name given to recordings whose file name carries no label (class id
    0); None makes such a name a problem. ``need_fnirs``/``need_video``: whether a sample needs its
    fNIRS file and its video (a model that reads one of them only predicts trees lacking the other).
    The samples are those of the fNIRS files, or of the videos when the fNIRS files are not needed.

    Problems: unparsable file names, unknown labels, a subject in two splits, an fNIRS file
    without its video or a video without its fNIRS file, unreadable fNIRS files (columns,
    channel count, NaN, sampling rate), videos that do not decode. The table holds only
    samples without problems; paths start with ``root`` as given.
    """
    started = time.perf_counter()
    root_text = str(root)
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: AI4Pain root directory not found")
    if classes is not None:
        unknown = sorted(set(classes) - set(AI4PAIN_CLASSES))
        if unknown:
            raise InputError(f"{root}: unknown AI4Pain classes {unknown}; classes are {list(AI4PAIN_CLASSES)}")
    present = [split for split in layout.splits if (root / split).is_dir()]
    if not present:
        raise InputError(f"{root}: none of the split folders {list(layout.splits)} exists")
    pattern = re.compile(layout.stem_pattern)
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    split_of_subject: dict[str, str] = {}
    for split in present:
        fnirs_files = sorted((root / split / layout.fnirs_dir).glob(f"*/*{layout.fnirs_suffix}"))
        video_files = sorted((root / split / layout.video_dir).glob(f"*/*{layout.video_suffix}"))
        fnirs_keys = {(p.parent.name, p.name[: -len(layout.fnirs_suffix)]) for p in fnirs_files}
        for video in video_files if need_fnirs and need_video else []:
            if (video.parent.name, video.name[: -len(layout.video_suffix)]) not in fnirs_keys:
                problems.append(
                    Problem(
                        video.name[: -len(layout.video_suffix)],
                        os.path.join(root_text, str(video.relative_to(root))),
                        "video without an fNIRS file",
                    )
                )
        video_set = set(video_files)
        # Each sample's file that must exist: its fNIRS file, or its video for a model that reads no fNIRS.
        primaries = fnirs_files if need_fnirs else video_files
        primary_suffix = layout.fnirs_suffix if need_fnirs else layout.video_suffix
        for primary in primaries:
            stem = primary.name[: -len(primary_suffix)]
            where = os.path.join(root_text, str(primary.relative_to(root)))
            fnirs = root / split / layout.fnirs_dir / primary.parent.name / f"{stem}{layout.fnirs_suffix}"
            fnirs_path = os.path.join(root_text, str(fnirs.relative_to(root)))
            match = pattern.match(stem)
            if match is None:
                problems.append(Problem(stem, where, f"file name does not match stem_pattern {layout.stem_pattern!r}"))
                continue
            subject = match["subject"]
            label = match.groupdict().get("label")
            unsafe = unsafe_names([subject, stem])
            if unsafe:
                problems.append(Problem(stem, where, f"unsafe name {describe_unsafe(unsafe)} ({SAFE_NAME_RULE})"))
                continue
            if subject != primary.parent.name:
                problems.append(
                    Problem(stem, where, f"subject {subject!r} in the name, folder is {primary.parent.name!r}")
                )
                continue
            if label is None and unlabelled is None:
                problems.append(Problem(stem, where, "no class label in the file name"))
                continue
            if label is not None and label not in layout.labels:
                problems.append(Problem(stem, where, f"label {label!r} is not one of {sorted(layout.labels)}"))
                continue
            other = split_of_subject.setdefault(subject, split)
            if other != split:
                problems.append(Problem(stem, where, f"subject {subject} is in both {other} and {split}"))
                continue
            class_name = layout.labels[label] if label is not None else unlabelled
            if label is not None and classes is not None and class_name not in classes:
                continue
            video = root / split / layout.video_dir / subject / f"{stem}{layout.video_suffix}"
            video_path = os.path.join(root_text, str(video.relative_to(root)))
            if need_video and video not in video_set:
                problems.append(Problem(stem, video_path, "video not found"))
                continue
            rows.append(
                {
                    "dataset": dataset,
                    "sample": stem,
                    "subject": subject,
                    "class_id": AI4PAIN_CLASSES.index(class_name) if label is not None else 0,
                    "class_name": class_name,
                    "video": video_path,
                    "biosignals": fnirs_path,
                    "split": split,
                }
            )
    duplicated = pd.Series([row["sample"] for row in rows]).duplicated(keep=False)
    for row, twice in zip(rows, duplicated):
        if twice:
            problems.append(Problem(row["sample"], row["biosignals"], "sample name occurs more than once"))
    rows = [row for row, twice in zip(rows, duplicated) if not twice]

    def check(row: dict[str, Any]) -> list[Problem]:
        outside = [path for path in (row["video"], row["biosignals"]) if escapes_root(root_text, path)]
        if outside:
            return [Problem(row["sample"], path, f"path leaves the dataset root {root_text}") for path in outside]
        found = []
        if need_fnirs:
            found += [
                Problem(row["sample"], row["biosignals"], text)
                for text in fnirs_problems(row["biosignals"], layout=layout)[1]
            ]
        if check_videos and need_video:
            found += [
                Problem(row["sample"], row["video"], text)
                for text in video_problems(row["video"], decode_first_frame=decode_videos, decoder=video_decoder)
            ]
        return found

    bad = set()
    for row, found in zip(rows, run_parallel(check, rows, workers=workers)):
        problems.extend(found)
        if found:
            bad.add(row["sample"])
    ordinal = {subject: number for number, subject in enumerate(sorted({row["subject"] for row in rows}))}
    for row in rows:
        row["subject_id"] = _subject_id(row["subject"], ordinal[row["subject"]])
    table = pd.DataFrame([row for row in rows if row["sample"] not in bad], columns=list(SAMPLE_COLUMNS))
    log.info(
        "%s: %d samples checked in %.1f s, %d good, %d problems",
        root,
        len(rows),
        time.perf_counter() - started,
        len(table),
        len(problems),
    )
    return sort_samples(table), problems
