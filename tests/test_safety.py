"""Hostile inputs: names and paths that reach shell commands, file modes, config mistakes caught at parse time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from tree_helpers import (
    make_ai4pain_tree,
    make_biovid_tree,
    write_bio_csv,
)
from workflow_helpers import REPO, snakemake, tiny_demo_config, write_yaml

from painformer.config_checks import check_workflow_config
from painformer.data import index_ai4pain, index_biovid, read_biosignals, read_sample_table, write_sample_table
from painformer.data.ai4pain import Ai4PainLayout
from painformer.data.validation import escapes_root
from painformer.errors import InputError
from painformer.experiment_grid import apply_experiment_grid
from painformer.names import is_safe_name
from painformer.utils import atomic_path

# The real mp4 the data tests decode, as a fixture of this module too.

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _table(subjects: list[str], samples: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": "biovid",
            "sample": samples,
            "subject": subjects,
            "subject_id": [str(i) for i in range(len(samples))],
            "class_id": 0,
            "class_name": "BL1",
            "video": [f"/data/{s}.mp4" for s in samples],
            "biosignals": [f"/data/{s}_bio.csv" for s in samples],
            "split": "",
        }
    )


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["071309_w_21", "071309_w_21-BL1-001", "a.b", "A-1", "x."])
def test_safe_names_accepted(name):
    assert is_safe_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a b", "a/b", "../x", "x$(touch y)", "a;b", "a\tb", "é"])
def test_unsafe_names_refused(name):
    assert not is_safe_name(name)


def test_given_sample_table_refuses_every_unsafe_name_in_one_error(tmp_path):
    table = _table(
        subjects=["ok_1", "111809 w 30", "s$(touch PWNED)", "ok_1"],
        samples=["ok_1-BL1-001", "good-002", "../../../x", ".hidden"],
    )
    path = tmp_path / "given.tsv"
    table.to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError) as error:
        read_sample_table(path)
    message = str(error.value)
    assert message.startswith(f"{path}: unsafe names (only the characters [A-Za-z0-9_.-] and no leading dot")
    for name in ("'111809 w 30'", "'s$(touch PWNED)'", "'../../../x'", "'.hidden'"):
        assert name in message
    assert "ok_1" not in message and "good-002" not in message
    # Writing goes through the same check: an indexer's table cannot carry such a name either.
    with pytest.raises(InputError, match="unsafe names"):
        write_sample_table(table, tmp_path / "out.tsv")
    assert not (tmp_path / "out.tsv").exists()


def test_workflow_refuses_a_precomputed_table_with_unsafe_names(tmp_path):
    """dataset.samples skips the indexers: its check_samples job applies the same rule."""
    table = _table(subjects=["a b", "ok"], samples=["a b-1", "ok-1"])
    given = tmp_path / "given.tsv"
    table.to_csv(given, sep="\t", index=False)
    config = tiny_demo_config(tmp_path)
    config["dataset"].update({"samples": str(given), "demo": None})
    config["thermal"]["checkpoint"] = str(tmp_path / "thermal.pt")
    configfile = write_yaml(config, tmp_path / "config.yaml")
    result = snakemake(
        tmp_path, "results/demo/samples.tsv", "--cores", "1", "--configfile", str(configfile), check=False
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "unsafe names" in output and "subjects 'a b'" in output and "samples 'a b-1'" in output
    assert not (tmp_path / "results" / "demo" / "samples.tsv").exists()


def test_biovid_indexer_refuses_unsafe_names_and_paths_leaving_the_root(tmp_path, video_file):
    root = tmp_path / "root"
    names = make_biovid_tree(root, video_file, subjects=("071309_w_21",), classes=("BL1", "PA4"))
    # A file outside the root that a sample named ../../../x would reach.
    outside = tmp_path / "x_bio.csv"
    write_bio_csv(outside)
    listing = (root / "samples.csv").read_text()
    listing += "0\t071309_w_21\t0\tBL1\t9\t../../../x\n" + "0\tbad subject\t4\tPA4\t10\tbad-PA4-001\n"
    (root / "samples.csv").write_text(listing)
    table, problems = index_biovid(root, check_videos=False)
    assert sorted(table["sample"]) == sorted(names)
    found = {problem.sample: problem.problem for problem in problems}
    assert found["../../../x"] == "unsafe name '../../../x' (only the characters [A-Za-z0-9_.-] and no leading dot)"
    assert found["bad-PA4-001"].startswith("unsafe name 'bad subject'")


def test_escapes_root_judges_the_written_path(tmp_path):
    root = tmp_path / "root"
    assert escapes_root(root, root / "video" / "s" / ".." / ".." / ".." / "x.mp4")
    assert escapes_root(str(root), str(root) + "-other/x.mp4")
    assert not escapes_root(root, root / "video" / "s" / "x.mp4")
    assert not escapes_root(str(root) + "/", os.path.join(str(root), "a", "..", "b"))


def test_ai4pain_indexer_refuses_unsafe_names_a_loose_layout_lets_through(tmp_path, video_file):
    root = tmp_path / "root"
    make_ai4pain_tree(root, video_file, splits={"train": ["1", "2"]})
    loose = Ai4PainLayout(stem_pattern=r"^(?P<subject>.+)_(?P<label>[A-Za-z]+)_(?P<number>\d+)$")
    make_ai4pain_tree(root, video_file, splits={"validation": ["3 x"]})
    table, problems = index_ai4pain(root, layout=loose, check_videos=False)
    assert sorted(table["subject"].unique()) == ["1", "2"]
    unsafe = [problem for problem in problems if problem.problem.startswith("unsafe name")]
    assert sorted(problem.sample for problem in unsafe) == ["3 x_High_1", "3 x_Low_1", "3 x_No_1"]
    assert "'3 x'" in unsafe[0].problem and "'3 x_High_1'" in unsafe[0].problem


# ------------------------------------------------------------------ config refusals


@pytest.mark.parametrize("name", [".", "..", "a/b", "../up", ".hidden", "with space"])
def test_schema_refuses_unsafe_dataset_names(name):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["dataset"]["name"] = name
    with pytest.raises(Exception, match=r"does not match .\^\[A-Za-z0-9_-\]\[A-Za-z0-9_.-\]\*\$"):
        validate(config, str(SCHEMA))


def test_schema_accepts_the_shipped_dataset_names():
    for path in ("config.yaml", "biovid.yaml", "ai4pain.yaml"):
        config = yaml.safe_load((REPO / "config" / path).read_text())
        apply_experiment_grid(config)
        validate(config, str(SCHEMA))


def _demo_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(SCHEMA))
    return config


def test_config_unknown_class_refused():
    config = _demo_config()
    config["dataset"]["classes"] = ["BL1", "PA9"]
    with pytest.raises(InputError) as error:
        check_workflow_config(config)
    message = str(error.value)
    assert "dataset.classes: unknown classes ['PA9'] for a biovid dataset" in message
    assert "task 'NP_vs_P4' needs the classes ['PA4'], which dataset.classes leaves out" in message


def test_config_task_of_classes_left_out_refused():
    config = _demo_config()
    config["dataset"]["classes"] = ["BL1", "PA1"]
    with pytest.raises(InputError, match=r"task 'NP_vs_P4' needs the classes \['PA4'\]"):
        check_workflow_config(config)


def test_config_unknown_compare_experiment_refused():
    config = _demo_config()
    config["report"]["compare"] = [["gsr_waveform", "no_such_experiment"]]
    with pytest.raises(InputError, match=r"report.compare: unknown experiments \['no_such_experiment'\]"):
        check_workflow_config(config)


def test_config_thermal_without_generator_refused_for_a_real_dataset(tmp_path):
    config = _demo_config()
    config["dataset"].update({"demo": None, "root": str(tmp_path)})
    config["thermal"].update({"checkpoint": None, "pairs": None})
    with pytest.raises(InputError) as error:
        check_workflow_config(config)
    message = str(error.value)
    assert "thermal.checkpoint and thermal.pairs are null" in message
    assert f"{tmp_path}/thermal_pairs does not exist" in message
    # Pairs where the demo puts them, a checkpoint, or explicit pairs: each is enough.
    (tmp_path / "thermal_pairs").mkdir()
    check_workflow_config(config)
    (tmp_path / "thermal_pairs").rmdir()
    config["thermal"]["checkpoint"] = "/models/thermal.pt"
    check_workflow_config(config)


def test_config_mistakes_stop_the_dry_run_at_parse_time(tmp_path):
    config = tiny_demo_config(tmp_path)
    config["dataset"]["classes"] = ["BL1", "PA9"]
    config["report"]["compare"] = [["gsr_waveform", "missing"]]
    config["dataset"]["demo"] = None
    config["thermal"].update({"checkpoint": None, "pairs": None})
    configfile = write_yaml(config, tmp_path / "config.yaml")
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(configfile), "--dry-run", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "unknown classes ['PA9']" in output
    assert "report.compare: unknown experiments ['missing']" in output
    assert "thermal.checkpoint and thermal.pairs are null" in output
    assert "Job stats" not in output


# ------------------------------------------------------------------ smaller input checks


def test_too_short_signal_names_its_rate_and_the_length_needed(tmp_path):
    path = write_bio_csv(tmp_path / "s_bio.csv", fs=100.0, rows=550)
    with pytest.raises(InputError) as error:
        read_biosignals(path)
    message = str(error.value)
    assert "too short: 550 rows (at 100 Hz from the time column, 5.490 s)" in message
    assert "need at least 2560 rows (5 s at 512 Hz)" in message
    assert "sampling rate 100 Hz from the time column, expected 512 Hz" in message


# ------------------------------------------------------------------ file modes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_take_the_umask_mode(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "a.txt") as path:
            path.write_text("x")
        write_sample_table(_table(["s1"], ["s1-1"]), tmp_path / "samples.tsv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "samples.tsv").stat().st_mode) == mode


# ------------------------------------------------------------------ shell injection through a dataset root


def test_dataset_root_with_a_command_and_a_space_runs_nothing(tmp_path, video_file):
    """A root whose path holds $(touch SENTINEL) and a space: the dry run prints it quoted, the real index
    job indexes it, and no SENTINEL file appears."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    root = tmp_path / "data $(touch SENTINEL) x" / "biovid root"
    names = make_biovid_tree(root, video_file, subjects=("071309_w_21", "072514_m_27"), classes=("BL1", "PA4"))
    config = tiny_demo_config(workdir)
    config["dataset"].update({"root": str(root), "demo": None})
    config["thermal"].update({"checkpoint": None, "pairs": str(root / "thermal pairs $(touch SENTINEL)")})
    configfile = write_yaml(config, workdir / "config.yaml")

    dry = snakemake(workdir, "--cores", "1", "--configfile", str(configfile), "--dry-run", "-p")
    printed = dry.stdout + dry.stderr
    assert "painformer index" in printed and "painformer thermal train" in printed
    assert "'" + str(root) + "'" in printed

    previous = os.umask(0o022)
    try:
        snakemake(workdir, "results/demo/samples.tsv", "-p", "--cores", "1", "--configfile", str(configfile))
    finally:
        os.umask(previous)
    samples = workdir / "results" / "demo" / "samples.tsv"
    table = read_sample_table(samples)
    assert sorted(table["sample"]) == sorted(names)
    assert all(path.startswith(str(root)) and os.path.isfile(path) for path in table["video"])
    assert stat.S_IMODE(samples.stat().st_mode) == 0o644

    assert [p for p in tmp_path.rglob("*") if p.name == "SENTINEL"] == []
    assert not (REPO / "SENTINEL").exists() and not (Path.cwd() / "SENTINEL").exists()
