"""Rule plot_alpha_and_accuracy_over_training: α and accuracy vs SGD step, showcase runs."""

import pandas as pd

from sgdtail.grid import parse_run_path
from sgdtail.io import setup_logging
from sgdtail.plots import plot_alpha_and_accuracy_over_training

setup_logging(snakemake.log[0])
plot_alpha_and_accuracy_over_training(
    pd.read_csv(snakemake.input.summary),
    [pd.read_csv(path) for path in snakemake.input.train_logs],
    [parse_run_path(path) for path in snakemake.params.showcase],
    pdf=snakemake.output.pdf,
    png=snakemake.output.png,
    ci_level=snakemake.params.ci_level,
)
