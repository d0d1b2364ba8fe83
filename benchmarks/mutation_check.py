"""Mutation check: do the tests that claim a behaviour fail when that behaviour breaks?

Each named break is a plain string replacement in one source file. The script copies the
repository (tracked and untracked, not ignored files) into a scratch folder, applies one
break at a time there, runs only the tests that claim the broken behaviour (PYTHONPATH on the
scratch copy, so CLI subprocesses and Snakemake jobs see the break too) and restores the file.
A break is "killed" when those tests fail and "SURVIVED" when they pass. The real tree is never
written to.

Run on demand (it takes minutes, it is not part of the suite):

    python benchmarks/mutation_check.py               # every break
    python benchmarks/mutation_check.py --list        # names only
    python benchmarks/mutation_check.py --only NAME   # one or more breaks (repeatable)
    python benchmarks/mutation_check.py --baseline    # first check the chosen tests pass unbroken
    python benchmarks/mutation_check.py --rev REV     # the files of commit REV instead of the working tree

Exit status: 0 when every break was killed, 1 when one survived, 2 when a break no longer
applies (its text is not in the source any more: update the list).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Break:
    name: str
    stage: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids
    count: int = 1  # occurrences of ``old`` expected (all of them are replaced)


BREAKS = (
    Break(
        "gelu-tanh-approximation",
        "backbone",
        "painformer/models/painformer.py",
        "nn.GELU()",
        'nn.GELU(approximate="tanh")',
        (
            "tests/test_backbone.py::test_golden_embedding_and_attention_maps",
            "tests/test_backbone.py::test_channels_last_and_bf16_compute_the_golden_embedding",
        ),
        count=2,
    ),
    Break(
        "layernorm-eps-1e-5",
        "backbone",
        "painformer/models/painformer.py",
        "LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)",
        "LayerNorm6 = partial(nn.LayerNorm, eps=1e-5)",
        (
            "tests/test_backbone.py::test_golden_embedding_and_attention_maps",
            "tests/test_backbone.py::test_channels_last_and_bf16_compute_the_golden_embedding",
        ),
    ),
    Break(
        "attention-map-zeros",
        "interpret",
        "painformer/interpret/cli.py",
        "blended = overlay(images, heat)",
        "blended = overlay(images, np.zeros_like(heat))",
        (
            "tests/test_interpret.py::test_cli_writes_overlays_of_biosignal_images",
            "tests/test_interpret.py::test_cli_maps_image_files_centre_cropped_to_the_input_size",
            "tests/test_workflow_attention.py::test_attention_sheet_of_picked_samples_from_a_frame_store",
        ),
    ),
    Break(
        "thermal-store-keeps-rgb",
        "video",
        "painformer/thermal/apply.py",
        "        return np.stack(\n            [\n                translate_frames(",
        "        return np.stack([frames for _, frames in batch]) if batch else np.stack(\n            [\n                translate_frames(",
        ("tests/test_thermal.py::test_apply_writes_complete_resumable_store",),
    ),
    Break(
        "thermal-input-not-rescaled",
        "video",
        "painformer/thermal/apply.py",
        "y = generator(x.mul(2.0).sub(1.0))",
        "y = generator(x)",
        ("tests/test_thermal.py::test_translate_frames_maps_the_generator_range_to_uint8",),
    ),
    Break(
        "demo-video-noise-unseeded",
        "data",
        "painformer/data/demo.py",
        "\n    renderer = FaceRenderer(profile, noise_seed=int(rng.integers(2**31)))\n",  # the videos' renderer
        "\n    renderer = FaceRenderer(profile, noise_seed=int(rng.integers(2**31)) + int(np.random.default_rng().integers(9)))\n",
        ("tests/test_demo_data.py::test_same_seed_same_bytes_any_worker_count",),
    ),
    Break(
        "load-experiments-first-only",
        "train",
        "painformer/train/config.py",
        "for name, raw in raw_experiments.items()}",
        "for name, raw in list(raw_experiments.items())[:1]}",
        ("tests/test_train.py::test_shipped_configs_load",),
    ),
    Break(
        "split-allows-shared-subject",
        "train",
        "painformer/train/data.py",
        "    if shared:\n",
        "    if False:\n",
        ("tests/test_train.py::test_data_selects_task_samples_and_splits_without_leakage",),
    ),
    Break(
        "train-cli-error-without-name",
        "train",
        "painformer/train/cli.py",
        'f"{args.config}: no experiment {args.experiment!r}; it defines {sorted(experiments)}"',
        '"no such experiment\\n(see the configuration)"',
        ("tests/test_train.py::test_cli_writes_the_fold_folder",),
    ),
    Break(
        "normaliser-fitted-on-all-samples",
        "train",
        "painformer/train/loop.py",
        "normalizer = fit_normalizer(preset.normalize, train.streams)",
        "normalizer = fit_normalizer(preset.normalize, data.streams)",
        ("tests/test_train.py::test_normalisation_is_fitted_on_training_samples_only",),
    ),
    Break(
        "batch-quota-error-unexplained",
        "pretrain",
        "painformer/pretrain/data.py",
        'f"batch size {batch_size} cannot hold one sample of each of {len(sizes)} tasks"',
        '"invalid arguments"',
        ("tests/test_pretrain.py::test_batch_quotas_are_proportional_and_sum_to_the_batch",),
    ),
    Break(
        "frame-count-error-names-the-window",
        "video",
        "painformer/video/frames.py",
        'raise ValueError(f"num_frames must be a positive integer or None, got {self.num_frames}")',
        'raise ValueError(f"window must be two fractions 0 <= start < end <= 1, got {self.window}")',
        ("tests/test_video.py::test_frame_indices_rule",),
    ),
    Break(
        "table-one-painformer-gflops",
        "models",
        "painformer/models/flops.py",
        '"PainFormer": (19.60, 5.82),',
        '"PainFormer": (19.60, 5.79),',
        ("tests/test_models_summary.py::test_summary_command_prints_json_rows_within_table_one",),
    ),
    Break(
        "render-unwrap-by-pi",
        "render",
        "painformer/render/images.py",
        "unwrapped[tuple(tail)] -= np.float32(2.0 * np.pi) * turns",
        "unwrapped[tuple(tail)] -= np.float32(np.pi) * turns",
        ("tests/test_render.py::test_unwrap_equals_numpy",),
    ),
    Break(
        "embed-mean-is-sum",
        "embed",
        "painformer/embed/aggregate.py",
        "return embeddings.mean(axis=1)",
        "return embeddings.sum(axis=1)",
        ("tests/test_embed.py::test_aggregation_shapes_and_frame_count_rules",),
    ),
    Break(
        "report-recall-weighted",
        "report",
        "painformer/report/metrics.py",
        'recall_score(true_labels, predicted_labels, labels=averaged, average="macro", zero_division=0)',
        'recall_score(true_labels, predicted_labels, labels=averaged, average="weighted", zero_division=0)',
        ("tests/test_report.py::test_compute_metrics_against_sklearn_and_by_hand",),
    ),
    Break(
        "workflow-attention-sample-count-ignored",
        "workflow",
        "workflow/rules/interpret.smk",
        'samples=config["report"]["attention_samples"],',
        "samples=2,",
        ("tests/test_workflow_attention.py::test_dry_run_schedules_one_attention_sheet_per_input",),
    ),
)


def copy_repository(destination: Path, revision: str | None = None) -> Path:
    """The repository's files under ``destination/repo``: those of commit ``revision``, or without one
    the working tree's tracked and untracked, not ignored files.

    Tests find the shared reference files at ``<repository>/../shared``; a link keeps that true.
    """
    repo = destination / "repo"
    if revision is not None:
        repo.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
        _link_shared(destination)
        return repo
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if not source.is_file():  # deleted from the working tree but still in the index
            continue
        target = repo / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    _link_shared(destination)
    return repo


def _link_shared(destination: Path) -> None:
    shared = ROOT.parent / "shared"
    if not shared.exists():
        shared = ROOT.parents[1] / "shared"  # a worktree one level further down
    if shared.exists():
        (destination / "shared").symlink_to(shared)


def run_tests(repo: Path, tests: tuple[str, ...], *, timeout: float) -> tuple[int, float, str]:
    """pytest's exit status, the seconds it took and its last line (its last lines when it gave no verdict)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - started, "timed out"
    lines = (result.stdout + result.stderr).strip().splitlines()
    shown = lines[-1:] if result.returncode in (0, 1) else lines[-15:]
    return result.returncode, time.perf_counter() - started, "\n".join(shown)


