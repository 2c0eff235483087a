"""Rule simulate_exit_times: mean exit times vs barrier height and basin width; claim C4."""

from sgdtail.dynamics import exit_time_sweep
from sgdtail.dynamics_claims import claim_c4_verdict, fit_exit_slopes, height_elasticities
from sgdtail.io import setup_logging, write_json, write_table

setup_logging(snakemake.log[0])
d = snakemake.params.dynamics
sweep = exit_time_sweep(
    d["alphas"],
    d["heights"],
    d["widths"],
    levy_heights=d["levy_heights"],
    height_fixed=d["height_fixed"],
    width_fixed=d["width_fixed"],
    eps=d["eps"],
    dt_rel=d["dt_rel"],
    n_particles=d["particles"],
    horizon=d["horizon"],
    level=d["level"],
    seed=d["seed"],
    n_jobs=snakemake.threads,
)
slopes = fit_exit_slopes(sweep, level=d["level"])
verdict = claim_c4_verdict(slopes, d["c4"])
write_table(snakemake.output.sweep, sweep)
write_table(snakemake.output.slopes, slopes)
write_table(snakemake.output.elasticity, height_elasticities(sweep, level=d["level"]))
write_json(
    snakemake.output.claim,
    {
        "claim": "C4",
        "threshold": "; ".join(f"{k} = {v}" for k, v in d["c4"].items()),
        **verdict,
    },
)
