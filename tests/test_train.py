"""Training per fold on real Zarr embedding stores with class-dependent synthetic embeddings."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import (  # noqa: F401  (one_thread: an autouse fixture)
    DIM,
    FOLD_FILES,
    FUSION_EXPERIMENTS,
    NUM_FRAMES,
    PER_CLASS,
    PRESET,
    SMALL_MIXER,
    SMALL_VIDEO_ENCODER,
    STORES,
    SUBJECTS,
    experiments_config,
    new_embedding_store,
    one_thread,
    synthetic_table,
    write_synthetic_dataset,
    write_synthetic_store,
)

from painformer.cli import main as cli_main
from painformer.data import write_sample_table
from painformer.errors import InputError, StoreError
from painformer.stores import SampleStore
from painformer.train.augment import basic, mask_lengths, masking
from painformer.train.config import list_folds, load_experiments
from painformer.train.data import load_experiment_data, split_fold
from painformer.train.loop import train_fold


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("train"), synthetic_table())


# -- configuration -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"preset": "missing"}, "key 'preset'"),
        ({"overrides": {"dropuot": 0.5}}, "key 'overrides'"),
        ({"overrides": {"dropout": 2.0}}, "'dropout'"),
        ({"inputs": ["rgb/frames", "thermal/frames"], "fusion": "none"}, "key 'fusion'"),
        ({"inputs": ["rgb/frames", "thermal/frames"], "fusion": "video_encoder_concat"}, "video_encoder_concat"),
        (
            {"inputs": ["gsr/waveform", "ecg/spec_psd", "rgb/frames"], "fusion": "video_encoder_concat"},
            "exactly one non-video",
        ),
        ({"inputs": ["rgb/frames", "gsr/waveform"], "fusion": "add", "aggregation": "concat"}, "differ in length"),
        ({"task": "NP_vs_P9"}, "key 'task'"),
        ({"fusion": "mix"}, "key 'fusion'"),
        ({"colour": "red"}, "unknown key"),
        ({"inputs": ["eeg/waveform"]}, "'eeg/waveform': unknown modality 'eeg'"),
        ({"inputs": ["gsr/spectrum"]}, "'gsr/spectrum': unknown representation 'spectrum'"),
        ({"inputs": ["rgb/waveform"]}, "'rgb/waveform': the video modality 'rgb' takes the representation 'frames'"),
        ({"inputs": ["ecg/frames"]}, "'ecg/frames': the signal modality 'ecg'"),
        ({"model": {"num_latentz": 8}}, "key 'model' has unknown EmbeddingMixer keyword(s) ['num_latentz']"),
        ({"model": {"num_classes": 3}}, "key 'model' must not set ['num_classes'] (num_classes: the task fixes it)"),
        ({"model": {"dropout": 0.5}}, "key 'model' must not set ['dropout']"),
        (
            {"inputs": ["gsr/waveform", "rgb/frames"], "fusion": "video_encoder_concat", "video_encoder": {"depth": 2}},
            "key 'video_encoder' has unknown VideoEncoder keyword(s) ['depth']",
        ),
    ],
)
def test_load_experiments_errors_name_experiment_and_key(change, expected):
    config = experiments_config(bad={"inputs": ["gsr/waveform"], "fusion": "none", **change})
    with pytest.raises(InputError) as error:
        load_experiments(config)
    assert "experiment 'bad'" in str(error.value)
    assert expected in str(error.value)


def test_model_keywords_are_checked_against_the_constructors():
    """The keywords read from the models' source are those of the constructors' signatures."""
    import inspect

    from painformer.models import EmbeddingMixer, VideoEncoder
    from painformer.train.config import constructor_keywords

    for cls in (EmbeddingMixer, VideoEncoder):
        assert constructor_keywords(cls.__name__) == tuple(inspect.signature(cls).parameters)
    config = experiments_config(a={"inputs": ["gsr/waveform"], "model": {**SMALL_MIXER, "latent_width": 8}})
    with pytest.raises(InputError) as error:
        load_experiments(config)
    message = str(error.value)
    assert "experiment 'a': key 'model'" in message and "['latent_width']" in message
    assert "valid: [" in message and "'num_latents'" in message and "'attn_dropout'" in message
    assert "'num_classes'" not in message.split("valid:")[1]  # set by the task, so not offered


def test_load_experiments_applies_overrides_and_checks_presets():
    config = experiments_config(a={"inputs": ["gsr/waveform"], "overrides": {"dropout": 0.3, "basic_p": 0.4}})
    experiment = load_experiments(config)["a"]
    assert experiment.preset.dropout == 0.3 and experiment.preset.basic_p == 0.4
    assert experiment.preset.masking_p == PRESET["masking_p"]
    assert experiment.classes == ("BL1", "PA4")
    config["presets"]["p"]["warmup_epochs"] = 30
    with pytest.raises(InputError, match="preset 'p'.*warmup_epochs"):
        load_experiments(config)
    del config["presets"]["p"]["seed"]
    with pytest.raises(InputError, match="preset 'p' lacks key.*seed"):
        load_experiments(config)


def test_shipped_configs_load():
    import yaml

    from painformer.experiment_grid import apply_experiment_grid

    counts = {}
    for name in ("config", "biovid", "ai4pain"):
        with open(Path(__file__).resolve().parents[1] / "config" / f"{name}.yaml") as handle:
            config = yaml.safe_load(handle)
        apply_experiment_grid(config)  # the paper's grids are written as compact blocks
        counts[name] = len(load_experiments(config))
    # Counted by hand, not by the loader: the demo's 7 experiments, BioVid's 58 (Tables V-IX: 45 single
    # inputs, 13 fusions) and AI4Pain's 9.
    assert counts == {"config": 7, "biovid": 58, "ai4pain": 9}


def test_list_folds(dataset):
    table = dataset["table"].copy()
    table.loc[(table["subject"] == "s4") & (table["class_name"] != "PA1"), "class_name"] = "PA1"
    experiments = load_experiments(
        experiments_config(
            loso={"inputs": ["gsr/waveform"]},
            holdout={"inputs": ["gsr/waveform"], "protocol": "holdout"},
        )
    )
    # s4 has only PA1 samples now: no NP vs P4 fold.
    assert list_folds(experiments["loso"], table) == ["s1", "s2", "s3"]
    assert list_folds(experiments["holdout"], table) == ["holdout"]


# -- data ------------------------------------------------------------------------------
def test_data_selects_task_samples_and_splits_without_leakage(dataset):
    experiments = load_experiments(
        experiments_config(**FUSION_EXPERIMENTS, holdout={"inputs": ["gsr/waveform"], "protocol": "holdout"})
    )
    data = load_experiment_data(experiments["eq12"], dataset["table"], dataset["embeddings"])
    assert len(data) == len(SUBJECTS) * 2 * PER_CLASS
    assert set(data.classes) == {"BL1", "PA4"}
    assert data.streams["signal"].shape == (len(data), DIM)
    assert data.streams["video"].shape == (len(data), NUM_FRAMES * DIM)
    for subject in SUBJECTS:
        train_idx, test_idx = split_fold(experiments["eq12"], subject, data)
        assert set(data.subjects[test_idx]) == {subject}
        assert subject not in set(data.subjects[train_idx])
        assert len(train_idx) + len(test_idx) == len(data)
    holdout = load_experiment_data(experiments["holdout"], dataset["table"], dataset["embeddings"])
    train_idx, test_idx = split_fold(experiments["holdout"], "holdout", holdout)
    assert set(holdout.subjects[test_idx]) == {"s4"}
    assert set(holdout.subjects[train_idx]) == {"s1", "s2", "s3"}
    import dataclasses

    leaky = holdout.splits.copy()
    leaky[np.flatnonzero(holdout.subjects == "s4")[0]] = "train"  # one s4 sample on the training side
    with pytest.raises(InputError, match=r"subjects \['s4'\] are in both the training and the test split"):
        split_fold(experiments["holdout"], "holdout", dataclasses.replace(holdout, splits=leaky))
    with pytest.raises(InputError, match="fold 'nobody'"):
        split_fold(experiments["eq12"], "nobody", data)


def test_aggregations_match_the_store(dataset):
    experiments = load_experiments(
        experiments_config(
            cat={"inputs": ["rgb/frames"]},
            total={"inputs": ["rgb/frames"], "aggregation": "sum"},
            average={"inputs": ["rgb/frames"], "aggregation": "mean"},
            add={"inputs": ["rgb/frames", "thermal/frames"], "fusion": "add"},
        )
    )
    store = SampleStore.open_complete(dataset["embeddings"] / "rgb" / "frames.zarr")
    thermal = SampleStore.open_complete(dataset["embeddings"] / "thermal" / "frames.zarr")
    position = store.samples.index("s2-PA4-3")
    raw = store.read(position)  # (frames, 160)
    results = {
        name: load_experiment_data(e, dataset["table"], dataset["embeddings"]) for name, e in experiments.items()
    }
    row = int(np.flatnonzero(results["cat"].samples == "s2-PA4-3")[0])
    np.testing.assert_array_equal(results["cat"].streams["fused"][row], raw.reshape(-1))
    np.testing.assert_allclose(results["total"].streams["fused"][row], raw.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(results["average"].streams["fused"][row], raw.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        results["add"].streams["fused"][row], raw.reshape(-1) + thermal.read(position).reshape(-1), rtol=1e-6
    )


def test_fold_with_one_class_is_an_error_before_training(dataset):
    experiments = load_experiments(
        experiments_config(
            loso={"inputs": ["gsr/waveform"]}, holdout={"inputs": ["gsr/waveform"], "protocol": "holdout"}
        )
    )
    table = dataset["table"]
    # s4 keeps only its BL1 samples: its LOSO test side and the holdout validation side have one class.
    one_sided = table[(table["subject"] != "s4") | (table["class_name"] == "BL1")].reset_index(drop=True)
    data = load_experiment_data(experiments["loso"], one_sided, dataset["embeddings"])
    with pytest.raises(InputError) as error:
        train_fold(experiments["loso"], "s4", data, device=torch.device("cpu"))
    assert str(error.value) == (
        "experiment 'loso', fold 's4': the test side holds fewer than two of the task 'NP_vs_P4' classes "
        f"(samples per class: BL1 {PER_CLASS}, PA4 0)"
    )
    split_fold(experiments["loso"], "s1", data)  # the other folds are fine
    holdout = load_experiment_data(experiments["holdout"], one_sided, dataset["embeddings"])
    with pytest.raises(InputError, match=r"experiment 'holdout', fold 'holdout': the test side .*PA4 0\)"):
        split_fold(experiments["holdout"], "holdout", holdout)

    # The training split of the hold-out protocol (s1-s3) loses its PA4 samples.
    no_train_pain = table[(table["split"] != "train") | (table["class_name"] == "BL1")].reset_index(drop=True)
    holdout = load_experiment_data(experiments["holdout"], no_train_pain, dataset["embeddings"])
    with pytest.raises(InputError) as error:
        split_fold(experiments["holdout"], "holdout", holdout)
    assert "fold 'holdout': the training side" in str(error.value)
    assert f"BL1 {3 * PER_CLASS}, PA4 0" in str(error.value)

    only_pain = table[table["class_name"] == "PA4"].reset_index(drop=True)
    with pytest.raises(InputError, match=rf"experiment 'loso': the sample table .*BL1 0, PA4 {4 * PER_CLASS}\)"):
        load_experiment_data(experiments["loso"], only_pain, dataset["embeddings"])


def test_store_missing_samples_is_an_error(dataset, tmp_path):
    table = dataset["table"]
    partial = table[table["subject"] != "s3"].reset_index(drop=True)
    write_synthetic_store(tmp_path / "gsr" / "waveform.zarr", partial, 1, seed=9)
    experiment = load_experiments(experiments_config(a={"inputs": ["gsr/waveform"]}))["a"]
    with pytest.raises(StoreError, match=r"waveform\.zarr.*not in the store"):
        load_experiment_data(experiment, table, tmp_path)
    with pytest.raises(StoreError, match="not found"):
        load_experiment_data(experiment, table, tmp_path / "nowhere")


def test_normalisation_is_fitted_on_training_samples_only(dataset):
    experiment = load_experiments(experiments_config(a={"inputs": ["gsr/waveform"], "preset": "p"}))["a"]
    experiment = _short(experiment, epochs=5)
    data = load_experiment_data(experiment, dataset["table"], dataset["embeddings"])
    result = train_fold(experiment, "s2", data, device=torch.device("cpu"))
    train_values = data.streams["fused"][data.subjects != "s2"].astype(np.float64)
    all_values = data.streams["fused"].astype(np.float64)
    np.testing.assert_allclose(result.normalizer.means["fused"], train_values.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.normalizer.stds["fused"], train_values.std(axis=0), rtol=1e-5)
    assert not np.allclose(result.normalizer.means["fused"], all_values.mean(axis=0), rtol=1e-5, atol=1e-6)


def _short(experiment, **changes):
    import dataclasses

    return dataclasses.replace(experiment, preset=dataclasses.replace(experiment.preset, **changes))


# -- training --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FUSION_EXPERIMENTS))
def test_each_fusion_learns_separable_classes(dataset, name):
    experiment = load_experiments(experiments_config(**FUSION_EXPERIMENTS))[name]
    data = load_experiment_data(experiment, dataset["table"], dataset["embeddings"])
    result = train_fold(experiment, "s3", data, device=torch.device("cpu"))
    accuracy = float((result.predicted == result.test_labels).mean())
    assert result.test_labels.shape == (2 * PER_CLASS,)
    assert set(result.test_subjects) == {"s3"}
    assert accuracy > 0.9, f"{name}: accuracy {accuracy} on separable data"
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert len(result.history) == PRESET["epochs"]


def test_decision_fusion_averages_the_members_probabilities(dataset):
    experiment = load_experiments(experiments_config(**FUSION_EXPERIMENTS))["decision"]
    data = load_experiment_data(experiment, dataset["table"], dataset["embeddings"])
    result = train_fold(experiment, "s2", data, device=torch.device("cpu"))
    _, test_idx = split_fold(experiment, "s2", data)
    test = result.normalizer.apply(data.subset(test_idx).streams)
    model = result.model.eval()
    assert len(model.members) == 3 and model.stream_names == tuple(experiment.inputs)
    with torch.no_grad():
        logits = [
            member(torch.from_numpy(test[name])).double() for name, member in zip(model.stream_names, model.members)
        ]
    members = np.stack([item.softmax(dim=1).numpy() for item in logits])  # (3, n_test, 2)
    np.testing.assert_allclose(result.probabilities, members.mean(axis=0), rtol=0, atol=1e-6)
    # The members disagree, so averaging probabilities differs from averaging logits.
    assert np.abs(members[0] - members[1]).max() > 1e-3
    pooled_logits = torch.stack(logits).mean(dim=0).softmax(dim=1).numpy()
    assert np.abs(result.probabilities - pooled_logits).max() > 1e-4


def test_training_is_bit_identical_for_a_seed(dataset):
    experiments = load_experiments(experiments_config(**FUSION_EXPERIMENTS))
    experiment = _short(experiments["eq12"], epochs=6)
    data = load_experiment_data(experiment, dataset["table"], dataset["embeddings"])
    first = train_fold(experiment, "s1", data, device=torch.device("cpu"))
    second = train_fold(experiment, "s1", data, device=torch.device("cpu"))
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    assert first.history == second.history
    other_seed = train_fold(_short(experiment, seed=1), "s1", data, device=torch.device("cpu"))
    assert not np.array_equal(first.probabilities, other_seed.probabilities)


def test_learning_rate_warms_up_decays_and_cools_down(dataset):
    experiment = load_experiments(experiments_config(a={"inputs": ["gsr/waveform"]}))["a"]
    data = load_experiment_data(experiment, dataset["table"], dataset["embeddings"])
    result = train_fold(experiment, "s4", data, device=torch.device("cpu"))
    lrs = [row["lr"] for row in result.history]
    peak = PRESET["lr"]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(peak)  # 2 warm-up epochs
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert lrs[-1] == lrs[-2] == pytest.approx(peak * 0.01)  # 2 cool-down epochs at the floor


# -- augmentations -----------------------------------------------------------------------
def test_masking_zeroes_one_contiguous_run_of_the_drawn_length():
    x = torch.ones(64, 200)
    out = masking(x, p=1.0, mask_range=(0.1, 0.2), generator=torch.Generator().manual_seed(0))
    for row in out:
        zeros = torch.nonzero(row == 0).flatten()
        assert 20 <= zeros.numel() <= 40
        assert int(zeros[-1] - zeros[0]) + 1 == zeros.numel()  # contiguous
    fixed = masking(x, p=1.0, mask_range=(0.15, 0.15), generator=torch.Generator().manual_seed(1))
    assert ((fixed == 0).sum(dim=1) == 30).all()
    assert torch.equal(mask_lengths(200, torch.tensor([0.1, 0.2])), torch.tensor([20, 40]))
    untouched = masking(x, p=0.0, mask_range=(0.1, 0.2), generator=torch.Generator().manual_seed(0))
    assert torch.equal(untouched, x)


def test_basic_inverts_polarity_and_adds_noise():
    x = torch.arange(1, 401, dtype=torch.float32).reshape(2, 200)
    inverted = basic(x, p=1.0, noise_std=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(inverted, -x)
    noisy = basic(x, p=1.0, noise_std=0.5, generator=torch.Generator().manual_seed(0))
    residual = noisy + x
    assert 0.4 < float(residual.std()) < 0.6 and abs(float(residual.mean())) < 0.1
    kept = basic(x, p=0.0, noise_std=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kept, x)
    half = basic(torch.ones(1000, 4), p=0.5, noise_std=0.0, generator=torch.Generator().manual_seed(0))
    assert 400 < int((half[:, 0] < 0).sum()) < 600


# -- command line ------------------------------------------------------------------------
def test_cli_writes_the_fold_folder(dataset, tmp_path, capsys):
    import yaml

    config = experiments_config(concat=FUSION_EXPERIMENTS["concat"])
    config["experiments"]["concat"]["overrides"] = {"epochs": 8}
    config_path = tmp_path / "experiment.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "runs" / "concat" / "fold-s2"
    argv = [
        "train",
        "--config",
        str(config_path),
        "--experiment",
        "concat",
        "--fold",
        "s2",
        "--samples",
        str(dataset["samples"]),
        "--embeddings",
        str(dataset["embeddings"]),
        "--out",
        str(out),
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    assert cli_main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == FOLD_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {
        "experiment",
        "fold",
        "classes",
        "test_subjects",
        "n_train",
        "n_test",
        "accuracy",
        "sensitivity",
        "specificity",
        "precision",
        "f1",
        "auc",
        "recall_macro",
        "f1_macro",
        "confusion",
        "epochs",
        "seed",
        "train_seconds",
        "device",
    }
    assert metrics["classes"] == ["BL1", "PA4"] and metrics["test_subjects"] == ["s2"]
    assert metrics["n_test"] == 2 * PER_CLASS and metrics["n_train"] == 3 * 2 * PER_CLASS
    assert metrics["epochs"] == 8 and metrics["device"] == "cpu"
    assert np.array(metrics["confusion"]).sum() == metrics["n_test"]
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(predictions.columns) == ["sample", "subject", "true", "predicted", "prob_BL1", "prob_PA4"]
    assert set(predictions["subject"]) == {"s2"}
    accuracy = float((predictions["true"] == predictions["predicted"]).mean())
    assert accuracy == pytest.approx(metrics["accuracy"])
    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "lr", "train_loss", "train_accuracy"] and len(history) == 8
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["preset"]["epochs"] == 8 and resolved["fold"] == "s2"
    checkpoint = torch.load(out / "model.pt", weights_only=True)
    assert checkpoint["classes"] == ["BL1", "PA4"] and checkpoint["state_dict"]

    # A bad request is a one-line error naming the problem.
    argv[argv.index("--experiment") + 1] = "absent"
    capsys.readouterr()
    assert cli_main(argv) != 0
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and str(config_path) in error and "no experiment 'absent'" in error


def test_cli_refuses_an_unknown_modality_before_reading_anything(dataset, tmp_path, capsys):
    import yaml

    config = experiments_config(ghost={"inputs": ["eeg/waveform"]})
    config_path = tmp_path / "experiment.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "fold-s1"
    code = cli_main(
        [
            "train",
            "--config",
            str(config_path),
            "--experiment",
            "ghost",
            "--fold",
            "s1",
            "--samples",
            str(dataset["samples"]),
            "--embeddings",
            str(dataset["embeddings"]),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code != 0
    error = capsys.readouterr().err
    assert str(config_path) in error and "experiment 'ghost'" in error and "unknown modality 'eeg'" in error
    assert not out.exists()


# -- input scale and fNIRS aggregation ----------------------------------------------------
def test_fnirs_channels_are_summed_beside_a_video_by_default(dataset, tmp_path):
    embeddings = tmp_path / "embeddings"
    for name in ("rgb", "fnirs"):
        (embeddings / name).mkdir(parents=True)
    (embeddings / "rgb" / "frames.zarr").symlink_to(dataset["embeddings"] / "rgb" / "frames.zarr")
    write_synthetic_store(embeddings / "fnirs" / "waveform.zarr", dataset["table"], 4, seed=9)
    base = {"inputs": ["rgb/frames", "fnirs/waveform"], "fusion": "add", "aggregation": "sum"}
    experiments = load_experiments(experiments_config(total=base, average={**base, "fnirs_aggregation": "mean"}))
    assert experiments["total"].input_aggregation("fnirs/waveform") == "sum"
    assert experiments["average"].input_aggregation("fnirs/waveform") == "mean"
    assert experiments["total"].to_dict()["fnirs_aggregation"] == "sum"
    frames = SampleStore.open_complete(embeddings / "rgb" / "frames.zarr")
    channels = SampleStore.open_complete(embeddings / "fnirs" / "waveform.zarr")
    position = frames.samples.index("s1-BL1-2")
    for name, reduce in (("total", np.sum), ("average", np.mean)):
        data = load_experiment_data(experiments[name], dataset["table"], embeddings)
        row = int(np.flatnonzero(data.samples == "s1-BL1-2")[0])
        expected = frames.read(position).sum(axis=0) + reduce(channels.read(position), axis=0)
        np.testing.assert_allclose(data.streams["fused"][row], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="experiment 'bad': key 'fnirs_aggregation'"):
        load_experiments(experiments_config(bad={**base, "fnirs_aggregation": "concat"}))


def test_mixer_token_options_are_checked_in_the_config():
    config = experiments_config(
        bad={"inputs": ["gsr/waveform"], "model": {**SMALL_MIXER, "position_encoding": "learned"}}
    )
    with pytest.raises(InputError, match="experiment 'bad': key 'model': position_encoding must be one of"):
        load_experiments(config)
    config = experiments_config(bad={"inputs": ["gsr/waveform"], "model": {**SMALL_MIXER, "num_latents": 0}})
    with pytest.raises(InputError, match="experiment 'bad': key 'model': num_latents must be a positive integer"):
        load_experiments(config)
    config = experiments_config(ok={"inputs": ["gsr/waveform"], "model": {**SMALL_MIXER, "input_norm": "rms"}})
    assert load_experiments(config)["ok"].model["input_norm"] == "rms"


def test_pooled_accuracy_does_not_depend_on_the_input_scale(dataset):
    """normalize: none, the same experiment on x1 and x300 embeddings: pooled LOSO accuracies within 5 points."""
    import dataclasses

    model = {**SMALL_MIXER, "position_encoding": "nyquist", "num_freq_bands": 16, "input_norm": "rms"}
    experiment = load_experiments(
        experiments_config(
            a={"inputs": ["gsr/waveform"], "model": model, "overrides": {"normalize": "none", "epochs": 20}}
        )
    )["a"]
    data = load_experiment_data(experiment, dataset["table"], dataset["embeddings"])
    scaled = dataclasses.replace(data, streams={name: 300.0 * values for name, values in data.streams.items()})
    accuracies = []
    for inputs in (data, scaled):
        correct = 0
        for fold in SUBJECTS:
            result = train_fold(experiment, fold, inputs, device=torch.device("cpu"))
            correct += int((result.predicted == result.test_labels).sum())
        accuracies.append(correct / len(data))
    assert accuracies[0] > 0.75, f"x1 run at {accuracies[0]:.2f}, not above chance"
    assert abs(accuracies[0] - accuracies[1]) <= 0.05, f"x1 {accuracies[0]:.3f} vs x300 {accuracies[1]:.3f}"


def _zero_mean_signal_store(path, table: pd.DataFrame, *, length: int, seed: int) -> None:
    """N(0, 1) embeddings whose class shifts half of 80 dimensions up and half down by the same amount:
    the embedding's mean over its dimensions carries no class, a linear rule on those dimensions does."""
    rng = np.random.default_rng(seed)
    store = new_embedding_store(path, table, item_shape=(1, length), fingerprint={"zero-mean signal": seed})
    direction = np.zeros(length)
    direction[rng.choice(length, size=80, replace=False)] = np.repeat([1.0, -1.0], 40)
    shift = {"BL1": -0.5, "PA1": 0.0, "PA4": 0.5}
    for i, class_name in enumerate(table["class_name"]):
        store.write(i, (rng.normal(size=(1, length)) + shift[class_name] * direction).astype(np.float32))


