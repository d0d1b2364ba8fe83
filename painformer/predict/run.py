"""``painformer predict``: a final model applied to new recordings.

A new tree is indexed in the format the model records (BioVid, or AI4Pain with the recorded file
layout, whose channels and sampling rate the fNIRS files must have).

The images, frames and embeddings are made by the project's own stages (the biosignal renderer,
the thermal generator and depth stages, the embedder) into a cache folder, one store per input as
in a results tree; the stores resume, so a second call over the same samples recomputes nothing.
RGB frames are decoded from the tree's videos with the recorded frame count, crop and frame rate.
Each new store's fingerprint (backbone sha256, render parameters or video settings, frame model
hashes, preprocessing) must equal the one the model was trained on; only the video decoder may
differ, since decord and PyAV give the same frames.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painformer.errors import InputError
from painformer.predict.frames import FrameModels, check_frame_models, make_frames
from painformer.predict.index import UNLABELLED, index_tree, naming_override, read_prediction_table
from painformer.predict.model import FinalModel, open_final_model

LOG = logging.getLogger(__name__)
SAMPLES_FILE = "samples.tsv"
# Fingerprint keys that name how something was computed without changing the result.
SAME_RESULT_KEYS = ("decoder",)


def _differences(recorded: Any, new: Any, prefix: str = "") -> list[str]:
    """Leaf keys where two fingerprints differ, as ``key: model X, here Y``."""
    if isinstance(recorded, dict) and isinstance(new, dict):
        found = []
        for key in sorted((set(recorded) | set(new)) - set(SAME_RESULT_KEYS)):
            found += _differences(recorded.get(key), new.get(key), f"{prefix}{key}.")
        return found
    if recorded != new:
        return [f"{prefix.rstrip('.')}: model {recorded!r}, here {new!r}"]
    return []


def check_backbone(model: FinalModel, checkpoint: str | Path | None) -> str | None:
    """The checkpoint to embed with; refuses one whose sha256 is not the model's backbone."""
    from painformer.models.loading import UNTRAINED
    from painformer.utils import sha256_file

    expected = model.config["backbone_sha256"]
    if checkpoint is None:
        if expected != UNTRAINED:
            raise InputError(
                f"{model.folder}: the model was trained on embeddings of the backbone with sha256 {expected}; "
                "pass that checkpoint with --checkpoint"
            )
        return None
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: backbone checkpoint not found")
    found = sha256_file(path)
    if found != expected:
        raise InputError(
            f"{path}: backbone sha256 {found} differs from the model's backbone {expected} "
            f"(recorded in {model.folder / 'config.json'})"
        )
    return str(path)


def compute_embeddings(
    model: FinalModel,
    table: pd.DataFrame,
    cache: Path,
    *,
    checkpoint: str | None,
    device: str,
    batch_size: int = 16,
    progress: bool = False,
    frame_models: FrameModels | None = None,
) -> Path:
    """Render (or decode and translate) and embed every input of the model for ``table`` into ``cache``;
    returns the embeddings folder. ``frame_models``: the checked thermal generator and depth model."""
    import functools

    from painformer.data.signals import load_signal
    from painformer.embed.extract import EmbedSettings, extract_embeddings
    from painformer.embed.sources import open_source
    from painformer.models import load_painformer
    from painformer.names import VIDEO_MODALITIES
    from painformer.render.params import RenderParams
    from painformer.render.store import render_signal_store
    from painformer.stores import SampleStore
    from painformer.train.data import store_path
    from painformer.utils import select_device

    frame_models = frame_models or FrameModels()
    embeddings = cache / "embeddings"
    backbone = None
    for name in model.experiment.inputs:
        modality, representation = name.split("/")
        out = store_path(embeddings, name)
        recorded = model.config["inputs"][name]
        if out.exists():
            store = SampleStore.open(out, mode="r")
            done = bool(store.done_mask().all()) if list(store.samples) == table["sample"].tolist() else False
            if done and not _differences(recorded, store.attrs.get("fingerprint", {})):
                LOG.info("%s: cached embeddings reused (%d samples)", out, len(store))
                continue
        if modality == "rgb":
            video = recorded["input"]
            source = open_source(
                table=table,
                modality=modality,
                representation=representation,
                num_frames=video["num_frames"],
                crop=video["crop"],
                fps=video.get("fps"),
            )
        else:
            if modality in VIDEO_MODALITIES:
                images = make_frames(model, name, table, cache, frame_models, device=device, batch_size=batch_size)
            else:
                images = cache / "images" / modality / f"{representation}.zarr"
                render_signal_store(
                    table=table,
                    signal=modality,
                    representation=representation,
                    out=images,
                    params=RenderParams(**_render_params(recorded)),
                    loader=functools.partial(load_signal, layout=model.layout) if modality == "fnirs" else None,
                    force="stale",
                    progress=progress,
                )
            source = open_source(table=table, modality=modality, representation=representation, images=images)
        if backbone is None:
            backbone = load_painformer(checkpoint)
        extract_embeddings(
            source=source,
            out=out,
            model=backbone,
            modality=modality,
            representation=representation,
            settings=EmbedSettings(batch_size=batch_size, device=str(select_device(device))),
            force="stale",
            progress=progress,
        )
        made = SampleStore.open(out, mode="r").attrs.get("fingerprint", {})
        differences = _differences(recorded, made)
        if differences:
            raise InputError(
                f"{out}: these embeddings are not made the way the model's were ({'; '.join(differences[:5])})"
            )
    return embeddings


