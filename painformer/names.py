"""The names the pipeline is built from, in one place.

Every name here ends up in a file path, a Snakemake wildcard and a shell command line, so
the schema, the wildcard constraints, the command-line choices and the renderers all read
them from this module rather than repeating them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Biosignals, each rendered to images of the signal representations. BioVid records the first
# three (its CSV columns), AI4Pain the fourth.
BIOVID_SIGNALS: tuple[str, ...] = ("ecg", "emg", "gsr")
SIGNALS: tuple[str, ...] = (*BIOVID_SIGNALS, "fnirs")

# Images of a 1-D signal (paper Fig. 3): the waveform and three spectrogram views.
SPECTROGRAM_REPRESENTATIONS: tuple[str, ...] = ("spec_angle", "spec_phase", "spec_psd")
SIGNAL_REPRESENTATIONS: tuple[str, ...] = ("waveform", *SPECTROGRAM_REPRESENTATIONS)
# Pretraining only: the biosignal images of a task split equally among the spectrogram views.
ALL_SPECTROGRAMS = "spectrograms"
PRETRAIN_REPRESENTATIONS: tuple[str, ...] = (*SIGNAL_REPRESENTATIONS, ALL_SPECTROGRAMS)
# The representation of every video modality: one image per sampled frame.
FRAMES = "frames"
REPRESENTATIONS: tuple[str, ...] = (FRAMES, *SIGNAL_REPRESENTATIONS)

# Video modalities: the RGB frames and the two made from them by a frame model.
FRAME_MODELS: tuple[str, ...] = ("thermal", "depth")
VIDEO_MODALITIES: tuple[str, ...] = ("rgb", *FRAME_MODELS)
SIGNAL_MODALITIES: tuple[str, ...] = SIGNALS
MODALITIES: tuple[str, ...] = VIDEO_MODALITIES + SIGNAL_MODALITIES

# How a Mixer experiment combines its inputs, and how the items of one input are combined.
FUSIONS: tuple[str, ...] = ("none", "add", "concat", "decision", "video_encoder_concat")
AGGREGATIONS: tuple[str, ...] = ("concat", "sum", "mean")
# How a frame is cut from a video before the backbone sees it.
CROPS: tuple[str, ...] = ("center", "face")


def alternation(names: Iterable[str]) -> str:
    """``a|b|c``: a regular expression (wildcard constraint) matching exactly one of ``names``."""
    return "|".join(re.escape(name) for name in names)


def input_pattern() -> str:
    """The regular expression of an experiment input ``<modality>/<representation>``."""
    return (
        f"^({alternation(VIDEO_MODALITIES)})/{FRAMES}$"
        f"|^({alternation(SIGNAL_MODALITIES)})/({alternation(SIGNAL_REPRESENTATIONS)})$"
    )


def input_problem(modality: str, representation: str) -> str | None:
    """Why ``modality/representation`` names no embedding store, or ``None`` when it does."""
    if modality not in MODALITIES:
        return f"unknown modality {modality!r}; expected one of {list(MODALITIES)}"
    if representation not in REPRESENTATIONS:
        return f"unknown representation {representation!r}; expected one of {list(REPRESENTATIONS)}"
    if modality in VIDEO_MODALITIES and representation != FRAMES:
        return f"the video modality {modality!r} takes the representation {FRAMES!r}, not {representation!r}"
    if modality in SIGNAL_MODALITIES and representation == FRAMES:
        return (
            f"the signal modality {modality!r} takes one of the image representations "
            f"{list(SIGNAL_REPRESENTATIONS)}, not {FRAMES!r}"
        )
    return None


# Subject, sample and dataset names become folder and file names and reach shell commands:
# letters, digits, underscore, dot and hyphen only, and no leading dot (no hidden files, no
# "." or ".." path parts).
SAFE_NAME_CHARACTERS = "A-Za-z0-9_.-"
SAFE_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
_SAFE_NAME = re.compile(SAFE_NAME_PATTERN)


def is_safe_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name))


def unsafe_names(names: Iterable[str]) -> list[str]:
    """The names of ``names`` that are not safe, each once, in first-seen order."""
    return list(dict.fromkeys(name for name in names if not is_safe_name(name)))


def describe_unsafe(names: Iterable[str]) -> str:
    """How an error lists unsafe names: every one, quoted so that spaces and control characters show."""
    return ", ".join(repr(name) for name in names)


SAFE_NAME_RULE = f"only the characters [{SAFE_NAME_CHARACTERS}] and no leading dot"
