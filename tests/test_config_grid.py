"""The experiment grid, the names module and the schema's defaults."""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess

import pytest
import yaml
from snakemake.utils import validate
from workflow_helpers import REPO, dry_run_counts, snakemake, tiny_demo_config, write_yaml

from painformer import names
from painformer.cli import build_parser
from painformer.errors import InputError
from painformer.experiment_grid import apply_experiment_grid, expand_experiment_grid

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DATA = REPO / "tests" / "data"


def _load(path):
    return yaml.safe_load(path.read_text())


# ------------------------------------------------------------------ the shipped grids


@pytest.mark.parametrize("dataset, count", [("biovid", 58), ("ai4pain", 9)])
def test_shipped_grid_expands_to_the_experiments_once_written_out(dataset, count):
    """tests/data holds the experiments the config wrote out by hand (commit 405e8b4)."""
    config = _load(REPO / "config" / f"{dataset}.yaml")
    written_out = _load(DATA / f"{dataset}_experiments_405e8b4.yaml")
    expanded = expand_experiment_grid(config)
    assert len(expanded) == count == len(written_out)
    assert list(expanded) == list(written_out)
    for name, experiment in written_out.items():
        assert expanded[name] == experiment, name
    # After the schema has filled its defaults the two are still the same, key for key.
    apply_experiment_grid(config)
    validate(config, str(SCHEMA))
    old = _load(REPO / "config" / f"{dataset}.yaml")
    old.pop("experiment_grid")
    old["experiments"] = written_out
    validate(old, str(SCHEMA))
    assert config == old


def test_the_grid_is_the_compact_form():
    lines = len((REPO / "config" / "biovid.yaml").read_text().splitlines())
    before = subprocess.run(
        ["git", "-C", str(REPO), "show", "405e8b4:config/biovid.yaml"], capture_output=True, text=True
    )
    if before.returncode == 0:
        assert len(before.stdout.splitlines()) == 435
    assert lines < 120


def test_committed_copy_matches_the_old_file_when_history_is_there():
    before = subprocess.run(
        ["git", "-C", str(REPO), "show", "405e8b4:config/biovid.yaml"], capture_output=True, text=True
    )
    if before.returncode != 0:
        pytest.skip("commit 405e8b4 is not in this checkout's history")
    assert yaml.safe_load(before.stdout)["experiments"] == _load(DATA / "biovid_experiments_405e8b4.yaml")


# ------------------------------------------------------------------ grid semantics and refusals


def test_grid_products_labels_values_and_omitted_keys():
    config = {
        "experiment_grid": [
            {
                "name": "{signal}_{image}_{variant}",
                "vary": {
                    "signal": ["ecg", "gsr"],
                    "image": {"wave": "waveform", "psd": "spec_psd"},
                    "variant": {"base": None, "drop3": {"dropout": 0.3}},
                },
                "experiment": {"inputs": ["{signal}/{image}"], "preset": "p", "overrides": "{variant}"},
            }
        ],
        "experiments": {"extra": {"inputs": ["rgb/frames"], "preset": "p"}},
    }
    expanded = expand_experiment_grid(config)
    assert list(expanded)[:3] == ["ecg_wave_base", "ecg_wave_drop3", "ecg_psd_base"]
    assert list(expanded)[-1] == "extra" and len(expanded) == 9
    assert expanded["gsr_psd_drop3"] == {"inputs": ["gsr/spec_psd"], "preset": "p", "overrides": {"dropout": 0.3}}
    assert expanded["gsr_psd_base"] == {"inputs": ["gsr/spec_psd"], "preset": "p"}
    # Each experiment owns its values: changing one changes no other.
    expanded["ecg_wave_drop3"]["overrides"]["dropout"] = 0.9
    assert expanded["gsr_wave_drop3"]["overrides"] == {"dropout": 0.3}


@pytest.mark.parametrize(
    "block, message",
    [
        ({"name": "x_{a}", "vary": {"a": ["1"]}}, r"missing keys \['experiment'\]"),
        ({"name": "x_{a}", "vary": {"a": ["1"]}, "experiment": {}, "extra": 1}, r"unknown keys \['extra'\]"),
        ({"name": "x", "vary": {"a": ["1", "2"]}, "experiment": {}}, r"name 'x' lacks the axes \['a'\]"),
        ({"name": "x_{a}", "vary": {"a": ["1"]}, "experiment": {"preset": "{b}"}}, r"placeholders \['b'\]"),
        ({"name": "x_{a}", "vary": {"a": []}, "experiment": {}}, "axis 'a' has no values"),
        ({"name": "x_{a}", "vary": {"a": [1]}, "experiment": {}}, "list of strings or a mapping"),
        ({"name": "x_{a}", "vary": {}, "experiment": {}}, "non-empty mapping"),
        (
            {"name": "x_{a}", "vary": {"a": {"l": [1, 2]}}, "experiment": {"task": "t_{a}"}},
            r"writes \{a\} into a string but its value is \[1, 2\]",
        ),
    ],
)
def test_grid_refuses_malformed_blocks(block, message):
    with pytest.raises(InputError, match=r"experiment_grid block 1\b.*" + message):
        expand_experiment_grid({"experiment_grid": [block]})


