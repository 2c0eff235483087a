"""Rule plot_alpha_vs_depth: α vs FCN depth, one line per width."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_axis

setup_logging(snakemake.log[0])
plot_alpha_vs_axis(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    axis="depth",
    hue="width",
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    arch="fcn",
    log_base=None,
    axis_label="depth (linear layers)",
    hue_label="width (units per hidden layer)",
)
