"""Biosignals (ECG, EMG, GSR, fNIRS channels) as 224x224 images: waveform and three spectrograms."""

from painformer.render.images import (
    colour_lut,
    render_batch,
    render_sample,
    spectrogram_map,
    waveform_coverage,
)
from painformer.render.params import (
    REPRESENTATIONS,
    SPECTROGRAM_REPRESENTATIONS,
    RenderParams,
)

__all__ = [
    "REPRESENTATIONS",
    "SPECTROGRAM_REPRESENTATIONS",
    "RenderParams",
    "colour_lut",
    "render_batch",
    "render_sample",
    "spectrogram_map",
    "waveform_coverage",
]
