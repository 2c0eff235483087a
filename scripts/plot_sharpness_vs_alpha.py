"""Rule plot_sharpness_vs_alpha: sharpness of each run's end point against its final α; C6."""

import json

import pandas as pd

from sgdtail.aggregate import typed_axes
from sgdtail.io import setup_logging, write_json, write_table
from sgdtail.sharpness import (
    claim_c6_verdict,
    plot_sharpness_vs_alpha,
    sharpness_vs_alpha_table,
    spearman_with_ci,
)

setup_logging(snakemake.log[0])
records = []
for axes, path in zip(snakemake.params.runs, snakemake.input.sharpness, strict=True):
    with open(path) as fh:
        records.append({**typed_axes(axes), **json.load(fh)})
df = sharpness_vs_alpha_table(records, pd.read_csv(snakemake.input.summary))
ok = df.dropna(subset=["alpha_robust", "top_hessian_eigenvalue"])
rho = spearman_with_ci(ok["alpha_robust"], ok["top_hessian_eigenvalue"])
c6 = snakemake.params.sharpness["c6"]
verdict = claim_c6_verdict(rho, c6)
excluded = len(df) - len(ok)
write_table(snakemake.output.table, df)
write_json(
    snakemake.output.claim,
    {
        "claim": "C6",
        "threshold": f"min_rho = {c6['min_rho']}; min_runs = {c6['min_runs']}",
        "ci_low": rho["ci_low"],
        "ci_high": rho["ci_high"],
        **verdict,
        "detail": verdict["detail"]
        + (f"; {excluded} runs excluded (no finite weights or α)" if excluded else ""),
    },
)
plot_sharpness_vs_alpha(ok, rho, snakemake.output.pdf, snakemake.output.png)
