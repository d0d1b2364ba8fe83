"""Biosignal images: shapes, determinism, agreement with matplotlib and scipy, the CLI store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import signal as sps

from painformer.errors import InputError
from painformer.render import (
    REPRESENTATIONS,
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


def test_waveform_is_antialiased_and_flat_signal_is_a_centred_line():
    image = render_batch(np.zeros((1, LENGTH)), FS, "waveform")[0]
    ink = _ink(image)
    row_ink = ink.sum(axis=1)
    centre = (row_ink * np.arange(224)).sum() / row_ink.sum()
    assert abs(centre - 112) < 1.0
    assert 1.5 < row_ink.sum() / ink.max() / 224 < 2.5  # 2 px thick
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
    images = render_batch(tone[None], FS, "spec_angle", params=params), render_batch(
        tone[None], FS, "spec_phase", params=params
    )
    assert not np.array_equal(*images)


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
                "dataset": "fixture", "sample": name, "subject": subject, "subject_id": number // 3,
                "class_id": {"BL1": 0, "PA4": 4}[class_name], "class_name": class_name,
                "video": str(root / "video" / f"{name}.mp4"), "biosignals": str(path), "split": "",
            }
        )
    table = root / "samples.tsv"
    pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
    return table


@pytest.fixture
def biovid_fixture(tmp_path):
    data = pytest.importorskip("painformer.data", reason="the sample table reader lives in painformer.data")
    if not all(hasattr(data, name) for name in ("read_sample_table", "load_signal")):
        pytest.skip("painformer.data has no read_sample_table/load_signal")
    names = [f"{subject}-{cls}-{n:03d}" for subject in ("071309_w_21", "071614_m_20") for cls, n in
             (("BL1", 1), ("BL1", 2), ("PA4", 1))]
    paths = []
    for seed, name in enumerate(names):
        path = tmp_path / "biosignals_filtered" / name.split("-")[0] / f"{name}_bio.csv"
        _write_biovid_csv(path, seed)
        paths.append(path)
    return tmp_path, _write_table(tmp_path, names, paths), paths


def _chunk_mtimes(store_path: Path) -> dict[str, int]:
    chunks = store_path / "images"
    return {str(p): p.stat().st_mtime_ns for p in chunks.rglob("*") if p.is_file() and "zarr.json" not in p.name}


def test_cli_writes_complete_store_and_rerun_recomputes_nothing(biovid_fixture):
    from painformer.cli import main
    from painformer.data import load_signal

    root, table, paths = biovid_fixture
    out, marker = root / "images" / "ecg.zarr", root / "images" / "ecg.complete"
    argv = ["render-biosignals", "--samples", str(table), "--signal", "ecg", "--representation", "spec_psd",
            "--out", str(out), "--complete-marker", str(marker), "--batch-size", "4"]
    assert main(argv) == 0
    assert marker.is_file()
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
    assert main(argv) == 0 and marker.is_file()
    after = _chunk_mtimes(out)
    changed = [p for p in after if after[p] != before.get(p)]
    assert len(changed) == 1
    assert np.array_equal(SampleStore.open_complete(out).read(4), expected)


def test_cli_names_the_file_with_nan(biovid_fixture, capsys):
    from painformer.cli import main

    root, table, paths = biovid_fixture
    _write_biovid_csv(paths[3], seed=3, nan_at=100)
    out, marker = root / "gsr.zarr", root / "gsr.complete"
    code = main(["render-biosignals", "--samples", str(table), "--signal", "ecg", "--representation", "waveform",
                 "--out", str(out), "--complete-marker", str(marker)])
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
        {"sample": ["a", "b", "c"], "subject": ["p1", "p1", "p2"], "class_name": ["No", "Low", "High"],
         "biosignals": paths}
    )

    def load_npy(path: str, signal: str) -> tuple[np.ndarray, float]:
        return np.load(path), 50.0

    store = render_signal_store(table=table, signal="fnirs", representation="waveform", out=tmp_path / "f.zarr",
                                batch_size=2, loader=load_npy)
    assert store.is_complete() and store.read().shape == (3, 5, 224, 224, 3)
    assert np.array_equal(store.read(1), render_sample(np.load(paths[1]), 50.0, "waveform"))

    np.save(paths[2], np.zeros((4, 500)))
    with pytest.raises(InputError, match=os.path.basename(paths[2])):
        render_signal_store(table=table, signal="fnirs", representation="waveform", out=tmp_path / "g.zarr",
                            loader=load_npy)
