"""The summary over experiments: the paper's table form, intervals, paired tests, chance-level tests.

The statistical questions answered here, all from the experiments' JSON tables:

* How sure is a figure?  A 95 % bootstrap interval over subjects (written by ``report
  experiment``) for accuracy and the paper's Rec and F1.
* Does experiment A differ from B?  A paired Wilcoxon signed-rank test over the subjects
  both were tested on, pairing each subject's accuracy in A with its accuracy in B, with the
  mean difference and the matched-pairs rank-biserial correlation as effect sizes and Holm's
  correction over all comparisons of the summary. Pairing by subject removes the large
  between-subject spread that LOSO results show.
* Does an experiment (or its linear probe) carry any signal?  A one-sided binomial test of the
  pooled count of correct predictions against chance (1 / number of classes).
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
from painformer.report.inference import holm, rank_biserial
from painformer.report.metrics import METRIC_KEYS, headline_keys
from painformer.utils import atomic_path

REQUIRED_KEYS = ("experiment", "classes", "n_folds", "mean", "std", "pooled", "per_subject")
# Keys every experiment table has had; the others are read as n/a when an older table lacks them.
REQUIRED_METRICS = ("accuracy", "recall_macro", "f1_macro")
# The markdown table in the paper's column order (Tables V-IX: input, epochs, augmentation,
# regularisation, metrics), row field -> header; rows are input x preset.
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
    "acc": "Acc",
    "rec": "Rec",
    "f1_paper": "F1",
    "probe": "probe Acc / Rec / F1",
    "folds": "folds",
    "experiment": "experiment",
}
# Shown even when empty; any other column no experiment recorded is left out.
ALWAYS_SHOWN = ("inputs", "preset", "acc", "rec", "f1_paper", "folds", "experiment")
# The paper's three figures, by position in headline_keys: Acc, Rec, F1.
PAPER_NAMES = ("accuracy", "recall", "f1")
# Below this p-value an experiment is called above chance / a comparison is called a difference.
SIGNIFICANCE = 0.05
NOT_AVAILABLE = "n/a"


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
    rank_biserial: float | None = None
    p_holm: float | None = None


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
        if not isinstance(summary[section], dict):
            raise InputError(f"{path}: '{section}' is not a mapping")
        absent = [key for key in REQUIRED_METRICS if key not in summary[section]]
        if absent:
            raise InputError(f"{path}: '{section}' lacks {absent}")
        for key in METRIC_KEYS:
            summary[section].setdefault(key, None)
    for key in ("n", "correct"):
        if key not in summary["pooled"]:
            raise InputError(f"{path}: 'pooled' lacks {key!r}")
    if not isinstance(summary["classes"], list) or len(summary["classes"]) < 2:
        raise InputError(f"{path}: 'classes' must list at least two classes")
    summary.setdefault("ci", {})
    return summary


def _percent_pair(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    text = f"{100.0 * mean:.2f}"
    return text if std is None else f"{text} ± {100.0 * std:.2f}"


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{100.0 * value:.{digits}f}"


def _setting_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def paper_keys(summary: dict) -> tuple[str, str, str]:
    """The keys behind the paper's Acc, Rec and F1 for this experiment's task."""
    return headline_keys(summary["classes"])


def chance_test(summary: dict) -> dict:
    """One-sided binomial test of pooled correct predictions against 1/#classes."""
    chance = 1.0 / len(summary["classes"])
    correct = int(summary["pooled"]["correct"])
    total = int(summary["pooled"]["n"])
    result = stats.binomtest(correct, total, p=chance, alternative="greater")
    return {"chance": chance, "correct": correct, "n": total, "p_value": float(result.pvalue)}


def _probe_of(summary: dict) -> dict | None:
    probe = summary.get("probe")
    return probe if isinstance(probe, dict) and isinstance(probe.get("pooled"), dict) else None


def _probe_missing(summary: dict) -> str:
    """Why an experiment has no probe figures: the note report experiment wrote, or an older table."""
    if "probe" not in summary:
        return "the experiment table holds no probe section (made with --no-probe or by an older version)"
    return summary.get("probe_note") or "no probe figures"


