"""Rule plot_estimator_validation: estimated vs true α on synthetic data, and the pitfalls."""

import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots import plot_estimator_validation

setup_logging(snakemake.log[0])
plot_estimator_validation(
    pd.read_csv(snakemake.input.table),
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    gaussian=pd.read_csv(snakemake.input.gaussian),
    minimums=pd.read_csv(snakemake.input.minimums),
)
