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
from tree_helpers import make_ai4pain_tree, write_test_video

from painformer.cli import main
from painformer.data.biovid import index_biovid
from painformer.data.demo import generate_demo_dataset
from painformer.data.tables import write_sample_table
from painformer.embed.extract import EmbedSettings, extract_embeddings
from painformer.embed.sources import open_source
from painformer.errors import InputError
from painformer.models import load_painformer
from painformer.predict.model import open_final_model
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
            # As the workflow passes it; the other model takes the default (biovid without fNIRS inputs).
            command += ["--summary", str(summary), "--dataset-format", "biovid"]
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
    assert config["dataset_format"] == "biovid" and config["ai4pain_layout"] is None
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


def test_a_config_without_a_dataset_format_is_a_biovid_model(trained):
    # Final models written before the format was recorded: BioVid layout, as they were then.
    older = trained["base"] / "older_config"
    shutil.copytree(trained["finals"]["gsr_waveform"], older)
    config = json.loads((older / "config.json").read_text())
    assert config.pop("dataset_format") == "biovid" and config.pop("ai4pain_layout") is None
    (older / "config.json").write_text(json.dumps(config))
    model = open_final_model(older)
    assert model.data_format == "biovid" and model.layout is None


# A video-fusion final model. Its backbone is untrained and the tiny demo has few samples, so its
# predictions are not expected to beat chance: these tests check the pipeline (frames made with the
# bundled thermal generator and the recorded depth model, the cache, the refusals), not accuracy.
VIDEO_INPUTS = ["rgb/frames", "thermal/frames", "depth/frames"]
VIDEO = {"num_frames": 2, "crop": "center", "fps": 25.0}


def _embed(table, modality: str, out: Path, backbone, images: Path | None = None) -> None:
    source = open_source(table=table, modality=modality, representation="frames", images=images, **VIDEO)
    extract_embeddings(
        source=source,
        out=out / modality / "frames.zarr",
        model=backbone,
        modality=modality,
        representation="frames",
        settings=EmbedSettings(),
        progress=False,
    )


@pytest.fixture(scope="module")
def video_trained(tmp_path_factory) -> dict:
    from painformer.depth.apply import DepthSettings, apply_depth
    from painformer.depth.model import make_tiny_depth_model
    from painformer.thermal.apply import ApplySettings, apply_generator
    from painformer.thermal.discriminator import PatchConfig
    from painformer.thermal.generator import UNetConfig
    from painformer.thermal.train import TrainSettings, train_generator

    base = tmp_path_factory.mktemp("predict_video")
    root = base / "train_tree"
    generate_demo_dataset(root, subjects=2, samples_per_class=2, seed=0, thermal_pairs=8, workers=1)
    table, problems = index_biovid(root, classes=TASK, check_videos=True)
    assert not problems
    samples = write_sample_table(table, base / "samples.tsv")
    # The run's own generator, as the demo trains one: it exists only in this results folder.
    generator = base / "models" / "thermal_generator.pt"
    tiny = TrainSettings(
        epochs=1,
        image_size=32,
        batch_size=4,
        generator=UNetConfig(depth=3, base_width=8, max_width=32),
        discriminator=PatchConfig(base_width=8, num_layers=2),
    )
    train_generator(pairs_dir=root / "thermal_pairs", out=generator, settings=tiny, device="cpu")
    depth_dir = make_tiny_depth_model(base / "models" / "depth_tiny", seed=0)
    frames, embeddings = base / "frames", base / "embeddings"
    apply_generator(
        table=table, checkpoint=generator, out=frames / "thermal.zarr", settings=ApplySettings(**VIDEO, device="cpu")
    )
    apply_depth(
        table=table, model_dir=depth_dir, out=frames / "depth.zarr", settings=DepthSettings(**VIDEO, device="cpu")
    )
    backbone = load_painformer(None)
    _embed(table, "rgb", embeddings, backbone)
    for modality in ("thermal", "depth"):
        _embed(table, modality, embeddings, backbone, images=frames / f"{modality}.zarr")
    short = {**PRESET, "epochs": 5, "warmup_epochs": 1, "cooldown_epochs": 1}
    definition = {"inputs": VIDEO_INPUTS, "fusion": "add", "aggregation": "concat", "task": "NP_vs_P4"}
    config = {"presets": {"short": short}, "experiments": {"video": {**definition, "preset": "short", "model": MODEL}}}
    config_path = base / "experiments.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = base / "final" / "video"
    command = ["train", "--config", str(config_path), "--experiment", "video", "--final", "--samples", str(samples)]
    command += ["--embeddings", str(embeddings), "--out", str(out)]
    assert main(command + ["--thermal-checkpoint", str(generator), "--depth-model", str(depth_dir)]) == 0

    new_root = _demo_tree(base / "new_tree", subjects=2, seed=11, task_only=True)
    listing = pd.read_csv(new_root / "samples.csv", sep="\t", dtype=str)
    listing["class_id"] = ""
    listing["class_name"] = ""
    listing.to_csv(new_root / "samples.csv", sep="\t", index=False)
    return {
        "base": base,
        "final": out,
        "new_root": new_root,
        "generator": generator,
        "samples": listing,
        "train": command,
        "depth_dir": depth_dir,
    }


