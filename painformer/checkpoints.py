"""Saving, reading and resuming training runs, the same way for every trainer.

- :func:`load_checkpoint` reads a file written by ``torch.save`` with
  ``weights_only=True`` (tensors and plain data only: a checkpoint cannot run
  code) and turns every failure into one line naming the file: missing, empty,
  truncated or corrupt, or holding objects other than tensors and plain data.
- :func:`save_checkpoint` writes atomically: a crash never leaves a truncated
  file that a later run could take for a resume point.
- :func:`refuse_mismatch` compares the settings a run state was saved with
  against the current ones and refuses, naming every differing key.
- :class:`EpochLog` is the per-epoch TSV log (one row per finished epoch,
  rewritten atomically after each).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from painformer.errors import CheckpointError, InputError
from painformer.utils import atomic_path


def load_checkpoint(path: str | os.PathLike, *, what: str = "checkpoint") -> Any:
    """The content of a ``torch.save`` file, read without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the {what} file is empty (0 bytes); an interrupted copy or save?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise CheckpointError(f"{path}: {_load_failure(error)}") from error


def _load_failure(error: Exception) -> str:
    """The reason a weights-only load failed, without PyTorch's advice to unpickle unsafely."""
    message = str(error)
    blocked = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if blocked:
        return (
            f"holds a Python object of type {blocked.group(1)}; only tensors and plain data are read "
            "from checkpoints (unpickling other objects can run code)"
        )
    detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", message)
    if detail:
        reason = detail.group(1).strip()
    elif message and "weights_only" not in message:
        reason = message.splitlines()[0].strip()
    else:
        reason = type(error).__name__
    return f"not a readable PyTorch checkpoint: truncated, corrupt or another format ({reason})"


def save_checkpoint(content: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(content, tmp)


def differing_keys(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings, with both values."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        problems = []
        for key in sorted(set(saved) | set(current), key=str):
            name = f"{prefix}{key}"
            if key not in saved:
                problems.append(f"{name} (not in the saved run)")
            elif key not in current:
                problems.append(f"{name} (only in the saved run)")
            else:
                problems += differing_keys(saved[key], current[key], f"{name}.")
        return problems
    if _plain(saved) != _plain(current):
        return [f"{prefix.rstrip('.')} (saved {saved!r}, now {current!r})"]
    return []


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal: a state round-trips tuples as whichever it was given."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def refuse_mismatch(path: str | os.PathLike, saved: Mapping[str, Any], current: Mapping[str, Any], advice: str) -> None:
    """Raise :class:`InputError` naming every key whose saved value differs from the current one."""
    problems = differing_keys(saved, current)
    if problems:
        raise InputError(f"{path}: the saved run was made differently: {'; '.join(problems)}; {advice}")


def check_format(content: Any, path: str | os.PathLike, expected: str, what: str) -> Mapping[str, Any]:
    """``content`` when it is a mapping whose ``format`` is ``expected``; else a clear refusal."""
    found = content.get("format") if isinstance(content, Mapping) else type(content).__name__
    if found != expected:
        raise CheckpointError(f"{path}: not a {what} (format {found!r}, expected {expected!r})")
    return content


class EpochLog:
    """A per-epoch TSV log: header, then one row per finished epoch, rewritten atomically.

    Values are written as given when they are strings, as integers when they are
    integers, else with the column's format (``.6f`` unless ``formats`` says otherwise).
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], formats: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.columns = list(columns)
        self.formats = dict(formats or {})
        self.rows: list[list[str]] = []

    def _format(self, column: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) or column == "epoch":
            return str(int(value))
        return format(value, self.formats.get(column, ".6f"))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows without writing (a resumed run's earlier epochs)."""
        self.rows += [[self._format(c, row[c]) for c in self.columns] for row in rows]

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one epoch's row and rewrite the file."""
        self.extend([row])
        self.write()

    def restore(self, last_epoch: int) -> None:
        """Take the rows of epochs up to ``last_epoch`` from the file on disk (if any)."""
        if self.path.exists():
            self.rows = [
                [r[c] for c in self.columns] for r in read_epoch_log(self.path) if int(r["epoch"]) <= last_epoch
            ]

    def write(self) -> None:
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as handle:
                writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
                writer.writerow(self.columns)
                writer.writerows(self.rows)


def read_epoch_log(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of an epoch log as dictionaries keyed by column name."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
