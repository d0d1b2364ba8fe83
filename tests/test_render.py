"""Biosignal images: shapes, determinism, agreement with matplotlib and scipy, the CLI store."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import signal as sps

from painformer.errors import InputError
from painformer.render import (
    REPRESENTATIONS,
    SPECTROGRAM_REPRESENTATIONS,
    FlatSignalError,
    RenderParams,
    render_batch,
    render_sample,
    spectrogram_map,
)
from painformer.render.images import _unwrap
from painformer.render.store import render_signal_store
from painformer.stores import SampleStore

FS = 512.0
LENGTH = 2816  # BioVid: 5.5 s at 512 Hz


def _signals(count: int, seed: int) -> np.ndarray:
    """Smooth random signals with some fast structure, like filtered biosignals."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / FS
    walk = np.cumsum(rng.normal(size=(count, LENGTH)), axis=1) * 0.05
    beats = np.sin(2 * np.pi * rng.uniform(1.0, 2.0, size=(count, 1)) * t) ** 15
    return walk + beats + 0.05 * rng.normal(size=(count, LENGTH))


def _ink(image: np.ndarray) -> np.ndarray:
    """How far each pixel is from the white background (0 = white)."""
    return 255.0 - image.astype(np.float64).mean(axis=2)


def _luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


# -- rendering ------------------------------------------------------------------------
@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_shapes_dtype_and_determinism(representation):
    signals = _signals(3, seed=0)
    images = render_batch(signals, FS, representation)
    assert images.shape == (3, 224, 224, 3) and images.dtype == np.uint8
    again = render_batch(signals.copy(), FS, representation)
    assert np.array_equal(images, again)
    # A sample renders the same alone as inside a batch.
    assert np.array_equal(render_sample(signals[1], FS, representation), images[1])
    # Not a blank canvas: the picture uses a good part of the value range.
    assert int(images.max()) - int(images.min()) > 100


@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_different_signals_give_different_images(representation):
    first, second = _signals(2, seed=1)
    images = render_batch(np.stack([first, second]), FS, representation)
    difference = np.abs(images[0].astype(int) - images[1].astype(int)).mean()
    assert difference > 5.0, difference


def test_channels_render_one_image_each():
    channels = _signals(4, seed=2)
    images = render_sample(channels, 50.0, "waveform")
    assert images.shape == (4, 224, 224, 3)
    for channel, image in zip(channels, images):
        assert np.array_equal(render_sample(channel, 50.0, "waveform"), image)


