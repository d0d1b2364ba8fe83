"""`painformer models summary` reproduces Table I's parameters and MACs for the three models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from painformer.cli import main

# Tolerances: the backbone and Video-Encoder reproduce Table I; the Embedding-Mixer is the
# closest faithful configuration, required within 10 % of both figures.
TOLERANCE = {"PainFormer": 0.01, "Embedding-Mixer": 0.10, "Video-Encoder": 0.01}


def test_summary_command_prints_json_rows_within_table_one() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "painformer.cli", "models", "summary", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(TOLERANCE)
    for name, row in rows.items():
        assert row["params"] / 1e6 == pytest.approx(row["table_params_m"], rel=TOLERANCE[name]), name
        assert row["macs"] / 1e9 == pytest.approx(row["table_gmacs"], rel=TOLERANCE[name]), name
    assert rows["PainFormer"]["input_shape"] == [1, 3, 224, 224]
    assert rows["Video-Encoder"]["input_shape"] == [1, 22_080]
    # The published backbone counts 19.60 M parameters exactly.
    assert rows["PainFormer"]["params"] == pytest.approx(19.60e6, abs=0.005e6)
    # Table I's figures, written out here rather than read from the code's own copy of them.
    for name, (params_m, gmacs) in {
        "PainFormer": (19.60, 5.82),
        "Embedding-Mixer": (9.85, 2.94),
        "Video-Encoder": (3.37, 0.86),
    }.items():
        assert (rows[name]["table_params_m"], rows[name]["table_gmacs"]) == (params_m, gmacs), name
        assert rows[name]["macs"] / 1e9 == pytest.approx(gmacs, rel=TOLERANCE[name]), name


def test_summary_table_lists_ours_beside_table_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "summary", "--input-length", "160"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["model", "input"]
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert set(rows) == set(TOLERANCE)
    mixer = rows["Embedding-Mixer"].split()
    # model, input "1 x 160", params, Table I params, diff, GMACs, Table I GMACs, diff
    assert mixer[1:4] == ["1", "x", "160"]
    assert float(mixer[5]) == 9.85 and float(mixer[8]) == 2.94
    # A 160-long input is far cheaper than Table I's 22,080-long one.
    assert float(mixer[7]) < 2.94 * 0.9


def test_summary_rejects_a_non_positive_length(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "summary", "--input-length", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err
