"""Streaming extraction of PainFormer embeddings into a resumable Zarr store.

Samples are decoded/rendered by background threads (bounded look-ahead, in
sample order), their images are batched across samples for inference, and
each sample is written to the store as soon as all its items are embedded.
Memory therefore depends on the batch size and look-ahead, never on the
number of samples. A rerun embeds only samples whose ``done`` flag is unset.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from painformer import __version__
from painformer.embed.sources import ImageSource
from painformer.errors import InputError
from painformer.models import EMBEDDING_DIM, PREPROCESS_PARAMS, PainFormer, preprocess
from painformer.stores import SampleInputs, SampleStore, StoreLayout, StoreStage, fill_store

log = logging.getLogger(__name__)


PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class EmbedSettings:
    """How to run the backbone; none of these change the embeddings beyond float tolerance
    except ``precision`` (the precision used is recorded in the store's fingerprint)."""

    batch_size: int = 16
    device: str = "cpu"
    loader_threads: int = 2
    lookahead: int = 4
    compile: bool = False
    store_dtype: str = "float32"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")

    @property
    def precision_used(self) -> str:
        return resolve_precision(self.precision, self.device)


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The precision the backbone runs in: ``auto`` is bfloat16 on CUDA and float32 on the CPU
    (bit-reproducible); a GPU without bfloat16 falls back to float32 with a warning."""
    device = torch.device(device)
    wanted = ("bfloat16" if device.type == "cuda" else "float32") if precision == "auto" else precision
    if wanted == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        _warn_no_bfloat16(torch.cuda.get_device_name(device))
        return "float32"
    return wanted


@functools.cache
def _warn_no_bfloat16(name: str) -> None:
    log.warning("%s has no bfloat16 support: the backbone runs in float32 there", name)


class _BatchRunner:
    """Runs the backbone on a device with the fastest settings that keep results defined.

    The loader threads hand over uint8 images and normalisation runs per batch
    in ``launch``, on the model's device: on CUDA a quarter of float32's bytes
    cross PCIe, and on the CPU the loader threads run no torch kernels, whose
    thread teams would oversubscribe the cores the backbone's kernels use.
    On CUDA ``launch`` returns without waiting for the GPU, so the caller
    prepares the next batch while this one runs.
    """

    def __init__(self, model: PainFormer, settings: EmbedSettings):
        self.device = torch.device(settings.device)
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.bfloat16 if settings.precision_used == "bfloat16" else torch.float32
        model = model.to(self.device).eval()
        if self.cuda:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward = torch.compile(model.embed) if settings.compile else model.embed
        # Page-locked staging buffers, allocated once: pinning memory per batch is a slow,
        # synchronising driver call. Two, so that one fills while the other's copy may
        # still be in flight; an event per buffer says when its copy has finished.
        self.pinned: list[torch.Tensor] = []
        self.copied: list[torch.cuda.Event | None] = [None, None]
        self.turn = 0

    def _stage(self, batch: torch.Tensor) -> torch.Tensor:
        """Copy a host batch to the device through a reused pinned buffer, without waiting."""
        if not self.pinned or self.pinned[0].shape[1:] != batch.shape[1:] or self.pinned[0].shape[0] < len(batch):
            self.pinned = [torch.empty(batch.shape, dtype=batch.dtype).pin_memory() for _ in range(2)]
            self.copied = [None, None]
        slot, self.turn = self.turn, 1 - self.turn
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()
        buffer = self.pinned[slot][: len(batch)]
        buffer.copy_(batch)
        on_device = buffer.to(self.device, non_blocking=True)
        self.copied[slot] = torch.cuda.Event()
        self.copied[slot].record(torch.cuda.current_stream(self.device))
        return on_device

    @torch.inference_mode()
    def launch(self, batch: torch.Tensor) -> torch.Tensor:
        """Start the forward pass of a (B, H, W, 3) uint8 batch; the result may still be in flight."""
        if self.cuda:
            inputs = preprocess(self._stage(batch)).contiguous(memory_format=torch.channels_last)
        else:
            inputs = preprocess(batch)
        # Normalisation stays float32 whatever the precision; autocast covers the backbone only.
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.forward(inputs)

    @staticmethod
    def collect(embeddings: torch.Tensor) -> np.ndarray:
        """Wait for a launched batch and return its (B, 160) float32 embeddings."""
        return embeddings.float().cpu().numpy()


def store_fingerprint(
    *, model: PainFormer, source: ImageSource, modality: str, representation: str, settings: EmbedSettings
) -> dict[str, Any]:
    return {
        "backbone": "painformer",
        "checkpoint_sha256": getattr(model, "checkpoint_sha256", "unknown"),
        "modality": modality,
        "representation": representation,
        "preprocess": PREPROCESS_PARAMS,
        "precision": settings.precision_used,
        "input": source.fingerprint(),
    }


class EmbedStage(StoreStage):
    """Embeddings: images of a sample load in threads; the backbone runs on batches of images
    gathered across samples, and a sample is written once all its images are embedded."""

    verb = "embed"

    def __init__(
        self,
        *,
        source: ImageSource,
        out: str | Path,
        model: PainFormer,
        modality: str,
        representation: str,
        settings: EmbedSettings,
    ):
        self.source, self.out, self.model, self.settings = source, out, model, settings
        self.modality, self.representation = modality, representation
        self.loader_threads, self.lookahead = settings.loader_threads, settings.lookahead
        self.description = f"embed {modality}/{representation}"

    def layout(self) -> StoreLayout:
        fingerprint = store_fingerprint(
            model=self.model,
            source=self.source,
            modality=self.modality,
            representation=self.representation,
            settings=self.settings,
        )
        return StoreLayout(
            kind="embeddings",
            array_name="embeddings",
            item_shape=(self.source.num_items, EMBEDDING_DIM),
            dtype=self.settings.store_dtype,
            fingerprint=fingerprint,
            attrs={
                "backbone": "painformer",
                "checkpoint_sha256": fingerprint["checkpoint_sha256"],
                "untrained_backbone": fingerprint["checkpoint_sha256"] == "untrained",
                "modality": self.modality,
                "representation": self.representation,
                "preprocess": PREPROCESS_PARAMS,
                "painformer_version": __version__,
                "torch_version": torch.__version__,
            },
        )

    def inputs(self, index: int) -> SampleInputs | None:
        inputs = getattr(self.source, "inputs", None)
        return inputs(index) if inputs else None

    def inputs_attr(self) -> dict[str, Any] | None:
        described = getattr(self.source, "inputs_attr", None)
        return described() if described else None

    def prepare(self, store: SampleStore, pending: list[int]) -> None:
        self.runner = _BatchRunner(self.model, self.settings)

    def load(self, index: int) -> torch.Tensor:
        source = self.source
        images = source.load(index)
        if images.shape[0] != source.num_items:
            raise InputError(
                f"{self.modality}/{self.representation}: sample {source.meta.samples[index]} has "
                f"{images.shape[0]} images, expected {source.num_items} like every sample of the store {self.out}"
            )
        return torch.from_numpy(np.ascontiguousarray(images))  # (n_items, H, W, 3) uint8

    def stream(self, loaded: Iterator[tuple[int, torch.Tensor]]) -> Iterator[tuple[list[int], np.ndarray]]:
        runner, num_items, batch_size = self.runner, self.source.num_items, self.settings.batch_size
        started = time.perf_counter()
        buffers: dict[int, np.ndarray] = {}
        filled: dict[int, int] = {}
        queue_images: list[torch.Tensor] = []
        queue_owner: list[tuple[int, int]] = []  # (sample index, item index) of each queued image
        in_flight: list[tuple[list[tuple[int, int]], torch.Tensor]] = []  # at most one launched batch
        embedded = 0

        def finish_batch(owners: list[tuple[int, int]], launched: torch.Tensor):
            finished = []
            for (sample, item), vector in zip(owners, runner.collect(launched)):
                buffers[sample][item] = vector
                filled[sample] += 1
                if filled[sample] == num_items:
                    finished.append(sample)
                    del filled[sample]
            if finished:
                return finished, np.stack([buffers.pop(sample) for sample in finished])
            return None

        def run_batch(count: int):
            batch = torch.cat(queue_images[:count]) if count > 1 else queue_images[0]
            launched = runner.launch(batch)
            owners = queue_owner[:count]
            del queue_images[:count], queue_owner[:count]
            # Collect the previous batch only now: on a GPU this one is already queued behind it.
            done = finish_batch(*in_flight.pop()) if in_flight else None
            in_flight.append((owners, launched))
            return done

        for index, tensor in loaded:
            buffers[index] = np.empty((num_items, EMBEDDING_DIM), dtype=np.float32)
            filled[index] = 0
            embedded += 1
            for item in range(tensor.shape[0]):
                queue_images.append(tensor[item : item + 1])
                queue_owner.append((index, item))
            while len(queue_images) >= batch_size:
                if (done := run_batch(batch_size)) is not None:
                    yield done
        while queue_images:
            if (done := run_batch(min(batch_size, len(queue_images)))) is not None:
                yield done
        if in_flight and (done := finish_batch(*in_flight.pop())) is not None:
            yield done
        seconds = time.perf_counter() - started
        images = embedded * num_items
        log.info(
            "%s: embedded %d images in %.1f s (%.1f images/s)", self.out, images, seconds, images / max(seconds, 1e-9)
        )


def extract_embeddings(
    *,
    source: ImageSource,
    out: str | Path,
    model: PainFormer,
    modality: str,
    representation: str,
    settings: EmbedSettings = EmbedSettings(),
    force: bool | str = False,
    progress: bool = True,
    complete_marker: str | Path | None = None,
) -> SampleStore:
    """Embed every pending sample of ``source`` into the store at ``out`` and return it."""
    stage = EmbedStage(
        source=source, out=out, model=model, modality=modality, representation=representation, settings=settings
    )
    return fill_store(out, stage, meta=source.meta, force=force, complete_marker=complete_marker, progress=progress)
