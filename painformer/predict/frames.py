"""Thermal and depth frames of new samples, made with the frame models a final model was trained with.

The thermal generator travels inside the final model folder; the depth model is given by the user
(``--depth-model``) or, when the model was trained on the untrained tiny stand-in, rebuilt the way
the workflow builds it (``painformer depth make-tiny``, seed 0). Both are checked against the
sha256 in ``config.json`` before any frame is made. The frames go to resumable stores in the
cache, filled by the project's own thermal and depth stages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from painformer.errors import CheckpointError, InputError
from painformer.predict.model import FinalModel
from painformer.train.final import CONFIG_FILE, frames_fingerprint

LOG = logging.getLogger(__name__)
TINY_DEPTH_DIR = "depth_tiny"


@dataclass(frozen=True)
class FrameModels:
    """The checked thermal generator and depth model directory (None: the model reads no such frames)."""

    thermal: Path | None = None
    depth: Path | None = None


def _record(model: FinalModel, key: str, input_name: str) -> dict:
    record = model.config.get(key)
    if not isinstance(record, dict) or "sha256" not in record:
        raise InputError(
            f"{model.folder / CONFIG_FILE}: the experiment reads {input_name} but the file records no {key}; "
            "write the final model again with this version"
        )
    return record


def _thermal_generator(model: FinalModel) -> Path:
    from painformer.utils import sha256_file

    record = _record(model, "thermal_generator", "thermal/frames")
    path = model.folder / record["file"]
    if not path.is_file():
        raise InputError(
            f"{model.folder}: the model reads thermal/frames but the folder lacks {record['file']}, the thermal "
            "generator it was trained with"
        )
    digest = sha256_file(path)
    if digest != record["sha256"]:
        raise InputError(
            f"{path}: thermal generator sha256 {digest} differs from the one the model was trained with "
            f"{record['sha256']} (recorded in {model.folder / CONFIG_FILE})"
        )
    return path


def _tiny_depth_model(model: FinalModel, cache: Path) -> Path:
    """The untrained stand-in, built into the cache as the workflow builds it (once; later calls reuse it)."""
    from painformer.depth.model import make_tiny_depth_model

    folder = cache / "models" / TINY_DEPTH_DIR
    if not (folder / "config.json").is_file():
        LOG.info("%s: rebuilding the untrained tiny depth stand-in the model was trained with", folder)
        make_tiny_depth_model(folder, seed=0)
    return folder


def _depth_model(model: FinalModel, depth_model: str | Path | None, cache: Path) -> Path:
    from painformer.depth.model import model_dir_sha256

    record = _record(model, "depth_model", "depth/frames")
    expected = record["sha256"]
    if depth_model is None:
        if not record.get("untrained_tiny"):
            raise InputError(
                f"{model.folder}: the model reads depth frames of {record.get('name')!r} (directory sha256 "
                f"{expected}); pass that model directory with --depth-model"
            )
        path = _tiny_depth_model(model, cache)
        rebuilt = True
    else:
        path, rebuilt = Path(depth_model), False
    try:
        digest = model_dir_sha256(path)
    except CheckpointError as error:
        raise InputError(str(error)) from None
    if digest != expected:
        what = "the untrained tiny depth stand-in rebuilt here" if rebuilt else "depth model"
        raise InputError(
            f"{path}: {what} has sha256 {digest}, which differs from the model's depth model {expected} "
            f"({record.get('name')}, recorded in {model.folder / CONFIG_FILE})"
        )
    return path


def check_frame_models(model: FinalModel, depth_model: str | Path | None, cache: Path) -> FrameModels:
    """The frame models to make the model's thermal and depth frames with, each checked by sha256."""
    inputs = model.experiment.inputs
    if depth_model is not None and "depth/frames" not in inputs:
        raise InputError(
            f"{model.folder}: --depth-model given, but experiment {model.experiment.name!r} reads no depth"
        )
    return FrameModels(
        thermal=_thermal_generator(model) if "thermal/frames" in inputs else None,
        depth=_depth_model(model, depth_model, cache) if "depth/frames" in inputs else None,
    )


def make_frames(
    model: FinalModel,
    name: str,
    table: pd.DataFrame,
    cache: Path,
    frame_models: FrameModels,
    *,
    device: str,
    batch_size: int,
) -> Path:
    """Fill (or resume) the cache's frames store of a thermal or depth input; returns its path."""
    modality = name.split("/")[0]
    made = frames_fingerprint(model.config["inputs"][name])
    out = cache / "frames" / f"{modality}.zarr"
    # The decoder is left to choose: decord and PyAV give the same frames.
    common = {"num_frames": made["num_frames"], "crop": made["crop"], "fps": made.get("fps"), "device": device}
    if modality == "thermal":
        from painformer.thermal.apply import ApplySettings, apply_generator

        settings = ApplySettings(**common, batch_size=batch_size)
        apply_generator(table=table, checkpoint=frame_models.thermal, out=out, settings=settings, force="stale")
    elif modality == "depth":
        from painformer.depth.apply import DepthSettings, apply_depth

        settings = DepthSettings(**common, normalization=made.get("normalization", "video"), batch_size=batch_size)
        apply_depth(table=table, model_dir=frame_models.depth, out=out, settings=settings, force="stale")
    else:
        raise InputError(f"{name}: no frame model makes this input")
    return out
