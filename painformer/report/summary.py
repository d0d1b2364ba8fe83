"""The summary over experiments: the paper's table form, paired tests, chance-level tests.

Two statistical questions are answered here, both from the experiments' JSON tables:

* Does experiment A differ from B?  A paired Wilcoxon signed-rank test over the subjects
  both were tested on, pairing each subject's accuracy in A with its accuracy in B. Pairing
  by subject removes the large between-subject spread that LOSO results show.
* Does an experiment carry any signal?  A one-sided binomial test of the pooled count of
  correct predictions against chance (1 / number of classes).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from painformer.errors import InputError
from painformer.report.experiment import METRIC_KEYS, TABLE_COLUMNS
from painformer.utils import atomic_path

REQUIRED_KEYS = ("experiment", "classes", "n_folds", "mean", "std", "pooled", "per_subject")
# The markdown table in the paper's column order (Tables V-IX: input, epochs, augmentation,
# regularisation, metrics), summary.tsv column -> header; rows are input x preset.
MARKDOWN_COLUMNS = {
    "inputs": "input",
    "preset": "preset",
    "fusion": "fusion",
    "task": "task",
    "epochs": "epochs",
    "basic": "aug. Basic",
    "masking": "aug. Masking",
    "ls": "reg. LS",
    "dropout": "reg. DropOut",
    "accuracy": "Acc",
    "recall": "Rec",
    "f1": "F1",
    "vs_best_single": "acc. vs best single input",
    "folds": "folds",
    "experiment": "experiment",
}
# Shown even when empty; any other column no experiment recorded is left out.
ALWAYS_SHOWN = ("inputs", "preset", "accuracy", "recall", "f1", "folds", "experiment")
# Below this p-value an experiment is called above chance / a comparison is called a difference.
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Comparison:
    """A paired Wilcoxon signed-rank test of per-subject accuracies, A minus B."""

    first: str
    second: str
    n: int
    mean_difference: float | None
    statistic: float | None
    p_value: float | None
    note: str


def read_experiment_summary(path: str | Path) -> dict:
    """An experiment JSON written by ``painformer report experiment``, checked for its keys."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing experiment table")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(summary, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing:
        raise InputError(f"{path}: missing keys {missing}; not written by 'painformer report experiment'?")
    for section in ("mean", "std", "pooled"):
        absent = [key for key in METRIC_KEYS if key not in summary[section]]
        if absent:
            raise InputError(f"{path}: '{section}' lacks {absent}")
    for key in ("n", "correct"):
        if key not in summary["pooled"]:
            raise InputError(f"{path}: 'pooled' lacks {key!r}")
    return summary


def _percent_pair(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    text = f"{100.0 * mean:.2f}"
    return text if std is None else f"{text} ± {100.0 * std:.2f}"


def _setting_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def chance_test(summary: dict) -> dict:
    """One-sided binomial test of pooled correct predictions against 1/#classes."""
    chance = 1.0 / len(summary["classes"])
    correct = int(summary["pooled"]["correct"])
    total = int(summary["pooled"]["n"])
    result = stats.binomtest(correct, total, p=chance, alternative="greater")
    return {"chance": chance, "correct": correct, "n": total, "p_value": float(result.pvalue)}


def summary_table(summaries: Sequence[dict]) -> pd.DataFrame:
    """One row per experiment, in input order, in the paper's table form plus the raw numbers."""
    rows = []
    for summary in summaries:
        test = chance_test(summary)
        row = {
            "experiment": summary["experiment"],
            "inputs": _setting_text(summary.get("inputs")),
            "preset": _setting_text(summary.get("preset")),
            "fusion": _setting_text(summary.get("fusion")),
            "task": _setting_text(summary.get("task")),
            "epochs": _setting_text(summary.get("epochs")),
            "basic": _setting_text(summary.get("basic_p")),
            "masking": " ".join(
                filter(None, (_setting_text(summary.get("masking_p")), _mask_text(summary.get("mask_range"))))
            ),
            "ls": _setting_text(summary.get("label_smoothing")),
            "dropout": _setting_text(summary.get("dropout")),
            "folds": str(summary["n_folds"]),
        }
        for key in METRIC_KEYS:
            row[TABLE_COLUMNS[key]] = _percent_pair(summary["mean"][key], summary["std"][key])
        for key in METRIC_KEYS:
            mean, std = summary["mean"][key], summary["std"][key]
            row[f"{TABLE_COLUMNS[key]}_mean"] = "" if mean is None else f"{100.0 * mean:.4f}"
            row[f"{TABLE_COLUMNS[key]}_std"] = "" if std is None else f"{100.0 * std:.4f}"
        row["vs_best_single"] = _versus_best_single(summary, summaries)
        row["pooled_accuracy"] = f"{100.0 * summary['pooled']['accuracy']:.4f}"
        row["chance"] = f"{100.0 * test['chance']:.2f}"
        row["binomial_p"] = f"{test['p_value']:.3g}"
        rows.append(row)
    return pd.DataFrame(rows)


def _inputs_of(summary: dict) -> list[str]:
    inputs = summary.get("inputs") or []
    return [inputs] if isinstance(inputs, str) else list(inputs)


def _versus_best_single(summary: dict, summaries: Sequence[dict]) -> str:
    """For a fusion of several inputs, as in Table IX: its mean accuracy minus that of the best
    single-input experiment (same task) on one of its inputs, in points, naming that experiment."""
    inputs = _inputs_of(summary)
    if len(inputs) < 2 or summary["mean"]["accuracy"] is None:
        return ""
    singles = [
        other
        for other in summaries
        if len(_inputs_of(other)) == 1
        and _inputs_of(other)[0] in inputs
        and other.get("task") == summary.get("task")
        and other["mean"]["accuracy"] is not None
    ]
    if not singles:
        return ""
    best = max(singles, key=lambda other: other["mean"]["accuracy"])
    difference = 100.0 * (summary["mean"]["accuracy"] - best["mean"]["accuracy"])
    return f"{difference:+.2f} ({best['experiment']})"


def _mask_text(mask_range) -> str:
    """The paper writes a mask range of 0.10-0.20 of the sequence as '10-20'."""
    if not isinstance(mask_range, (list, tuple)) or len(mask_range) != 2:
        return _setting_text(mask_range)
    low, high = (float(value) for value in mask_range)
    if high <= 1.0:
        low, high = 100.0 * low, 100.0 * high
    return f"{low:g}-{high:g}"


def compare_experiments(first: dict, second: dict) -> Comparison:
    """Wilcoxon signed-rank over the common subjects; reports why when the test cannot run."""
    names = (first["experiment"], second["experiment"])
    common = sorted(set(first["per_subject"]) & set(second["per_subject"]))
    if len(common) < 2:
        return Comparison(
            *names,
            n=len(common),
            mean_difference=None,
            statistic=None,
            p_value=None,
            note=f"not tested: {len(common)} common subject(s), the test needs at least 2",
        )
    accuracy_first = np.array([first["per_subject"][subject] for subject in common], dtype=float)
    accuracy_second = np.array([second["per_subject"][subject] for subject in common], dtype=float)
    differences = accuracy_first - accuracy_second
    mean_difference = float(differences.mean())
    if np.all(differences == 0):
        return Comparison(
            *names,
            n=len(common),
            mean_difference=mean_difference,
            statistic=None,
            p_value=None,
            note="not tested: every common subject has the same accuracy in both",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = stats.wilcoxon(accuracy_first, accuracy_second)
    note = "; ".join(sorted({str(item.message).split("\n")[0] for item in caught}))
    return Comparison(
        *names,
        n=len(common),
        mean_difference=mean_difference,
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        note=note,
    )


def parse_comparisons(pairs: Sequence[str], known: Sequence[str]) -> list[tuple[str, str]]:
    """``A:B`` strings to pairs; an unknown experiment name is an error listing the known ones."""
    parsed = []
    for pair in pairs:
        parts = pair.split(":")
        if len(parts) != 2 or not all(parts):
            raise InputError(f"--compare {pair!r}: expected EXPERIMENT_A:EXPERIMENT_B")
        for name in parts:
            if name not in known:
                raise InputError(f"--compare {pair!r}: unknown experiment {name!r}; known: {', '.join(known)}")
        parsed.append((parts[0], parts[1]))
    return parsed


def paper_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The summary rows grouped as in the paper: experiments on the same task and inputs (with the
    same fusion) together, groups in order of first appearance, each group in the given order."""
    keys = list(zip(table["task"], table["inputs"], table["fusion"]))
    first = {key: index for index, key in reversed(list(enumerate(keys)))}
    order = sorted(range(len(keys)), key=lambda index: (first[keys[index]], index))
    return table.iloc[order].reset_index(drop=True)


def _markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(value).replace("|", "\\|") for value in row) + " |")
    return "\n".join(lines)


def _format_p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _signal_paragraph(summaries: Sequence[dict]) -> str:
    sentences = []
    for summary in summaries:
        test = chance_test(summary)
        verdict = "above chance" if test["p_value"] < SIGNIFICANCE else "not distinguishable from chance"
        sentences.append(
            f"- **{summary['experiment']}** ({_setting_text(summary.get('inputs')) or 'inputs not recorded'}): "
            f"{verdict}: {test['correct']}/{test['n']} correct ({100 * test['correct'] / test['n']:.2f}%) "
            f"against chance {100 * test['chance']:.2f}%, one-sided binomial p = {_format_p(test['p_value'])}."
        )
    return "\n".join(sentences)


def comparison_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    columns = ["first", "second", "n_subjects", "mean_difference", "statistic", "p_value", "note"]
    rows = [
        {
            "first": item.first,
            "second": item.second,
            "n_subjects": str(item.n),
            "mean_difference": "" if item.mean_difference is None else f"{100.0 * item.mean_difference:.2f}",
            "statistic": "" if item.statistic is None else f"{item.statistic:g}",
            "p_value": _format_p(item.p_value),
            "note": item.note,
        }
        for item in comparisons
    ]
    return pd.DataFrame(rows, columns=columns)


def compare_path(out: str | Path) -> Path:
    """The comparisons' TSV lies beside the summary TSV: summary.tsv -> summary_compare.tsv."""
    out = Path(out)
    return out.with_name(f"{out.stem}_compare.tsv")


def write_summary(
    *,
    experiment_files: Sequence[str | Path],
    out: str | Path,
    markdown: str | Path,
    plots_dir: str | Path,
    compare: Sequence[str] = (),
    provenance: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[Comparison]]:
    """Write the summary TSV, the comparisons TSV, the markdown and PLOTS/summary.png.

    ``provenance`` lines (where the backbone, depth and thermal models came from) open the
    markdown, so a reader sees whether the numbers below can mean anything before reading them.
    """
    from painformer.report.plots import plot_summary

    if not experiment_files:
        raise InputError("no experiment tables given (--experiments)")
    summaries = [read_experiment_summary(path) for path in experiment_files]
    names = [summary["experiment"] for summary in summaries]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise InputError(
                f"{experiment_files[index]}: experiment {name!r} is also in {experiment_files[names.index(name)]}"
            )
    pairs = parse_comparisons(compare, names)
    by_name = dict(zip(names, summaries))
    comparisons = [compare_experiments(by_name[first], by_name[second]) for first, second in pairs]

    table = summary_table(summaries)
    with atomic_path(out) as path:
        table.to_csv(path, sep="\t", index=False)
    compared = comparison_table(comparisons)
    with atomic_path(compare_path(out)) as path:
        compared.to_csv(path, sep="\t", index=False)

    plot_path = Path(plots_dir) / "summary.png"
    means = np.array(
        [[np.nan if s["mean"][k] is None else 100.0 * s["mean"][k] for k in METRIC_KEYS] for s in summaries]
    )
    stds = np.array([[np.nan if s["std"][k] is None else 100.0 * s["std"][k] for k in METRIC_KEYS] for s in summaries])
    plot_summary(
        names=names, means=means, stds=stds, chances=[1.0 / len(s["classes"]) for s in summaries], out=plot_path
    )

    markdown = Path(markdown)
    # Settings no experiment recorded would only add empty columns to the table.
    rows = paper_rows(table)
    visible = rows.loc[:, [c for c in MARKDOWN_COLUMNS if c in ALWAYS_SHOWN or rows[c].astype(bool).any()]]
    relative_plot = Path(os.path.relpath(plot_path.resolve(), markdown.parent.resolve())).as_posix()
    parts = ["# Results summary", ""]
    notes = [line.strip() for line in provenance if line.strip()]
    if notes:
        parts += ["## Provenance", "", *(f"- {line}" for line in notes), "", "## Results", ""]
    parts += [
        (
            "Rows: input x preset, as in the paper's tables. Acc, Rec and F1: accuracy, macro recall and "
            "macro F1 in percent, mean ± sample std over folds (leave-one-subject-out: one fold per subject, "
            "so the mean is over subjects). Augmentation: the probability of Basic and of Masking, the "
            "latter followed by the masked share of the vector in percent; regularisation: the label "
            "smoothing (LS) and the DropOut probability."
        ),
        "",
        _markdown_table(visible.rename(columns=MARKDOWN_COLUMNS)),
        "",
        f"![Accuracy, recall and F1 per experiment]({relative_plot})",
        "",
        "## Which inputs carry signal",
        "",
        (
            "Pooled predictions of every fold tested against chance (1 / number of classes) with a "
            f"one-sided binomial test; p < {SIGNIFICANCE} is called above chance."
        ),
        "",
        _signal_paragraph(summaries),
        "",
    ]
    if comparisons:
        parts += [
            "## Paired comparisons",
            "",
            (
                "Wilcoxon signed-rank test over the subjects both experiments were tested on, pairing each "
                "subject's accuracy; mean difference = first minus second, in percentage points."
            ),
            "",
            _markdown_table(compared),
            "",
        ]
    with atomic_path(markdown) as path:
        path.write_text("\n".join(parts), encoding="utf-8")
    return table, comparisons
