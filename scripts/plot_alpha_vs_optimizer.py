"""Rule plot_alpha_vs_optimizer: α̂ of trained networks per optimizer (gradient noise, and
Adam's preconditioned noise)."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots_optimizers import plot_alpha_vs_optimizer

setup_logging(snakemake.log[0])
plot_alpha_vs_optimizer(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    snakemake.output.pdf,
    snakemake.output.png,
    ci_level=snakemake.params.ci_level,
)
