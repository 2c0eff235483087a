"""Rule simulate_sample_paths: Lévy and Brownian sample paths, jump ratios; claim C5."""

import numpy as np

from sgdtail.dynamics import claim_c5_verdict, jump_ratio_table, sample_paths
from sgdtail.io import atomic_path, setup_logging, write_json, write_table

setup_logging(snakemake.log[0])
d = snakemake.params.dynamics
p = d["paths"]
rng = np.random.default_rng(d["seed"])
ratios = jump_ratio_table(d["alphas"], p["windows"], p["n_paths"], p["n_steps"], rng)
verdict = claim_c5_verdict(ratios, d["c5"], level=d["level"])
t, paths = sample_paths(d["alphas"], p["n_steps"], 1.0, d["eps"], rng, n_paths=1)
write_table(snakemake.output.ratios, ratios)
with atomic_path(snakemake.output.paths) as tmp, open(tmp, "wb") as fh:
    np.savez(fh, t=t, paths=paths, alphas=np.asarray(d["alphas"], dtype=float))
write_json(
    snakemake.output.claim,
    {
        "claim": "C5",
        "threshold": "; ".join(f"{k} = {v}" for k, v in d["c5"].items()),
        "ci_low": None,
        "ci_high": None,
        **verdict,
    },
)
