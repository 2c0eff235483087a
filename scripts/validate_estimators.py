"""Rule validate_estimators: every estimator on synthetic data with a known tail index."""

import logging

import pandas as pd

from sgdtail.estimators import default_sweep_k1
from sgdtail.io import setup_logging, write_table
from sgdtail.validation import (
    gaussian_readings,
    minimum_sample_table,
    synthetic_block_sweep,
    validate_estimators,
)

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

readings = gaussian_readings(
    v["sizes"],
    v["gaussian_minibatches"],
    v["gaussian_coordinates"],
    v["repeats"],
    seed=v["seed"],
)
write_table(snakemake.output.gaussian, readings)
est = snakemake.params.estimators
minimums = minimum_sample_table(
    readings,
    est["min_pooled_values"],
    est["min_per_coordinate_minibatches"],
    v["gaussian_tolerance"],
)
write_table(snakemake.output.minimums, minimums)
for row in minimums[~minimums.consistent].itertuples():
    logging.getLogger(__name__).warning(
        "%s reads Gaussian data as 2 ± %g only from %g samples, but the configured minimum is "
        "%g: raise estimators.min_%s",
        row.estimator,
        row.tolerance,
        row.reliable_size,
        row.configured_minimum,
        "pooled_values" if row.kind == "pooled" else "per_coordinate_minibatches",
    )