def _matplotlib_waveform(values: np.ndarray, params: RenderParams) -> np.ndarray:
    """The reference figure: 2.24 in at 100 dpi, axes filling it, axes off, same y placement."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scaled = (values - values.min()) / (values.max() - values.min())
    figure = Figure(figsize=(params.size / 100, params.size / 100), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.plot(scaled, color=np.asarray(params.line_colour) / 255, linewidth=params.line_width * 72 / 100)
    pad = params.margin / (1 - 2 * params.margin)
    axes.set_xlim(0, len(values) - 1)
    axes.set_ylim(-pad, 1 + pad)
    axes.axis("off")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


@pytest.mark.parametrize("seed", [3, 4])
def test_waveform_agrees_with_matplotlib(seed):
    params = RenderParams()
    values = _signals(1, seed=seed)[0]
    ours = _ink(render_batch(values[None], FS, "waveform", params=params)[0])
    reference = _ink(_matplotlib_waveform(values, params))
    rows = np.arange(224, dtype=np.float64)[:, None]
    inked = (ours.sum(axis=0) > 0) & (reference.sum(axis=0) > 0)
    assert inked.mean() > 0.95  # the curve spans the whole width in both
    centroid_ours = (ours * rows).sum(axis=0)[inked] / ours.sum(axis=0)[inked]
    centroid_reference = (reference * rows).sum(axis=0)[inked] / reference.sum(axis=0)[inked]
    gap = np.abs(centroid_ours - centroid_reference)
    assert np.median(gap) < 1.0 and np.percentile(gap, 95) < 3.0, (np.median(gap), gap.max())
    # Same amount of ink (line thickness) within a quarter.
    assert 0.75 < ours.sum() / reference.sum() < 1.33
    # The vertical extent of the drawn curve agrees to a couple of pixels.
    rows_ours = np.flatnonzero(ours.max(axis=1) > 64)
    rows_reference = np.flatnonzero(reference.max(axis=1) > 64)
    assert abs(rows_ours[0] - rows_reference[0]) <= 2 and abs(rows_ours[-1] - rows_reference[-1]) <= 2


@pytest.mark.parametrize("level", [0.0, 3.7, -2e6])
def test_waveform_is_antialiased_and_flat_signal_is_a_centred_line(level):
    image = render_batch(np.full((1, LENGTH), level), FS, "waveform")[0]
    ink = _ink(image)
    row_ink = ink.sum(axis=1)
    centre = (row_ink * np.arange(224)).sum() / row_ink.sum()
    assert abs(centre - 112) < 1.0
    assert 1.5 < row_ink.sum() / ink.max() / 224 < 2.5  # 2 px thick
    assert (ink.sum(axis=0) > 0).all()  # a line across the whole width, not a blank canvas
    sloped = render_batch(np.linspace(0, 1, LENGTH)[None] ** 3, FS, "waveform")[0]
    levels = np.unique(_ink(sloped))
    assert len(levels) > 10  # partial coverage at the edges, not a binary raster


def test_spectrogram_maps_equal_scipy():
    signals = _signals(2, seed=5)
    params = RenderParams(psd_dynamic_range_db=None)
    common = {"fs": FS, "window": "hann", "nperseg": params.nperseg, "noverlap": params.noverlap, "detrend": "constant"}
    _, _, psd = sps.spectrogram(signals, mode="psd", **common)
    ours = spectrogram_map(signals, FS, "spec_psd", params)
    assert ours.shape == psd.shape == (2, 129, 81)
    assert np.abs(ours - 10 * np.log10(psd)).max() < 0.05
    _, _, angle = sps.spectrogram(signals, mode="angle", **common)
    ours = spectrogram_map(signals, FS, "spec_angle", params)
    wrapped_gap = np.angle(np.exp(1j * (ours - angle)))
    assert np.abs(wrapped_gap).max() < 1e-3


def test_unwrap_equals_numpy():
    angles = np.random.default_rng(6).uniform(-np.pi, np.pi, size=(3, 40, 50)).astype(np.float32)
    for axis in (1, 2):
        assert np.allclose(_unwrap(angles, axis=axis), np.unwrap(angles, axis=axis), atol=1e-4)


def test_psd_image_follows_sine_frequency():
    t = np.arange(LENGTH) / FS
    brightest = []
    for frequency in (20.0, 60.0, 120.0, 200.0):
        image = render_batch(np.sin(2 * np.pi * frequency * t)[None], FS, "spec_psd")[0]
        row = int(np.argmax(_luminance(image).mean(axis=1)))
        expected = (1 - frequency / (FS / 2)) * 224  # low frequencies at the bottom
        assert abs(row - expected) < 4, (frequency, row, expected)
        brightest.append(row)
    assert brightest == sorted(brightest, reverse=True)


@pytest.mark.parametrize("unwrap_axis", ["frequency", "time"])
def test_phase_is_unwrapped_angle(unwrap_axis):
    t = np.arange(LENGTH) / FS
    tone = np.sin(2 * np.pi * 4.0 * t) + 0.3 * np.sin(2 * np.pi * 40.0 * t + 1.0)
    params = RenderParams(unwrap_axis=unwrap_axis)
    angle = spectrogram_map(tone[None], FS, "spec_angle", params)[0]
    phase = spectrogram_map(tone[None], FS, "spec_phase", params)[0]
    assert angle.min() >= -np.pi - 1e-5 and angle.max() <= np.pi + 1e-5
    # Unwrapping only adds whole turns, and leaves no step larger than half a turn.
    assert np.abs(np.angle(np.exp(1j * (phase - angle)))).max() < 1e-3
    axis = 0 if unwrap_axis == "frequency" else 1
    assert np.abs(np.diff(phase, axis=axis)).max() <= np.pi + 1e-4
    if unwrap_axis == "frequency":
        assert np.abs(np.diff(angle, axis=0)).max() > 4.0  # the angle wraps
    else:
        # The 4 Hz tone sits in bin 2; its phase advances pi / 2 per 32-sample hop:
        # the angle wraps around every 4 hops, the unwrapped phase keeps rising.
        assert np.abs(np.diff(angle[2])).max() > 4.0
        assert np.all(np.diff(phase[2]) > 0) and phase[2, -1] - phase[2, 0] > 30 * np.pi
    images = (
        render_batch(tone[None], FS, "spec_angle", params=params),
        render_batch(tone[None], FS, "spec_phase", params=params),
    )
    assert not np.array_equal(*images)


def test_psd_image_follows_a_linear_chirp():
    t = np.arange(LENGTH) / FS
    chirp = sps.chirp(t, f0=20.0, t1=t[-1], f1=200.0, method="linear")
    image = _luminance(render_batch(chirp[None], FS, "spec_psd")[0])
    brightest = np.argmax(image, axis=0)  # per column
    # The column centres map onto the STFT segments' centres (bilinear resampling of 81 steps).
    params = RenderParams()
    hop = params.nperseg - params.noverlap
    steps = (LENGTH - params.nperseg) // hop + 1
    step = np.clip((np.arange(224) + 0.5) * steps / 224 - 0.5, 0, steps - 1)
    frequency = 20.0 + 180.0 * ((params.nperseg / 2 + hop * step) / FS) / t[-1]
    expected = (1 - frequency / (FS / 2)) * 224
    assert np.abs(brightest - expected).max() < 4, np.abs(brightest - expected).max()
    assert np.diff(brightest).max() <= 1  # never moves down (a pixel of jitter at most)
    assert brightest[0] - brightest[-1] > 130  # rises from ~20 Hz to ~190 Hz


def test_default_phase_unwrapping_removes_the_angle_jumps():
    """spec_phase unwraps along frequency by default: no step of more than pi is left where spec_angle has thousands."""
    assert RenderParams().unwrap_axis == "frequency"
    signals = _signals(3, seed=8)
    angle = spectrogram_map(signals, FS, "spec_angle", RenderParams())
    phase = spectrogram_map(signals, FS, "spec_phase", RenderParams())
    jumps_angle = (np.abs(np.diff(angle, axis=1)) > np.pi).sum(axis=(1, 2))
    jumps_phase = (np.abs(np.diff(phase, axis=1)) > np.pi + 1e-4).sum(axis=(1, 2))
    assert (jumps_angle > 1000).all() and (jumps_phase == 0).all(), (jumps_angle, jumps_phase)
    # Only whole turns were added, and the images differ accordingly.
    assert np.abs(np.angle(np.exp(1j * (phase - angle)))).max() < 1e-3
    assert not np.array_equal(render_batch(signals, FS, "spec_angle"), render_batch(signals, FS, "spec_phase"))


def test_time_unwrapping_is_dominated_by_the_hop():
    """Why time is not the default: bin k advances k * 2 pi * hop / nfft per step, more than pi above
    8 Hz, so unwrapping along time adds the same ramps to every signal, even to white noise."""
    signals = np.concatenate([_signals(3, seed=9), np.random.default_rng(10).normal(size=(2, LENGTH))])
    upper = np.triu_indices(len(signals), 1)
    correlation = {}
    for axis in ("frequency", "time"):
        maps = spectrogram_map(signals, FS, "spec_phase", RenderParams(unwrap_axis=axis))
        correlation[axis] = np.corrcoef(maps.reshape(len(signals), -1))[upper]
    assert correlation["time"].min() > 0.85, correlation["time"]
    assert np.abs(correlation["frequency"]).max() < 0.5, correlation["frequency"]


@pytest.mark.parametrize("representation", SPECTROGRAM_REPRESENTATIONS)
def test_constant_signals_are_refused_by_spectrograms(representation):
    signals = _signals(4, seed=12)
    signals[1] = 0.0
    signals[3] = 3.7
    with pytest.raises(FlatSignalError, match=re.escape("rows [1, 3]")) as caught:
        render_batch(signals, FS, representation)
    assert caught.value.rows == [1, 3] and isinstance(caught.value, InputError)
    assert "blank" in str(caught.value)
    with pytest.raises(FlatSignalError):
        spectrogram_map(signals[3:], FS, representation, RenderParams())
    # Constant in every segment after detrending: a ramp under linear detrending; a step
    # between segments that do not overlap.
    ramp = np.linspace(-1.0, 5.0, LENGTH)[None]
    with pytest.raises(FlatSignalError, match="linear"):
        render_batch(ramp, FS, representation, params=RenderParams(detrend="linear"))
    steps = np.repeat(np.arange(LENGTH // 256, dtype=np.float64), 256)[None]
    with pytest.raises(FlatSignalError, match="constant"):
        render_batch(steps, FS, representation, params=RenderParams(noverlap=0))
    with pytest.raises(FlatSignalError):
        render_batch(signals[3:], FS, representation, params=RenderParams(detrend="none"))
    # Not refused: the same ramp with the default (mean) detrending, and a small swing on a
    # large offset, which float32 still resolves.
    small_swing = 1000.0 + 0.05 * np.sin(2 * np.pi * 7.0 * np.arange(LENGTH) / FS)
    for signal in (ramp[0], small_swing):
        image = render_batch(signal[None], FS, representation)[0]
        assert int(image.max()) - int(image.min()) > 50


@pytest.mark.parametrize("representation", REPRESENTATIONS)
@pytest.mark.parametrize("fs", [0.0, -512.0, float("nan"), float("inf"), "fast"])
def test_sampling_rate_must_be_finite_and_positive(representation, fs):
    with pytest.raises(InputError, match="sampling rate"):
        render_batch(_signals(1, seed=13), fs, representation)


@pytest.mark.parametrize("representation", SPECTROGRAM_REPRESENTATIONS)
def test_spectrograms_need_one_full_segment(representation):
    signals = _signals(2, seed=14)
    with pytest.raises(InputError, match="at least nperseg = 256 samples"):
        render_batch(signals[:, :255], FS, representation)
    with pytest.raises(InputError, match="at least nperseg = 64 samples"):
        spectrogram_map(signals[:, :63], FS, representation, RenderParams(nperseg=64, noverlap=48))
    one_segment = render_batch(signals[:, :256], FS, representation)
    assert one_segment.shape == (2, 224, 224, 3) and int(one_segment.max()) - int(one_segment.min()) > 50
    short = render_batch(signals[:, :100], FS, representation, params=RenderParams(nperseg=64, noverlap=48))
    assert short.shape == (2, 224, 224, 3)
    # The waveform has no segments: two samples are enough to draw a line.
    assert render_batch(signals[:, :2], FS, "waveform").shape == (2, 224, 224, 3)


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="NaN"):
        render_batch(np.array([[0.0, np.nan, 1.0]]), FS, "waveform")
    with pytest.raises(InputError, match="unknown representation"):
        render_batch(np.zeros((1, 10)), FS, "spectrum")
    with pytest.raises(InputError, match="noverlap"):
        RenderParams(nperseg=64, noverlap=64)
    params = RenderParams(line_width=3.0)
    assert RenderParams.from_dict(params.to_dict()) == params


# -- the command line -------------------------------------------------------------------
def _write_biovid_csv(path: Path, seed: int, *, nan_at: int | None = None) -> None:
    """A BioVid Part A style biosignal file: tab-separated, time in microseconds, 512 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / FS
    ecg = np.sin(2 * np.pi * 1.2 * t) ** 21 + 0.02 * rng.normal(size=LENGTH)
    gsr = 2.0 + 0.3 * np.cumsum(rng.normal(size=LENGTH)) / LENGTH**0.5
    emg = rng.normal(size=LENGTH) * (1 + (t > 3))
    if nan_at is not None:
        ecg[nan_at] = np.nan
    frame = pd.DataFrame({"time": np.round(t * 1e6).astype(np.int64), "gsr": gsr, "ecg": ecg, "emg_trapezius": emg})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False)


