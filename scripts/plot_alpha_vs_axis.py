"""Rules plot_alpha_vs_<axis>: α vs one grid axis, as its sweep in sgdtail.figures declares."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_axis

setup_logging(snakemake.log[0])
plot_alpha_vs_axis(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    **snakemake.params.sweep,
    ci_level=snakemake.params.ci_level,
)
