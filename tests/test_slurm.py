"""The `slurm` Snakemake profile, proven on a real single-node SLURM cluster.

`tests/cluster/start_slurm.sh` brings up slurmctld + slurmd on this machine
(installing Debian's slurm-wlm and munge when missing). The workflow under
test (`WORKFLOW`: the miniature DAG of tests/cluster/mini, or the real
workflow on the reduced demo of tests/cluster/demo-small.yaml) then runs
twice through `--executor slurm` with the profile of workflow/profiles/slurm:

1. a first run, during which one SLURM job of grouped `train` jobs is killed
   with `scancel` while it runs: Snakemake must report it as failed;
2. `--rerun-incomplete` on the same profile: it must finish the run without
   recomputing any output that was already complete.

The tables it writes must equal those of a plain local run, every SLURM job
of the completed run must be recorded as COMPLETED by SLURM itself
(`sacct --completion`, fed by the jobcomp/filetxt plugin), and the `train`
jobs must have gone to SLURM as fewer jobs than there are `train` rules.

Needs root (the start script installs packages and starts daemons).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
CLUSTER_DIR = REPOSITORY_ROOT / "tests" / "cluster"
# Bounds a hung run, not a speed: generous enough for a 2-core machine busy with other work.
RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class WorkflowUnderTest:
    """A Snakemake DAG with a grouped training stage, and what the test checks of it."""

    snakefile: Path
    config_args: tuple[str, ...]
    n_train_jobs: int
    # Folds per SLURM job: small enough that there are several groups, so one
    # cancelled group leaves other, completed groups behind.
    train_group_size: int
    # Rules upstream of training, finished before any group can be killed.
    upstream_rules: tuple[str, ...]
    # Tables (globs under the working directory) that must equal a local run's.
    tables: tuple[str, ...]
    train_output_pattern: str = r"/metrics\.json$"


# The miniature DAG of tests/cluster/mini: same rule names and grouping as the
# real workflow; each `train` job sleeps 2 s so a running group can be caught.
MINI_WORKFLOW = WorkflowUnderTest(
    snakefile=CLUSTER_DIR / "mini" / "Snakefile",
    config_args=("--config", "train_seconds=2"),
    n_train_jobs=12,  # 3 experiments x 4 folds in tests/cluster/mini/config.yaml
    train_group_size=4,
    upstream_rules=("demo_data", "embed"),
    tables=("results/demo/tables/*.tsv", "results/demo/summary.tsv"),
)

# The real workflow on the reduced demo of tests/cluster/demo-small.yaml.
DEMO_WORKFLOW = WorkflowUnderTest(
    snakefile=REPOSITORY_ROOT / "Snakefile",
    config_args=("--configfile", str(CLUSTER_DIR / "demo-small.yaml")),
    n_train_jobs=6,  # 2 experiments x 3 subjects (leave-one-subject-out)
    train_group_size=2,
    upstream_rules=("demo_data", "index", "biosignal_images", "embed"),
    tables=("results/demo/tables/*.tsv", "results/demo/summary.tsv"),
    train_output_pattern=r"/groups/group-\d+\.json$",  # each train job's output is its fold group's marker
)

# The real workflow by default; PAINFORMER_SLURM_TEST_WORKFLOW=mini checks the
# profile in about half the time while editing it.
WORKFLOW = MINI_WORKFLOW if os.environ.get("PAINFORMER_SLURM_TEST_WORKFLOW") == "mini" else DEMO_WORKFLOW

# Skipped on a developer's machine without root; under CI (CI set) it always runs, so a CI
# machine that cannot start the cluster fails here instead of passing without the test.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        (sys.platform != "linux" or os.geteuid() != 0) and not os.environ.get("CI"),
        reason="starting a SLURM cluster needs root on Linux",
    ),
]


@dataclass(frozen=True)
class SnakemakeRun:
    """One finished Snakemake invocation: its exit status and its full console log."""

    returncode: int
    log: str

    @property
    def slurm_run_id(self) -> str:
        """The run ID the executor gives every SLURM job of this run as job name."""
        match = re.search(r"SLURM run ID: (\S+)", self.log)
        assert match, "no SLURM run ID in the Snakemake log"
        return match.group(1)

    def submitted_slurm_jobs(self) -> dict[int, str]:
        """SLURM job id -> what it ran (`rule_<name>` or `group_<name>`), from the submission lines."""
        submitted = {}
        for slurm_id, log_path in re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", self.log):
            # Logs sit at <slurm-logdir>/rule_<rule>[/<wildcards>]/<id>.log or
            # <slurm-logdir>/group_<group>_.../<id>.log.
            submitted[int(slurm_id)] = next(
                part for part in reversed(Path(log_path).parts) if part.startswith(("rule_", "group_"))
            )
        return submitted

    def files_of_failed_jobs(self, *, rule: str) -> set[str]:
        """Outputs, logs and benchmark files of the `rule` jobs this run reported as failed.

        A cancelled group fails as a whole: Snakemake reruns all its jobs, also
        one that had finished inside it before the cancellation."""
        failed = set(re.findall(rf"Error in rule {re.escape(rule)}:\n(?:.*\n)*?\s*jobid: (\d+)", self.log))
        files: set[str] = set()
        for job in re.split(r"\n(?=\s*(?:local)?rule \w+:)", self.log):
            header = re.match(r"\s*(?:local)?rule (\w+):", job)
            jobid = re.search(r"^\s*jobid: (\d+)$", job, flags=re.MULTILINE)
            if header and header.group(1) == rule and jobid and jobid.group(1) in failed:
                for line in re.findall(r"^\s*(?:output|log|benchmark): (.+)$", job, flags=re.MULTILINE):
                    files.update(path.split(" (")[0].strip() for path in line.split(","))
        return files

    def planned_outputs(self, *, rule: str) -> set[str]:
        """Outputs of the jobs of `rule` this run scheduled, from the job blocks of the log."""
        outputs = set()
        for block in re.split(r"\n\s*\n", self.log):
            if re.search(rf"^\s*(local)?rule {re.escape(rule)}:", block, flags=re.MULTILINE):
                for line in re.findall(r"^\s*output: (.+)$", block, flags=re.MULTILINE):
                    outputs.update(path.strip() for path in line.split(","))
        return outputs


def load_profile_writer():
    """Import tests/cluster/make_profile.py (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_profile", CLUSTER_DIR / "make_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snakemake_command(*, workdir: Path, extra: list[str]) -> list[str]:
    """The Snakemake command line for the workflow under test in `workdir`."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(WORKFLOW.snakefile),
        "--directory", str(workdir),
        *WORKFLOW.config_args,
        *extra,
    ]  # fmt: skip


def run_environment() -> dict[str, str]:
    """This environment with the virtual environment's scripts (`painformer`) first on PATH.

    sbatch exports it to every job, as a user's login shell would."""
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def run_to_end(*, command: list[str], log_path: Path) -> SnakemakeRun:
    """Run Snakemake to completion, its console output kept in `log_path`."""
    with log_path.open("w") as log_file:
        completed = subprocess.run(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=run_environment(),
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    return SnakemakeRun(returncode=completed.returncode, log=log_path.read_text())


def slurm_jobs_of_run(run_id: str) -> list[tuple[str, str, str]]:
    """(job id, job name, state) of every SLURM job named `run_id`, as SLURM itself recorded them."""
    sacct = subprocess.run(
        ["sacct", "--completion", "--parsable2", "--noheader", "--format=JobID,JobName,State"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [tuple(line.split("|")) for line in sacct.stdout.splitlines() if line.strip()]
    return [row for row in rows if row[1] == run_id]


def group_jobs_by_state(run_id: str, *, group: str, rules: str) -> dict[str, list[int]]:
    """SLURM state -> ids of this run's jobs that execute group `group` (made of `rules`)."""
    squeue = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--name", run_id, "--format=%i|%T|%k"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    by_state: dict[str, list[int]] = {}
    for line in squeue.stdout.splitlines():
        slurm_id, state, comment = line.strip().split("|", 2)
        # The executor labels a group job `rule_<group>_<its rules joined by _>`.
        if comment == f"rule_{group}_{rules}":
            by_state.setdefault(state, []).append(int(slurm_id))
    return by_state


def snapshot_outputs(results_dir: Path) -> dict[str, tuple[int, str]]:
    """Relative path -> (mtime in ns, sha256) of every file under `results_dir`."""
    return {
        str(path.relative_to(results_dir.parent)): (
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(results_dir.rglob("*"))
        if path.is_file()
    }


def daemon_alive(pid_file: Path) -> bool:
    """Whether the process named in `pid_file` is running."""
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster; stopped afterwards unless it was already up."""
    was_running = daemon_alive(Path("/run/slurmctld.pid"))
    subprocess.run(["bash", str(CLUSTER_DIR / "start_slurm.sh")], check=True, timeout=600)
    # The test times its cancellation against its own jobs: jobs of anyone
    # else holding the node would leave them pending.
    queued = subprocess.run(
        ["squeue", "--noheader", "--format=%i %j %T"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert not queued, f"the test cluster is busy with other jobs; cancel them first:\n{queued}"
    yield
    if not was_running:
        subprocess.run(["bash", str(CLUSTER_DIR / "stop_slurm.sh")], check=False, timeout=60)


@dataclass(frozen=True)
class ClusterScenario:
    """Everything the assertions look at, produced once for the module."""

    local_dir: Path
    slurm_dir: Path
    killed: SnakemakeRun
    killed_slurm_id: int
    after_kill: dict[str, tuple[int, str]]
    resumed: SnakemakeRun


@pytest.fixture(scope="module")
def scenario(slurm_cluster, tmp_path_factory) -> ClusterScenario:
    """Local reference run, then a SLURM run with one group killed, then the rerun."""
    root = tmp_path_factory.mktemp("slurm")
    profile_dir = root / "profile"
    load_profile_writer().write_test_profile(
        target_dir=profile_dir,
        extra={"group-components": [f"train={WORKFLOW.train_group_size}"]},
    )

    local_dir = root / "local"
    local = run_to_end(
        command=snakemake_command(workdir=local_dir, extra=["--workflow-profile", "none", "--cores", "2"]),
        log_path=root / "local.log",
    )
    assert local.returncode == 0, local.log[-3000:]

    slurm_dir = root / "slurm"
    slurm_args = ["--workflow-profile", str(profile_dir), "--executor", "slurm", "--jobs", "4"]
    killed_log = root / "killed.log"
    with killed_log.open("w") as log_file:
        process = subprocess.Popen(
            snakemake_command(workdir=slurm_dir, extra=slurm_args),
            stdout=log_file, stderr=subprocess.STDOUT, env=run_environment(),
        )  # fmt: skip
        killed_slurm_id = None
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            # Kill a group of `train` jobs while it runs, but only once an
            # earlier group has completed, so finished work exists on both
            # sides of the kill. The node fits one group at a time.
            while killed_slurm_id is None and time.monotonic() < deadline:
                assert process.poll() is None, killed_log.read_text()[-3000:]
                time.sleep(0.5)
                run_id = re.search(r"SLURM run ID: (\S+)", killed_log.read_text())
                if run_id is None:
                    continue
                groups = group_jobs_by_state(run_id.group(1), group="train", rules="train")
                if groups.get("COMPLETED") and groups.get("RUNNING"):
                    killed_slurm_id = groups["RUNNING"][0]
            assert killed_slurm_id is not None, "no running group of train jobs to cancel"
            subprocess.run(["scancel", str(killed_slurm_id)], check=True)
            process.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    killed = SnakemakeRun(returncode=process.returncode, log=killed_log.read_text())
    after_kill = snapshot_outputs(slurm_dir / "results")

    resumed = run_to_end(
        command=snakemake_command(workdir=slurm_dir, extra=[*slurm_args, "--rerun-incomplete"]),
        log_path=root / "resumed.log",
    )
    return ClusterScenario(
        local_dir=local_dir,
        slurm_dir=slurm_dir,
        killed=killed,
        killed_slurm_id=killed_slurm_id,
        after_kill=after_kill,
        resumed=resumed,
    )


def test_cancelled_job_is_reported_failed(scenario: ClusterScenario) -> None:
    assert scenario.killed.returncode != 0
    assert "Error in group train" in scenario.killed.log
    assert scenario.killed.submitted_slurm_jobs()[scenario.killed_slurm_id] == "group_train_train"
    states = {job_id: state for job_id, _, state in slurm_jobs_of_run(scenario.killed.slurm_run_id)}
    assert states[str(scenario.killed_slurm_id)].startswith("CANCELLED")


def test_rerun_completes_without_recomputing_finished_outputs(scenario: ClusterScenario) -> None:
    assert scenario.resumed.returncode == 0, scenario.resumed.log[-3000:]
    # Everything of the cancelled group is redone; everything else must stay as it was.
    cancelled = scenario.killed.files_of_failed_jobs(rule="train")
    assert any(re.search(WORKFLOW.train_output_pattern, path) for path in cancelled)
    kept = {path: state for path, state in scenario.after_kill.items() if path not in cancelled}
    finished_train = {path for path in kept if re.search(WORKFLOW.train_output_pattern, path)}
    # Work from both sides of the kill survived it: the per-sample stage and
    # at least one completed group of `train` jobs.
    assert "results/demo/samples.tsv" in scenario.after_kill
    assert len(finished_train) >= WORKFLOW.train_group_size
    assert len(finished_train) < WORKFLOW.n_train_jobs

    now = snapshot_outputs(scenario.slurm_dir / "results")
    for path, before in kept.items():
        assert now[path] == before, f"{path} was rewritten by the rerun"
    rerun_train = {
        path
        for path in scenario.resumed.planned_outputs(rule="train")
        if re.search(WORKFLOW.train_output_pattern, path)
    }
    assert rerun_train.isdisjoint(finished_train)
    assert len(rerun_train) == WORKFLOW.n_train_jobs - len(finished_train)
    for rule in WORKFLOW.upstream_rules:
        assert not scenario.resumed.planned_outputs(rule=rule), f"{rule} ran again"


def test_tables_equal_local_run(scenario: ClusterScenario) -> None:
    tables = sorted(table for pattern in WORKFLOW.tables for table in scenario.local_dir.glob(pattern))
    assert len(tables) >= 2  # per-experiment tables and the summary
    for local_table in tables:
        relative = local_table.relative_to(scenario.local_dir)
        slurm_table = scenario.slurm_dir / relative
        assert slurm_table.read_bytes() == local_table.read_bytes(), f"{relative} differs"


def test_slurm_records_every_job_of_the_rerun_completed(scenario: ClusterScenario) -> None:
    submitted = scenario.resumed.submitted_slurm_jobs()
    assert submitted, "the rerun submitted nothing to SLURM"
    recorded = {job_id: state for job_id, _, state in slurm_jobs_of_run(scenario.resumed.slurm_run_id)}
    assert {int(job_id) for job_id in recorded} == set(submitted)
    assert set(recorded.values()) == {"COMPLETED"}


def test_train_jobs_are_grouped_into_fewer_slurm_jobs(scenario: ClusterScenario) -> None:
    for run in (scenario.killed, scenario.resumed):
        train_rules = len([p for p in run.planned_outputs(rule="train") if re.search(WORKFLOW.train_output_pattern, p)])
        train_slurm_jobs = [u for u in run.submitted_slurm_jobs().values() if u == "group_train_train"]
        assert not [u for u in run.submitted_slurm_jobs().values() if u == "rule_train"]
        assert 0 < len(train_slurm_jobs) < train_rules


def test_start_script_is_idempotent(slurm_cluster) -> None:
    controller_pid = Path("/run/slurmctld.pid").read_text().strip()
    node_pid = Path("/run/slurmd.pid").read_text().strip()
    subprocess.run(["bash", str(CLUSTER_DIR / "start_slurm.sh")], check=True, timeout=120)
    assert Path("/run/slurmctld.pid").read_text().strip() == controller_pid
    assert Path("/run/slurmd.pid").read_text().strip() == node_pid
    partitions = subprocess.run(
        ["sinfo", "--noheader", "--format=%P|%a"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert partitions == ["debug*|up"]
