"""Plain SGD on an in-memory data set, with checkpoints, resumption and divergence handling.

One run = one grid point. The whole training set lives in one tensor on the
device; minibatches are drawn by a seeded ``torch.Generator`` as epochs of
random permutations (the last partial batch of an epoch is dropped, like a
shuffled DataLoader with ``drop_last``). Nothing in the hot loop synchronises
with the device except the periodic divergence check.

Files written into the run folder (all atomically):

- ``checkpoints.pt``: ``{"steps": LongTensor[n], "state_dicts": {str(step): state_dict}}``
- ``checkpoint_metrics.csv``: step, lr, train/test loss and accuracy over the full splits
- ``train_log.csv``: step, lr, minibatch loss and accuracy, every SGD step
- ``run.json``: status (completed, converged, diverged), steps done, the step of
  divergence, the resolved configuration, data hash, provenance (package versions; CUDA,
  cuDNN and the GPU model on a GPU) and timings
- ``resume.pt`` (not an output): the full training state, saved every
  ``resume_every`` steps and at each checkpoint, and removed on success. A run
  killed at any point restarts from it and ends bit-identical (on CPU) to an
  uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from sgdtail import io
from sgdtail.data import PreparedData
from sgdtail.losses import get_loss
from sgdtail.models import build_model, count_parameters

log = logging.getLogger(__name__)

STATUS_COMPLETED = "completed"
STATUS_CONVERGED = "converged"
STATUS_DIVERGED = "diverged"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one SGD run (grid axes plus the training section of config)."""

    dataset: str
    arch: str
    width: int
    depth: int
    batch_size: int
    lr: float
    loss: str
    seed: int
    iterations: int
    checkpoints: tuple[int, ...]
    lr_schedule: str = "constant"
    stop_at_train_accuracy: float | None = None
    eval_batch_size: int = 5000
    resume_every: int = 1000
    divergence_check_every: int = 100

    def fingerprint(self) -> str:
        """Hash of every field: a resume file is only used by the run that wrote it."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error.

    On CUDA, TF32 is switched off for matrix products and convolutions: cuDNN
    uses it by default, and its 10-bit mantissa made AlexNet's weights drift
    ~1% from the CPU's after 300 SGD steps (measured on an H200), while the
    study needs float32 arithmetic on every device.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "training.device is 'cuda' but no CUDA device is visible; set training.device: auto"
            )
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for the update that produces step ``step + 1``."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "halve":
        halvings = int(step >= cfg.iterations / 3) + int(step >= 2 * cfg.iterations / 3)
        return cfg.lr * 0.5**halvings
    raise ValueError(f"training.lr_schedule {cfg.lr_schedule!r}: allowed constant, halve")


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    """Mean loss and accuracy over (x, y), in eval mode, in chunks of ``batch_size``."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out = model(xb)
        total_loss += loss_fn(out, yb).double() * len(xb)
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    return total_loss.item() / len(x), correct.item() / len(x)


