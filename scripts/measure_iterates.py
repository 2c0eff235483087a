"""Rule measure_iterates: the tail index of the centred iterates over the last window of one
run, replayed twice from the state train_sgd saved at the window's start (sgdtail.iterates)."""

import json
import logging

import pandas as pd
import torch

from sgdtail.data import load_prepared
from sgdtail.io import load_torch, setup_logging, write_job_usage, write_table
from sgdtail.iterates import measure_iterates
from sgdtail.noise import auto_budget_mb, estimator_options
from sgdtail.train import TrainConfig, resolve_device

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
budget = snakemake.params.memory_budget
budget_mb = auto_budget_mb(budget["mb"]) if budget["setting"] == "auto" else budget["mb"]
log = logging.getLogger("sgdtail.iterates")
log.info("memory budget for centred iterates %.0f MB", budget_mb)
with open(snakemake.input.info) as fh:
    info = json.load(fh)
config = dict(info["config"], checkpoints=tuple(info["config"]["checkpoints"]))
cfg = TrainConfig(**config)
device = resolve_device(snakemake.params.device)
data = load_prepared(snakemake.input.data, device=device)
end = int(info["steps_done"])
trained = load_torch(snakemake.input.checkpoints)["state_dicts"].get(str(end), {})
estimators = snakemake.params.estimators
rows = measure_iterates(
    cfg,
    data,
    snakemake.input.snapshot,
    trained,
    end,
    device,
    memory_budget_mb=budget_mb,
    estimator_options=estimator_options(estimators),
)
pooled = [r for r in rows if r.get("scope") == "pooled" and r["estimator"] == "mohammadi_robust"]
log.info("pooled robust alpha of the iterates: %s", pooled[0]["alpha"] if pooled else rows[0])
write_table(snakemake.output.estimates, pd.DataFrame(rows))
write_job_usage(snakemake.output.usage)
