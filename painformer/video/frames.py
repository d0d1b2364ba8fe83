"""Decode a sample's video into square RGB frames for the backbone and the frame models.

Every video modality starts here: RGB frames go straight to PainFormer, thermal
and depth frames are computed from these. The rules are fixed so that every
stage sees the same frames of a video:

* **which frames**: ``num_frames=None`` keeps every decoded frame; otherwise
  ``N`` indices evenly spaced over the whole video,
  ``round(linspace(0, len - 1, N))`` (first and last frame included; a video
  shorter than ``N`` frames repeats frames rather than failing, so that every
  sample of a store has the same shape, and a warning names the file);
* **which rate**: with an expected frame rate (``fps``, e.g. 25 for BioVid,
  30 for AI4Pain) a video at another rate is resampled: the rule above is
  applied to the frames a video of the same duration would have at the
  expected rate, and each of those moments takes the decoded frame whose
  timestamp is nearest. The frames then cover the same time span, and
  ``num_frames=None`` gives as many frames as at the expected rate. A warning
  names the file and both rates. Without ``fps`` a video's own rate is taken
  as it is;
* **which square**: ``crop="center"`` takes the centred square of side
  ``min(height, width)``; ``crop="face"`` takes one square around the face,
  the same for every frame of the video (see ``painformer.video.face``);
* **which size**: the square is resized to ``size x size`` (area averaging
  when shrinking, bilinear when enlarging). Cropping the square first and
  resizing it afterwards covers the same region as "resize the short side to
  ``size``, then centre crop", with less work. Any resolution is accepted;
  only a square more than ``MAX_UPSCALE`` times smaller than ``size`` (a low
  resolution video, or a small face) gets a warning, because enlarging it
  that much gives the backbone blurred frames.

Frames are decoded by decord or PyAV (``decoder``; ``painformer.video.decoders``), which give
the same frames. They are returned as uint8 arrays and never written as image files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from painformer.errors import InputError
from painformer.video.decoders import open_video

log = logging.getLogger(__name__)

CROPS = ("center", "face")
# Frame rates of the supported datasets' videos, for callers that know the dataset.
DATASET_FPS = {"biovid": 25.0, "ai4pain": 30.0}
# Rates within 1 % count as equal (29.97 fps NTSC video is "30 fps").
FPS_TOLERANCE = 0.01
# Timestamps closer than this are equally near (far below any frame duration, above float32 rounding).
TIE_SECONDS = 1e-4
# Enlarging the crop square by more than this visibly blurs the frames.
MAX_UPSCALE = 2.0


@dataclass(frozen=True)
class SquareBox:
    """A square region of a frame, in pixels: columns ``x..x+side``, rows ``y..y+side``."""

    x: int
    y: int
    side: int

    def clamp_to(self, height: int, width: int) -> SquareBox:
        """Shrink to fit the frame and shift inside it, keeping the centre as close as possible."""
        side = max(1, min(self.side, height, width))
        centre_x = self.x + self.side / 2.0
        centre_y = self.y + self.side / 2.0
        x = round(min(max(centre_x - side / 2.0, 0), width - side))
        y = round(min(max(centre_y - side / 2.0, 0), height - side))
        return SquareBox(x=x, y=y, side=side)


def center_square(height: int, width: int) -> SquareBox:
    """The centred square of side ``min(height, width)``."""
    side = min(height, width)
    return SquareBox(x=(width - side) // 2, y=(height - side) // 2, side=side)


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video to keep: ``None`` = all, else ``num_frames`` evenly spaced.

    ``window`` narrows the span to a part of the clip, as fractions of its
    length (``(0.3, 0.6)``: from 30 % to 60 % of the frames); the default is
    the whole clip.
    """

    num_frames: int | None
    window: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.num_frames is not None and int(self.num_frames) < 1:
            raise ValueError(f"num_frames must be a positive integer or None, got {self.num_frames}")
        start, end = self.window
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"window must be two fractions 0 <= start < end <= 1, got {self.window}")

    def span(self, total_frames: int) -> tuple[int, int]:
        """First and last frame index (inclusive) of the window in a video of ``total_frames`` frames."""
        if total_frames < 1:
            raise ValueError("a video needs at least one frame")
        first = round(self.window[0] * (total_frames - 1))
        last = round(self.window[1] * (total_frames - 1))
        return first, last

    def indices(self, total_frames: int) -> np.ndarray:
        """Frame indices for a video of ``total_frames`` frames (see module doc for the rule)."""
        first, last = self.span(total_frames)
        if self.num_frames is None:
            return np.arange(first, last + 1, dtype=np.int64)
        return np.rint(np.linspace(first, last, int(self.num_frames))).astype(np.int64)


