"""The demo dataset: BioVid Part A layout, decodable H.264 video, biosignal files,
thermal pairs, determinism, clean regeneration, a real class signal with low responders,
modality strengths, and the LOSO sanity check on the default demo."""

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
    LOW_RESPONSE,
    MARKER_FILE,
    NUM_FRAMES,
    THERMAL_SIZE,
    DemoSettings,
    generate_demo_dataset,
    make_profiles,
    plan_sample,
    settings_profiles,
    simulate_biosignals,
)
from painformer.errors import InputError

# Two subjects, one of them a low responder (seed 0 picks the first).
TINY = {"subjects": 2, "samples_per_class": 1, "seed": 0, "thermal_pairs": 6, "low_responder_fraction": 0.5}
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
    assert list(samples.columns) == ["subject_id", "subject_name", "class_id", "class_name", "sample_id", "sample_name"]
    assert len(samples) == 2 * len(CLASS_NAMES)
    assert samples["sample_id"].tolist() == list(range(len(samples)))
    for _subject_id, group in samples.groupby("subject_id"):
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


def test_every_video_decodes_with_decord(demo_root, samples):
    import decord

    for row in samples.itertuples():
        reader = decord.VideoReader(str(demo_root / "video" / row.subject_name / f"{row.sample_name}.mp4"))
        assert len(reader) == NUM_FRAMES, row.sample_name
        assert reader.get_avg_fps() == pytest.approx(25.0), row.sample_name
        frames = reader.get_batch([0, NUM_FRAMES - 1]).asnumpy()
        assert frames.shape == (2, FRAME_SIZE, FRAME_SIZE, 3)
        assert frames.std() > 20, row.sample_name  # a drawn face, not a blank frame


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
    for pattern in ("samples.csv", "biosignals_filtered/*/*.csv", "thermal_pairs/*/*.png", "video/*/*.mp4"):
        assert _all_bytes(again, pattern) == _all_bytes(demo_root, pattern)
    assert [p.name for p in make_profiles(2, 1)] != [p.name for p in make_profiles(2, 0)]


