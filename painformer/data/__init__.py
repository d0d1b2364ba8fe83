"""Datasets: the sample table, tasks, loaders of BioVid Part A and AI4Pain, the demo dataset."""

from painformer.data.tables import SAMPLE_COLUMNS, read_sample_table, sort_samples, write_sample_table
from painformer.data.tasks import AI4PAIN_CLASSES, BIOVID_CLASSES, TASKS, task_classes

__all__ = [
    "AI4PAIN_CLASSES",
    "BIOVID_CLASSES",
    "SAMPLE_COLUMNS",
    "TASKS",
    "read_sample_table",
    "sort_samples",
    "task_classes",
    "write_sample_table",
]
