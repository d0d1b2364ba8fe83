"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest
from tree_helpers import write_test_video


@pytest.fixture(scope="session")
def video_file(tmp_path_factory) -> Path:
    """A real H.264 mp4 (10 frames, 64x64) that decord decodes; copied wherever a video is needed."""
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4")
