"""Rule make_results_page: each figure and claim, the papers' findings beside this run's."""

import pandas as pd

from sgdtail.aggregate import excluded_runs_note
from sgdtail.claims import Thresholds, alpha_measurements
from sgdtail.io import atomic_path, setup_logging
from sgdtail.results import results_markdown, results_table

setup_logging(snakemake.log[0])
th = Thresholds.from_config(snakemake.params.claims)
m = alpha_measurements(
    pd.read_csv(snakemake.input.summary),
    pd.read_parquet(snakemake.input.estimates),
    ci_level=snakemake.params.ci_level,
    k1_factors=snakemake.params.robust_k1_factors,
    split=th.split,
)
table = results_table(
    m,
    pd.read_csv(snakemake.input.claims, keep_default_na=False, na_values=[""]),
    pd.read_csv(snakemake.input.validation),
    th,
    snakemake.params.tolerance,
)
runs = pd.read_csv(snakemake.input.runs)
note = excluded_runs_note(runs, th.min_train_accuracy)
text = results_markdown(table, snakemake.params.grid, note)
with atomic_path(snakemake.output.md) as tmp:
    tmp.write_text(text)