@dataclass(frozen=True)
class FramePlan:
    """The frames chosen from one video: indices to decode and their timestamps (seconds)."""

    indices: np.ndarray
    times: np.ndarray
    total_frames: int
    video_fps: float
    resampled: bool


def _rate_differs(video_fps: float, expected_fps: float) -> bool:
    return abs(video_fps - expected_fps) > FPS_TOLERANCE * expected_fps


def _nearest_frames(starts: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """For each moment, the frame whose start time is nearest (the earlier one on a tie).

    Distances within ``TIE_SECONDS`` count as a tie: decord reports timestamps in single
    precision, so an exact tie (25 fps frames at 30 fps moments) would otherwise fall either way.
    """
    after = np.clip(np.searchsorted(starts, moments, side="left"), 1, len(starts) - 1)
    before = after - 1
    take_after = np.abs(starts[after] - moments) < np.abs(moments - starts[before]) - TIE_SECONDS
    return np.where(take_after, after, before).astype(np.int64)


def plan_frames(reader, *, sampling: FrameSampling, path: str | Path, fps: float | None = None) -> FramePlan:
    """Which frames of an open reader (``painformer.video.decoders``) to decode (rules in the module doc).

    Warnings name ``path``.
    """
    total = len(reader)
    video_fps = reader.fps
    if fps is not None and fps <= 0:
        raise InputError(f"{path}: expected frame rate must be positive, got {fps}")
    resampled = False
    if fps is not None and total > 1:
        stamps = reader.timestamps(np.arange(total))
        starts = stamps[:, 0]
        duration = float(stamps[-1, 1] - starts[0])
        if not np.isfinite(video_fps) or video_fps <= 0:
            video_fps = total / duration if duration > 0 else 0.0
        if video_fps <= 0 or not np.all(np.diff(starts) > 0):
            log.warning("%s: the frame rate cannot be read from the timestamps; frames are chosen by index", path)
        elif _rate_differs(video_fps, fps):
            resampled = True
            expected_total = max(1, round(duration * fps))
            first, last = sampling.span(expected_total)
            moments = starts[0] + sampling.indices(expected_total) / fps
            indices = _nearest_frames(starts, moments)
            repeats = len(np.unique(indices)) < len(indices)
            log.warning(
                "%s: %.3g fps, expected %.3g fps; frames chosen by timestamp as at %.3g fps%s",
                path,
                video_fps,
                fps,
                fps,
                " (some frames repeat)" if repeats else "",
            )
            span_frames = last - first + 1
    if not resampled:
        indices = sampling.indices(total)
        first, last = sampling.span(total)
        span_frames = last - first + 1
    if sampling.num_frames is not None and span_frames < sampling.num_frames:
        log.warning(
            "%s: %d frames in the sampled span%s, fewer than the %d requested; frames repeat",
            path,
            span_frames,
            f" at the expected {fps:.3g} fps" if resampled else "",
            sampling.num_frames,
        )
    times = reader.timestamps(indices)[:, 0]
    return FramePlan(indices=indices, times=times, total_frames=total, video_fps=video_fps, resampled=resampled)


def count_frames(path: str | Path, *, decoder: str = "auto") -> int:
    """Number of frames of the video at ``path``."""
    reader = open_video(path, decoder)
    try:
        return len(reader)
    finally:
        reader.close()


def decode_planned(
    path: str | Path, *, sampling: FrameSampling, fps: float | None = None, decoder: str = "auto"
) -> tuple[FramePlan, np.ndarray]:
    """Which frames were chosen (:class:`FramePlan`) and those frames at full resolution, uint8 (N, H, W, 3) RGB.

    ``fps``: the expected frame rate, if any (see the module doc); ``decoder``: ``auto``, ``decord`` or
    ``pyav`` (``painformer.video.decoders``).
    """
    path = Path(path)
    reader = open_video(path, decoder)
    try:
        plan = plan_frames(reader, sampling=sampling, path=path, fps=fps)
        indices = plan.indices
        try:
            frames = reader.frames(indices)
        except InputError:
            raise
        except Exception as error:
            raise InputError(
                f"{path}: decoding frames {indices.min()}..{indices.max()} of {len(reader)} failed ({error})"
            ) from error
    finally:
        reader.close()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] != len(indices):
        raise InputError(f"{path}: decoded an unexpected frame array of shape {frames.shape}")
    return plan, np.ascontiguousarray(frames, dtype=np.uint8)


