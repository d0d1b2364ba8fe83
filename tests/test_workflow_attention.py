"""Attention-map sheets in the workflow, and the summary's Provenance section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from workflow_helpers import job_counts, snakemake, tiny_demo_config, write_yaml

from painformer.cli import main
from painformer.errors import InputError
from painformer.interpret import attention_maps, overlay
from painformer.interpret.sheet import LABEL_HEIGHT, pick_samples, spread_items
from painformer.models import load_painformer
from painformer.report.metrics import compute_metrics
from painformer.stores import SampleMeta, SampleStore, write_completion_marker

COLUMNS = ["dataset", "sample", "subject", "subject_id", "class_id", "class_name", "video", "biosignals", "split"]


def _table() -> pd.DataFrame:
    rows = []
    for subject_id, subject in enumerate(("071309_w_21", "072414_m_23")):
        for class_id, class_name in ((0, "BL1"), (4, "PA4")):
            for k in range(2):
                rows.append(
                    ["demo", f"{subject}-{class_name}-{k:03d}", subject, subject_id, class_id, class_name, "", "", ""]
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _frames(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 224, 224, 3), dtype=np.uint8)


def test_pick_samples_pairs_the_classes_of_one_subject_first():
    table = _table()
    assert pick_samples(table, 2) == ["071309_w_21-BL1-000", "071309_w_21-PA4-000"]
    assert pick_samples(table, 3)[2] == "072414_m_23-BL1-000"
    assert len(set(pick_samples(table, 8))) == 8
    with pytest.raises(InputError, match="has 8"):
        pick_samples(table, 9)


def test_spread_items_keeps_first_and_last():
    assert spread_items(6, None) == [0, 1, 2, 3, 4, 5]
    assert spread_items(6, 3) == [0, 2, 5]
    assert spread_items(138, 4)[0] == 0 and spread_items(138, 4)[-1] == 137
    assert spread_items(2, 4) == [0, 1]


def test_attention_sheet_of_picked_samples_from_a_frame_store(tmp_path: Path):
    table = _table()
    samples = tmp_path / "samples.tsv"
    table.to_csv(samples, sep="\t", index=False)
    store = SampleStore.create_or_resume(
        tmp_path / "thermal.zarr",
        kind="frames",
        array_name="frames",
        meta=SampleMeta.from_table(table),
        item_shape=(6, 224, 224, 3),
        dtype="uint8",
        fingerprint={"test": 1},
        attrs={"modality": "thermal"},
    )
    for index in range(len(table)):
        store.write(index, _frames(index, 6))
    write_completion_marker(store, tmp_path / "thermal.complete")
    sheet = tmp_path / "attention" / "thermal" / "frames.png"
    argv = [
        "attention",
        "--samples",
        str(samples),
        "--modality",
        "thermal",
        "--images",
        str(tmp_path / "thermal.zarr"),
        "--checkpoint",
        "none",
        "--pick",
        "2",
        "--max-items",
        "3",
        "--sheet",
        str(sheet),
        "--device",
        "cpu",
        "--threads",
        "2",
    ]
    assert main(argv) == 0
    picture = np.asarray(Image.open(sheet))
    # Two rows (caption + 224 px), three panels of image | overlay each.
    assert picture.shape == (2 * (LABEL_HEIGHT + 224), 3 * 448, 3)
    first_frames = _frames(0, 6)  # sample 0 is 071309_w_21-BL1-000, the first picked
    for column, item in enumerate(spread_items(6, 3)):
        left = picture[LABEL_HEIGHT : LABEL_HEIGHT + 224, column * 448 : column * 448 + 224]
        assert np.array_equal(left, first_frames[item])
    second_row = picture[2 * LABEL_HEIGHT + 224 :, :224]
    assert np.array_equal(second_row, _frames(2, 6)[0])  # 071309_w_21-PA4-000 is row 2 of the table
    assert not np.array_equal(picture[LABEL_HEIGHT : LABEL_HEIGHT + 224, 224:448], first_frames[0])  # overlay differs
    # The overlay is that of the frame's own attention map, from the same untrained backbone.
    frame = first_frames[:1]
    expected = overlay(frame, attention_maps(load_painformer(None, device="cpu"), frame))[0]
    # Batch size (3 frames there, 1 here) moves the map by float rounding: a neighbouring colour-map entry at most.
    gap = np.abs(picture[LABEL_HEIGHT : LABEL_HEIGHT + 224, 224:448].astype(int) - expected)
    assert gap.max() <= 4 and gap.mean() < 0.05, (gap.max(), gap.mean())
    too_many = [value if value != "2" or argv[i - 1] != "--pick" else "9" for i, value in enumerate(argv)]
    assert main(too_many) == 1  # only 8 samples


def _fold(directory: Path, *, experiment: str, subject: str, true: list[str], predicted: list[str]) -> None:
    """A fold folder in the layout training writes (metrics from compute_metrics)."""
    classes = ("BL1", "PA4")
    directory.mkdir(parents=True)
    probabilities = np.where(np.array(predicted)[:, None] == np.array(classes)[None], 0.8, 0.2)
    pd.DataFrame(
        {
            "sample": [f"{subject}-{i:03d}" for i in range(len(true))],
            "subject": subject,
            "true": true,
            "predicted": predicted,
            "prob_BL1": probabilities[:, 0],
            "prob_PA4": probabilities[:, 1],
        }
    ).to_csv(directory / "predictions.tsv", sep="\t", index=False)
    metrics = compute_metrics(true, predicted, classes)
    record = {
        "experiment": experiment,
        "fold": subject,
        "classes": list(classes),
        "test_subjects": [subject],
        "n_train": 8,
        "n_test": len(true),
        "accuracy": metrics["accuracy"],
        "recall_macro": metrics["recall_macro"],
        "f1_macro": metrics["f1_macro"],
        "confusion": metrics["confusion"],
        "epochs": 2,
        "seed": 0,
        "train_seconds": 0.5,
        "device": "cpu",
    }
    (directory / "metrics.json").write_text(json.dumps(record))
    pd.DataFrame({"epoch": [1, 2], "lr": [1e-3, 5e-4], "train_loss": [0.7, 0.6], "train_accuracy": [0.5, 0.6]}).to_csv(
        directory / "history.tsv", sep="\t", index=False
    )
    (directory / "config.json").write_text(json.dumps({}))


def test_summary_opens_with_the_provenance_notes(tmp_path: Path):
    folds = []
    for subject, predicted in (("s1", ["BL1", "PA4", "PA4", "PA4"]), ("s2", ["BL1", "BL1", "BL1", "PA4"])):
        folds.append(tmp_path / "runs" / f"fold-{subject}")
        _fold(folds[-1], experiment="gsr", subject=subject, true=["BL1", "BL1", "PA4", "PA4"], predicted=predicted)
    assert (
        main(
            [
                "report",
                "experiment",
                "--experiment",
                "gsr",
                "--folds",
                *map(str, folds),
                "--out-dir",
                str(tmp_path / "tables"),
                "--plots-dir",
                str(tmp_path / "plots"),
            ]
        )
        == 0
    )
    base = [
        "report",
        "summary",
        "--experiments",
        str(tmp_path / "tables" / "gsr.json"),
        "--out",
        str(tmp_path / "summary.tsv"),
        "--plots-dir",
        str(tmp_path / "plots"),
    ]
    notes = ["Backbone: UNTRAINED random initialisation", "Depth frames: NOT meaningful | stand-in"]
    argv = base + ["--markdown", str(tmp_path / "summary.md")]
    assert main(argv + [arg for note in notes for arg in ("--note", note)]) == 0
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert lines[:7] == ["# Results summary", "", "## Provenance", "", f"- {notes[0]}", f"- {notes[1]}", ""]
    assert lines.index("## Provenance") < lines.index("## Results") < lines.index("## Which inputs carry signal")
    # Without notes the markdown has no Provenance section at all.
    assert main(base + ["--markdown", str(tmp_path / "plain.md")]) == 0
    assert "Provenance" not in (tmp_path / "plain.md").read_text()


def _shell_commands(output: str, program: str) -> list[str]:
    """The shell commands a dry run with --printshellcmds shows for one program."""
    commands = [line.strip().removeprefix("Shell command:").strip() for line in output.splitlines()]
    return [command for command in commands if command.startswith(program)]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("attention_workflow")
    config = tiny_demo_config(workdir)
    config["report"]["attention_samples"] = 3
    configfile = write_yaml(config, workdir / "config.yaml")
    result = snakemake(workdir, "--cores", "2", "--configfile", str(configfile), "--dry-run", "--printshellcmds")
    return config, result.stdout + result.stderr


def test_dry_run_schedules_one_attention_sheet_per_input(dry_run):
    config, output = dry_run
    inputs = sorted({name for e in config["experiments"].values() for name in e["inputs"]})
    assert job_counts(output).get("attention_maps") == len(inputs)
    for name in inputs:
        assert f"results/demo/attention/{name}.png" in output
    commands = _shell_commands(output, "painformer attention")
    assert len(commands) == len(inputs)
    assert all("--pick 3" in c and "--checkpoint none" in c and "--max-items 4" in c for c in commands)
    thermal = next(c for c in commands if "--modality thermal" in c)
    assert "--images results/demo/frames/thermal.zarr" in thermal
    rgb = next(c for c in commands if "--modality rgb" in c)
    assert f"--num-frames {config['video']['num_frames']}" in rgb and "--images" not in rgb


def test_dry_run_summary_passes_the_provenance(dry_run):
    _, output = dry_run
    (summary,) = _shell_commands(output, "painformer report summary")
    assert "--note 'Backbone: UNTRAINED random initialisation" in summary
    assert "Depth frames: not used by any experiment." in summary  # the tiny configuration has no depth input
    assert "RGB->thermal generator trained in this run on the synthetic demo pairs" in summary
