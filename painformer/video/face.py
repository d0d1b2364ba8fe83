"""One stable face box per video, from OpenCV's frontal-face Haar cascade.

Why one box per video rather than one per frame: a box that follows every
detection jitters by a few pixels from frame to frame, and the backbone would
see that jitter as motion. The face barely moves within a 5.5 s clip, so a
handful of frames suffice: each gives its largest detection, the box is the
median centre and size of those, enlarged by a margin (the cascade's box is
tight around eyes, nose and mouth; the paper's face crops include the forehead
and chin) and made square.

The cascade file ships inside the opencv-python wheels (``cv2.data``), so no
model is downloaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from painformer.errors import InputError
from painformer.video.frames import SquareBox

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FaceSearch:
    """How faces are looked for.

    ``probe_frames``: frames (evenly spaced among those decoded) searched;
    ``margin``: the square's side is the median detection side times ``1 + margin``;
    ``min_face_fraction``: smallest face side accepted, as a fraction of the frame's short side;
    ``scale_factor`` / ``min_neighbors``: the cascade's own settings (higher
    ``min_neighbors`` means fewer false detections and more missed faces).
    """

    probe_frames: int = 5
    margin: float = 0.4
    min_face_fraction: float = 0.15
    scale_factor: float = 1.1
    min_neighbors: int = 5


DEFAULT_SEARCH = FaceSearch()


@functools.lru_cache(maxsize=1)
def _cascade():
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):
        raise InputError(
            f"OpenCV {cv2.__version__} has no CascadeClassifier (removed in OpenCV 5); "
            "install opencv-python-headless<5 for crop=face"
        )
    folder = cv2.data.haarcascades if hasattr(cv2, "data") and hasattr(cv2.data, "haarcascades") else "cv2/data"
    path = Path(folder) / CASCADE_FILE
    if not path.is_file():
        raise InputError(f"{path}: OpenCV's face cascade is missing; install opencv-python-headless<5 for crop=face")
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise InputError(f"{path}: OpenCV could not load the face cascade")
    return classifier


def detect_faces(frame: np.ndarray, *, search: FaceSearch = DEFAULT_SEARCH) -> np.ndarray:
    """All face detections in one uint8 RGB frame as rows (x, y, width, height)."""
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY))
    smallest = max(16, round(min(gray.shape) * search.min_face_fraction))
    found = _cascade().detectMultiScale(
        gray, scaleFactor=search.scale_factor, minNeighbors=search.min_neighbors, minSize=(smallest, smallest)
    )
    return np.asarray(found, dtype=np.int64).reshape(-1, 4)


def detect_face_box(frames: np.ndarray, *, search: FaceSearch = DEFAULT_SEARCH) -> SquareBox | None:
    """The video's face square (see module doc) or None when no probed frame shows a face."""
    probes = np.unique(np.rint(np.linspace(0, len(frames) - 1, min(search.probe_frames, len(frames)))).astype(int))
    centres_x, centres_y, sides = [], [], []
    for index in probes:
        detections = detect_faces(frames[index], search=search)
        if len(detections) == 0:
            continue
        x, y, w, h = detections[np.argmax(detections[:, 2] * detections[:, 3])]
        centres_x.append(x + w / 2.0)
        centres_y.append(y + h / 2.0)
        sides.append(max(w, h))
    if not sides:
        return None
    side = round(float(np.median(sides)) * (1.0 + search.margin))
    centre_x, centre_y = float(np.median(centres_x)), float(np.median(centres_y))
    box = SquareBox(x=round(centre_x - side / 2.0), y=round(centre_y - side / 2.0), side=side)
    return box.clamp_to(frames.shape[1], frames.shape[2])
