"""Rule plot_sharpness_vs_alpha: sharpness of each run's end point against its final α; C6."""

import json

import pandas as pd

from sgdtail.grid import typed_axes
from sgdtail.io import setup_logging, write_json, write_table
from sgdtail.sharpness import (
    claim_c6,
    exclusion_reasons,
    plot_sharpness_vs_alpha,
    sharpness_vs_alpha_table,
)

setup_logging(snakemake.log[0])
records = []
for axes, path in zip(snakemake.params.runs, snakemake.input.sharpness, strict=True):
    with open(path) as fh:
        records.append({**json.load(fh), **typed_axes(axes)})  # the axes win a name clash
c6 = snakemake.params.sharpness["c6"]
df = sharpness_vs_alpha_table(records, pd.read_csv(snakemake.input.summary))
df["excluded"] = exclusion_reasons(df, float(c6["max_gradient_to_noise"]))
# C7c reads the sharpness alone: the same admission without C6's checks of the α̂
df["excluded_sharpness"] = exclusion_reasons(df, float(c6["max_gradient_to_noise"]), False)
claim, results = claim_c6(df, c6)
write_table(snakemake.output.table, df)
write_json(snakemake.output.claim, claim)
plot_sharpness_vs_alpha(df, results, snakemake.output.pdf, snakemake.output.png)
