"""The Snakemake workflow end to end: a real run, incremental reruns, lint, format, scale."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import (
    BIN,
    REPO,
    dry_run_counts,
    environment,
    full_biovid_grid,
    job_counts,
    load_yaml,
    snakemake,
    tiny_demo_config,
    write_yaml,
)

from painformer.stores import SampleStore

pytestmark = pytest.mark.slow


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert path.stat().st_size > 2_000, path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One complete run of the tiny demo configuration (shared by the tests below)."""
    workdir = tmp_path_factory.mktemp("workflow")
    config = tiny_demo_config(workdir)
    # 3 subjects in groups of 2: two train jobs per experiment, of 2 and 1 folds.
    config["training"]["folds_per_job"] = 2
    configfile = write_yaml(config, workdir / "config.yaml")
    snakemake(workdir, "--cores", "2", "--configfile", str(configfile), "--resources", "gpu=1")
    return workdir, config, configfile


def test_complete_run_produces_every_result(finished_run):
    workdir, config, configfile = finished_run
    results = workdir / "results" / "demo"
    samples = pd.read_csv(results / "samples.tsv", sep="\t")
    assert set(samples["class_name"]) == {"BL1", "PA4"} and samples["subject"].nunique() == 3
    needed = {name for e in config["experiments"].values() for name in e["inputs"]}
    for name in needed:
        store = SampleStore.open_complete(results / "embeddings" / f"{name}.zarr")
        assert store.samples == list(samples["sample"])
        assert json.loads((results / "embeddings" / f"{name}.complete").read_text())["complete"] is True
    for experiment in config["experiments"]:
        for subject in samples["subject"].unique():
            fold = results / "runs" / experiment / f"fold-{subject}"
            for name in ("model.pt", "predictions.tsv", "metrics.json", "history.tsv", "config.json"):
                assert (fold / name).is_file(), fold / name
        groups = sorted((results / "runs" / experiment / "groups").glob("group-*.json"))
        subjects = sorted(samples["subject"].astype(str).unique())
        assert [json.loads(g.read_text())["folds"] for g in groups] == [subjects[:2], subjects[2:]], groups
        benchmarks = sorted((results / "benchmarks" / "runs" / experiment).glob("group-*.tsv"))
        assert len(benchmarks) == 2
        table = pd.read_csv(results / "tables" / f"{experiment}.tsv", sep="\t")
        assert set(samples["subject"]) <= set(table["fold"].astype(str)), table
        assert json.loads((results / "tables" / f"{experiment}.json").read_text())["experiment"] == experiment
        for plot in ("confusion", "subjects", "curves"):
            assert_png(results / "plots" / f"{experiment}_{plot}.png")
    summary = pd.read_csv(results / "summary.tsv", sep="\t")
    assert len(summary) == len(config["experiments"])
    assert (results / "summary.md").read_text().strip()
    assert (results / "summary_compare.tsv").is_file()
    assert_png(results / "plots" / "summary.png")
    for name in needed:
        assert_png(results / "attention" / f"{name}.png")
    resolved = load_yaml(results / "config.resolved.yaml")
    assert resolved["experiments"].keys() == config["experiments"].keys()
    # Nothing is left to do: a second invocation schedules no job that runs a command. (Snakemake may
    # list the target rule `all` alone: its inputs are made by jobs whose `raw_inputs` params read the
    # index checkpoint, and the params trigger marks them before the checkpoint is taken into account.)
    again = snakemake(workdir, "--cores", "2", "--configfile", str(configfile), "--dry-run")
    output = again.stdout + again.stderr
    assert "Nothing to be done" in output or job_counts(output) == {"all": 1}, again.stdout[-3000:]
    report = workdir / "report.html"
    snakemake(workdir, "--cores", "1", "--configfile", str(configfile), "--report", str(report))
    assert report.stat().st_size > 10_000


