"""BioVid and AI4Pain test trees on disk (biosignal and fNIRS CSVs, real mp4 videos), shared by the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.data.ai4pain import DEFAULT_CHANNELS

FNIRS_FS = 50.0
BIOVID_ROWS = 2816  # 5.5 s at 512 Hz
LABELS = ("No", "Low", "High")


def write_test_video(path: Path) -> Path:
    """A real H.264 mp4 (10 frames, 64x64, 25 fps) that decord decodes."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"threads": "1"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(10):
            frame = np.full((64, 64, 3), 20 * i, dtype=np.uint8)
            frame[16:48, 16:48, 0] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_fnirs_csv(
    path: Path, *, seed: int = 0, seconds: float = 10.0, channels=DEFAULT_CHANNELS, fs: float = FNIRS_FS
) -> Path:
    """An fNIRS file in the default AI4Pain layout: comma-separated, time in s, <ch>_HbO2 and <ch>_HHb."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    data = {"time": np.arange(n) / fs}
    for k, channel in enumerate(channels):
        data[f"{channel}_HbO2"] = k + 0.01 * np.cumsum(rng.normal(size=n))
    for k, channel in enumerate(channels):
        data[f"{channel}_HHb"] = -k + 0.01 * np.cumsum(rng.normal(size=n))
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(data).to_csv(path, index=False)
    return path


def make_ai4pain_tree(
    root: Path,
    video: Path | None,
    *,
    splits=None,
    labelled: bool = True,
    channels=DEFAULT_CHANNELS,
    seconds: float = 10.0,
    seed: int = 0,
) -> list[str]:
    """An AI4Pain tree in the default layout, one trial per subject and class; returns the sample names.

    ``labelled=False`` leaves the class out of the names (``<subject>_<n>``), as in new recordings;
    ``video=None`` writes no video folder.
    """
    splits = splits or {"train": ["1", "2"], "validation": ["3"], "test": ["4"]}
    names = []
    for split, subjects in splits.items():
        for subject in subjects:
            for number, label in enumerate(LABELS, start=1):
                stem = f"{subject}_{label}_1" if labelled else f"{subject}_{number}"
                write_fnirs_csv(
                    root / split / "fnirs" / subject / f"{stem}.csv",
                    seed=seed + len(names),
                    channels=channels,
                    seconds=seconds,
                )
                if video is not None:
                    (root / split / "video" / subject).mkdir(parents=True, exist_ok=True)
                    shutil.copy(video, root / split / "video" / subject / f"{stem}.mp4")
                names.append(stem)
    return names


def write_bio_csv(
    path: Path,
    *,
    seed: int = 0,
    rows: int = BIOVID_ROWS,
    fs: float = 512.0,
    columns: tuple[str, ...] = ("gsr", "ecg", "emg_trapezius"),
    time_scale: float = 1e6,
) -> Path:
    """A BioVid ``*_bio.csv``: tab-separated, time in microseconds (by default), one column per signal."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"time": np.round(np.arange(rows) / fs * time_scale).astype(np.int64)})
    for k, column in enumerate(columns):
        frame[column] = np.sin(np.arange(rows) / (20 + k)) + 0.1 * rng.normal(size=rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False)
    return path


def make_biovid_tree(
    root: Path,
    video: Path,
    *,
    subjects=("071309_w_21", "072514_m_27"),
    classes=("BL1", "PA1", "PA4"),
    per_class: int = 1,
    kind: str = "filtered",
) -> list[str]:
    """A BioVid Part A tree with samples.csv, videos and biosignal files; returns the sample names."""
    lines, names = ["subject_id\tsubject_name\tclass_id\tclass_name\tsample_id\tsample_name"], []
    for subject_id, subject in enumerate(subjects):
        for class_name in classes:
            class_id = ("BL1", "PA1", "PA2", "PA3", "PA4").index(class_name)
            for n in range(per_class):
                name = f"{subject}-{class_name}-{n + 1:03d}"
                lines.append(f"{subject_id}\t{subject}\t{class_id}\t{class_name}\t{len(names)}\t{name}")
                names.append(name)
                write_bio_csv(root / f"biosignals_{kind}" / subject / f"{name}_bio.csv", seed=len(names))
                (root / "video" / subject).mkdir(parents=True, exist_ok=True)
                shutil.copy(video, root / "video" / subject / f"{name}.mp4")
    (root / "samples.csv").write_text("\n".join(lines) + "\n")
    return names