class MinibatchSampler:
    """Epochs of seeded random permutations of ``range(n)``, cut into batches of ``b``."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > n:
            raise ValueError(
                f"batch_size {batch_size} is larger than the training set ({n} images); "
                "lower batch_size in the grid"
            )
        self.n, self.b, self.device = n, batch_size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """Indices of the next minibatch (on the data's device)."""
        if self.pos + self.b > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.b]
        self.pos += self.b
        return idx.to(self.device, non_blocking=True)

    def state(self) -> dict:
        return {"perm": self.perm.clone(), "pos": self.pos, "gen": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.perm, self.pos = state["perm"], int(state["pos"])
        self.generator.set_state(state["gen"])


def _cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train_sgd(
    cfg: TrainConfig, data: PreparedData, out_dir: str | Path, device: torch.device
) -> dict:
    """Run plain SGD for ``cfg`` on ``data``; write the run folder; return run.json's content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume_path = out / "resume.pt"
    loss_fn = get_loss(cfg.loss)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, cfg.width, cfg.depth, data.input_shape, data.num_classes)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    sampler = MinibatchSampler(len(data.x_train), cfg.batch_size, cfg.seed, device)
    checkpoints = set(cfg.checkpoints)
    step = 0
    state_dicts: dict[str, dict[str, torch.Tensor]] = {}
    metrics: list[dict] = []
    step_loss = torch.full((cfg.iterations,), float("nan"), dtype=torch.float32)
    step_acc = torch.full((cfg.iterations,), float("nan"), dtype=torch.float32)
    status, diverged_at, resumed_from = STATUS_COMPLETED, None, None
    elapsed_before = 0.0

    if resume_path.exists():
        state = io.load_torch(resume_path)
        if state.get("fingerprint") == cfg.fingerprint() and state.get("data") == data.content_hash:
            model.load_state_dict(state["model"])
            sampler.load_state(state["sampler"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and "cuda_rng" in state:  # dropout masks on the GPU
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            step = int(state["step"])
            state_dicts = state["state_dicts"]
            metrics = json.loads(state["metrics"])
            step_loss[:step] = state["step_loss"][:step]
            step_acc[:step] = state["step_acc"][:step]
            elapsed_before = float(state["elapsed"])
            resumed_from = step
            log.info("resuming from step %d (%s)", step, resume_path)
        else:
            log.warning("ignoring %s: written by a different configuration or data", resume_path)

    def save_resume() -> None:
        io.save_torch(
            resume_path,
            {
                "fingerprint": cfg.fingerprint(),
                "data": data.content_hash,
                "step": step,
                "model": _cpu_state_dict(model),
                "sampler": sampler.state(),
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                "state_dicts": state_dicts,
                "metrics": json.dumps(metrics),
                "step_loss": step_loss[:step].clone(),
                "step_acc": step_acc[:step].clone(),
                "elapsed": elapsed_before + time.perf_counter() - t0,
            },
        )

    def checkpoint() -> bool:
        """Evaluate and save the weights at ``step``; True when training should stop."""
        model.eval()
        train_loss, train_acc = evaluate(
            model, loss_fn, data.x_train, data.y_train, cfg.eval_batch_size
        )
        test_loss, test_acc = evaluate(
            model, loss_fn, data.x_test, data.y_test, cfg.eval_batch_size
        )
        model.train()
        state_dicts[str(step)] = _cpu_state_dict(model)
        metrics.append(
            {
                "step": step,
                "lr": lr_at(step, cfg),
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
            }
        )
        log.info("step %d: train acc %.4f, test acc %.4f", step, train_acc, test_acc)
        target = cfg.stop_at_train_accuracy
        return target is not None and train_acc >= target

    x_train, y_train = data.x_train, data.y_train
    losses_dev = torch.empty(cfg.iterations, device=device)
    accs_dev = torch.empty(cfg.iterations, device=device)
    chunk_start = step
    t0 = time.perf_counter()

    def flush_chunk() -> int | None:
        """Copy logged losses to the CPU; the first non-finite step, if any."""
        nonlocal chunk_start
        if step > chunk_start:
            step_loss[chunk_start:step] = losses_dev[chunk_start:step].cpu()
            step_acc[chunk_start:step] = accs_dev[chunk_start:step].cpu()
            bad = (~torch.isfinite(step_loss[chunk_start:step])).nonzero()
            first_bad = chunk_start + int(bad[0]) if len(bad) else None
            chunk_start = step
            return first_bad
        return None

    stop = step in checkpoints and resumed_from is None and checkpoint()
    while step < cfg.iterations and not stop:
        lr = lr_at(step, cfg)
        idx = sampler.next()
        xb, yb = x_train[idx], y_train[idx]
        logits = model(xb)
        loss = loss_fn(logits, yb)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)
            losses_dev[step] = loss.detach()
            accs_dev[step] = (logits.argmax(1) == yb).float().mean()
        step += 1
        at_checkpoint = step in checkpoints
        at_resume = step % cfg.resume_every == 0
        if (
            at_checkpoint
            or at_resume
            or step == cfg.iterations
            or step % cfg.divergence_check_every == 0
        ):
            first_bad = flush_chunk()
            if first_bad is not None:
                status, diverged_at = STATUS_DIVERGED, first_bad + 1
                log.warning("loss is not finite at step %d: run diverged", diverged_at)
                break
        if at_checkpoint and checkpoint():
            status = STATUS_CONVERGED
            stop = True
        if at_checkpoint or at_resume:
            save_resume()
    if status != STATUS_DIVERGED and stop and step == 0:
        status = STATUS_CONVERGED
    elapsed = elapsed_before + time.perf_counter() - t0

    last = step if status != STATUS_DIVERGED else diverged_at - 1
    steps = sorted(int(s) for s in state_dicts)
    io.save_torch(
        out / "checkpoints.pt",
        {"steps": torch.tensor(steps, dtype=torch.int64), "state_dicts": state_dicts},
    )
    io.write_table(out / "checkpoint_metrics.csv", pd.DataFrame(metrics))
    n_logged = cfg.iterations if status != STATUS_DIVERGED else diverged_at
    io.write_table(
        out / "train_log.csv",
        pd.DataFrame(
            {
                "step": range(1, n_logged + 1),
                "lr": [lr_at(s, cfg) for s in range(n_logged)],
                "loss": step_loss[:n_logged].numpy(),
                "accuracy": step_acc[:n_logged].numpy(),
            }
        ).dropna(subset=["accuracy"]),
    )
    info = {
        "status": status,
        "steps_done": last,
        "diverged_at": diverged_at,
        "resumed_from": resumed_from,
        "checkpoints_saved": steps,
        "n_parameters": count_parameters(model),
        "config": dataclasses.asdict(cfg),
        "data_hash": data.content_hash,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "seconds": elapsed,
        "steps_per_second": (last / elapsed) if elapsed > 0 and last else math.nan,
        "provenance": io.provenance(device),
    }
    io.write_json(out / "run.json", info)
    resume_path.unlink(missing_ok=True)
    return info
