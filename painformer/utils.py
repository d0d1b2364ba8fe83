"""Small helpers shared by every stage: device choice, hashing, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def select_device(requested: str = "auto") -> torch.device:  # noqa: F821
    """Return the torch device to run on: ``auto`` picks CUDA when present, else CPU."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
    return device


# The NVIDIA driver's control device: present wherever the driver runs.
NVIDIA_CONTROL_DEVICE = Path("/dev/nvidiactl")


def nvidia_gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU, answered without importing torch (the workflow
    asks while it builds its DAG, in every Snakemake start)."""
    return NVIDIA_CONTROL_DEVICE.exists()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where the kernel reports it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    # Elsewhere the only way to read the umask is to set it; restored at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` on success.

    A crash leaves only the temporary file behind, never a truncated ``final``
    that a later run could take for complete. The result gets the mode any newly created
    file would (0644 under umask 022), not ``mkstemp``'s private 0600, so that a group
    sharing a results folder can read it.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
