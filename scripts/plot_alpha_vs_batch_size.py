"""Rule plot_alpha_vs_batch_size: α vs batch size, one line per network."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_axis

setup_logging(snakemake.log[0])
plot_alpha_vs_axis(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    axis="batch_size",
    hue="network",
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    arch=None,
    log_base=2,
    axis_label="batch size b",
    hue_label="network (width × depth)",
)
