"""Multi-task pretraining: task files, batch mix, Eq. (10), checkpoints and resume.

The backbone is the full PainFormer at 224x224 (the published checkpoint
format must come out), so the training runs are a few single-image-per-task
steps.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from painformer.cli import main
from painformer.errors import InputError
from painformer.models import load_painformer
from painformer.pretrain import (
    ProportionalBatches,
    batch_quotas,
    load_pretrain_config,
    pretrain,
    read_log,
    weighted_total_loss,
)


def _write_folder_task(root: Path, *, classes: int, per_class: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = np.clip(rng.normal(60 + 120 * label, 30, size=(224, 224, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"{i}.png")
    return root


def _write_h5_task(path: Path, *, n: int, classes: int, seed: int, subjects: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as handle:
        handle["images"] = rng.integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
        handle["labels"] = np.arange(n) % classes
        if subjects:
            handle["subjects"] = np.asarray([f"s{i % subjects}" for i in range(n)], dtype="S")
    return path


@pytest.fixture(scope="module")
def task_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tasks")
    return {
        "folder": _write_folder_task(root / "folder", classes=2, per_class=2, seed=0),
        "h5": _write_h5_task(root / "task.h5", n=6, classes=3, seed=1),
        "root": root,
    }


def _write_yaml(path: Path, tasks: list[dict], **training) -> Path:
    settings = {
        "batch_size": 2,
        "epochs": 2,
        "lr": 1e-3,
        "warmup_epochs": 0,
        "cooldown_epochs": 0,
        "steps_per_epoch": 1,
        "head_hidden": 16,
        "seed": 3,
    }
    settings.update(training)
    path.write_text(yaml.safe_dump({"tasks": tasks, "training": settings}))
    return path


def _tasks(files: dict[str, Path]) -> list[dict]:
    return [
        {"name": "faces", "dataset": str(files["folder"]), "num_classes": 2},
        {"name": "signals", "dataset": str(files["h5"]), "num_classes": 3},
    ]


def test_batch_quotas_are_proportional_and_sum_to_the_batch():
    assert batch_quotas([30, 10, 5], 9) == [6, 2, 1]
    assert batch_quotas([3_310_000, 15_000, 4_000], 126) == [124, 1, 1]  # every task keeps a place
    assert batch_quotas([1, 1], 126) == [63, 63]
    with pytest.raises(ValueError, match="batch size 2 cannot hold one sample of each of 3 tasks"):
        batch_quotas([1, 1, 1], 2)


def test_batches_follow_quotas_cover_every_sample_and_resume_identically():
    stream = ProportionalBatches(sizes=[12, 4], batch_size=4, seed=0)
    first = [stream.next_batch() for _ in range(4)]  # 4 batches: 12 of task 0, 4 of task 1
    for batch in first:
        assert Counter(task for task, _ in batch) == {0: 3, 1: 1}
    assert sorted(i for b in first for t, i in b if t == 0) == list(range(12))
    assert sorted(i for b in first for t, i in b if t == 1) == list(range(4))
    saved = stream.state_dict()
    expected = [stream.next_batch() for _ in range(3)]
    restored = ProportionalBatches(sizes=[12, 4], batch_size=4, seed=99)
    restored.load_state_dict(saved)
    assert [restored.next_batch() for _ in range(3)] == expected


def test_eq10_weights_get_gradients_of_the_right_form():
    losses = torch.tensor([2.0, 0.5])
    weights = torch.zeros(2, requires_grad=True)
    total = weighted_total_loss(losses, weights, weighting="paper")
    total.backward()
    assert torch.isclose(total, torch.tensor(2.5))
    assert torch.allclose(weights.grad, losses + 1)  # d/dw [exp(w) L + w] = exp(w) L + 1
    weights.grad = None
    weighted_total_loss(losses, weights, weighting="uncertainty").backward()
    assert torch.allclose(weights.grad, 1 - losses)  # d/dw [exp(-w) L + w] = 1 - exp(-w) L


def test_pretrain_logs_checkpoints_and_resumes_like_an_uninterrupted_run(task_files, tmp_path):
    config_path = _write_yaml(tmp_path / "tasks.yaml", _tasks(task_files))
    config = load_pretrain_config(config_path)

    # Interrupted after epoch 1, then resumed.
    run = tmp_path / "run"
    assert (
        main(["pretrain", "--tasks", str(config_path), "--out", str(run), "--device", "cpu", "--stop-after-epoch", "1"])
        == 0
    )
    rows = read_log(run / "log.tsv")
    assert [r["epoch"] for r in rows] == ["1"]
    for name in ("faces", "signals"):
        assert np.isfinite(float(rows[0][f"loss_{name}"]))
        assert 0.0 <= float(rows[0][f"accuracy_{name}"]) <= 1.0
        assert float(rows[0][f"w_{name}"]) != 0.0  # w_i started at 0 and received gradients
    assert np.isfinite(float(rows[0]["total_loss"]))
    state_after_1 = torch.load(run / "last.pt", weights_only=True)
    assert state_after_1["epoch"] == 1
    with pytest.raises(InputError, match="--resume"):
        pretrain(config, out=run, device="cpu")
    other = load_pretrain_config(_write_yaml(tmp_path / "other.yaml", _tasks(task_files), lr=2e-3))
    with pytest.raises(InputError, match=r"last\.pt: .*made differently: training\.lr \(saved 0\.001, now 0\.002\)"):
        pretrain(other, out=run, device="cpu", resume=True)
    assert torch.equal(
        torch.load(run / "last.pt", weights_only=True)["model"]["task_weights"], state_after_1["model"]["task_weights"]
    )
    assert main(["pretrain", "--tasks", str(config_path), "--out", str(run), "--device", "cpu", "--resume"]) == 0
    rows = read_log(run / "log.tsv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    resumed = torch.load(run / "last.pt", weights_only=True)
    assert resumed["epoch"] == 2
    assert not torch.equal(resumed["model"]["task_weights"], state_after_1["model"]["task_weights"])

    # Uninterrupted reference: same seed, same batches, same weights.
    straight = tmp_path / "straight"
    pretrain(config, out=straight, device="cpu")
    reference = torch.load(straight / "last.pt", weights_only=True)
    for key, value in reference["model"].items():
        assert torch.allclose(value, resumed["model"][key], atol=1e-6), key

    # The backbone file is the published format and loads as the backbone.
    backbone = load_painformer(run / "painformer.pth")
    saved = torch.load(run / "painformer.pth", weights_only=True)
    assert set(saved) >= {"model_state_dict"}
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, resumed["model"][f"backbone.{key}"]), key


def test_bad_tasks_files_name_the_file_and_the_problem(task_files, tmp_path, capsys):
    root = task_files["root"]
    mismatch = _write_yaml(
        tmp_path / "mismatch.yaml", [{"name": "faces", "dataset": str(task_files["folder"]), "num_classes": 3}]
    )
    with pytest.raises(InputError, match=r"mismatch\.yaml.*faces.*num_classes is 3 but the folder has 2"):
        pretrain(load_pretrain_config(mismatch), out=tmp_path / "r1", device="cpu")

    labels = _write_yaml(
        tmp_path / "labels.yaml", [{"name": "signals", "dataset": str(task_files["h5"]), "num_classes": 2}]
    )
    with pytest.raises(InputError, match=r"labels\.yaml.*labels span 0\.\.2 but num_classes is 2"):
        pretrain(load_pretrain_config(labels), out=tmp_path / "r2", device="cpu")

    missing = _write_yaml(
        tmp_path / "missing.yaml", [{"name": "gone", "dataset": str(root / "absent.h5"), "num_classes": 2}]
    )
    assert main(["pretrain", "--tasks", str(missing), "--out", str(tmp_path / "r3")]) == 1
    message = capsys.readouterr().err
    assert "missing.yaml" in message and "absent.h5" in message and "not found" in message

    unknown = _write_yaml(tmp_path / "unknown.yaml", _tasks(task_files), learning_rate=1.0)
    with pytest.raises(InputError, match=r"unknown\.yaml: training: unknown keys \['learning_rate'\]"):
        load_pretrain_config(unknown)

    no_file = tmp_path / "nowhere.yaml"
    with pytest.raises(InputError, match="nowhere.yaml: tasks file not found"):
        load_pretrain_config(no_file)

    precision = _write_yaml(tmp_path / "precision.yaml", _tasks(task_files), precision="float16")
    with pytest.raises(InputError, match=r"precision\.yaml: precision must be one of .*'float16'"):
        load_pretrain_config(precision)


def test_bfloat16_autocast_on_the_cpu_is_deterministic_and_is_applied(task_files, tmp_path):
    def trained(name: str, precision: str) -> dict[str, torch.Tensor]:
        config = load_pretrain_config(
            _write_yaml(tmp_path / f"{name}.yaml", _tasks(task_files), epochs=1, precision=precision)
        )
        pretrain(config, out=tmp_path / name, device="cpu")
        return torch.load(tmp_path / name / "last.pt", weights_only=True)["model"]

    first, second, full = trained("bf16_a", "bfloat16"), trained("bf16_b", "bfloat16"), trained("fp32", "auto")
    for key in first:
        assert torch.equal(first[key], second[key]), key
    # "auto" is float32 on the CPU: the bfloat16 products leave other weights after one update.
    assert any(not torch.equal(first[key], full[key]) for key in first if key.startswith("backbone."))


def test_make_demo_tasks_holds_out_probe_subjects_and_takes_frames_from_the_window(tmp_path):
    from painformer.data import index_biovid, load_signal, write_sample_table
    from painformer.render import render_batch
    from painformer.video import read_frames

    root, samples, out = tmp_path / "demo", tmp_path / "samples.tsv", tmp_path / "tasks"
    assert (
        main(
            [
                "demo-data",
                str(root),
                "--subjects",
                "4",
                "--samples-per-class",
                "1",
                "--seed",
                "5",
                "--thermal-pairs",
                "0",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    table, problems = index_biovid(root)
    assert problems == []
    write_sample_table(table, samples)
    argv = [
        "pretrain",
        "make-demo-tasks",
        "--samples",
        str(samples),
        "--out",
        str(out),
        "--frames-per-video",
        "2",
        "--probe-subjects",
        "2",
        "--frame-window",
        "0.3",
        "0.6",
    ]
    assert main(argv) == 0

    subjects = list(dict.fromkeys(table["subject"]))
    pretraining, held_out = subjects[:2], subjects[2:]
    with h5py.File(out / "identity_frames.h5", "r") as handle:
        assert handle["images"].shape == (2 * 5 * 2, 224, 224, 3)  # 2 subjects x 5 classes x 2 frames
        assert {s.decode() for s in handle["subjects"][:]} == set(pretraining)
        assert sorted(set(handle["labels"][:].tolist())) == [0, 1]
    with h5py.File(out / "pain_frames.h5", "r") as handle:
        assert Counter(handle["labels"][:].tolist()) == {0: 4, 1: 4}  # BL1 / PA4, 2 subjects x 2 frames
        first_pain_sample = table[(table["subject"] == pretraining[0]) & (table["class_name"] == "BL1")].iloc[0]
        expected = read_frames(first_pain_sample["video"], num_frames=2, crop="center", window=(0.3, 0.6))
        np.testing.assert_array_equal(handle["images"][:2], expected)
        assert not np.array_equal(expected, read_frames(first_pain_sample["video"], num_frames=2, crop="center"))
    with h5py.File(out / "probe_frames.h5", "r") as handle:
        assert {s.decode() for s in handle["subjects"][:]} == set(held_out)
    with h5py.File(out / "pain_gsr_spec_psd.h5", "r") as handle:
        assert handle["images"].shape == (4, 224, 224, 3)
    listed = yaml.safe_load((out / "tasks.yaml").read_text())["tasks"]
    assert [task["num_classes"] for task in listed] == [2, 2, 2]

    assert main(argv[:-2] + ["0.7", "0.2"]) == 1  # an empty window is refused

    # 'spectrograms': the biosignal images go round the three spectrogram types, sample by sample;
    # two signals give two pain tasks of the same samples.
    split = tmp_path / "split"
    assert (
        main(argv[:5] + [str(split)] + argv[6:] + ["--representation", "spectrograms", "--signal", "gsr", "ecg"]) == 0
    )
    pain_rows = table[table["class_name"].isin(["BL1", "PA4"])].reset_index(drop=True)
    for signal in ("gsr", "ecg"):
        drawn = []
        for position, row in pain_rows.iterrows():
            values, fs = load_signal(row["biosignals"], signal)
            kind = ("spec_angle", "spec_phase", "spec_psd")[position % 3]
            if row["subject"] in pretraining:
                drawn.append((kind, render_batch(np.asarray(values, dtype=np.float64)[None], fs, kind)[0]))
        with h5py.File(split / f"pain_{signal}_spectrograms.h5", "r") as handle:
            images = handle["images"][:]
        assert len(images) == len(drawn) == 4
        for image, (_, expected) in zip(images, drawn):
            np.testing.assert_array_equal(image, expected)
        assert {kind for kind, _ in drawn} == {"spec_angle", "spec_phase", "spec_psd"}
        assert (split / f"probe_{signal}_spectrograms.h5").is_file()
    listed = yaml.safe_load((split / "tasks.yaml").read_text())["tasks"]
    assert [task["name"] for task in listed] == ["identity", "pain_face", "pain_gsr", "pain_ecg"]
