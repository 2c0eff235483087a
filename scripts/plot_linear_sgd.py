"""Rule plot_alpha_vs_eta_over_b_linear: the linear-regression experiment's figure."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots_dynamics import plot_alpha_vs_eta_over_b_linear

setup_logging(snakemake.log[0])
plot_alpha_vs_eta_over_b_linear(
    pd.read_csv(snakemake.input.simulation),
    pd.read_csv(snakemake.input.theory),
    snakemake.output.pdf,
    snakemake.output.png,
)