def _render_params(recorded: dict) -> dict:
    """The render parameters inside an embedding-store fingerprint (the defaults when none are recorded)."""
    stack = [recorded]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("render_params"), dict):
                return {k: tuple(v) if isinstance(v, list) else v for k, v in value["render_params"].items()}
            stack.extend(value.values())
    return {}


def predict_table(model: FinalModel, table: pd.DataFrame, embeddings: Path) -> pd.DataFrame:
    """One row per sample: sample, subject, predicted class, one probability column per class."""
    import torch

    from painformer.train.data import fuse_inputs, read_input, store_path
    from painformer.train.loop import predict_probabilities

    samples = table["sample"].tolist()
    vectors = {
        name: read_input(store_path(embeddings, name), samples, how=model.experiment.input_aggregation(name))
        for name in model.experiment.inputs
    }
    streams = model.normalizer.apply(fuse_inputs(model.experiment, vectors, embeddings_dir=embeddings))
    tensors = {name: torch.from_numpy(np.ascontiguousarray(values)) for name, values in streams.items()}
    probabilities = predict_probabilities(model.model, tensors)
    classes = model.classes
    rows = pd.DataFrame(
        {
            "sample": samples,
            "subject": table["subject"].tolist(),
            "predicted": [classes[i] for i in probabilities.argmax(axis=1)],
        }
    )
    for column, name in enumerate(classes):
        rows[f"prob_{name}"] = probabilities[:, column]
    labelled = table["class_name"].isin(classes) & (table["class_name"] != UNLABELLED)
    if labelled.all():
        rows.insert(2, "true", table["class_name"].tolist())
    return rows


def predict(
    model_dir: str | Path,
    *,
    out: str | Path,
    root: str | Path | None = None,
    samples: str | Path | None = None,
    cache: str | Path | None = None,
    checkpoint: str | Path | None = None,
    depth_model: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 16,
    ai4pain_layout: str | None = None,
) -> pd.DataFrame:
    """Predict every sample of a tree (``root``) or sample table (``samples``) and write ``out`` (TSV).

    ``depth_model``: the depth model directory of a model that reads depth frames (not needed when it
    was trained on the untrained tiny stand-in, which is rebuilt). ``ai4pain_layout``: for an AI4Pain
    model, the file and folder names of ``root`` where they differ from the training tree's (JSON).
    """
    from painformer.data.tables import write_sample_table
    from painformer.utils import atomic_path

    if (root is None) == (samples is None):
        raise InputError("give exactly one of --root and --samples")
    model = open_final_model(model_dir)
    if ai4pain_layout:
        if model.data_format != "ai4pain" or root is None:
            raise InputError("--ai4pain-layout goes with --root and a model trained on an AI4Pain tree")
        model = dataclasses.replace(model, layout=naming_override(model.layout, ai4pain_layout))
    checkpoint = check_backbone(model, checkpoint)
    if root is not None:
        table = index_tree(
            root,
            biosignals=model.config.get("biosignals"),
            signals=model.signals,
            data_format=model.data_format,
            layout=model.layout,
        )
    else:
        table = read_prediction_table(samples)
    out = Path(out)
    cache = Path(cache) if cache else out.with_name(out.stem + ".cache")
    cache.mkdir(parents=True, exist_ok=True)
    frame_models = check_frame_models(model, depth_model, cache)
    table_path = cache / SAMPLES_FILE
    write_sample_table(table, table_path)
    embeddings = compute_embeddings(
        model,
        table,
        cache,
        checkpoint=checkpoint,
        device=device,
        batch_size=batch_size,
        frame_models=frame_models,
    )
    rows = predict_table(model, table, embeddings)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(rows.to_csv(sep="\t", index=False, float_format="%.6f"))
    LOG.info("%s: %d samples predicted with %s", out, len(rows), model.folder)
    return rows
