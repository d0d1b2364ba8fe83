"""Folds trained together (stacked, one process) against folds trained one by one, on real Zarr stores."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from train_helpers import (  # noqa: F401  (one_thread: an autouse fixture)
    FOLD_FILES,
    FUSION_EXPERIMENTS,
    experiments_config,
    one_thread,
    synthetic_table,
    write_synthetic_dataset,
)

from painformer.cli import COMMANDS
from painformer.cli import main as cli_main
from painformer.errors import InputError
from painformer.train.cli import resolve_folds
from painformer.train.config import load_experiments
from painformer.train.data import load_experiment_data
from painformer.train.loop import cosine_lr, train_fold
from painformer.train.stack import MaskedAdamW, StackedTrainer, stack_problem, train_folds, train_stacked


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """The training dataset with subject s2 cut to 6 task samples: fold s2 trains on 60 samples (4 steps
    of 16), the other folds on 46 (3 steps), so in a stacked run fold s2 steps alone at the end."""
    root = tmp_path_factory.mktemp("stack")
    table = synthetic_table()
    cut = table[(table["subject"] == "s2") & (table["class_name"] != "PA1")].groupby("class_name").head(3)
    table = pd.concat([table[table["subject"] != "s2"], cut]).sort_values(["subject", "sample"]).reset_index(drop=True)
    return write_synthetic_dataset(root, table)


def _experiment(name: str, **preset):
    experiment = load_experiments(experiments_config(**{name: FUSION_EXPERIMENTS[name]}))[name]
    changes = {"epochs": 5, **preset}
    return dataclasses.replace(experiment, preset=dataclasses.replace(experiment.preset, **changes))


@pytest.mark.parametrize(
    ("name", "dropout"), [("single", 0.0), ("single", 0.5), ("decision", 0.5), ("eq12", 0.0), ("eq12", 0.5)]
)
def test_stacked_folds_equal_folds_trained_alone(uneven, name, dropout):
    experiment = _experiment(name, dropout=dropout)
    data = load_experiment_data(experiment, uneven["table"], uneven["embeddings"])
    folds = ["s1", "s2", "s3", "s4"]
    cpu = torch.device("cpu")
    alone = [train_fold(experiment, fold, data, device=cpu) for fold in folds]
    stacked = list(train_stacked(experiment, folds, data, device=cpu))
    assert [r.n_train for r in stacked] == [46, 60, 46, 46]
    for one, many in zip(alone, stacked):
        assert many.fold == one.fold and many.seed == one.seed
        np.testing.assert_array_equal(many.test_samples, one.test_samples)
        assert np.abs(many.probabilities - one.probabilities).max() < 1e-4
        for a, b in zip(one.history, many.history):
            assert a["lr"] == b["lr"] and a["train_accuracy"] == b["train_accuracy"]
            assert abs(a["train_loss"] - b["train_loss"]) < 1e-4
        for key, value in one.model.state_dict().items():
            assert torch.allclose(many.model.state_dict()[key], value, atol=1e-4), key


def test_a_folds_draws_do_not_depend_on_its_companions(uneven):
    experiment = _experiment("single", dropout=0.5)
    data = load_experiment_data(experiment, uneven["table"], uneven["embeddings"])
    cpu = torch.device("cpu")
    pair = {r.fold: r for r in train_stacked(experiment, ["s3", "s1"], data, device=cpu)}
    four = {r.fold: r for r in train_stacked(experiment, ["s1", "s2", "s3", "s4"], data, device=cpu)}
    for fold in ("s1", "s3"):
        assert np.abs(pair[fold].probabilities - four[fold].probabilities).max() < 1e-4


def test_masked_adamw_leaves_a_fold_without_a_batch_untouched():
    torch.manual_seed(0)
    weights = torch.randn(2, 5, 3)
    stacked = weights.clone().requires_grad_(True)
    optimizer = MaskedAdamW([stacked], weight_decay=0.05, folds=2)
    # Each fold against torch's AdamW fed only the steps that fold takes.
    references = [weights[k].clone().requires_grad_(True) for k in range(2)]
    torch_adamws = [torch.optim.AdamW([r], lr=0.01, weight_decay=0.05) for r in references]
    for step in range(5):
        grad = torch.randn(2, 5, 3)
        stacked.grad = grad.clone()
        active = [True, step % 2 == 0]  # fold 1 sits out steps 1 and 3
        before = (stacked[1].detach().clone(), optimizer.exp_avg[0][1].clone(), optimizer.exp_avg_sq[0][1].clone())
        optimizer.step(0.01, active, torch.tensor(active, dtype=torch.float32))
        if not active[1]:
            after = (stacked[1], optimizer.exp_avg[0][1], optimizer.exp_avg_sq[0][1])
            assert all(torch.equal(x, y) for x, y in zip(before, after))
        for k in range(2):
            if active[k]:
                references[k].grad = grad[k].clone()
                torch_adamws[k].step()
    assert optimizer.steps.tolist() == [5.0, 3.0]
    for k in range(2):
        assert torch.allclose(stacked[k], references[k], atol=1e-6)
    assert not torch.allclose(stacked[1], weights[1], atol=1e-3)


def test_attention_dropout_falls_back_to_folds_one_after_another(uneven):
    experiment = _experiment("single")
    experiment = dataclasses.replace(experiment, model={**experiment.model, "attn_dropout": 0.1})
    assert "attn_dropout" in stack_problem(experiment)
    data = load_experiment_data(experiment, uneven["table"], uneven["embeddings"])
    cpu = torch.device("cpu")
    results = list(train_folds(experiment, ["s1", "s3"], data, device=cpu))
    alone = train_fold(experiment, "s3", data, device=cpu)
    np.testing.assert_array_equal(results[1].probabilities, alone.probabilities)


def test_cosine_lr_warms_up_decays_and_cools_down():
    lrs = [cosine_lr(e, epochs=10, lr=1.0, warmup_epochs=2, cooldown_epochs=2) for e in range(10)]
    assert lrs[0] == 0.01 and lrs[1] == pytest.approx(0.505) and lrs[2] == 1.0
    assert all(a > b for a, b in zip(lrs[2:7], lrs[3:8]))
    assert lrs[8] == lrs[9] == 0.01
    assert cosine_lr(0, epochs=10, lr=1.0, warmup_epochs=0, cooldown_epochs=0) == 1.0


def test_resolve_folds_errors_name_the_fold():
    available = ["s1", "s2"]
    assert resolve_folds(["all"], available, experiment="e") == available
    assert resolve_folds(["s2", "s1"], available, experiment="e") == ["s2", "s1"]
    with pytest.raises(InputError, match=r"fold\(s\) \['s9'\] unknown"):
        resolve_folds(["s1", "s9"], available, experiment="e")
    with pytest.raises(InputError, match="requested twice"):
        resolve_folds(["s1", "s1"], available, experiment="e")
    with pytest.raises(InputError, match="fold list is empty"):
        resolve_folds([], available, experiment="e")


def test_cli_trains_folds_together_into_fold_folders(uneven, tmp_path, capsys):
    config = experiments_config(single=FUSION_EXPERIMENTS["single"])
    config["experiments"]["single"]["overrides"] = {"epochs": 5}
    config_path = tmp_path / "experiment.yaml"
    config_path.write_text(yaml.safe_dump(config))
    runs = tmp_path / "runs" / "single"
    common = ["--config", str(config_path), "--experiment", "single", "--samples", str(uneven["samples"])]
    common += ["--embeddings", str(uneven["embeddings"]), "--threads", "1", "--device", "cpu"]
    marker = tmp_path / "groups" / "g0.json"
    argv = ["train", *common, "--folds", "all", "--out", str(runs), "--marker", str(marker)]
    assert cli_main(argv) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["fold-s1", "fold-s2", "fold-s3", "fold-s4"]
    for fold_dir in runs.iterdir():
        assert sorted(p.name for p in fold_dir.iterdir()) == FOLD_FILES
    assert json.loads(marker.read_text())["folds"] == ["s1", "s2", "s3", "s4"]
    # The stacked fold s1 gives the predictions of `--fold s1` (within float rounding).
    single = tmp_path / "alone"
    assert cli_main(["train", *common, "--fold", "s1", "--out", str(single)]) == 0
    stacked = pd.read_csv(runs / "fold-s1" / "predictions.tsv", sep="\t")
    alone = pd.read_csv(single / "predictions.tsv", sep="\t")
    assert np.abs(stacked["prob_PA4"] - alone["prob_PA4"]).max() < 1e-4
    # An unknown fold is one error naming it, before anything is written.
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert cli_main(["train", *common, "--folds", "s1", "s7", "--out", str(bad)]) == 1
    assert "['s7'] unknown" in capsys.readouterr().err and not bad.exists()


def test_help_imports_no_torch_and_lists_every_command():
    code = "import sys; from painformer.cli import main; main(['--help'])"
    probe = f"import sys, runpy\ntry:\n    exec({code!r})\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_summaries_are_the_commands_own(command):
    """The summaries `painformer --help` shows without importing a module are the ones each module registers."""
    import argparse
    import importlib

    module, summary = COMMANDS[command]
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    importlib.import_module(module).add_commands(subparsers)
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    assert helps[command] == summary


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stacked_steps_never_wait_for_the_gpu(uneven):
    experiment = _experiment("eq12", dropout=0.5)
    data = load_experiment_data(experiment, uneven["table"], uneven["embeddings"])
    device = torch.device("cuda")
    trainer = StackedTrainer(experiment, ["s1", "s2", "s3", "s4"], data, device=device)
    trainer.run_epoch(0)  # first epoch outside the check: kernels are loaded and planned here
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.run_epoch(1)
        trainer.run_epoch(2)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    results = list(trainer.results())
    assert all(np.isfinite(r.probabilities).all() for r in results)
    assert all(len(r.history) == 3 for r in results)
