"""From embedding stores and a sample table to the arrays one fold trains and tests on.

Only the stores an experiment names are opened, and from them only the task's
samples are read, in blocks, each block aggregated at once: a BioVid video
store holds 8,700 x 138 x 160 floats, of which NP vs P4 needs 40 %, and the
``sum``/``mean`` aggregations shrink a block 138-fold before the next is read.

Model inputs are *streams*, named 2-D float32 arrays (samples x features):

- ``none``, ``add``, ``concat``: one stream ``"fused"`` (the single input, the
  inputs' sum (Eq. 14) or their concatenation);
- ``decision``: one stream per input, named after it (one Mixer each);
- ``video_encoder_concat`` (Eq. 12): ``"signal"`` (the non-video embedding)
  and ``"video"`` (the sum of the video inputs' frame-concatenated vectors,
  the Video-Encoder's input).

Normalisation (``normalize: standard``) is per stream and per feature, with
statistics of the training samples only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painformer.embed.aggregate import aggregate
from painformer.errors import InputError, StoreError
from painformer.train.config import Experiment, is_video_input

# Samples read from a store per block; bounds memory at ~ block x items x 160 floats.
READ_BLOCK = 256
# A feature whose training standard deviation is below this is only centred.
MIN_STD = 1e-6


@dataclass(frozen=True)
class ExperimentData:
    """Every task sample of an experiment: identity, label, split and model streams."""

    samples: np.ndarray  # (N,) str
    subjects: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) int64, index into ``classes``
    splits: np.ndarray  # (N,) str, "" where the dataset has no official split
    classes: tuple[str, ...]
    streams: dict[str, np.ndarray]  # name -> (N, D) float32

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def subset(self, indices: np.ndarray) -> ExperimentData:
        return ExperimentData(
            samples=self.samples[indices],
            subjects=self.subjects[indices],
            labels=self.labels[indices],
            splits=self.splits[indices],
            classes=self.classes,
            streams={name: values[indices] for name, values in self.streams.items()},
        )


def store_path(embeddings_dir: str | Path, input_name: str) -> Path:
    """``DIR/<modality>/<representation>.zarr``."""
    modality, representation = input_name.split("/")
    return Path(embeddings_dir) / modality / f"{representation}.zarr"


def select_task_rows(experiment: Experiment, table: pd.DataFrame) -> pd.DataFrame:
    """The table rows whose class belongs to the experiment's task, in table order."""
    for column in ("sample", "subject", "class_name", "split"):
        if column not in table.columns:
            raise InputError(f"sample table lacks the column {column!r} (experiment {experiment.name!r})")
    rows = table[table["class_name"].isin(experiment.classes)].reset_index(drop=True)
    if rows.empty:
        raise InputError(
            f"experiment {experiment.name!r}: the sample table has no samples of the task "
            f"{experiment.task!r} classes {list(experiment.classes)}"
        )
    return rows


def read_input(path: Path, samples: list[str], *, how: str, num_items: int | None = None) -> np.ndarray:
    """Read ``samples`` (by name) from one embedding store and aggregate each: (len(samples), D) float32."""
    from painformer.stores import SampleStore

    if not path.exists():
        raise StoreError(f"{path}: embedding store not found; run the embedding job that writes it")
    store = SampleStore.open_complete(path)
    index_of = {name: i for i, name in enumerate(store.samples)}
    missing = [name for name in samples if name not in index_of]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise StoreError(
            f"{path}: {len(missing)} samples of the sample table are not in the store "
            f"(e.g. {', '.join(missing[:5])}{more}); it was made for another sample table"
        )
    if store.array.ndim != 3:
        raise StoreError(f"{path}: expected (n_samples, n_items, D) embeddings, got shape {store.array.shape}")
    positions = np.array([index_of[name] for name in samples], dtype=np.int64)
    blocks = []
    for start in range(0, positions.size, READ_BLOCK):
        block = positions[start : start + READ_BLOCK]
        values = np.asarray(store.read_many(block), dtype=np.float32)  # (b, items, D), each sample checked
        try:
            blocks.append(aggregate(values, how, num_items=num_items).astype(np.float32, copy=False))
        except ValueError as error:
            raise StoreError(f"{path}: {error}") from None
    return np.concatenate(blocks, axis=0)


def _store_items(path: Path) -> int:
    from painformer.stores import SampleStore

    if not path.exists():
        raise StoreError(f"{path}: embedding store not found; run the embedding job that writes it")
    return int(SampleStore.open(path, mode="r").array.shape[1])


def load_experiment_data(experiment: Experiment, table, embeddings_dir: str | Path) -> ExperimentData:
    """Read, aggregate and fuse the experiment's inputs for every task sample of ``table``."""
    rows = select_task_rows(experiment, table)
    samples = [str(name) for name in rows["sample"]]
    classes = experiment.classes
    label_of = {name: i for i, name in enumerate(classes)}
    labels = np.array([label_of[name] for name in rows["class_name"]], dtype=np.int64)
    counts = class_counts(labels, classes)
    if sum(1 for count in counts.values() if count) < 2:
        # Checked before any store is read: no fold of such a table could be trained.
        raise InputError(
            f"experiment {experiment.name!r}: the sample table holds fewer than two of the task "
            f"{experiment.task!r} classes (samples per class: {_describe_counts(counts)})"
        )

    # Frame-concatenated videos that are summed must agree on the frame count: fit them to the first.
    video_items = None
    if experiment.video_inputs and experiment.aggregation == "concat":
        video_items = _store_items(store_path(embeddings_dir, experiment.video_inputs[0]))
    vectors: dict[str, np.ndarray] = {}
    for name in experiment.inputs:
        how = experiment.input_aggregation(name)
        num_items = video_items if (is_video_input(name) and how == "concat") else None
        vectors[name] = read_input(store_path(embeddings_dir, name), samples, how=how, num_items=num_items)

    return ExperimentData(
        samples=np.asarray(samples, dtype=object).astype(str),
        subjects=rows["subject"].astype(str).to_numpy(),
        labels=labels,
        splits=rows["split"].fillna("").astype(str).to_numpy(),
        classes=classes,
        streams=fuse_inputs(experiment, vectors, embeddings_dir=embeddings_dir),
    )


