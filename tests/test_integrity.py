"""Stores prove they are whole: faults injected into an image store and an embedding store.

A tiny demo-like dataset (four BioVid-style biosignal CSVs) is rendered (GSR waveform images)
and embedded (untrained backbone) through the command line. Each fault (a deleted chunk, a
corrupted chunk, a corrupted done mask, a changed input file) is injected into a copy;
``painformer inspect --verify`` must name it, readers must refuse it in one line, and a plain
rerun must recompute exactly the damaged sample and end equal to a clean run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painformer.cli import main
from painformer.stores import SampleStore

FS = 512
LENGTH = 5 * FS
NAMES = ["071309_w_21-BL1-001", "071309_w_21-PA4-001", "071614_m_20-BL1-001", "071614_m_20-PA4-001"]
DAMAGED = 2  # the sample every fault hits


def _write_csv(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / FS
    frame = pd.DataFrame(
        {
            "time": np.round(t * 1e6).astype(np.int64),
            "gsr": 2.0 + 0.3 * np.cumsum(rng.normal(size=LENGTH)) / LENGTH**0.5,
            "ecg": np.sin(2 * np.pi * 1.2 * t) ** 21 + 0.02 * rng.normal(size=LENGTH),
            "emg_trapezius": rng.normal(size=LENGTH),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False)


def _make_dataset(root: Path, seeds: list[int]) -> None:
    rows = []
    for number, (name, seed) in enumerate(zip(NAMES, seeds)):
        csv = root / "biosignals" / f"{name}_bio.csv"
        _write_csv(csv, seed)
        subject, class_name, _ = name.split("-")
        rows.append(
            {
                "dataset": "fixture",
                "sample": name,
                "subject": subject,
                "subject_id": number // 2,
                "class_id": {"BL1": 0, "PA4": 4}[class_name],
                "class_name": class_name,
                "video": "",
                "biosignals": str(csv),
                "split": "",
            }
        )
    pd.DataFrame(rows).to_csv(root / "samples.tsv", sep="\t", index=False)


def _render(root: Path) -> int:
    return main(
        ["render-biosignals", "--samples", str(root / "samples.tsv"), "--signal", "gsr", "--representation"]
        + ["waveform", "--out", str(root / "images.zarr"), "--complete-marker", str(root / "images.complete")]
        + ["--no-progress", "--batch-size", "2"]
    )


def _embed(root: Path, out: str = "embeddings.zarr") -> int:
    # One image per batch: on the CPU an embedding's last bits depend on what shares its batch, and a
    # sample recomputed alone must equal the clean run exactly.
    return main(
        ["embed", "--samples", str(root / "samples.tsv"), "--modality", "gsr", "--representation", "waveform"]
        + ["--images", str(root / "images.zarr"), "--checkpoint", "none", "--device", "cpu", "--threads", "1"]
        + ["--batch-size", "1", "--out", str(root / out), "--complete-marker", str(root / f"{out}.complete")]
        + ["--no-progress"]
    )


def _build(root: Path, seeds: list[int]) -> None:
    _make_dataset(root, seeds)
    assert _render(root) == 0
    assert _embed(root) == 0


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean run, and a clean run on the same data with sample DAMAGED's CSV replaced."""
    root = tmp_path_factory.mktemp("clean")
    _build(root, [0, 1, 2, 3])
    changed = tmp_path_factory.mktemp("changed")
    _build(changed, [0, 1, 102, 3])
    return root, changed


def _fresh(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    _build(root, [0, 1, 2, 3])
    return root


def _arrays(root: Path) -> dict[str, np.ndarray]:
    return {name: SampleStore.open_complete(root / f"{name}.zarr").read() for name in ("images", "embeddings")}


def _chunks(store: Path) -> dict[str, int]:
    array = SampleStore.open(store, mode="r").array_name
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in (store / array / "c").rglob("*") if p.is_file()}


