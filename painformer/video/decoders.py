"""Two interchangeable frame decoders: decord, and PyAV where decord has no wheels.

decord ships wheels for x86_64 Linux, macOS and Windows only; PyAV (a
dependency anyway) installs everywhere, aarch64 Linux and Apple Silicon
included. Both readers here answer the same four questions the frame rules of
``painformer.video.frames`` ask, with the same answers:

* ``len(reader)``: the number of frames, one per video packet of the first
  video stream (what decord counts);
* ``reader.fps``: the stream's average frame rate (0.0 when unknown);
* ``reader.timestamps(indices)``: (start, end) of each frame in seconds, in
  presentation order and measured from the stream's start time;
* ``reader.frames(indices)``: those frames as uint8 RGB (N, H, W, 3).

Both convert YUV to RGB with FFmpeg's swscale at its defaults, so the pixels
agree (tests/test_video.py and benchmarks/video.py measure by how much).

The PyAV reader lists every packet of the stream on opening (demuxing only,
no decoding) to know each frame's timestamp and where the key frames are. It
decodes sorted, distinct requested frames in one pass, and jumps (seeks) to
the last key frame at or before a requested frame only when that skips
frames; everything between that key frame and the frame is decoded, because
H.264 frames depend on the frames before them.

Opening failures give the same one-line messages with either decoder
(``VideoError``): a file that no decoder can read, and a file without any
video frame.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from painformer.errors import InputError

log = logging.getLogger(__name__)

DECODERS = ("auto", "decord", "pyav")

UNREADABLE = "video does not decode (not a readable video file: unknown format, or damaged)"
NO_FRAMES = "video has no frames"


class VideoError(InputError):
    """A video that cannot be read; ``problem`` is the message without the file name."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class VideoReader(Protocol):
    decoder: str

    def __len__(self) -> int: ...

    @property
    def fps(self) -> float: ...

    def timestamps(self, indices) -> np.ndarray: ...

    def frames(self, indices) -> np.ndarray: ...

    def close(self) -> None: ...


@functools.cache
def decord_installed() -> bool:
    try:
        import_decord()
    except ImportError:
        return False
    return True


def import_decord():
    """decord, imported after OpenCV.

    decord ships its own libpng/zlib; loaded first, it makes every later ``cv2.imread``
    of a PNG fail ("bad parameters to zlib") in the same process. Loading OpenCV first
    keeps both working.
    """
    import cv2  # noqa: F401
    import decord

    return decord


_announced: set[str] = set()


