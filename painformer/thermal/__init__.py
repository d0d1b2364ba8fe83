"""Synthetic thermal video: a pix2pix-family cGAN translating RGB face frames to thermal."""

from painformer.thermal.apply import ApplySettings, apply_generator, translate_frames
from painformer.thermal.discriminator import PatchConfig, PatchDiscriminator
from painformer.thermal.evaluate import Evaluation, evaluate_generator
from painformer.thermal.generator import UNetConfig, UNetGenerator
from painformer.thermal.pairs import find_pairs, holdout_names
from painformer.thermal.train import TrainSettings, load_generator, train_generator

__all__ = [
    "ApplySettings",
    "Evaluation",
    "PatchConfig",
    "PatchDiscriminator",
    "TrainSettings",
    "UNetConfig",
    "UNetGenerator",
    "apply_generator",
    "evaluate_generator",
    "find_pairs",
    "holdout_names",
    "load_generator",
    "train_generator",
    "translate_frames",
]