def test_grid_refuses_a_name_made_twice():
    block = {"name": "e_{a}", "vary": {"a": ["1"]}, "experiment": {"preset": "p"}}
    with pytest.raises(InputError, match=r"block 2: experiment 'e_1' is also made by an earlier block"):
        expand_experiment_grid({"experiment_grid": [block, block]})
    with pytest.raises(InputError, match=r"experiments \['e_1'\] are both in experiment_grid and in experiments"):
        expand_experiment_grid({"experiment_grid": [block], "experiments": {"e_1": {}}})


def test_workflow_runs_from_a_grid_and_its_resolved_config_is_reusable(tmp_path):
    """The demo's experiments given as a grid give the same jobs as written out; the resolved config holds
    them written out and is itself a valid --configfile."""
    config = tiny_demo_config(tmp_path)
    written = write_yaml(config, tmp_path / "written.yaml")
    experiments = config.pop("experiments")
    # One block per experiment whose inputs come through an axis (a whole list substituted).
    config["experiment_grid"] = [
        {"name": "{e}", "vary": {"e": {name: experiment["inputs"]}}, "experiment": {**experiment, "inputs": "{e}"}}
        for name, experiment in experiments.items()
    ]
    grid = write_yaml(config, tmp_path / "grid.yaml")
    counts = dry_run_counts(tmp_path, grid)
    assert counts == dry_run_counts(tmp_path, written)
    snakemake(tmp_path, "results/demo/config.resolved.yaml", "--cores", "1", "--configfile", str(grid))
    resolved = tmp_path / "results" / "demo" / "config.resolved.yaml"
    assert "experiment_grid" not in _load(resolved) and list(_load(resolved)["experiments"]) == list(experiments)
    # Run from the resolved file, nothing changes, not even the resolved config itself.
    assert dry_run_counts(tmp_path, resolved) == {rule: n for rule, n in counts.items() if rule != "resolved_config"}


# ------------------------------------------------------------------ one list of names


def _schema() -> dict:
    return _load(SCHEMA)


def test_schema_lists_agree_with_the_names_module():
    properties = _schema()["properties"]
    experiment = properties["experiments"]["additionalProperties"]["properties"]
    assert experiment["inputs"]["items"]["pattern"] == names.input_pattern()
    assert tuple(experiment["fusion"]["enum"]) == names.FUSIONS
    assert tuple(experiment["aggregation"]["enum"]) == names.AGGREGATIONS
    pretrain = properties["pretrain"]["properties"]
    assert tuple(pretrain["signals"]["items"]["enum"]) == names.BIOVID_SIGNALS
    assert tuple(pretrain["representation"]["enum"]) == names.PRETRAIN_REPRESENTATIONS
    assert tuple(properties["video"]["properties"]["crop"]["enum"]) == names.CROPS
    name_pattern = properties["dataset"]["properties"]["name"]["pattern"]
    assert name_pattern == names.SAFE_NAME_PATTERN
    assert properties["experiments"]["propertyNames"]["pattern"] == names.SAFE_NAME_PATTERN


def test_input_pattern_accepts_exactly_the_stores_input_problem_accepts():
    pattern = re.compile(names.input_pattern())
    for modality, representation in itertools.product((*names.MODALITIES, "eeg"), (*names.REPRESENTATIONS, "x")):
        valid = names.input_problem(modality, representation) is None
        assert bool(pattern.match(f"{modality}/{representation}")) == valid, (modality, representation)