def decode_frames(
    path: str | Path, *, sampling: FrameSampling, fps: float | None = None, decoder: str = "auto"
) -> np.ndarray:
    """The selected frames at full resolution, uint8 (N, H, W, 3) RGB; ``fps``: the expected rate, if any."""
    return decode_planned(path, sampling=sampling, fps=fps, decoder=decoder)[1]


def crop_and_resize(frames: np.ndarray, box: SquareBox, *, size: int) -> np.ndarray:
    """Cut ``box`` out of every frame and resize it to ``size x size``; uint8 (N, size, size, 3)."""
    import cv2

    box = box.clamp_to(frames.shape[1], frames.shape[2])
    interpolation = cv2.INTER_AREA if box.side > size else cv2.INTER_LINEAR
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        square = frame[box.y : box.y + box.side, box.x : box.x + box.side]
        out[i] = square if box.side == size else cv2.resize(square, (size, size), interpolation=interpolation)
    return out


def read_frames(
    path: str | Path,
    *,
    num_frames: int | None,
    crop: str = "center",
    size: int = 224,
    window: tuple[float, float] = (0.0, 1.0),
    fps: float | None = None,
    decoder: str = "auto",
) -> np.ndarray:
    """Decode ``path`` into uint8 RGB frames of shape (N, size, size, 3).

    ``num_frames``: ``None`` for every frame, else that many evenly spaced frames
    (within ``window``, fractions of the clip; see :class:`FrameSampling`).
    ``crop``: ``center`` or ``face`` (one stable face box per video; the centre
    square, with a warning naming the file, when no face is found).
    ``fps``: the dataset's frame rate; a video at another rate is resampled by
    timestamp, with a warning (``None``: take every video's own rate).
    ``decoder``: ``auto`` (decord when installed, else PyAV), ``decord`` or ``pyav``; the same frames either way.
    """
    if crop not in CROPS:
        raise InputError(f"{path}: unknown crop {crop!r}; expected one of {', '.join(CROPS)}")
    if size < 1:
        raise InputError(f"{path}: frame size must be positive, got {size}")
    frames = decode_frames(path, sampling=FrameSampling(num_frames, window=window), fps=fps, decoder=decoder)
    box, source = choose_box(frames, crop=crop, path=path)
    side = box.clamp_to(frames.shape[1], frames.shape[2]).side
    if side * MAX_UPSCALE < size:
        log.warning(
            "%s: the %s square is %d px (video %dx%d), enlarged %.1fx to %d px: frames will be blurred",
            path,
            source,
            side,
            frames.shape[2],
            frames.shape[1],
            size / side,
            size,
        )
    return crop_and_resize(frames, box, size=size)


def choose_box(frames: np.ndarray, *, crop: str, path: str | Path) -> tuple[SquareBox, str]:
    """The square to cut from every frame, and where it came from: ``center``, ``face`` or ``center (no face)``."""
    height, width = frames.shape[1:3]
    if crop == "face":
        from painformer.video.face import detect_face_box

        face_box = detect_face_box(frames)
        if face_box is not None:
            return face_box, "face"
        log.warning("%s: no face found; using the centre crop", path)
        return center_square(height, width), "center (no face)"
    return center_square(height, width), "center"
