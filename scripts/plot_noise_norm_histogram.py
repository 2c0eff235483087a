"""Rule plot_noise_norm_histogram: noise norms of the showcase runs beside Gaussian and SαS."""

import pandas as pd

from sgdtail.grid import parse_run_path
from sgdtail.io import setup_logging
from sgdtail.plots import plot_noise_norm_histogram

setup_logging(snakemake.log[0])
plot_noise_norm_histogram(
    pd.read_parquet(snakemake.input.norms),
    pd.read_csv(snakemake.input.summary),
    [parse_run_path(path) for path in snakemake.params.showcase],
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    seed=snakemake.params.seed,
    max_synthetic_values=snakemake.params.max_synthetic_values,
)
