"""Scale of the workflow: `snakemake --dry-run` on the full BioVid grid (config/biovid.yaml).

The index is a generated 87-subject NP vs P4 sample table (no videos or biosignals: a dry run
needs none), as in tests/test_workflow.py. Prints the jobs scheduled and the wall time of each
dry run, once with the workstation profile and once with the SLURM profile (target: < 30 s).

    python benchmarks/dry_run.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from workflow_helpers import full_biovid_grid, job_counts, snakemake  # noqa: E402  (after the sys.path insert)

PROFILES = ("workflow/profiles/default", "workflow/profiles/slurm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="dry runs per profile (the best is printed too)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        configfile, config = full_biovid_grid(workdir)
        snakemake(workdir, "results/biovid/samples.tsv", "--cores", "1", "--configfile", str(configfile))
        print(f"full BioVid grid: {len(config['experiments'])} experiments x 87 folds")
        print(f"{'profile':<28} {'jobs':>6} {'train':>6} {'seconds (each run)':>22} {'best':>6}")
        for profile in PROFILES:
            times, counts = [], {}
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = snakemake(
                    workdir,
                    "--workflow-profile",
                    str(REPO / profile),
                    "--cores",
                    "2",
                    "--configfile",
                    str(configfile),
                    "--dry-run",
                )
                times.append(time.perf_counter() - started)
                counts = job_counts(result.stdout + result.stderr)
            each = ", ".join(f"{t:.1f}" for t in times)
            print(f"{profile:<28} {sum(counts.values()):>6} {counts.get('train', 0):>6} {each:>22} {min(times):>6.1f}")


if __name__ == "__main__":
    main()
