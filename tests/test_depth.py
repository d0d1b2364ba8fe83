"""Depth Anything on real frames: the tiny untrained model written by make-tiny, loaded offline.

The tiny model's depth maps are not meaningful; these tests check the code
path (loading, preprocessing, inference, normalisation, the resumable store),
not depth quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_video import draw_face, write_video

from painformer.depth import (
    depth_to_uint8,
    estimate_depth,
    load_depth_model,
    make_tiny_depth_model,
    preprocess_frames,
)
from painformer.depth.model import TINY_MARKER, describe_model_dir, model_dir_sha256
from painformer.errors import CheckpointError, StoreError
from painformer.stores import SampleStore
from painformer.video import read_frames

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_depth_model(tmp_path_factory.mktemp("models") / "depth_tiny", seed=0)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_depth_model(tiny_dir, "cpu")


def face_video(path: Path, *, n: int = 10, shift: int = 0) -> Path:
    frames = [draw_face(180, 240, 110 + shift + (i % 4), 95 + i // 3, 45) for i in range(n)]
    return write_video(path, frames, crf=18)


def test_make_tiny_writes_a_loadable_offline_model_marked_untrained(tiny_dir, tmp_path, capsys):
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    assert {p.name for p in tiny_dir.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "README.md",
    }
    assert json.loads((tiny_dir / "config.json").read_text())[TINY_MARKER] is True
    assert "UNTRAINED" in (tiny_dir / "README.md").read_text()
    model = AutoModelForDepthEstimation.from_pretrained(str(tiny_dir), local_files_only=True)
    processor = AutoImageProcessor.from_pretrained(str(tiny_dir), local_files_only=True)
    assert type(model).__name__ == "DepthAnythingForDepthEstimation"
    assert processor.size["height"] == 224 and processor.ensure_multiple_of == 14
    info = describe_model_dir(tiny_dir)
    assert info.untrained_tiny and "untrained" in info.name

    # same seed -> same weights (here through the command line); another seed -> other weights
    from painformer.cli import main

    again = tmp_path / "again"
    assert main(["depth", "make-tiny", str(again), "--seed", "0"]) == 0
    assert "UNTRAINED" in capsys.readouterr().out
    other = make_tiny_depth_model(tmp_path / "other", seed=1)
    assert describe_model_dir(again).weights_sha256 == info.weights_sha256
    assert describe_model_dir(other).weights_sha256 != info.weights_sha256
    # rewriting a tiny model is allowed, overwriting anything else is not
    make_tiny_depth_model(again, seed=0)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="precious.*refusing"):
        make_tiny_depth_model(precious, seed=0)


def test_model_dir_sha256_follows_the_loaded_files_only(tiny_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_dir, copy)
    (copy / "README.md").write_text("another readme")
    (copy / ".cache").mkdir()
    assert model_dir_sha256(copy) == model_dir_sha256(tiny_dir)
    rebuilt = make_tiny_depth_model(tmp_path / "rebuilt", seed=0)
    assert model_dir_sha256(rebuilt) == model_dir_sha256(tiny_dir)
    preprocessor = json.loads((copy / "preprocessor_config.json").read_text())
    preprocessor["do_resize"] = not preprocessor["do_resize"]
    (copy / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    assert model_dir_sha256(copy) != model_dir_sha256(tiny_dir)
    assert model_dir_sha256(make_tiny_depth_model(tmp_path / "seed1", seed=1)) != model_dir_sha256(tiny_dir)


def test_preprocessing_matches_the_image_processor(tiny):
    """The batched tensor path gives what the model directory's own processor gives."""
    from transformers import DPTImageProcessor

    _, processor = tiny
    frames = np.stack([draw_face(224, 224, 110, 110, 60), draw_face(224, 224, 95, 120, 40)])
    for reference in (
        processor,
        DPTImageProcessor(
            size={"height": 518, "width": 518},
            keep_aspect_ratio=True,
            ensure_multiple_of=14,
            resample=3,
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        ),
    ):
        expected = reference(images=list(frames), return_tensors="pt")["pixel_values"]
        ours = preprocess_frames(torch.from_numpy(frames), reference)
        assert ours.shape == expected.shape
        difference = (ours - expected).abs()
        assert difference.mean() < 2e-3 and difference.max() < 0.1


