"""Checks shared by the dataset indexers: problem records, video decoding, parallel file checks.

An indexer never stops at the first bad file: on a dataset of thousands of samples the user
needs every problem in one report, so each check returns a list of problems instead of raising.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from painformer.utils import atomic_path

REPORT_COLUMNS = ("sample", "file", "problem")

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the sample it spoils ("" when none), the file, what is wrong."""

    sample: str
    file: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.sample}: " if self.sample else ""
        return f"{where}{self.file}: {self.problem}"


def escapes_root(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path``, taken as written, leaves the folder ``root`` (``root/../x``).

    Judged on the path's text, not on resolved links: a dataset whose folders link to
    another disk is legitimate, a sample named ``../../x`` is not.
    """
    base = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([base, target]) != base


def video_problems(path: str | Path, *, decode_first_frame: bool = False, decoder: str = "auto") -> list[str]:
    """Open a video with the frame decoder every later stage uses and list what stops it.

    Opening parses the container and the frame index, which catches empty, truncated and
    non-video files (~12 ms for a BioVid-sized video). ``decode_first_frame`` also decodes
    frame 0, catching a broken stream behind a valid index, at ~4x the cost (measured in
    docs/datasets.md), so it is opt-in. ``decoder``: ``auto``, ``decord`` or ``pyav``
    (``painformer.video.decoders``).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ["file not found"]
    if size == 0:
        return ["empty file"]
    from painformer.video.decoders import VideoError, open_video

    try:
        reader = open_video(path, decoder, threads=1)
    except VideoError as error:
        return [error.problem]
    try:
        if decode_first_frame:
            reader.frames([0])
    except VideoError as error:
        return [error.problem]
    except Exception as error:  # noqa: BLE001 - a decoder's own error types; reported, not raised
        return [f"video does not decode ({str(error).strip().splitlines()[0][:200] if str(error).strip() else error})"]
    finally:
        reader.close()
    return []


def default_workers() -> int:
    """Threads for file checks: the video decoders and pandas' parser spend their time outside the GIL."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(16, 2 * available))


def run_parallel(
    function: Callable[[Item], Result], items: Sequence[Item], *, workers: int | None = None
) -> list[Result]:
    """``[function(item) for item in items]`` on a thread pool, results in input order."""
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1 or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    return pd.DataFrame([(p.sample, p.file, p.problem) for p in problems], columns=list(REPORT_COLUMNS))


def write_problem_report(problems: Iterable[Problem], path: str | Path) -> Path:
    """Write the problems as a TSV with columns ``sample file problem`` (header only when none)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        problems_frame(problems).to_csv(temporary, sep="\t", index=False)
    return path


def summarize_problems(problems: Sequence[Problem], *, limit: int = 20) -> str:
    """A count and the first ``limit`` problems, one per line, for an error message."""
    lines = [f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found:"]
    lines += [f"  {problem}" for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)