@pytest.mark.slow
def test_video_final_model_bundles_the_generator_and_records_the_depth_model(video_trained):
    from painformer.depth.model import model_dir_sha256
    from painformer.utils import sha256_file

    folder = video_trained["final"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "thermal_generator.pt"])
    config = json.loads((folder / "config.json").read_text())
    assert config["thermal_generator"]["sha256"] == sha256_file(video_trained["generator"])
    assert sha256_file(folder / "thermal_generator.pt") == sha256_file(video_trained["generator"])
    depth_dir = video_trained["base"] / "models" / "depth_tiny"
    assert config["depth_model"]["sha256"] == model_dir_sha256(depth_dir)
    assert config["depth_model"]["untrained_tiny"] is True
    assert {key: config["video"][key] for key in VIDEO} == VIDEO
    card = (folder / "README.md").read_text()
    assert "thermal_generator.pt" in card and "UNTRAINED tiny stand-in" in card


@pytest.mark.slow
def test_predict_video_model_and_cache_reused(video_trained, caplog):
    out = video_trained["base"] / "video_predictions.tsv"
    command = ["predict", "--model", str(video_trained["final"]), "--root", str(video_trained["new_root"])]
    command += ["--out", str(out)]
    assert main(command) == 0
    rows = pd.read_csv(out, sep="\t")
    assert list(rows.columns) == ["sample", "subject", "predicted", "prob_BL1", "prob_PA4"]
    assert sorted(rows["sample"]) == sorted(video_trained["samples"]["sample_name"])  # one row per sample
    assert (rows[["prob_BL1", "prob_PA4"]].sum(axis=1) - 1).abs().max() < 1e-5

    cache = out.with_name("video_predictions.cache")
    stores = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file() and p.name != "samples.tsv"}
    for made in ("frames/thermal.zarr", "frames/depth.zarr", "embeddings/rgb/frames.zarr", "models/depth_tiny"):
        assert any(made in str(p) for p in stores), made
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(command) == 0
    assert caplog.text.count(f"cached embeddings reused ({len(rows)} samples)") == len(VIDEO_INPUTS)
    assert "rebuilding the untrained tiny depth" not in caplog.text
    assert {p: p.stat().st_mtime_ns for p in stores} == stores
    assert pd.read_csv(out, sep="\t").equals(rows)


@pytest.mark.slow
def test_final_video_model_needs_its_frame_models(video_trained, capsys):
    command = video_trained["train"] + ["--out", str(video_trained["base"] / "refused_final")]
    assert main(command + ["--depth-model", str(video_trained["depth_dir"])]) != 0
    assert "reads thermal/frames: give the thermal generator that made its frames" in capsys.readouterr().err
    other = video_trained["base"] / "other.pt"
    shutil.copy(video_trained["generator"], other)
    with open(other, "ab") as handle:
        handle.write(b"\0")
    assert main(command + ["--thermal-checkpoint", str(other), "--depth-model", str(video_trained["depth_dir"])]) != 0
    assert "is not the generator that made the thermal frames" in capsys.readouterr().err
    assert main(command + ["--thermal-checkpoint", str(video_trained["generator"])]) != 0
    assert "reads depth/frames: give the depth model directory" in capsys.readouterr().err
    assert not (video_trained["base"] / "refused_final").exists()


