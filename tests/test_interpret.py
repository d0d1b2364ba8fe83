"""Attention maps: shapes, ranges, dependence on the input, overlays and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from painformer.cli import main
from painformer.interpret import attention_maps, overlay, token_importance
from painformer.models import load_painformer
from painformer.stores import SampleMeta, SampleStore, write_completion_marker

COLUMNS = ["dataset", "sample", "subject", "subject_id", "class_id", "class_name", "video", "biosignals", "split"]
SQUARE = 48


@pytest.fixture(scope="module")
def model():
    return load_painformer(None)  # deterministic untrained backbone (seed 0)


def _square_image(top: int, left: int) -> np.ndarray:
    image = np.full((224, 224, 3), 40, dtype=np.uint8)
    image[top : top + SQUARE, left : left + SQUARE] = 230
    return image


def _centre_of_mass(heat: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[: heat.shape[0], : heat.shape[1]]
    return float((heat * rows).sum() / heat.sum()), float((heat * cols).sum() / heat.sum())


@pytest.mark.parametrize("options", [{}, {"stages": (4,)}, {"rollout": True}, {"reduce": "max"}])
def test_maps_have_image_shape_unit_range_and_follow_a_bright_square(model, options):
    corners = [(16, 16), (160, 160)]
    images = np.stack([_square_image(top, left) for top, left in corners])
    heat = attention_maps(model, images, **options)
    assert heat.shape == (2, 224, 224) and heat.dtype == np.float32
    assert heat.min() == 0.0 and heat.max() == pytest.approx(1.0)
    for map_, (top, left) in zip(heat, corners):
        inside = map_[top : top + SQUARE, left : left + SQUARE].mean()
        assert inside > 1.25 * map_.mean()  # the distinct region draws attention
    (top_left_row, top_left_col), (bottom_right_row, bottom_right_col) = (_centre_of_mass(h) for h in heat)
    assert bottom_right_row > top_left_row + 5 and bottom_right_col > top_left_col + 5


@pytest.mark.parametrize("options", [{}, {"rollout": True}, {"reduce": "max"}])
def test_token_grids_sum_to_one_before_upsampling_and_peak_at_the_square(model, options):
    images = np.stack([_square_image(16, 16), _square_image(160, 160)])
    grids = token_importance(model, images, **options)
    assert sorted(grids) == [3, 4]
    assert grids[3].shape == (2, 14, 14) and grids[4].shape == (2, 7, 7)
    for stage, grid in grids.items():
        assert (grid >= 0).all()
        np.testing.assert_allclose(grid.sum(axis=(1, 2)), 1.0, rtol=1e-5, err_msg=f"stage {stage}")
    # the bright square's tokens (stage 3: 16 px per token) receive more than an even share
    even_share = 1.0 / 196
    assert grids[3][0, 1:4, 1:4].mean() > even_share and grids[3][1, 10:13, 10:13].mean() > even_share


def test_maps_reject_bad_arguments(model):
    image = _square_image(0, 0)[None]
    with pytest.raises(ValueError, match="uint8"):
        attention_maps(model, image.astype(np.float32))
    with pytest.raises(ValueError, match="stages"):
        attention_maps(model, image, stages=(2,))
    with pytest.raises(ValueError, match="reduction"):
        attention_maps(model, image, reduce="median")


def test_overlay_blends_a_colour_map():
    images = np.stack([_square_image(0, 0), _square_image(100, 100)])
    heat = np.zeros((2, 224, 224), dtype=np.float32)
    heat[:, :112] = 1.0  # top half hot
    blended = overlay(images, heat, alpha=0.5)
    assert blended.shape == images.shape and blended.dtype == np.uint8
    assert np.array_equal(overlay(images, heat, alpha=0.0), images)
    # jet: hot (1.0) is red, cold (0.0) is blue
    assert blended[1, 50, 200, 0] > blended[1, 50, 200, 2]  # hot region leans red
    assert blended[1, 200, 10, 2] > blended[1, 200, 10, 0]  # cold region leans blue
    assert overlay(images[0], heat[0]).shape == (224, 224, 3)
    with pytest.raises(ValueError, match="do not match"):
        overlay(images, heat[:1])


def test_cli_writes_overlays_of_biosignal_images(tmp_path: Path, model):
    rows = [
        ["demo", f"071309_w_21-{cls}-{i:03d}", "071309_w_21", 0, cid, cls, "", "", ""]
        for i, (cls, cid) in enumerate([("BL1", 0), ("PA4", 4), ("BL1", 0)])
    ]
    table = pd.DataFrame(rows, columns=COLUMNS)
    samples = tmp_path / "samples.tsv"
    table.to_csv(samples, sep="\t", index=False)
    store = SampleStore.create_or_resume(
        tmp_path / "gsr.zarr",
        kind="images",
        array_name="images",
        meta=SampleMeta.from_table(table),
        item_shape=(224, 224, 3),
        dtype="uint8",
        fingerprint={"test": 1},
        attrs={"signal": "gsr", "representation": "spec_psd"},
    )
    for i in range(len(table)):
        store.write(i, _square_image(20 + 60 * i, 30 + 50 * i))
    write_completion_marker(store, tmp_path / "gsr.complete")
    out = tmp_path / "maps"
    argv = [
        "attention",
        "--samples",
        str(samples),
        "--modality",
        "gsr",
        "--representation",
        "spec_psd",
        "--images",
        str(tmp_path / "gsr.zarr"),
        "--checkpoint",
        "none",
        "--out",
        str(out),
        "--sample",
        table["sample"][0],
        "--sample",
        table["sample"][2],
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == [f"{table['sample'][0]}-gsr-spec_psd-00.png", f"{table['sample'][2]}-gsr-spec_psd-00.png"]
    panel = np.asarray(Image.open(out / written[0]))
    assert panel.shape == (224, 448, 3)
    assert np.array_equal(panel[:, :224], _square_image(20, 30))  # left half: the image itself
    # right half: the overlay of this image's own attention map (the CLI's untrained backbone is `model`)
    image = _square_image(20, 30)[None]
    expected = overlay(image, attention_maps(model, image))[0]
    assert np.abs(panel[:, 224:].astype(int) - expected).max() <= 1
    assert main(argv[:-4] + ["--sample", "no-such-sample"]) == 1


def test_cli_maps_image_files_centre_cropped_to_the_input_size(tmp_path: Path, model):
    import cv2

    picture = np.full((300, 400, 3), 30, dtype=np.uint8)
    picture[120:180, 200:260] = 250
    picture[:, :50] = 255  # outside the centre square: must not reach the backbone
    path = tmp_path / "face.png"
    Image.fromarray(picture).save(path)
    out = tmp_path / "maps"
    argv = ["attention", "--image", str(path), "--checkpoint", "none", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    panel = np.asarray(Image.open(out / "face-00.png"))
    assert panel.shape == (224, 448, 3)
    expected = cv2.resize(picture[:, 50:350], (224, 224), interpolation=cv2.INTER_AREA)
    assert np.array_equal(panel[:, :224], expected)
    assert not np.array_equal(panel[:, 224:], expected)  # the overlay half carries the map
    mapped = overlay(expected[None], attention_maps(model, expected[None]))[0]
    assert np.abs(panel[:, 224:].astype(int) - mapped).max() <= 1
    sheet = tmp_path / "sheet.png"
    assert (
        main(
            [
                "attention",
                "--image",
                str(path),
                "--image",
                str(path),
                "--checkpoint",
                "none",
                "--device",
                "cpu",
                "--sheet",
                str(sheet),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(sheet)).shape[0] > 2 * 224  # a row per image
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["attention", "--image", str(tmp_path / "missing.png"), "--out", str(out)]) == 1
    assert main(["attention", "--image", str(tmp_path / "broken.png"), "--out", str(out)]) == 1
    assert main(["attention", "--samples", str(tmp_path / "s.tsv"), "--out", str(out)]) == 1
