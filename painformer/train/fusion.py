"""The trainable model of each fusion variant, over the streams built by ``painformer.train.data``.

Every variant returns a list of logits, one entry per classifier, and is
trained on the sum of their cross-entropies; its prediction is the mean of the
classifiers' softmax probabilities.

- ``none``, ``add``, ``concat``: one Embedding-Mixer on the ``"fused"`` stream.
- ``decision``: one Embedding-Mixer per input. The members share no weights
  and each loss term depends on one member only, so training them together on
  the summed loss gives each the gradients of training it alone on the same
  batches; the decision is the average of their probabilities.
- ``video_encoder_concat`` (Eq. 12): ``[signal || VideoEncoder(video)]``
  (160 + 40 = 200 values) into one Embedding-Mixer, trained end to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from painformer.models.mixer import EmbeddingMixer, VideoEncoder


class FusionModel(nn.Module):
    """Stream dict -> list of (B, num_classes) logits; ``predict_proba`` averages their softmax."""

    def __init__(
        self,
        *,
        fusion: str,
        stream_names: tuple[str, ...],
        num_classes: int,
        dropout: float,
        mixer_kwargs: Mapping[str, Any],
        video_encoder_kwargs: Mapping[str, Any],
    ):
        super().__init__()
        self.fusion = fusion
        self.stream_names = tuple(stream_names)
        mixer_kwargs = dict(mixer_kwargs)
        mixer_kwargs["dropout"] = dropout

        def mixer() -> EmbeddingMixer:
            return EmbeddingMixer(num_classes, **mixer_kwargs)

        if fusion == "decision":
            # ModuleDict keys may not contain '/', so members are indexed by position.
            self.members = nn.ModuleList(mixer() for _ in self.stream_names)
        elif fusion == "video_encoder_concat":
            if set(self.stream_names) != {"signal", "video"}:
                raise ValueError(f"video_encoder_concat needs streams 'signal' and 'video', got {self.stream_names}")
            self.video_encoder = VideoEncoder(**dict(video_encoder_kwargs))
            self.mixer = mixer()
        else:
            if self.stream_names != ("fused",):
                raise ValueError(f"fusion {fusion!r} needs the one stream 'fused', got {self.stream_names}")
            self.mixer = mixer()

    @property
    def mixers(self) -> list[EmbeddingMixer]:
        """The Embedding-Mixers in classifier order (one per logits entry)."""
        return list(self.members) if self.fusion == "decision" else [self.mixer]

    def forward(
        self, streams: Mapping[str, torch.Tensor], dropout_scales: list[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Logits of each classifier. ``dropout_scales`` (one (B, output_dim) tensor per Mixer, already
        divided by the keep probability) replaces the Mixers' own dropout: a stacked trainer draws
        them from each fold's generator, outside ``vmap``."""
        if self.fusion == "decision":
            inputs = [streams[name] for name in self.stream_names]
        elif self.fusion == "video_encoder_concat":
            encoded = self.video_encoder(streams["video"])  # (B, 40)
            inputs = [torch.cat([streams["signal"], encoded], dim=1)]  # Mixer on (B, 160 + 40)
        else:
            inputs = [streams["fused"]]
        if dropout_scales is None:
            return [mixer(x) for mixer, x in zip(self.mixers, inputs)]
        return [
            mixer.head(mixer.forward_features(x) * scale)
            for mixer, x, scale in zip(self.mixers, inputs, dropout_scales)
        ]

    @staticmethod
    def probabilities(logits: list[torch.Tensor]) -> torch.Tensor:
        """Mean of the classifiers' softmax probabilities, in float32 (logits from bf16 autocast
        included): (B, num_classes)."""
        return torch.stack([item.float().softmax(dim=-1) for item in logits], dim=0).mean(dim=0)

    def predict_proba(self, streams: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.probabilities(self.forward(streams))


def build_model(
    *,
    fusion: str,
    stream_names: tuple[str, ...],
    num_classes: int,
    dropout: float,
    mixer_kwargs: Mapping[str, Any],
    video_encoder_kwargs: Mapping[str, Any],
) -> FusionModel:
    """The model of one experiment; unknown Mixer/Video-Encoder keywords raise ``TypeError`` naming them."""
    return FusionModel(
        fusion=fusion,
        stream_names=stream_names,
        num_classes=num_classes,
        dropout=dropout,
        mixer_kwargs=mixer_kwargs,
        video_encoder_kwargs=video_encoder_kwargs,
    )
