"""Rule plot_alpha_iterates_vs_alpha_noise: the iterates' α̂ against the noise α̂ per run."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_iterates_vs_alpha_noise

setup_logging(snakemake.log[0])
plot_alpha_iterates_vs_alpha_noise(
    pd.read_csv(snakemake.input.table),
    pd.read_csv(snakemake.input.runs),
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    ci_level=snakemake.params.ci_level,
)