def test_adding_a_modality_runs_only_its_jobs(finished_run):
    workdir, config, _ = finished_run
    changed = copy.deepcopy(config)
    changed["experiments"]["depth_video"] = {
        **copy.deepcopy(config["experiments"]["rgb_video"]),
        "inputs": ["depth/frames"],
    }
    changed["experiments"]["ecg_psd"] = {
        **copy.deepcopy(config["experiments"]["gsr_waveform"]),
        "inputs": ["ecg/spec_psd"],
    }
    counts = dry_run_counts(workdir, write_yaml(changed, workdir / "added.yaml"))
    groups = 2  # 3 folds in groups of 2
    assert counts.get("embed") == 2  # depth/frames and ecg/spec_psd only
    assert counts.get("frames") == 1 and counts.get("depth_tiny_model") == 1
    assert counts.get("biosignal_images") == 1
    assert counts.get("train") == 2 * groups
    assert counts.get("experiment_definition") == 2 and counts.get("report_experiment") == 2
    assert "thermal_generator" not in counts and "index" not in counts and "demo_data" not in counts


def test_changing_one_hyperparameter_reruns_that_experiment_only(finished_run):
    workdir, config, _ = finished_run
    changed = copy.deepcopy(config)
    changed["experiments"]["emg_concat"]["overrides"] = {"dropout": 0.3}
    counts = dry_run_counts(workdir, write_yaml(changed, workdir / "hyper.yaml"))
    assert counts.get("train") == 2  # the two fold groups of emg_concat
    assert counts.get("experiment_definition") == 1 and counts.get("report_experiment") == 1
    assert "embed" not in counts and "biosignal_images" not in counts and "frames" not in counts
    # Regrouping the folds retrains every experiment once, as one group each.
    regrouped = copy.deepcopy(config)
    regrouped["training"]["folds_per_job"] = "all"
    counts = dry_run_counts(workdir, write_yaml(regrouped, workdir / "regrouped.yaml"))
    assert counts.get("train") == len(config["experiments"])
    assert "embed" not in counts and "experiment_definition" not in counts


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ({"folds_per_job": 0}, "config key 'training.folds_per_job' must be a whole number >= 1 or 'all', got 0"),
        ({"gpu_share": 2}, "config key 'training.gpu_share' must be in (0, 1], got 2 (more than one GPU"),
    ],
)
def test_bad_training_keys_are_one_line_errors(tmp_path, training, expected):
    config = tiny_demo_config(tmp_path)
    config["training"].update(training)
    result = snakemake(
        tmp_path, "--cores", "1", "--configfile", str(write_yaml(config, tmp_path / "c.yaml")), "-n", check=False
    )
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_bad_config_key_is_named(tmp_path):
    config = tiny_demo_config(tmp_path)
    config["backbone"]["batchsize"] = 4
    result = snakemake(
        tmp_path, "--cores", "1", "--configfile", str(write_yaml(config, tmp_path / "c.yaml")), "-n", check=False
    )
    assert result.returncode != 0
    assert "batchsize" in result.stdout + result.stderr


def test_lint_and_format_are_clean():
    lint = subprocess.run(
        [str(BIN / "snakemake"), "--lint", "--cores", "1"], cwd=REPO, capture_output=True, text=True, env=environment()
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lints for rule" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("profile", ["workflow/profiles/default", "workflow/profiles/slurm"])
def test_dry_run_of_the_full_biovid_grid(tmp_path, profile):
    configfile, config = full_biovid_grid(tmp_path)
    # Targets go before --configfile, which would take them for more config files.
    snakemake(tmp_path, "results/biovid/samples.tsv", "--cores", "1", "--configfile", str(configfile))
    counts = dry_run_counts(tmp_path, configfile, "--workflow-profile", str(REPO / profile))
    assert counts["train"] == len(config["experiments"])  # folds_per_job: all, one job per experiment
    assert counts["report_experiment"] == len(config["experiments"])
    inputs = {name for e in config["experiments"].values() for name in e["inputs"]}
    assert counts["embed"] == len(inputs)
