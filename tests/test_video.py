"""Video decoding on real H.264 files written with PyAV and read back with decord.

The face-crop detection test uses a drawn face (flat shapes: skin ellipse,
brows, eyes, nose, mouth) that OpenCV's frontal-face cascade does detect; it
shows that the box follows the face and is stable, not how well the cascade
does on real faces.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from painformer.errors import InputError
from painformer.video import (
    FrameSampling,
    center_square,
    count_frames,
    crop_and_resize,
    decode_frames,
    read_frames,
)
from painformer.video.face import detect_face_box


def write_video(path: Path, frames: list[np.ndarray], *, fps: int = 25, crf: int = 0) -> Path:
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


def index_video(path: Path, n: int, *, height: int = 120, width: int = 160) -> Path:
    """Frame i is a flat grey of brightness 4*i, so a decoded frame tells its index."""
    return write_video(path, [np.full((height, width, 3), 4 * i, np.uint8) for i in range(n)])


def draw_face(height: int, width: int, centre_x: int, centre_y: int, scale: int) -> np.ndarray:
    image = np.full((height, width, 3), 90, np.uint8)
    s = scale
    cv2.ellipse(image, (centre_x, centre_y), (int(s * 0.8), s), 0, 0, 360, (210, 170, 150), -1)
    for side in (-1, 1):
        eye_x, eye_y = centre_x + side * int(s * 0.35), centre_y - int(s * 0.2)
        cv2.ellipse(image, (eye_x, eye_y - int(s * 0.18)), (int(s * 0.22), int(s * 0.05)), 0, 0, 360, (50, 40, 40), -1)
        cv2.ellipse(image, (eye_x, eye_y), (int(s * 0.17), int(s * 0.08)), 0, 0, 360, (235, 235, 235), -1)
        cv2.circle(image, (eye_x, eye_y), int(s * 0.07), (30, 30, 30), -1)
    cv2.ellipse(image, (centre_x, centre_y + int(s * 0.15)), (int(s * 0.08), int(s * 0.2)), 0, 0, 360, (190, 150, 130), -1)
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
    with pytest.raises(ValueError):
        FrameSampling(0)


def test_all_frames_and_evenly_spaced_frames(tmp_path):
    path = index_video(tmp_path / "index.mp4", 50)
    assert count_frames(path) == 50

    every = read_frames(path, num_frames=None)
    assert every.shape == (50, 224, 224, 3) and every.dtype == np.uint8
    np.testing.assert_allclose(every[:, 100, 100, 0], 4 * np.arange(50), atol=2)

    four = read_frames(path, num_frames=4)
    assert four.shape == (4, 224, 224, 3)
    expected_indices = np.rint(np.linspace(0, 49, 4))  # 0, 16, 33, 49
    np.testing.assert_allclose(four[:, 50, 50, 0], 4 * expected_indices, atol=2)
    # the whole frame is one grey: decoded brightness says exactly which frame it was
    decoded_index = np.rint(four.reshape(4, -1).mean(axis=1) / 4).astype(int)
    assert decoded_index.tolist() == [0, 16, 33, 49]


def test_short_video_repeats_frames(tmp_path):
    path = index_video(tmp_path / "short.mp4", 3)
    frames = read_frames(path, num_frames=5, size=32)
    assert frames.shape == (5, 32, 32, 3)
    assert np.rint(frames[:, 0, 0, 0] / 4).astype(int).tolist() == [0, 0, 1, 2, 2]


@pytest.mark.parametrize("height,width", [(120, 200), (200, 120)])
def test_center_crop_geometry_on_non_square_video(tmp_path, height, width):
    """Red margins outside the centred square are cut away; a centred white square keeps its relative size."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 255  # red everywhere ...
    box = center_square(height, width)
    image[box.y : box.y + box.side, box.x : box.x + box.side] = (0, 255, 0)  # ... green in the centre square
    inner = box.side // 2
    top, left = box.y + box.side // 4, box.x + box.side // 4
    image[top : top + inner, left : left + inner] = 255  # white square, half the side, centred
    path = write_video(tmp_path / f"rect_{height}x{width}.mp4", [image] * 3)

    frames = read_frames(path, num_frames=2, size=96)
    assert frames.shape == (2, 96, 96, 3)
    frame = frames[0].astype(int)
    # no red margin survives anywhere, the border is green
    assert frame[..., 0][frame[..., 1] < 128].size == 0
    assert (frame[2, :, 1] > 200).all() and (frame[:, 2, 1] > 200).all() and (frame[2, :, 0] < 40).all()
    # white square spans the middle half: rows/cols 24..72 of 96
    white = (frame.min(axis=-1) > 200)
    rows, cols = np.flatnonzero(white.any(axis=1)), np.flatnonzero(white.any(axis=0))
    assert abs(rows[0] - 24) <= 1 and abs(rows[-1] - 71) <= 1
    assert abs(cols[0] - 24) <= 1 and abs(cols[-1] - 71) <= 1


