"""Rule plot_dynamics: figures 2 and 3 and the exit-time figures, from the simulations."""

import numpy as np
import pandas as pd

from sgdtail.io import setup_logging
from sgdtail.plots_dynamics import (
    plot_exit_time_vs_height,
    plot_exit_time_vs_width,
    plot_levy_vs_brownian_paths,
    plot_metastability,
    plot_stable_densities,
)

setup_logging(snakemake.log[0])
d = snakemake.params.dynamics
out = snakemake.output
sweep = pd.read_csv(snakemake.input.sweep)
plot_exit_time_vs_height(sweep, out.height, out.height_png)
plot_exit_time_vs_width(sweep, out.width, out.width_png)
with np.load(snakemake.input.paths, allow_pickle=False) as z:
    paths, labels = z["paths"], [str(x) for x in z["labels"]]
shares = pd.read_csv(snakemake.input.shares)
plot_levy_vs_brownian_paths(paths, labels, shares, out.paths, out.paths_png)
plot_stable_densities([a for a in d["alphas"] if a < 2], out.densities, out.densities_png)
plot_metastability(out.metastability, out.metastability_png, seed=d["seed"])
