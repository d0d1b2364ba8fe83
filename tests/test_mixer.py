"""The Embedding-Mixer and Video-Encoder train on any input length, deterministically, and MACs count as Table I does."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

from painformer.models.flops import count_macs, count_params
from painformer.models.mixer import (
    EmbeddingMixer,
    VideoEncoder,
    fourier_position_features,
    scalar_tokens,
    set_factored_attention,
)


def small_mixer(**overrides) -> EmbeddingMixer:
    """The paper's structure at a width that keeps CPU tests fast."""
    config = dict(num_classes=5, num_latents=16, latent_dim=64, cross_dim_head=64, self_dim_head=8, output_dim=32)
    config.update(overrides)
    return EmbeddingMixer(**config)


def assert_trains(model: nn.Module, x: torch.Tensor, out_dim: int) -> None:
    """One forward/backward: finite output of the right shape and a finite, non-zero gradient for every parameter."""
    model.train()
    out = model(x)
    assert out.shape == (x.shape[0], out_dim)
    assert torch.isfinite(out).all()
    # A loss that depends on every output unit, so every parameter is reached.
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("length", [160, 200])
def test_paper_mixer_trains_on_any_length(length: int) -> None:
    torch.manual_seed(0)
    model = EmbeddingMixer(num_classes=2)
    assert model.num_features == 512
    assert_trains(model, torch.randn(3, length), out_dim=2)
    assert model.forward_features(torch.randn(2, length)).shape == (2, 512)


def test_video_encoder_trains_on_a_video_embedding() -> None:
    torch.manual_seed(0)
    model = VideoEncoder()
    assert model.num_features == 40
    assert_trains(model, torch.randn(2, 22_080), out_dim=40)


def test_mixer_with_dropouts_trains_and_is_stochastic_only_in_training() -> None:
    torch.manual_seed(0)
    model = small_mixer(dropout=0.5, attn_dropout=0.1)
    x = torch.randn(4, 200)
    assert_trains(model, x, out_dim=5)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_classifier_can_be_left_out() -> None:
    model = small_mixer(num_classes=0).eval()
    x = torch.randn(2, 160)
    assert torch.equal(model(x), model.forward_features(x))
    assert model(x).shape == (2, 32)


@pytest.mark.parametrize(("build_model", "length"), [(lambda: EmbeddingMixer(num_classes=3), 160), (VideoEncoder, 600)])
def test_two_inits_with_the_same_seed_are_identical(build_model, length: int) -> None:
    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return build_model()

    first, second, other = build(7), build(7), build(8)
    for (name, a), (_, b), (_, _c) in zip(
        first.state_dict().items(), second.state_dict().items(), other.state_dict().items()
    ):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters()))
    x = torch.randn(2, length)
    first.eval(), second.eval()
    assert torch.equal(first(x), second(x))


@pytest.mark.parametrize("heads", [1, 2])
def test_factored_cross_attention_is_the_textbook_function(heads: int) -> None:
    torch.manual_seed(0)
    model = small_mixer(cross_heads=heads).double().eval()
    x = torch.randn(3, 300, dtype=torch.float64)
    factored = model(x)
    grads_factored = torch.autograd.grad(factored.sum(), list(model.parameters()))
    set_factored_attention(model, False)
    textbook = model(x)
    grads_textbook = torch.autograd.grad(textbook.sum(), list(model.parameters()))
    torch.testing.assert_close(factored, textbook, rtol=1e-9, atol=1e-12)
    for a, b in zip(grads_factored, grads_textbook):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_tokens_carry_value_and_fourier_features_of_the_index() -> None:
    features = fourier_position_features(5, num_freq_bands=6, max_freq=10.0)
    assert features.shape == (5, 13)
    positions = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    torch.testing.assert_close(features[:, 0], positions)
    frequencies = torch.linspace(1.0, 5.0, 6)
    torch.testing.assert_close(features[:, 1:7], torch.sin(math.pi * positions[:, None] * frequencies))
    torch.testing.assert_close(features[:, 7:], torch.cos(math.pi * positions[:, None] * frequencies))

    x = torch.randn(2, 5)
    tokens = scalar_tokens(x, num_freq_bands=6, max_freq=10.0)
    assert tokens.shape == (2, 5, 14)
    torch.testing.assert_close(tokens[..., 0], x)
    torch.testing.assert_close(tokens[1, :, 1:], features)


