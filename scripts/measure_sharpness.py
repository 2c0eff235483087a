"""Rule measure_sharpness: top Hessian eigenvalue and random-direction sharpness at the end."""

import torch

from sgdtail.data import load_prepared
from sgdtail.io import load_torch, setup_logging, write_json
from sgdtail.losses import get_loss
from sgdtail.models import build_model
from sgdtail.sharpness import random_direction_sharpness, top_hessian_eigenvalue
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
    result["top_hessian_eigenvalue"] = top_hessian_eigenvalue(
        model, loss_fn, x, y, iters=s["power_iterations"], tol=s["tolerance"]
    )
    result["random_direction_sharpness"] = random_direction_sharpness(
        model, loss_fn, x, y, n_dirs=s["directions"], radius=s["radius"]
    )
write_json(snakemake.output[0], result)
