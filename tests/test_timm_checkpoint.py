"""Loading a published-format PainFormer checkpoint through timm, with the checks of load_painformer."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from timm.data import resolve_model_data_config

import painformer.models  # noqa: F401  (registers the timm models)
from painformer.errors import CheckpointError
from painformer.models import PainFormer, load_painformer
from painformer.utils import sha256_file


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint in the published layout (``{"model_state_dict": ...}`` with ``module.`` prefixes and a head)."""
    torch.manual_seed(7)
    source = PainFormer(num_classes=5)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path_factory.mktemp("ckpt") / "painformer.pth"
    torch.save({"model_state_dict": state, "epoch": 3}, path)
    return path


def test_timm_loads_the_checkpoint_like_load_painformer(checkpoint: Path):
    reference = load_painformer(checkpoint)
    model = timm.create_model("painformer", pretrained=True, pretrained_cfg_overlay=dict(file=str(checkpoint))).eval()
    assert model.checkpoint_sha256 == reference.checkpoint_sha256 == sha256_file(checkpoint)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = reference.embed(x)
        got = model.embed(x)
        fresh = timm.create_model("painformer").eval().embed(x)
    assert torch.equal(got, expected)
    assert not torch.allclose(fresh, expected)  # the weights really came from the file
    # A new classifier on top keeps the loaded backbone.
    classifier = timm.create_model(
        "painformer", pretrained=True, num_classes=3, pretrained_cfg_overlay=dict(file=str(checkpoint))
    ).eval()
    with torch.inference_mode():
        assert torch.equal(classifier.embed(x), expected)
        assert classifier(x).shape == (2, 3)


def test_timm_data_config_is_the_vggface2_pipeline():
    config = resolve_model_data_config(timm.create_model("painformer"))
    assert config["input_size"] == (3, 224, 224)
    assert config["mean"] == (0.6068, 0.4517, 0.3800)
    assert config["std"] == (0.2492, 0.2173, 0.2082)
    cfg = timm.models.get_pretrained_cfg("painformer")
    assert not cfg.url and not cfg.hf_hub_id


def test_timm_refuses_what_load_painformer_refuses(tmp_path: Path):
    with pytest.raises(CheckpointError, match="cannot be downloaded"):
        timm.create_model("painformer", pretrained=True)
    with pytest.raises(CheckpointError, match="not found"):
        timm.create_model("painformer", pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / "no.pth")))
    state = PainFormer().state_dict()
    state.pop("norm4.weight")
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match=r"1 missing: norm4\.weight; 1 unexpected: extra\.weight"):
        timm.create_model("painformer", pretrained=True, pretrained_cfg_overlay=dict(file=str(bad)))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        timm.create_model("painformer", pretrained=True, pretrained_cfg_overlay=dict(file=str(corrupt)))
