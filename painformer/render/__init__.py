"""Biosignals (ECG, EMG, GSR, fNIRS channels) as 224x224 images: waveform and three spectrograms.

Names are imported on first use, so that the command line can read the list of
representations without loading scipy and OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FlatSignalError": "painformer.render.images",
    "REPRESENTATIONS": "painformer.render.params",
    "SPECTROGRAM_REPRESENTATIONS": "painformer.render.params",
    "SIGNALS": "painformer.render.params",
    "RenderParams": "painformer.render.params",
    "colour_lut": "painformer.render.images",
    "render_batch": "painformer.render.images",
    "render_sample": "painformer.render.images",
    "spectrogram_map": "painformer.render.images",
    "waveform_coverage": "painformer.render.images",
    "render_signal_store": "painformer.render.store",
}

__all__ = [
    "REPRESENTATIONS",
    "SIGNALS",
    "SPECTROGRAM_REPRESENTATIONS",
    "FlatSignalError",
    "RenderParams",
    "colour_lut",
    "render_batch",
    "render_sample",
    "render_signal_store",
    "spectrogram_map",
    "waveform_coverage",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'painformer.render' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
