"""Datasets: the sample table, tasks, loaders of BioVid Part A and AI4Pain, the demo dataset.

The loaders (pandas, decord) are imported on first use, so that importing the table reader
or the task list stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from painformer.data.tables import (
    SAMPLE_COLUMNS,
    read_sample_table,
    sort_samples,
    write_sample_table,
)
from painformer.data.tasks import AI4PAIN_CLASSES, BIOVID_CLASSES, TASKS, task_classes

_LAZY = {
    "Biosignals": "painformer.data.signals",
    "load_signal": "painformer.data.signals",
    "read_biosignals": "painformer.data.signals",
    "index_biovid": "painformer.data.biovid",
    "Ai4PainLayout": "painformer.data.ai4pain",
    "DEFAULT_LAYOUT": "painformer.data.ai4pain",
    "FnirsRecording": "painformer.data.ai4pain",
    "index_ai4pain": "painformer.data.ai4pain",
    "read_fnirs": "painformer.data.ai4pain",
    "Problem": "painformer.data.validation",
    "write_problem_report": "painformer.data.validation",
    "sanity_check": "painformer.data.sanity",
}

__all__ = [
    "AI4PAIN_CLASSES",
    "BIOVID_CLASSES",
    "DEFAULT_LAYOUT",
    "SAMPLE_COLUMNS",
    "TASKS",
    "Ai4PainLayout",
    "Biosignals",
    "FnirsRecording",
    "Problem",
    "index_ai4pain",
    "index_biovid",
    "load_signal",
    "read_biosignals",
    "read_fnirs",
    "read_sample_table",
    "sanity_check",
    "sort_samples",
    "task_classes",
    "write_problem_report",
    "write_sample_table",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