def apply_break(repo: Path, item: Break) -> str | None:
    """Write the broken file; return its original text, or None when the break does not apply."""
    path = repo / item.path
    original = path.read_text()
    if original.count(item.old) != item.count:
        return None
    path.write_text(original.replace(item.old, item.new))
    return original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run this break only (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the breaks and the tests that claim them")
    parser.add_argument("--baseline", action="store_true", help="run every chosen test unbroken first")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per break")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its path is printed)")
    parser.add_argument(
        "--rev", help="check the tests of this commit (e.g. an older one, to see which breaks it let through)"
    )
    args = parser.parse_args(argv)

    chosen = [b for b in BREAKS if not args.only or b.name in args.only]
    unknown = sorted(set(args.only or ()) - {b.name for b in BREAKS})
    if unknown:
        parser.error(f"unknown break(s) {unknown}; --list shows them")
    if args.list:
        for item in chosen:
            print(f"{item.name:40s} {item.stage:10s} {item.path}")
            for test in item.tests:
                print(f"    {test}")
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="painformer-mutation-"))
    status = 0
    try:
        repo = copy_repository(scratch, args.rev)
        print(f"scratch copy: {repo}", flush=True)
        if args.baseline:
            tests = tuple(dict.fromkeys(t for b in chosen for t in b.tests))
            code, seconds, last = run_tests(repo, tests, timeout=args.timeout * 2)
            print(f"baseline: {len(tests)} tests, exit {code}, {seconds:.0f} s: {last}", flush=True)
            if code != 0:
                print("the chosen tests fail without any break: fix them first", file=sys.stderr)
                return 2
        rows = []
        for item in chosen:
            original = apply_break(repo, item)
            if original is None:
                rows.append((item, "NOT APPLIED", 0.0, f"{item.count} x old text expected in {item.path}"))
                print(f"{item.name}: NOT APPLIED ({item.count} x its text expected in {item.path})", flush=True)
                status = max(status, 2)
                continue
            try:
                code, seconds, last = run_tests(repo, item.tests, timeout=args.timeout)
            finally:
                (repo / item.path).write_text(original)
            # pytest exits 1 when a test failed; anything else (collection error, timeout) is no verdict.
            verdict = {0: "SURVIVED", 1: "killed"}.get(code, f"error (exit {code})")
            if code == 0:
                status = max(status, 1)
            rows.append((item, verdict, seconds, last))
            print(f"{item.name}: {verdict} ({seconds:.0f} s) {last}", flush=True)
        print()
        print("| break | stage | file | tests run | result | seconds |")
        print("|---|---|---|---|---|---|")
        for item, verdict, seconds, _ in rows:
            tests = ", ".join(t.split("/")[-1] for t in item.tests)
            print(f"| {item.name} | {item.stage} | {item.path} | {tests} | {verdict} | {seconds:.0f} |")
        survived = sum(1 for _, verdict, _, _ in rows if verdict == "SURVIVED")
        print(f"\n{survived} of {len(rows)} breaks survived")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
