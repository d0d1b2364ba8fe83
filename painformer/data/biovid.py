"""BioVid Heat Pain Database, Part A (and the demo dataset, written in the same layout).

Layout under ROOT::

    samples.csv                                            tab-separated, one row per sample
    video/<subject>/<sample>.mp4                           25 fps, ~138 frames
    biosignals_filtered/<subject>/<sample>_bio.csv         (or biosignals_raw/)

``samples.csv`` columns: ``subject_id subject_name class_id class_name sample_id sample_name``.
The indexer reports everything wrong at once (see :func:`index_biovid`) so that one run over
the 8,700 samples of the real dataset gives the full list; files are checked on a thread pool.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from painformer.data.signals import BIOVID_FS, BIOVID_MIN_SECONDS, biosignal_problems
from painformer.data.tables import SAMPLE_COLUMNS, sort_samples
from painformer.data.tasks import BIOVID_CLASSES
from painformer.data.validation import Problem, escapes_root, run_parallel, video_problems
from painformer.errors import InputError
from painformer.names import SAFE_NAME_RULE, describe_unsafe, unsafe_names

log = logging.getLogger(__name__)

SAMPLES_FILE = "samples.csv"
SAMPLES_CSV_COLUMNS = ("subject_id", "subject_name", "class_id", "class_name", "sample_id", "sample_name")
BIOSIGNAL_KINDS = ("filtered", "raw")
VIDEO_DIR = "video"
VIDEO_SUFFIX = ".mp4"
BIOSIGNAL_SUFFIX = "_bio.csv"


def biosignal_dir(kind: str) -> str:
    if kind not in BIOSIGNAL_KINDS:
        raise InputError(f"biosignals must be one of {list(BIOSIGNAL_KINDS)}, got {kind!r}")
    return f"biosignals_{kind}"


def read_samples_csv(root: Path) -> pd.DataFrame:
    """``ROOT/samples.csv`` as text columns; a missing file or column stops indexing outright."""
    path = root / SAMPLES_FILE
    if not path.is_file():
        raise InputError(f"{path}: BioVid samples.csv not found (is {root} a BioVid Part A root?)")
    try:
        listing = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a tab-separated samples.csv ({error})") from None
    listing.columns = [str(column).strip() for column in listing.columns]
    missing = [column for column in SAMPLES_CSV_COLUMNS if column not in listing.columns]
    if missing:
        raise InputError(
            f"{path}: missing columns {missing} (header has {list(listing.columns)}; "
            f"expected tab-separated {list(SAMPLES_CSV_COLUMNS)})"
        )
    return listing.apply(lambda column: column.str.strip())


def _listing_problems(listing: pd.DataFrame, samples_csv: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Rows of samples.csv that cannot become samples: unknown class, wrong class_id, duplicates, blanks."""
    problems = []
    keep = pd.Series(True, index=listing.index)
    for index, row in listing.iterrows():
        sample, line = row["sample_name"], f"{samples_csv} line {index + 2}"
        unsafe = unsafe_names([row["subject_name"], sample])
        if not sample or not row["subject_name"]:
            problems.append(Problem(sample, line, "empty sample_name or subject_name"))
        elif unsafe:
            problems.append(Problem(sample, line, f"unsafe name {describe_unsafe(unsafe)} ({SAFE_NAME_RULE})"))
        elif row["class_name"] not in BIOVID_CLASSES:
            problems.append(
                Problem(
                    sample, line, f"unknown class_name {row['class_name']!r}; BioVid classes are {list(BIOVID_CLASSES)}"
                )
            )
        elif row["class_id"] != str(BIOVID_CLASSES.index(row["class_name"])):
            problems.append(
                Problem(
                    sample,
                    line,
                    f"class_id {row['class_id']!r} does not match class_name "
                    f"{row['class_name']} (expected {BIOVID_CLASSES.index(row['class_name'])})",
                )
            )
        elif not row["subject_id"].isdigit():
            problems.append(Problem(sample, line, f"subject_id {row['subject_id']!r} is not a non-negative integer"))
        else:
            continue
        keep[index] = False
    duplicated = listing["sample_name"].duplicated(keep=False) & (listing["sample_name"] != "")
    for index in listing.index[duplicated]:
        problems.append(
            Problem(
                listing.at[index, "sample_name"], f"{samples_csv} line {index + 2}", "sample_name listed more than once"
            )
        )
    return listing[keep & ~duplicated], problems


