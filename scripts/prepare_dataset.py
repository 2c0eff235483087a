"""Rule prepare_dataset: one canonical uint8 tensor file per data set."""

from sgdtail.data import prepare_dataset
from sgdtail.io import setup_logging

setup_logging(snakemake.log[0])
prepare_dataset(
    snakemake.wildcards.dataset,
    manifest_path=snakemake.input[0],
    out_path=snakemake.output[0],
    mean=snakemake.params.mean,
    std=snakemake.params.std,
)
