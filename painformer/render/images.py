"""Biosignals as images, rendered for a whole batch at once with numpy, scipy and OpenCV.

Drawing one matplotlib figure per sample costs ~10 ms; BioVid has 8,700 samples
x 3 signals x 4 representations. Here every step is an array operation over the
batch:

* waveform: the curve is drawn with a square brush of side ``line_width``. For
  each of ``size * supersample`` thin columns the range [lo, hi] of the polyline
  inside the brush's horizontal reach is found (min/max of the samples and of the
  interpolated column edges, ``reduceat`` over all samples, then a sliding
  min/max); a pixel's coverage is the exact overlap of its row with
  [lo - w/2, hi + w/2], accumulated as a difference image and summed down the
  rows; sub-columns average into pixels for horizontal anti-aliasing.
* spectrograms: one float32 STFT of every segment of every sample (the segments,
  detrending and window of ``scipy.signal.spectrogram``), a per-sample
  normalisation, ``cv2.resize`` per image and OpenCV's lookup of a 256-entry
  colour table.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import scipy.fft
from scipy import ndimage
from scipy import signal as sps

from painformer.errors import InputError
from painformer.render.params import (
    REPRESENTATIONS,
    SPECTROGRAM_REPRESENTATIONS,
    RenderParams,
    check_representation,
)


@functools.lru_cache(maxsize=8)
def colour_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colour map (computed once per name)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name].resampled(256)
    except KeyError as error:
        raise InputError(f"unknown colour map {name!r}") from error
    rgba = cmap(np.arange(256))
    lut = np.rint(rgba[:, :3] * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def _as_batch(signals: np.ndarray) -> np.ndarray:
    array = np.asarray(signals, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2:
        raise InputError(f"expected signals of shape (N, T), got {array.shape}")
    if array.shape[1] < 2:
        raise InputError(f"a signal needs at least 2 samples, got {array.shape[1]}")
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InputError(f"signal rows {rows[:10].tolist()} contain {int(bad.sum())} NaN or infinite values")
    return array


def _check_fs(fs: float) -> float:
    """The sampling rate as a float, refused unless finite and positive (for every representation)."""
    try:
        rate = float(fs)
    except (TypeError, ValueError) as error:
        raise InputError(f"sampling rate must be a number, got {fs!r}") from error
    if not (math.isfinite(rate) and rate > 0):
        raise InputError(f"sampling rate must be finite and positive, got {fs!r}")
    return rate


class FlatSignalError(InputError):
    """Signals whose spectrogram would be one flat colour; ``rows`` are their indices in the batch."""

    def __init__(self, message: str, rows: list[int]):
        super().__init__(message)
        self.rows = rows


# A segment counts as empty when, after detrending, nothing in it is larger than this
# fraction of the signal's largest magnitude: about a hundred float32 rounding steps,
# so what is left is rounding noise whose angles and powers are meaningless.
FLAT_TOLERANCE = 1e-5


def _normalise(values: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Scale each sample (first axis) to [0, 1]: own min-max, or a fixed range (clipped)."""
    flat = values.reshape(values.shape[0], -1)
    if value_range is None:
        low = flat.min(axis=1)
        high = flat.max(axis=1)
    else:
        low = np.full(flat.shape[0], float(value_range[0]))
        high = np.full(flat.shape[0], float(value_range[1]))
    span = high - low
    flat_span = span <= 0
    scaled = (flat - low[:, None]) / np.where(flat_span, 1.0, span)[:, None]
    # A constant waveform has no range: it is drawn as a line across the middle.
    # (Spectrograms never get here with a constant map: _stft_frames refuses those signals.)
    scaled[flat_span] = 0.5
    if value_range is not None:
        np.clip(scaled, 0.0, 1.0, out=scaled)
    return scaled.reshape(values.shape)


