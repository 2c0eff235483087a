"""Rule download_dataset: fetch a data set (torchvision download, local folder or .npz)."""

from sgdtail.data import fetch_dataset
from sgdtail.io import setup_logging

setup_logging(snakemake.log[0])
fetch_dataset(
    snakemake.wildcards.dataset,
    source=snakemake.params.source,
    path=snakemake.params.path,
    manifest_path=snakemake.output[0],
)
