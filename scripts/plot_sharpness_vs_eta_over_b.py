"""Rule plot_sharpness_vs_eta_over_b: the end points' λ_max against η/b (claim C7c)."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots_eta_over_b import plot_sharpness_vs_eta_over_b

setup_logging(snakemake.log[0])
plot_sharpness_vs_eta_over_b(
    pd.read_csv(snakemake.input.sharpness), snakemake.output.pdf, snakemake.output.png
)
