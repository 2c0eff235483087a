"""Rule make_claims_table: verdicts on the claims, computed from the tidy tables."""

import json
import logging

import pandas as pd

from sgdtail.claims import (
    Thresholds,
    claims_html,
    claims_markdown,
    evaluate_claims,
    external_claims,
    wide_table,
)
from sgdtail.io import atomic_path, setup_logging, write_table

setup_logging(snakemake.log[0])
thresholds = Thresholds.from_config(snakemake.params.claims)
computed = evaluate_claims(
    pd.read_csv(snakemake.input.summary),
    pd.read_parquet(snakemake.input.estimates),
    thresholds,
    ci_level=snakemake.params.ci_level,
    k1_factors=snakemake.params.robust_k1_factors,
    sharpness=pd.read_csv(snakemake.input.sharpness),
    iterates=pd.read_csv(snakemake.input.iterates[0]) if snakemake.input.iterates else None,
)
extra = []
for path in snakemake.input.extra:
    with open(path) as fh:
        extra.append(json.load(fh))
long = pd.concat([computed, external_claims(extra)], ignore_index=True) if extra else computed
runs = pd.read_csv(snakemake.input.runs)
markdown = claims_markdown(long, runs, thresholds)
logging.getLogger(__name__).info("claims table:\n%s", markdown)
write_table(snakemake.output.csv, long)
with atomic_path(snakemake.output.md) as tmp:
    tmp.write_text(markdown)
with atomic_path(snakemake.output.html) as tmp:
    tmp.write_text(claims_html(markdown, wide_table(long)))