def test_modulated_tokens_append_the_value_times_each_position_feature() -> None:
    x = torch.randn(3, 40)
    scalar = scalar_tokens(x, num_freq_bands=8, max_freq=10.0, position_encoding="nyquist")
    modulated = scalar_tokens(
        x, num_freq_bands=8, max_freq=10.0, position_encoding="nyquist", token_features="modulated"
    )
    assert scalar.shape == (3, 40, 2 + 2 * 8)
    assert modulated.shape == (3, 40, 3 + 4 * 8)
    torch.testing.assert_close(modulated[..., : scalar.shape[-1]], scalar)
    torch.testing.assert_close(modulated[..., scalar.shape[-1] :], x[..., None] * scalar[..., 1:])
    model = small_mixer(token_features="modulated", position_encoding="nyquist", num_freq_bands=8)
    assert model.encoder.token_dim == 3 + 4 * 8
    assert model(x).shape == (3, model.num_classes)
    with pytest.raises(ValueError, match="token_features"):
        small_mixer(token_features="product")


def test_input_must_be_batch_by_length() -> None:
    with pytest.raises(ValueError, match="batch, length"):
        small_mixer()(torch.randn(160))


def test_models_are_registered_with_timm() -> None:
    torch.manual_seed(0)
    mixer = timm.create_model("embedding_mixer", num_classes=4, latent_dim=64, cross_dim_head=64, self_dim_head=8)
    assert isinstance(mixer, EmbeddingMixer)
    assert mixer(torch.randn(1, 160)).shape == (1, 4)
    assert isinstance(timm.create_model("video_encoder"), VideoEncoder)
    with pytest.raises(RuntimeError, match="no published weights"):
        timm.create_model("video_encoder", pretrained=True)


def test_count_macs_counts_conv_and_linear_only() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=3, padding=1),  # 5*5*8 outputs x 3*3*3 = 5,400
        nn.Conv2d(8, 8, kernel_size=3, padding=1, groups=8),  # 5*5*8 outputs x 1*3*3 = 1,800
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(200, 10),  # 2,000
    )
    assert count_macs(model, torch.randn(1, 3, 5, 5)) == 5_400 + 1_800 + 2_000
    assert count_macs(model, torch.randn(4, 3, 5, 5)) == 4 * (5_400 + 1_800 + 2_000)
    assert count_params(model) == (3 * 9 * 8 + 8) + (9 * 8 + 8) + (200 * 10 + 10)


def test_video_encoder_matches_table_one() -> None:
    model = VideoEncoder().eval()
    set_factored_attention(model, False)
    assert count_params(model) / 1e6 == pytest.approx(3.37, abs=0.005)
    assert count_macs(model, torch.zeros(1, 22_080)) / 1e9 == pytest.approx(0.86, abs=0.005)


def _nearest_neighbour_gap(features: torch.Tensor) -> float:
    """Smallest distance between the position features of two neighbouring token indices."""
    return float((features[1:] - features[:-1]).norm(dim=1).min())


@pytest.mark.parametrize("length", [160, 640, 22_080])
def test_nyquist_features_tell_neighbouring_indices_apart(length: int) -> None:
    x = torch.zeros(1, length)
    paper = scalar_tokens(x, num_freq_bands=6, max_freq=10.0)[0, :, 1:]
    nyquist = scalar_tokens(x, num_freq_bands=32, max_freq=10.0, position_encoding="nyquist")[0, :, 1:]
    # The paper's six bands top out at 5 periods over the input: neighbouring indices lie 0.32 apart
    # at L = 160, 0.08 at 640 and 0.002 at 22,080 (features of norm ~2.5), so attention cannot single
    # out one embedding dimension. With the top band at the Nyquist rate they lie ~8 apart at every L.
    assert _nearest_neighbour_gap(paper) < 0.35
    assert _nearest_neighbour_gap(nyquist) > 4.0
    torch.testing.assert_close(nyquist, fourier_position_features(length, num_freq_bands=32, max_freq=float(length)))


def test_rms_input_norm_makes_the_mixer_blind_to_a_constant_factor() -> None:
    torch.manual_seed(0)
    model = small_mixer(input_norm="rms", position_encoding="nyquist", num_freq_bands=16).eval()
    x = torch.randn(4, 200) + 0.5
    with torch.no_grad():
        reference = model(x)
        for factor in (1e-3, 300.0, 1e4):
            torch.testing.assert_close(model(factor * x), reference, rtol=1e-4, atol=1e-5)
        # Without it, the scalar tokens' LayerNorm sees a different input at x300.
        plain = small_mixer(position_encoding="nyquist", num_freq_bands=16).eval()
        assert (plain(300 * x) - plain(x)).abs().max() > 1e-3
    tokens = scalar_tokens(x, num_freq_bands=6, max_freq=10.0, input_norm="rms")
    torch.testing.assert_close(tokens[..., 0].square().mean(dim=1), torch.ones(4), rtol=1e-5, atol=1e-6)


def test_unknown_token_options_are_refused() -> None:
    with pytest.raises(ValueError, match="position_encoding"):
        small_mixer(position_encoding="learned")
    with pytest.raises(ValueError, match="input_norm"):
        small_mixer(input_norm="batch")
