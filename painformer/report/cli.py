"""Commands: ``painformer report experiment`` and ``painformer report summary``."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    report = subparsers.add_parser(
        "report",
        help="metric tables, plots and the summary over experiments",
        description="Tables and plots from the fold folders that training writes.",
    )
    commands = report.add_subparsers(dest="report_command", metavar="REPORT_COMMAND", required=True)

    experiment = commands.add_parser(
        "experiment",
        help="one experiment's table (per fold, mean, std, pooled) and plots",
        description="Read every fold folder (metrics.json, predictions.tsv, history.tsv, config.json) of one "
        "experiment; write TABLES/NAME.tsv and NAME.json and PLOTS/NAME_confusion.png, NAME_subjects.png, "
        "NAME_curves.png.",
    )
    experiment.add_argument("--experiment", required=True, help="experiment name (file stem of the outputs)")
    experiment.add_argument("--folds", required=True, nargs="+", help="fold folders written by 'painformer train'")
    experiment.add_argument("--out-dir", required=True, help="folder for NAME.tsv and NAME.json")
    experiment.add_argument("--plots-dir", required=True, help="folder for the PNG plots")
    experiment.add_argument(
        "--probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="summarise each fold's linear probe (probe.json, probe_predictions.tsv) too (default: yes)",
    )
    experiment.set_defaults(func=run_experiment)

    summary = commands.add_parser(
        "summary",
        help="all experiments in the paper's table form, intervals, paired tests, chance-level tests",
        description="One row per experiment (every metric as mean ± std percentages, bootstrap intervals, "
        "the linear probe), a markdown report with a bar plot, and for each --compare A:B a paired Wilcoxon "
        "signed-rank test over subjects with effect sizes and Holm-corrected p-values, written to the "
        "markdown and to <out stem>_compare.tsv beside --out.",
    )
    summary.add_argument("--experiments", required=True, nargs="+", help="experiment JSON tables, in table order")
    summary.add_argument("--out", required=True, help="summary TSV")
    summary.add_argument("--markdown", required=True, help="summary markdown")
    summary.add_argument("--plots-dir", required=True, help="folder for summary.png")
    summary.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="A:B",
        help="paired Wilcoxon test of experiment A against B over common subjects (repeatable)",
    )
    summary.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TEXT",
        help="a line of the markdown's Provenance section, placed first (repeatable): where the backbone, "
        "depth and thermal models came from",
    )
    summary.add_argument(
        "--probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the linear probe beside the Mixer (default: yes)",
    )
    summary.set_defaults(func=run_summary)


def run_experiment(args: argparse.Namespace) -> int:
    from painformer.report.experiment import write_experiment_report

    summary = write_experiment_report(
        experiment=args.experiment,
        fold_dirs=args.folds,
        out_dir=args.out_dir,
        plots_dir=args.plots_dir,
        probe=args.probe,
    )
    mean, std = summary["mean"], summary["std"]

    def show(key: str) -> str:
        if mean[key] is None:
            return "n/a"
        value = f"{100 * mean[key]:.2f}"
        return value if std[key] is None else f"{value} ± {100 * std[key]:.2f}"

    accuracy, recall, f1 = summary["headline"]
    probe = summary.get("probe")
    print(
        f"{args.experiment}: {summary['n_folds']} folds, accuracy {show(accuracy)}, "
        f"{recall} {show(recall)}, {f1} {show(f1)} "
        f"(pooled accuracy {100 * summary['pooled']['accuracy']:.2f} over {summary['pooled']['n']} samples)"
        + (f"; probe accuracy {100 * probe['mean']['accuracy']:.2f}" if probe else "")
    )
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from painformer.report.summary import compare_path, write_summary

    table, comparisons = write_summary(
        experiment_files=args.experiments,
        out=args.out,
        markdown=args.markdown,
        plots_dir=args.plots_dir,
        compare=args.compare,
        provenance=args.note,
        probe=args.probe,
    )
    print(
        f"{len(table)} experiments -> {args.out}, {args.markdown}; {len(comparisons)} comparisons -> {compare_path(args.out)}"
    )
    return 0