def _chunk_file(store: Path, index: int) -> Path:
    array = SampleStore.open(store, mode="r")
    key = array.group[array.array_name].metadata.encode_chunk_key((index,) + (0,) * (array.array.ndim - 1))
    return store / array.array_name / key


def _verify(store: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["inspect", str(store), "--verify"])
    return code, capsys.readouterr().out


def _one_line_error(capsys, code: int, *names: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert all(name in err[0] for name in names), err[0]


def _rerun_repairs_exactly(root: Path, store: str, capsys, expected: dict[str, np.ndarray], *, redone: set[int]):
    """Rerun the stage writing ``store``; only the chunks of ``redone`` may change; the result equals ``expected``."""
    before = _chunks(root / f"{store}.zarr")
    assert (_render(root) if store == "images" else _embed(root)) == 0
    after = _chunks(root / f"{store}.zarr")
    changed = {key for key in after if before.get(key) != after[key]}
    assert changed == {str(_chunk_file(root / f"{store}.zarr", i).relative_to(root / f"{store}.zarr")) for i in redone}
    code, out = _verify(root / f"{store}.zarr", capsys)
    assert code == 0 and "verified   OK" in out, out
    for name, array in _arrays(root).items():
        np.testing.assert_array_equal(array, expected[name], err_msg=name)


@pytest.mark.parametrize("store", ["images", "embeddings"])
@pytest.mark.parametrize("fault", ["deleted", "corrupt"])
def test_missing_or_corrupt_chunk_is_named_refused_and_repaired(tmp_path, clean, capsys, store, fault):
    root = _fresh(tmp_path)
    chunk = _chunk_file(root / f"{store}.zarr", DAMAGED)
    if fault == "deleted":
        chunk.unlink()
    else:
        chunk.write_bytes(np.random.default_rng(5).bytes(chunk.stat().st_size))

    code, out = _verify(root / f"{store}.zarr", capsys)
    assert code == 1 and f"sample {NAMES[DAMAGED]}: " in out, out
    assert ("missing chunk" if fault == "deleted" else "corrupt chunk") in out
    assert out.count("FAULT") == 1

    # Readers refuse the sample in one line naming the store and the sample, never read zeros.
    if store == "images":
        code = _embed(root, out="other.zarr")
    else:
        code = main(["export", str(root / "embeddings.zarr"), str(root / "out.h5")])
    _one_line_error(capsys, code, f"{store}.zarr", NAMES[DAMAGED])

    _rerun_repairs_exactly(root, store, capsys, _arrays(clean[0]), redone={DAMAGED})


@pytest.mark.parametrize("store", ["images", "embeddings"])
def test_corrupt_done_mask_is_rebuilt_from_the_checksums(tmp_path, clean, capsys, store):
    root = _fresh(tmp_path)
    done = root / f"{store}.zarr" / "done" / "c" / "0"
    done.write_bytes(b"\xff" * 7)
    code, out = _verify(root / f"{store}.zarr", capsys)
    assert code == 1 and "done mask: unreadable" in out, out
    # Nothing is recomputed: the checksums say every sample is written and whole.
    _rerun_repairs_exactly(root, store, capsys, _arrays(clean[0]), redone=set())
    assert SampleStore.open(root / f"{store}.zarr", mode="r").done_mask().all()


def test_changed_input_file_redoes_exactly_its_sample_downstream_too(tmp_path, clean, capsys):
    root = _fresh(tmp_path)
    expected = _arrays(clean[1])
    csv = root / "biosignals" / f"{NAMES[DAMAGED]}_bio.csv"
    _write_csv(csv, 102)
    code, out = _verify(root / "images.zarr", capsys)
    assert code == 1 and f"sample {NAMES[DAMAGED]}: inputs changed" in out and out.count("FAULT") == 1, out

    before = _chunks(root / "images.zarr")
    assert _render(root) == 0
    after = _chunks(root / "images.zarr")
    assert {key for key in after if before[key] != after[key]} == {
        str(_chunk_file(root / "images.zarr", DAMAGED).relative_to(root / "images.zarr"))
    }
    # The embedding of that sample was computed from the old image: named, then redone alone.
    code, out = _verify(root / "embeddings.zarr", capsys)
    assert code == 1 and f"sample {NAMES[DAMAGED]}: inputs changed" in out and out.count("FAULT") == 1, out
    _rerun_repairs_exactly(root, "embeddings", capsys, expected, redone={DAMAGED})


def test_decoded_frames_of_another_shape_are_refused_by_name(tmp_path):
    from painformer.errors import InputError
    from painformer.stores import read_sample_video

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0")
    small = lambda path, **_: np.zeros((2, 112, 112, 3), dtype=np.uint8)  # noqa: E731
    with pytest.raises(
        InputError, match=r"clip.mp4: decoded frames \(2, 112, 112, 3\) uint8, expected \(2, 224, 224, 3\)"
    ):
        read_sample_video(str(video), sample="s", num_frames=2, crop="center", fps=None, decoder="pyav", reader=small)
    with pytest.raises(InputError, match="video of sample gone is missing"):
        read_sample_video(
            str(tmp_path / "gone.mp4"), sample="gone", num_frames=2, crop="center", fps=None, decoder="pyav"
        )


def test_copy_without_times_recomputes_nothing(tmp_path, clean, capsys):
    """New modification times with the same content: the content hash decides, nothing is redone."""
    root = _fresh(tmp_path)
    for csv in (root / "biosignals").iterdir():
        os.utime(csv, ns=(1, 1))
    _rerun_repairs_exactly(root, "images", capsys, _arrays(clean[0]), redone=set())


@pytest.mark.slow
def test_workflow_redoes_the_sample_of_a_changed_csv_and_what_depends_on_it(tmp_path):
    """A real Snakemake run; one biosignal CSV changes; the next run redoes that sample's image and
    embedding (and the training that reads them), and nothing else."""
    from workflow_helpers import dry_run_counts, snakemake, tiny_demo_config, write_yaml

    config = tiny_demo_config(tmp_path)
    config["experiments"] = {"gsr_waveform": config["experiments"]["gsr_waveform"]}
    config["report"] = {}
    configfile = write_yaml(config, tmp_path / "config.yaml")
    snakemake(tmp_path, "results/demo/summary.tsv", "--cores", "2", "--configfile", str(configfile))
    results = tmp_path / "results" / "demo"
    table = pd.read_csv(results / "samples.tsv", sep="\t", keep_default_na=False)
    changed = Path(table["biosignals"][1])
    if not changed.is_absolute():
        changed = tmp_path / changed
    data = pd.read_csv(changed, sep="\t")
    data["gsr"] = data["gsr"][::-1].to_numpy()  # same size, other content
    data.to_csv(changed, sep="\t", index=False)

    counts = dry_run_counts(tmp_path, configfile, "results/demo/summary.tsv")
    assert counts.get("biosignal_images") == 1 and counts.get("embed") == 1, counts
    assert "index" not in counts and "demo_data" not in counts, counts
    stores = {name: results / name / "gsr" / "waveform.zarr" for name in ("images", "embeddings")}
    before = {name: _chunks(store) for name, store in stores.items()}
    snakemake(tmp_path, "results/demo/summary.tsv", "--cores", "2", "--configfile", str(configfile))
    for name, store in stores.items():
        after = _chunks(store)
        redone = {key for key in after if before[name][key] != after[key]}
        assert redone == {str(_chunk_file(store, 1).relative_to(store))}, (name, redone)
        assert SampleStore.open_complete(store).read().shape[0] == len(table)
    again = snakemake(tmp_path, "results/demo/summary.tsv", "-n", "--cores", "2", "--configfile", str(configfile))
    assert "Nothing to be done" in again.stdout + again.stderr
