"""Rule plot_alpha_vs_learning_rate: α vs learning rate, one line per network."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_axis

setup_logging(snakemake.log[0])
plot_alpha_vs_axis(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    axis="lr",
    hue="network",
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    arch=None,
    log_base=10,
    axis_label="learning rate η",
    hue_label="network (width × depth)",
)
