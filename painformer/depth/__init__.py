"""Estimated depth video: Depth Anything (transformers) from a local model directory."""

from painformer.depth.estimate import (
    depth_to_uint8,
    estimate_depth,
    predict_depth,
    preprocess_frames,
)
from painformer.depth.model import (
    describe_model_dir,
    load_depth_model,
    make_tiny_depth_model,
)

__all__ = [
    "depth_to_uint8",
    "describe_model_dir",
    "estimate_depth",
    "load_depth_model",
    "make_tiny_depth_model",
    "predict_depth",
    "preprocess_frames",
]