def _write_table(root: Path, names: list[str], biosignals: list[Path]) -> Path:
    rows = []
    for number, (name, path) in enumerate(zip(names, biosignals)):
        subject = name.split("-")[0]
        class_name = name.split("-")[1]
        rows.append(
            {
                "dataset": "fixture",
                "sample": name,
                "subject": subject,
                "subject_id": number // 3,
                "class_id": {"BL1": 0, "PA4": 4}[class_name],
                "class_name": class_name,
                "video": str(root / "video" / f"{name}.mp4"),
                "biosignals": str(path),
                "split": "",
            }
        )
    table = root / "samples.tsv"
    pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
    return table


@pytest.fixture
def biovid_fixture(tmp_path):
    names = [
        f"{subject}-{cls}-{n:03d}"
        for subject in ("071309_w_21", "071614_m_20")
        for cls, n in (("BL1", 1), ("BL1", 2), ("PA4", 1))
    ]
    paths = []
    for seed, name in enumerate(names):
        path = tmp_path / "biosignals_filtered" / name.split("-")[0] / f"{name}_bio.csv"
        _write_biovid_csv(path, seed)
        paths.append(path)
    return tmp_path, _write_table(tmp_path, names, paths), paths


def _chunk_mtimes(store_path: Path) -> dict[str, int]:
    chunks = store_path / "images"
    return {str(p): p.stat().st_mtime_ns for p in chunks.rglob("*") if p.is_file() and "zarr.json" not in p.name}


