"""The optional pretraining stage of the workflow: which jobs a run schedules and what they run.

Dry runs of the real Snakefile on configurations derived from config/config.yaml (with its
commented-out `pretrain:` block switched on), plus one real run of the task-building jobs.
No pretraining itself runs here (minutes even at demo size); tests/test_pretrain.py covers it.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import pytest
import yaml
from workflow_helpers import REPO, job_counts, load_yaml, snakemake, write_yaml

from painformer.data import read_sample_table
from painformer.pretrain.config import load_pretrain_config

pytestmark = pytest.mark.slow

PRETRAIN_RULES = ("pretrain_demo_data", "pretrain_index", "pretrain_tasks", "pretrain_settings", "pretrain_backbone")
EMBED_TARGETS = ("results/demo/embeddings/gsr/waveform.complete", "results/demo/embeddings/rgb/frames.complete")
PRETRAINED = "results/demo/models/pretrain/painformer.pth"


def documented_pretrain_block() -> dict:
    """The commented-out `pretrain:` block of config/config.yaml, uncommented and parsed."""
    lines = (REPO / "config" / "config.yaml").read_text().splitlines()
    start = lines.index("# pretrain:")
    block = [lines[start][2:]]
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    return yaml.safe_load("\n".join(block))["pretrain"]


def demo_config(workdir: Path, **pretrain) -> Path:
    config = load_yaml(REPO / "config" / "config.yaml")
    config["dataset"]["root"] = str(workdir / "resources" / "demo")
    config["pretrain"] = {**documented_pretrain_block(), **pretrain}
    return write_yaml(config, workdir / "config.yaml")


def dry_run(workdir: Path, configfile: Path, *targets: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Job counts and, per rule, the text of each scheduled job's block (inputs, reason, command)."""
    result = snakemake(
        workdir, "--cores", "2", "--configfile", str(configfile), "--dry-run", "--printshellcmds", *targets
    )
    output = result.stdout + result.stderr
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?(?:rule|checkpoint) )", output):
        match = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):", block, flags=re.MULTILINE)
        if match:
            blocks.setdefault(match.group(1), []).append(block)
    return job_counts(output), blocks


def test_documented_block_is_off_by_default():
    block = documented_pretrain_block()
    assert block["enabled"] is False and block["tasks"] is None
    assert "pretrain" not in load_yaml(REPO / "config" / "config.yaml")


def test_enabled_pretraining_runs_before_every_embedding(tmp_path):
    configfile = demo_config(tmp_path, enabled=True)
    counts, blocks = dry_run(tmp_path, configfile, *EMBED_TARGETS)
    assert {rule: counts.get(rule) for rule in PRETRAIN_RULES} == dict.fromkeys(PRETRAIN_RULES, 1)
    assert counts["embed"] == 2
    for block in blocks["embed"]:
        inputs = re.search(r"^\s*input: (.*)$", block, flags=re.MULTILINE).group(1)
        reason = re.search(r"^\s*reason: (.*)$", block, flags=re.MULTILINE).group(1)
        assert PRETRAINED in inputs.split(", ")
        # Snakemake's own account of the dependency: the checkpoint comes from a job of this run.
        assert "Input files updated by another job" in reason and PRETRAINED in reason
        assert f"--checkpoint {PRETRAINED} " in block
    (backbone,) = blocks["pretrain_backbone"]
    assert (
        "painformer pretrain --tasks results/demo/pretrain_tasks/pretrain.yaml --out results/demo/models/pretrain --epochs 20 "
        in backbone
    )
    assert "--resume" in backbone and "gpu=1" in backbone
    # The tasks come from a dataset of other people, generated with its own seed.
    (data,) = blocks["pretrain_demo_data"]
    assert (
        "painformer demo-data results/demo/pretrain_data/dataset --subjects 12 --samples-per-class 5 --seed 1 " in data
    )
    (tasks,) = blocks["pretrain_tasks"]
    assert (
        "painformer pretrain make-demo-tasks --samples results/demo/pretrain_data/samples.tsv --out results/demo/pretrain_tasks "
        in tasks
    )
    assert "--probe-subjects 2" in tasks and "--frame-window 0.3 0.65" in tasks
    assert "--signal gsr --representation waveform" in tasks


def test_demo_tasks_without_their_own_dataset_use_this_sample_table(tmp_path):
    configfile = demo_config(tmp_path, enabled=True, demo=None, signals=["gsr", "ecg"])
    counts, blocks = dry_run(tmp_path, configfile, EMBED_TARGETS[0])
    assert "pretrain_demo_data" not in counts and "pretrain_index" not in counts
    (tasks,) = blocks["pretrain_tasks"]
    assert "make-demo-tasks --samples results/demo/samples.tsv " in tasks and "--signal gsr ecg " in tasks
    assert "results/demo/pretrain_tasks/pain_ecg_waveform.h5" in tasks


