"""Write the Snakemake profile used on the local test cluster.

It is the user-facing profile `workflow/profiles/slurm/config.yaml` with the
few settings of `tests/cluster/local-overrides.yaml` laid over it, so the test
runs the profile users copy rather than a private variant of it.

    python tests/cluster/make_profile.py OUT_DIR   # writes OUT_DIR/config.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
USER_PROFILE = REPOSITORY_ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
LOCAL_OVERRIDES = Path(__file__).resolve().parent / "local-overrides.yaml"


def merge_settings(*, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return `base` with `overrides` applied: mappings merge key by key, any other value is replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(base=merged[key], overrides=value)
        else:
            merged[key] = value
    return merged


def write_test_profile(*, target_dir: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the merged profile (plus optional `extra` settings) to `target_dir/config.yaml`."""
    base = yaml.safe_load(USER_PROFILE.read_text())
    settings = merge_settings(base=base, overrides=yaml.safe_load(LOCAL_OVERRIDES.read_text()))
    if extra:
        settings = merge_settings(base=settings, overrides=extra)
    target_dir.mkdir(parents=True, exist_ok=True)
    config_path = target_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="directory to write config.yaml into")
    args = parser.parse_args()
    print(write_test_profile(target_dir=args.out_dir))


if __name__ == "__main__":
    main()
