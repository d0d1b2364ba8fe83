"""Biosignal images per second: painformer.render.render_batch against one matplotlib figure per image.

The reference draws the same picture the way a plotting script would: a new
2.24 x 2.24 in figure at 100 dpi, axes filling it and switched off, ``plot`` for
the waveform or scipy's spectrogram of the sample followed by ``imshow`` (viridis,
bilinear, low frequencies at the bottom), then the canvas copied to an array.
Both sides run in one process, single-threaded (OpenCV limited to one thread),
alternating rounds so that a busy machine slows both alike; the table reports
the best round of each (as timeit does: the least disturbed by other load),
the median round, and the ratios.

    python benchmarks/render.py [--batch-size 64] [--reference-images 24] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import cv2
import numpy as np
from scipy import signal as sps

from painformer.render import REPRESENTATIONS, RenderParams, render_batch

FS = 512.0
LENGTH = 2816  # BioVid Part A: 5.5 s at 512 Hz


def biovid_like_signals(count: int, seed: int = 0) -> np.ndarray:
    """ECG-, EMG- and GSR-like rows (shape and spectrum matter for the spectrogram cost only a little)."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / FS
    rows = []
    for index in range(count):
        kind = index % 3
        if kind == 0:
            row = np.sin(2 * np.pi * rng.uniform(1.0, 1.6) * t) ** 31 + 0.02 * rng.normal(size=LENGTH)
        elif kind == 1:
            row = rng.normal(size=LENGTH) * (1.0 + 2.0 * (np.abs(t - rng.uniform(1, 4)) < 0.7))
        else:
            row = 2.0 + np.cumsum(rng.normal(size=LENGTH)) * 0.01
        rows.append(row)
    return np.stack(rows)


class MatplotlibReference:
    """Draws one image per call with matplotlib (Agg), as a per-sample plotting loop would."""

    def __init__(self, params: RenderParams):
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.params = params
        self.Figure = Figure
        self.Canvas = FigureCanvasAgg

    def _figure(self):
        inches = self.params.size / 100.0
        figure = self.Figure(figsize=(inches, inches), dpi=100)
        canvas = self.Canvas(figure)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.axis("off")
        return canvas, axes

    def draw(self, values: np.ndarray, representation: str) -> np.ndarray:
        params = self.params
        canvas, axes = self._figure()
        if representation == "waveform":
            axes.plot(values, color=np.asarray(params.line_colour) / 255.0, linewidth=params.line_width * 0.72)
            axes.set_xlim(0, len(values) - 1)
            pad = params.margin * (values.max() - values.min()) / (1 - 2 * params.margin)
            axes.set_ylim(values.min() - pad, values.max() + pad)
        else:
            mode = {"spec_angle": "angle", "spec_phase": "phase", "spec_psd": "psd"}[representation]
            _, _, values_map = sps.spectrogram(
                values,
                fs=FS,
                window=params.window,
                nperseg=params.nperseg,
                noverlap=params.noverlap,
                detrend=params.detrend,
                mode=mode,
            )
            if mode == "psd":
                values_map = 10 * np.log10(np.maximum(values_map, 1e-300))
            axes.imshow(values_map, origin="lower", aspect="auto", cmap=params.colormap, interpolation="bilinear")
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _draw_many(reference: MatplotlibReference, signals: np.ndarray, representation: str, count: int) -> None:
    for index in range(count):
        reference.draw(signals[index % len(signals)], representation)


def _rate(function, images: int) -> float:
    start = time.perf_counter()
    function()
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64, help="signals per render_batch call")
    parser.add_argument("--reference-images", type=int, default=24, help="matplotlib figures per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    cv2.setNumThreads(1)
    params = RenderParams()
    signals = biovid_like_signals(args.batch_size)
    reference = MatplotlibReference(params)
    print(
        f"signals: {args.batch_size} x {LENGTH} samples at {FS:g} Hz, images {params.size}x{params.size}, "
        f"single-threaded, {args.rounds} rounds"
    )
    print(f"{'representation':<16}{'render_batch img/s':>20}{'matplotlib img/s':>18}{'ratio':>8}{'median ratio':>14}")
    for representation in REPRESENTATIONS:
        render_batch(signals, FS, representation, params=params)  # warm caches (windows, tables, layouts)
        reference.draw(signals[0], representation)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(
                _rate(functools.partial(render_batch, signals, FS, representation, params=params), len(signals))
            )
            theirs.append(
                _rate(
                    functools.partial(_draw_many, reference, signals, representation, args.reference_images),
                    args.reference_images,
                )
            )
        fast, slow = max(ours), max(theirs)
        median_ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"{representation:<16}{fast:>20.0f}{slow:>18.1f}{fast / slow:>7.1f}x{median_ratio:>13.1f}x")


if __name__ == "__main__":
    main()
