"""Validate a precomputed sample table and install it as the run's sample table."""

import sys

from painformer.data import read_sample_table, write_sample_table

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    table = read_sample_table(snakemake.input[0])
    write_sample_table(table, snakemake.output.samples)
    print(f"{len(table)} samples, {table['subject'].nunique()} subjects", file=log)
