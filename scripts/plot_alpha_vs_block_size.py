"""Rule plot_alpha_vs_block_size: pooled α vs block size K1, measured and synthetic."""

import pandas as pd

from sgdtail.grid import parse_run_path
from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_block_size

setup_logging(snakemake.log[0])
plot_alpha_vs_block_size(
    pd.read_parquet(snakemake.input.estimates),
    pd.read_csv(snakemake.input.synthetic),
    [parse_run_path(path) for path in snakemake.params.showcase],
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
)
