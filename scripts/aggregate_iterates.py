"""Rule aggregate_iterates: every run's iterates_tail_index.csv in one table, and the
iterates' robust α̂ paired with the gradient noise's at each run's last checkpoint, with the
K1 spread of both."""

import pandas as pd

from sgdtail.aggregate import read_with_axes
from sgdtail.io import setup_logging, write_table
from sgdtail.iterates import iterates_vs_noise

setup_logging(snakemake.log[0])
iterates = read_with_axes(snakemake.params.runs, snakemake.input.estimates)
write_table(snakemake.output.estimates, iterates)
paired = iterates_vs_noise(
    iterates,
    pd.read_parquet(snakemake.input.noise),
    pd.read_csv(snakemake.input.runs),
    snakemake.params.split,
    snakemake.params.min_pooled_values,
    snakemake.params.robust_k1_factors,
)
write_table(snakemake.output.paired, paired)
