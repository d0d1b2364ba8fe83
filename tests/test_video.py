"""Video decoding on real H.264 files written with PyAV and read back with each decoder (decord, PyAV).

Every decoding test runs once per decoder (the ``decoder`` fixture; decord's runs
are skipped where it is not installed). The tests comparing the two decoders
need both and check that they give the same frames.

The face-crop detection test uses a drawn face (flat shapes: skin ellipse,
brows, eyes, nose, mouth) that OpenCV's frontal-face cascade does detect; it
shows that the box follows the face and is stable, not how well the cascade
does on real faces.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from painformer.data.validation import video_problems
from painformer.errors import InputError
from painformer.video import (
    FrameSampling,
    center_square,
    count_frames,
    crop_and_resize,
    decode_frames,
    decode_planned,
    open_video,
    read_frames,
    resolve_decoder,
)
from painformer.video.decoders import decord_installed
from painformer.video.face import detect_face_box

needs_both = pytest.mark.skipif(not decord_installed(), reason="comparing the decoders needs decord installed")


@pytest.fixture(params=["decord", "pyav"])
def decoder(request) -> str:
    if request.param == "decord" and not decord_installed():
        pytest.skip("decord is not installed here")
    return request.param


def write_video(path: Path, frames: list[np.ndarray], *, fps: int | Fraction = 25, crf: int = 0) -> Path:
    """Encode uint8 RGB frames as H.264 (crf 0: lossless in YUV, so pixel values survive)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def index_video(path: Path, n: int, *, height: int = 120, width: int = 160, fps: int | Fraction = 25) -> Path:
    """Frame i is a flat grey of brightness 4*i, so a decoded frame tells its index."""
    return write_video(path, [np.full((height, width, 3), 4 * i, np.uint8) for i in range(n)], fps=fps)


