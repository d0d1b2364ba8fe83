"""Which samples and images an attention sheet shows, and the sheet itself.

A workflow needs one output file of fixed name per modality, whatever the
number of samples and frames: ``contact_sheet`` lays the panels of several
samples out as one picture (a row per sample, a column per image).
``pick_samples`` chooses the samples without the caller naming them, so a
rule needs no knowledge of the sample table: one sample of each class from
the same subject first, which puts a no-pain and a pain sample side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from painformer.errors import InputError

LABEL_HEIGHT = 14  # pixels of the caption strip above each row


def pick_samples(table: pd.DataFrame, count: int) -> list[str]:
    """``count`` sample names: per subject (table order), its first unused sample of each class (class_id order).

    Deterministic for a given table; raises InputError when the table has fewer samples.
    """
    if count < 1:
        raise InputError(f"cannot pick {count} samples: need at least one")
    if len(table) < count:
        raise InputError(f"cannot pick {count} samples: the sample table has {len(table)}")
    classes = sorted(table["class_id"].unique())
    chosen: list[str] = []
    used: set[str] = set()
    while len(chosen) < count:
        added = False
        for _, rows in table.groupby("subject", sort=False):
            for class_id in classes:
                candidates = [s for s in rows.loc[rows["class_id"] == class_id, "sample"].astype(str) if s not in used]
                if candidates and len(chosen) < count:
                    chosen.append(candidates[0])
                    used.add(candidates[0])
                    added = True
        if not added:  # unreachable with len(table) >= count; guards against an endless loop
            break
    return chosen


def spread_items(n_items: int, limit: int | None) -> list[int]:
    """At most ``limit`` item indices spread evenly over ``n_items`` (all of them without a limit)."""
    if limit is None or limit >= n_items:
        return list(range(n_items))
    if limit < 1:
        raise InputError(f"--max-items {limit}: need at least one image per sample")
    return sorted({int(round(position)) for position in np.linspace(0, n_items - 1, limit)})


def _caption(width: int, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, LABEL_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(strip).text((3, 1), text, fill=(0, 0, 0))
    return np.asarray(strip)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str]) -> np.ndarray:
    """One uint8 picture: per row a caption strip, then that row's panels side by side.

    Rows with fewer panels than the widest are padded with white so the sheet stays rectangular.
    """
    if not rows or len(rows) != len(labels):
        raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
    lines = [np.concatenate(list(panels), axis=1) for panels in rows]
    height = {line.shape[0] for line in lines}
    if len(height) != 1:
        raise ValueError(f"panels of different heights {sorted(height)}")
    width = max(line.shape[1] for line in lines)
    stacked = []
    for line, label in zip(lines, labels):
        padded = np.full((line.shape[0], width, 3), 255, dtype=np.uint8)
        padded[:, : line.shape[1]] = line
        stacked += [_caption(width, label), padded]
    return np.concatenate(stacked, axis=0)
