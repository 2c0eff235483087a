"""Rule plot_alpha_per_layer: the per-layer robust α̂ of torchvision models, one line per
optimizer."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots_optimizers import plot_alpha_per_layer

setup_logging(snakemake.log[0])
plot_alpha_per_layer(
    pd.read_parquet(snakemake.input.estimates),
    pd.read_csv(snakemake.input.runs),
    snakemake.output.pdf,
    snakemake.output.png,
    min_pooled_values=snakemake.params.min_pooled_values,
    ci_level=snakemake.params.ci_level,
)
