"""Write a rule's `resolved` parameter as YAML (the run's configuration, saved with its results)."""

import yaml

from painformer.utils import atomic_path

with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(yaml.safe_dump(dict(snakemake.params.resolved), sort_keys=False))
