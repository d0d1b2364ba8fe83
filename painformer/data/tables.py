"""The sample table: one row per sample, the hand-over between indexing and every later stage.

Written by ``painformer index`` (or given by the user), read by every rule. Tab-separated,
columns ``SAMPLE_COLUMNS``; rows sorted by subject then sample so that stores built from the
same table list samples in the same order.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from painformer.errors import InputError
from painformer.names import SAFE_NAME_RULE, describe_unsafe, unsafe_names
from painformer.utils import atomic_path

SAMPLE_COLUMNS = (
    "dataset",
    "sample",
    "subject",
    "subject_id",
    "class_id",
    "class_name",
    "video",
    "biosignals",
    "split",
)
_TEXT_COLUMNS = ("dataset", "sample", "subject", "subject_id", "class_name", "video", "biosignals", "split")


def check_sample_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The columns, types, names and class ids of a sample table checked; errors name ``source``."""
    missing = [column for column in SAMPLE_COLUMNS if column not in table.columns]
    if missing:
        raise InputError(f"{source}: the sample table lacks the columns {missing} (expected {list(SAMPLE_COLUMNS)})")
    table = table.copy()
    for column in _TEXT_COLUMNS:
        table[column] = table[column].fillna("").astype(str)
    class_id = pd.to_numeric(table["class_id"], errors="coerce")
    bad = table.loc[class_id.isna() | (class_id < 0) | (class_id != class_id.round()), "sample"].tolist()
    if bad:
        raise InputError(f"{source}: class_id is not a non-negative integer for samples {bad[:10]}")
    table["class_id"] = class_id.astype(int)
    for column in ("sample", "subject", "class_name"):
        empty = table.index[table[column] == ""].tolist()
        if empty:
            raise InputError(f"{source}: empty {column!r} in rows {[i + 1 for i in empty[:10]]}")
    # Names become paths and reach shell commands: refused here, so that every route to the
    # workflow (an indexer, a sample table of the user's own) is checked the same way.
    unsafe = {column: unsafe_names(table[column]) for column in ("subject", "sample")}
    if any(unsafe.values()):
        listed = "; ".join(f"{column}s {describe_unsafe(names)}" for column, names in unsafe.items() if names)
        raise InputError(f"{source}: unsafe names ({SAFE_NAME_RULE} are allowed): {listed}")
    duplicated = table.loc[table["sample"].duplicated(), "sample"].tolist()
    if duplicated:
        raise InputError(f"{source}: samples listed twice: {duplicated[:10]}")
    inconsistent = table.groupby("class_name")["class_id"].nunique()
    inconsistent = inconsistent[inconsistent > 1].index.tolist()
    if inconsistent:
        raise InputError(f"{source}: classes {inconsistent} have more than one class_id")
    extra = [column for column in table.columns if column not in SAMPLE_COLUMNS]
    return table[list(SAMPLE_COLUMNS) + extra]


def sort_samples(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the canonical order: subject, then sample name."""
    return table.sort_values(["subject", "sample"], kind="stable").reset_index(drop=True)


def read_table_text(path: str | Path) -> pd.DataFrame:
    """A tab-separated sample table as text columns, unchecked; a missing or unreadable file is an input error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: sample table not found")
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a tab-separated sample table ({error})") from error


def read_sample_table(path: str | Path) -> pd.DataFrame:
    """Read and check a sample table; errors name the file and the problem."""
    return check_sample_table(read_table_text(path), str(path))


def write_sample_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Check, sort and write a sample table atomically (a reader never sees half a file)."""
    path = Path(path)
    table = sort_samples(check_sample_table(table, str(path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        table.to_csv(temporary, sep="\t", index=False)
    return path
