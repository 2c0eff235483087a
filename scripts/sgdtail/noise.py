"""Gradient noise at a checkpoint: all minibatch gradients, the full gradient, the noise.

For a split of N images and batch size b, the split is cut *in order* into
P = N // b disjoint minibatches (PAPER.md, "How the noise is measured"). Each
minibatch gradient g_p (all M trainable parameters, eval mode, dropout off) is
computed by a plain autograd loop, so the cost is close to one
forward+backward pass over the split. The noise
U_p = g_p − ḡ is streamed, chunk by chunk, into the estimators' running sums
(:class:`sgdtail.estimators.StreamingTailStats`); the P×M noise matrix is never
held unless it fits in the memory budget.

Remainder (b does not divide N):
- ``drop``: the last N mod b images are ignored; ḡ is the mean of the P
  minibatch gradients (the full gradient of the first P·b images).
- ``weight``: ḡ is the full gradient over all N images (the remainder batch
  enters with its weight r/N); noise samples come from the P full minibatches only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from sgdtail.estimators import StreamingTailStats
from sgdtail.models import layer_slices


@dataclass
class NoiseResult:
    """What one measurement produced."""

    rows: list[dict]  # estimator rows (see StreamingTailStats.finalize)
    norms: torch.Tensor  # (P,) float64: ‖U_p‖₂ of each minibatch noise vector
    n_minibatches: int
    n_parameters: int
    gradient_norm: float  # ‖ḡ‖₂
    seconds: float
    passes: int  # 1 when all gradients fit in the budget, else 2


def minibatch_gradients(
    model: torch.nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    groups_per_chunk: int,
) -> Iterator[torch.Tensor]:
    """Yield the gradients of consecutive minibatches, ``groups_per_chunk`` at a time.

    Minibatch p holds images [p·b, (p+1)·b). Each yielded tensor has shape
    (G, M), float32, on the data's device, in ``parameters_to_vector`` order.
    Only full minibatches are produced (P = N // b of them). A plain autograd
    loop: measured on 2 CPU cores it is as fast as ``torch.func.vmap`` over
    minibatches and works for every module.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    n_groups = len(x) // batch_size
    for start in range(0, n_groups, groups_per_chunk):
        stop = min(start + groups_per_chunk, n_groups)
        chunk = torch.empty(stop - start, n_params, device=x.device)
        for p in range(start, stop):
            xb = x[p * batch_size : (p + 1) * batch_size]
            yb = y[p * batch_size : (p + 1) * batch_size]
            grads = torch.autograd.grad(loss_fn(model(xb), yb), params)
            torch.cat([g.reshape(-1) for g in grads], out=chunk[p - start])
        yield chunk


def full_gradient(
    model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor, chunk: int
) -> torch.Tensor:
    """Gradient (M,) of the mean loss over all of (x, y), in chunks weighted by their size."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        loss = loss_fn(model(xb), yb) * (len(xb) / len(x))
        for acc, g in zip(total, torch.autograd.grad(loss, params), strict=True):
            acc += g
    return torch.cat([t.reshape(-1) for t in total])


def groups_per_chunk(n_parameters: int, budget_bytes: int) -> int:
    """Minibatches per streamed chunk: a chunk of gradients and its noise use 1/8 of the budget."""
    per_group = 4 * n_parameters * 2  # float32 gradient row and noise row
    return max(1, budget_bytes // 8 // per_group)


def measure_noise(
    model: torch.nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    remainder: str = "drop",
    memory_budget_mb: float = 512,
    estimator_options: dict | None = None,
) -> NoiseResult:
    """Measure the gradient noise of ``model`` on (x, y) and estimate its tail index.

    ``estimator_options`` are passed to :class:`StreamingTailStats`. The model
    is put in eval mode for the measurement and restored afterwards.
    """
    if remainder not in ("drop", "weight"):
        raise ValueError(f"noise.remainder is {remainder!r}; allowed: drop, weight")
    n_groups = len(x) // batch_size
    if n_groups < 2:
        raise ValueError(
            f"the split has {len(x)} images, fewer than two minibatches of {batch_size}; "
            "the noise needs at least two: lower batch_size or use a larger split"
        )
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    slices = layer_slices(model)
    n_params = slices[-1][2]
    budget = int(memory_budget_mb * 2**20)
    chunk = groups_per_chunk(n_params, budget)
    fits = 4 * n_params * n_groups <= budget

    held: list[torch.Tensor] = []
    if fits:  # one pass: keep every gradient, ḡ is their mean
        held = list(minibatch_gradients(model, loss_fn, x, y, batch_size, chunk))
        gbar = (sum(g.sum(0, dtype=torch.float64) for g in held) / n_groups).float()
        passes = 1
    else:  # two passes: ḡ from a large-batch pass first, then recompute the g_p
        passes = 2
        gbar = None
    if remainder == "weight" and len(x) % batch_size:
        gbar = full_gradient(model, loss_fn, x, y, chunk=max(batch_size * chunk, 1024))
    elif gbar is None:
        used = n_groups * batch_size
        gbar = full_gradient(
            model, loss_fn, x[:used], y[:used], chunk=max(batch_size * chunk, 1024)
        )

    stats = StreamingTailStats(n_groups, n_params, slices, **(estimator_options or {}))
    norms = []
    source = held if fits else minibatch_gradients(model, loss_fn, x, y, batch_size, chunk)
    for g in source:
        u = g - gbar
        norms.append(torch.linalg.vector_norm(u, dim=1).double().cpu())
        stats.update(u.cpu())  # the estimators run on the host (numpy)
        del u
    held.clear()
    rows = stats.finalize()
    model.train(was_training)
    return NoiseResult(
        rows=rows,
        norms=torch.cat(norms),
        n_minibatches=n_groups,
        n_parameters=n_params,
        gradient_norm=float(torch.linalg.vector_norm(gbar.double())),
        seconds=time.perf_counter() - t0,
        passes=passes,
    )


def measure_checkpoints(
    checkpoints: dict,
    build: Callable[[], torch.nn.Module],
    loss_fn: Callable,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    batch_size: int,
    *,
    remainder: str,
    memory_budget_mb: float,
    estimator_options: dict,
) -> tuple[list[dict], list[dict]]:
    """Measure every saved checkpoint of a run on every split.

    ``checkpoints`` is the content of a run's ``checkpoints.pt``; ``build``
    returns a fresh model on the data's device. Returns (estimate rows, norm
    rows): each estimate row is a StreamingTailStats row plus ``step``,
    ``split``, ``n_minibatches``, ``n_parameters``, ``gradient_norm``,
    ``seconds`` and ``note``; each norm row is (step, split, minibatch, norm).
    A checkpoint whose weights are not finite is skipped with a row saying so.
    """
    estimates: list[dict] = []
    norms: list[dict] = []
    model = build()
    device = next(model.parameters()).device
    for step in (int(s) for s in checkpoints["steps"]):
        state = checkpoints["state_dicts"][str(step)]
        finite = all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
        for split, (x, y) in splits.items():
            base = {"step": step, "split": split}
            if not finite:
                estimates.append({**base, "estimator": "none", "note": "weights not finite"})
                continue
            res = measure_noise(
                model,
                loss_fn,
                x,
                y,
                batch_size,
                remainder=remainder,
                memory_budget_mb=memory_budget_mb,
                estimator_options=estimator_options,
            )
            extra = {
                "n_minibatches": res.n_minibatches,
                "n_parameters": res.n_parameters,
                "gradient_norm": res.gradient_norm,
                "seconds": res.seconds,
                "note": "",
            }
            estimates.extend({**base, **row, **extra} for row in res.rows)
            norms.extend(
                {**base, "minibatch": p, "norm": float(v)} for p, v in enumerate(res.norms)
            )
    return estimates, norms
