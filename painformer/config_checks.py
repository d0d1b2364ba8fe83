"""Cross-checks of the workflow configuration that the schema cannot express.

Each of these mistakes used to pass a dry run and fail hours later inside a job (an empty
task after indexing, a missing thermal training set, a report comparing an experiment that
does not exist). The workflow calls :func:`check_workflow_config` while it parses, so they
stop the run before any job starts, all listed in one error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from painformer.data.tasks import AI4PAIN_CLASSES, BIOVID_CLASSES, task_classes
from painformer.errors import InputError

FORMAT_CLASSES = {"biovid": BIOVID_CLASSES, "ai4pain": AI4PAIN_CLASSES}
THERMAL_PAIRS_DIR = "thermal_pairs"


def _class_problems(dataset: Mapping[str, Any], experiments: Mapping[str, Any]) -> list[str]:
    known = FORMAT_CLASSES[dataset["format"]]
    selected = dataset.get("classes")
    problems = []
    if selected:
        unknown = [name for name in selected if name not in known]
        if unknown:
            problems.append(
                f"dataset.classes: unknown classes {unknown} for a {dataset['format']} dataset; "
                f"its classes are {list(known)}"
            )
    available = set(selected) & set(known) if selected else set(known)
    for name in sorted(experiments):
        task = experiments[name]["task"]
        missing = [c for c in task_classes(task) if c not in available]
        if missing:
            where = "dataset.classes" if selected else f"a {dataset['format']} dataset"
            problems.append(f"experiments.{name}: task {task!r} needs the classes {missing}, which {where} leaves out")
    return problems


def _compare_problems(config: Mapping[str, Any], experiments: Mapping[str, Any]) -> list[str]:
    pairs = (config.get("report") or {}).get("compare") or []
    unknown = sorted({name for pair in pairs for name in pair if name not in experiments})
    if not unknown:
        return []
    return [f"report.compare: unknown experiments {unknown}; experiments are {sorted(experiments)}"]


def _thermal_problems(config: Mapping[str, Any], experiments: Mapping[str, Any]) -> list[str]:
    used = any(name.split("/")[0] == "thermal" for e in experiments.values() for name in e["inputs"])
    thermal = config.get("thermal") or {}
    dataset = config["dataset"]
    if not used or thermal.get("checkpoint") or thermal.get("pairs") or dataset.get("demo"):
        return []
    # A real dataset may still hold RGB/thermal pairs at the place the demo writes them.
    if os.path.isdir(os.path.join(dataset["root"], THERMAL_PAIRS_DIR)):
        return []
    users = sorted(name for name, e in experiments.items() if any(i.startswith("thermal/") for i in e["inputs"]))
    return [
        f"thermal: experiments {users} use thermal frames but thermal.checkpoint and thermal.pairs are null "
        f"and {os.path.join(dataset['root'], THERMAL_PAIRS_DIR)} does not exist: set thermal.checkpoint to an "
        "RGB->thermal generator, or thermal.pairs to a folder of rgb/ and thermal/ image pairs to train one on"
    ]


def check_workflow_config(config: Mapping[str, Any]) -> None:
    """Refuse, in one ``InputError`` listing every problem, a schema-valid config that cannot run."""
    experiments = config["experiments"]
    problems = (
        _class_problems(config["dataset"], experiments)
        + _compare_problems(config, experiments)
        + _thermal_problems(config, experiments)
    )
    if problems:
        raise InputError("config: " + "; ".join(problems))
