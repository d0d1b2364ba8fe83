"""Names of the embedding stores, ``<modality>/<representation>``, shared by extraction and training.

Kept free of heavy imports: the workflow reads them through the experiment
config on every dry run.
"""

from __future__ import annotations

# Modalities whose store holds one item per video frame; they take the representation ``frames``.
VIDEO_MODALITIES: tuple[str, ...] = ("rgb", "thermal", "depth")
# Modalities rendered as images of a 1-D signal; they take one of the image representations.
SIGNAL_MODALITIES: tuple[str, ...] = ("ecg", "emg", "gsr", "fnirs")
MODALITIES: tuple[str, ...] = VIDEO_MODALITIES + SIGNAL_MODALITIES
SIGNAL_REPRESENTATIONS: tuple[str, ...] = ("waveform", "spec_angle", "spec_phase", "spec_psd")
REPRESENTATIONS: tuple[str, ...] = ("frames", *SIGNAL_REPRESENTATIONS)


def input_problem(modality: str, representation: str) -> str | None:
    """Why ``modality/representation`` names no embedding store, or ``None`` when it does."""
    if modality not in MODALITIES:
        return f"unknown modality {modality!r}; expected one of {list(MODALITIES)}"
    if representation not in REPRESENTATIONS:
        return f"unknown representation {representation!r}; expected one of {list(REPRESENTATIONS)}"
    if modality in VIDEO_MODALITIES and representation != "frames":
        return f"the video modality {modality!r} takes the representation 'frames', not {representation!r}"
    if modality in SIGNAL_MODALITIES and representation == "frames":
        return (
            f"the signal modality {modality!r} takes one of the image representations "
            f"{list(SIGNAL_REPRESENTATIONS)}, not 'frames'"
        )
    return None
