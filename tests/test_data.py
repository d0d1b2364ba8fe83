"""Sample table, tasks, signal readers and the BioVid / AI4Pain indexers on real files in tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tree_helpers import (
    BIOVID_ROWS,
    make_ai4pain_tree,
    make_biovid_tree,
    write_bio_csv,
    write_fnirs_csv,
)

from painformer.cli import main
from painformer.data import (
    SAMPLE_COLUMNS,
    Ai4PainLayout,
    index_ai4pain,
    index_biovid,
    load_signal,
    read_biosignals,
    read_fnirs,
    read_sample_table,
    task_classes,
    write_sample_table,
)
from painformer.data.ai4pain import DEFAULT_CHANNELS
from painformer.errors import InputError

# ------------------------------------------------------------------ fixtures: files on disk


# ------------------------------------------------------------------ tasks and the sample table


def test_task_classes_known_and_unknown():
    assert task_classes("NP_vs_P4") == ("BL1", "PA4")
    assert task_classes("NP_vs_P1") == ("BL1", "PA1")
    assert task_classes("multiclass_5") == ("BL1", "PA1", "PA2", "PA3", "PA4")
    assert task_classes("ai4pain_3class") == ("No", "Low", "High")
    with pytest.raises(InputError, match="NP_vs_P4.*multiclass_5"):
        task_classes("NP_vs_P5")


def _table_rows() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": "biovid",
                "sample": f"{s}-{c}-001",
                "subject": s,
                "subject_id": str(i),
                "class_id": cid,
                "class_name": c,
                "video": f"v/{s}-{c}.mp4",
                "biosignals": f"b/{s}-{c}_bio.csv",
                "split": "",
            }
            for i, s in reversed(list(enumerate(["a_m_1", "b_w_2"])))
            for c, cid in (("PA4", 4), ("BL1", 0))
        ]
    )


def test_sample_table_round_trip_sorted(tmp_path):
    path = write_sample_table(_table_rows(), tmp_path / "t" / "samples.tsv")
    table = read_sample_table(path)
    assert list(table.columns) == list(SAMPLE_COLUMNS)
    assert table["sample"].tolist() == ["a_m_1-BL1-001", "a_m_1-PA4-001", "b_w_2-BL1-001", "b_w_2-PA4-001"]
    assert table["class_id"].dtype.kind == "i" and table["split"].tolist() == [""] * 4
    assert table["subject_id"].tolist() == ["0", "0", "1", "1"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns=["video"]), "lacks the columns \\['video'\\]"),
        (lambda t: t.assign(class_id=["x", 0, 4, 0]), "class_id is not a non-negative integer"),
        (lambda t: t.assign(sample=["s", "s", "t", "u"]), "samples listed twice"),
        (lambda t: t.assign(class_id=[4, 0, 3, 0]), "more than one class_id"),
    ],
)
def test_sample_table_rejects_bad_tables_naming_the_file(tmp_path, change, message):
    path = tmp_path / "bad.tsv"
    change(_table_rows()).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match=message) as caught:
        read_sample_table(path)
    assert str(path) in str(caught.value)


def test_sample_table_missing_file(tmp_path):
    with pytest.raises(InputError, match="sample table not found"):
        read_sample_table(tmp_path / "absent.tsv")


# ------------------------------------------------------------------ signal files


def test_read_biosignals_and_load_signal(tmp_path):
    path = write_bio_csv(tmp_path / "s_bio.csv", columns=("gsr", "ecg", "emg_trapezius", "emg_corrugator"))
    record = read_biosignals(path)
    assert record.fs == pytest.approx(512.0, rel=1e-4)
    assert set(record.signals) == {"gsr", "ecg", "emg_trapezius", "emg_corrugator"}
    assert record.n_samples == BIOVID_ROWS
    raw = pd.read_csv(path, sep="\t")
    for signal, column in (("ecg", "ecg"), ("emg", "emg_trapezius"), ("gsr", "gsr")):
        values, fs = load_signal(path, signal)
        assert values.dtype == np.float64 and values.shape == (BIOVID_ROWS,)
        np.testing.assert_allclose(values, raw[column].to_numpy())
        assert fs == pytest.approx(512.0, rel=1e-4)
    with pytest.raises(InputError, match="unknown signal 'eeg'"):
        load_signal(path, "eeg")


def _with_nan_and_missing_column(path: Path) -> None:
    write_bio_csv(path, columns=("gsr", "ecg"))
    frame = pd.read_csv(path, sep="\t")
    frame.loc[100, "ecg"] = np.nan
    frame.to_csv(path, sep="\t", index=False)


def _with_gap(path: Path) -> None:
    write_bio_csv(path)
    frame = pd.read_csv(path, sep="\t")
    frame.drop(index=range(1000, 1100)).to_csv(path, sep="\t", index=False)


@pytest.mark.parametrize(
    "make, expected",
    [
        (_with_nan_and_missing_column, ["missing columns ['emg_trapezius']", "'ecg' has 1 NaN/inf"]),
        (lambda p: write_bio_csv(p, time_scale=1e3), ["sampling rate 5120", "expected 512 Hz"]),
        (lambda p: write_bio_csv(p, fs=256.0), ["sampling rate 256 Hz"]),
        (_with_gap, ["irregular sampling"]),
        (
            lambda p: write_bio_csv(p, rows=600),
            ["too short: 600 rows (at 512 Hz", "need at least 2560 rows (5 s at 512 Hz)"],
        ),
        (lambda p: p.write_text(""), ["empty file"]),
        (lambda p: p.write_text("time\tgsr\tecg\temg_trapezius\n0\t1\tabc\t2\n"), ["non-numeric values"]),
    ],
)
def test_read_biosignals_reports_every_problem(tmp_path, make, expected):
    path = tmp_path / "x_bio.csv"
    make(path)
    with pytest.raises(InputError) as caught:
        read_biosignals(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for text in expected:
        assert text in message


def test_fnirs_reader_default_layout(tmp_path):
    path = write_fnirs_csv(tmp_path / "1_No_1.csv", seconds=8.0)
    values, fs = load_signal(path, "fnirs")
    assert values.shape == (22, 400) and values.dtype == np.float64 and fs == pytest.approx(50.0)
    recording = read_fnirs(path)
    assert recording.channels == DEFAULT_CHANNELS[:22]
    raw = pd.read_csv(path)
    np.testing.assert_allclose(recording.hbo2[3], raw["S2_D3_HbO2"].to_numpy())
    np.testing.assert_allclose(recording.hhb[3], raw["S2_D3_HHb"].to_numpy())
    # Excluding other channels through the layout changes which rows come back.
    layout = Ai4PainLayout.from_mapping({"excluded_channels": ["S1_D1"]})
    values, _ = load_signal(path, "fnirs", layout=layout)
    np.testing.assert_allclose(values[0], raw["S1_D2_HbO2"].to_numpy())
    assert values.shape == (23, 400)


def test_fnirs_reader_reports_problems(tmp_path):
    short = write_fnirs_csv(tmp_path / "short.csv", channels=DEFAULT_CHANNELS[:20])
    with pytest.raises(InputError, match="20 _HbO2 columns, expected 24"):
        read_fnirs(short)
    slow = write_fnirs_csv(tmp_path / "slow.csv", fs=10.0)
    with pytest.raises(InputError, match="sampling rate 10 Hz"):
        read_fnirs(slow)
    frame = pd.read_csv(short.parent / "slow.csv").drop(columns=["S3_D3_HHb"])
    frame.to_csv(tmp_path / "unpaired.csv", index=False)
    with pytest.raises(InputError, match="without both _HbO2 and _HHb: \\['S3_D3'\\]"):
        read_fnirs(tmp_path / "unpaired.csv")


# ------------------------------------------------------------------ BioVid indexer


def test_index_biovid_clean_tree_relative_paths(tmp_path, video_file, monkeypatch):
    names = make_biovid_tree(tmp_path / "biovid", video_file)
    monkeypatch.chdir(tmp_path)
    table, problems = index_biovid("biovid", dataset="demo")
    assert problems == []
    assert sorted(table["sample"]) == sorted(names) and len(table) == 6
    assert table["subject"].is_monotonic_increasing
    row = table.iloc[0]
    assert row["video"] == f"biovid/video/{row['subject']}/{row['sample']}.mp4"
    assert row["biosignals"] == f"biovid/biosignals_filtered/{row['subject']}/{row['sample']}_bio.csv"
    assert set(table["dataset"]) == {"demo"} and set(table["split"]) == {""}
    assert dict(zip(table["class_name"], table["class_id"])) == {"BL1": 0, "PA1": 1, "PA4": 4}
    only, _ = index_biovid("biovid", classes=["BL1", "PA4"])
    assert sorted(set(only["class_name"])) == ["BL1", "PA4"] and len(only) == 4
    with pytest.raises(InputError, match="unknown BioVid classes \\['PA9'\\]"):
        index_biovid("biovid", classes=["PA9"])
    with pytest.raises(InputError, match="samples.csv not found"):
        index_biovid(tmp_path / "nowhere")


def test_index_biovid_raw_biosignals(tmp_path, video_file):
    make_biovid_tree(tmp_path, video_file, kind="raw")
    table, problems = index_biovid(tmp_path, biosignals="raw")
    assert problems == [] and all("/biosignals_raw/" in path for path in table["biosignals"])
    _, problems = index_biovid(tmp_path, biosignals="filtered", check_videos=False)
    assert len(problems) == 6 and all(p.problem == "file not found" for p in problems)


def test_index_biovid_reports_all_problems_at_once(tmp_path, video_file):
    root = tmp_path
    names = make_biovid_tree(root, video_file, per_class=2)
    subject = "071309_w_21"

    def bio(name: str) -> Path:
        return root / "biosignals_filtered" / name.split("-")[0] / f"{name}_bio.csv"

    def vid(name: str) -> Path:
        return root / "video" / name.split("-")[0] / f"{name}.mp4"

    vid(names[0]).unlink()  # listed video missing
    bio(names[1]).unlink()  # listed biosignals missing
    write_bio_csv(bio(names[2]), columns=("gsr", "ecg"))  # a column missing
    vid(names[3]).write_bytes(b"not a video at all")  # undecodable video
    vid(names[4]).write_bytes(b"")  # empty video
    write_bio_csv(bio(names[5]), fs=500.0)  # another sampling rate
    shutil.copy(video_file, root / "video" / subject / f"{subject}-PA2-099.mp4")  # not listed
    listing = (root / "samples.csv").read_text().splitlines()
    listing.append(f"0\t{subject}\t3\tPA9\t99\t{subject}-PA9-001")  # unknown class
    listing.append(f"0\t{subject}\t2\tPA1\t98\t{subject}-PA1-050")  # class_id contradicts class_name
    (root / "samples.csv").write_text("\n".join(listing) + "\n")

    table, problems = index_biovid(root)
    by_sample = {}
    for problem in problems:
        by_sample.setdefault(problem.sample, []).append(problem)
    assert by_sample[names[0]][0].file == str(vid(names[0])) and by_sample[names[0]][0].problem == "file not found"
    assert by_sample[names[1]][0].file == str(bio(names[1])) and by_sample[names[1]][0].problem == "file not found"
    assert "missing columns ['emg_trapezius']" in by_sample[names[2]][0].problem
    assert by_sample[names[3]][0].file == str(vid(names[3])) and "does not decode" in by_sample[names[3]][0].problem
    assert by_sample[names[4]][0].problem == "empty file"
    assert "sampling rate 500 Hz" in by_sample[names[5]][0].problem
    assert by_sample[""][0].file == str(root / "video" / subject / f"{subject}-PA2-099.mp4")
    assert "not listed in samples.csv" in by_sample[""][0].problem
    assert "unknown class_name 'PA9'" in by_sample[f"{subject}-PA9-001"][0].problem
    assert "class_id '2' does not match" in by_sample[f"{subject}-PA1-050"][0].problem
    assert by_sample[f"{subject}-PA1-050"][0].file.endswith("samples.csv line 15")
    assert len(problems) == 9
    # The table keeps exactly the samples without problems.
    assert sorted(table["sample"]) == sorted(names[6:])


# ------------------------------------------------------------------ AI4Pain indexer


def test_index_ai4pain_default_layout(tmp_path, video_file):
    names = make_ai4pain_tree(tmp_path, video_file)
    table, problems = index_ai4pain(tmp_path)
    assert problems == []
    assert sorted(table["sample"]) == sorted(names)
    assert table.groupby("subject")["split"].first().to_dict() == {
        "1": "train",
        "2": "train",
        "3": "validation",
        "4": "test",
    }
    assert dict(zip(table["class_name"], table["class_id"])) == {"No": 0, "Low": 1, "High": 2}
    row = table[table["sample"] == "3_Low_1"].iloc[0]
    assert row["biosignals"] == str(tmp_path / "validation" / "fnirs" / "3" / "3_Low_1.csv")
    assert row["video"] == str(tmp_path / "validation" / "video" / "3" / "3_Low_1.mp4")
    values, fs = load_signal(row["biosignals"], "fnirs")
    assert values.shape == (22, 500) and fs == pytest.approx(50.0)
    only, _ = index_ai4pain(tmp_path, classes=["No", "High"])
    assert set(only["class_name"]) == {"No", "High"} and len(only) == 8


def test_index_ai4pain_reports_problems(tmp_path, video_file):
    make_ai4pain_tree(tmp_path, video_file)
    (tmp_path / "train" / "video" / "1" / "1_Low_1.mp4").unlink()
    write_fnirs_csv(tmp_path / "train" / "fnirs" / "2" / "2_No_1.csv", channels=DEFAULT_CHANNELS[:10])
    write_fnirs_csv(tmp_path / "test" / "fnirs" / "4" / "4_Medium_1.csv")
    write_fnirs_csv(tmp_path / "test" / "fnirs" / "1" / "1_No_2.csv")
    (tmp_path / "test" / "video" / "4" / "4_High_1.mp4").write_bytes(b"")
    shutil.copy(video_file, tmp_path / "validation" / "video" / "3" / "3_Extra_9.mp4")
    table, problems = index_ai4pain(tmp_path)
    found = {(p.sample, p.problem.split(" (")[0]) for p in problems}
    assert ("1_Low_1", "video not found") in found
    assert ("2_No_1", "10 _HbO2 columns, expected 24") in found
    assert ("4_Medium_1", "label 'Medium' is not one of ['High', 'Low', 'No']") in found
    assert ("1_No_2", "subject 1 is in both train and test") in found
    assert ("4_High_1", "empty file") in found
    assert ("3_Extra_9", "video without an fNIRS file") in found
    assert len(problems) == 6
    assert not {"1_Low_1", "2_No_1", "4_High_1"} & set(table["sample"])
    assert len(table) == 12 - 3


def test_index_ai4pain_unlabelled_names_and_one_signal(tmp_path, video_file):
    names = make_ai4pain_tree(tmp_path, video_file, splits={"test": ["5"]}, labelled=False)
    assert names == ["5_1", "5_2", "5_3"]
    table, problems = index_ai4pain(tmp_path)
    assert table.empty and {p.problem for p in problems} == {"no class label in the file name"}
    table, problems = index_ai4pain(tmp_path, unlabelled="unlabelled")
    assert not problems and table["class_name"].tolist() == ["unlabelled"] * 3
    assert table["class_id"].tolist() == [0, 0, 0]

    shutil.rmtree(tmp_path / "test" / "video")
    _, problems = index_ai4pain(tmp_path, unlabelled="unlabelled")
    assert {p.problem for p in problems} == {"video not found"}
    table, problems = index_ai4pain(tmp_path, unlabelled="unlabelled", need_video=False)
    assert not problems and sorted(table["sample"]) == names

    videos = tmp_path / "videos_only"
    make_ai4pain_tree(videos, video_file, splits={"test": ["6"]}, labelled=False)
    shutil.rmtree(videos / "test" / "fnirs")
    table, problems = index_ai4pain(videos, unlabelled="unlabelled", need_fnirs=False)
    assert not problems and table["video"].map(lambda path: Path(path).is_file()).all()
    assert table["biosignals"].tolist() == [str(videos / "test" / "fnirs" / "6" / f"6_{n}.csv") for n in (1, 2, 3)]


def test_ai4pain_layout_from_json(tmp_path, video_file):
    for split, subject in (("fold_a", "s01"), ("fold_b", "s02")):
        for _label, stem_label in (("No", "baseline"), ("High", "hot")):
            stem = f"{subject}-{stem_label}"
            frame = pd.read_csv(write_fnirs_csv(tmp_path / "x.csv", seconds=4.0, fs=10.0))
            frame["time"] = frame["time"] * 1000.0  # milliseconds
            (tmp_path / split / "nirs" / subject).mkdir(parents=True, exist_ok=True)
            frame.to_csv(tmp_path / split / "nirs" / subject / f"{stem}.txt", sep="\t", index=False)
            (tmp_path / split / "face" / subject).mkdir(parents=True, exist_ok=True)
            shutil.copy(video_file, tmp_path / split / "face" / subject / f"{stem}.mp4")
    layout_file = tmp_path / "layout.json"
    layout_file.write_text(
        json.dumps(
            {
                "splits": ["fold_a", "fold_b"],
                "fnirs_dir": "nirs",
                "video_dir": "face",
                "fnirs_suffix": ".txt",
                "stem_pattern": r"^(?P<subject>s\d+)-(?P<label>[a-z]+)$",
                "labels": {"baseline": "No", "hot": "High"},
                "separator": "\t",
                "time_unit_seconds": 0.001,
                "fs": 10.0,
                "excluded_channels": ["S1_D1"],
            }
        )
    )
    layout = Ai4PainLayout.from_json(str(layout_file))
    table, problems = index_ai4pain(tmp_path, layout=layout)
    assert problems == [] and len(table) == 4
    assert table.set_index("sample")["split"].to_dict() == {
        "s01-baseline": "fold_a",
        "s01-hot": "fold_a",
        "s02-baseline": "fold_b",
        "s02-hot": "fold_b",
    }
    assert load_signal(table["biosignals"].iloc[0], "fnirs", layout=layout)[0].shape == (23, 40)
    with pytest.raises(InputError, match="unknown keys \\['channel_count'\\]"):
        Ai4PainLayout.from_json('{"channel_count": 20}')
    with pytest.raises(InputError, match="labels map to unknown classes \\['Mild'\\]"):
        Ai4PainLayout.from_mapping({"labels": {"m": "Mild"}})


# ------------------------------------------------------------------ command line


def _index_argv(root: Path, out: Path, report: Path, *extra: str) -> list[str]:
    return [
        "index",
        "--dataset",
        "biovid",
        "--root",
        str(root),
        "--biosignals",
        "filtered",
        "--classes",
        "BL1,PA4",
        "--report",
        str(report),
        "--out",
        str(out),
        *extra,
    ]


def test_cli_index_fail_and_exclude(tmp_path, video_file, capsys):
    names = make_biovid_tree(tmp_path / "data", video_file)
    out, report = tmp_path / "res" / "samples.tsv", tmp_path / "res" / "bad.tsv"
    assert main(_index_argv(tmp_path / "data", out, report, "--on-bad-sample", "fail")) == 0
    assert pd.read_csv(report, sep="\t").empty and list(pd.read_csv(report, sep="\t").columns) == [
        "sample",
        "file",
        "problem",
    ]
    table = read_sample_table(out)
    assert len(table) == 4 and set(table["class_name"]) == {"BL1", "PA4"} and set(table["dataset"]) == {"biovid"}
    out.unlink()

    broken = names[0]  # first subject, BL1
    (tmp_path / "data" / "video" / broken.split("-")[0] / f"{broken}.mp4").unlink()
    write_bio_csv(tmp_path / "data" / "biosignals_filtered" / names[2].split("-")[0] / f"{names[2]}_bio.csv", rows=100)
    assert main(_index_argv(tmp_path / "data", out, report, "--on-bad-sample", "fail")) == 1
    error = capsys.readouterr().err
    assert "2 problems found" in error and broken in error and names[2] in error
    assert not out.exists()
    assert sorted(pd.read_csv(report, sep="\t")["sample"]) == sorted([broken, names[2]])

    assert main(_index_argv(tmp_path / "data", out, report, "--on-bad-sample", "exclude", "--name", "mine")) == 0
    table = read_sample_table(out)
    assert sorted(table["sample"]) == sorted(set(names) - {broken, names[2]} - {n for n in names if "PA1" in n})
    assert set(table["dataset"]) == {"mine"}


def test_cli_index_report_defaults_next_to_out(tmp_path, video_file, capsys):
    names = make_biovid_tree(tmp_path / "data", video_file)
    out = tmp_path / "res" / "samples.tsv"
    assert main(["index", "--dataset", "biovid", "--root", str(tmp_path / "data"), "--out", str(out)]) == 0
    assert len(read_sample_table(out)) == len(names)
    report = tmp_path / "res" / "bad_samples.tsv"
    assert pd.read_csv(report, sep="\t").empty

    (tmp_path / "data" / "video" / names[0].split("-")[0] / f"{names[0]}.mp4").unlink()
    assert main(["index", "--dataset", "biovid", "--root", str(tmp_path / "data"), "--out", str(out)]) == 1
    assert str(report) in capsys.readouterr().err
    assert pd.read_csv(report, sep="\t")["sample"].tolist() == [names[0]]
    assert (
        main(
            ["index", "--dataset", "biovid", "--root", str(tmp_path / "data"), "--out", str(out), "--report", str(out)]
        )
        == 1
    )
    assert "--report and --out are the same file" in capsys.readouterr().err


def test_cli_index_ai4pain_with_layout(tmp_path, video_file):
    make_ai4pain_tree(tmp_path / "ai", video_file, splits={"train": ["7"], "test": ["8"]})
    out, report = tmp_path / "samples.tsv", tmp_path / "bad.tsv"
    layout = json.dumps({"excluded_channels": ["S1_D1", "S1_D2", "S2_D2"]})
    argv = [
        "index",
        "--dataset",
        "ai4pain",
        "--root",
        str(tmp_path / "ai"),
        "--classes",
        "",
        "--on-bad-sample",
        "fail",
        "--report",
        str(report),
        "--out",
        str(out),
        "--video-check",
        "decode",
        "--ai4pain-layout",
        layout,
    ]
    assert main(argv) == 0
    table = read_sample_table(out)
    assert len(table) == 6 and set(table["split"]) == {"train", "test"}
    assert main(argv[:-1] + ['{"bogus": 1}']) == 1


def test_cli_demo_data_is_indexed_by_the_biovid_loader(tmp_path):
    root = tmp_path / "demo"
    assert (
        main(
            [
                "demo-data",
                str(root),
                "--subjects",
                "1",
                "--samples-per-class",
                "1",
                "--seed",
                "3",
                "--thermal-pairs",
                "0",
                "--workers",
                "2",
                "--gsr-strength",
                "0",
                "--face-strength",
                "0.5",
                "--ecg-strength",
                "1.5",
                "--emg-strength",
                "2",
                "--low-responder-fraction",
                "0",
            ]
        )
        == 0
    )
    settings = json.loads((root / "demo_dataset.json").read_text())["settings"]
    assert settings == {
        "subjects": 1,
        "samples_per_class": 1,
        "seed": 3,
        "thermal_pairs": 0,
        "low_responder_fraction": 0.0,
        "face_strength": 0.5,
        "ecg_strength": 1.5,
        "emg_strength": 2.0,
        "gsr_strength": 0.0,
    }
    table, problems = index_biovid(root)
    assert problems == []
    assert sorted(table["class_name"]) == ["BL1", "PA1", "PA2", "PA3", "PA4"]
    values, fs = load_signal(table["biosignals"].iloc[0], "ecg")
    assert fs == pytest.approx(512.0, rel=1e-3) and values.shape == (2816,)
    # No skin-conductance response to pain at GSR strength 0: PA4 rises no more than drift allows.
    pa4 = table.loc[table["class_name"] == "PA4", "biosignals"].iloc[0]
    gsr, fs = load_signal(pa4, "gsr")
    assert abs(gsr[-int(fs) :].mean() - gsr[: int(fs) // 2].mean()) < 0.15
    assert main(["demo-data", str(tmp_path / "bad"), "--gsr-strength", "-2"]) == 1
