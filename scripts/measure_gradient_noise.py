"""Rule measure_gradient_noise: noise and tail index at every checkpoint of one run.

Each checkpoint × split is saved under noise_parts/ in the run folder as it completes; a job
restarted after a kill or a walltime measures only the missing ones. The folder is removed
once the tables are written.
"""

import logging
import shutil
from pathlib import Path

import pandas as pd
import torch

from sgdtail.data import load_prepared
from sgdtail.io import load_torch, setup_logging, write_job_usage, write_table
from sgdtail.losses import get_loss
from sgdtail.models import build_model
from sgdtail.noise import (
    auto_budget_mb,
    estimator_options,
    measure_checkpoints,
    minibatch_order,
)
from sgdtail.train import resolve_device

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
w = snakemake.wildcards
noise = snakemake.params.noise
budget = snakemake.params.memory_budget
budget_mb = auto_budget_mb(budget["mb"]) if budget["setting"] == "auto" else budget["mb"]
logging.getLogger("sgdtail.noise").info(
    "gradient memory budget %.0f MB (noise.memory_budget_mb %s, job mem_mb %s)",
    budget_mb,
    budget["setting"],
    snakemake.resources.mem_mb,
)
estimators = snakemake.params.estimators
device = resolve_device(snakemake.params.device)
data = load_prepared(snakemake.input.data, device=device)
splits = {
    "train": minibatch_order(data.x_train, data.y_train, noise["order"], noise["order_seed"]),
    "test": minibatch_order(data.x_test, data.y_test, noise["order"], noise["order_seed"]),
}


def build():
    return build_model(w.arch, int(w.width), int(w.depth), data.input_shape, data.num_classes).to(
        device
    )


parts = Path(snakemake.output.estimates).parent / "noise_parts"
estimates, norms = measure_checkpoints(
    load_torch(snakemake.input.checkpoints),
    build,
    get_loss(w.loss),
    {split: splits[split] for split in noise["splits"]},
    int(w.batch_size),
    remainder=noise["remainder"],
    memory_budget_mb=budget_mb,
    estimator_options=estimator_options(estimators),
    parts_dir=parts,
)
write_table(snakemake.output.estimates, pd.DataFrame(estimates))
write_table(
    snakemake.output.norms, pd.DataFrame(norms, columns=["step", "split", "minibatch", "norm"])
)
shutil.rmtree(parts, ignore_errors=True)
write_job_usage(snakemake.output.usage)
