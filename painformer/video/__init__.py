"""Video decoding (decord or PyAV): evenly spaced frames, centre or face crop, 224x224 uint8 RGB."""

from painformer.video.decoders import DECODERS, VideoError, open_video, resolve_decoder
from painformer.video.frames import (
    CROPS,
    DATASET_FPS,
    FramePlan,
    FrameSampling,
    SquareBox,
    center_square,
    choose_box,
    count_frames,
    crop_and_resize,
    decode_frames,
    decode_planned,
    read_frames,
)

__all__ = [
    "CROPS",
    "DECODERS",
    "VideoError",
    "open_video",
    "resolve_decoder",
    "DATASET_FPS",
    "FramePlan",
    "FrameSampling",
    "SquareBox",
    "center_square",
    "choose_box",
    "count_frames",
    "crop_and_resize",
    "decode_frames",
    "decode_planned",
    "read_frames",
]