def test_a_pretraining_dataset_with_the_evaluation_seed_is_refused(tmp_path):
    configfile = demo_config(tmp_path, enabled=True, demo={"subjects": 12, "seed": 0})
    result = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", check=False)
    assert result.returncode != 0
    assert "pretrain.demo.seed 0 equals dataset.demo.seed" in result.stdout + result.stderr


def test_disabled_pretraining_schedules_nothing_and_embeds_with_the_configured_backbone(tmp_path):
    configfile = demo_config(tmp_path, enabled=False)
    counts, blocks = dry_run(tmp_path, configfile, *EMBED_TARGETS)
    assert counts["embed"] == 2
    assert not set(PRETRAIN_RULES) & set(counts)
    for block in blocks["embed"]:
        assert "--checkpoint none " in block and PRETRAINED not in block


def test_own_tasks_file_skips_the_demo_tasks(tmp_path):
    tasks = write_yaml(
        {"tasks": [{"name": "faces", "dataset": "faces/", "num_classes": 2}]}, tmp_path / "my_tasks.yaml"
    )
    configfile = demo_config(tmp_path, enabled=True, tasks=str(tasks), epochs=None, training=None)
    counts, blocks = dry_run(tmp_path, configfile, EMBED_TARGETS[0])
    assert counts.get("pretrain_backbone") == 1 and counts["embed"] == 1
    assert "pretrain_tasks" not in counts and "pretrain_settings" not in counts
    (backbone,) = blocks["pretrain_backbone"]
    assert re.search(rf"--tasks {re.escape(str(tasks))} --out results/demo/models/pretrain\s+--device", backbone)
    assert "--epochs" not in backbone  # epochs: null keeps the tasks file's training.epochs


def test_training_settings_with_an_own_tasks_file_are_refused(tmp_path):
    tasks = write_yaml({"tasks": []}, tmp_path / "my_tasks.yaml")
    configfile = demo_config(tmp_path, enabled=True, tasks=str(tasks))
    result = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run", check=False)
    assert result.returncode != 0
    assert "pretrain.training only applies to the demo tasks" in result.stdout + result.stderr
    assert str(tasks) in result.stdout + result.stderr


def test_demo_tasks_file_carries_the_configured_training_settings(tmp_path):
    """Real jobs up to the tasks file the training job reads (demo data, index, task files)."""
    config = load_yaml(
        demo_config(
            tmp_path,
            enabled=True,
            probe_subjects=2,
            frames_per_video=1,
            demo={"subjects": 4, "samples_per_class": 1, "seed": 1},
        )
    )
    config["dataset"]["demo"] = {"subjects": 4, "samples_per_class": 1, "seed": 0}
    configfile = write_yaml(config, tmp_path / "config.yaml")
    snakemake(
        tmp_path,
        "results/demo/pretrain_tasks/pretrain.yaml",
        "results/demo/samples.tsv",
        "--cores",
        "2",
        "--configfile",
        str(configfile),
    )
    pretrain = load_pretrain_config(tmp_path / "results/demo/pretrain_tasks/pretrain.yaml")
    assert [task.name for task in pretrain.tasks] == ["identity", "pain_face", "pain_gsr"]
    # Nobody of the evaluated dataset is in a pretraining task.
    evaluated = set(read_sample_table(tmp_path / "results/demo/samples.tsv")["subject"])
    for task in pretrain.tasks:
        with h5py.File(tmp_path / task.dataset, "r") as handle:
            assert not {s.decode() for s in handle["subjects"][:]} & evaluated
    expected = dict(documented_pretrain_block()["training"])
    augment = expected.pop("augment")
    assert {key: getattr(pretrain.settings, key) for key in expected} == expected
    assert {key: getattr(pretrain.settings.augment, key) for key in augment} == augment
    assert pretrain.settings.epochs == 200  # not in `training`: Table IV's value, overridden by --epochs
    # The task files exist where tasks.yaml says (relative to the working directory).
    identity = tmp_path / pretrain.tasks[0].dataset
    with h5py.File(identity, "r") as handle:  # 2 pretraining subjects x (BL1, PA4) x 1 frame
        assert handle["images"].shape == (4, 224, 224, 3)
        assert sorted(handle["labels"][:].tolist()) == [0, 0, 1, 1]
    assert (tmp_path / "results/demo/pretrain_tasks/probe_frames.h5").is_file()
