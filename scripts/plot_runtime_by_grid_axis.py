"""Rule plot_runtime_by_grid_axis: job time and memory (benchmark files) vs the grid axes."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_runtime_by_grid_axis, read_benchmarks

setup_logging(snakemake.log[0])
plot_runtime_by_grid_axis(
    read_benchmarks([*snakemake.input.train, *snakemake.input.noise]),
    pd.read_csv(snakemake.input.runs),
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
)