def test_face_crop_follows_a_detectable_face(tmp_path):
    """A face drawn left of centre: the crop box sits on it, one box for the whole video."""
    height, width, face_x, face_y, scale = 240, 320, 110, 125, 55
    frames_in = [draw_face(height, width, face_x + (i % 3) - 1, face_y, scale) for i in range(12)]
    path = write_video(tmp_path / "face.mp4", frames_in, crf=10)

    decoded = decode_frames(path, sampling=FrameSampling(6))
    box = detect_face_box(decoded)
    assert box is not None
    centre_x, centre_y = box.x + box.side / 2, box.y + box.side / 2
    assert abs(centre_x - face_x) < 12 and abs(centre_y - face_y) < 15
    # the face (2*scale tall) fits inside with a margin, and the box is smaller than the centre square
    assert 2 * scale <= box.side < height

    cropped = read_frames(path, num_frames=6, crop="face", size=112)
    np.testing.assert_array_equal(cropped, crop_and_resize(decoded, box, size=112))
    assert not np.array_equal(cropped, read_frames(path, num_frames=6, crop="center", size=112))
    # the crop is centred on the face: the middle pixel is skin, not the grey background
    centre_pixel = cropped[0, 56, 56].astype(int)
    assert centre_pixel[0] > 150


def test_face_crop_without_a_face_warns_and_falls_back_to_centre(tmp_path, caplog):
    rng = np.random.default_rng(0)
    frames_in = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    path = write_video(tmp_path / "noface.mp4", frames_in, crf=20)
    with caplog.at_level(logging.WARNING, logger="painformer.video.frames"):
        face = read_frames(path, num_frames=4, crop="face", size=64)
    assert any(str(path) in record.getMessage() and "no face" in record.getMessage() for record in caplog.records)
    np.testing.assert_array_equal(face, read_frames(path, num_frames=4, crop="center", size=64))


def test_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(InputError, match="missing.mp4.*does not exist"):
        read_frames(missing, num_frames=4)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4.*empty"):
        read_frames(empty, num_frames=4)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InputError, match="garbage.mp4.*cannot decode"):
        count_frames(garbage)
    good = index_video(tmp_path / "good.mp4", 3)
    with pytest.raises(InputError, match="good.mp4.*unknown crop"):
        read_frames(good, num_frames=2, crop="mouth")


def test_inspect_command_prints_indices_and_boxes(tmp_path, capsys):
    from painformer.cli import main

    plain = index_video(tmp_path / "plain.mp4", 20)
    face = write_video(tmp_path / "face.mp4", [draw_face(240, 320, 110, 125, 55)] * 4, crf=10)
    assert main(["video", "inspect", str(plain), str(face), "--num-frames", "4", "--crop", "face"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert lines[0][:6] == ["video", "frames", "height", "width", "indices", "crop"]
    assert lines[1][1:6] == ["20", "120", "160", "0,6,13,19", "center (no face)"]
    assert lines[1][6:] == ["20", "0", "120"]
    assert lines[2][5] == "face" and int(lines[2][8]) < 240
