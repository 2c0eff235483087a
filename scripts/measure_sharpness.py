"""Rule measure_sharpness: sharpness, Hessian top eigenvalue and gradient size at the end point.

Writes sharpness.json: the end step, the training subset used, whether the weights are finite
and, if they are, the top Hessian eigenvalue with the Lanczos solve's convergence (flag,
Hessian-vector products made, relative residual), the filter-normalised random-direction
sharpness, and the full-batch gradient norm against the minibatch noise at the run's batch
size (all on the same subset), plus the seconds the measurements took.
"""

import time

import torch

from sgdtail.data import load_prepared
from sgdtail.io import load_torch, setup_logging, write_job_usage, write_json
from sgdtail.losses import get_loss
from sgdtail.models import build_model
from sgdtail.sharpness import gradient_to_noise, random_direction_sharpness, top_hessian_eigenvalue
from sgdtail.train import resolve_device

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
w = snakemake.wildcards
s = snakemake.params.sharpness
device = resolve_device(snakemake.params.device)
data = load_prepared(snakemake.input.data, device=device)
ckpt = load_torch(snakemake.input.checkpoints)
step = int(ckpt["steps"].max())
model = build_model(w.arch, int(w.width), int(w.depth), data.input_shape, data.num_classes)
model.load_state_dict(ckpt["state_dicts"][str(step)])
model.to(device).eval()
loss_fn = get_loss(w.loss)
x, y = data.x_train[: s["train_subset"]], data.y_train[: s["train_subset"]]
finite = all(torch.isfinite(p).all() for p in model.parameters())
result = {"step": step, "train_subset": len(x), "finite_weights": bool(finite)}
if finite:
    start = time.perf_counter()
    eig = top_hessian_eigenvalue(
        model, loss_fn, x, y, max_products=s["max_hessian_products"], tol=s["tolerance"]
    )
    grad = gradient_to_noise(model, loss_fn, x, y, int(w.batch_size))
    result.update(
        top_hessian_eigenvalue=eig["eigenvalue"],
        hessian_converged=eig["converged"],
        hessian_products=eig["products"],
        hessian_relative_residual=eig["relative_residual"],
        random_direction_sharpness=random_direction_sharpness(
            model, loss_fn, x, y, n_dirs=s["directions"], radius=s["radius"]
        ),
        end_loss=grad["loss"],  # not "loss": that is a grid axis
        gradient_norm=grad["gradient_norm"],
        gradient_noise_norm=grad["noise_norm"],
        gradient_to_noise=grad["ratio"],
        gradient_examples=grad["examples"],
        gradient_minibatch=grad["minibatch"],
        seconds=time.perf_counter() - start,
    )
write_json(snakemake.output.sharpness, result)
write_job_usage(snakemake.output.usage)
