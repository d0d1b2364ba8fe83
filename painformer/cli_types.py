"""Argument types shared by the command modules (kept free of heavy imports)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def frame_rate(text: str) -> float:
    """An argparse type for ``--fps``: a positive number of frames per second."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames per second, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive frame rate, got {text}")
    return value