def test_stage_modules_read_the_names_module():
    import importlib

    signals = importlib.import_module("painformer.data.signals")
    aggregate = importlib.import_module("painformer.embed.aggregate")
    embed_cli = importlib.import_module("painformer.embed.cli")
    sources = importlib.import_module("painformer.embed.sources")
    params = importlib.import_module("painformer.render.params")
    config = importlib.import_module("painformer.train.config")

    assert signals.SIGNALS is names.SIGNALS and params.SIGNALS is names.SIGNALS
    assert params.REPRESENTATIONS is names.SIGNAL_REPRESENTATIONS
    assert params.SPECTROGRAM_REPRESENTATIONS is names.SPECTROGRAM_REPRESENTATIONS
    assert embed_cli.MODALITIES is names.MODALITIES and embed_cli.REPRESENTATIONS is names.REPRESENTATIONS
    assert sources.input_problem is names.input_problem
    assert aggregate.AGGREGATIONS is names.AGGREGATIONS
    assert config.FUSIONS is names.FUSIONS and config.AGGREGATIONS is names.AGGREGATIONS


def _option(path: list[str], option: str) -> argparse.Action:
    parser = build_parser(path)
    for command in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[command]
    return next(a for a in parser._actions if option in a.option_strings)


@pytest.mark.parametrize(
    "path, option, expected",
    [
        (["render-biosignals"], "--signal", names.SIGNALS),
        (["render-biosignals"], "--representation", names.SIGNAL_REPRESENTATIONS),
        (["embed"], "--modality", names.MODALITIES),
        (["embed"], "--representation", names.REPRESENTATIONS),
        (["attention"], "--modality", names.MODALITIES),
        (["attention"], "--representation", names.REPRESENTATIONS),
        (["attention"], "--crop", names.CROPS),
        (["pretrain", "make-demo-tasks"], "--signal", names.BIOVID_SIGNALS),
        (["pretrain", "make-demo-tasks"], "--representation", names.PRETRAIN_REPRESENTATIONS),
    ],
)
def test_command_line_choices_are_the_names(path, option, expected):
    assert tuple(_option(path, option).choices) == tuple(expected)


def test_wildcard_constraints_come_from_the_names_module():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    block = text[text.index("wildcard_constraints:") :].split("\n\n")[0]
    for wildcard, listed in (
        ("modality", "MODALITIES"),
        ("representation", "REPRESENTATIONS"),
        ("signal", "SIGNALS"),
        ("frame_model", "FRAME_MODELS"),
    ):
        assert f"{wildcard}=names.alternation(names.{listed})" in block


# ------------------------------------------------------------------ defaults owned by the schema


def test_schema_fills_the_defaults_of_absent_sections():
    config = {
        "dataset": {"name": "x", "format": "biovid", "root": "r"},
        "backbone": {},
        "video": {"num_frames": 2},
        "presets": {"p": {}},
        "experiments": {"e": {"inputs": ["rgb/frames"], "task": "NP_vs_P4", "preset": "p"}},
    }
    validate(config, str(SCHEMA))
    assert config["thermal"] == {
        "checkpoint": None,
        "pairs": None,
        "train": {"epochs": 4, "image_size": 64, "batch_size": 16, "lr": 2.0e-4, "seed": 0},
    }
    assert config["report"] == {"compare": [], "attention_samples": 2, "attention_frames": 4, "probe": True}
    assert config["pretrain"]["enabled"] is False and config["pretrain"]["demo"] is None
    assert config["depth"] == {"model_dir": None, "tiny_when_missing": False}
    assert config["training"] == {"device": "auto", "folds_per_job": "all", "gpu_share": 1, "compile": False}
    assert config["dataset"]["demo"] is None and config["dataset"]["samples"] is None
    assert config["video"] == {"num_frames": 2, "fps": None, "crop": "center", "decoder": "auto"}
    assert config["backbone"] == {
        "checkpoint": None,
        "batch_size": 16,
        "device": "auto",
        "float16": False,
        "precision": "auto",
        "loader_threads": 2,
    }


def test_schema_defaults_equal_the_command_defaults():
    """The thermal training keys default to what `painformer thermal train` does without them."""
    validated = {
        "dataset": {"name": "x", "format": "biovid", "root": "r"},
        "backbone": {},
        "video": {"num_frames": 2},
        "presets": {"p": {}},
        "experiments": {"e": {"inputs": ["rgb/frames"], "task": "NP_vs_P4", "preset": "p"}},
    }
    validate(validated, str(SCHEMA))
    for key, option in (
        ("epochs", "--epochs"),
        ("image_size", "--image-size"),
        ("batch_size", "--batch-size"),
        ("seed", "--seed"),
        ("lr", "--lr"),
    ):
        assert validated["thermal"]["train"][key] == _option(["thermal", "train"], option).default, key
    assert validated["backbone"]["batch_size"] == _option(["embed"], "--batch-size").default