@pytest.mark.slow
def test_predict_video_refuses_a_missing_generator_and_another_depth_model(video_trained):
    from painformer.depth.model import make_tiny_depth_model

    base, model, root = video_trained["base"], video_trained["final"], video_trained["new_root"]
    out = base / "video_refused.tsv"
    bare = base / "without_generator"
    shutil.copytree(model, bare)
    (bare / "thermal_generator.pt").unlink()
    with pytest.raises(InputError, match=r"folder lacks thermal_generator\.pt, the thermal generator"):
        predict(bare, root=root, out=out)

    changed = base / "changed_generator"
    shutil.copytree(model, changed)
    with open(changed / "thermal_generator.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InputError, match=r"thermal generator sha256 [0-9a-f]{64} differs from the one the model"):
        predict(changed, root=root, out=out)

    no_videos = base / "no_videos"
    shutil.copytree(root, no_videos)
    shutil.rmtree(no_videos / "video")
    with pytest.raises(InputError, match=r"from video/, which this tree lacks"):
        predict(model, root=no_videos, out=out)

    other = make_tiny_depth_model(base / "other_depth", seed=1)
    with pytest.raises(
        InputError, match=r"has sha256 [0-9a-f]{64}, which differs from the model's depth model [0-9a-f]{64}"
    ):
        predict(model, root=root, out=out, depth_model=other)
    assert not out.exists()


# An fNIRS final model on an AI4Pain tree read with a non-default layout (4 channels, one of them
# excluded), so that predict must read new trees with the recorded layout, not the default one.
# The signals are random walks with no class information, so these tests check the pipeline
# (indexing, rendering, embedding, aggregating channels, refusals), not accuracy.
AI4PAIN_LAYOUT = {"n_channels": 4, "excluded_channels": ["S2_D3"], "min_seconds": 2.0}
AI4PAIN_CHANNELS = ("S1_D1", "S1_D2", "S2_D2", "S2_D3")
AI4PAIN_CLASSES = ["No", "Low", "High"]


@pytest.fixture(scope="module")
def fnirs_trained(tmp_path_factory) -> dict:
    from functools import partial

    from painformer.data.ai4pain import Ai4PainLayout, index_ai4pain
    from painformer.data.signals import load_signal

    base = tmp_path_factory.mktemp("predict_fnirs")
    video = write_test_video(base / "clip.mp4")
    layout = Ai4PainLayout.from_mapping(AI4PAIN_LAYOUT)
    root = base / "train_tree"
    make_ai4pain_tree(root, video, splits={"train": ["1", "2"], "validation": ["3"]}, channels=AI4PAIN_CHANNELS)
    table, problems = index_ai4pain(root, layout=layout)
    assert not problems and len(table) == 9
    samples = write_sample_table(table, base / "samples.tsv")
    images, embeddings = base / "images.zarr", base / "embeddings"
    loader = partial(load_signal, layout=layout)
    render_signal_store(
        table=table, signal="fnirs", representation="waveform", out=images, loader=loader, progress=False
    )
    extract_embeddings(
        source=open_source(table=table, modality="fnirs", representation="waveform", images=images),
        out=embeddings / "fnirs" / "waveform.zarr",
        model=load_painformer(None),
        modality="fnirs",
        representation="waveform",
        settings=EmbedSettings(),
        progress=False,
    )
    _embed(table, "rgb", embeddings, load_painformer(None))
    short = {**PRESET, "epochs": 5, "warmup_epochs": 1, "cooldown_epochs": 1}
    definition = {"inputs": ["fnirs/waveform"], "fusion": "none", "aggregation": "mean", "task": "ai4pain_3class"}
    definition |= {"protocol": "holdout", "preset": "short", "model": MODEL}
    # Video frames summed, fNIRS channels averaged, the two added (the paper's AI4Pain fusion).
    fusion = {**definition, "inputs": ["rgb/frames", "fnirs/waveform"], "fusion": "add", "aggregation": "sum"}
    experiments = {"fnirs": definition, "fusion": {**fusion, "fnirs_aggregation": "mean"}}
    config_path = base / "experiments.yaml"
    config_path.write_text(yaml.safe_dump({"presets": {"short": short}, "experiments": experiments}))
    finals = {}
    for name in experiments:
        finals[name] = base / "final" / name
        command = ["train", "--config", str(config_path), "--experiment", name, "--final", "--samples", str(samples)]
        command += ["--embeddings", str(embeddings), "--out", str(finals[name])]
        assert main([*command, "--ai4pain-layout", json.dumps(AI4PAIN_LAYOUT)]) == 0
    # New recordings: two unseen subjects, no labels in the names, no videos (the model reads none).
    new_root = base / "new_tree"
    names = make_ai4pain_tree(
        new_root, None, splits={"test": ["7", "8"]}, labelled=False, channels=AI4PAIN_CHANNELS, seed=100
    )
    return {
        "base": base,
        "final": finals["fnirs"],
        "fusion": finals["fusion"],
        "new_root": new_root,
        "names": names,
        "video": video,
        "train": command,
    }


@pytest.mark.slow
def test_fnirs_final_model_records_the_ai4pain_layout(fnirs_trained, capsys):
    config = json.loads((fnirs_trained["final"] / "config.json").read_text())
    assert config["dataset_format"] == "ai4pain" and config["biosignals"] is None
    assert config["ai4pain_layout"]["n_channels"] == 4 and config["ai4pain_layout"]["excluded_channels"] == ["S2_D3"]
    assert config["biosignal_sampling_rate_hz"] == 50.0 and config["classes"] == AI4PAIN_CLASSES
    assert "dataset format: ai4pain" in (fnirs_trained["final"] / "README.md").read_text()
    capsys.readouterr()
    assert main([*fnirs_trained["train"], "--dataset-format", "biovid"]) != 0
    assert "reads fNIRS, which only AI4Pain-format trees hold" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_unlabelled_ai4pain_tree_and_cache_reused(fnirs_trained, caplog):
    out = fnirs_trained["base"] / "fnirs_predictions.tsv"
    command = ["predict", "--model", str(fnirs_trained["final"]), "--root", str(fnirs_trained["new_root"])]
    command += ["--out", str(out)]
    assert main(command) == 0
    rows = pd.read_csv(out, sep="\t", dtype={"subject": str})
    probabilities = [f"prob_{name}" for name in AI4PAIN_CLASSES]
    assert list(rows.columns) == ["sample", "subject", "predicted", *probabilities]
    assert sorted(rows["sample"]) == sorted(fnirs_trained["names"])  # one row per sample
    assert sorted(set(rows["subject"])) == ["7", "8"] and set(rows["predicted"]) <= set(AI4PAIN_CLASSES)
    assert (rows[probabilities].sum(axis=1) - 1).abs().max() < 1e-5

    # Three good channels per sample, rendered with the recorded layout (the default would find 4 of 24).
    from painformer.stores import SampleStore

    cache = out.with_name("fnirs_predictions.cache")
    assert SampleStore.open(cache / "images" / "fnirs" / "waveform.zarr", mode="r").array.shape[1] == 3
    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file() and p.name != "samples.tsv"}
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(command) == 0
    assert f"cached embeddings reused ({len(rows)} samples)" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert pd.read_csv(out, sep="\t", dtype={"subject": str}).equals(rows)