def coded_video(path: Path, n: int, *, fps: int | Fraction, height: int = 48, width: int = 64) -> Path:
    """Frame i is flat, red 16*(i // 16) and green 16*(i % 16): up to 256 frames that tell their index
    (steps of 16 survive the RGB/YUV round trip, which moves values by 1 or 2)."""
    colours = [(16 * (i // 16), 16 * (i % 16), 0) for i in range(n)]
    return write_video(path, [np.full((height, width, 3), c, np.uint8) for c in colours], fps=fps)


def decoded_indices(frames: np.ndarray) -> list[int]:
    """Indices of frames of a ``coded_video``."""
    mean = frames.reshape(len(frames), -1, 3).mean(axis=1)
    return (16 * np.rint(mean[:, 0] / 16) + np.rint(mean[:, 1] / 16)).astype(int).tolist()


UNREADABLE_MESSAGE = "video does not decode (not a readable video file: unknown format, or damaged)"


def zero_frame_video(path: Path) -> Path:
    """An mp4 whose H.264 stream was set up but never given a frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
        for packet in stream.encode():
            container.mux(packet)
    assert path.stat().st_size > 0
    return path


def audio_only_file(path: Path) -> Path:
    """An mp4 holding 0.2 s of silence and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for _ in range(3):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def textured_video(
    path: Path, n: int, *, fps: int | Fraction = 25, gop: int = 12, height: int = 120, width: int = 160
) -> Path:
    """A lossy H.264 clip as cameras write it: yuv420p, crf 23, B-frames, a key frame every ``gop`` frames.

    Moving gradients, a moving white square and sensor noise, so that every frame differs and
    chroma subsampling and motion compensation have work to do.
    """
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "23", "g": str(gop), "bf": "3"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n):
            image = np.stack(
                [(cols * 2 + i * 3) % 256, (rows * 2 + i * 5) % 256, ((cols + rows) // 2 + 60 * np.sin(i / 7)) % 256],
                axis=-1,
            )
            x, y = int(width / 2 + width / 4 * np.cos(i / 10)), int(height / 2 + height / 4 * np.sin(i / 10))
            image[max(0, y - 12) : y + 12, max(0, x - 12) : x + 12] = 255
            image = np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def warnings_about(caplog, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


def draw_face(height: int, width: int, centre_x: int, centre_y: int, scale: int) -> np.ndarray:
    image = np.full((height, width, 3), 90, np.uint8)
    s = scale
    cv2.ellipse(image, (centre_x, centre_y), (int(s * 0.8), s), 0, 0, 360, (210, 170, 150), -1)
    for side in (-1, 1):
        eye_x, eye_y = centre_x + side * int(s * 0.35), centre_y - int(s * 0.2)
        cv2.ellipse(image, (eye_x, eye_y - int(s * 0.18)), (int(s * 0.22), int(s * 0.05)), 0, 0, 360, (50, 40, 40), -1)
        cv2.ellipse(image, (eye_x, eye_y), (int(s * 0.17), int(s * 0.08)), 0, 0, 360, (235, 235, 235), -1)
        cv2.circle(image, (eye_x, eye_y), int(s * 0.07), (30, 30, 30), -1)
    cv2.ellipse(
        image, (centre_x, centre_y + int(s * 0.15)), (int(s * 0.08), int(s * 0.2)), 0, 0, 360, (190, 150, 130), -1
    )
    cv2.ellipse(image, (centre_x, centre_y + int(s * 0.5)), (int(s * 0.3), int(s * 0.08)), 0, 0, 360, (140, 60, 60), -1)
    return cv2.GaussianBlur(image, (0, 0), 2)


def test_frame_indices_rule():
    assert FrameSampling(4).indices(138).tolist() == [0, 46, 91, 137]
    assert FrameSampling(None).indices(5).tolist() == [0, 1, 2, 3, 4]
    assert FrameSampling(1).indices(10).tolist() == [0]
    # shorter than requested: frames repeat, first and last kept
    assert FrameSampling(5).indices(3).tolist() == [0, 0, 1, 2, 2]
    assert FrameSampling(4, window=(0.25, 0.75)).indices(101).tolist() == [25, 42, 58, 75]
    assert FrameSampling(None, window=(0.5, 1.0)).indices(5).tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="window"):
        FrameSampling(4, window=(0.6, 0.4))
    with pytest.raises(ValueError, match="num_frames must be a positive integer or None, got 0"):
        FrameSampling(0)


def test_all_frames_and_evenly_spaced_frames(tmp_path, decoder):
    path = index_video(tmp_path / "index.mp4", 50)
    assert count_frames(path, decoder=decoder) == 50

    every = read_frames(path, num_frames=None, decoder=decoder)
    assert every.shape == (50, 224, 224, 3) and every.dtype == np.uint8
    np.testing.assert_allclose(every[:, 100, 100, 0], 4 * np.arange(50), atol=2)

    four = read_frames(path, num_frames=4, decoder=decoder)
    assert four.shape == (4, 224, 224, 3)
    expected_indices = np.rint(np.linspace(0, 49, 4))  # 0, 16, 33, 49
    np.testing.assert_allclose(four[:, 50, 50, 0], 4 * expected_indices, atol=2)
    # the whole frame is one grey: decoded brightness says exactly which frame it was
    decoded_index = np.rint(four.reshape(4, -1).mean(axis=1) / 4).astype(int)
    assert decoded_index.tolist() == [0, 16, 33, 49]


def test_short_video_repeats_frames_and_warns(tmp_path, caplog, decoder):
    path = index_video(tmp_path / "short.mp4", 3)
    with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
        frames = read_frames(path, num_frames=5, size=32, decoder=decoder)
    assert frames.shape == (5, 32, 32, 3)
    assert np.rint(frames[:, 0, 0, 0] / 4).astype(int).tolist() == [0, 0, 1, 2, 2]
    assert any("3 frames" in m and "fewer than the 5 requested" in m for m in warnings_about(caplog, path))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
        read_frames(path, num_frames=3, size=32, decoder=decoder)
    assert warnings_about(caplog, path) == []


@pytest.mark.parametrize("rate", [15, 50])
def test_other_frame_rate_is_resampled_by_timestamp(tmp_path, caplog, rate, decoder):
    """2 s at 15 or 50 fps: the frames chosen are those shown at the moments a 25 fps video of 2 s gives."""
    reference = coded_video(tmp_path / "at25.mp4", 50, fps=25)
    path = coded_video(tmp_path / f"at{rate}.mp4", 2 * rate, fps=rate)
    for num_frames in (5, 16):
        sampling = FrameSampling(num_frames)
        wanted, _ = decode_planned(reference, sampling=sampling, fps=25, decoder=decoder)
        assert not wanted.resampled
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
            plan, frames = decode_planned(path, sampling=sampling, fps=25, decoder=decoder)
        assert plan.resampled and plan.video_fps == pytest.approx(rate)
        # the frame on screen at each 25 fps moment: its timestamp is within half a frame of it
        np.testing.assert_array_equal(plan.indices, np.rint(wanted.times * rate).astype(int))
        assert np.abs(plan.times - wanted.times).max() <= 0.5 / rate + 1e-6
        assert decoded_indices(frames) == plan.indices.tolist()
        messages = warnings_about(caplog, path)
        assert any(f"{rate} fps" in m and "expected 25 fps" in m for m in messages), messages
    # without a sampling: as many frames as 2 s at 25 fps, not as the file has
    plan, frames = decode_planned(path, sampling=FrameSampling(None), fps=25, decoder=decoder)
    assert len(frames) == 50
    np.testing.assert_array_equal(plan.indices, np.rint(np.arange(50) * rate / 25).astype(int))
    # without an expected rate the file's own frames are taken, by index
    plan, _ = decode_planned(path, sampling=FrameSampling(5), fps=None, decoder=decoder)
    assert not plan.resampled and plan.indices.tolist() == np.rint(np.linspace(0, 2 * rate - 1, 5)).astype(int).tolist()


def test_matching_frame_rate_keeps_the_index_rule_without_warning(tmp_path, caplog, decoder):
    ntsc = coded_video(tmp_path / "ntsc.mp4", 40, fps=Fraction(30000, 1001))
    with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
        plan, frames = decode_planned(ntsc, sampling=FrameSampling(4), fps=30, decoder=decoder)
        read_frames(ntsc, num_frames=4, size=64, fps=30, decoder=decoder)
    assert not plan.resampled and plan.indices.tolist() == FrameSampling(4).indices(40).tolist()
    assert decoded_indices(frames) == [0, 13, 26, 39]
    assert warnings_about(caplog, ntsc) == []


def test_low_resolution_warns_only_when_the_crop_is_much_enlarged(tmp_path, caplog, decoder):
    tiny = index_video(tmp_path / "tiny.mp4", 3, height=40, width=60)
    usual = index_video(tmp_path / "usual.mp4", 3, height=120, width=160)
    with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
        assert read_frames(tiny, num_frames=3, decoder=decoder).shape == (3, 224, 224, 3)
        read_frames(usual, num_frames=3, decoder=decoder)  # 120 -> 224 is less than 2x
        read_frames(tiny, num_frames=3, size=64, decoder=decoder)
    messages = warnings_about(caplog, tiny)
    assert len(messages) == 1 and "40 px" in messages[0] and "60x40" in messages[0] and "5.6x" in messages[0]
    assert warnings_about(caplog, usual) == []


@pytest.mark.parametrize("height,width", [(120, 200), (200, 120)])
def test_center_crop_geometry_on_non_square_video(tmp_path, height, width, decoder):
    """Red margins outside the centred square are cut away; a centred white square keeps its relative size."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 255  # red everywhere ...
    box = center_square(height, width)
    image[box.y : box.y + box.side, box.x : box.x + box.side] = (0, 255, 0)  # ... green in the centre square
    inner = box.side // 2
    top, left = box.y + box.side // 4, box.x + box.side // 4
    image[top : top + inner, left : left + inner] = 255  # white square, half the side, centred
    path = write_video(tmp_path / f"rect_{height}x{width}.mp4", [image] * 3)

    frames = read_frames(path, num_frames=2, size=96, decoder=decoder)
    assert frames.shape == (2, 96, 96, 3)
    frame = frames[0].astype(int)
    # no red margin survives anywhere, the border is green
    assert frame[..., 0][frame[..., 1] < 128].size == 0
    assert (frame[2, :, 1] > 200).all() and (frame[:, 2, 1] > 200).all() and (frame[2, :, 0] < 40).all()
    # white square spans the middle half: rows/cols 24..72 of 96
    white = frame.min(axis=-1) > 200
    rows, cols = np.flatnonzero(white.any(axis=1)), np.flatnonzero(white.any(axis=0))
    assert abs(rows[0] - 24) <= 1 and abs(rows[-1] - 71) <= 1
    assert abs(cols[0] - 24) <= 1 and abs(cols[-1] - 71) <= 1


def test_face_crop_follows_a_detectable_face(tmp_path, decoder):
    """A face drawn left of centre: the crop box sits on it, one box for the whole video."""
    height, width, face_x, face_y, scale = 240, 320, 110, 125, 55
    frames_in = [draw_face(height, width, face_x + (i % 3) - 1, face_y, scale) for i in range(12)]
    path = write_video(tmp_path / "face.mp4", frames_in, crf=10)

    decoded = decode_frames(path, sampling=FrameSampling(6), decoder=decoder)
    box = detect_face_box(decoded)
    assert box is not None
    centre_x, centre_y = box.x + box.side / 2, box.y + box.side / 2
    assert abs(centre_x - face_x) < 12 and abs(centre_y - face_y) < 15
    # the face (2*scale tall) fits inside with a margin, and the box is smaller than the centre square
    assert 2 * scale <= box.side < height

    cropped = read_frames(path, num_frames=6, crop="face", size=112, decoder=decoder)
    np.testing.assert_array_equal(cropped, crop_and_resize(decoded, box, size=112))
    assert not np.array_equal(cropped, read_frames(path, num_frames=6, crop="center", size=112, decoder=decoder))
    # the crop is centred on the face: the middle pixel is skin, not the grey background
    centre_pixel = cropped[0, 56, 56].astype(int)
    assert centre_pixel[0] > 150


def test_face_crop_without_a_face_warns_and_falls_back_to_centre(tmp_path, caplog, decoder):
    rng = np.random.default_rng(0)
    frames_in = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    path = write_video(tmp_path / "noface.mp4", frames_in, crf=20)
    with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
        face = read_frames(path, num_frames=4, crop="face", size=64, decoder=decoder)
    assert any(str(path) in record.getMessage() and "no face" in record.getMessage() for record in caplog.records)
    np.testing.assert_array_equal(face, read_frames(path, num_frames=4, crop="center", size=64, decoder=decoder))


def test_errors_name_the_file(tmp_path, decoder):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(InputError, match="missing.mp4.*does not exist"):
        read_frames(missing, num_frames=4, decoder=decoder)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4.*empty"):
        read_frames(empty, num_frames=4, decoder=decoder)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InputError) as unreadable:
        count_frames(garbage, decoder=decoder)
    assert str(unreadable.value) == f"{garbage}: {UNREADABLE_MESSAGE}"
    # a container without a single video frame (decord alone says "Check failed: st_nb >= 0"),
    # and one with sound only: the same message from both decoders
    for video in (zero_frame_video(tmp_path / "zero.mp4"), audio_only_file(tmp_path / "audio.mp4")):
        with pytest.raises(InputError) as no_frames:
            read_frames(video, num_frames=4, decoder=decoder)
        assert str(no_frames.value) == f"{video}: video has no frames"
        assert video_problems(video, decoder=decoder) == ["video has no frames"]
    assert video_problems(garbage, decoder=decoder) == [UNREADABLE_MESSAGE]
    good = index_video(tmp_path / "good.mp4", 3)
    with pytest.raises(InputError, match="good.mp4.*unknown crop"):
        read_frames(good, num_frames=2, crop="mouth", decoder=decoder)


def test_inspect_command_prints_indices_and_boxes(tmp_path, capsys, decoder):
    from painformer.cli import main

    plain = index_video(tmp_path / "plain.mp4", 20)
    face = write_video(tmp_path / "face.mp4", [draw_face(240, 320, 110, 125, 55)] * 4, crf=10)
    assert (
        main(["video", "inspect", str(plain), str(face), "--num-frames", "4", "--crop", "face", "--decoder", decoder])
        == 0
    )
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert lines[0][:7] == ["video", "frames", "height", "width", "fps", "indices", "crop"]
    assert lines[1][1:7] == ["20", "120", "160", "25", "0,6,13,19", "center (no face)"]
    assert lines[1][7:] == ["20", "0", "120"]
    assert lines[2][6] == "face" and int(lines[2][9]) < 240

    fast = coded_video(tmp_path / "fast.mp4", 40, fps=50)
    assert main(["video", "inspect", str(fast), "--num-frames", "4", "--fps", "25", "--decoder", decoder]) == 0
    row = capsys.readouterr().out.strip().splitlines()[1].split("\t")
    # 0.8 s is 20 frames at 25 fps; frames 0, 6, 13, 19 of those are shown at 50 fps frames 0, 12, 26, 38
    assert row[1:6] == ["40", "48", "64", "50", "0,12,26,38"]
    with pytest.raises(SystemExit):
        main(["video", "inspect", str(fast), "--fps", "0"])
    assert "expected a positive frame rate, got 0" in capsys.readouterr().err


def test_sampled_frames_equal_the_same_frames_of_a_full_decode(tmp_path, decoder):
    """Frames asked for out of order, repeated and across key frames (PyAV seeks) are the frames a full decode gives."""
    path = textured_video(tmp_path / "gop.mp4", 60, gop=12)
    reader = open_video(path, decoder)
    try:
        every = reader.frames(range(len(reader)))
        wanted = [59, 3, 3, 40, 13, 0, 24, 23, 11, 12, 58]
        np.testing.assert_array_equal(reader.frames(wanted), every[wanted])
        np.testing.assert_array_equal(reader.frames([5]), every[[5]])
    finally:
        reader.close()


@needs_both
@pytest.mark.parametrize("rate", [25, Fraction(30000, 1001), 15])
def test_decoders_give_the_same_frames_of_a_real_h264_clip(tmp_path, rate):
    """Count, rate, timestamps, chosen frames (index rule, window, resampling by timestamp) and pixels agree."""
    path = textured_video(tmp_path / "clip.mp4", 75, fps=rate)
    samplings = [FrameSampling(None), FrameSampling(4), FrameSampling(16), FrameSampling(7, window=(0.3, 0.9))]
    for sampling in samplings:
        for fps in (None, 25, 30):
            plan_d, frames_d = decode_planned(path, sampling=sampling, fps=fps, decoder="decord")
            plan_p, frames_p = decode_planned(path, sampling=sampling, fps=fps, decoder="pyav")
            assert (
                (plan_p.total_frames, plan_p.resampled)
                == (plan_d.total_frames, plan_d.resampled)
                == (75, plan_d.resampled)
            )
            assert plan_p.video_fps == pytest.approx(plan_d.video_fps) == pytest.approx(float(rate))
            np.testing.assert_array_equal(plan_p.indices, plan_d.indices)
            np.testing.assert_allclose(plan_p.times, plan_d.times, atol=1e-5)
            assert np.abs(frames_p.astype(int) - frames_d.astype(int)).max() <= 2
    decord_reader, pyav_reader = open_video(path, "decord"), open_video(path, "pyav")
    np.testing.assert_allclose(pyav_reader.timestamps(range(75)), decord_reader.timestamps(range(75)), atol=1e-5)
    pyav_reader.close()


@pytest.fixture(scope="module")
def demo_videos(tmp_path_factory) -> list[Path]:
    """The demo dataset's videos of one subject, one per class."""
    from painformer.data.demo import generate_demo_dataset

    root = generate_demo_dataset(
        tmp_path_factory.mktemp("demo") / "root", workers=1, subjects=1, samples_per_class=1, seed=0, thermal_pairs=0
    )
    return sorted((root / "video").glob("*/*.mp4"))


@needs_both
def test_decoders_give_the_same_frames_and_embeddings_of_the_demo_videos(demo_videos):
    """Every frame of every demo video within 2/255; the backbone's embeddings of the same frames at cosine >= 0.999."""
    import torch

    from painformer.models import load_painformer, preprocess

    assert len(demo_videos) == 5
    for path in demo_videos:
        plan_d, frames_d = decode_planned(path, sampling=FrameSampling(None), fps=25, decoder="decord")
        plan_p, frames_p = decode_planned(path, sampling=FrameSampling(None), fps=25, decoder="pyav")
        assert plan_p.total_frames == plan_d.total_frames == 138
        np.testing.assert_allclose(plan_p.times, plan_d.times, atol=1e-5)
        assert np.abs(frames_p.astype(int) - frames_d.astype(int)).max() <= 2
    # the middle frame of the first and last class, centre and face crop: one batch per decoder
    batches = {
        name: np.concatenate(
            [
                read_frames(path, num_frames=1, crop=crop, window=(0.5, 1.0), decoder=name)
                for path in (demo_videos[0], demo_videos[-1])
                for crop in ("center", "face")
            ]
        )
        for name in ("decord", "pyav")
    }
    assert np.abs(batches["decord"].astype(int) - batches["pyav"].astype(int)).max() <= 2
    with torch.inference_mode():
        embedded = load_painformer(None).embed(preprocess(torch.from_numpy(np.concatenate(list(batches.values())))))
    decord_embedding, pyav_embedding = embedded.chunk(2)
    assert torch.nn.functional.cosine_similarity(decord_embedding, pyav_embedding, dim=1).min().item() >= 0.999


def test_auto_picks_decord_when_installed_and_says_so(monkeypatch, caplog):
    from painformer.video import decoders

    monkeypatch.setattr(decoders, "_announced", set())
    expected = "decord" if decord_installed() else "pyav"
    with caplog.at_level(logging.INFO, logger="painformer.video.decoders"):
        assert resolve_decoder("auto") == expected
    assert any(f"video decoder: {expected}" in record.getMessage() for record in caplog.records)
    assert resolve_decoder("pyav") == "pyav"
    with pytest.raises(InputError, match="unknown video decoder 'opencv'"):
        resolve_decoder("opencv")


@pytest.mark.skipif(decord_installed(), reason="only where decord is not installed")
def test_asking_for_decord_where_it_is_not_installed_says_so(tmp_path):
    path = index_video(tmp_path / "plain.mp4", 3)
    with pytest.raises(InputError, match="'decord' is not installed.*use 'pyav' or 'auto'"):
        read_frames(path, num_frames=2, decoder="decord")
    assert read_frames(path, num_frames=2).shape == (2, 224, 224, 3)


def test_a_video_store_is_not_resumed_with_frames_of_the_other_decoder(tmp_path, decoder):
    """The decoder is in a video source's fingerprint, so the store refuses to resume with the other one."""
    import pandas as pd

    from painformer.embed.sources import VideoSource
    from painformer.errors import StoreError
    from painformer.stores import SampleMeta, SampleStore

    table = pd.DataFrame(
        {"sample": ["s1"], "subject": ["p1"], "class_name": ["BL1"], "video": [str(index_video(tmp_path / "v.mp4", 3))]}
    )
    other = "pyav" if decoder == "decord" else "decord"
    source = VideoSource(table=table, num_frames=2, decoder=decoder)
    assert source.fingerprint()["decoder"] == decoder and source.load(0).shape == (2, 224, 224, 3)
    meta = SampleMeta.from_table(table)
    store_args = {
        "kind": "embeddings",
        "array_name": "embeddings",
        "meta": meta,
        "item_shape": (2, 160),
        "dtype": "float32",
    }
    SampleStore.create_or_resume(tmp_path / "store.zarr", fingerprint={"input": source.fingerprint()}, **store_args)
    SampleStore.create_or_resume(tmp_path / "store.zarr", fingerprint={"input": source.fingerprint()}, **store_args)
    other_print = {**source.fingerprint(), "decoder": other}
    with pytest.raises(StoreError, match="decoder"):
        SampleStore.create_or_resume(tmp_path / "store.zarr", fingerprint={"input": other_print}, **store_args)
