"""Stage 4: metric tables per experiment, the summary over experiments, and their plots."""

from painformer.report.experiment import (
    experiment_table,
    mean_history,
    summarize_experiment,
    write_experiment_report,
)
from painformer.report.folds import FoldResult, read_fold, read_folds
from painformer.report.metrics import compute_metrics, mean_and_std
from painformer.report.summary import (
    Comparison,
    chance_test,
    compare_experiments,
    read_experiment_summary,
    summary_table,
    write_summary,
)

__all__ = [
    "Comparison",
    "FoldResult",
    "chance_test",
    "compare_experiments",
    "compute_metrics",
    "experiment_table",
    "mean_and_std",
    "mean_history",
    "read_experiment_summary",
    "read_fold",
    "read_folds",
    "summarize_experiment",
    "summary_table",
    "write_experiment_report",
    "write_summary",
]