def test_cli_writes_complete_store_and_rerun_recomputes_nothing(biovid_fixture, capsys):
    from painformer.cli import main
    from painformer.data import load_signal

    root, table, paths = biovid_fixture
    out, marker = root / "images" / "ecg.zarr", root / "images" / "ecg.complete"
    argv = [
        "render-biosignals",
        "--samples",
        str(table),
        "--signal",
        "ecg",
        "--representation",
        "spec_psd",
        "--out",
        str(out),
        "--complete-marker",
        str(marker),
        "--batch-size",
        "4",
    ]
    assert main(argv) == 0
    assert marker.is_file()
    captured = capsys.readouterr()
    assert "render ecg/spec_psd" in captured.err and "6/6" in captured.err  # the progress bar
    assert "render ecg/spec_psd" not in captured.out
    store = SampleStore.open_complete(out)
    assert store.read().shape == (6, 224, 224, 3)
    assert store.attrs["fingerprint"]["representation"] == "spec_psd"
    values, fs = load_signal(str(paths[2]), "ecg")
    assert np.array_equal(store.read(2), render_sample(values, fs, "spec_psd"))

    before = _chunk_mtimes(out)
    assert len(before) == 6
    assert main(argv) == 0
    assert _chunk_mtimes(out) == before  # nothing rewritten

    # Forget one sample: only that one is rendered again, identically.
    expected = store.read(4)
    writable = SampleStore.open(out)
    writable.group["done"][4] = False
    writable.array[4] = np.zeros_like(expected)
    marker.unlink()
    before = _chunk_mtimes(out)
    capsys.readouterr()
    assert main(argv) == 0 and marker.is_file()
    assert "1/1" in capsys.readouterr().err  # the bar counts the pending samples only
    after = _chunk_mtimes(out)
    changed = [p for p in after if after[p] != before.get(p)]
    assert len(changed) == 1
    assert np.array_equal(SampleStore.open_complete(out).read(4), expected)