@pytest.mark.slow
def test_predict_ai4pain_refuses_a_tree_without_the_models_signals(fnirs_trained):
    base, model = fnirs_trained["base"], fnirs_trained["final"]
    out = base / "fnirs_refused.tsv"
    videos_only = base / "videos_only"
    names = make_ai4pain_tree(videos_only, fnirs_trained["video"], splits={"test": ["9"]}, labelled=False)
    for name in names:
        (videos_only / "test" / "fnirs" / "9" / f"{name}.csv").unlink()
    (videos_only / "test" / "fnirs" / "9").rmdir()
    (videos_only / "test" / "fnirs").rmdir()
    with pytest.raises(InputError, match=r"reads fnirs; this tree has no fNIRS \(test/fnirs/ missing\)"):
        predict(model, root=videos_only, out=out)

    other_channels = base / "other_channels"
    make_ai4pain_tree(other_channels, None, splits={"test": ["9"]}, labelled=False)  # the default 24 channels
    with pytest.raises(InputError, match=r"3 problems: .*24 _HbO2 columns, expected 4"):
        predict(model, root=other_channels, out=out)
    assert not out.exists()


@pytest.mark.slow
def test_predict_ai4pain_video_and_fnirs_fusion(fnirs_trained):
    base, model = fnirs_trained["base"], fnirs_trained["fusion"]
    out = base / "fusion_predictions.tsv"
    # The fNIRS-only tree has no videos, which this model reads.
    with pytest.raises(InputError, match=r"reads rgb, fnirs; this tree has no videos \(test/video/ missing\)"):
        predict(model, root=fnirs_trained["new_root"], out=out)
    with_videos = base / "with_videos"
    names = make_ai4pain_tree(
        with_videos, fnirs_trained["video"], splits={"test": ["9"]}, labelled=False, channels=AI4PAIN_CHANNELS
    )
    rows = predict(model, root=with_videos, out=out)
    assert sorted(rows["sample"]) == sorted(names) and "true" not in rows.columns
    probabilities = rows[[f"prob_{name}" for name in AI4PAIN_CLASSES]]
    assert (probabilities.sum(axis=1) - 1).abs().max() < 1e-5
    cache = base / "fusion_predictions.cache" / "embeddings"
    assert (cache / "rgb" / "frames.zarr").is_dir() and (cache / "fnirs" / "waveform.zarr").is_dir()


