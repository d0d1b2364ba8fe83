"""Multi-task pretraining of the PainFormer backbone (paper III-D/E, Eq. 10, Tables III-IV)."""

from painformer.pretrain.config import (
    AugmentSettings,
    PretrainConfig,
    PretrainSettings,
    TaskSpec,
    load_pretrain_config,
    parse_pretrain_config,
)
from painformer.pretrain.data import ProportionalBatches, batch_quotas, open_task
from painformer.pretrain.model import AuxiliaryClassifier, MultiTaskModel, weighted_total_loss
from painformer.pretrain.train import pretrain, read_log

__all__ = [
    "AugmentSettings",
    "AuxiliaryClassifier",
    "MultiTaskModel",
    "PretrainConfig",
    "PretrainSettings",
    "ProportionalBatches",
    "TaskSpec",
    "batch_quotas",
    "load_pretrain_config",
    "open_task",
    "parse_pretrain_config",
    "pretrain",
    "read_log",
    "weighted_total_loss",
]
