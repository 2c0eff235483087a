"""Rule plot_alpha_vs_width: α vs FCN width, one line per depth."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_axis

setup_logging(snakemake.log[0])
plot_alpha_vs_axis(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    axis="width",
    hue="depth",
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    arch="fcn",
    log_base=2,
    axis_label="width (units per hidden layer)",
    hue_label="depth (linear layers)",
)
