"""Running the real Snakemake workflow from tests: copies of the config, job counts of dry runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile with ``workdir`` as working directory."""
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
    return result


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a (dry) run into {rule: count}."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return counts
    for line in lines[start + 1 :]:
        match = re.match(r"^\s*([A-Za-z_][\w]*)\s+(\d+)\s*$", line)
        if match:
            if match.group(1) == "total":
                break
            counts[match.group(1)] = int(match.group(2))
        elif counts and not line.strip():
            break
    return counts


def dry_run_counts(workdir: Path, configfile: Path, *args: str) -> dict[str, int]:
    result = snakemake(workdir, *args, "--cores", "2", "--configfile", str(configfile), "--dry-run")
    counts = job_counts(result.stdout + result.stderr)
    assert counts, f"no job stats in the dry run's output:\n{result.stdout[-3000:]}"
    return counts


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def write_yaml(data: dict, path: Path) -> Path:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(path)


def tiny_demo_config(workdir: Path) -> dict:
    """The demo configuration shrunk to run in about a minute on two cores."""
    config = load_yaml(REPO / "config" / "config.yaml")
    config["dataset"]["root"] = str(workdir / "resources" / "demo")
    config["dataset"]["demo"] = {"subjects": 3, "samples_per_class": 2, "seed": 0}
    config["video"]["num_frames"] = 2
    config["thermal"]["train"] = {"epochs": 1, "image_size": 32, "batch_size": 8, "seed": 0}
    config["backbone"]["batch_size"] = 8
    config["presets"]["demo"]["epochs"] = 3
    config["presets"]["demo"]["warmup_epochs"] = 1
    config["presets"]["demo"]["cooldown_epochs"] = 1
    model = {"num_latents": 8, "latent_dim": 32, "cross_dim_head": 16, "self_dim_head": 8, "output_dim": 32}
    experiments = {
        "gsr_waveform": {"inputs": ["gsr/waveform"], "fusion": "none"},
        "emg_concat": {"inputs": ["emg/waveform", "emg/spec_psd"], "fusion": "concat"},
        "rgb_video": {"inputs": ["rgb/frames"], "fusion": "none", "aggregation": "concat"},
        "rgb_thermal_add": {"inputs": ["rgb/frames", "thermal/frames"], "fusion": "add", "aggregation": "concat"},
        "video_decision": {"inputs": ["rgb/frames", "thermal/frames"], "fusion": "decision", "aggregation": "concat"},
        "gsr_video_eq12": {
            "inputs": ["gsr/waveform", "rgb/frames", "thermal/frames"],
            "fusion": "video_encoder_concat",
            "aggregation": "concat",
            "video_encoder": {"num_latents": 8, "latent_dim": 32, "cross_dim_head": 16},
        },
    }
    for experiment in experiments.values():
        experiment.update({"task": "NP_vs_P4", "protocol": "loso", "preset": "demo", "model": dict(model)})
    config["experiments"] = experiments
    config["report"] = {"compare": [["gsr_waveform", "gsr_video_eq12"]]}
    return config


def full_biovid_grid(tmp_path: Path) -> tuple[Path, dict]:
    """config/biovid.yaml on a generated 87-subject index (no videos: enough for a dry run)."""
    from painformer.data import write_sample_table

    rows = []
    for s in range(87):
        subject = f"{71309 + s:06d}_{'wm'[s % 2]}_{20 + s % 45}"
        for class_id, class_name in ((0, "BL1"), (4, "PA4")):
            for k in range(20):
                sample = f"{subject}-{class_name}-{k + 1:03d}"
                rows.append(
                    [
                        "biovid",
                        sample,
                        subject,
                        s,
                        class_id,
                        class_name,
                        f"/data/video/{subject}/{sample}.mp4",
                        f"/data/bio/{subject}/{sample}_bio.csv",
                        "",
                    ]
                )
    table = pd.DataFrame(
        rows,
        columns=[
            "dataset",
            "sample",
            "subject",
            "subject_id",
            "class_id",
            "class_name",
            "video",
            "biosignals",
            "split",
        ],
    )
    write_sample_table(table, tmp_path / "index.tsv")
    config = load_yaml(REPO / "config" / "biovid.yaml")
    config["dataset"]["samples"] = str(tmp_path / "index.tsv")
    for key, name in (("backbone", "painformer.pth"), ("thermal", "thermal.pt")):
        (tmp_path / name).write_bytes(b"placeholder for a dry run")
        config[key]["checkpoint"] = str(tmp_path / name)
    (tmp_path / "depth").mkdir()
    config["depth"]["model_dir"] = str(tmp_path / "depth")
    written = write_yaml(config, tmp_path / "biovid.yaml")
    # The file keeps its experiment grid; callers count jobs per experiment, so they get them expanded.
    from painformer.experiment_grid import expand_experiment_grid

    return written, {**config, "experiments": expand_experiment_grid(config)}