def test_estimate_depth_on_real_frames(tiny, tmp_path):
    model, processor = tiny
    frames = read_frames(face_video(tmp_path / "face.mp4"), num_frames=6)
    depth = estimate_depth(frames, model, processor, CPU, 4)
    assert depth.shape == (6, 224, 224, 3) and depth.dtype == np.uint8
    assert (depth[..., 0] == depth[..., 1]).all() and (depth[..., 0] == depth[..., 2]).all()
    # per-video stretch: the whole video spans 0..255, a single frame need not
    assert depth.min() == 0 and depth.max() == 255
    assert len(np.unique(depth)) > 50, "the untrained stand-in still gives image-dependent maps"
    # deterministic, and independent of the batch size up to one grey level
    np.testing.assert_array_equal(depth, estimate_depth(frames, model, processor, CPU, 4))
    one_by_one = estimate_depth(frames, model, processor, CPU, 1)
    assert np.abs(one_by_one.astype(int) - depth.astype(int)).max() <= 1

    per_frame = estimate_depth(frames, model, processor, CPU, 4, normalization="frame")
    assert (per_frame.reshape(6, -1).min(axis=1) == 0).all() and (per_frame.reshape(6, -1).max(axis=1) == 255).all()

    with pytest.raises(ValueError, match="uint8"):
        estimate_depth(frames.astype(np.float32), model, processor, CPU, 4)


def test_depth_to_uint8_rules():
    depth = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)])
    depth[0, 0, 0] = 0.0
    video = depth_to_uint8(depth, normalization="video")
    assert video.shape == (2, 4, 4, 3)
    assert video[0, 0, 0, 0] == 0 and video[0, 1, 1, 0] == 85 and video[1, 0, 0, 0] == 255
    frame = depth_to_uint8(depth, normalization="frame")
    assert frame[0, 0, 0, 0] == 0 and frame[0, 1, 1, 0] == 255
    assert (frame[1] == 0).all(), "a constant frame maps to 0"
    assert (depth_to_uint8(np.zeros((2, 3, 3)), normalization="video") == 0).all()
    with pytest.raises(ValueError, match="normalization"):
        depth_to_uint8(depth, normalization="global")


