"""The multi-task pretraining model: backbone, one auxiliary classifier per task, loss weights.

Paper III-D: "Each classifier is a compact, single-layer, fully connected
network with an ELU activation". An ELU on the logits themselves would bound
them below by -1, so the classifier here is the hidden fully connected layer
with its ELU, followed by the linear read-out to the task's classes:
``Linear(160 -> head_hidden) -> ELU -> Linear(head_hidden -> num_classes)``.

Eq. (10) combines the task losses with one learned scalar ``w_i`` per task:
``L_total = sum_i [exp(w_i) * L_i + w_i]`` (``loss_weighting: paper``). Its
gradient in ``w_i`` is ``exp(w_i) * L_i + 1 > 0``, so the objective has no
minimum in ``w_i``: every ``w_i`` keeps decreasing (by about the learning rate
per Adam step) and the tasks with larger losses lose their weight more slowly.
``loss_weighting: uncertainty`` offers the homoscedastic-uncertainty form
``exp(-w_i) * L_i + w_i`` instead, whose optimum ``w_i = log L_i`` is finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from painformer.models.painformer import EMBEDDING_DIM, PainFormer


class AuxiliaryClassifier(nn.Module):
    """Task head on the 160-d embedding: Linear -> ELU -> Linear."""

    def __init__(self, *, in_features: int = EMBEDDING_DIM, hidden: int, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.act = nn.ELU()
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(embedding)))


class MultiTaskModel(nn.Module):
    """PainFormer plus per-task classifiers and the per-task loss weights ``w_i``."""

    def __init__(
        self,
        *,
        task_names: Sequence[str],
        num_classes: Sequence[int],
        head_hidden: int,
        drop_path_rate: float,
    ):
        super().__init__()
        self.task_names = tuple(task_names)
        self.backbone = PainFormer(drop_path_rate=drop_path_rate)
        self.heads = nn.ModuleDict(
            {name: AuxiliaryClassifier(hidden=head_hidden, num_classes=n) for name, n in zip(task_names, num_classes)}
        )
        self.task_weights = nn.Parameter(torch.zeros(len(self.task_names)))

    def forward(self, images: torch.Tensor, counts: Sequence[int]) -> list[torch.Tensor]:
        """Images grouped by task (``counts[i]`` consecutive images of task i) -> logits per task.

        All tasks share one backbone pass, so BatchNorm in the stem sees the mixed batch.
        """
        embeddings = self.backbone.embed(images)  # (B, 160)
        parts = torch.split(embeddings, list(counts), dim=0)
        return [self.heads[name](part) for name, part in zip(self.task_names, parts)]


def weighted_total_loss(task_losses: torch.Tensor, task_weights: torch.Tensor, *, weighting: str) -> torch.Tensor:
    """Eq. (10) (``paper``) or its uncertainty form; ``task_losses`` and ``task_weights`` are (T,)."""
    if weighting == "paper":
        return (torch.exp(task_weights) * task_losses + task_weights).sum()
    if weighting == "uncertainty":
        return (torch.exp(-task_weights) * task_losses + task_weights).sum()
    raise ValueError(f"unknown loss weighting {weighting!r}")


def task_losses_and_hits(
    logits: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], *, label_smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task mean cross-entropy (with label smoothing) and per-task correct counts, both (T,)."""
    losses = torch.stack([F.cross_entropy(lg, lb, label_smoothing=label_smoothing) for lg, lb in zip(logits, labels)])
    hits = torch.stack([(lg.argmax(dim=1) == lb).sum() for lg, lb in zip(logits, labels)])
    return losses, hits
