"""The linear probe that training runs beside the Mixer, on fold data with a known linear signal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from painformer.report.folds import read_probe
from painformer.report.metrics import compute_metrics
from painformer.train.config import load_experiments
from painformer.train.data import ExperimentData
from painformer.train.probe import C_GRID, run_probe, write_probe

PRESET = {
    "epochs": 2,
    "basic_p": 0.0,
    "masking_p": 0.0,
    "mask_range": [0.1, 0.2],
    "label_smoothing": 0.0,
    "dropout": 0.0,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 8,
    "warmup_epochs": 0,
    "cooldown_epochs": 0,
    "noise_std": 0.1,
    "normalize": "none",
    "seed": 0,
}
SUBJECTS = [f"S{index}" for index in range(1, 7)]
PER_CLASS = 10


def experiment(inputs, fusion="none"):
    raw = {"inputs": list(inputs), "fusion": fusion, "task": "NP_vs_P4", "preset": "p"}
    return load_experiments({"presets": {"p": PRESET}, "experiments": {"e": raw}})["e"]


def fold_data(streams: dict[str, np.ndarray]) -> ExperimentData:
    subjects = np.repeat(SUBJECTS, 2 * PER_CLASS)
    labels = np.tile(np.repeat([0, 1], PER_CLASS), len(SUBJECTS)).astype(np.int64)
    return ExperimentData(
        samples=np.array([f"{subject}-{index}" for index, subject in enumerate(subjects)]),
        subjects=subjects,
        labels=labels,
        splits=np.full(subjects.size, ""),
        classes=("BL1", "PA4"),
        streams=streams,
    )


def signal(dimensions: int, *, seed: int, strength: float = 1.0) -> np.ndarray:
    """Gaussian noise with the pain class shifted along three features, and an offset per subject."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat([0, 1], PER_CLASS), len(SUBJECTS))
    values = rng.normal(size=(labels.size, dimensions))
    values[:, :3] += strength * labels[:, None]
    values += np.repeat(rng.normal(scale=0.5, size=(len(SUBJECTS), dimensions)), 2 * PER_CLASS, axis=0)
    return values.astype(np.float32)


def test_probe_finds_a_linear_signal_and_writes_its_files(tmp_path):
    data = fold_data({"fused": signal(40, seed=0, strength=2.0)})
    record = write_probe(experiment(["gsr/waveform"]), "S3", data, tmp_path)
    assert record["accuracy"] >= 0.8 and record["test_subjects"] == ["S3"]
    assert record["n_train"] == 5 * 2 * PER_CLASS and record["n_test"] == 2 * PER_CLASS
    assert record["C"]["fused"] in C_GRID and set(record["inner_log_loss"]["fused"]) == {f"{c:g}" for c in C_GRID}
    predictions = pd.read_csv(tmp_path / "probe_predictions.tsv", sep="\t", dtype={"true": str, "predicted": str})
    assert list(predictions.columns) == ["sample", "subject", "true", "predicted", "prob_BL1", "prob_PA4"]
    assert set(predictions["subject"]) == {"S3"}
    scores = compute_metrics(predictions["true"], predictions["predicted"], ("BL1", "PA4"))
    assert scores["accuracy"] == record["accuracy"] and scores["sensitivity"] == record["sensitivity"]
    assert json.loads((tmp_path / "probe.json").read_text())["f1"] == record["f1"]
    # The report reads it back and checks it against the fold's test side.
    probe = read_probe(tmp_path, ("BL1", "PA4"), set(predictions["sample"]))
    assert probe["metrics"]["accuracy"] == record["accuracy"]
    with pytest.raises(Exception, match="other samples"):
        read_probe(tmp_path, ("BL1", "PA4"), {"another-sample"})


def test_probe_is_standardised_whatever_the_scale_of_its_input():
    values = signal(40, seed=1)
    plain = run_probe(experiment(["gsr/waveform"]), "S2", fold_data({"fused": values}))
    scaled = run_probe(experiment(["gsr/waveform"]), "S2", fold_data({"fused": 300 * values}))
    assert plain["C"] == scaled["C"]
    np.testing.assert_allclose(plain["probabilities"], scaled["probabilities"], atol=1e-6)


def test_probe_never_looks_at_the_test_side():
    values = signal(40, seed=2)
    changed = values.copy()
    test = np.repeat(SUBJECTS, 2 * PER_CLASS) == "S4"
    changed[test] = np.random.default_rng(9).normal(scale=50.0, size=changed[test].shape)
    first = run_probe(experiment(["gsr/waveform"]), "S4", fold_data({"fused": values}))
    second = run_probe(experiment(["gsr/waveform"]), "S4", fold_data({"fused": changed}))
    # The L2 strength and every inner log-loss depend on the training side only.
    assert first["C"] == second["C"] and first["inner_log_loss"] == second["inner_log_loss"]
    assert not np.allclose(first["probabilities"], second["probabilities"])


def test_decision_fusion_averages_the_probes_of_its_inputs():
    gsr, ecg = signal(20, seed=3), signal(30, seed=4, strength=0.5)
    decision = run_probe(
        experiment(["gsr/waveform", "ecg/spec_psd"], "decision"),
        "S1",
        fold_data({"gsr/waveform": gsr, "ecg/spec_psd": ecg}),
    )
    alone = [
        run_probe(experiment(["gsr/waveform"]), "S1", fold_data({"fused": x}))["probabilities"] for x in (gsr, ecg)
    ]
    np.testing.assert_allclose(decision["probabilities"], (alone[0] + alone[1]) / 2, atol=1e-12)
    assert decision["features"] == {"gsr/waveform": 20, "ecg/spec_psd": 30}


def test_eq12_probe_reads_the_signal_next_to_the_summed_videos():
    gsr, video = signal(16, seed=5), signal(48, seed=6)
    eq12 = run_probe(
        experiment(["gsr/waveform", "rgb/frames", "thermal/frames"], "video_encoder_concat"),
        "S5",
        fold_data({"signal": gsr, "video": video}),
    )
    concatenated = run_probe(experiment(["gsr/waveform"]), "S5", fold_data({"fused": np.hstack([gsr, video])}))
    assert eq12["features"] == {"fused": 64}
    np.testing.assert_allclose(eq12["probabilities"], concatenated["probabilities"], atol=1e-12)


def test_wide_inputs_give_the_probe_of_the_plain_features():
    """More features than training rows: the fit in the rows' span equals a plain standardised fit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    values = signal(400, seed=7, strength=0.8)
    data = fold_data({"fused": values})
    result = run_probe(experiment(["rgb/frames"]), "S6", data)
    train, test = data.subjects != "S6", data.subjects == "S6"
    scaler = StandardScaler().fit(values[train].astype(np.float64))
    plain = LogisticRegression(C=result["C"]["fused"], max_iter=10000, tol=1e-10).fit(
        scaler.transform(values[train].astype(np.float64)), data.labels[train]
    )
    expected = plain.predict_proba(scaler.transform(values[test].astype(np.float64)))
    np.testing.assert_allclose(result["probabilities"], expected, atol=2e-3)