def write_table(tmp_path: Path, videos: list[Path]) -> Path:
    rows = []
    for i, video in enumerate(videos):
        biosignals = tmp_path / f"{video.stem}_bio.csv"
        biosignals.write_text("time\tgsr\tecg\temg_trapezius\n")
        rows.append(
            {
                "dataset": "demo",
                "sample": video.stem,
                "subject": f"s{i // 2}",
                "subject_id": i // 2,
                "class_id": 4 * (i % 2),
                "class_name": ["BL1", "PA4"][i % 2],
                "video": str(video),
                "biosignals": str(biosignals),
                "split": "",
            }
        )
    path = tmp_path / "samples.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_apply_command_end_to_end_and_resume(tiny_dir, tiny, tmp_path, caplog):
    from painformer.cli import main

    videos = [face_video(tmp_path / f"s{i}-{c}.mp4", n=8, shift=10 * i) for i, c in enumerate(["BL1", "PA4", "BL1"])]
    table = write_table(tmp_path, videos)
    out, marker = tmp_path / "depth.zarr", tmp_path / "depth.complete"
    command = [
        "depth",
        "apply",
        "--samples",
        str(table),
        "--model-dir",
        str(tiny_dir),
        "--num-frames",
        "4",
        "--crop",
        "center",
        "--out",
        str(out),
        "--complete-marker",
        str(marker),
        "--batch-size",
        "3",
        "--device",
        "auto",
    ]
    assert main(command) == 0
    assert json.loads(marker.read_text())["complete"] is True
    store = SampleStore.open_complete(out)
    assert store.attrs["kind"] == "frames" and store.read().shape == (3, 4, 224, 224, 3)
    assert store.attrs["depth_model"]["untrained_tiny"] is True
    assert store.attrs["depth_model"]["config_sha256"] == describe_model_dir(tiny_dir).config_sha256
    model, processor = tiny
    for i, video in enumerate(videos):
        expected = estimate_depth(read_frames(video, num_frames=4, crop="center"), model, processor, CPU, 3)
        np.testing.assert_array_equal(store.read(i), expected)
    first = store.read(0)

    # resume: sample 1 is flagged not done and blanked; sample 0 is altered behind the store's back,
    # so its checksum no longer matches and the rerun repairs it too
    writable = SampleStore.open(out)
    writable.group["done"][1] = False
    writable.array[1] = 0
    writable.array[0] = 7
    marker.unlink()
    assert main(command) == 0
    resumed = SampleStore.open_complete(out)
    np.testing.assert_array_equal(resumed.read(0), first)
    np.testing.assert_array_equal(
        resumed.read(1), estimate_depth(read_frames(videos[1], num_frames=4), model, processor, CPU, 3)
    )
    assert marker.is_file()

    # a complete store: nothing to do
    writable.array[0] = first
    with caplog.at_level("INFO", logger="painformer.stores"):
        assert main(command) == 0
    assert any("0 of 3 samples to process" in record.getMessage() for record in caplog.records)

    # other settings on the same store are refused, naming what differs
    with pytest.raises(StoreError, match="num_frames"):
        from painformer.data import read_sample_table
        from painformer.depth.apply import DepthSettings, apply_depth

        apply_depth(table=read_sample_table(table), model_dir=tiny_dir, out=out, settings=DepthSettings(num_frames=5))


def test_apply_resamples_videos_at_another_frame_rate(tiny_dir, tiny, tmp_path, caplog):
    """--fps reaches the frame reader: 25 fps videos read as if 10 fps were expected, with a warning."""
    from painformer.cli import main

    videos = [face_video(tmp_path / f"r{i}-{c}.mp4", n=12, shift=8 * i) for i, c in enumerate(["BL1", "PA4"])]
    table = write_table(tmp_path, videos)
    out = tmp_path / "depth10.zarr"
    with caplog.at_level("WARNING", logger="painformer.video.frames"):
        assert (
            main(
                [
                    "depth",
                    "apply",
                    "--samples",
                    str(table),
                    "--model-dir",
                    str(tiny_dir),
                    "--num-frames",
                    "5",
                    "--fps",
                    "10",
                    "--out",
                    str(out),
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
    for video in videos:
        assert any(str(video) in r.getMessage() and "expected 10 fps" in r.getMessage() for r in caplog.records)
    store = SampleStore.open(out)
    assert store.attrs["fingerprint"]["fps"] == 10.0
    model, processor = tiny
    resampled = read_frames(videos[0], num_frames=5, fps=10)
    assert not np.array_equal(resampled, read_frames(videos[0], num_frames=5))
    np.testing.assert_array_equal(store.read(0), estimate_depth(resampled, model, processor, CPU, 16))


def test_bad_model_dir_is_a_clear_error(tmp_path, capsys):
    from painformer.cli import main

    with pytest.raises(CheckpointError, match="nowhere.*Depth-Anything-V2-Small-hf.*depth.model_dir"):
        load_depth_model(tmp_path / "nowhere", "cpu")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="half.*missing preprocessor_config.json, model.safetensors"):
        load_depth_model(half, "cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "not_a_model"}))
    (broken / "preprocessor_config.json").write_text("{}")
    (broken / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError, match="broken.*cannot load"):
        load_depth_model(broken, "cpu")

    video = face_video(tmp_path / "v.mp4", n=3)
    table = write_table(tmp_path, [video])
    code = main(
        [
            "depth",
            "apply",
            "--samples",
            str(table),
            "--model-dir",
            str(tmp_path / "nowhere"),
            "--num-frames",
            "2",
            "--out",
            str(tmp_path / "d.zarr"),
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "nowhere" in error and "depth.model_dir" in error
