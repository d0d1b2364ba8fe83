"""Several folds of one experiment trained together as one stacked model.

The folds' models are stacked (``torch.func.stack_module_state``) and run as one
``vmap(functional_call)``: each step is one forward and one backward for all
folds, and one optimiser (:class:`MaskedAdamW`) updates the stacked parameters.

Each fold gets the update it would get alone (``painformer.train.loop``):

- its weights come from its own fold seed, exactly as a one-fold run builds them;
- every random draw comes from the fold's own generators, drawn outside ``vmap``
  and passed in: the batch order (CPU generator), the Basic/Masking draws
  (generator on the device) and the dropout masks before the classifier
  (generator on the device, started from the global generator's state after
  the fold's model was built, i.e. where a one-fold run's ``nn.Dropout`` draws
  from). So fold k's draws do not depend on which folds share the job, and on
  the CPU the masks are bit-identical to a one-fold run's;
- folds of unequal size: steps run until the largest fold's epoch ends; a fold
  whose epoch has ended sits the remaining steps out entirely: its loss is
  masked and its parameters, moments and step count are left as they are;
- losses are means over each fold's real samples (short batches are padded
  with weight-0 rows, which the per-sample model keeps apart from the rest).

Not stackable, so trained one after another in the same process
(:func:`stack_problem`): attention dropout (``attn_dropout > 0``) draws inside
``scaled_dot_product_attention``, where per-fold generators cannot reach.

Cost: on the CPU, ``vmap`` has no batching rule for the fused CPU attention
kernel and runs it once per fold (torch warns about it); the rest of the model
is batched. Memory: the experiment's samples are on the device once, each fold
keeps index arrays into them plus its parameters, gradients and two moments.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from painformer.train.augment import StreamDraws, apply_augmentations, draw_augmentations
from painformer.train.config import Experiment
from painformer.train.data import ExperimentData, fit_normalizer, split_fold
from painformer.train.fusion import FusionModel
from painformer.train.loop import (
    FoldResult,
    _to_device,
    autocast,
    build_experiment_model,
    epoch_lr,
    fold_seed,
    predict_probabilities,
    train_fold,
)
from painformer.utils import seed_everything

LOG = logging.getLogger(__name__)
BETAS = (0.9, 0.999)  # torch's AdamW defaults, as the one-fold path uses them
EPS = 1e-8


def stack_problem(experiment: Experiment) -> str | None:
    """Why the experiment's folds cannot be stacked, or None."""
    for key, values in (("model", experiment.model), ("video_encoder", experiment.video_encoder)):
        if float(values.get("attn_dropout", 0.0) or 0.0) > 0.0:
            return (
                f"key {key!r} sets attn_dropout > 0, drawn inside the attention kernel where each fold's "
                "own generator cannot be passed in"
            )
    return None


def train_folds(
    experiment: Experiment,
    folds: list[str],
    data: ExperimentData,
    *,
    device: torch.device,
    compile: bool = False,
):
    """Train ``folds`` of the experiment in this process, yielding each fold's FoldResult in order.

    One fold runs the one-fold path; several are stacked unless :func:`stack_problem` says why not,
    then they run one after another.
    """
    if len(folds) == 1:
        yield train_fold(experiment, folds[0], data, device=device)
        return
    problem = stack_problem(experiment)
    if problem:
        LOG.warning("%s: training %d folds one after another, not stacked: %s", experiment.name, len(folds), problem)
        for fold in folds:
            yield train_fold(experiment, fold, data, device=device)
        return
    yield from train_stacked(experiment, folds, data, device=device, compile=compile)


