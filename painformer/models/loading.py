"""Loading the PainFormer backbone from the published checkpoint (or untrained)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from painformer.checkpoints import load_checkpoint
from painformer.errors import CheckpointError
from painformer.models.painformer import PainFormer
from painformer.utils import select_device, sha256_file

log = logging.getLogger(__name__)

UNTRAINED = "untrained"
UNTRAINED_SEED = 0


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    elif isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path}: not a PainFormer checkpoint (expected a state dict or {{'model_state_dict': ...}})"
        )
    state = {}
    for key, value in obj.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        state[key] = value
    return state


def check_state_dict(model: PainFormer, state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Return the backbone part of ``state``; refuse it, listing every problem, if it does not fit.

    Classifier keys ``head.*`` of any size are dropped: the backbone is used as an
    embedding extractor.
    """
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    backbone = {k: v for k, v in state.items() if not k.startswith("head.")}
    missing = sorted(set(expected) - set(backbone))
    unexpected = sorted(set(backbone) - set(expected))
    misshaped = sorted(
        f"{k} (checkpoint {tuple(backbone[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(expected) & set(backbone)
        if tuple(backbone[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                parts.append(f"{len(keys)} {label}: {', '.join(keys)}")
        raise CheckpointError(f"{source}: checkpoint does not fit the PainFormer backbone; " + "; ".join(parts))
    return backbone


def load_painformer(checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> PainFormer:
    """Return the PainFormer backbone in eval mode on ``device``.

    ``checkpoint`` may be the published ``painformer.pth`` (``{"model_state_dict": ...}``),
    a bare state dict, or either with ``module.`` prefixes; a classifier head of
    any size is dropped. ``None`` gives a deterministic random initialisation and
    a warning: embeddings from it carry no learned knowledge. The checkpoint's
    sha256 (or ``"untrained"``) is available as ``model.checkpoint_sha256``.
    """
    if checkpoint is None:
        log.warning(
            "PainFormer has NO CHECKPOINT: using an untrained, randomly initialised backbone "
            "(seed %d). Its embeddings are not the published model's; results are only a "
            "pipeline check. Set backbone.checkpoint to painformer.pth for real results.",
            UNTRAINED_SEED,
        )
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(UNTRAINED_SEED)
        try:
            model = PainFormer()
        finally:
            torch.random.set_rng_state(generator_state)
        model.checkpoint_sha256 = UNTRAINED
    else:
        path = Path(checkpoint)
        obj = load_checkpoint(path, what="PainFormer checkpoint")
        model = PainFormer()
        state = check_state_dict(model, _extract_state_dict(obj, path), str(path))
        model.load_state_dict(state, strict=True)
        model.checkpoint_sha256 = sha256_file(path)
    model.eval()
    return model.to(select_device(device) if device == "auto" else torch.device(device))
