"""Names of the embedding stores, ``<modality>/<representation>``, shared by extraction and training.

The names themselves live in :mod:`painformer.names`; this module keeps the embedding
stage's view of them (and stays free of heavy imports: the workflow reads them through the
experiment config on every dry run).
"""

from __future__ import annotations

from painformer.names import (
    MODALITIES,
    REPRESENTATIONS,
    SIGNAL_MODALITIES,
    SIGNAL_REPRESENTATIONS,
    VIDEO_MODALITIES,
    input_problem,
)

__all__ = [
    "MODALITIES",
    "REPRESENTATIONS",
    "SIGNAL_MODALITIES",
    "SIGNAL_REPRESENTATIONS",
    "VIDEO_MODALITIES",
    "input_problem",
]