def test_cli_names_the_file_with_nan(biovid_fixture, capsys):
    from painformer.cli import main

    root, table, paths = biovid_fixture
    _write_biovid_csv(paths[3], seed=3, nan_at=100)
    out, marker = root / "gsr.zarr", root / "gsr.complete"
    code = main(
        [
            "render-biosignals",
            "--samples",
            str(table),
            "--signal",
            "ecg",
            "--representation",
            "waveform",
            "--out",
            str(out),
            "--complete-marker",
            str(marker),
        ]
    )
    assert code == 1
    error = capsys.readouterr().err
    assert str(paths[3]) in error and "NaN" in error.replace("nan", "NaN")
    assert not marker.exists()


def test_store_of_channels_has_one_image_per_channel(tmp_path):
    """fNIRS-like input: (C, T) per sample gives (C, 224, 224, 3) per sample."""
    rng = np.random.default_rng(7)
    paths = []
    for number in range(3):
        path = tmp_path / f"s{number}.npy"
        np.save(path, np.cumsum(rng.normal(size=(5, 500)), axis=1))
        paths.append(str(path))
    table = pd.DataFrame(
        {
            "sample": ["a", "b", "c"],
            "subject": ["p1", "p1", "p2"],
            "class_name": ["No", "Low", "High"],
            "biosignals": paths,
        }
    )

    def load_npy(path: str, signal: str) -> tuple[np.ndarray, float]:
        return np.load(path), 50.0

    store = render_signal_store(
        table=table, signal="fnirs", representation="waveform", out=tmp_path / "f.zarr", batch_size=2, loader=load_npy
    )
    assert store.is_complete() and store.read().shape == (3, 5, 224, 224, 3)
    assert np.array_equal(store.read(1), render_sample(np.load(paths[1]), 50.0, "waveform"))

    np.save(paths[2], np.zeros((4, 500)))
    with pytest.raises(InputError, match=os.path.basename(paths[2])):
        render_signal_store(
            table=table, signal="fnirs", representation="waveform", out=tmp_path / "g.zarr", loader=load_npy
        )


