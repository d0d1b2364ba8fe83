"""Classification tasks: which classes of a dataset a task compares, in label order."""

from __future__ import annotations

from painformer.errors import InputError

BIOVID_CLASSES = ("BL1", "PA1", "PA2", "PA3", "PA4")
AI4PAIN_CLASSES = ("No", "Low", "High")

TASKS: dict[str, tuple[str, ...]] = {
    # The paper's task: no pain (baseline) against the highest pain level.
    **{f"NP_vs_P{level}": ("BL1", f"PA{level}") for level in range(1, 5)},
    "multiclass_5": BIOVID_CLASSES,
    "ai4pain_3class": AI4PAIN_CLASSES,
}


def task_classes(task: str) -> tuple[str, ...]:
    """The classes of ``task``; label i of a model is ``task_classes(task)[i]``."""
    try:
        return TASKS[task]
    except KeyError:
        raise InputError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None
