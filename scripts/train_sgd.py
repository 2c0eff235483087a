"""Rule train_sgd: one run of the grid, with its optimizer (resumes from resume.pt if present)."""

from pathlib import Path

import torch

from sgdtail.data import load_prepared
from sgdtail.grid import optimizer_settings, typed_axes
from sgdtail.io import setup_logging, write_job_usage
from sgdtail.iterates import WindowSnapshots, finish_snapshots, window_ends
from sgdtail.train import Progress, TrainConfig, resolve_device, train_sgd

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
w = snakemake.wildcards
training = snakemake.params.training
optimizer = typed_axes(w)["optimizer"]
cfg = TrainConfig(
    dataset=w.dataset,
    arch=w.arch,
    width=int(w.width),
    depth=int(w.depth),
    batch_size=int(w.batch_size),
    lr=float(w.lr),
    loss=w.loss,
    seed=int(w.seed),
    iterations=training["iterations"],
    checkpoints=tuple(snakemake.params.checkpoints),
    lr_schedule=training["lr_schedule"],
    stop_at_train_accuracy=training["stop_at_train_accuracy"],
    eval_batch_size=training["eval_batch_size"],
    optimizer=optimizer,
    optimizer_settings=optimizer_settings(optimizer, training),
)
device = resolve_device(training["device"])
data = load_prepared(snakemake.input.data, device=device)
# read from the config, not a rule param: a new interval must not make Snakemake rerun runs
interval = snakemake.config.get("progress", {})
progress = Progress(seconds=interval.get("seconds", 30), every=interval.get("steps", 0))
out = Path(snakemake.output.info).parent
# iterates.measure: the training state is saved W steps before each step the run can end at
iterates = getattr(snakemake.params, "iterates", None)
snapshots = out / "iterates_snapshots"
hook = WindowSnapshots(snapshots, iterates["window"], window_ends(cfg)) if iterates else None
# SIGTERM/SIGUSR1 (walltime): resume.pt is saved at the current step and the job fails with
# "training interrupted ..."; Snakemake's retry resumes from there
info = train_sgd(cfg, data, out, device, progress=progress, hook=hook)
if iterates:
    finish_snapshots(snapshots, info, iterates["window"], Path(snakemake.output.iterates_start))
write_job_usage(snakemake.output.usage)