@pytest.mark.slow
def test_predict_ai4pain_tree_named_differently(fnirs_trained):
    base, model = fnirs_trained["base"], fnirs_trained["final"]
    out = base / "renamed_predictions.tsv"
    renamed = base / "renamed"
    names = make_ai4pain_tree(renamed, None, splits={"pilot": ["9"]}, labelled=False, channels=AI4PAIN_CHANNELS)
    (renamed / "pilot" / "fnirs").rename(renamed / "pilot" / "nirs")
    with pytest.raises(InputError, match=r"none of the split folders \['train', 'validation', 'test'\]"):
        predict(model, root=renamed, out=out)
    with pytest.raises(InputError, match=r"\['n_channels'\] say how the model's fNIRS files are read"):
        predict(model, root=renamed, out=out, ai4pain_layout='{"n_channels": 24}')
    command = ["predict", "--model", str(model), "--root", str(renamed), "--out", str(out)]
    assert main([*command, "--ai4pain-layout", '{"splits": ["pilot"], "fnirs_dir": "nirs"}']) == 0
    assert sorted(pd.read_csv(out, sep="\t")["sample"]) == sorted(names)


def test_prediction_table_fills_missing_labels_and_checks_names(tmp_path):
    from painformer.predict.index import UNLABELLED, read_prediction_table

    path = tmp_path / "new.tsv"
    path.write_text("sample\tsubject\tbiosignals\ns2-x\ts2\tb/s2.csv\ns1-x\ts1\tb/s1.csv\n")
    table = read_prediction_table(path)
    assert table["sample"].tolist() == ["s2-x", "s1-x"]
    assert set(table["class_name"]) == {UNLABELLED} and table["class_id"].tolist() == [0, 0]
    assert set(table["dataset"]) == {"predict"} and set(table["video"]) == {""}
    path.write_text("sample\tsubject\tbiosignals\nbad name\ts1\tb/s1.csv\n")
    with pytest.raises(InputError, match=f"^{path}: .*bad name"):
        read_prediction_table(path)
    with pytest.raises(InputError, match="sample table not found"):
        read_prediction_table(tmp_path / "missing.tsv")
