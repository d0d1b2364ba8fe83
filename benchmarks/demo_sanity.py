"""Sanity check of the demo dataset: LOSO accuracy of hand-made biosignal features, BL1 vs PA4.

Generates the demo (the workflow's default: 6 subjects, 4 samples per class, seed 0) unless
``--root`` points at an existing BioVid-layout tree, indexes it with the BioVid loader and
prints the accuracy of a standardised logistic regression on each feature and on all of them
(``painformer.data.sanity``). The demo should be learnable (all features well above chance)
without being trivial (no single feature at 100 %).

    .venv/bin/python benchmarks/demo_sanity.py [--root DIR] [--subjects 6] [--samples-per-class 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="an existing BioVid-layout tree (default: generate the demo)")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--samples-per-class", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", default="BL1,PA4", help="the two classes compared")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    from painformer.data.biovid import index_biovid
    from painformer.data.demo import generate_demo_dataset
    from painformer.data.sanity import format_result, sanity_check

    classes = tuple(name.strip() for name in args.classes.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.root) if args.root else Path(scratch) / "demo"
        if not args.root:
            started = time.perf_counter()
            generate_demo_dataset(
                root,
                subjects=args.subjects,
                samples_per_class=args.samples_per_class,
                seed=args.seed,
                thermal_pairs=0,
                workers=args.workers,
            )
            print(f"generated {root} in {time.perf_counter() - started:.1f} s")
        table, problems = index_biovid(root, classes=list(classes), check_videos=False)
        if problems:
            raise SystemExit(f"{root}: {len(problems)} problems, first: {problems[0]}")
        started = time.perf_counter()
        result = sanity_check(table, classes)
        print(format_result(result, classes))
        print(f"\nfeatures and LOSO in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
