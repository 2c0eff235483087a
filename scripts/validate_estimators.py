"""Rule validate_estimators: every estimator on synthetic data with a known tail index."""

import pandas as pd

from sgdtail.estimators import default_sweep_k1
from sgdtail.io import setup_logging, write_table
from sgdtail.validation import synthetic_block_sweep, validate_estimators

setup_logging(snakemake.log[0])
v = snakemake.params.validation
write_table(
    snakemake.output.table,
    validate_estimators(v["alphas"], v["sizes"], v["repeats"], seed=v["seed"]),
)
k1_values = default_sweep_k1(v["sweep_size"])
sweeps = [
    synthetic_block_sweep(v["sweep_size"], alpha, k1_values, seed=v["seed"])
    for alpha in v["sweep_alphas"]
]
sweep = pd.concat(sweeps, ignore_index=True)
# each call also draws a Gaussian baseline of the same size: keep the first one
sweep = sweep.drop_duplicates(subset=["case", "true_alpha", "size", "k1"])
write_table(snakemake.output.sweep, sweep)