class MaskedAdamW:
    """AdamW (decoupled weight decay, bias-corrected moments) over stacked (K, ...) parameters with a step
    count per fold: ``step(lr, active)`` updates only the folds marked active, leaving the parameters,
    moments and step count of the others untouched. Multi-tensor (``torch._foreach_*``) arithmetic."""

    def __init__(self, params: list[torch.Tensor], *, weight_decay: float, folds: int):
        self.params = params
        self.weight_decay = weight_decay
        device = params[0].device
        self.steps = torch.zeros(folds, dtype=torch.float64, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _per_fold(self, values: torch.Tensor) -> list[torch.Tensor]:
        """(K,) -> one (K, 1, ...) view per parameter, in the parameter's dtype."""
        return [values.to(p.dtype).view(-1, *([1] * (p.ndim - 1))) for p in self.params]

    @torch.no_grad()
    def step(self, lr: float, active: list[bool], active_mask: torch.Tensor | None) -> None:
        """One update; ``active`` (host list) says which folds step, ``active_mask`` is the same on the device
        (None when all are active)."""
        beta1, beta2 = BETAS
        params = self.params
        grads = [p.grad for p in params]
        if all(active):
            self.steps += 1
        else:
            self.steps += active_mask.to(self.steps.dtype)
        steps = self.steps.clamp(min=1)  # a fold that never stepped yet is masked below
        bias1 = self._per_fold(1 - beta1**steps)
        bias2_sqrt = self._per_fold((1 - beta2**steps).sqrt())

        new_avg = torch._foreach_lerp(self.exp_avg, grads, 1 - beta1)
        new_avg_sq = torch._foreach_mul(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(new_avg_sq, grads, grads, value=1 - beta2)
        new_params = torch._foreach_mul(params, 1 - lr * self.weight_decay)
        denom = torch._foreach_sqrt(new_avg_sq)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, EPS)
        update = torch._foreach_div(new_avg, denom)
        torch._foreach_div_(update, bias1)
        torch._foreach_mul_(update, -lr)
        torch._foreach_add_(new_params, update)

        if all(active):
            torch._foreach_copy_(params, new_params)
            torch._foreach_copy_(self.exp_avg, new_avg)
            torch._foreach_copy_(self.exp_avg_sq, new_avg_sq)
            return
        keep = self._per_fold(active_mask)
        for targets, values in ((params, new_params), (self.exp_avg, new_avg), (self.exp_avg_sq, new_avg_sq)):
            for target, value, mask in zip(targets, values, keep):
                target.copy_(torch.where(mask.bool(), value, target))


def _pad_rows(values: torch.Tensor, rows: int, fill) -> torch.Tensor:
    """(b, ...) -> (rows, ...), the extra rows set to ``fill``."""
    if values.shape[0] == rows:
        return values
    pad = torch.full((rows - values.shape[0], *values.shape[1:]), fill, dtype=values.dtype, device=values.device)
    return torch.cat([values, pad], dim=0)


def _dropout_scale(rows: int, width: int, batch_size: int, keep: float, generator, device) -> torch.Tensor:
    """(batch_size, width) inverted-dropout factors for a fold's ``rows`` real samples (the draws of
    ``nn.Dropout``: Bernoulli(keep) / keep); padding rows and a fold without a batch draw nothing."""
    if rows == 0:
        return torch.ones(batch_size, width, device=device)
    scale = torch.empty(rows, width, device=device).bernoulli_(keep, generator=generator).div_(keep)
    return _pad_rows(scale, batch_size, 1.0)


def _stack_draws(per_fold: list[dict[str, StreamDraws] | None], rows: int, dims: dict[str, int], device):
    """Each fold's augmentation draws (None for a fold without a batch) padded and stacked: (K, rows, ...)."""
    stacked = {}
    for name, dim in dims.items():
        fields = {}
        for field, fill, shape, dtype in (
            ("inverted", False, (rows,), torch.bool),
            ("noise", 0.0, (rows, dim), torch.float32),
            ("masked", False, (rows, dim), torch.bool),
        ):
            present = [d[name] for d in per_fold if d is not None]
            if not present or getattr(present[0], field) is None:
                fields[field] = None
                continue
            fields[field] = torch.stack(
                [
                    _pad_rows(getattr(d[name], field), rows, fill)
                    if d is not None
                    else torch.full(shape, fill, dtype=dtype, device=device)
                    for d in per_fold
                ]
            )
        stacked[name] = StreamDraws(**fields)
    return stacked


def _to_device_async(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on the device without waiting: pinned and non-blocking on CUDA."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class StackedTrainer:
    """The folds of one experiment as one stacked model: set up, ``run_epoch`` per epoch, then ``results``.

    Nothing in ``run_epoch`` waits for the device: the epoch's sample order goes up in one
    non-blocking copy, every other number of a step is made on the device, and the epoch's loss
    and correct count stay there until ``results`` reads them all.
    """

    def __init__(
        self,
        experiment: Experiment,
        folds: list[str],
        data: ExperimentData,
        *,
        device: torch.device,
        compile: bool = False,
    ):
        preset = experiment.preset
        self.experiment, self.folds, self.data, self.device = experiment, list(folds), data, device
        self.preset = preset
        self.count = count = len(folds)
        self.splits = [split_fold(experiment, fold, data) for fold in folds]  # every fold checked before training
        self.streams = _to_device(data.streams, device)  # the experiment's samples, once
        self.labels = torch.from_numpy(data.labels).to(device)
        self.dims = {name: values.shape[1] for name, values in data.streams.items()}

        self.normalizers, self.models, self.seeds = [], [], []
        self.order_generators, self.augment_generators, self.dropout_generators = [], [], []
        for fold, (train_idx, _) in zip(folds, self.splits):
            self.normalizers.append(
                fit_normalizer(preset.normalize, {n: v[train_idx] for n, v in data.streams.items()})
            )
            seed = fold_seed(experiment, fold)
            self.seeds.append(seed)
            seed_everything(seed)
            model = build_experiment_model(experiment, data, device=device)
            self.models.append(model)
            # Where a one-fold run's dropout draws from: the global generator, just after the model was built.
            dropout_generator = torch.Generator(device=device)
            dropout_generator.set_state(
                torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
            )
            self.dropout_generators.append(dropout_generator)
            self.order_generators.append(torch.Generator().manual_seed(seed + 1))
            self.augment_generators.append(torch.Generator(device=device).manual_seed(seed + 2))

        dims = self.dims
        self.means = {n: torch.stack([torch.from_numpy(z.means[n]) for z in self.normalizers]) for n in dims}
        self.stds = {n: torch.stack([torch.from_numpy(z.stds[n]) for z in self.normalizers]) for n in dims}
        self.means = {n: v.to(device)[:, None, :] for n, v in self.means.items()}  # (K, 1, D)
        self.stds = {n: v.to(device)[:, None, :] for n, v in self.stds.items()}
        self.params, self.buffers = stack_module_state(self.models)
        self.optimizer = MaskedAdamW(list(self.params.values()), weight_decay=preset.weight_decay, folds=count)
        base = copy.deepcopy(self.models[0]).to("meta")
        base.train()
        self.heads = [mixer.head.in_features for mixer in self.models[0].mixers]
        self.keep = 1.0 - preset.dropout
        self.with_scales = preset.dropout > 0.0

        def fold_loss(fold_params, fold_buffers, batch, batch_labels, weights, scales):
            logits = functional_call(base, (fold_params, fold_buffers), (batch, scales))
            logits = [item.float() for item in logits]
            per_sample = sum(
                F.cross_entropy(item, batch_labels, label_smoothing=preset.label_smoothing, reduction="none")
                for item in logits
            )
            loss = (per_sample * weights).sum() / weights.sum().clamp(min=1.0)
            correct = ((FusionModel.probabilities(logits).argmax(dim=1) == batch_labels) & (weights > 0)).sum()
            return loss, correct

        self.stacked_loss = vmap(fold_loss, in_dims=(0, 0, 0, 0, 0, 0 if self.with_scales else None))
        if compile and device.type == "cuda":
            self.stacked_loss = torch.compile(self.stacked_loss)
        self.sizes = [int(train_idx.size) for train_idx, _ in self.splits]
        self.steps = max(math.ceil(size / preset.batch_size) for size in self.sizes)
        self.sums: list[tuple[float, torch.Tensor, torch.Tensor]] = []
        self.seconds = 0.0

    def run_epoch(self, epoch: int, *, max_steps: int | None = None) -> None:
        """One epoch of every fold; ``max_steps`` stops it early (benchmarks time a few steps)."""
        preset, device, count, dims = self.preset, self.device, self.count, self.dims
        batch_size = preset.batch_size
        started = time.perf_counter()
        lr = epoch_lr(preset, epoch)
        # The epoch's order of every fold, as sample indices padded to a common length: one copy.
        width = self.steps * batch_size
        order = np.zeros((count, width), dtype=np.int64)
        valid = np.zeros((count, width), dtype=np.float32)
        for k, ((train_idx, _), generator) in enumerate(zip(self.splits, self.order_generators)):
            permutation = torch.randperm(self.sizes[k], generator=generator).numpy()
            order[k, : self.sizes[k]] = train_idx[permutation]
            valid[k, : self.sizes[k]] = 1.0
        order_device = _to_device_async(order, device)
        valid_device = _to_device_async(valid, device)
        active_device = _to_device_async(np.ascontiguousarray(valid[:, ::batch_size].T), device)  # (steps, K)
        total_loss = torch.zeros(count, dtype=torch.float64, device=device)
        correct = torch.zeros(count, dtype=torch.int64, device=device)
        with warnings.catch_warnings():
            # vmap's note that the CPU attention kernel runs once per fold (see the module docstring).
            warnings.filterwarnings("ignore", message=".*batching rule.*scaled_dot_product.*")
            for step in range(self.steps if max_steps is None else min(max_steps, self.steps)):
                window = slice(step * batch_size, (step + 1) * batch_size)
                rows = [max(0, min(batch_size, size - step * batch_size)) for size in self.sizes]
                index = order_device[:, window]  # (K, B)
                weights = valid_device[:, window]
                batch = {name: values[index] for name, values in self.streams.items()}  # (K, B, D)
                draws = [
                    draw_augmentations(
                        rows[k],
                        dims,
                        basic_p=preset.basic_p,
                        noise_std=preset.noise_std,
                        masking_p=preset.masking_p,
                        mask_range=preset.mask_range,
                        generator=self.augment_generators[k],
                    )
                    if rows[k]
                    else None
                    for k in range(count)
                ]
                batch = apply_augmentations(batch, _stack_draws(draws, batch_size, dims, device))
                batch = {name: (values - self.means[name]) / self.stds[name] for name, values in batch.items()}
                scales = None
                if self.with_scales:
                    scales = [
                        torch.stack(
                            [
                                _dropout_scale(rows[k], head, batch_size, self.keep, self.dropout_generators[k], device)
                                for k in range(count)
                            ]
                        )
                        for head in self.heads
                    ]
                with autocast(device):
                    loss, hits = self.stacked_loss(
                        self.params, self.buffers, batch, self.labels[index], weights, scales
                    )
                self.optimizer.zero_grad()
                loss.sum().backward()
                active = [r > 0 for r in rows]
                self.optimizer.step(lr, active, None if all(active) else active_device[step])
                with torch.no_grad():
                    total_loss += loss.detach().double() * weights.sum(dim=1).double()
                    correct += hits
        self.sums.append((lr, total_loss, correct))
        self.seconds += time.perf_counter() - started

    def train(self) -> None:
        for epoch in range(len(self.sums), self.preset.epochs):
            self.run_epoch(epoch)

    def results(self):
        """Each fold's FoldResult, in fold order: the trained weights copied back into the fold's model,
        its history (the device is read here, once) and its test probabilities."""
        history = [[] for _ in self.folds]
        for epoch, (lr, total_loss, correct) in enumerate(self.sums):
            losses, hits = total_loss.tolist(), correct.tolist()
            for k, size in enumerate(self.sizes):
                history[k].append(
                    {"epoch": epoch + 1, "lr": lr, "train_loss": losses[k] / size, "train_accuracy": hits[k] / size}
                )
        for k, fold in enumerate(self.folds):
            model = self.models[k]
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    parameter.copy_(self.params[name][k])
                for name, buffer in model.named_buffers():
                    buffer.copy_(self.buffers[name][k])
            test = self.data.subset(self.splits[k][1])
            yield FoldResult(
                experiment=self.experiment,
                fold=fold,
                seed=self.seeds[k],
                device=str(self.device),
                classes=self.data.classes,
                n_train=self.sizes[k],
                test_samples=test.samples,
                test_subjects=test.subjects,
                test_labels=test.labels,
                probabilities=predict_probabilities(
                    model, _to_device(self.normalizers[k].apply(test.streams), self.device)
                ),
                history=history[k],
                train_seconds=self.seconds / self.count,  # the stacked run's time, shared out
                model=model,
                normalizer=self.normalizers[k],
            )


def train_stacked(
    experiment: Experiment,
    folds: list[str],
    data: ExperimentData,
    *,
    device: torch.device,
    compile: bool = False,
):
    """Train the folds as one stacked model; yield each fold's FoldResult (in ``folds`` order)."""
    trainer = StackedTrainer(experiment, folds, data, device=device, compile=compile)
    trainer.train()
    yield from trainer.results()