def _interval(summary: dict, key: str) -> dict:
    value = summary.get("ci", {}).get(key)
    return value if isinstance(value, dict) else {"low": None, "high": None, "note": "n/a: no interval recorded"}


def summary_table(summaries: Sequence[dict], *, probe: bool = True) -> pd.DataFrame:
    """One row per experiment, in input order: settings, every metric as mean ± std and unformatted,
    bootstrap intervals, the difference to the best single input (Table IX), the probe, chance tests."""
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
            "subjects": str(len(summary["per_subject"])),
        }
        for key in METRIC_KEYS:
            row[key] = _percent_pair(summary["mean"][key], summary["std"][key])
        for key in METRIC_KEYS:
            row[f"{key}_mean"] = _number(summary["mean"][key])
            row[f"{key}_std"] = _number(summary["std"][key])
        for key in ("accuracy", "sensitivity", "f1", "recall_macro", "f1_macro"):
            interval = _interval(summary, key) if key in paper_keys(summary) else {"low": None, "high": None}
            row[f"{key}_ci_low"] = _number(interval["low"])
            row[f"{key}_ci_high"] = _number(interval["high"])
        best, differences = _versus_best_single(summary, summaries)
        row["vs_best_single"] = best
        for name, difference in zip(PAPER_NAMES, differences):
            row[f"vs_best_single_{name}"] = "" if difference is None else f"{difference:+.2f}"
        row["pooled_accuracy"] = f"{100.0 * summary['pooled']['accuracy']:.4f}"
        row["chance"] = f"{100.0 * test['chance']:.2f}"
        row["binomial_p"] = f"{test['p_value']:.3g}"
        if probe:
            row.update(_probe_cells(summary))
        rows.append(row)
    return pd.DataFrame(rows)


PROBE_COLUMNS = (
    "probe_accuracy",
    "probe_sensitivity",
    "probe_f1",
    "probe_recall_macro",
    "probe_f1_macro",
    "probe_pooled_accuracy",
    "probe_binomial_p",
    "probe_note",
)


def _probe_cells(summary: dict) -> dict:
    probe = _probe_of(summary)
    if probe is None:
        return {**dict.fromkeys(PROBE_COLUMNS[:-1], NOT_AVAILABLE), "probe_note": _probe_missing(summary)}
    cells = {
        f"probe_{key}": _percent_pair(probe["mean"].get(key), probe["std"].get(key))
        for key in ("accuracy", "sensitivity", "f1", "recall_macro", "f1_macro")
    }
    test = chance_test({"classes": summary["classes"], "pooled": probe["pooled"]})
    cells["probe_pooled_accuracy"] = f"{100.0 * probe['pooled']['accuracy']:.4f}"
    cells["probe_binomial_p"] = f"{test['p_value']:.3g}"
    cells["probe_note"] = ""
    return cells


def _inputs_of(summary: dict) -> list[str]:
    inputs = summary.get("inputs") or []
    return [inputs] if isinstance(inputs, str) else list(inputs)


def _versus_best_single(summary: dict, summaries: Sequence[dict]) -> tuple[str, list[float | None]]:
    """For a fusion of several inputs, as in Table IX: its mean Acc, Rec and F1 minus those of the best
    single-input experiment (highest mean accuracy, same task) on one of its inputs, in points."""
    inputs = _inputs_of(summary)
    if len(inputs) < 2 or summary["mean"]["accuracy"] is None:
        return "", [None, None, None]
    singles = [
        other
        for other in summaries
        if len(_inputs_of(other)) == 1
        and _inputs_of(other)[0] in inputs
        and other.get("task") == summary.get("task")
        and other["mean"]["accuracy"] is not None
    ]
    if not singles:
        return "", [None, None, None]
    best = max(singles, key=lambda other: other["mean"]["accuracy"])
    differences = []
    for key in paper_keys(summary):
        mine, theirs = summary["mean"][key], best["mean"][key]
        differences.append(None if mine is None or theirs is None else 100.0 * (mine - theirs))
    return best["experiment"], differences


