"""The samples to predict: a BioVid- or AI4Pain-layout tree or a sample table, labelled or not.

A tree of new recordings usually has no labels: a BioVid ``samples.csv`` may leave ``class_id``
and ``class_name`` empty, an AI4Pain file name may leave the class out (``<subject>_<n>``). The
stages (renderer, embedder) take a sample table, whose class column must not be empty, so
unlabelled samples carry the placeholder class :data:`UNLABELLED` there; the prediction table
never shows it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from painformer.data.biovid import BIOSIGNAL_SUFFIX, VIDEO_DIR, VIDEO_SUFFIX, biosignal_dir, read_samples_csv
from painformer.data.signals import BIOVID_FS, BIOVID_MIN_SECONDS, biosignal_problems
from painformer.data.tables import SAMPLE_COLUMNS, sort_samples
from painformer.data.tasks import BIOVID_CLASSES
from painformer.data.validation import run_parallel
from painformer.errors import InputError
from painformer.names import SAFE_NAME_RULE, VIDEO_MODALITIES, describe_unsafe, unsafe_names

UNLABELLED = "unlabelled"


def _problem_summary(problems: list[str], limit: int = 3) -> str:
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def index_tree(
    root: str | Path,
    *,
    biosignals: str | None,
    signals: list[str],
    workers: int | None = None,
    data_format: str = "biovid",
    layout=None,
) -> pd.DataFrame:
    """The sample table of a tree in ``data_format`` (biovid | ai4pain, the latter read with ``layout``)."""
    if data_format == "ai4pain":
        return index_ai4pain_tree(root, layout=layout, signals=signals, workers=workers)
    return index_biovid_tree(root, biosignals=biosignals or "filtered", signals=signals, workers=workers)


def naming_override(layout, text_or_path: str):
    """The model's AI4Pain layout with the file and folder names of a new tree (JSON object or file).

    Only naming fields may change: the channels, sampling rate and file format are those the model
    was trained on.
    """
    from painformer.data.ai4pain import NAMING_FIELDS, Ai4PainLayout, read_layout_json

    values, source = read_layout_json(text_or_path)
    reading = sorted(set(values) - set(NAMING_FIELDS))
    if reading:
        raise InputError(
            f"{source}: {reading} say how the model's fNIRS files are read and stay as recorded; "
            f"a new tree may change only {list(NAMING_FIELDS)}"
        )
    return Ai4PainLayout.from_mapping({**layout.to_dict(), **values}, source=source)


def index_ai4pain_tree(root: str | Path, *, layout, signals: list[str], workers: int | None = None) -> pd.DataFrame:
    """The sample table of an AI4Pain-layout tree, read with the model's ``layout``.

    Refuses a tree with no folder of a signal the model reads, and any problem of a sample (an fNIRS
    file with other channels, another sampling rate or too short, a missing video): the model was
    trained on the layout's channels at its rate. Labels in the file names are optional.
    """
    from painformer.data.ai4pain import DEFAULT_LAYOUT, index_ai4pain

    layout = layout or DEFAULT_LAYOUT
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset root not found")
    splits = [split for split in layout.splits if (root / split).is_dir()]
    if not splits:
        raise InputError(f"{root}: none of the split folders {list(layout.splits)} of the model's layout exists")
    reads_fnirs = "fnirs" in signals
    reads_videos = any(signal in VIDEO_MODALITIES for signal in signals)
    wanted = [(reads_fnirs, layout.fnirs_dir, "fNIRS"), (reads_videos, layout.video_dir, "videos")]
    for needed, folder, what in wanted:
        if needed and not any((root / split / folder).is_dir() for split in splits):
            raise InputError(
                f"{root}: the model reads {', '.join(signals)}; this tree has no {what} "
                f"({' or '.join(f'{split}/{folder}/' for split in splits)} missing)"
            )
    table, problems = index_ai4pain(
        root,
        layout=layout,
        check_videos=reads_videos,
        dataset="predict",
        workers=workers,
        unlabelled=UNLABELLED,
        need_fnirs=reads_fnirs,
        need_video=reads_videos,
    )
    if problems:
        raise InputError(f"{root}: {len(problems)} problems: {_problem_summary([str(p) for p in problems])}")
    if table.empty:
        raise InputError(f"{root}: no samples in the model's layout under {', '.join(splits)}")
    return table


def index_biovid_tree(
    root: str | Path, *, biosignals: str, signals: list[str], workers: int | None = None
) -> pd.DataFrame:
    """The sample table of a BioVid-layout tree, every listed biosignal file checked for ``signals``.

    Refuses a tree without the biosignal folder the model was trained on, and any sample whose
    file lacks a column, is not sampled at BioVid's rate or is too short: the renderer would
    otherwise fail half-way, or the images would not be those the model learnt from. For a video
    signal (rgb, thermal, depth) every sample's video must exist; the video stages bring any frame
    rate to the model's.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset root not found")
    listing = read_samples_csv(root)
    if listing.empty:
        raise InputError(f"{root}: samples.csv lists no samples")
    folder = biosignal_dir(biosignals)
    reads_biosignals = any(signal not in VIDEO_MODALITIES for signal in signals)
    reads_videos = any(signal in VIDEO_MODALITIES for signal in signals)
    if reads_videos and not (root / VIDEO_DIR).is_dir():
        raise InputError(f"{root}: the model reads {', '.join(signals)} from {VIDEO_DIR}/, which this tree lacks")
    if reads_biosignals and not (root / folder).is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("biosignals_"))
        raise InputError(
            f"{root}: the model reads {', '.join(signals)} from {folder}/, which this tree lacks "
            f"(it has {present or 'no biosignal folder'})"
        )
    unsafe = unsafe_names([*listing["subject_name"], *listing["sample_name"]])
    if unsafe:
        raise InputError(f"{root}/samples.csv: unsafe names {describe_unsafe(unsafe)} ({SAFE_NAME_RULE})")
    duplicated = listing.loc[listing["sample_name"].duplicated(), "sample_name"].tolist()
    if duplicated:
        raise InputError(f"{root}/samples.csv: samples listed twice: {duplicated[:10]}")
    unknown = sorted({name for name in listing["class_name"] if name and name not in BIOVID_CLASSES})
    if unknown:
        raise InputError(f"{root}/samples.csv: unknown class_name {unknown}; BioVid classes are {list(BIOVID_CLASSES)}")
    rows = []
    for row in listing.itertuples():
        labelled = bool(row.class_name)
        rows.append(
            {
                "dataset": "predict",
                "sample": row.sample_name,
                "subject": row.subject_name,
                "subject_id": row.subject_id,
                "class_id": BIOVID_CLASSES.index(row.class_name) if labelled else 0,
                "class_name": row.class_name if labelled else UNLABELLED,
                "video": str(root / VIDEO_DIR / row.subject_name / f"{row.sample_name}{VIDEO_SUFFIX}"),
                "biosignals": str(root / folder / row.subject_name / f"{row.sample_name}{BIOSIGNAL_SUFFIX}"),
                "split": "",
            }
        )

    if reads_videos:
        missing = [f"{row['video']}: video missing" for row in rows if not Path(row["video"]).is_file()]
        if missing:
            raise InputError(f"{root}: {len(missing)} of {len(rows)} videos are missing: {_problem_summary(missing)}")

    def check(row: dict) -> list[str]:
        _, problems = biosignal_problems(row["biosignals"], expected_fs=BIOVID_FS, min_seconds=BIOVID_MIN_SECONDS)
        return [f"{row['biosignals']}: {problem}" for problem in problems]

    if reads_biosignals:
        problems = [problem for found in run_parallel(check, rows, workers=workers) for problem in found]
        if problems:
            raise InputError(f"{root}: {len(problems)} biosignal problems: {_problem_summary(problems)}")
    return sort_samples(pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS)))


def read_prediction_table(path: str | Path) -> pd.DataFrame:
    """A sample table whose ``class_id``/``class_name`` may be empty or absent (unlabelled samples)."""
    from painformer.data.tables import check_sample_table, read_table_text

    table = read_table_text(path)
    for column, fill in (("class_name", UNLABELLED), ("class_id", "0"), ("split", ""), ("video", "")):
        if column not in table.columns:
            table[column] = fill
    unlabelled = table["class_name"] == ""
    table.loc[unlabelled, "class_name"] = UNLABELLED
    table.loc[unlabelled, "class_id"] = "0"
    for column in ("dataset", "subject_id"):
        if column not in table.columns:
            table[column] = "predict" if column == "dataset" else "0"
    # The full checks of a sample table (names, duplicates, columns), now that labels are filled in.
    return check_sample_table(table, str(path))
