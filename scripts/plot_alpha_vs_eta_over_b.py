"""Rule plot_alpha_vs_eta_over_b: α̂ of trained networks against η/b (claims C7a, C7b)."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots_eta_over_b import plot_alpha_vs_eta_over_b

setup_logging(snakemake.log[0])
plot_alpha_vs_eta_over_b(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    snakemake.output.pdf,
    snakemake.output.png,
)
