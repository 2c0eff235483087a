"""Rule simulate_linear_sgd: SGD on Gaussian linear regression, the theory's tail index beside
simulated chains; claims C7a and C7b."""

from sgdtail.io import setup_logging, write_json, write_table
from sgdtail.linear_sgd import claim_c7_linear, simulation_sweep, theory_curves

setup_logging(snakemake.log[0])
cfg = snakemake.params.linear_sgd
table = simulation_sweep(cfg)
write_table(snakemake.output.simulation, table)
write_table(snakemake.output.theory, theory_curves(cfg))
c7a, c7b = claim_c7_linear(table, cfg["c7_same_tolerance"])
write_json(snakemake.output.c7a, c7a)
write_json(snakemake.output.c7b, c7b)
