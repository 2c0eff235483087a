"""Rule aggregate_results: the tidy tables of the whole grid."""

from sgdtail.aggregate import estimates_table, read_with_axes, runs_table, summary_table
from sgdtail.io import setup_logging, write_table

setup_logging(snakemake.log[0])
axes = snakemake.params.runs
metrics = read_with_axes(axes, snakemake.input.metrics)  # each file read once
runs = runs_table(axes, snakemake.input.infos, metrics, snakemake.params.min_train_accuracy)
estimates = estimates_table(axes, snakemake.input.estimates)
summary = summary_table(
    estimates,
    runs,
    metrics,
    min_pooled_values=snakemake.params.estimators["min_pooled_values"],
    min_per_coordinate_minibatches=snakemake.params.estimators["min_per_coordinate_minibatches"],
)
write_table(snakemake.output.runs, runs)
write_table(snakemake.output.estimates, estimates)
write_table(snakemake.output.summary, summary)
write_table(snakemake.output.norms, read_with_axes(axes, snakemake.input.norms))
