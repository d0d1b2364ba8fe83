"""Paired RGB/thermal face images: discovery, loading, and the held-out split.

Two layouts are accepted (see docs/thermal.md):

* folders: ``DIR/rgb/<name>.<ext>`` and ``DIR/thermal/<name>.<ext>`` with equal
  ``<name>`` (the extension may differ);
* flat, suffixed: ``DIR/<name>_rgb.<ext>`` beside ``DIR/<name>_thr.<ext>`` (or
  ``<name>_thermal.<ext>``), as paired frames exported from SpeakingFaces-like
  recordings usually are.

A pair whose partner is missing or whose image cannot be decoded is an
``InputError`` naming the file, never a silently smaller training set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from painformer.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
RGB_SUFFIX = "_rgb"
THERMAL_SUFFIXES = ("_thr", "_thermal")


@dataclass(frozen=True)
class ImagePair:
    name: str
    rgb: Path
    thermal: Path


def _images_in(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            if path.stem in found:
                raise InputError(f"{path}: two images named {path.stem!r} in {folder} ({found[path.stem].name})")
            found[path.stem] = path
    return found


def _report_unpaired(missing: list[str], where: str) -> None:
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InputError(f"{', '.join(missing[:10])}{more}: no partner image in {where}")


def find_pairs(pairs_dir: str | Path) -> list[ImagePair]:
    """All pairs under ``pairs_dir``, sorted by name (layouts in the module doc)."""
    root = Path(pairs_dir)
    if not root.is_dir():
        raise InputError(f"{root}: paired image folder does not exist")
    rgb_dir, thermal_dir = root / "rgb", root / "thermal"
    if rgb_dir.is_dir() or thermal_dir.is_dir():
        if not (rgb_dir.is_dir() and thermal_dir.is_dir()):
            raise InputError(f"{root}: expected both rgb/ and thermal/ sub-folders")
        rgb, thermal = _images_in(rgb_dir), _images_in(thermal_dir)
        _report_unpaired([str(rgb[n]) for n in sorted(set(rgb) - set(thermal))], str(thermal_dir))
        _report_unpaired([str(thermal[n]) for n in sorted(set(thermal) - set(rgb))], str(rgb_dir))
        pairs = [ImagePair(name=n, rgb=rgb[n], thermal=thermal[n]) for n in sorted(rgb)]
    else:
        rgb, thermal = {}, {}
        for stem, path in _images_in(root).items():
            if stem.endswith(RGB_SUFFIX):
                rgb[stem[: -len(RGB_SUFFIX)]] = path
            for suffix in THERMAL_SUFFIXES:
                if stem.endswith(suffix):
                    thermal[stem[: -len(suffix)]] = path
        _report_unpaired([str(rgb[n]) for n in sorted(set(rgb) - set(thermal))], f"{root} (*_thr / *_thermal)")
        _report_unpaired([str(thermal[n]) for n in sorted(set(thermal) - set(rgb))], f"{root} (*_rgb)")
        pairs = [ImagePair(name=n, rgb=rgb[n], thermal=thermal[n]) for n in sorted(rgb)]
    if not pairs:
        raise InputError(
            f"{root}: no image pairs found (expected rgb/<name>.png + thermal/<name>.png, "
            "or <name>_rgb.png + <name>_thr.png)"
        )
    return pairs


def read_rgb_image(path: str | Path, *, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB; grey images are replicated to three channels."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # always 3-channel BGR, 8-bit
    if image is None:
        raise InputError(f"{path}: cannot read the image (missing, empty or not an image)")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.shape[:2] != (size, size):
        shrink = image.shape[0] > size or image.shape[1] > size
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image


def load_pairs(pairs: list[ImagePair], *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack every pair into uint8 arrays (N, size, size, 3): (rgb, thermal)."""
    rgb = np.stack([read_rgb_image(p.rgb, size=size) for p in pairs])
    thermal = np.stack([read_rgb_image(p.thermal, size=size) for p in pairs])
    return rgb, thermal


def holdout_names(names: list[str], *, fraction: float, seed: int) -> list[str]:
    """The held-out pair names: a fixed function of the sorted names, the fraction and the seed.

    Each name is ranked by a hash of (seed, name), so the split of a pair does
    not change when unrelated pairs are added to the folder.
    """
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"holdout fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0 or len(names) < 2:
        return []
    count = min(len(names) - 1, max(1, round(fraction * len(names))))
    ranked = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    return sorted(ranked[:count])


def pairs_fingerprint(pairs: list[ImagePair]) -> str:
    """Hash of the pair names and file sizes: a training state made on other data is not resumed."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(f"{pair.name}\0{pair.rgb.stat().st_size}\0{pair.thermal.stat().st_size}\n".encode())
    return digest.hexdigest()