def test_modulated_tokens_learn_what_the_embedding_mean_does_not_carry(tmp_path):
    """The video Mixers' collapse in miniature: a 640-long input whose class is invisible in its mean.

    With the paper's scalar tokens the Mixer starts by averaging its tokens evenly, which here sees no
    class, and stays on one class; with value-modulated tokens the same even average is a projection
    of the whole embedding, and the Mixer fits its training side and generalises."""
    table = synthetic_table()
    write_sample_table(table, tmp_path / "samples.tsv")
    _zero_mean_signal_store(tmp_path / "embeddings" / "depth" / "frames.zarr", table, length=640, seed=3)
    model = {**SMALL_MIXER, "position_encoding": "nyquist", "num_freq_bands": 16}
    results = {}
    for tokens in ("scalar", "modulated"):
        experiment = load_experiments(
            experiments_config(
                x={
                    "inputs": ["depth/frames"],
                    "model": {**model, "token_features": tokens},
                    "overrides": {"epochs": 40},
                }
            )
        )["x"]
        data = load_experiment_data(experiment, table, tmp_path / "embeddings")
        folds = [train_fold(experiment, fold, data, device=torch.device("cpu")) for fold in ("s1", "s4")]
        results[tokens] = {
            "train": np.mean([fold.history[-1]["train_accuracy"] for fold in folds]),
            "test": np.mean([np.mean(fold.predicted == fold.test_labels) for fold in folds]),
            "one_class": sum(len(set(fold.predicted)) == 1 for fold in folds),
        }
    assert results["modulated"]["train"] > 0.75, results  # on augmented batches
    assert results["modulated"]["test"] >= 0.75, results
    assert results["modulated"]["one_class"] == 0, results
    # The diagnosed cause: the paper's tokens leave the Mixer at its flat start on this input.
    assert results["scalar"]["train"] < 0.7, results


def test_model_configs_are_the_constructors_defaults_and_need_no_torch():
    """The torch-free config dataclasses list every constructor keyword with the constructor's default."""
    import dataclasses
    import inspect
    import subprocess
    import sys

    from painformer.model_config import MixerConfig, VideoEncoderConfig
    from painformer.models import EmbeddingMixer, VideoEncoder

    for cls, config in ((EmbeddingMixer, MixerConfig), (VideoEncoder, VideoEncoderConfig)):
        defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items()}
        assert defaults == {f.name: f.default for f in dataclasses.fields(config)}
    assert EmbeddingMixer(3, **SMALL_MIXER).config == MixerConfig(num_classes=3, **SMALL_MIXER)
    code = "import sys, painformer.train.config as c; c.load_experiments; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    # Training needs torch but not timm (nor torchvision): the Mixer joins timm's registry when timm is imported.
    code = (
        "import sys, painformer.models, painformer.train.stack, painformer.train.probe, painformer.train.final;"
        " assert 'timm' not in sys.modules and 'torchvision' not in sys.modules;"
        " import timm; assert {'embedding_mixer', 'video_encoder', 'painformer'} <= set(timm.list_models())"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