# -- waveform ---------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _column_layout(length: int, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index plan to get each column's min/max of a polyline of ``length`` samples.

    Sample t sits at x = t * columns / (length - 1); column c spans [c, c + 1].
    Returns (edge_left, edge_frac, order, starts): the curve's value at edge c is
    y[edge_left] * (1 - edge_frac) + y[edge_left + 1] * edge_frac; ``order`` sorts the
    samples and edges by x (an edge before a sample at the same x), and ``starts``
    are the sorted positions of edges 0..columns-1, so that the segment from
    ``starts[c]`` holds edge c and the samples inside column c.
    """
    positions = np.arange(columns + 1, dtype=np.float64) * (length - 1) / columns
    edge_left = np.minimum(np.floor(positions).astype(np.int64), length - 2)
    edge_frac = (positions - edge_left).astype(np.float32)
    sample_x = np.arange(length, dtype=np.float64) * columns / (length - 1)
    edge_x = np.arange(columns + 1, dtype=np.float64)
    all_x = np.concatenate([sample_x, edge_x])
    is_sample = np.concatenate([np.ones(length, bool), np.zeros(columns + 1, bool)])
    order = np.lexsort((is_sample, all_x))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    starts = rank[length : length + columns]
    for array in (edge_left, edge_frac, order, starts):
        array.setflags(write=False)
    return edge_left, edge_frac, order, starts


def waveform_coverage(signals: np.ndarray, params: RenderParams) -> np.ndarray:
    """(N, size, size) float32 in [0, 1]: how much of each pixel the line covers."""
    y_signal = _as_batch(signals)
    length = y_signal.shape[1]
    size, sub = params.size, params.supersample
    columns = size * sub
    scaled = _normalise(y_signal, params.value_range)
    # Row j of the image spans [j, j + 1] from the top; the top value sits at margin * size.
    usable = (1.0 - 2.0 * params.margin) * size
    y_px = (params.margin * size + (1.0 - scaled) * usable).astype(np.float32)

    edge_left, edge_frac, order, starts = _column_layout(length, columns)
    y_edges = y_px[:, edge_left] * (1.0 - edge_frac) + y_px[:, edge_left + 1] * edge_frac
    merged = np.concatenate([y_px, y_edges], axis=1)[:, order]
    low = np.minimum.reduceat(merged, starts, axis=1)
    high = np.maximum.reduceat(merged, starts, axis=1)
    np.minimum(low, y_edges[:, 1:], out=low)
    np.maximum(high, y_edges[:, 1:], out=high)

    half = params.line_width / 2.0
    # Sub-column c (centre c + 0.5) is reached by the brush from every curve point
    # within `half` output pixels, i.e. R = `half * sub` sub-columns either side:
    # cells c - k .. c + k intersect that reach for k < R + 0.5.
    reach = math.ceil(half * sub + 0.5) - 1
    if reach > 0:
        low = ndimage.minimum_filter1d(low, size=2 * reach + 1, axis=1, mode="nearest")
        high = ndimage.maximum_filter1d(high, size=2 * reach + 1, axis=1, mode="nearest")
    return _interval_coverage(low - half, high + half, size=size, supersample=sub)


def _interval_coverage(top: np.ndarray, bottom: np.ndarray, *, size: int, supersample: int) -> np.ndarray:
    """Pixel coverage of vertical intervals [top, bottom] given per sub-column (N, size * supersample).

    The coverage of row j (spanning [j, j + 1]) by [t, b] is G(b - j) - G(t - j) with
    G(u) = clip(u, 0, 1); along j, G(y - j) is 1 above floor(y), frac(y) at floor(y)
    and 0 below. So each interval adds four values to a per-column difference
    array (summed over the sub-columns of one output column with a single
    ``np.add.at``) and one cumulative sum down the rows yields the anti-aliased
    image: O(N * size * size) work instead of O(N * size * size * supersample).
    """
    n = top.shape[0]
    top = np.clip(top, 0.0, float(size)).astype(np.float32)
    bottom = np.clip(bottom, 0.0, float(size)).astype(np.float32)
    top_floor, bottom_floor = np.floor(top), np.floor(bottom)
    top_row, bottom_row = top_floor.astype(np.intp), bottom_floor.astype(np.intp)
    top_frac, bottom_frac = top - top_floor, bottom - bottom_floor  # float32, as the target
    column = np.arange(top.shape[1], dtype=np.intp) // supersample
    base = (np.arange(n, dtype=np.intp) * (size * size))[:, None] + column[None, :]
    rows = np.concatenate([bottom_row, bottom_row + 1, top_row, top_row + 1], axis=1)
    weight = np.concatenate([bottom_frac - 1.0, -bottom_frac, 1.0 - top_frac, top_frac], axis=1)
    weight *= np.float32(1.0 / supersample)
    # Steps below the last row change nothing visible: drop them rather than pad the image.
    weight[rows >= size] = 0.0
    index = np.tile(base, 4) + np.minimum(rows, size - 1) * size
    coverage = np.zeros((n, size, size), dtype=np.float32)
    # Unbuffered, in-order accumulation: deterministic, and faster than bincount + cast.
    np.add.at(coverage.reshape(-1), index.ravel(), weight.ravel())
    # Running sum down the rows, one row at a time over the whole batch: numpy's
    # cumsum along a non-contiguous axis is several times slower.
    for row in range(1, size):
        np.add(coverage[:, row], coverage[:, row - 1], out=coverage[:, row])
    return np.clip(coverage, 0.0, 1.0, out=coverage)


def render_waveform(signals: np.ndarray, params: RenderParams) -> np.ndarray:
    """(N, size, size, 3) uint8: the line in ``line_colour`` over ``background``."""
    coverage = waveform_coverage(signals, params)
    return _apply_lut(coverage, _blend_lut(params.background, params.line_colour))


# -- spectrograms -------------------------------------------------------------------
def _check_length(length: int, params: RenderParams) -> None:
    """A spectrogram needs one full STFT segment: a shortened one would change the frequency bins."""
    if length < params.nperseg:
        raise InputError(
            f"a spectrogram needs signals of at least nperseg = {params.nperseg} samples (one STFT "
            f"segment), got {length}; render shorter signals with a smaller RenderParams(nperseg=...)"
        )


@functools.lru_cache(maxsize=16)
def _window(name: str, length: int) -> np.ndarray:
    window = sps.get_window(name, length).astype(np.float32)  # periodic, as scipy's spectrogram uses
    window.setflags(write=False)
    return window


def _stft_frames(x: np.ndarray, params: RenderParams) -> tuple[np.ndarray, np.ndarray, int]:
    """One-sided STFT of every row, laid out (N, segments, frequencies), complex64.

    The same segments, detrending and window as ``scipy.signal.spectrogram``, but
    in float32 with a single ``scipy.fft.rfft`` over all segments of all samples.
    Returns (spectrum, window, nfft).
    """
    _check_length(x.shape[1], params)
    nperseg, nfft = params.nperseg, params.nfft or params.nperseg
    hop = nperseg - params.noverlap
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32), nperseg, axis=1)[:, ::hop, :]
    if params.detrend == "constant":
        frames = frames - frames.mean(axis=2, keepdims=True)
        variation = np.maximum(frames.max(axis=(1, 2)), -frames.min(axis=(1, 2)))
    elif params.detrend == "linear":
        frames = sps.detrend(frames, type="linear", axis=2).astype(np.float32)
        variation = np.abs(frames).max(axis=(1, 2))
    else:
        # Undetrended, a constant segment has only a DC bin: every other angle is rounding noise.
        variation = frames.max(axis=(1, 2)) - frames.min(axis=(1, 2))
    _refuse_flat(variation, np.abs(x).max(axis=1), params.detrend)
    window = _window(params.window, nperseg)
    spectrum = scipy.fft.rfft(frames * window, n=nfft, axis=2)
    return spectrum, window, nfft


def _refuse_flat(variation: np.ndarray, magnitude: np.ndarray, detrend: str) -> None:
    flat = variation <= FLAT_TOLERANCE * magnitude
    if flat.any():
        rows = np.flatnonzero(flat).tolist()
        how = "constant" if detrend == "none" else f"constant after {detrend!r} detrending"
        raise FlatSignalError(
            f"signal rows {rows[:10]}{' ...' if len(rows) > 10 else ''} are {how} in every STFT segment: "
            "their spectrogram would be a blank image",
            rows,
        )


def _spectrogram_map_sf(x: np.ndarray, fs: float, representation: str, params: RenderParams) -> np.ndarray:
    """The spectrogram map laid out (N, segments, frequencies), float32."""
    spectrum, window, nfft = _stft_frames(x, params)
    if representation == "spec_psd":
        power = spectrum.real**2 + spectrum.imag**2
        if params.scaling == "density":
            power *= 1.0 / (fs * float(np.sum(window.astype(np.float64) ** 2)))
        else:
            power *= 1.0 / float(np.sum(window.astype(np.float64))) ** 2
        # One-sided spectrum: every bin but DC (and Nyquist for even nfft) carries both halves.
        power[..., 1 : (None if nfft % 2 else -1)] *= 2.0
        decibels = np.log10(np.maximum(power, np.finfo(np.float32).tiny))
        decibels *= 10.0
        if params.psd_dynamic_range_db is not None:
            floor = decibels.max(axis=(1, 2), keepdims=True) - np.float32(params.psd_dynamic_range_db)
            np.maximum(decibels, floor, out=decibels)
        return decibels
    angle = _angle(spectrum)
    if representation == "spec_angle":
        return angle
    return _unwrap(angle, axis=2 if params.unwrap_axis == "frequency" else 1)


def _angle(spectrum: np.ndarray) -> np.ndarray:
    """Phase angle in [-pi, pi] of a complex64 array, like ``np.angle``.

    OpenCV's vectorised ``phase`` (within 2e-4 rad, a hundredth of one of the
    256 colour levels spanning 2 pi) is ten times faster than numpy's arctan2.
    """
    real = np.ascontiguousarray(spectrum.real).reshape(-1, spectrum.shape[-1])
    imag = np.ascontiguousarray(spectrum.imag).reshape(-1, spectrum.shape[-1])
    angle = cv2.phase(real, imag).reshape(spectrum.shape)  # [0, 2 pi)
    angle -= np.float32(2.0 * np.pi) * (angle > np.float32(np.pi))
    return angle


def _unwrap(angle: np.ndarray, axis: int) -> np.ndarray:
    """``np.unwrap`` (period 2 pi) in a quarter of its time: subtract 2 pi * round(step / 2 pi), accumulated.

    Identical to ``np.unwrap`` except for steps of exactly 3 pi, 5 pi, ... which
    a float signal does not produce.
    """
    steps = np.diff(angle, axis=axis)
    turns = np.rint(steps * np.float32(1.0 / (2.0 * np.pi)))
    np.cumsum(turns, axis=axis, out=turns)
    unwrapped = angle.copy()
    tail = [slice(None)] * angle.ndim
    tail[axis] = slice(1, None)
    unwrapped[tuple(tail)] -= np.float32(2.0 * np.pi) * turns
    return unwrapped


def spectrogram_map(signals: np.ndarray, fs: float, representation: str, params: RenderParams) -> np.ndarray:
    """(N, F, S) float32 map plotted by a spectrogram representation (frequency rows, low first).

    spec_angle: STFT phase angle in radians, [-pi, pi]; spec_phase: the same angle
    unwrapped along ``params.unwrap_axis``; spec_psd: 10*log10 of the power spectral
    density, floored ``psd_dynamic_range_db`` below each sample's maximum. Equal,
    to float32 precision, to ``scipy.signal.spectrogram`` with the same settings.
    """
    if representation not in SPECTROGRAM_REPRESENTATIONS:
        raise InputError(f"{representation!r} is not a spectrogram representation")
    rate = _check_fs(fs)
    return _spectrogram_map_sf(_as_batch(signals), rate, representation, params).transpose(0, 2, 1)


def _resize_maps(maps_sf: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """(N, S, F) -> (N, size, size) float32 image: time left to right, low frequencies at the bottom.

    One ``cv2.resize`` per image writing straight into the batch: cheaper than
    resizing the batch as channels, which needs two transposing copies.
    """
    flag = cv2.INTER_LINEAR if interpolation == "bilinear" else cv2.INTER_NEAREST
    out = np.empty((maps_sf.shape[0], size, size), dtype=np.float32)
    for index, map_sf in enumerate(maps_sf):
        upright = np.ascontiguousarray(map_sf.T[::-1], dtype=np.float32)  # (F, S), row 0 = highest frequency
        cv2.resize(upright, (size, size), dst=out[index], interpolation=flag)
    return out


def _apply_lut(values: np.ndarray, lut: np.ndarray, *, scale: float = 255.0, offset: float = 0.0) -> np.ndarray:
    """(N, H, W) floats -> (N, H, W, 3) uint8 through a (256, 3) table at index round(v * scale + offset).

    OpenCV does the quantisation and the table lookup in one pass each, which is
    an order of magnitude faster than numpy fancy indexing of three channels.
    """
    n, height, width = values.shape
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(n * height, width)
    index = cv2.convertScaleAbs(flat, alpha=scale, beta=offset)  # saturates to 0..255
    table = np.ascontiguousarray(lut[:, None, :])
    return cv2.applyColorMap(index, table).reshape(n, height, width, 3)


@functools.lru_cache(maxsize=8)
def _blend_lut(background: tuple[int, int, int], line: tuple[int, int, int]) -> np.ndarray:
    """(256, 3) uint8: background blended towards the line colour by coverage k / 255."""
    coverage = np.arange(256, dtype=np.float64)[:, None] / 255.0
    start = np.asarray(background, dtype=np.float64)
    table = np.rint(start + coverage * (np.asarray(line, dtype=np.float64) - start)).astype(np.uint8)
    table.setflags(write=False)
    return table


def colourise(values: np.ndarray, colormap: str) -> np.ndarray:
    """Map (N, H, W) values in [0, 1] to RGB as matplotlib does: table entry floor(v * 256), at most 255."""
    return _apply_lut(values, colour_lut(colormap), scale=256.0, offset=-0.5)


def render_spectrogram(signals: np.ndarray, fs: float, representation: str, params: RenderParams) -> np.ndarray:
    """(N, size, size, 3) uint8 colour-mapped spectrogram images."""
    if representation not in SPECTROGRAM_REPRESENTATIONS:
        raise InputError(f"{representation!r} is not a spectrogram representation")
    maps = _spectrogram_map_sf(_as_batch(signals), _check_fs(fs), representation, params)
    # Bilinear resampling stays within each map's range, so normalising first is exact and cheaper.
    scaled = _normalise(maps, params.value_range).astype(np.float32, copy=False)
    resized = _resize_maps(scaled, params.size, params.interpolation)
    return colourise(resized, params.colormap)


# -- public entry points ----------------------------------------------------------
def render_batch(
    signals: np.ndarray,
    fs: float,
    representation: str,
    *,
    params: RenderParams | None = None,
) -> np.ndarray:
    """Render N equally long signals (N, T) as (N, size, size, 3) uint8 images.

    ``representation`` is one of waveform | spec_angle | spec_phase | spec_psd; the
    result depends only on the signals, ``fs`` and ``params`` (deterministic).
    Refused with ``InputError``: NaN or infinite values, ``fs`` not finite and
    positive, and for spectrograms signals shorter than ``params.nperseg`` or
    constant (after detrending) in every segment (``FlatSignalError``, naming the rows).
    A constant waveform is drawn as a horizontal line across the middle.
    """
    check_representation(representation)
    _check_fs(fs)
    params = params or RenderParams()
    if representation == "waveform":
        return render_waveform(signals, params)
    return render_spectrogram(signals, fs, representation, params)


def render_sample(
    signal_values: np.ndarray,
    fs: float,
    representation: str,
    *,
    params: RenderParams | None = None,
) -> np.ndarray:
    """One sample's image(s): (T,) -> (size, size, 3); (C, T), e.g. fNIRS channels -> (C, size, size, 3)."""
    values = np.asarray(signal_values)
    if values.ndim == 1:
        return render_batch(values[None], fs, representation, params=params)[0]
    if values.ndim == 2:
        return render_batch(values, fs, representation, params=params)
    raise InputError(f"expected a signal of shape (T,) or (C, T), got {values.shape}")


__all__ = [
    "REPRESENTATIONS",
    "FlatSignalError",
    "RenderParams",
    "colour_lut",
    "colourise",
    "render_batch",
    "render_sample",
    "spectrogram_map",
    "waveform_coverage",
]
