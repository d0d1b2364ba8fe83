"""Embedding extraction: round trip, resume after SIGKILL, provenance checks, export."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from painformer.embed import EmbedSettings, aggregate, extract_embeddings, fit_items
from painformer.embed.sources import StoreSource
from painformer.errors import InputError, StoreError
from painformer.models import load_painformer, preprocess
from painformer.stores import SampleMeta, SampleStore

COLUMNS = ["dataset", "sample", "subject", "subject_id", "class_id", "class_name", "video", "biosignals", "split"]


def make_table(n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        subject = f"07130{i % 3}_w_2{i % 3}"
        cls = ("BL1", "PA4")[i % 2]
        rows.append(["demo", f"{subject}-{cls}-{i:03d}", subject, i % 3, 4 * (i % 2), cls, "", "", ""])
    return pd.DataFrame(rows, columns=COLUMNS)


def make_image_store(
    path: Path,
    table: pd.DataFrame,
    items: int | None,
    seed: int = 0,
    complete: bool = True,
    made_for: tuple[str, str] = ("ecg", "spec_psd"),
) -> SampleStore:
    """An upstream image store with smooth random images (what a renderer would write for ``made_for``)."""
    rng = np.random.default_rng(seed)
    shape = (224, 224, 3) if items is None else (items, 224, 224, 3)
    store = SampleStore.create_or_resume(
        path,
        kind="images",
        array_name="images",
        meta=SampleMeta.from_table(table),
        item_shape=shape,
        dtype="uint8",
        fingerprint={"seed": seed},
        attrs={"signal": made_for[0], "representation": made_for[1]},
    )
    for i in range(len(table) - (0 if complete else 1)):
        coarse = rng.integers(0, 256, size=(*shape[:-3], 28, 28, 3), dtype=np.uint8)
        store.write(i, coarse.repeat(8, axis=-3).repeat(8, axis=-2))
    return store


@pytest.fixture(scope="module")
def model():
    return load_painformer(None)


def test_round_trip_equals_model_embed_and_is_deterministic(tmp_path, model):
    table = make_table(5)
    upstream = make_image_store(tmp_path / "images.zarr", table, items=3)
    source = StoreSource(path=tmp_path / "images.zarr", table=table)
    settings = EmbedSettings(batch_size=4, device="cpu", loader_threads=2, lookahead=2)  # batches straddle samples
    store = extract_embeddings(
        source=source,
        out=tmp_path / "a.zarr",
        model=model,
        modality="gsr",
        representation="waveform",
        settings=settings,
        progress=False,
    )
    assert store.is_complete()
    stored = store.read()
    assert stored.shape == (5, 3, 160) and stored.dtype == np.float32
    with torch.inference_mode():
        for i in range(5):
            expected = model.embed(preprocess(upstream.read(i))).numpy()
            np.testing.assert_allclose(stored[i], expected, rtol=1e-4, atol=1e-5)
    again = extract_embeddings(
        source=source,
        out=tmp_path / "b.zarr",
        model=model,
        modality="gsr",
        representation="waveform",
        settings=settings,
        progress=False,
    )
    assert np.array_equal(again.read(), stored)  # bit-identical on CPU float32
    attrs = store.attrs
    assert attrs["checkpoint_sha256"] == "untrained" and attrs["untrained_backbone"] is True
    assert attrs["modality"] == "gsr" and attrs["preprocess"]["size"] == 224
    assert attrs["samples"] == list(table["sample"])


def test_hash_mismatch_is_refused_and_force_starts_over(tmp_path, model):
    table = make_table(2)
    make_image_store(tmp_path / "images.zarr", table, items=None)
    source = StoreSource(path=tmp_path / "images.zarr", table=table)
    settings = EmbedSettings(batch_size=2, device="cpu")
    extract_embeddings(
        source=source,
        out=tmp_path / "e.zarr",
        model=model,
        modality="ecg",
        representation="spec_psd",
        settings=settings,
        progress=False,
    )
    checkpoint = tmp_path / "other.pth"
    other = load_painformer(None)
    with torch.no_grad():
        other.norm4.bias.add_(1.0)
    torch.save({"model_state_dict": other.state_dict()}, checkpoint)
    trained = load_painformer(checkpoint)
    with pytest.raises(StoreError, match="checkpoint_sha256") as error:
        extract_embeddings(
            source=source,
            out=tmp_path / "e.zarr",
            model=trained,
            modality="ecg",
            representation="spec_psd",
            settings=settings,
            progress=False,
        )
    assert "e.zarr" in str(error.value) and "--force" in str(error.value)
    redone = extract_embeddings(
        source=source,
        out=tmp_path / "e.zarr",
        model=trained,
        modality="ecg",
        representation="spec_psd",
        settings=settings,
        force=True,
        progress=False,
    )
    assert redone.attrs["checkpoint_sha256"] == trained.checkpoint_sha256 and redone.is_complete()


def test_cli_refuses_another_checkpoint_and_force_starts_over(tmp_path, model, capsys):
    from painformer.cli import main
    from painformer.data import read_sample_table, write_sample_table
    from painformer.utils import sha256_file

    samples = tmp_path / "samples.tsv"
    write_sample_table(make_table(3), samples)
    table = read_sample_table(samples)
    upstream = make_image_store(tmp_path / "images.zarr", table, items=None)
    out, marker = tmp_path / "ecg.zarr", tmp_path / "ecg.complete"
    checkpoint = tmp_path / "other.pth"
    other = load_painformer(None)
    with torch.no_grad():
        other.norm4.bias.add_(1.0)
    torch.save({"model_state_dict": other.state_dict()}, checkpoint)

    def embed(*extra: str) -> int:
        return main(
            [
                "embed",
                "--samples",
                str(samples),
                "--modality",
                "ecg",
                "--representation",
                "spec_psd",
                "--images",
                str(tmp_path / "images.zarr"),
                "--out",
                str(out),
                "--complete-marker",
                str(marker),
                "--batch-size",
                "2",
                "--device",
                "cpu",
                "--no-progress",
                *extra,
            ]
        )

    assert embed("--precision", "float32", "--loader-threads", "1") == 0
    assert SampleStore.open_complete(out).attrs["fingerprint"]["precision"] == "float32"
    untrained = SampleStore.open_complete(out).read()
    marker.unlink()
    capsys.readouterr()
    assert embed("--checkpoint", str(checkpoint)) == 1
    error = capsys.readouterr().err
    assert str(out) in error and "checkpoint_sha256" in error and "--force" in error
    kept = SampleStore.open_complete(out)
    assert kept.attrs["checkpoint_sha256"] == "untrained" and np.array_equal(kept.read(), untrained)
    assert not marker.exists()

    assert embed("--checkpoint", str(checkpoint), "--force") == 0
    redone = SampleStore.open_complete(out)
    assert redone.attrs["checkpoint_sha256"] == sha256_file(checkpoint) and marker.exists()
    trained = load_painformer(checkpoint)
    with torch.inference_mode():
        expected = np.stack([trained.embed(preprocess(upstream.read(i)[None])).numpy() for i in range(len(table))])
    np.testing.assert_allclose(redone.read(), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(redone.read(), untrained, atol=1e-3)  # recomputed, not kept


def test_upstream_store_of_another_modality_or_representation_is_refused(tmp_path, capsys):
    from painformer.cli import main
    from painformer.data import write_sample_table

    samples = tmp_path / "samples.tsv"
    write_sample_table(make_table(2), samples)
    make_image_store(tmp_path / "ecg_psd.zarr", make_table(2), items=None, made_for=("ecg", "spec_psd"))
    for modality, representation in (("gsr", "waveform"), ("ecg", "waveform"), ("thermal", "frames")):
        capsys.readouterr()
        code = main(
            ["embed", "--samples", str(samples), "--modality", modality, "--representation", representation]
            + ["--images", str(tmp_path / "ecg_psd.zarr"), "--out", str(tmp_path / "out.zarr"), "--device", "cpu"]
        )
        error = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(error) == 1, error
        assert "ecg_psd.zarr: holds ecg/spec_psd images, not " + f"{modality}/{representation}" in error[0]
        assert not (tmp_path / "out.zarr").exists()


class ShortSource:
    """An image source whose second sample has one image fewer than the others."""

    def __init__(self, table: pd.DataFrame):
        self.meta = SampleMeta.from_table(table)
        self.num_items = 2

    def load(self, index: int) -> np.ndarray:
        return np.full((1 if index == 1 else 2, 224, 224, 3), 128, dtype=np.uint8)

    def fingerprint(self) -> dict:
        return {"source": "test", "short_sample": 1}


def test_sample_with_the_wrong_image_count_is_named(tmp_path, model):
    table = make_table(3)
    with pytest.raises(InputError) as error:
        extract_embeddings(
            source=ShortSource(table),
            out=tmp_path / "s.zarr",
            model=model,
            modality="fnirs",
            representation="waveform",
            settings=EmbedSettings(batch_size=2, device="cpu"),
            progress=False,
        )
    message = str(error.value)
    assert table["sample"][1] in message and "has 1 images, expected 2" in message and "fnirs/waveform" in message
    assert SampleStore.open(tmp_path / "s.zarr", mode="r").pending() != []  # never declared complete


def test_incomplete_or_mismatched_upstream_is_reported_by_name(tmp_path):
    table = make_table(3)
    make_image_store(tmp_path / "partial.zarr", table, items=None, complete=False)
    with pytest.raises(StoreError, match=r"incomplete store, 1 of 3.*" + table["sample"][2]):
        StoreSource(path=tmp_path / "partial.zarr", table=table)
    make_image_store(tmp_path / "small.zarr", table.iloc[:2], items=None)
    with pytest.raises(StoreError, match=r"missing upstream.*" + table["sample"][2]):
        StoreSource(path=tmp_path / "small.zarr", table=table)
    with pytest.raises(StoreError, match="does not exist"):
        StoreSource(path=tmp_path / "absent.zarr", table=table)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    from painformer.data import read_sample_table, write_sample_table

    samples = tmp_path / "samples.tsv"
    write_sample_table(make_table(14), samples)
    table = read_sample_table(samples)  # in the table's canonical (subject, sample) order
    make_image_store(tmp_path / "images.zarr", table, items=None, made_for=("gsr", "waveform"))
    out = tmp_path / "gsr.zarr"
    marker = tmp_path / "gsr.complete"
    command = [
        sys.executable,
        "-m",
        "painformer.cli",
        "embed",
        "--samples",
        str(samples),
        "--modality",
        "gsr",
        "--representation",
        "waveform",
        "--images",
        str(tmp_path / "images.zarr"),
        "--out",
        str(out),
        "--complete-marker",
        str(marker),
        "--batch-size",
        "1",
        "--device",
        "cpu",
        "--no-progress",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    done_before = 0
    while time.time() < deadline and process.poll() is None:
        if out.exists():
            try:
                done_before = int(SampleStore.open(out, mode="r").done_mask().sum())
            except StoreError:
                done_before = 0
            if done_before >= 3:
                break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = SampleStore.open(out, mode="r")
    mask = killed.done_mask()
    assert 3 <= mask.sum() < len(table)
    assert not marker.exists()
    finished = {i: killed.read(i) for i in np.flatnonzero(mask)}

    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{len(table) - mask.sum()} of {len(table)} samples to embed" in result.stderr
    resumed = SampleStore.open_complete(out)
    for i, vector in finished.items():
        assert np.array_equal(resumed.read(i), vector)  # nothing finished was recomputed
    assert marker.exists()

    before_out = command[: command.index("--out")]
    clean = subprocess.run(
        [*before_out, "--out", str(tmp_path / "clean.zarr"), "--batch-size", "1", "--device", "cpu", "--no-progress"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0, clean.stderr
    assert np.array_equal(SampleStore.open_complete(tmp_path / "clean.zarr").read(), resumed.read())

    h5_path = tmp_path / "gsr.h5"
    exported = subprocess.run(
        [sys.executable, "-m", "painformer.cli", "export", "--format", "h5", str(out), str(h5_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    with h5py.File(h5_path) as handle:
        assert np.array_equal(handle["embeddings"][:], resumed.read())
        assert [s.decode() for s in handle["sample"][:]] == list(table["sample"])
        assert handle["done"][:].all()
        assert handle.attrs["checkpoint_sha256"] == "untrained"
    inspected = subprocess.run(
        [sys.executable, "-m", "painformer.cli", "inspect", str(out)], capture_output=True, text=True, check=False
    )
    assert inspected.returncode == 0 and "14/14 samples done" in inspected.stdout


def test_aggregation_shapes_and_frame_count_rules():
    emb = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    assert aggregate(emb, "concat").shape == (2, 12)
    assert np.array_equal(aggregate(emb, "concat")[0], emb[0].ravel())
    assert np.array_equal(aggregate(emb, "sum"), emb.sum(1))
    assert np.allclose(aggregate(emb, "mean"), emb.mean(1))
    padded = fit_items(emb, 6)
    assert (
        padded.shape == (2, 6, 3)
        and np.array_equal(padded[:, 4], emb[:, 3])
        and np.array_equal(padded[:, 5], emb[:, 3])
    )
    assert np.array_equal(fit_items(emb, 3), emb[:, :3])
    assert aggregate(emb, "concat", num_items=5).shape == (2, 15)
    with pytest.raises(ValueError, match="more than 2 apart"):
        fit_items(emb, 7)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(emb, "max")


def test_stale_store_is_replaced_only_when_asked(tmp_path):
    """A workflow rerun replaces a store made differently; the same making resumes it."""
    table = pd.DataFrame({"sample": ["a", "b"], "subject": ["s1", "s2"], "class_name": ["BL1", "PA4"]})
    meta = SampleMeta.from_table(table)
    common = {"kind": "images", "array_name": "images", "meta": meta, "item_shape": (2,), "dtype": "float32"}
    store = SampleStore.create_or_resume(tmp_path / "x.zarr", fingerprint={"v": 1}, **common)
    store.write(0, np.ones(2, dtype="float32"))

    resumed = SampleStore.create_or_resume(tmp_path / "x.zarr", fingerprint={"v": 1}, force="stale", **common)
    assert resumed.pending() == [1]
    with pytest.raises(StoreError, match="made differently"):
        SampleStore.create_or_resume(tmp_path / "x.zarr", fingerprint={"v": 2}, **common)
    replaced = SampleStore.create_or_resume(tmp_path / "x.zarr", fingerprint={"v": 2}, force="stale", **common)
    assert replaced.pending() == [0, 1] and replaced.attrs["fingerprint"] == {"v": 2}


def test_write_many_stores_unordered_runs_and_flags_only_written_samples(tmp_path):
    table = make_table(9)
    store = SampleStore.create_or_resume(
        tmp_path / "e.zarr",
        kind="embeddings",
        array_name="embeddings",
        meta=SampleMeta.from_table(table),
        item_shape=(2, 160),
        dtype="float32",
        fingerprint={"test": 1},
    )
    values = np.random.default_rng(0).normal(size=(5, 2, 160)).astype(np.float32)
    indices = [7, 2, 3, 8, 5]  # runs 2-3, 5, 7-8, given out of order
    store.write_many(indices, values)
    reopened = SampleStore.open(tmp_path / "e.zarr", mode="r")
    for index, value in zip(indices, values):
        assert np.array_equal(reopened.read(index), value)
    assert reopened.pending() == [0, 1, 4, 6]
    with pytest.raises(StoreError, match=r"samples \[0, 1\] have shape"):
        store.write_many([0, 1], values[:3])
    assert SampleStore.open(tmp_path / "e.zarr", mode="r").pending() == [0, 1, 4, 6]


def test_bfloat16_on_the_cpu_stays_close_to_float32_and_is_part_of_the_fingerprint(tmp_path, model):
    from painformer.embed.extract import resolve_precision

    assert resolve_precision("auto", "cpu") == "float32"
    table = make_table(4)
    make_image_store(tmp_path / "images.zarr", table, items=2)
    source = StoreSource(path=tmp_path / "images.zarr", table=table)

    def embed(out: str, precision: str, force: bool = False) -> SampleStore:
        return extract_embeddings(
            source=source,
            out=tmp_path / out,
            model=model,
            modality="gsr",
            representation="waveform",
            settings=EmbedSettings(batch_size=4, device="cpu", precision=precision),
            force=force,
            progress=False,
        )

    full = embed("float32.zarr", "auto")
    assert full.attrs["fingerprint"]["precision"] == "float32"
    half = embed("bfloat16.zarr", "bfloat16")
    assert half.attrs["fingerprint"]["precision"] == "bfloat16"
    a = torch.from_numpy(full.read()).reshape(-1, 160).double()
    b = torch.from_numpy(half.read()).reshape(-1, 160).double()
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    print(f"bfloat16 vs float32 on {len(a)} images: min cosine {cosine.min():.6f}")
    assert cosine.min() >= 0.999
    assert not torch.equal(a, b)  # bfloat16 did run

    with pytest.raises(StoreError, match="precision"):
        embed("float32.zarr", "bfloat16")
    redone = embed("float32.zarr", "bfloat16", force=True)
    assert redone.attrs["fingerprint"]["precision"] == "bfloat16" and np.array_equal(redone.read(), half.read())
    with pytest.raises(InputError, match="float16"):
        EmbedSettings(precision="float16")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the path without CUDA")
def test_gpu_check_without_cuda_skips_the_tests_and_says_not_measured(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        ["bash", str(repo / "benchmarks" / "gpu_check.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "| GPU " in table and "none (CPU only)" in table
    assert re.search(r"\| pytest -m cuda +\| \d+ skipped \|", table), table
    assert "| CPU vs GPU tolerance " in table and "| embed bf16 batch 128, whole pipeline " in table
    assert table.count("not measured") == 8, table  # tolerance, 6 embed rows, train
    assert not (tmp_path / "embed.log").exists()
