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
from painformer.report.metrics import compute_metrics
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
    predictions = pd.concat([pd.read_csv(folder / "predictions.tsv", sep="\t", dtype=str) for folder in folds])
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

    table = pd.read_csv(tmp_path / "tables" / "gsr.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["fold", "test_subjects", "n", "accuracy", "recall", "f1"]
    assert table["fold"].tolist() == [*SUBJECTS, "mean", "std", "pooled"]
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
    assert summary["std"] == {"accuracy": None, "recall_macro": None, "f1_macro": None}
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
    first = np.array([strong_summary["per_subject"][s] for s in SUBJECTS])
    second = np.array([weak_summary["per_subject"][s] for s in SUBJECTS])
    expected = stats.wilcoxon(first, second)
    assert float(compared.loc[0, "p_value"]) == pytest.approx(expected.pvalue, rel=1e-2)
    assert float(compared.loc[0, "statistic"]) == pytest.approx(expected.statistic)
    assert float(compared.loc[0, "mean_difference"]) == pytest.approx(100 * (first - second).mean(), abs=0.005)
    assert compared.loc[1, "p_value"] == "" and "0 common subject" in compared.loc[1, "note"]

    text = markdown.read_text()
    assert "| experiment |" in text and "![" in text and "plots/summary.png" in text
    assert "## Which inputs carry signal" in text and "**strong**" in text and "above chance" in text
    assert "## Paired comparisons" in text
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
    assert summary.loc["fused", "vs_best_single"] == f"{100 * (means['fused'] - means[best]):+.2f} ({best})"
    assert summary.loc["gsr", "vs_best_single"] == "" and summary.loc["ecg", "vs_best_single"] == ""
    assert "acc. vs best single input" in (tmp_path / "summary.md").read_text()


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
