"""Report commands on fold folders written to tmp_path, checked against numpy and scipy."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from painformer.cli import main
from painformer.report.inference import bootstrap_interval, holm, rank_biserial
from painformer.report.metrics import BINARY_KEYS, METRIC_KEYS, compute_metrics
from painformer.train.config import load_experiments

BINARY = ("BL1", "PA4")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Two of the paper's presets (Table V rows 1 and 3), in the form the pipeline config gives them.
PRESETS = {
    "p200": {
        "epochs": 200,
        "basic_p": 0.5,
        "masking_p": 0.5,
        "mask_range": [0.1, 0.2],
        "label_smoothing": 0.0,
        "dropout": 0.0,
        "lr": 2e-5,
        "weight_decay": 0.1,
        "batch_size": 32,
        "warmup_epochs": 10,
        "cooldown_epochs": 10,
        "noise_std": 0.1,
        "normalize": "none",
        "seed": 0,
    },
    "p600": {
        "epochs": 600,
        "basic_p": 0.5,
        "masking_p": 0.5,
        "mask_range": [0.15, 0.2],
        "label_smoothing": 0.1,
        "dropout": 0.5,
        "lr": 2e-5,
        "weight_decay": 0.1,
        "batch_size": 32,
        "warmup_epochs": 10,
        "cooldown_epochs": 10,
        "noise_std": 0.1,
        "normalize": "none",
        "seed": 0,
    },
}


def experiment_config(name: str, *, inputs=("gsr/waveform",), fusion="none", preset="p200", overrides=None) -> dict:
    """The resolved experiment as training records it: parsed by the training config, ``to_dict()``."""
    raw = {"inputs": list(inputs), "fusion": fusion, "task": "NP_vs_P4", "preset": preset}
    if overrides:
        raw["overrides"] = overrides
    return load_experiments({"presets": PRESETS, "experiments": {name: raw}})[name].to_dict()


def write_fold(
    directory: Path,
    *,
    experiment: str,
    subject: str,
    true: list[str],
    predicted: list[str],
    classes: tuple[str, ...] = BINARY,
    epochs: int = 5,
    seed: int = 0,
    config: dict | None = None,
) -> dict:
    """A fold folder in the layout training writes; metrics come from compute_metrics."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    samples = [f"{subject}-{index:03d}" for index in range(len(true))]
    probabilities = rng.dirichlet(np.ones(len(classes)), size=len(true))
    predictions = pd.DataFrame(
        {"sample": samples, "subject": subject, "true": true, "predicted": predicted}
        | {f"prob_{name}": probabilities[:, column] for column, name in enumerate(classes)}
    )
    predictions.to_csv(directory / "predictions.tsv", sep="\t", index=False)
    metrics = compute_metrics(true, predicted, classes)
    record = {
        "experiment": experiment,
        "fold": subject,
        "classes": list(classes),
        "test_subjects": [subject],
        "n_train": 40,
        "n_test": len(true),
        "accuracy": metrics["accuracy"],
        "recall_macro": metrics["recall_macro"],
        "f1_macro": metrics["f1_macro"],
        "confusion": metrics["confusion"],
        "epochs": epochs,
        "seed": seed,
        "train_seconds": 1.5,
        "device": "cpu",
    }
    (directory / "metrics.json").write_text(json.dumps(record))
    epoch = np.arange(1, epochs + 1)
    history = pd.DataFrame(
        {
            "epoch": epoch,
            "lr": 1e-3 / epoch,
            "train_loss": 1.0 / epoch + rng.uniform(0, 0.1, epochs),
            "train_accuracy": np.clip(0.5 + 0.08 * epoch + rng.uniform(0, 0.05, epochs), 0, 1),
        }
    )
    history.to_csv(directory / "history.tsv", sep="\t", index=False)
    if config is not None:  # what write_fold adds to the resolved experiment
        config = {**config, "fold": subject, "seed": seed, "classes": list(classes)}
        (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return record


def make_experiment(
    root: Path,
    *,
    name: str,
    subjects: list[str],
    accuracy: float,
    seed: int,
    samples: int = 10,
    classes: tuple[str, ...] = BINARY,
    config: dict | None = None,
) -> list[Path]:
    """One LOSO experiment: each subject's predictions right with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    directories = []
    for offset, subject in enumerate(subjects):
        true = [classes[index % len(classes)] for index in range(samples)]
        predicted = [
            label if rng.random() < accuracy else rng.choice([c for c in classes if c != label]) for label in true
        ]
        directory = root / "runs" / name / f"fold-{subject}"
        write_fold(
            directory,
            experiment=name,
            subject=subject,
            true=true,
            predicted=[str(p) for p in predicted],
            classes=classes,
            seed=seed + offset,
            config=config if config is not None else experiment_config(name),
        )
        directories.append(directory)
    return directories


def run_experiment(root: Path, name: str, folds: list[Path]) -> int:
    return main(
        [
            "report",
            "experiment",
            "--experiment",
            name,
            "--folds",
            *map(str, folds),
            "--out-dir",
            str(root / "tables"),
            "--plots-dir",
            str(root / "plots"),
        ]
    )


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01, f"{path} is blank"


SUBJECTS = [f"S{index:02d}" for index in range(1, 9)]


def test_experiment_table_matches_numpy_and_pooled_metrics(tmp_path):
    config = experiment_config("gsr", preset="p600", overrides={"dropout": 0.0})
    folds = make_experiment(tmp_path, name="gsr", subjects=SUBJECTS, accuracy=0.7, seed=1, config=config)
    assert run_experiment(tmp_path, "gsr", folds) == 0

    summary = json.loads((tmp_path / "tables" / "gsr.json").read_text())
    records = [json.loads((folder / "metrics.json").read_text()) for folder in folds]
    for key in ("accuracy", "recall_macro", "f1_macro"):
        values = np.array([record[key] for record in records])
        assert summary["mean"][key] == pytest.approx(values.mean(), abs=1e-12)
        assert summary["std"][key] == pytest.approx(values.std(ddof=1), abs=1e-12)
    by_fold = [pd.read_csv(folder / "predictions.tsv", sep="\t", dtype=str) for folder in folds]
    predictions = pd.concat(by_fold)
    pooled = compute_metrics(predictions["true"], predictions["predicted"], BINARY)
    for key in ("accuracy", "recall_macro", "f1_macro", "confusion", "n"):
        assert summary["pooled"][key] == pooled[key]
    assert summary["pooled"]["correct"] == int((predictions["true"] == predictions["predicted"]).sum())
    assert summary["per_subject"] == {record["fold"]: record["accuracy"] for record in records}
    assert summary["n_folds"] == len(SUBJECTS)
    assert summary["classes"] == list(BINARY)
    assert summary["inputs"] == ["gsr/waveform"] and summary["fusion"] == "none" and summary["task"] == "NP_vs_P4"
    assert summary["preset"] == "p600" and summary["epochs"] == 600 and summary["label_smoothing"] == 0.1
    assert summary["dropout"] == 0.0 and summary["mask_range"] == [0.15, 0.2]

    for key in ("sensitivity", "specificity", "precision", "f1"):
        values = [compute_metrics(fold["true"], fold["predicted"], BINARY)[key] for fold in by_fold]
        assert summary["mean"][key] == pytest.approx(np.mean(values), abs=1e-12)
        assert summary["std"][key] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert summary["pooled"][key] == pooled[key]
    assert summary["headline"] == ["accuracy", "sensitivity", "f1"]
    # Subjects resampled with replacement, by an independent numpy bootstrap: the same interval up to
    # Monte Carlo error, and it holds the mean over subjects.
    rng = np.random.default_rng(123)
    for key in ("accuracy", "sensitivity", "f1"):
        per_subject = np.array([summary["per_subject_metrics"][s][key] for s in SUBJECTS])
        means = per_subject[rng.integers(0, len(SUBJECTS), size=(20000, len(SUBJECTS)))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        interval = summary["ci"][key]
        assert interval["low"] == pytest.approx(low, abs=0.015) and interval["high"] == pytest.approx(high, abs=0.015)
        assert interval["low"] <= per_subject.mean() <= interval["high"] and interval["n_subjects"] == len(SUBJECTS)

    table = pd.read_csv(tmp_path / "tables" / "gsr.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["fold", "test_subjects", "n", *METRIC_KEYS]
    assert table["fold"].tolist() == [*SUBJECTS, "mean", "std", "pooled", "ci_low", "ci_high"]
    assert float(table.set_index("fold").loc["ci_low", "f1"]) == pytest.approx(
        100 * summary["ci"]["f1"]["low"], abs=0.005
    )
    mean_row = table.set_index("fold").loc["mean"]
    assert float(mean_row["accuracy"]) == pytest.approx(100 * summary["mean"]["accuracy"], abs=0.005)
    assert table.set_index("fold").loc["pooled", "n"] == str(len(predictions))
    for plot in ("confusion", "subjects", "curves"):
        assert_png(tmp_path / "plots" / f"gsr_{plot}.png")


def test_single_fold_has_no_std_and_multiclass_confusion(tmp_path):
    classes = ("No", "Low", "High")
    folder = tmp_path / "runs" / "holdout" / "fold-validation"
    true = [classes[index % 3] for index in range(30)]
    predicted = [classes[(index // 3) % 3] for index in range(30)]
    subjects = [f"V{index % 3}" for index in range(30)]
    write_fold(folder, experiment="holdout", subject="V0", true=true, predicted=predicted, classes=classes)
    table = pd.read_csv(folder / "predictions.tsv", sep="\t", dtype=str)
    table["subject"] = subjects
    table.to_csv(folder / "predictions.tsv", sep="\t", index=False)
    record = json.loads((folder / "metrics.json").read_text())
    record["test_subjects"] = ["V0", "V1", "V2"]
    (folder / "metrics.json").write_text(json.dumps(record))

    assert run_experiment(tmp_path, "holdout", [folder]) == 0
    summary = json.loads((tmp_path / "tables" / "holdout.json").read_text())
    assert summary["std"] == dict.fromkeys(METRIC_KEYS)
    # Three classes: no single pain class, so the two-class metrics are n/a and the headline is macro.
    assert all(summary["mean"][key] is None for key in BINARY_KEYS)
    assert summary["headline"] == ["accuracy", "recall_macro", "f1_macro"]
    assert set(summary["ci"]) == {"accuracy", "recall_macro", "f1_macro"}
    assert summary["chance"] == pytest.approx(1 / 3)
    assert summary["per_subject"]["V1"] == pytest.approx(
        np.mean([t == p for t, p, s in zip(true, predicted, subjects) if s == "V1"])
    )
    assert np.array(summary["pooled"]["confusion"]).shape == (3, 3)
    assert_png(tmp_path / "plots" / "holdout_confusion.png")


def test_summary_tables_wilcoxon_and_binomial(tmp_path):
    strong = make_experiment(tmp_path, name="strong", subjects=SUBJECTS, accuracy=0.85, seed=2)
    weak = make_experiment(
        tmp_path,
        name="weak",
        subjects=SUBJECTS,
        accuracy=0.5,
        seed=3,
        config=experiment_config("weak", inputs=["ecg/spec_psd"]),
    )
    other = make_experiment(tmp_path, name="other", subjects=["X1"], accuracy=0.6, seed=4)
    for name, folds in (("strong", strong), ("weak", weak), ("other", other)):
        assert run_experiment(tmp_path, name, folds) == 0
    tables = tmp_path / "tables"
    out = tmp_path / "summary.tsv"
    markdown = tmp_path / "summary.md"
    code = main(
        [
            "report",
            "summary",
            "--experiments",
            str(tables / "weak.json"),
            str(tables / "strong.json"),
            str(tables / "other.json"),
            "--out",
            str(out),
            "--markdown",
            str(markdown),
            "--plots-dir",
            str(tmp_path / "plots"),
            "--compare",
            "strong:weak",
            "--compare",
            "strong:other",
        ]
    )
    assert code == 0

    weak_summary = json.loads((tables / "weak.json").read_text())
    strong_summary = json.loads((tables / "strong.json").read_text())
    summary = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    assert summary["experiment"].tolist() == ["weak", "strong", "other"]
    row = summary.set_index("experiment").loc["strong"]
    assert (
        row["accuracy"]
        == f"{100 * strong_summary['mean']['accuracy']:.2f} ± {100 * strong_summary['std']['accuracy']:.2f}"
    )
    assert row["inputs"] == "gsr/waveform" and row["folds"] == str(len(SUBJECTS))
    expected_binomial = stats.binomtest(
        strong_summary["pooled"]["correct"], strong_summary["pooled"]["n"], 0.5, alternative="greater"
    ).pvalue
    assert float(row["binomial_p"]) == pytest.approx(expected_binomial, rel=1e-2)

    compared = pd.read_csv(tmp_path / "summary_compare.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert compared[["first", "second"]].values.tolist() == [["strong", "weak"], ["strong", "other"]]
    # One of the two comparisons was tested, so Holm leaves its p-value as it is.
    assert compared.loc[0, "p_holm"] == compared.loc[0, "p_value"] and compared.loc[1, "p_holm"] == ""
    first = np.array([strong_summary["per_subject"][s] for s in SUBJECTS])
    second = np.array([weak_summary["per_subject"][s] for s in SUBJECTS])
    expected = stats.wilcoxon(first, second)
    assert float(compared.loc[0, "p_value"]) == pytest.approx(expected.pvalue, rel=1e-2)
    assert float(compared.loc[0, "statistic"]) == pytest.approx(expected.statistic)
    assert float(compared.loc[0, "mean_difference"]) == pytest.approx(100 * (first - second).mean(), abs=0.005)
    differences = (first - second)[first != second]
    ranks = stats.rankdata(np.abs(differences))
    expected_r = (ranks[differences > 0].sum() - ranks[differences < 0].sum()) / ranks.sum()
    assert float(compared.loc[0, "rank_biserial"]) == pytest.approx(expected_r, abs=5e-4)
    assert compared.loc[1, "p_value"] == "" and "0 common subject" in compared.loc[1, "note"]

    text = markdown.read_text()
    assert "| experiment |" in text and "![" in text and "plots/summary.png" in text
    assert "## Which inputs carry signal" in text and "**strong**" in text and "above chance" in text
    assert "## Paired comparisons" in text and "Holm-corrected over the 1 tests" in text
    # The one-subject experiment has no interval: an explicit n/a, the rest of the summary intact.
    assert "| other | 1 | n/a (1 subject) | n/a (1 subject) |" in text and "## Which inputs carry signal" in text
    assert summary.set_index("experiment").loc["other", "accuracy_ci_low"] == ""
    assert row["sensitivity"] == (
        f"{100 * strong_summary['mean']['sensitivity']:.2f} ± {100 * strong_summary['std']['sensitivity']:.2f}"
    )
    assert float(row["accuracy_ci_low"]) == pytest.approx(100 * strong_summary["ci"]["accuracy"]["low"], abs=1e-3)
    # These folds have no linear probe: n/a with the reason, not a crash.
    assert row["probe_accuracy"] == "n/a" and "no linear probe in fold(s)" in row["probe_note"]
    assert_png(tmp_path / "plots" / "summary.png")


def test_identical_experiments_report_why_not_tested(tmp_path):
    first = make_experiment(tmp_path, name="a", subjects=SUBJECTS[:4], accuracy=0.7, seed=5)
    second = make_experiment(tmp_path / "copy", name="b", subjects=SUBJECTS[:4], accuracy=0.7, seed=5)
    assert run_experiment(tmp_path, "a", first) == 0
    assert run_experiment(tmp_path, "b", second) == 0
    out = tmp_path / "summary.tsv"
    assert (
        main(
            [
                "report",
                "summary",
                "--experiments",
                str(tmp_path / "tables" / "a.json"),
                str(tmp_path / "tables" / "b.json"),
                "--out",
                str(out),
                "--markdown",
                str(tmp_path / "s.md"),
                "--plots-dir",
                str(tmp_path / "plots"),
                "--compare",
                "a:b",
            ]
        )
        == 0
    )
    compared = pd.read_csv(tmp_path / "summary_compare.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert compared.loc[0, "p_value"] == "" and "same accuracy" in compared.loc[0, "note"]


def test_unknown_experiment_in_compare_is_an_error(tmp_path, capsys):
    folds = make_experiment(tmp_path, name="a", subjects=SUBJECTS[:3], accuracy=0.7, seed=6)
    assert run_experiment(tmp_path, "a", folds) == 0
    code = main(
        [
            "report",
            "summary",
            "--experiments",
            str(tmp_path / "tables" / "a.json"),
            "--out",
            str(tmp_path / "s.tsv"),
            "--markdown",
            str(tmp_path / "s.md"),
            "--plots-dir",
            str(tmp_path / "plots"),
            "--compare",
            "a:missing",
        ]
    )
    assert code == 1
    assert "unknown experiment 'missing'" in capsys.readouterr().err
    assert not (tmp_path / "s.tsv").exists()


@pytest.mark.parametrize(
    "damage, file_name, message",
    [
        (lambda folder: (folder / "predictions.tsv").unlink(), "predictions.tsv", "missing"),
        (lambda folder: (folder / "history.tsv").unlink(), "history.tsv", "missing"),
        (lambda folder: (folder / "metrics.json").write_text("{not json"), "metrics.json", "not valid JSON"),
        (
            lambda folder: (folder / "metrics.json").write_text(json.dumps({"fold": "x"})),
            "metrics.json",
            "missing keys",
        ),
        (
            lambda folder: (folder / "history.tsv").write_text(
                "epoch\tlr\ttrain_loss\ttrain_accuracy\n1\t0.1\tbad\t0.5\n"
            ),
            "history.tsv",
            "non-numeric",
        ),
        (
            lambda folder: (folder / "predictions.tsv").write_text("sample\tsubject\ttrue\n"),
            "predictions.tsv",
            "missing columns",
        ),
    ],
)
def test_damaged_fold_files_are_named(tmp_path, capsys, damage, file_name, message):
    folds = make_experiment(tmp_path, name="a", subjects=SUBJECTS[:3], accuracy=0.7, seed=7)
    damage(folds[1])
    assert run_experiment(tmp_path, "a", folds) == 1
    error = capsys.readouterr().err
    assert str(folds[1] / file_name) in error and message in error
    assert not (tmp_path / "tables" / "a.json").exists()


def test_inconsistent_folds_are_errors(tmp_path, capsys):
    folds = make_experiment(tmp_path, name="a", subjects=SUBJECTS[:3], accuracy=0.7, seed=8)
    three_class = make_experiment(
        tmp_path, name="a3", subjects=["T1"], accuracy=0.7, seed=9, classes=("No", "Low", "High")
    )
    record = json.loads((three_class[0] / "metrics.json").read_text())
    record["experiment"] = "a"
    (three_class[0] / "metrics.json").write_text(json.dumps(record))
    assert run_experiment(tmp_path, "a", [*folds, three_class[0]]) == 1
    error = capsys.readouterr().err
    assert str(three_class[0] / "metrics.json") in error and "classes" in error

    record = json.loads((folds[0] / "metrics.json").read_text())
    record["accuracy"] = 1.0 if record["accuracy"] < 1.0 else 0.0
    (folds[0] / "metrics.json").write_text(json.dumps(record))
    assert run_experiment(tmp_path, "a", folds) == 1
    assert "disagrees with" in capsys.readouterr().err

    assert run_experiment(tmp_path, "b", folds[1:]) == 1
    assert "belongs to experiment 'a'" in capsys.readouterr().err

    assert run_experiment(tmp_path, "a", [folds[1], folds[1]]) == 1
    assert "predicted in" in capsys.readouterr().err


def test_fusion_rows_show_the_difference_to_the_best_single_input(tmp_path):
    gsr = make_experiment(tmp_path, name="gsr", subjects=SUBJECTS, accuracy=0.8, seed=5)
    ecg = make_experiment(
        tmp_path,
        name="ecg",
        subjects=SUBJECTS,
        accuracy=0.6,
        seed=6,
        config=experiment_config("ecg", inputs=["ecg/spec_psd"]),
    )
    fused = make_experiment(
        tmp_path,
        name="fused",
        subjects=SUBJECTS,
        accuracy=0.9,
        seed=7,
        config=experiment_config("fused", inputs=["gsr/waveform", "ecg/spec_psd"], fusion="concat"),
    )
    for name, folds in (("gsr", gsr), ("ecg", ecg), ("fused", fused)):
        assert run_experiment(tmp_path, name, folds) == 0
    tables = tmp_path / "tables"
    out = tmp_path / "summary.tsv"
    code = main(
        [
            "report",
            "summary",
            "--experiments",
            *(str(tables / f"{n}.json") for n in ("gsr", "ecg", "fused")),
            "--out",
            str(out),
            "--markdown",
            str(tmp_path / "summary.md"),
            "--plots-dir",
            str(tmp_path / "plots"),
        ]
    )
    assert code == 0
    means = {n: json.loads((tables / f"{n}.json").read_text())["mean"]["accuracy"] for n in ("gsr", "ecg", "fused")}
    best = max(("gsr", "ecg"), key=means.get)
    summary = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False).set_index("experiment")
    assert summary.loc["fused", "vs_best_single"] == best
    for name, key in (("accuracy", "accuracy"), ("recall", "sensitivity"), ("f1", "f1")):
        fused_mean = json.loads((tables / "fused.json").read_text())["mean"][key]
        best_mean = json.loads((tables / f"{best}.json").read_text())["mean"][key]
        assert summary.loc["fused", f"vs_best_single_{name}"] == f"{100 * (fused_mean - best_mean):+.2f}"
    assert summary.loc["gsr", "vs_best_single"] == "" and summary.loc["ecg", "vs_best_single_f1"] == ""
    # Table IX's shape: the fusion row, then its +/- row for all three metrics.
    shown = _markdown_rows((tmp_path / "summary.md").read_text())
    position = [row["experiment"] for row in shown].index("fused")
    plus_minus = shown[position + 1]
    assert plus_minus["input"] == f"+/- vs {best}"
    assert [plus_minus["Acc"], plus_minus["Rec"], plus_minus["F1"]] == [
        summary.loc["fused", f"vs_best_single_{name}"] for name in ("accuracy", "recall", "f1")
    ]
    # Without the probe (report.probe: false) neither file has a probe column.
    argv = ["report", "summary", "--experiments", *(str(tables / f"{n}.json") for n in ("gsr", "ecg", "fused"))]
    argv += ["--out", str(tmp_path / "plain.tsv"), "--markdown", str(tmp_path / "plain.md")]
    assert main([*argv, "--plots-dir", str(tmp_path / "plots"), "--no-probe"]) == 0
    plain = pd.read_csv(tmp_path / "plain.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert (
        not [c for c in plain.columns if c.startswith("probe")] and "probe" not in (tmp_path / "plain.md").read_text()
    )


def test_compute_metrics_against_sklearn_and_by_hand():
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    classes = ("A", "B", "C")
    true = ["A", "A", "A", "B", "B", "C", "C", "C"]
    predicted = ["A", "A", "B", "B", "A", "A", "B", "B"]  # C is never predicted
    scores = compute_metrics(true, predicted, classes)
    assert scores["accuracy"] == accuracy_score(true, predicted)
    assert scores["recall_macro"] == recall_score(
        true, predicted, labels=list(classes), average="macro", zero_division=0
    )
    assert scores["f1_macro"] == f1_score(true, predicted, labels=list(classes), average="macro", zero_division=0)
    # By hand: recalls 2/3, 1/2, 0; precisions 2/4, 1/4, 0 (nothing predicted C); F1s 4/7, 1/3, 0.
    assert scores["accuracy"] == pytest.approx(3 / 8)
    assert scores["recall_macro"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert scores["f1_macro"] == pytest.approx((4 / 7 + 1 / 3 + 0) / 3)
    assert scores["confusion"] == [[2, 1, 0], [1, 1, 0], [1, 2, 0]] and scores["n"] == 8

    # A task class absent from the truth too: "all" scores it 0, "present" leaves it out.
    four = (*classes, "D")
    every = compute_metrics(true, predicted, four, macro_over="all")
    present = compute_metrics(true, predicted, four, macro_over="present")
    assert every["recall_macro"] == pytest.approx((2 / 3 + 1 / 2) / 4)
    assert every["f1_macro"] == f1_score(true, predicted, labels=list(four), average="macro", zero_division=0)
    assert present["recall_macro"] == pytest.approx(scores["recall_macro"])
    assert present["f1_macro"] == pytest.approx(scores["f1_macro"])
    assert every["accuracy"] == present["accuracy"] == scores["accuracy"]
    assert np.array(every["confusion"]).shape == (4, 4) and np.array(every["confusion"])[3].sum() == 0

    with pytest.raises(ValueError, match="'E'"):
        compute_metrics(["A", "E"], ["A", "A"], classes)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        compute_metrics(["A", "B"], ["A"], classes)


def _markdown_rows(text: str) -> list[dict[str, str]]:
    """The first markdown table of ``text`` as one dict per row, keyed by header."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, body = split[0], split[2:]
    return [dict(zip(header, cells)) for cells in body if len(cells) == len(header)]


def test_reports_of_real_training_folds_show_the_preset(tmp_path):
    """Fold folders written by `painformer train` on real stores: preset and settings reach every table."""
    import yaml

    from painformer.data import write_sample_table
    from painformer.stores import SampleMeta, SampleStore

    subjects = ("S1", "S2", "S3")
    rows = [
        {
            "dataset": "synthetic",
            "sample": f"{subject}-{name}-{k}",
            "subject": subject,
            "subject_id": str(s),
            "class_id": class_id,
            "class_name": name,
            "video": "",
            "biosignals": "",
            "split": "",
        }
        for s, subject in enumerate(subjects)
        for class_id, name in ((0, "BL1"), (4, "PA4"))
        for k in range(4)
    ]
    table = pd.DataFrame(rows)
    samples = write_sample_table(table, tmp_path / "samples.tsv")
    rng = np.random.default_rng(0)
    for name in ("gsr/waveform", "ecg/spec_psd"):
        modality, representation = name.split("/")
        store = SampleStore.create_or_resume(
            tmp_path / "embeddings" / modality / f"{representation}.zarr",
            kind="embeddings",
            array_name="embeddings",
            meta=SampleMeta.from_table(table),
            item_shape=(1, 160),
            dtype="float32",
            fingerprint={"synthetic": name},
        )
        for index, class_name in enumerate(table["class_name"]):
            store.write(index, (rng.normal(size=(1, 160)) + (class_name == "PA4")).astype(np.float32))
    short = {"epochs": 3, "warmup_epochs": 0, "cooldown_epochs": 0, "batch_size": 8, "lr": 1e-3}
    presets = {name: {**values, **short} for name, values in PRESETS.items()}
    tiny = {
        "num_latents": 4,
        "latent_dim": 16,
        "cross_dim_head": 8,
        "self_heads": 2,
        "self_dim_head": 8,
        "depth": 1,
        "output_dim": 16,
    }
    experiments = {
        "gsr_a": {"inputs": ["gsr/waveform"], "preset": "p200"},
        "ecg_a": {"inputs": ["ecg/spec_psd"], "preset": "p200"},
        "gsr_b": {"inputs": ["gsr/waveform"], "preset": "p600"},
    }
    config = {
        "presets": presets,
        "experiments": {n: {**e, "fusion": "none", "task": "NP_vs_P4", "model": tiny} for n, e in experiments.items()},
    }
    config_path = tmp_path / "experiments.yaml"
    config_path.write_text(yaml.safe_dump(config))
    for name in experiments:
        folds = []
        for subject in subjects:
            folds.append(tmp_path / "runs" / name / f"fold-{subject}")
            assert (
                main(
                    [
                        "train",
                        "--config",
                        str(config_path),
                        "--experiment",
                        name,
                        "--fold",
                        subject,
                        "--samples",
                        str(samples),
                        "--embeddings",
                        str(tmp_path / "embeddings"),
                        "--out",
                        str(folds[-1]),
                        "--device",
                        "cpu",
                    ]
                )
                == 0
            )
        assert run_experiment(tmp_path, name, folds) == 0
        summary = json.loads((tmp_path / "tables" / f"{name}.json").read_text())
        preset = presets[experiments[name]["preset"]]
        assert summary["preset"] == experiments[name]["preset"]
        assert summary["inputs"] == experiments[name]["inputs"] and summary["epochs"] == 3
        assert summary["dropout"] == preset["dropout"] and summary["mask_range"] == preset["mask_range"]

    markdown = tmp_path / "summary.md"
    assert (
        main(
            [
                "report",
                "summary",
                "--experiments",
                *(str(tmp_path / "tables" / f"{n}.json") for n in experiments),
                "--out",
                str(tmp_path / "summary.tsv"),
                "--markdown",
                str(markdown),
                "--plots-dir",
                str(tmp_path / "plots"),
            ]
        )
        == 0
    )
    tsv = pd.read_csv(tmp_path / "summary.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert tsv["preset"].tolist() == ["p200", "p200", "p600"]  # --experiments order
    header = next(line for line in markdown.read_text().splitlines() if line.startswith("| input |"))
    assert [cell.strip() for cell in header.strip("|").split("|")][:12] == [
        "input",
        "preset",
        "fusion",
        "task",
        "epochs",
        "aug. Basic",
        "aug. Masking",
        "reg. LS",
        "reg. DropOut",
        "Acc",
        "Rec",
        "F1",
    ]
    shown = _markdown_rows(markdown.read_text())
    # Rows are input x preset: the two GSR presets next to each other, ECG after them.
    assert [(row["input"], row["preset"], row["experiment"]) for row in shown] == [
        ("gsr/waveform", "p200", "gsr_a"),
        ("gsr/waveform", "p600", "gsr_b"),
        ("ecg/spec_psd", "p200", "ecg_a"),
    ]
    by_name = {row["experiment"]: row for row in shown}
    assert by_name["gsr_b"]["aug. Masking"] == "0.5 15-20" and by_name["gsr_b"]["reg. LS"] == "0.1"
    assert by_name["gsr_b"]["reg. DropOut"] == "0.5" and by_name["gsr_a"]["reg. DropOut"] == "0.0"
    gsr_b = json.loads((tmp_path / "tables" / "gsr_b.json").read_text())
    accuracy = f"{100 * gsr_b['mean']['accuracy']:.2f} ± {100 * gsr_b['std']['accuracy']:.2f}"
    assert by_name["gsr_b"]["Acc"] == accuracy
    # The rows' Rec and F1 are the pain class's, as in the paper.
    assert (
        by_name["gsr_b"]["Rec"] == f"{100 * gsr_b['mean']['sensitivity']:.2f} ± {100 * gsr_b['std']['sensitivity']:.2f}"
    )
    assert by_name["gsr_b"]["F1"] == f"{100 * gsr_b['mean']['f1']:.2f} ± {100 * gsr_b['std']['f1']:.2f}"
    # The linear probe ran in every fold beside the Mixer and reaches the tables.
    probe_accuracies = []
    for subject in subjects:
        fold = tmp_path / "runs" / "gsr_b" / f"fold-{subject}"
        record = json.loads((fold / "probe.json").read_text())
        probe = pd.read_csv(fold / "probe_predictions.tsv", sep="\t", dtype={"true": str, "predicted": str})
        mixer = pd.read_csv(fold / "predictions.tsv", sep="\t")
        assert probe["sample"].tolist() == mixer["sample"].tolist()
        assert record["accuracy"] == pytest.approx(float((probe["true"] == probe["predicted"]).mean()))
        assert record["C"]["fused"] in record["C_grid"] and record["features"] == {"fused": 160}
        probe_accuracies.append(record["accuracy"])
    assert gsr_b["probe"]["mean"]["accuracy"] == pytest.approx(np.mean(probe_accuracies))
    row = tsv.set_index("experiment").loc["gsr_b"]
    assert float(row["probe_accuracy"].split(" ± ")[0]) == pytest.approx(100 * np.mean(probe_accuracies), abs=0.005)
    assert by_name["gsr_b"]["probe Acc / Rec / F1"].split(" / ")[0] == f"{100 * np.mean(probe_accuracies):.2f}"
    assert (
        "linear probe above chance" in markdown.read_text()
        or "linear probe not distinguishable" in markdown.read_text()
    )


def test_two_class_metrics_on_a_known_confusion_matrix():
    # Pain class PA4 (the task's last class). TP 3, FN 1, TN 4, FP 2.
    true = ["PA4"] * 4 + ["BL1"] * 6
    predicted = ["PA4", "PA4", "PA4", "BL1"] + ["BL1"] * 4 + ["PA4", "PA4"]
    # Probabilities of PA4, for the AUC below.
    pain = [0.9, 0.8, 0.6, 0.3] + [0.1, 0.2, 0.4, 0.25, 0.7, 0.55]
    probabilities = np.column_stack([1 - np.array(pain), pain])
    scores = compute_metrics(true, predicted, BINARY, probabilities)
    assert scores["confusion"] == [[4, 2], [1, 3]]
    assert scores["accuracy"] == pytest.approx(7 / 10)
    assert scores["sensitivity"] == pytest.approx(3 / 4)
    assert scores["specificity"] == pytest.approx(4 / 6)
    assert scores["precision"] == pytest.approx(3 / 5)
    assert scores["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    # AUC by counting: 0.9 and 0.8 beat all 6 no-pain scores, 0.6 beats 5 (not 0.7), 0.3 beats 3
    # (0.1, 0.2, 0.25): (6 + 6 + 5 + 3) / 24.
    assert scores["auc"] == pytest.approx(20 / 24)
    # Macro recall averages the two classes' recalls, which the paper's Rec does not.
    assert scores["recall_macro"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert compute_metrics(true, predicted, BINARY)["auc"] is None  # no probabilities given

    # A model that never predicts pain: sensitivity 0, precision 0 by convention, F1 0.
    never = compute_metrics(true, ["BL1"] * 10, BINARY)
    assert (never["sensitivity"], never["specificity"], never["precision"], never["f1"]) == (0.0, 1.0, 0.0, 0.0)
    # No pain sample in the truth: sensitivity undefined (None), specificity still defined, no AUC.
    only_no_pain = compute_metrics(["BL1"] * 3, ["BL1", "PA4", "BL1"], BINARY, np.full((3, 2), 0.5))
    assert only_no_pain["sensitivity"] is None and only_no_pain["auc"] is None
    assert only_no_pain["specificity"] == pytest.approx(2 / 3) and only_no_pain["f1"] == 0.0
    # Nothing positive anywhere: F1 of the pain class has nothing to count.
    assert compute_metrics(["BL1"], ["BL1"], BINARY)["f1"] is None
    # A task of three classes has no single pain class: the two-class metrics are n/a.
    multi = compute_metrics(["No", "Low", "High"], ["No", "Low", "Low"], ("No", "Low", "High"))
    assert all(multi[key] is None for key in BINARY_KEYS) and multi["recall_macro"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(true, predicted, BINARY, probabilities[:5])


def test_holm_rank_biserial_and_bootstrap_by_hand():
    # Sorted p: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to the running maximum 0.06.
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == [] and holm([None]) == [None]
    # Differences 1, -2, 3, 0: the zero is dropped, ranks 1, 2, 3; R+ = 4, R- = 2 -> (4 - 2) / 6.
    assert rank_biserial([1, 0, 5, 2], [0, 2, 2, 2]) == pytest.approx(1 / 3)
    assert rank_biserial([1, 2], [0, 1]) == 1.0 and rank_biserial([1, 2], [1, 2]) is None
    # One subject: nothing to resample.
    single = bootstrap_interval([0.7])
    assert single.low is None and "1 subject(s)" in single.note
    assert bootstrap_interval([0.7, None]).low is None
    same = bootstrap_interval([0.5, 0.5, 0.5])
    assert same.low == pytest.approx(0.5) and same.high == pytest.approx(0.5)
    values = [0.4, 0.9, 0.6, 0.7, 0.55]
    assert bootstrap_interval(values) == bootstrap_interval(values)  # seeded


def test_recorded_sensitivity_must_match_the_predictions(tmp_path, capsys):
    folds = make_experiment(tmp_path, name="gsr", subjects=SUBJECTS[:2], accuracy=0.7, seed=8)
    record = json.loads((folds[0] / "metrics.json").read_text())
    record["sensitivity"] = 0.123
    (folds[0] / "metrics.json").write_text(json.dumps(record))
    assert run_experiment(tmp_path, "gsr", folds) == 1
    error = capsys.readouterr().err
    assert "metrics.json: sensitivity 0.123000 disagrees with its predictions" in error
    assert not (tmp_path / "tables" / "gsr.json").exists()
