"""The demo dataset: BioVid Part A layout, decodable H.264 video, biosignal files,
thermal pairs, determinism, clean regeneration, and a real class signal."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from painformer.data.demo import (
    BIO_RATE,
    BIO_SAMPLES,
    CLASS_NAMES,
    FRAME_SIZE,
    MARKER_FILE,
    NUM_FRAMES,
    THERMAL_SIZE,
    generate_demo_dataset,
    make_profiles,
)
from painformer.errors import InputError

TINY = {"subjects": 2, "samples_per_class": 1, "seed": 0, "thermal_pairs": 6}
PEAK_FRAME = 75  # 3.0 s: inside every sample's pain plateau (onset + rise <= 2.2 s, offset >= 3.6 s)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "root", workers=2, **TINY)


@pytest.fixture(scope="module")
def samples(demo_root) -> pd.DataFrame:
    return pd.read_csv(demo_root / "samples.csv", sep="\t", dtype={"subject_name": str, "sample_name": str})


def _bio(root: Path, row) -> pd.DataFrame:
    return pd.read_csv(root / "biosignals_filtered" / row.subject_name / f"{row.sample_name}_bio.csv", sep="\t")


def _all_bytes(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.glob(pattern))}


def test_layout_matches_biovid_part_a(demo_root, samples):
    assert list(samples.columns) == ["subject_id", "subject_name", "class_id", "class_name", "sample_id",
                                     "sample_name"]
    assert len(samples) == 2 * len(CLASS_NAMES)
    assert samples["sample_id"].tolist() == list(range(len(samples)))
    for subject_id, group in samples.groupby("subject_id"):
        (name,) = group["subject_name"].unique()
        assert re.fullmatch(r"\d{6}_[wm]_\d{2}", name)
        assert group["class_name"].tolist() == list(CLASS_NAMES)
        assert group["class_id"].tolist() == list(range(len(CLASS_NAMES)))
        numbers = sorted(int(s.rsplit("-", 1)[1]) for s in group["sample_name"])
        assert numbers == list(range(1, len(CLASS_NAMES) + 1))  # numbered per subject, 3 digits
        for row in group.itertuples():
            assert re.fullmatch(rf"{name}-{row.class_name}-\d{{3}}", row.sample_name)
            assert (demo_root / "video" / name / f"{row.sample_name}.mp4").stat().st_size > 1000
            assert (demo_root / "biosignals_filtered" / name / f"{row.sample_name}_bio.csv").is_file()
    assert sorted(p.name for p in (demo_root / "video").iterdir()) == sorted(samples["subject_name"].unique())


def test_video_decodes_with_decord(demo_root, samples):
    import decord

    row = samples.iloc[-1]
    reader = decord.VideoReader(str(demo_root / "video" / row.subject_name / f"{row.sample_name}.mp4"))
    assert len(reader) == NUM_FRAMES
    assert reader.get_avg_fps() == pytest.approx(25.0)
    frames = reader.get_batch([0, NUM_FRAMES - 1]).asnumpy()
    assert frames.shape == (2, FRAME_SIZE, FRAME_SIZE, 3)
    assert frames.std() > 20  # a drawn face, not a blank frame


def test_biosignal_files(demo_root, samples):
    for row in samples.itertuples():
        table = _bio(demo_root, row)
        assert list(table.columns) == ["time", "gsr", "ecg", "emg_trapezius"]
        assert len(table) == BIO_SAMPLES
        time_s = table["time"].to_numpy() / 1e6
        assert time_s[0] == 0
        assert 1.0 / np.diff(time_s).mean() == pytest.approx(BIO_RATE, rel=1e-3)
        assert table.notna().all().all()
        assert (table["gsr"] > 0).all()  # skin conductance in microsiemens


def test_thermal_pairs(demo_root):
    rgb = sorted(p.name for p in (demo_root / "thermal_pairs" / "rgb").glob("*.png"))
    thermal = sorted(p.name for p in (demo_root / "thermal_pairs" / "thermal").glob("*.png"))
    assert rgb == thermal and len(rgb) == TINY["thermal_pairs"]
    for name in rgb:
        visible = cv2.imread(str(demo_root / "thermal_pairs" / "rgb" / name))
        hot = cv2.imread(str(demo_root / "thermal_pairs" / "thermal" / name))
        assert visible.shape == hot.shape == (THERMAL_SIZE, THERMAL_SIZE, 3)
        # Warm face in the middle, cool background in the corner (ironbow: brighter is warmer).
        centre = hot[48:80, 48:80].astype(float).sum(axis=2).mean()
        corner = hot[:10, :10].astype(float).sum(axis=2).mean()
        assert centre > corner + 150


def test_same_seed_same_bytes_any_worker_count(demo_root, tmp_path):
    again = generate_demo_dataset(tmp_path / "again", workers=1, **TINY)
    for pattern in ("samples.csv", "biosignals_filtered/*/*.csv", "thermal_pairs/*/*.png"):
        assert _all_bytes(again, pattern) == _all_bytes(demo_root, pattern)
    assert [p.name for p in make_profiles(2, 1)] != [p.name for p in make_profiles(2, 0)]


def test_gsr_response_grows_with_pain(demo_root, samples):
    """The phasic skin-conductance response (rise over the window) of PA4 exceeds BL1 in every subject."""
    def response(row) -> float:
        gsr = _bio(demo_root, row)["gsr"].to_numpy()
        return float(gsr[-BIO_RATE:].mean() - gsr[: BIO_RATE // 2].mean())

    for _, group in samples.groupby("subject_id"):
        by_class = {row.class_name: response(row) for row in group.itertuples()}
        assert by_class["PA4"] > by_class["BL1"] + 0.2, by_class


def test_mouth_region_differs_between_bl1_and_pa4(demo_root, samples):
    """At the pain plateau the PA4 mouth is open and stretched (dark inside, teeth): far more contrast."""
    import decord

    profiles = {p.name: p for p in make_profiles(TINY["subjects"], TINY["seed"])}
    for name, group in samples.groupby("subject_name"):
        p = profiles[name]
        mouth_y = p.cy + p.mouth_y * p.face_h
        box = (slice(int(mouth_y - 0.15 * p.face_h), int(mouth_y + 0.12 * p.face_h)),
               slice(int(p.cx - 0.5 * p.face_w), int(p.cx + 0.5 * p.face_w)))
        contrast = {}
        for row in group[group["class_name"].isin(["BL1", "PA4"])].itertuples():
            reader = decord.VideoReader(str(demo_root / "video" / name / f"{row.sample_name}.mp4"))
            grey = reader[PEAK_FRAME].asnumpy().astype(float).mean(axis=2)
            contrast[row.class_name] = float(grey[box].std())
        assert contrast["PA4"] > 1.5 * contrast["BL1"], (name, contrast)


def test_rerun_over_a_partial_tree_regenerates_cleanly(tmp_path):
    smallest = {**TINY, "subjects": 1, "thermal_pairs": 2}
    root = generate_demo_dataset(tmp_path / "demo", workers=1, **smallest)
    reference = _all_bytes(root, "biosignals_filtered/*/*.csv")
    first_csv = (root / "samples.csv").read_bytes()
    # Interrupted run: no samples.csv, one file missing, one stray file.
    (root / "samples.csv").unlink()
    next(iter(sorted((root / "biosignals_filtered").glob("*/*.csv")))).unlink()
    stray = root / "video" / "stray_subject" / "stray.mp4"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"partial")
    generate_demo_dataset(root, workers=1, **smallest)
    assert not stray.parent.exists()
    assert (root / "samples.csv").read_bytes() == first_csv
    assert _all_bytes(root, "biosignals_filtered/*/*.csv") == reference
    # A complete tree with the same settings is kept as it is.
    stamp = (root / "samples.csv").stat().st_mtime_ns
    generate_demo_dataset(root, workers=1, **smallest)
    assert (root / "samples.csv").stat().st_mtime_ns == stamp


def test_refuses_a_foreign_directory_and_bad_sizes(tmp_path):
    foreign = tmp_path / "real_data"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=MARKER_FILE):
        generate_demo_dataset(foreign, **TINY)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="samples_per_class"):
        generate_demo_dataset(tmp_path / "x", subjects=1, samples_per_class=0)
    with pytest.raises(InputError, match="subjects"):
        generate_demo_dataset(tmp_path / "y", subjects=0)