def _npy_table(tmp_path: Path, arrays: list[np.ndarray]) -> pd.DataFrame:
    """Samples in .npy files (one per sample) and the sample table that lists them."""
    paths = []
    for number, values in enumerate(arrays):
        path = tmp_path / "signals" / f"sample{number}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, values)
        paths.append(str(path))
    return pd.DataFrame(
        {
            "sample": [f"p{n // 3}-s{n}" for n in range(len(arrays))],
            "subject": [f"p{n // 3}" for n in range(len(arrays))],
            "class_name": ["BL1", "PA4"] * (len(arrays) // 2) + ["BL1"] * (len(arrays) % 2),
            "biosignals": paths,
        }
    )


def _load_npy(path: str, signal: str) -> tuple[np.ndarray, float]:
    return np.load(path), FS


def test_store_names_the_constant_sample_and_draws_its_waveform(tmp_path):
    arrays = list(_signals(4, seed=15))
    arrays[2] = np.full(LENGTH, 1.25)  # e.g. a disconnected electrode
    table = _npy_table(tmp_path, arrays)
    flat_path = table["biosignals"][2]
    with pytest.raises(InputError, match=re.escape(f"sample p0-s2 ({flat_path})")) as caught:
        render_signal_store(
            table=table,
            signal="gsr",
            representation="spec_psd",
            out=tmp_path / "psd.zarr",
            batch_size=2,
            loader=_load_npy,
            progress=False,
        )
    assert "constant" in str(caught.value) and "blank" in str(caught.value)
    # The batch before it was written; the flat sample was not.
    assert SampleStore.open(tmp_path / "psd.zarr").done_mask().tolist() == [True, True, False, False]

    store = render_signal_store(
        table=table,
        signal="gsr",
        representation="waveform",
        out=tmp_path / "wave.zarr",
        batch_size=2,
        loader=_load_npy,
        progress=False,
    )
    ink = _ink(store.read(2))
    row_ink = ink.sum(axis=1)
    assert abs((row_ink * np.arange(224)).sum() / row_ink.sum() - 112) < 1.0


def test_store_names_the_constant_fnirs_channel(tmp_path):
    channels = [np.cumsum(np.random.default_rng(16 + n).normal(size=(4, 600)), axis=1) for n in range(3)]
    channels[1][2] = -0.4
    table = _npy_table(tmp_path, channels)
    with pytest.raises(InputError, match=re.escape(f"sample p0-s1 ({table['biosignals'][1]}, channel 2)")):
        render_signal_store(
            table=table,
            signal="fnirs",
            representation="spec_angle",
            out=tmp_path / "f.zarr",
            loader=_load_npy,
            progress=False,
        )


def test_interrupted_store_resumes_with_the_remaining_samples(tmp_path):
    table = _npy_table(tmp_path, list(_signals(6, seed=17)))
    paths = table["biosignals"].tolist()
    failing = paths[3]

    def crashing_loader(path: str, signal: str) -> tuple[np.ndarray, float]:
        if path == failing:
            raise RuntimeError("the file server went away")
        return _load_npy(path, signal)

    out = tmp_path / "resumed.zarr"
    options = {"table": table, "signal": "ecg", "representation": "spec_phase", "batch_size": 2, "progress": False}
    with pytest.raises(RuntimeError, match="went away"):
        render_signal_store(out=out, loader=crashing_loader, **options)
    # Batches of two: the first was written, and so was sample 2, loaded before sample 3 failed.
    assert SampleStore.open(out).done_mask().tolist() == [True, True, True, False, False, False]
    assert not SampleStore.open(out).is_complete()
    before = _chunk_mtimes(out)
    assert len(before) == 3

    loaded = []

    def recording_loader(path: str, signal: str) -> tuple[np.ndarray, float]:
        loaded.append(path)
        return _load_npy(path, signal)

    resumed = render_signal_store(out=out, loader=recording_loader, **options)
    assert sorted(loaded) == sorted(paths[3:])  # only the samples not done
    after = _chunk_mtimes(out)
    assert len(after) == 6 and all(after[p] == before[p] for p in before)  # finished chunks untouched

    straight = render_signal_store(out=tmp_path / "straight.zarr", loader=_load_npy, **options)
    assert resumed.is_complete() and np.array_equal(resumed.read(), straight.read())
    assert SampleStore.open_complete(out).samples == table["sample"].tolist()


def test_cli_reads_fnirs_with_the_given_ai4pain_layout(tmp_path, capsys):
    from tree_helpers import write_fnirs_csv

    from painformer.cli import main
    from painformer.data.tables import write_sample_table

    channels = ("S1_D1", "S1_D2", "S2_D2", "S2_D3")
    path = write_fnirs_csv(tmp_path / "1" / "1_No_1.csv", channels=channels, seconds=4.0)
    row = {"dataset": "ai4pain", "sample": "1_No_1", "subject": "1", "subject_id": "1", "class_id": 0}
    row |= {"class_name": "No", "video": "", "biosignals": str(path), "split": "train"}
    table = write_sample_table(pd.DataFrame([row]), tmp_path / "samples.tsv")
    argv = ["render-biosignals", "--samples", str(table), "--signal", "fnirs", "--representation", "waveform"]
    argv += ["--no-progress", "--out", str(tmp_path / "fnirs.zarr")]
    # The default layout wants 24 channels; this file has the 4 of the layout given, one excluded.
    assert main(argv) != 0
    layout = '{"n_channels": 4, "excluded_channels": ["S2_D3"]}'
    assert main([*argv, "--ai4pain-layout", layout]) == 0
    assert SampleStore.open_complete(tmp_path / "fnirs.zarr").read().shape == (1, 3, 224, 224, 3)
    capsys.readouterr()
    assert main([*argv[:4], "gsr", *argv[5:], "--ai4pain-layout", layout]) != 0
    assert "--ai4pain-layout applies to --signal fnirs only" in capsys.readouterr().err