def _extra_files(root: Path, root_text: str, folder: str, suffix: str, expected: set[tuple[str, str]]) -> list[Problem]:
    """Files of the tree that samples.csv does not list: a sign of a mismatched listing or copy."""
    problems = []
    base = root / folder
    if not base.is_dir():
        return problems
    for subject in sorted(os.scandir(base), key=lambda entry: entry.name):
        if not subject.is_dir():
            continue
        for entry in sorted(os.scandir(subject.path), key=lambda entry: entry.name):
            if entry.name.endswith(suffix) and (subject.name, entry.name[: -len(suffix)]) not in expected:
                problems.append(
                    Problem(
                        "", os.path.join(root_text, folder, subject.name, entry.name), f"not listed in {SAMPLES_FILE}"
                    )
                )
    return problems


def _video_check_name(check_videos: bool, decode_videos: bool) -> str:
    return ("first frame decoded" if decode_videos else "opened") if check_videos else "only checked to exist"


def index_biovid(
    root: str | Path,
    *,
    biosignals: str = "filtered",
    classes: list[str] | None = None,
    check_videos: bool = True,
    decode_videos: bool = False,
    video_decoder: str = "auto",
    dataset: str = "biovid",
    workers: int | None = None,
    expected_fs: float = BIOVID_FS,
    min_seconds: float = BIOVID_MIN_SECONDS,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Index a BioVid Part A tree: the table of good samples and every problem found.

    Problems (``Problem(sample, file, problem)``; sample "" for a file that is no sample):
    bad samples.csv rows, files listed but missing, files present but not listed, biosignal
    files with missing columns, NaN/inf or the wrong sampling, videos that are empty or that
    the video decoder (``video_decoder``) cannot open (``check_videos``; ``decode_videos`` also decodes their first frame). Only samples of ``classes`` (None: all) are checked and returned; the table
    holds only samples without problems. Paths start with ``root`` exactly as given, so a
    relative root gives relative paths.
    """
    started = time.perf_counter()
    root_text = str(root)
    root = Path(root)
    signal_folder = biosignal_dir(biosignals)
    if classes is not None:
        unknown = sorted(set(classes) - set(BIOVID_CLASSES))
        if unknown:
            raise InputError(f"{root}: unknown BioVid classes {unknown}; classes are {list(BIOVID_CLASSES)}")
    listing = read_samples_csv(root)
    samples_csv = os.path.join(root_text, SAMPLES_FILE)
    valid, problems = _listing_problems(listing, samples_csv)
    listed = {(row.subject_name, row.sample_name) for row in listing.itertuples()}
    problems += _extra_files(root, root_text, VIDEO_DIR, VIDEO_SUFFIX, listed)
    problems += _extra_files(root, root_text, signal_folder, BIOSIGNAL_SUFFIX, listed)
    if classes is not None:
        valid = valid[valid["class_name"].isin(classes)]
    rows: list[dict[str, Any]] = [
        {
            "dataset": dataset,
            "sample": row.sample_name,
            "subject": row.subject_name,
            "subject_id": row.subject_id,
            "class_id": int(row.class_id),
            "class_name": row.class_name,
            "video": os.path.join(root_text, VIDEO_DIR, row.subject_name, row.sample_name + VIDEO_SUFFIX),
            "biosignals": os.path.join(root_text, signal_folder, row.subject_name, row.sample_name + BIOSIGNAL_SUFFIX),
            "split": "",
        }
        for row in valid.itertuples()
    ]

    def check(row: dict[str, Any]) -> list[Problem]:
        outside = [path for path in (row["video"], row["biosignals"]) if escapes_root(root_text, path)]
        if outside:
            return [Problem(row["sample"], path, f"path leaves the dataset root {root_text}") for path in outside]
        _, signal_text = biosignal_problems(row["biosignals"], expected_fs=expected_fs, min_seconds=min_seconds)
        found = [Problem(row["sample"], row["biosignals"], text) for text in signal_text]
        if check_videos:
            video_text = video_problems(row["video"], decode_first_frame=decode_videos, decoder=video_decoder)
        else:
            video_text = [] if os.path.isfile(row["video"]) else ["file not found"]
        found += [Problem(row["sample"], row["video"], text) for text in video_text]
        return found

    bad = set()
    for row, found in zip(rows, run_parallel(check, rows, workers=workers)):
        problems.extend(found)
        if found:
            bad.add(row["sample"])
    table = pd.DataFrame([row for row in rows if row["sample"] not in bad], columns=list(SAMPLE_COLUMNS))
    log.info(
        "%s: %d samples checked in %.1f s (videos %s), %d good, %d problems",
        root,
        len(rows),
        time.perf_counter() - started,
        _video_check_name(check_videos, decode_videos),
        len(table),
        len(problems),
    )
    return sort_samples(table), problems