def _gsr_rise(root: Path, row) -> float:
    gsr = _bio(root, row)["gsr"].to_numpy()
    return float(gsr[-BIO_RATE:].mean() - gsr[: BIO_RATE // 2].mean())


def _pa4_minus_bl1(samples: pd.DataFrame, measure) -> dict[str, float]:
    """Per subject: ``measure(row)`` of its PA4 sample minus that of its BL1 sample."""
    out = {}
    for name, group in samples.groupby("subject_name"):
        by_class = {row.class_name: measure(row) for row in group.itertuples()}
        out[name] = by_class["PA4"] - by_class["BL1"]
    return out


def _low_responders() -> set[str]:
    profiles = make_profiles(TINY["subjects"], TINY["seed"], low_responder_fraction=TINY["low_responder_fraction"])
    return {p.name for p in profiles if p.low_responder}


def test_gsr_response_grows_with_pain_except_in_low_responders(demo_root, samples):
    """The skin-conductance rise of PA4 exceeds BL1 clearly in ordinary subjects, barely in low responders."""
    rise = _pa4_minus_bl1(samples, lambda row: _gsr_rise(demo_root, row))
    low = _low_responders()
    assert len(low) == 1 and len(rise) == 2
    ordinary = [value for name, value in rise.items() if name not in low]
    weak = [value for name, value in rise.items() if name in low]
    assert min(ordinary) > 0.2, rise
    assert max(weak) < 0.25 * min(ordinary), rise


def test_mouth_region_differs_between_bl1_and_pa4_except_in_low_responders(demo_root, samples):
    """At the pain plateau the PA4 mouth is open and stretched (dark inside, teeth): far more contrast,
    unless the subject barely reacts."""
    import decord

    profiles = {p.name: p for p in make_profiles(TINY["subjects"], TINY["seed"])}

    def contrast(row) -> float:
        p = profiles[row.subject_name]
        mouth_y = p.cy + p.mouth_y * p.face_h
        box = (
            slice(int(mouth_y - 0.15 * p.face_h), int(mouth_y + 0.12 * p.face_h)),
            slice(int(p.cx - 0.5 * p.face_w), int(p.cx + 0.5 * p.face_w)),
        )
        reader = decord.VideoReader(str(demo_root / "video" / row.subject_name / f"{row.sample_name}.mp4"))
        return float(reader[PEAK_FRAME].asnumpy().astype(float).mean(axis=2)[box].std())

    by_sample = {
        (row.subject_name, row.class_name): contrast(row)
        for row in samples[samples["class_name"].isin(["BL1", "PA4"])].itertuples()
    }
    ratio = {name: by_sample[name, "PA4"] / by_sample[name, "BL1"] for name in samples["subject_name"].unique()}
    for name, value in ratio.items():
        if name in _low_responders():
            assert value < 1.25, ratio
        else:
            assert value > 1.5, ratio


def test_low_responders_are_drawn_from_the_seed_and_leave_the_others_unchanged():
    default = make_profiles(6, 0)
    assert sum(p.low_responder for p in default) == 1  # the documented default: one subject in six
    assert sum(p.low_responder for p in make_profiles(20, 0)) == 3
    assert make_profiles(6, 0) == default
    none = make_profiles(6, 0, low_responder_fraction=0.0)
    assert not any(p.low_responder for p in none)
    for with_low, without in zip(default, none, strict=True):
        if with_low.low_responder:
            factor = with_low.responsiveness
            assert LOW_RESPONSE[0] <= factor <= LOW_RESPONSE[1]
            for gain in ("expressiveness", "heart_gain", "gsr_gain", "emg_gain"):
                assert getattr(with_low, gain) == pytest.approx(getattr(without, gain) * factor)
        else:
            assert with_low == without
    assert {p.name for p in default if p.low_responder} != {p.name for p in make_profiles(6, 3) if p.low_responder}


def _paired_plans(profile, seed: int):
    """BL1 and PA4 plans from the same random stream: they differ only by the class."""
    return (
        plan_sample(profile, 0, np.random.default_rng(seed)),
        plan_sample(profile, len(CLASS_NAMES) - 1, np.random.default_rng(seed)),
    )


def test_head_motion_grows_with_pain_around_a_subject_baseline():
    profiles = make_profiles(6, 0)
    plateau = slice(int(2.2 * 25), int(3.6 * 25))
    for profile in profiles:
        ratios = []
        for seed in range(10):
            bl1, pa4 = _paired_plans(profile, seed)
            assert np.abs(bl1.angle).max() <= profile.motion_rot * 2.0  # the baseline stays the subject's
            ratios.append(np.abs(pa4.angle[plateau]).mean() / np.abs(bl1.angle[plateau]).mean())
        if profile.low_responder:
            assert np.mean(ratios) < 1.3, (profile.name, ratios)
        else:
            assert np.mean(ratios) > 1.5, (profile.name, ratios)


def test_modality_strength_scales_its_response_only():
    base = DemoSettings(subjects=6, samples_per_class=1, seed=0, thermal_pairs=0)
    muted = DemoSettings(subjects=6, samples_per_class=1, seed=0, thermal_pairs=0, gsr_strength=0.0, face_strength=2.0)
    for normal, changed in zip(settings_profiles(base), settings_profiles(muted), strict=True):
        assert changed.gsr_gain == 0.0 and changed.heart_gain == normal.heart_gain
        assert changed.expressiveness == pytest.approx(2.0 * normal.expressiveness)
        rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
        signals_a = simulate_biosignals(normal, plan_sample(normal, 4, rng_a), rng_a)
        signals_b = simulate_biosignals(changed, plan_sample(changed, 4, rng_b), rng_b)
        np.testing.assert_array_equal(signals_a[:, 2:], signals_b[:, 2:])  # ECG and EMG untouched
        rise = signals_b[-BIO_RATE:, 1].mean() - signals_b[: BIO_RATE // 2, 1].mean()
        assert abs(rise) < 0.15  # drift and rare spontaneous responses only


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
    with pytest.raises(InputError, match="gsr_strength must be between 0 and 10, got -1"):
        generate_demo_dataset(tmp_path / "z", gsr_strength=-1.0)
    with pytest.raises(InputError, match="face_strength"):
        generate_demo_dataset(tmp_path / "z", face_strength=float("nan"))
    with pytest.raises(InputError, match="low_responder_fraction"):
        generate_demo_dataset(tmp_path / "z", low_responder_fraction=1.5)
    assert not (tmp_path / "z").exists()


@pytest.mark.slow
def test_sanity_check_on_the_default_demo(tmp_path):
    """Hand-made features separate BL1 from PA4 under LOSO on the workflow's default demo, none alone perfectly."""
    from painformer.data.biovid import index_biovid
    from painformer.data.sanity import FEATURES, sanity_check

    root = generate_demo_dataset(tmp_path / "demo", subjects=6, samples_per_class=4, seed=0, thermal_pairs=0, workers=2)
    table, problems = index_biovid(root, classes=["BL1", "PA4"], check_videos=False)
    assert problems == [] and len(table) == 6 * 2 * 4
    accuracy = sanity_check(table).accuracy["accuracy"]
    assert accuracy["all"] > 0.7, accuracy
    for feature in FEATURES:
        assert accuracy[feature] < 1.0, accuracy
