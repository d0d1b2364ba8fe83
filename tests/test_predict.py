"""Final model of a GSR experiment on one demo tree, predictions on another with its labels hidden."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors import safe_open
from scipy.stats import binomtest

from painformer.cli import main
from painformer.data.biovid import index_biovid
from painformer.data.demo import generate_demo_dataset
from painformer.data.tables import write_sample_table
from painformer.embed.extract import EmbedSettings, extract_embeddings
from painformer.embed.sources import open_source
from painformer.errors import InputError
from painformer.models import load_painformer
from painformer.predict.run import predict
from painformer.render.store import render_signal_store
from painformer.train.final import FILES

TASK = ["BL1", "PA4"]
MODEL = {
    "num_latents": 16,
    "latent_dim": 32,
    "cross_dim_head": 16,
    "self_heads": 4,
    "self_dim_head": 8,
    "depth": 1,
    "output_dim": 32,
}
PRESET = {
    "epochs": 200,
    "basic_p": 0.0,
    "masking_p": 0.2,
    "mask_range": [0.1, 0.2],
    "label_smoothing": 0.1,
    "dropout": 0.0,
    "lr": 1.0e-3,
    "weight_decay": 0.1,
    "batch_size": 16,
    "warmup_epochs": 4,
    "cooldown_epochs": 4,
    "noise_std": 0.1,
    "normalize": "standard",
    "seed": 0,
}


def _demo_tree(root: Path, *, subjects: int, seed: int, task_only: bool) -> Path:
    generate_demo_dataset(root, subjects=subjects, samples_per_class=4, seed=seed, thermal_pairs=0, workers=1)
    if not task_only:
        return root
    # Only the task's samples, so that the test embeds no more images than it scores.
    listing = pd.read_csv(root / "samples.csv", sep="\t", dtype=str)
    listing[listing["class_name"].isin(TASK)].to_csv(root / "samples.csv", sep="\t", index=False)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("predict")
    train_root = _demo_tree(base / "train_tree", subjects=4, seed=0, task_only=False)
    table, problems = index_biovid(train_root, classes=TASK, check_videos=False)
    assert not problems
    samples = write_sample_table(table, base / "samples.tsv")
    embeddings = base / "embeddings"
    backbone = load_painformer(None)
    render_signal_store(table=table, signal="gsr", representation="waveform", out=base / "images.zarr", progress=False)
    extract_embeddings(
        source=open_source(table=table, modality="gsr", representation="waveform", images=base / "images.zarr"),
        out=embeddings / "gsr" / "waveform.zarr",
        model=backbone,
        modality="gsr",
        representation="waveform",
        settings=EmbedSettings(),
        progress=False,
    )
    definition = {"inputs": ["gsr/waveform"], "fusion": "none", "task": "NP_vs_P4", "protocol": "loso"}
    config = {
        "presets": {"test": PRESET, "short": {**PRESET, "epochs": 5, "warmup_epochs": 1, "cooldown_epochs": 1}},
        "experiments": {
            "gsr_waveform": {**definition, "preset": "test", "model": MODEL},
            "gsr_waveform_wide": {**definition, "preset": "short", "model": {**MODEL, "latent_dim": 48}},
        },
    }
    config_path = base / "experiments.yaml"
    config_path.write_text(yaml.safe_dump(config))
    summary = base / "gsr_waveform.json"
    summary.write_text(
        json.dumps({"mean": {"accuracy": 0.81}, "ci": {"accuracy": {"low": 0.7, "high": 0.9, "n_subjects": 4}}})
    )
    finals = {}
    for name in config["experiments"]:
        out = base / "final" / name
        command = ["train", "--config", str(config_path), "--experiment", name, "--final"]
        command += ["--samples", str(samples), "--embeddings", str(embeddings), "--out", str(out), "--dataset", "demo"]
        if name == "gsr_waveform":
            command += ["--summary", str(summary)]
        assert main(command) == 0
        finals[name] = out

    new_root = _demo_tree(base / "new_tree", subjects=3, seed=11, task_only=True)
    truth = pd.read_csv(new_root / "samples.csv", sep="\t", dtype=str)
    hidden = truth.copy()
    hidden["class_id"] = ""
    hidden["class_name"] = ""
    hidden.to_csv(new_root / "samples.csv", sep="\t", index=False)
    return {"base": base, "finals": finals, "new_root": new_root, "truth": truth}


def test_final_model_folder(trained):
    folder = trained["finals"]["gsr_waveform"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    config = json.loads((folder / "config.json").read_text())
    assert config["classes"] == TASK and config["backbone_sha256"] == "untrained"
    assert config["biosignals"] == "filtered"
    assert config["trained_on"]["n_samples"] == 32 and len(config["trained_on"]["subjects"]) == 4
    assert config["inputs"]["gsr/waveform"]["input"]["upstream"]["render_params"]["size"] == 224
    assert len(config["normalizer"]["fused"]["mean"]) == 160
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        assert handle.metadata()["experiment"] == "gsr_waveform"
        assert "normalizer.fused.mean" in handle.keys()
    card = (folder / "README.md").read_text()
    assert "research only" in card and "not a medical device" in card and "UNTRAINED" in card
    assert "accuracy: 81.0 % (CI 70.0-90.0 %, 4 subjects)" in card


def test_predict_unlabelled_tree_above_chance_and_cache_reused(trained, caplog):
    out = trained["base"] / "predictions.tsv"
    model = trained["finals"]["gsr_waveform"]
    command = ["predict", "--model", str(model), "--root", str(trained["new_root"]), "--out", str(out)]
    assert main(command) == 0
    rows = pd.read_csv(out, sep="\t")
    truth = trained["truth"]
    assert list(rows.columns) == ["sample", "subject", "predicted", "prob_BL1", "prob_PA4"]
    assert sorted(rows["sample"]) == sorted(truth["sample_name"])  # one row per sample
    assert (rows[["prob_BL1", "prob_PA4"]].sum(axis=1) - 1).abs().max() < 1e-5
    merged = rows.merge(truth, left_on="sample", right_on="sample_name")
    correct = int((merged["predicted"] == merged["class_name"]).sum())
    p_value = binomtest(correct, len(merged), 0.5, alternative="greater").pvalue
    assert p_value < 0.05, (correct, len(merged))

    cache = out.with_name("predictions.cache")
    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file() and p.name != "samples.tsv"}
    assert any("embeddings" in str(p) for p in stamps) and any("images" in str(p) for p in stamps)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(command) == 0
    assert "cached embeddings reused (24 samples)" in caplog.text
    assert "samples to embed" not in caplog.text and "samples to render" not in caplog.text
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert pd.read_csv(out, sep="\t").equals(rows)


def test_predict_from_a_sample_table_without_labels(trained):
    table, _ = index_biovid(trained["new_root"].parent / "train_tree", classes=TASK, check_videos=False)
    table = table.drop(columns=["class_id", "class_name"]).head(4)
    path = trained["base"] / "unlabelled.tsv"
    table.to_csv(path, sep="\t", index=False)
    rows = predict(trained["finals"]["gsr_waveform"], samples=path, out=trained["base"] / "table_predictions.tsv")
    assert rows["sample"].tolist() == table["sample"].tolist() and "true" not in rows.columns


def test_predict_refuses_mismatches(trained):
    base, model = trained["base"], trained["finals"]["gsr_waveform"]
    out = base / "refused.tsv"

    raw_tree = base / "raw_tree"
    shutil.copytree(trained["new_root"], raw_tree)
    (raw_tree / "biosignals_filtered").rename(raw_tree / "biosignals_raw")
    with pytest.raises(InputError, match=r"reads gsr from biosignals_filtered/, which this tree lacks"):
        predict(model, root=raw_tree, out=out)

    checkpoint = base / "other.pth"
    checkpoint.write_bytes(b"another backbone")
    with pytest.raises(InputError, match=r"backbone sha256 [0-9a-f]{64} differs from the model's backbone untrained"):
        predict(model, root=trained["new_root"], out=out, checkpoint=checkpoint)

    incomplete = base / "incomplete"
    shutil.copytree(model, incomplete)
    (incomplete / "config.json").unlink()
    with pytest.raises(InputError, match=r"missing config\.json"):
        predict(incomplete, root=trained["new_root"], out=out)

    swapped = base / "swapped"
    shutil.copytree(model, swapped)
    shutil.copy(trained["finals"]["gsr_waveform_wide"] / "model.safetensors", swapped / "model.safetensors")
    with pytest.raises(InputError, match=r"weights of experiment 'gsr_waveform_wide'.*describes 'gsr_waveform'"):
        predict(swapped, root=trained["new_root"], out=out)
    assert not out.exists()
