"""Rule plot_alpha_vs_filters: α vs the number of AlexNet filters ch."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_vs_axis

setup_logging(snakemake.log[0])
plot_alpha_vs_axis(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.runs),
    axis="width",
    hue="batch_size",
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    arch="alexnet",
    log_base=2,
    axis_label="AlexNet filters ch",
    hue_label="batch size b",
)
