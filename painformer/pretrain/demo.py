"""Small pretraining tasks built from the demo dataset (or any BioVid-layout sample table).

Written as HDF5 task files (``images`` uint8 (N, 224, 224, 3), ``labels``,
``subjects``) plus a ``tasks.yaml`` naming them:

- ``identity_frames.h5``: face frames of every class, label = subject
  (the face-recognition tasks of Table III in miniature);
- ``pain_frames.h5``: face frames, BL1 vs PA4 (facial expression of pain);
- ``pain_<signal>_<representation>.h5``, one per signal: the biosignal image, BL1 vs PA4
  (the spectrogram tasks of Table III in miniature).

With ``representation="spectrograms"`` the biosignal images are split equally among the three
spectrogram types (spec_angle, spec_phase, spec_psd, in turn over the samples), as Table III's
note says of the paper's biosignal tasks.

The last ``probe_subjects`` subjects are kept out of every pretraining task
and written to ``probe_frames.h5`` and ``probe_<signal>_<representation>.h5``
(BL1 vs PA4), so that a leave-one-subject-out probe on them measures what
pretraining transferred to unseen people rather than what it memorised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from painformer.errors import InputError
from painformer.names import ALL_SPECTROGRAMS
from painformer.names import SPECTROGRAM_REPRESENTATIONS as SPECTROGRAMS

log = logging.getLogger(__name__)

PAIN_CLASSES = ("BL1", "PA4")


def _read_video_frames(path: str, num_frames: int, window: tuple[float, float], decoder: str = "auto") -> np.ndarray:
    """Evenly spaced 224x224 centre-cropped RGB frames of a video (within ``window``, fractions of the clip)."""
    from painformer.video import read_frames

    return read_frames(path, num_frames=num_frames, crop="center", window=window, decoder=decoder)


def _write_task(
    path: Path, images: Sequence[np.ndarray], labels: Sequence[int], subjects: Sequence[str], classes: Sequence[str]
) -> None:
    import h5py

    from painformer.utils import atomic_path

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset(
                "images", data=np.stack(images).astype(np.uint8), chunks=(1, 224, 224, 3), compression="lzf"
            )
            handle["labels"] = np.asarray(labels, dtype=np.int64)
            handle["subjects"] = np.asarray(subjects, dtype="S")
            handle.attrs["classes"] = list(classes)
        os.chmod(tmp, 0o644)  # readable like any other output, not mkstemp's 0600
    log.info("%s: %d images, %d classes", path, len(labels), len(classes))


def make_demo_tasks(
    *,
    samples: str | Path,
    out: str | Path,
    frames_per_video: int = 4,
    signals: Sequence[str] = ("gsr",),
    representation: str = "spec_psd",
    probe_subjects: int = 3,
    frame_window: tuple[float, float] = (0.0, 1.0),
    decoder: str = "auto",
) -> list[Path]:
    """Write the demo task files and ``tasks.yaml`` to ``out``; return the written paths.

    ``signals`` are the biosignals of the pain tasks, one task per signal, all drawn as
    ``representation``.

    ``frame_window`` limits the frames to a part of each clip (fractions of its
    length), e.g. where the expression of a pain stimulus is, so that the face
    pain task's frame labels are not diluted by the calm start and end.
    ``decoder``: the video decoder (``auto``, ``decord``, ``pyav``; the same frames either way).
    """
    from painformer.data import load_signal, read_sample_table
    from painformer.render import render_batch

    signals = list(dict.fromkeys(signals))
    if not signals:
        raise InputError(f"{samples}: no biosignal given for the pain tasks")
    table = read_sample_table(samples)
    if table.empty:
        raise InputError(f"{samples}: the sample table is empty")
    subjects = list(dict.fromkeys(str(s) for s in table["subject"]))
    if not 2 <= probe_subjects <= len(subjects) - 2:
        raise InputError(
            f"{samples}: {len(subjects)} subjects; probe_subjects must hold out at least two (for "
            f"leave-one-subject-out) and leave at least two for pretraining (got {probe_subjects})"
        )
    pretrain_subjects = subjects[: len(subjects) - probe_subjects]
    held_out = set(subjects[len(subjects) - probe_subjects :])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # Gather, per sample, its frames and its biosignal image.
    frames: dict[str, np.ndarray] = {}
    signal_images: dict[str, dict[str, np.ndarray]] = {signal: {} for signal in signals}
    pain_rows = table[table["class_name"].isin(PAIN_CLASSES)]
    for row in table.itertuples(index=False):
        frames[row.sample] = _read_video_frames(str(row.video), frames_per_video, frame_window, decoder)
    for position, row in enumerate(pain_rows.itertuples(index=False)):
        drawn = SPECTROGRAMS[position % len(SPECTROGRAMS)] if representation == ALL_SPECTROGRAMS else representation
        for signal in signals:
            values, fs = load_signal(str(row.biosignals), signal)
            signal_images[signal][row.sample] = render_batch(np.asarray(values, dtype=np.float64)[None], fs, drawn)[0]

    def empty() -> dict[str, list]:
        return {"images": [], "labels": [], "subjects": []}

    def add(part: dict[str, list], image: np.ndarray, label: int, subject: str) -> None:
        part["images"].append(image)
        part["labels"].append(label)
        part["subjects"].append(subject)

    identity, pain_frames, probe_frames = empty(), empty(), empty()
    pain_signal = {signal: empty() for signal in signals}
    probe_signal = {signal: empty() for signal in signals}
    for row in table.itertuples(index=False):
        subject = str(row.subject)
        is_held_out = subject in held_out
        if not is_held_out:
            for frame in frames[row.sample]:
                add(identity, frame, pretrain_subjects.index(subject), subject)
        if row.class_name not in PAIN_CLASSES:
            continue
        pain_label = PAIN_CLASSES.index(row.class_name)
        frame_part, signal_parts = (probe_frames, probe_signal) if is_held_out else (pain_frames, pain_signal)
        for frame in frames[row.sample]:
            add(frame_part, frame, pain_label, subject)
        for signal in signals:
            add(signal_parts[signal], signal_images[signal][row.sample], pain_label, subject)
    for name, part in (("pretraining", pain_frames), ("probe", probe_frames)):
        if len(set(part["labels"])) < 2:
            raise InputError(f"{samples}: the {name} subjects lack BL1 or PA4 samples")

    written = []
    files = {
        "identity_frames": (identity, pretrain_subjects),
        "pain_frames": (pain_frames, PAIN_CLASSES),
        **{f"pain_{signal}_{representation}": (pain_signal[signal], PAIN_CLASSES) for signal in signals},
        "probe_frames": (probe_frames, PAIN_CLASSES),
        **{f"probe_{signal}_{representation}": (probe_signal[signal], PAIN_CLASSES) for signal in signals},
    }
    for name, (part, classes) in files.items():
        path = out / f"{name}.h5"
        _write_task(path, part["images"], part["labels"], part["subjects"], classes)
        written.append(path)
    tasks_yaml = out / "tasks.yaml"
    tasks = [
        {"name": "identity", "dataset": str(out / "identity_frames.h5"), "num_classes": len(pretrain_subjects)},
        {"name": "pain_face", "dataset": str(out / "pain_frames.h5"), "num_classes": 2},
        *(
            {"name": f"pain_{signal}", "dataset": str(out / f"pain_{signal}_{representation}.h5"), "num_classes": 2}
            for signal in signals
        ),
    ]
    tasks_yaml.write_text(
        "# Written by `painformer pretrain make-demo-tasks`; training settings: config/pretrain_demo.yaml.\n"
        + yaml.safe_dump({"tasks": tasks}, sort_keys=False)
    )
    written.append(tasks_yaml)
    return written