def resolve_decoder(decoder: str = "auto") -> str:
    """The decoder that ``decoder`` names: ``auto`` is decord when it is installed, else PyAV (logged once)."""
    if decoder not in DECODERS:
        raise InputError(f"unknown video decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
    if decoder == "auto":
        chosen = "decord" if decord_installed() else "pyav"
        if chosen not in _announced:
            _announced.add(chosen)
            log.info(
                "video decoder: %s (%s)",
                chosen,
                "decord is installed" if chosen == "decord" else "decord is not installed on this platform",
            )
        return chosen
    if decoder == "decord" and not decord_installed():
        raise InputError(
            "video decoder 'decord' is not installed (it has no wheels for this platform); use 'pyav' or 'auto'"
        )
    return decoder


def open_video(path: str | Path, decoder: str = "auto", *, threads: int = 0) -> VideoReader:
    """An open reader of ``path``; ``VideoError`` naming the file when it cannot be read or has no frames.

    ``threads``: decoding threads (0: the decoder's choice).
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "video file does not exist")
    if not path.is_file():
        raise VideoError(path, "not a file")
    if path.stat().st_size == 0:
        raise VideoError(path, "video file is empty")
    name = resolve_decoder(decoder)
    reader = _DecordReader(path, threads=threads) if name == "decord" else _PyAVReader(path, threads=threads)
    if len(reader) < 1:
        reader.close()
        raise VideoError(path, NO_FRAMES)
    return reader


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _probe(path: Path, error: Exception) -> VideoError:
    """Why a decoder could not open ``path``, worded the same whichever decoder failed."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return VideoError(path, NO_FRAMES)
            stream = container.streams.video[0]
            if not any(packet.size for packet in container.demux(stream)):
                return VideoError(path, NO_FRAMES)
    except Exception:  # noqa: BLE001 - any failure here means the file is not a readable video
        return VideoError(path, UNREADABLE)
    # PyAV reads what the other decoder refused: say what that decoder said.
    return VideoError(path, f"video does not decode ({_first_line(error)})")


class _DecordReader:
    decoder = "decord"

    def __init__(self, path: Path, *, threads: int) -> None:
        decord = import_decord()
        self.path = path
        try:
            # Always the CPU context: the PyPI decord wheels are built without CUDA (a GPU context
            # fails with "CUDA not enabled"), decoding a clip costs milliseconds next to the models,
            # and the frames are cropped on the CPU anyway (docs/video.md).
            self.reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
        except Exception as error:  # decord raises its own DECORDError or RuntimeError
            raise _probe(path, error) from error

    def __len__(self) -> int:
        return len(self.reader)

    @property
    def fps(self) -> float:
        rate = float(self.reader.get_avg_fps() or 0.0)
        return rate if np.isfinite(rate) else 0.0

    def timestamps(self, indices) -> np.ndarray:
        indices = [int(i) for i in indices]
        stamps = self.reader.get_frame_timestamp(indices)
        return np.asarray(stamps, dtype=np.float64).reshape(len(indices), 2)

    def frames(self, indices) -> np.ndarray:
        return self.reader.get_batch([int(i) for i in indices]).asnumpy()

    def close(self) -> None:
        self.reader = None


class _PyAVReader:
    decoder = "pyav"

    def __init__(self, path: Path, *, threads: int) -> None:
        import av

        self.path = path
        try:
            self.container = av.open(str(path))
        except Exception as error:  # noqa: BLE001 - FFmpeg's errors differ by format and damage
            raise VideoError(path, UNREADABLE) from error
        try:
            if not self.container.streams.video:
                raise VideoError(path, NO_FRAMES)
            self.stream = self.container.streams.video[0]
            self._index_packets()
        except Exception as error:
            self.container.close()
            if isinstance(error, VideoError):
                raise
            raise VideoError(path, UNREADABLE) from error
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = threads
        self._decoded = None  # the running decode: a frame iterator, or None before the first frame
        self._position = -1  # index of the last frame it produced

    def _index_packets(self) -> None:
        """Every frame's pts, duration and key-frame flag, in presentation order, from the packets alone."""
        packets = [
            (packet.pts, packet.duration or 0, packet.is_keyframe)
            for packet in self.container.demux(self.stream)
            if packet.pts is not None and packet.size
        ]
        packets.sort()
        self.pts = np.asarray([p[0] for p in packets], dtype=np.int64)
        self.durations = np.asarray([p[1] for p in packets], dtype=np.int64)
        self.keyframes = np.flatnonzero([p[2] for p in packets])
        self.position_of = {int(pts): i for i, pts in enumerate(self.pts)}
        start = self.stream.start_time
        self.start_pts = int(start) if start is not None else (int(self.pts[0]) if len(self.pts) else 0)
        self.time_base = float(self.stream.time_base)

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def fps(self) -> float:
        rate = self.stream.average_rate
        return float(rate) if rate else 0.0

    def timestamps(self, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        start = (self.pts[indices] - self.start_pts) * self.time_base
        return np.stack([start, start + self.durations[indices] * self.time_base], axis=1)

    def _seek(self, index: int) -> None:
        """Restart decoding at the last key frame at or before frame ``index``."""
        earlier = self.keyframes[self.keyframes <= index]
        key = int(earlier[-1]) if len(earlier) else 0
        self.container.seek(int(self.pts[key]), stream=self.stream, backward=True, any_frame=False)
        self._decoded = self.container.decode(self.stream)
        self._position = -1

    def _needs_seek(self, index: int) -> bool:
        if self._decoded is None or self._position >= index:
            return True
        earlier = self.keyframes[self.keyframes <= index]
        # Seeking pays off only when it skips frames the running decode would pass through.
        return len(earlier) > 0 and int(earlier[-1]) > self._position + 1

    def _decode_to(self, index: int) -> np.ndarray:
        for attempt in range(2):
            if attempt or self._needs_seek(index):
                self._seek(index if not attempt else 0)
            for frame in self._decoded:
                position = self.position_of.get(frame.pts, self._position + 1 if frame.pts is None else None)
                if position is None:
                    continue
                self._position = position
                if position == index:
                    return frame.to_ndarray(format="rgb24")
                if position > index:
                    break  # the seek landed past the frame: decode again from the first key frame
        raise VideoError(self.path, f"frame {index} of {len(self)} could not be decoded")

    def frames(self, indices) -> np.ndarray:
        indices = [int(i) for i in indices]
        decoded = {index: self._decode_to(index) for index in sorted(set(indices))}
        return np.stack([decoded[index] for index in indices])

    def close(self) -> None:
        self.container.close()