def _mask_text(mask_range) -> str:
    """The paper writes a mask range of 0.10-0.20 of the sequence as '10-20'."""
    if not isinstance(mask_range, (list, tuple)) or len(mask_range) != 2:
        return _setting_text(mask_range)
    low, high = (float(value) for value in mask_range)
    if high <= 1.0:
        low, high = 100.0 * low, 100.0 * high
    return f"{low:g}-{high:g}"


def compare_experiments(first: dict, second: dict) -> Comparison:
    """Wilcoxon signed-rank over the common subjects with its effect sizes; says why when it cannot run.

    ``p_holm`` is left for :func:`holm_comparisons`, which needs every comparison of the summary.
    """
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
        rank_biserial=rank_biserial(accuracy_first, accuracy_second),
    )


def holm_comparisons(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons with Holm-adjusted p-values over all of them that were tested."""
    from dataclasses import replace

    adjusted = holm([item.p_value for item in comparisons])
    return [replace(item, p_holm=value) for item, value in zip(comparisons, adjusted)]


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


def _verdict(test: dict) -> str:
    above = test["p_value"] < SIGNIFICANCE
    return (
        f"{'above chance' if above else 'not distinguishable from chance'}: {test['correct']}/{test['n']} correct "
        f"({100 * test['correct'] / test['n']:.2f}%), binomial p = {_format_p(test['p_value'])}"
    )


def _signal_paragraph(summaries: Sequence[dict], *, probe: bool) -> str:
    sentences = []
    for summary in summaries:
        test = chance_test(summary)
        sentence = (
            f"- **{summary['experiment']}** ({_setting_text(summary.get('inputs')) or 'inputs not recorded'}), "
            f"chance {100 * test['chance']:.2f}%: Mixer {_verdict(test)}"
        )
        if probe:
            probe_block = _probe_of(summary)
            if probe_block is None:
                sentence += f"; probe {NOT_AVAILABLE} ({_probe_missing(summary)})"
            else:
                sentence += f"; linear probe {_verdict(chance_test({'classes': summary['classes'], 'pooled': probe_block['pooled']}))}"
        sentences.append(sentence + ".")
    return "\n".join(sentences)


def comparison_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    columns = [
        "first",
        "second",
        "n_subjects",
        "mean_difference",
        "rank_biserial",
        "statistic",
        "p_value",
        "p_holm",
        "note",
    ]
    rows = [
        {
            "first": item.first,
            "second": item.second,
            "n_subjects": str(item.n),
            "mean_difference": "" if item.mean_difference is None else f"{100.0 * item.mean_difference:.2f}",
            "rank_biserial": "" if item.rank_biserial is None else f"{item.rank_biserial:.3f}",
            "statistic": "" if item.statistic is None else f"{item.statistic:g}",
            "p_value": _format_p(item.p_value),
            "p_holm": _format_p(item.p_holm),
            "note": item.note,
        }
        for item in comparisons
    ]
    return pd.DataFrame(rows, columns=columns)


def compare_path(out: str | Path) -> Path:
    """The comparisons' TSV lies beside the summary TSV: summary.tsv -> summary_compare.tsv."""
    out = Path(out)
    return out.with_name(f"{out.stem}_compare.tsv")


def _paper_cells(row: pd.Series, summary: dict, *, probe: bool) -> dict:
    """The markdown's Acc, Rec, F1 (mean ± std) and probe cells of one experiment."""
    keys = paper_keys(summary)
    cells = {name: row[key] or NOT_AVAILABLE for name, key in zip(("acc", "rec", "f1_paper"), keys)}
    if probe:
        block = _probe_of(summary)
        cells["probe"] = (
            " / ".join(_number(block["mean"].get(key), 2) or NOT_AVAILABLE for key in keys) if block else NOT_AVAILABLE
        )
    return cells


def markdown_rows(table: pd.DataFrame, by_name: dict[str, dict], *, probe: bool) -> pd.DataFrame:
    """The paper-shaped rows: input x preset, each fusion followed by its Table IX +/- row."""
    rows = []
    for _, row in paper_rows(table).iterrows():
        summary = by_name[row["experiment"]]
        rows.append({**row.to_dict(), **_paper_cells(row, summary, probe=probe)})
        if row["vs_best_single"]:
            rows.append(
                {
                    **dict.fromkeys(row.index, ""),
                    "inputs": f"+/- vs {row['vs_best_single']}",
                    "fusion": row["fusion"],
                    "acc": row["vs_best_single_accuracy"],
                    "rec": row["vs_best_single_recall"],
                    "f1_paper": row["vs_best_single_f1"],
                    **({"probe": ""} if probe else {}),
                }
            )
    frame = pd.DataFrame(rows).fillna("")
    # Settings no experiment recorded would only add empty columns to the table.
    shown = [
        c for c in MARKDOWN_COLUMNS if c in frame and (c in ALWAYS_SHOWN or c == "probe" or frame[c].astype(bool).any())
    ]
    return frame.loc[:, shown].rename(columns=MARKDOWN_COLUMNS)


def _interval_text(summary: dict, key: str) -> str:
    interval = _interval(summary, key)
    if interval["low"] is None:
        count = interval.get("n_subjects")
        return NOT_AVAILABLE if count is None else f"{NOT_AVAILABLE} ({count} subject{'s' * (count != 1)})"
    return f"{100 * interval['low']:.2f}-{100 * interval['high']:.2f}"


def uncertainty_table(summaries: Sequence[dict], table: pd.DataFrame, *, probe: bool) -> pd.DataFrame:
    """Per experiment: 95 % intervals of Acc, Rec, F1, the other two-class metrics, and the probe's figures."""
    rows = []
    indexed = table.set_index("experiment")
    for summary in summaries:
        row = indexed.loc[summary["experiment"]]
        keys = paper_keys(summary)
        cells = {
            "experiment": summary["experiment"],
            "subjects": row["subjects"],
            "Acc 95% CI": _interval_text(summary, keys[0]),
            "Rec 95% CI": _interval_text(summary, keys[1]),
            "F1 95% CI": _interval_text(summary, keys[2]),
            "Spec": row["specificity"] or NOT_AVAILABLE,
            "Prec": row["precision"] or NOT_AVAILABLE,
            "AUC": row["auc"] or NOT_AVAILABLE,
        }
        if probe:
            block = _probe_of(summary)
            for name, key in zip(("probe Acc", "probe Rec", "probe F1"), keys):
                cells[name] = _percent_pair(block["mean"].get(key), block["std"].get(key)) if block else NOT_AVAILABLE
            cells["probe C"] = _probe_c(block)
        rows.append(cells)
    return pd.DataFrame(rows)


def _probe_c(block: dict | None) -> str:
    """The L2 strengths the inner splits chose, with how many folds chose each."""
    if block is None:
        return NOT_AVAILABLE
    chosen: dict[str, int] = {}
    for row in block.get("folds", []):
        for value in (row.get("C") or {}).values():
            chosen[f"{value:g}"] = chosen.get(f"{value:g}", 0) + 1
    return ", ".join(f"{value} ({count})" for value, count in sorted(chosen.items(), key=lambda item: float(item[0])))


def write_summary(
    *,
    experiment_files: Sequence[str | Path],
    out: str | Path,
    markdown: str | Path,
    plots_dir: str | Path,
    compare: Sequence[str] = (),
    provenance: Sequence[str] = (),
    probe: bool = True,
) -> tuple[pd.DataFrame, list[Comparison]]:
    """Write the summary TSV, the comparisons TSV, the markdown and PLOTS/summary.png.

    Everything is computed before the first file is written, so bad input stops the command
    with nothing half-written. ``provenance`` lines (where the backbone, depth and thermal
    models came from) open the markdown, so a reader sees whether the numbers below can mean
    anything before reading them. ``probe``: report the folds' linear probe beside the Mixer.
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
    comparisons = holm_comparisons([compare_experiments(by_name[first], by_name[second]) for first, second in pairs])

    table = summary_table(summaries, probe=probe)
    compared = comparison_table(comparisons)
    markdown = Path(markdown)
    plot_path = Path(plots_dir) / "summary.png"
    means, stds = (
        np.array(
            [
                [np.nan if s[section][key] is None else 100.0 * s[section][key] for key in paper_keys(s)]
                for s in summaries
            ]
        )
        for section in ("mean", "std")
    )
    relative_plot = Path(os.path.relpath(plot_path.resolve(), markdown.parent.resolve())).as_posix()
    text = _markdown_text(
        summaries=summaries,
        table=table,
        by_name=by_name,
        compared=compared,
        provenance=provenance,
        relative_plot=relative_plot,
        probe=probe,
    )

    with atomic_path(out) as path:
        table.to_csv(path, sep="\t", index=False)
    with atomic_path(compare_path(out)) as path:
        compared.to_csv(path, sep="\t", index=False)
    plot_summary(
        names=names, means=means, stds=stds, chances=[1.0 / len(s["classes"]) for s in summaries], out=plot_path
    )
    with atomic_path(markdown) as path:
        path.write_text(text, encoding="utf-8")
    return table, comparisons


def _markdown_text(
    *,
    summaries: Sequence[dict],
    table: pd.DataFrame,
    by_name: dict[str, dict],
    compared: pd.DataFrame,
    provenance: Sequence[str],
    relative_plot: str,
    probe: bool,
) -> str:
    parts = ["# Results summary", ""]
    notes = [line.strip() for line in provenance if line.strip()]
    if notes:
        parts += ["## Provenance", "", *(f"- {line}" for line in notes), "", "## Results", ""]
    parts += [
        (
            "Rows: input x preset, as in the paper's tables. Acc, Rec, F1 in percent, mean ± sample std over "
            "folds (leave-one-subject-out: one fold per subject, so the mean is over subjects). Under a fusion, the +/- row gives its Acc, Rec and F1 minus "
            "those of the best single input (highest Acc), in points, as in Table IX. Augmentation: the "
            "probability of Basic and of Masking, the latter followed by the masked share of the vector in "
            "percent; regularisation: the label smoothing (LS) and the DropOut probability."
            + (
                " Probe: a standardised L2 logistic regression on the same fused input, trained on the same "
                "training side of each fold (mean over folds)."
                if probe
                else ""
            )
        ),
        "",
        (
            "**Rec and F1 as in the paper:** on a two-class task, the sensitivity (recall) and the F1 score of the "
            "pain class (the task's last class); on a task of more classes, macro averages over the classes."
        ),
        "",
        _markdown_table(markdown_rows(table, by_name, probe=probe)),
        "",
        f"![Acc, Rec and F1 per experiment]({relative_plot})",
        "",
        "## Uncertainty, the other metrics" + (" and the linear probe" if probe else ""),
        "",
        (
            "95% CI: percentile bootstrap over subjects (9999 resamples of the subjects, seeded) of the mean of "
            "per-subject values; n/a with fewer than two subjects where the metric is defined. Spec, Prec, AUC: specificity, precision of "
            "the pain class and ROC AUC of its probability, mean ± std over folds (two-class tasks only)."
            + (" probe C: the L2 strengths chosen by the inner subject-wise split (number of folds)." if probe else "")
        ),
        "",
        _markdown_table(uncertainty_table(summaries, table, probe=probe)),
        "",
        "## Which inputs carry signal",
        "",
        (
            "Pooled predictions of every fold tested against chance (1 / number of classes) with a "
            f"one-sided binomial test; p < {SIGNIFICANCE} is called above chance."
        ),
        "",
        _signal_paragraph(summaries, probe=probe),
        "",
    ]
    if len(compared):
        parts += [
            "## Paired comparisons",
            "",
            (
                "Wilcoxon signed-rank test over the subjects both experiments were tested on, pairing each "
                "subject's accuracy; mean difference = first minus second, in percentage points; rank-biserial: "
                "matched-pairs rank-biserial correlation (+1: every subject better in the first); p_holm: "
                f"Holm-corrected over the {int((compared['p_value'] != '').sum())} tests of this summary."
            ),
            "",
            _markdown_table(compared),
            "",
        ]
    return "\n".join(parts)
