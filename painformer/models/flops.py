"""Parameter and multiply-accumulate counts, the way the paper's Table I counts them.

Table I's "FLOPs" are multiply-accumulates of convolution and linear layers
only: attention products (QK^T, AV), FFTs, normalisations, activations and
biases are not counted. Measured that way the published backbone gives
5.79 G per 224x224 image (Table I: 5.82 G) and the Video-Encoder 0.861 G at an
input of 22,080 (Table I: 0.86 G). The counts come from forward hooks on the
layers actually run, so a layer used twice is counted twice and an unused one
not at all.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _linear_macs(module: nn.Linear, output: torch.Tensor) -> int:
    # Every output element is a dot product of length in_features.
    return output.numel() * module.in_features


def _conv_macs(module: nn.modules.conv._ConvNd, inputs: tuple[Any, ...], output: torch.Tensor) -> int:
    kernel = math.prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # Each input element is scattered into out_channels/groups x kernel outputs.
        return inputs[0].numel() * (module.out_channels // module.groups) * kernel
    return output.numel() * (module.in_channels // module.groups) * kernel


def count_macs(model: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    """Multiply-accumulates of conv and linear layers in one forward pass on ``example_input``.

    The model runs once under ``torch.no_grad`` in its current mode and on the
    input's device; the count is for the whole batch of ``example_input``.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += _linear_macs(module, output)
        else:
            total += _conv_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, *_CONV_TYPES))]
    try:
        with torch.no_grad():
            if isinstance(example_input, tuple):
                model(*example_input)
            else:
                model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; a shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters())


# Table I of the paper: (parameters in millions, GFLOPs as multiply-accumulates).
TABLE_I = {
    "PainFormer": (19.60, 5.82),
    "Embedding-Mixer": (9.85, 2.94),
    "Video-Encoder": (3.37, 0.86),
}


@dataclass(frozen=True)
class ModelCost:
    """One row of the Table I comparison."""

    model: str
    input_shape: tuple[int, ...]
    params: int
    macs: int
    table_params_m: float
    table_gmacs: float


def table_i_costs(*, input_length: int = 22_080) -> list[ModelCost]:
    """Parameters and MACs of the three models beside Table I's figures.

    The backbone is counted on one 224x224 image (untrained weights: counts do
    not depend on them); the Perceiver models on one embedding of
    ``input_length`` (Table I corresponds to 22,080) in the textbook
    cross-attention formulation, which is what Table I counts.
    """
    from painformer.models.loading import load_painformer
    from painformer.models.mixer import EmbeddingMixer, VideoEncoder, set_factored_attention

    loading_log = logging.getLogger("painformer.models.loading")
    previous_level = loading_log.level
    # The untrained-backbone warning is irrelevant to counting.
    loading_log.setLevel(logging.ERROR)
    try:
        backbone = load_painformer(checkpoint=None, device="cpu")
    finally:
        loading_log.setLevel(previous_level)
    image = torch.zeros(1, 3, 224, 224)
    embedding = torch.zeros(1, input_length)
    # The backbone without a classifier head: forward is the embedding.
    models: list[tuple[str, nn.Module, torch.Tensor]] = [
        ("PainFormer", backbone, image),
        ("Embedding-Mixer", EmbeddingMixer(), embedding),
        ("Video-Encoder", VideoEncoder(), embedding),
    ]
    rows = []
    for name, model, example in models:
        model.eval()
        set_factored_attention(model, False)
        table_params, table_gmacs = TABLE_I[name]
        rows.append(
            ModelCost(
                model=name,
                input_shape=tuple(example.shape),
                params=count_params(model),
                macs=count_macs(model, example),
                table_params_m=table_params,
                table_gmacs=table_gmacs,
            )
        )
    return rows
