"""Rule measure_sgd_jump_share: the C5 statistic on the measured gradient-noise norms."""

import numpy as np
import pandas as pd

from sgdtail.dynamics import calibrate_jump_share
from sgdtail.dynamics_claims import claim_c5_sgd_verdict, norm_sequences, sgd_jump_share
from sgdtail.io import setup_logging, write_json, write_table

setup_logging(snakemake.log[0])
d = snakemake.params.dynamics
s = d["sgd"]
seqs, counts, runs_of = norm_sequences(
    pd.read_parquet(snakemake.input.norms), pd.read_csv(snakemake.input.runs), s["split"]
)
# one generator each, so that the bootstrap's draws do not move the calibration bands
boot_rng, calibration_rng = np.random.default_rng(d["seed"]).spawn(2)
sgd = sgd_jump_share(
    seqs, s["window"], boot_rng, clusters=runs_of, n_boot=s["bootstrap"], level=d["level"]
)
bands = calibrate_jump_share(
    [len(x) for x in seqs if len(x) >= s["window"]],
    s["window"],
    calibration_rng,
    alphas=d["alphas"],
    student_df=d["paths"]["student_df"],
    n_rep=s["calibration_reps"],
    level=d["level"],
)
verdict = claim_c5_sgd_verdict(sgd, bands, counts, s["window"], s["min_windows"])
sgd_row = {"noise": "SGD noise norms", "family": "sgd", **sgd, **counts}
write_table(snakemake.output.table, pd.concat([pd.DataFrame([sgd_row]), bands]))
write_json(
    snakemake.output.claim,
    {
        "claim": "C5 (SGD)",
        "threshold": f"above the t band: supported; below the mildest stable band: not "
        f"supported (window {s['window']}, split {s['split']})",
        **verdict,
    },
)
