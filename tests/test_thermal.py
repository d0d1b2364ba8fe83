"""Synthetic thermal: cGAN training (determinism, resume), evaluation, and application to real videos."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from painformer.errors import CheckpointError, InputError
from painformer.stores import SampleStore
from painformer.thermal import (
    ApplySettings,
    TrainSettings,
    UNetConfig,
    apply_generator,
    evaluate_generator,
    find_pairs,
    holdout_names,
    load_generator,
    train_generator,
    translate_frames,
)
from painformer.thermal.discriminator import PatchConfig, PatchDiscriminator
from painformer.thermal.drawn_faces import draw_face_pair, make_face_pairs
from painformer.thermal.generator import UNetGenerator
from painformer.thermal.quality import psnr_per_image, ssim_per_image
from painformer.thermal.train import side_paths

TINY = {
    "image_size": 32,
    "batch_size": 4,
    "seed": 3,
    "holdout": 0.25,
    "generator": UNetConfig(depth=3, base_width=8, max_width=32),
    "discriminator": PatchConfig(base_width=8, num_layers=2),
}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_face_pairs(tmp_path_factory.mktemp("pairs"), count=12, size=48)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pairs) -> Path:
    out = tmp_path_factory.mktemp("trained") / "gen.pt"
    train_generator(pairs_dir=pairs, out=out, settings=TrainSettings(epochs=2, **TINY), device="cpu")
    return out


def test_architectures_take_any_multiple_of_two_to_the_depth():
    for depth, size in ((1, 16), (3, 40), (5, 32)):
        generator = UNetGenerator(depth=depth, base_width=4, max_width=16)
        y = generator(torch.rand(2, 3, size, size) * 2 - 1)
        assert y.shape == (2, 3, size, size) and y.abs().max() <= 1.0
    with pytest.raises(ValueError, match="multiple of 8"):
        UNetGenerator(depth=3)(torch.zeros(1, 3, 36, 36))
    assert PatchDiscriminator(num_layers=3).receptive_field() == 70
    assert PatchDiscriminator(base_width=8, num_layers=3)(
        torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)
    ).shape == (1, 1, 6, 6)


def test_ssim_and_psnr_match_known_values():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim_per_image(x, x), torch.ones(2))
    assert ssim_per_image(x, torch.rand(2, 3, 32, 32)).abs().max() < 0.1  # independent noise
    shifted = (x + 0.1).clamp(0, 1)
    mse = (x - shifted).pow(2).flatten(1).mean(1)
    assert torch.allclose(psnr_per_image(x, shifted), -10 * torch.log10(mse))
    # Constant images: SSIM reduces to the luminance term (2ab + c1) / (a^2 + b^2 + c1).
    a, b = torch.full((1, 1, 16, 16), 0.3), torch.full((1, 1, 16, 16), 0.6)
    expected = (2 * 0.3 * 0.6 + 1e-4) / (0.09 + 0.36 + 1e-4)
    assert math.isclose(float(ssim_per_image(a, b)), expected, rel_tol=1e-6)


def test_holdout_split_is_fixed_and_stable_under_added_pairs():
    names = [f"n{i:03d}" for i in range(40)]
    held = holdout_names(names, fraction=0.1, seed=0)
    assert len(held) == 4 and held == holdout_names(names, fraction=0.1, seed=0)
    assert held != holdout_names(names, fraction=0.1, seed=1)
    more = holdout_names(names + [f"m{i:03d}" for i in range(40)], fraction=0.05, seed=0)
    assert set(more) & set(names) <= set(held)  # an old pair never moves from training to held out


def test_training_writes_checkpoint_losses_and_grids(trained, pairs):
    generator, content = load_generator(trained)
    assert content["image_size"] == 32 and content["generator_config"]["depth"] == 3
    training = content["training"]
    assert training["n_train"] == 9 and training["n_holdout"] == 3
    assert set(training["holdout_names"]) < {p.name for p in find_pairs(pairs)}
    paths = side_paths(trained)
    losses = pd.read_csv(paths["losses"], sep="\t")
    assert list(losses.columns) == ["epoch", "g_l1", "g_adv", "d_loss", "holdout_l1", "holdout_psnr", "holdout_ssim"]
    assert list(losses["epoch"]) == [1, 2] and np.isfinite(losses.to_numpy()).all()
    grid = cv2.imread(str(paths["samples"] / "epoch_002.png"))
    assert grid.shape == (3 * 32, 3 * 32, 3)  # rows rgb | generated | target, one column per held-out pair
    torch.testing.assert_close(generator.state_dict(), torch.load(paths["state"], weights_only=True)["generator"])


def test_same_seed_gives_identical_weights_and_resume_equals_uninterrupted(tmp_path, pairs, trained):
    again = tmp_path / "again.pt"
    train_generator(pairs_dir=pairs, out=again, settings=TrainSettings(epochs=2, **TINY), device="cpu")
    first, _ = load_generator(trained)
    second, _ = load_generator(again)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name

    staged = tmp_path / "staged.pt"
    one = train_generator(pairs_dir=pairs, out=staged, settings=TrainSettings(epochs=1, **TINY), device="cpu")
    assert one.resumed_from == 0 and one.epochs_run == 1
    resumed = train_generator(pairs_dir=pairs, out=staged, settings=TrainSettings(epochs=3, **TINY), device="cpu")
    assert resumed.resumed_from == 1 and resumed.epochs_run == 2
    straight = tmp_path / "straight.pt"
    train_generator(pairs_dir=pairs, out=straight, settings=TrainSettings(epochs=3, **TINY), device="cpu")
    for a, b in zip(load_generator(staged)[0].state_dict().values(), load_generator(straight)[0].state_dict().values()):
        assert torch.equal(a, b)
    assert list(pd.read_csv(side_paths(staged)["losses"], sep="\t")["epoch"]) == [1, 2, 3]
    finished = train_generator(pairs_dir=pairs, out=staged, settings=TrainSettings(epochs=3, **TINY), device="cpu")
    assert finished.epochs_run == 0  # a rerun after completion trains nothing
    before = side_paths(staged)["state"].read_bytes()
    with pytest.raises(InputError, match=r"last\.pt: the saved run was made differently: seed \(saved 3, now 4\)"):
        train_generator(pairs_dir=pairs, out=staged, settings=TrainSettings(epochs=3, **{**TINY, "seed": 4}))
    with pytest.raises(InputError, match="3 epochs, more than the 2 asked for"):
        train_generator(pairs_dir=pairs, out=staged, settings=TrainSettings(epochs=2, **TINY))
    assert side_paths(staged)["state"].read_bytes() == before  # a refused resume keeps the saved run
    other_seed = train_generator(
        pairs_dir=pairs,
        out=staged,
        settings=TrainSettings(epochs=1, **{**TINY, "seed": 4}),
        device="cpu",
        replace_stale=True,
    )
    assert other_seed.resumed_from == 0  # replaced when asked, as the workflow does
    assert torch.load(side_paths(staged)["state"], weights_only=True)["settings"]["seed"] == 4


def test_unreadable_training_state_and_checkpoint_are_named(tmp_path, pairs, trained):
    state = side_paths(tmp_path / "gen.pt")["state"]
    state.parent.mkdir()
    state.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"last\.pt: the training state file is empty"):
        train_generator(pairs_dir=pairs, out=tmp_path / "gen.pt", settings=TrainSettings(epochs=1, **TINY))
    torch.save({"format": "something else"}, state)
    with pytest.raises(CheckpointError, match=r"last\.pt: not a thermal training state \(format 'something else'"):
        train_generator(pairs_dir=pairs, out=tmp_path / "gen.pt", settings=TrainSettings(epochs=1, **TINY))
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match=r"random\.pt: not a readable PyTorch checkpoint") as error:
        load_generator(tmp_path / "random.pt")
    assert "weights_only" not in str(error.value)


def test_held_out_pairs_are_never_trained_on(tmp_path, pairs):
    """Replacing the held-out images by noise leaves the trained weights unchanged."""
    import shutil

    noisy = tmp_path / "noisy"
    shutil.copytree(pairs, noisy)
    held = holdout_names([p.name for p in find_pairs(pairs)], fraction=TINY["holdout"], seed=TINY["seed"])
    rng = np.random.default_rng(0)
    for name in held:
        for folder in ("rgb", "thermal"):
            cv2.imwrite(str(noisy / folder / f"{name}.png"), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    weights = []
    for root in (pairs, noisy):
        out = tmp_path / f"{root.name}.pt"
        train_generator(pairs_dir=root, out=out, settings=TrainSettings(epochs=1, **TINY), device="cpu")
        weights.append(load_generator(out)[0].state_dict())
    for a, b in zip(weights[0].values(), weights[1].values()):
        assert torch.equal(a, b)
    held_l1 = [
        pd.read_csv(side_paths(tmp_path / f"{r.name}.pt")["losses"], sep="\t")["holdout_l1"][0] for r in (pairs, noisy)
    ]
    assert held_l1[0] != held_l1[1]  # the held-out images were read, only for scoring


def test_evaluate_reports_generator_and_baselines(trained, pairs):
    evaluation = evaluate_generator(trained, pairs, device="cpu")
    assert [r.method for r in evaluation.rows] == ["generator", "constant_mean", "rgb_to_grey"]
    assert evaluation.n_pairs == 3
    for row in evaluation.rows:
        assert math.isfinite(row.l1) and math.isfinite(row.psnr) and -1 <= row.ssim <= 1
    assert "constant_mean" in evaluation.format_table()
    assert evaluate_generator(trained, pairs, split="all", device="cpu").n_pairs == 12


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread than on two that share a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_training_beats_both_trivial_baselines_on_held_out_pairs(tmp_path, one_thread):
    """The generator has learned the mapping: on pairs it never saw, it is closer to the target
    thermal image than the mean grey image and than the input's grey level, on L1, PSNR and SSIM."""
    pairs = make_face_pairs(tmp_path / "faces", count=80, size=48, seed=1)
    settings = TrainSettings(
        epochs=10,
        image_size=32,
        batch_size=8,
        seed=0,
        lr=1e-3,
        holdout=0.2,
        generator=TINY["generator"],
        discriminator=TINY["discriminator"],
    )
    out = tmp_path / "learned.pt"
    train_generator(pairs_dir=pairs, out=out, settings=settings, device="cpu")
    evaluation = evaluate_generator(out, pairs, device="cpu")
    assert evaluation.split == "holdout" and evaluation.n_pairs == 16
    generator = evaluation.row("generator")
    for baseline in ("constant_mean", "rgb_to_grey"):
        other = evaluation.row(baseline)
        assert generator.l1 < other.l1, evaluation.format_table()
        assert generator.psnr > other.psnr and generator.ssim > other.ssim, evaluation.format_table()
    # and it got there by training: the held-out error fell from the first epoch to the last
    held_l1 = pd.read_csv(side_paths(out)["losses"], sep="\t")["holdout_l1"]
    assert held_l1.iloc[-1] < held_l1.iloc[0]
    assert math.isclose(held_l1.iloc[-1], generator.l1, rel_tol=1e-4)


