"""Rule simulate_sample_paths: walks of SαS, Gaussian and Student-t steps; claim C5."""

import numpy as np

from sgdtail.dynamics import jump_share_table, noise_list, walk_paths
from sgdtail.dynamics_claims import claim_c5_verdict, fit_jump_share_slopes
from sgdtail.io import atomic_path, setup_logging, write_json, write_table

setup_logging(snakemake.log[0])
d = snakemake.params.dynamics
p = d["paths"]
rng = np.random.default_rng(d["seed"])
shares = jump_share_table(
    d["alphas"], p["windows"], p["n_paths"], rng, student_df=p["student_df"], level=d["level"]
)
verdict = claim_c5_verdict(shares, d["c5"], p["long_from"], level=d["level"])
noises = noise_list(d["alphas"], p["student_df"])
walks = walk_paths(noises, p["n_steps"], rng)
write_table(snakemake.output.shares, shares)
write_table(
    snakemake.output.slopes, fit_jump_share_slopes(shares, p["long_from"], level=d["level"])
)
with atomic_path(snakemake.output.paths) as tmp, open(tmp, "wb") as fh:
    np.savez(fh, paths=walks, labels=np.array([nz["noise"] for nz in noises]))
write_json(
    snakemake.output.claim,
    {
        "claim": "C5",
        "threshold": "; ".join(f"{k} = {v}" for k, v in d["c5"].items()),
        **verdict,
    },
)
