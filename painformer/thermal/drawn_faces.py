"""Drawn face pairs: a small RGB/thermal data set with a learnable mapping, made on the spot.

Used by the tests and the benchmark when no recorded pairs are at hand. Each
pair is a cartoon face (skin, hair, eyes, mouth) on a coloured background and
its thermal rendering (INFERNO colour map): warm skin, hot eyes and mouth,
cool hair and background. Skin tone, lighting and background colour vary
without changing the thermal image, so a generator must learn the face's
parts rather than copy brightness - which is why ``rgb_to_grey`` is a poor
baseline on it, as on real faces.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def draw_face_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB face drawing and its thermal image: warm skin, hot eyes and mouth, cool hair and background.

    Skin tone, lighting and background colour vary but do not change the thermal
    image, so a generator has to learn the face's parts, not copy brightness.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    cx, cy = 0.5 + rng.uniform(-0.08, 0.08), 0.55 + rng.uniform(-0.06, 0.06)
    ax, ay = rng.uniform(0.26, 0.33), rng.uniform(0.33, 0.40)
    face = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0
    hair = (((xx - cx) / (ax * 1.08)) ** 2 + ((yy - cy + 0.06) / (ay * 1.05)) ** 2 <= 1.0) & (yy < cy - ay * 0.45)
    eyes = np.zeros_like(face)
    for side in (-1, 1):
        eyes |= ((xx - cx - side * ax * 0.42) / 0.06) ** 2 + ((yy - cy + ay * 0.18) / 0.03) ** 2 <= 1.0
    mouth_open = rng.uniform(0.015, 0.05)
    mouth = ((xx - cx) / 0.12) ** 2 + ((yy - cy - ay * 0.5) / mouth_open) ** 2 <= 1.0

    background = rng.uniform(0.2, 0.9, size=3)
    skin = np.array([0.95, 0.75, 0.6]) * rng.uniform(0.55, 1.0) + rng.uniform(-0.05, 0.05, size=3)
    rgb = np.broadcast_to(background, (size, size, 3)).copy()
    rgb[face] = skin
    rgb[hair] = rng.uniform(0.05, 0.35) * np.array([1.0, 0.8, 0.6])
    rgb[eyes] = (0.95, 0.95, 0.95)
    rgb[mouth] = (0.7, 0.15, 0.2)
    light = 0.8 + 0.4 * (rng.uniform(0.3, 0.7) * xx + (1 - rng.uniform(0.3, 0.7)) * (1 - yy))
    rgb = np.clip(rgb * light[..., None], 0, 1)

    temperature = np.full((size, size), 0.12)
    temperature[face] = 0.62 + 0.1 * (1 - np.hypot(xx - cx, yy - cy)[face] / ay)
    temperature[hair] = 0.3
    temperature[eyes] = 0.92
    temperature[mouth] = 0.85
    temperature = cv2.GaussianBlur(temperature, (0, 0), sigmaX=size / 64)
    thermal = cv2.applyColorMap(np.uint8(np.clip(temperature, 0, 1) * 255), cv2.COLORMAP_INFERNO)
    return np.uint8(rgb * 255), cv2.cvtColor(thermal, cv2.COLOR_BGR2RGB)


def make_face_pairs(root: Path, *, count: int, size: int = 64, seed: int = 0) -> Path:
    """rgb/<name>.png and thermal/<name>.png for ``count`` synthetic faces."""
    rng = np.random.default_rng(seed)
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "thermal").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rgb, thermal = draw_face_pair(rng, size)
        cv2.imwrite(str(root / "rgb" / f"face_{index:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "thermal" / f"face_{index:03d}.png"), cv2.cvtColor(thermal, cv2.COLOR_RGB2BGR))
    return root
