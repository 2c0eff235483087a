"""Rule aggregate_results: the tidy tables of the whole grid."""

from sgdtail.aggregate import estimates_table, read_with_axes, runs_table, summary_table
from sgdtail.io import setup_logging, write_table

setup_logging(snakemake.log[0])
axes = snakemake.params.runs
runs = runs_table(axes, snakemake.input.infos, snakemake.input.metrics)
estimates = estimates_table(axes, snakemake.input.estimates)
summary = summary_table(estimates, runs, snakemake.input.metrics, axes)
write_table(snakemake.output.runs, runs)
write_table(snakemake.output.estimates, estimates)
write_table(snakemake.output.summary, summary)
write_table(snakemake.output.norms, read_with_axes(axes, snakemake.input.norms))