def test_missing_partner_and_unreadable_images_are_named(tmp_path):
    root = make_face_pairs(tmp_path / "p", count=3, size=32)
    (root / "thermal" / "face_001.png").unlink()
    with pytest.raises(InputError, match=r"rgb/face_001\.png.*no partner"):
        find_pairs(root)
    root = make_face_pairs(tmp_path / "q", count=3, size=32)
    (root / "thermal" / "face_002.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"thermal/face_002\.png: cannot read"):
        train_generator(pairs_dir=root, out=tmp_path / "x.pt", settings=TrainSettings(epochs=1, **TINY), device="cpu")


def test_flat_suffix_layout(tmp_path):
    root = make_face_pairs(tmp_path / "folders", count=2, size=32)
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("face_000", "face_001"):
        (flat / f"{name}_rgb.png").write_bytes((root / "rgb" / f"{name}.png").read_bytes())
        (flat / f"{name}_thr.png").write_bytes((root / "thermal" / f"{name}.png").read_bytes())
    assert [p.name for p in find_pairs(flat)] == ["face_000", "face_001"]
    (flat / "face_001_thr.png").unlink()
    with pytest.raises(InputError, match="face_001_rgb.png: no partner"):
        find_pairs(flat)


# -- application to real videos --------------------------------------------------
def write_video(path: Path, *, frames: int, seed: int) -> None:
    """A real H.264 mp4 (25 fps) of a drawn face that moves a little from frame to frame."""
    import imageio_ffmpeg

    rng = np.random.default_rng(seed)
    rgb, _ = draw_face_pair(rng, 96)
    writer = imageio_ffmpeg.write_frames(
        str(path), (128, 96), fps=25, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=16, quality=8
    )
    writer.send(None)
    for t in range(frames):
        canvas = np.zeros((96, 128, 3), np.uint8)
        canvas[:, 16 + t % 8 : 16 + t % 8 + 96] = rgb
        writer.send(np.ascontiguousarray(canvas))
    writer.close()


def decord_center_frames(path: str, *, num_frames: int, crop: str = "center", size: int = 224) -> np.ndarray:
    """Evenly spaced frames, centre square crop, resized to 224x224 (what painformer.video provides)."""
    import decord

    reader = decord.VideoReader(path)
    index = np.linspace(0, len(reader) - 1, num_frames).round().astype(int)
    frames = reader.get_batch(list(index)).asnumpy()
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.stack(
        [
            cv2.resize(f[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
            for f in frames
        ]
    )


def frame_reader():
    try:
        from painformer.video import read_frames

        return read_frames
    except ImportError:
        return decord_center_frames


def test_apply_writes_complete_resumable_store(tmp_path, trained):
    rows = []
    for i, cls in enumerate(("BL1", "PA4")):
        video = tmp_path / f"s{i}.mp4"
        write_video(video, frames=20, seed=i)
        rows.append(
            {
                "dataset": "demo",
                "sample": f"subj-{cls}-{i:03d}",
                "subject": "subj",
                "subject_id": 0,
                "class_id": 4 * i,
                "class_name": cls,
                "video": str(video),
                "biosignals": "",
                "split": "",
            }
        )
    table = pd.DataFrame(rows)
    out, marker = tmp_path / "thermal.zarr", tmp_path / "thermal.complete"
    settings = ApplySettings(num_frames=3, crop="center", batch_size=2, device="cpu")
    store = apply_generator(
        table=table, checkpoint=trained, out=out, settings=settings, complete_marker=marker, frame_reader=frame_reader()
    )
    assert marker.is_file() and store.is_complete()
    reopened = SampleStore.open_complete(out)
    frames = reopened.read()
    assert frames.shape == (2, 3, 224, 224, 3) and frames.dtype == np.uint8 and frames.std() > 0
    assert reopened.attrs["kind"] == "frames" and len(reopened.attrs["checkpoint_sha256"]) == 64
    # Each sample holds the generator's translation of its own decoded frames.
    generator, content = load_generator(trained)
    for index, video in enumerate(table["video"]):
        decoded = frame_reader()(video, num_frames=3, crop="center")
        expected = translate_frames(
            generator, decoded, image_size=content["image_size"], device=torch.device("cpu"), batch_size=2
        )
        assert np.array_equal(frames[index], expected)

    # Resume: forget one sample, rerun, get the same frames back.
    reopened = SampleStore.open(out)
    reopened.group["done"][1] = False
    reopened.array[1] = np.zeros((3, 224, 224, 3), np.uint8)
    apply_generator(table=table, checkpoint=trained, out=out, settings=settings, frame_reader=frame_reader())
    assert np.array_equal(SampleStore.open_complete(out).read(), frames)


def test_translate_frames_maps_the_generator_range_to_uint8():
    """[0, 255] in -> [-1, 1] for the generator -> [0, 255] out: an identity generator returns its input."""
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 224, 224, 3), dtype=np.uint8)
    identity, cpu = torch.nn.Identity(), torch.device("cpu")
    same = translate_frames(identity, frames, image_size=224, device=cpu, batch_size=2)
    assert same.dtype == np.uint8 and np.array_equal(same, frames)
    assert np.array_equal(translate_frames(identity, frames, image_size=224, device=cpu, batch_size=5), same)
    grey = np.full((2, 100, 120, 3), 77, dtype=np.uint8)  # resized to the generator's size and back to 224
    assert np.array_equal(
        translate_frames(identity, grey, image_size=32, device=cpu, batch_size=2), np.full((2, 224, 224, 3), 77)
    )


def test_cli_train_and_evaluate(tmp_path, pairs, capsys):
    from painformer.cli import main

    out = tmp_path / "cli.pt"
    code = main(
        [
            "thermal",
            "train",
            "--pairs",
            str(pairs),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--image-size",
            "32",
            "--batch-size",
            "4",
            "--seed",
            "0",
            "--depth",
            "3",
            "--base-width",
            "8",
            "--disc-width",
            "8",
            "--device",
            "cpu",
        ]
    )
    assert code == 0 and out.is_file() and side_paths(out)["losses"].is_file()
    assert main(["thermal", "evaluate", "--pairs", str(pairs), "--checkpoint", str(out), "--device", "cpu"]) == 0
    shown = capsys.readouterr().out
    assert "11 training pairs, 1 held out" in shown and "generator" in shown and "rgb_to_grey" in shown
    assert main(["thermal", "train", "--pairs", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "nowhere: paired image folder does not exist" in capsys.readouterr().err