def fuse_inputs(
    experiment: Experiment, vectors: dict[str, np.ndarray], *, embeddings_dir: str | Path = ""
) -> dict[str, np.ndarray]:
    """Combine per-input vectors into the model's streams (see the module docstring)."""
    fusion = experiment.fusion
    if fusion == "none":
        return {"fused": vectors[experiment.inputs[0]]}
    if fusion == "decision":
        return dict(vectors)
    if fusion == "concat":
        return {"fused": np.concatenate([vectors[name] for name in experiment.inputs], axis=1)}
    if fusion == "add":
        return {"fused": _sum_equal(experiment, list(experiment.inputs), vectors, embeddings_dir)}
    if fusion == "video_encoder_concat":
        return {
            "signal": vectors[experiment.other_inputs[0]],
            "video": _sum_equal(experiment, list(experiment.video_inputs), vectors, embeddings_dir),
        }
    raise InputError(f"experiment {experiment.name!r}: unknown fusion {fusion!r}")


def _sum_equal(experiment: Experiment, names: list[str], vectors: dict[str, np.ndarray], embeddings_dir) -> np.ndarray:
    shapes = {name: vectors[name].shape[1] for name in names}
    if len(set(shapes.values())) != 1:
        described = ", ".join(f"{store_path(embeddings_dir, n)} -> {d}" for n, d in shapes.items())
        raise InputError(f"experiment {experiment.name!r}: inputs to add differ in length ({described})")
    total = vectors[names[0]].copy()
    for name in names[1:]:
        total += vectors[name]
    return total


def split_fold(experiment: Experiment, fold: str, data: ExperimentData) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of one fold; no subject is ever on both sides.

    ``loso``: test = the samples of subject ``fold``, train = every other
    subject's. ``holdout`` (fold ``"holdout"``): train = split ``train``, test =
    split ``validation`` (AI4Pain's official partition; its ``test`` split has
    no public labels and is not used).
    """
    if experiment.protocol == "loso":
        if fold not in set(data.subjects.tolist()):
            raise InputError(
                f"experiment {experiment.name!r}: fold {fold!r} is not a subject with samples of the task "
                f"{experiment.task!r}"
            )
        test_mask = data.subjects == fold
        train_mask = ~test_mask
    else:
        if fold != "holdout":
            raise InputError(
                f"experiment {experiment.name!r}: a holdout experiment has the one fold 'holdout', not {fold!r}"
            )
        train_mask = data.splits == "train"
        test_mask = data.splits == "validation"
    train_idx, test_idx = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    if train_idx.size == 0 or test_idx.size == 0:
        side = "training" if train_idx.size == 0 else "test"
        raise InputError(f"experiment {experiment.name!r}, fold {fold!r}: no {side} samples")
    shared = set(data.subjects[train_idx].tolist()) & set(data.subjects[test_idx].tolist())
    if shared:
        raise InputError(
            f"experiment {experiment.name!r}, fold {fold!r}: subjects {sorted(shared)[:5]} are in both the "
            "training and the test split"
        )
    # A model trained on one class learns nothing; a test side of one class has no macro recall or F1
    # to speak of (every other class scores 0). Both point at a wrong sample table or task.
    for side, indices in (("training", train_idx), ("test", test_idx)):
        counts = class_counts(data.labels[indices], data.classes)
        if sum(1 for count in counts.values() if count) < 2:
            raise InputError(
                f"experiment {experiment.name!r}, fold {fold!r}: the {side} side holds fewer than two of the "
                f"task {experiment.task!r} classes (samples per class: {_describe_counts(counts)})"
            )
    return train_idx, test_idx


def class_counts(labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, int]:
    """Samples per class name, in the task's class order."""
    counts = np.bincount(labels, minlength=len(classes))
    return {name: int(count) for name, count in zip(classes, counts)}


def _describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``(x - mean) / std`` of each stream, fitted on training samples only."""

    means: dict[str, np.ndarray]
    stds: dict[str, np.ndarray]

    @classmethod
    def fit(cls, streams: dict[str, np.ndarray]) -> Standardizer:
        means, stds = {}, {}
        for name, values in streams.items():
            values64 = values.astype(np.float64)
            means[name] = values64.mean(axis=0).astype(np.float32)
            std = values64.std(axis=0)
            stds[name] = np.where(std < MIN_STD, 1.0, std).astype(np.float32)
        return cls(means=means, stds=stds)

    @classmethod
    def identity(cls, streams: dict[str, np.ndarray]) -> Standardizer:
        return cls(
            means={n: np.zeros(v.shape[1], np.float32) for n, v in streams.items()},
            stds={n: np.ones(v.shape[1], np.float32) for n, v in streams.items()},
        )

    def apply(self, streams: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            name: ((values - self.means[name]) / self.stds[name]).astype(np.float32) for name, values in streams.items()
        }


def fit_normalizer(normalize: str, train_streams: dict[str, np.ndarray]) -> Standardizer:
    """``standard``: statistics of the training streams; ``none``: the identity."""
    if normalize == "standard":
        return Standardizer.fit(train_streams)
    return Standardizer.identity(train_streams)
