"""Gradient noise at a checkpoint: all minibatch gradients, the full gradient, the noise.

For a split of N images and batch size b, the split is cut *in order* into
P = N // b disjoint minibatches (the 2019 procedure; docs/science.md, "How it is measured"). Each
minibatch gradient g_p (all M trainable parameters; eval mode: dropout off, batch norm
normalising with its running statistics, which the measurement leaves unchanged) is
computed, for all-``nn.Linear`` models (the FCN), from one large-batch
forward+backward pass per chunk of minibatches and one batched matrix
product per layer, and otherwise by a plain autograd loop; either way the
cost is close to one forward+backward pass over the split
(``scripts/benchmark.py noise`` prints the ratio). The gradients are
streamed, chunk by chunk: each chunk becomes its noise U_p = g_p − ḡ in place,
its rows' norms are taken, and it goes into the estimators' running sums
(:class:`sgdtail.estimators.StreamingTailStats`); the P×M gradient matrix is
held only when it fits in the memory budget.

Preconditioned noise (adaptive optimizers, :data:`sgdtail.grid.PRECONDITIONED_OPTIMIZERS`):
with the optimizer's elementwise divisor d at the checkpoint (Adam: √v̂ + ε,
:func:`sgdtail.optim.adam_preconditioner`), the noise the optimizer steps with is
g_p / d − ḡ / d = U_p / d. Each chunk of U, once in the gradient noise's estimators, is
divided by d in place and streamed through a second set of the same estimators: no
second pass over the data.

Remainder (b does not divide N):
- ``drop``: the last N mod b images are ignored; ḡ is the mean of the P
  minibatch gradients (the full gradient of the first P·b images).
- ``weight``: ḡ is the full gradient over all N images (the remainder batch
  enters with its weight r/N); noise samples come from the P full minibatches only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from sgdtail.estimators import StreamingTailStats
from sgdtail.grid import (
    DEFAULT_OPTIMIZER,
    GRADIENT_NOISE,
    PRECONDITIONED_NOISE,
    PRECONDITIONED_OPTIMIZERS,
)
from sgdtail.models import layer_slices
from sgdtail.optim import preconditioner

log = logging.getLogger(__name__)


@dataclass
class NoiseResult:
    """What one measurement produced."""

    rows: list[dict]  # estimator rows (see StreamingTailStats.finalize)
    norms: torch.Tensor  # (P,) float64: ‖U_p‖₂ of each minibatch noise vector
    n_minibatches: int
    n_parameters: int
    gradient_norm: float  # ‖ḡ‖₂
    seconds: float  # wall time of the whole measurement
    estimator_seconds: float  # of which forming U = g - ḡ, its norms and the estimators
    passes: int  # 1 when all gradients fit in the budget, else 2
    preconditioned_rows: list[dict] | None = None  # estimator rows of U / d (with a divisor d)
    preconditioned_gradient_norm: float = float("nan")  # ‖ḡ / d‖₂


def minibatch_gradients(
    model: torch.nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    groups_per_chunk: int,
    *,
    method: str = "auto",
    out: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the gradients of consecutive minibatches, ``groups_per_chunk`` at a time.

    Minibatch p holds images [p·b, (p+1)·b). Each yielded tensor has shape
    (G, M), float32, on the data's device, in ``parameters_to_vector`` order.
    Only full minibatches are produced (P = N // b of them).

    ``out``: optional float32 (R, M) buffer the chunks are written into (no
    fresh memory, whose pages are slow to touch the first time, per chunk).
    With R ≥ P, chunk rows land at their own rows of ``out``; with
    groups_per_chunk ≤ R < P every chunk reuses rows 0..G−1, so a yielded
    chunk is overwritten by the next one.

    ``method``:

    * ``"blocked"``: for models whose trainable parameters all belong to
      ``nn.Linear`` layers (the FCN), one forward and one backward pass over
      the G·b images of a chunk, then each layer's G minibatch weight
      gradients as one batched matrix product of its saved inputs and output
      gradients (``bmm`` of (G, out, b) by (G, b, in)). Same arithmetic as
      G separate backward passes, at the cost of one large-batch
      forward+backward (docs/benchmarks.md compares it with the loop). Valid
      because every loss here is a mean of per-image terms and, in eval mode,
      each image's forward pass is independent of the others.
    * ``"loop"``: a plain autograd loop, one backward pass per minibatch;
      works for every module (AlexNet's conv layers).
    * ``"auto"``: ``blocked`` where it applies, else ``loop``.
    """
    if method not in ("auto", "blocked", "loop"):
        raise ValueError(f"method is {method!r}; allowed: auto, blocked, loop")
    plan = _linear_plan(model, x[:1]) if method != "loop" and len(x) else None
    if method == "blocked" and plan is None:
        raise ValueError(
            "method='blocked' needs a model whose trainable parameters all belong to "
            "nn.Linear layers, each called once per forward pass on (batch, features) "
            "inputs; use method='loop' or 'auto'"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    n_groups = len(x) // batch_size
    _check_out_buffer(out, n_params, min(groups_per_chunk, n_groups))

    def buffer(start: int, stop: int) -> torch.Tensor:
        if out is None:
            return torch.empty(stop - start, n_params, device=x.device)
        offset = start if out.shape[0] >= n_groups else 0
        return out[offset : offset + stop - start]

    if plan is not None:
        yield from _blocked_gradients(
            model, loss_fn, x, y, batch_size, groups_per_chunk, plan, buffer
        )
    else:
        yield from _looped_gradients(model, loss_fn, x, y, batch_size, groups_per_chunk, buffer)


def _check_out_buffer(out: torch.Tensor | None, n_params: int, rows: int) -> None:
    """``out`` is None or a float32 (R, ``n_params``) tensor with R ≥ ``rows``."""
    if out is not None and (
        out.dim() != 2
        or out.shape[1] != n_params
        or out.shape[0] < rows
        or out.dtype != torch.float32
    ):
        raise ValueError(
            f"out must be a float32 (R, {n_params}) tensor with R >= "
            f"{rows}, got {tuple(out.shape)} {out.dtype}"
        )


def _looped_gradients(
    model: torch.nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    groups_per_chunk: int,
    buffer: Callable[[int, int], torch.Tensor],
) -> Iterator[torch.Tensor]:
    """Minibatch gradients of any model (see :func:`minibatch_gradients`): one backward
    pass per minibatch, written into rows of ``buffer(start, stop)`` chunk by chunk."""
    params = [p for p in model.parameters() if p.requires_grad]
    n_groups = len(x) // batch_size
    for start in range(0, n_groups, groups_per_chunk):
        stop = min(start + groups_per_chunk, n_groups)
        chunk = buffer(start, stop)
        for p in range(start, stop):
            xb = x[p * batch_size : (p + 1) * batch_size]
            yb = y[p * batch_size : (p + 1) * batch_size]
            grads = torch.autograd.grad(loss_fn(model(xb), yb), params)
            torch.cat([g.reshape(-1) for g in grads], out=chunk[p - start])
        yield chunk


def _linear_plan(
    model: torch.nn.Module, probe: torch.Tensor
) -> list[tuple[torch.nn.Linear, str, int]] | None:
    """(layer, "weight" | "bias", numel) per trainable parameter, in parameter
    order, when every trainable parameter is the weight or bias of an
    ``nn.Linear`` that a forward pass of ``probe`` (one image) calls exactly
    once, on a (batch, features) input; else None."""
    owners = _linear_owners(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or any(id(p) not in owners for p in params):
        return None
    plan = [(*owners[id(p)], p.numel()) for p in params]
    layers = list(dict.fromkeys(mod for mod, _, _ in plan))
    return plan if _each_called_once_on_rows(model, probe, layers) else None


def _linear_owners(model: torch.nn.Module) -> dict[int, tuple[torch.nn.Linear, str]]:
    """``id`` of each ``nn.Linear`` weight and bias in ``model`` → (its layer, its kind)."""
    owners: dict[int, tuple[torch.nn.Linear, str]] = {}
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            for kind in ("weight", "bias"):
                p = getattr(mod, kind)
                if p is not None:
                    owners[id(p)] = (mod, kind)
    return owners


def _each_called_once_on_rows(
    model: torch.nn.Module, probe: torch.Tensor, layers: list[torch.nn.Linear]
) -> bool:
    """Whether a forward pass of ``probe`` calls each of ``layers`` exactly once, on a
    2-D (batch, features) input."""
    calls: dict[torch.nn.Linear, list[int]] = {mod: [] for mod in layers}
    handles = [
        mod.register_forward_hook(lambda m, inputs, _: calls[m].append(inputs[0].dim()))
        for mod in calls
    ]
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for h in handles:
            h.remove()
    return all(dims == [2] for dims in calls.values())


#: Images per forward+backward pass of the blocked minibatch gradients.
FORWARD_IMAGES = 4096


def _blocked_gradients(
    model: torch.nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    groups_per_chunk: int,
    plan: list[tuple[torch.nn.Linear, str, int]],
    buffer: Callable[[int, int], torch.Tensor],
) -> Iterator[torch.Tensor]:
    """Minibatch gradients of an all-``nn.Linear`` model (see
    :func:`minibatch_gradients`): chunks of ``groups_per_chunk`` minibatches,
    each filled by forward+backward passes over about :data:`FORWARD_IMAGES`
    images and one ``bmm`` per layer."""
    layers = list(dict.fromkeys(mod for mod, _, _ in plan))
    saved: dict[torch.nn.Linear, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(mod, inputs, output):  # (input, output) of the layer's one call
        saved[mod] = (inputs[0], output)

    n_groups = len(x) // batch_size
    b = batch_size
    handles = [mod.register_forward_hook(keep) for mod in layers]
    try:
        for start in range(0, n_groups, groups_per_chunk):
            stop = min(start + groups_per_chunk, n_groups)
            chunk = buffer(start, stop)
            # forward+backward over about FORWARD_IMAGES images at a time, not the
            # whole chunk at once (docs/benchmarks.md)
            step = max(1, FORWARD_IMAGES // b)
            for s0 in range(start, stop, step):
                s1 = min(s0 + step, stop)
                g = s1 - s0
                saved.clear()
                with torch.enable_grad():
                    out = model(x[s0 * b : s1 * b])  # each layer called once (_linear_plan)
                    # mean over g·b images × g = Σ_p (mean over minibatch p)
                    loss = loss_fn(out, y[s0 * b : s1 * b]) * g
                    outputs = [saved[mod][1] for mod in layers]
                    deltas = dict(zip(layers, torch.autograd.grad(loss, outputs), strict=True))
                rows = chunk[s0 - start : s1 - start]
                offset = 0
                for mod, kind, numel in plan:
                    d = deltas[mod].reshape(g, b, -1)
                    block = rows[:, offset : offset + numel]
                    if kind == "weight":  # written in place (strided out= of bmm, no copy)
                        a = saved[mod][0].detach().reshape(g, b, -1)
                        torch.bmm(d.transpose(1, 2), a, out=block.view(g, d.shape[2], a.shape[2]))
                    else:
                        torch.sum(d, dim=1, out=block)
                    offset += numel
                saved.clear()
            yield chunk
    finally:
        for h in handles:
            h.remove()


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


def available_memory_mb() -> float:
    """Memory available to new allocations now, in MB (psutil, else MemAvailable in
    /proc/meminfo; inf when neither can tell)."""
    try:
        import psutil

        return psutil.virtual_memory().available / 2**20
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def estimator_options(estimators: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`StreamingTailStats` keyword arguments from the ``estimators`` config
    section (the noise and the iterates are estimated alike)."""
    return {
        "exclude_zeros": estimators["exclude_zeros"],
        "robust_factors": tuple(estimators["robust_k1_factors"]),
        "ci_groups": estimators["ci_groups"],
        "ci_level": estimators["ci_level"],
        "shuffle_seed": estimators["shuffle_seed"],
    }


def auto_budget_mb(job_budget_mb: float) -> float:
    """The gradient budget under ``noise.memory_budget_mb: auto``: what the job's mem_mb
    leaves (``job_budget_mb``), at most half the memory available now (a local run may
    have less than the job asked for)."""
    return max(16.0, min(float(job_budget_mb), available_memory_mb() / 2))


def groups_per_chunk(n_parameters: int, budget_bytes: int) -> int:
    """Minibatches per streamed chunk: a chunk of float32 gradient rows, counted twice,
    takes 1/8 of the budget (the noise is formed in place; the factor 2 is headroom)."""
    per_group = 4 * n_parameters * 2
    return max(1, budget_bytes // 8 // per_group)


def _column_sums(g: torch.Tensor, rows: int = 16) -> torch.Tensor:
    """Float64 column sums of a float32 (R, M) tensor: float32 sums of ``rows``
    rows at a time, added in float64 (agrees with a float64 sum to ~1e-7
    relative; ``sum(dtype=torch.float64)`` would convert every value first,
    which is slower: docs/benchmarks.md)."""
    total = torch.zeros(g.shape[1], dtype=torch.float64, device=g.device)
    for start in range(0, g.shape[0], rows):
        total += g[start : start + rows].sum(0)
    return total


_WORKSPACES: dict[str, torch.Tensor] = {}


def _workspace(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """A float32 (rows, cols) view of one buffer per device, kept between
    measurements (a run measures every checkpoint on two splits) and grown when
    too small; its contents are undefined."""
    key = str(device)
    buf = _WORKSPACES.get(key)
    if buf is None or buf.numel() < rows * cols:
        _WORKSPACES.pop(key, None)
        del buf  # free the old buffer before allocating the larger one
        buf = torch.empty(rows * cols, device=device)
        _WORKSPACES[key] = buf
    return buf[: rows * cols].view(rows, cols)


def release_workspaces() -> None:
    """Free the buffers kept between measurements (see :func:`_workspace`)."""
    _WORKSPACES.clear()


def minibatch_order(
    x: torch.Tensor, y: torch.Tensor, order: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The split in the order its minibatches are cut: ``"given"`` keeps the stored order (the
    2019 procedure, which assumes the data set's order is random); ``"shuffled"`` applies one
    fixed permutation drawn from ``seed``, so that a data set stored sorted by class (each
    minibatch one class, a coordinate's noise keeping its sign over consecutive minibatches)
    does not bias the block estimators."""
    if order == "given":
        return x, y
    if order != "shuffled":
        raise ValueError(f"noise.order is {order!r}; allowed: given, shuffled")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))
    perm = perm.to(x.device)
    return x.index_select(0, perm), y.index_select(0, perm)


def _check_measurement(remainder: str, n_images: int, batch_size: int) -> int:
    """P, the number of minibatches of ``batch_size`` in a split of ``n_images``; a one-line
    error for a bad remainder rule or fewer than two minibatches."""
    if remainder not in ("drop", "weight"):
        raise ValueError(f"noise.remainder is {remainder!r}; allowed: drop, weight")
    n_groups = n_images // batch_size
    if n_groups < 2:
        raise ValueError(
            f"the split has {n_images} images, fewer than two minibatches of {batch_size}; "
            "the noise needs at least two: lower batch_size or use a larger split"
        )
    return n_groups


def _gradient_source(
    model, loss_fn, x, y, batch_size: int, remainder: str, memory_budget_mb: float
) -> tuple[Iterable[torch.Tensor], torch.Tensor, int]:
    """(chunks of minibatch gradients, ḡ, passes): with every gradient held when all P fit in
    the budget (one pass; ḡ their mean, unless the remainder counts), else ḡ from a
    large-batch pass first and the gradients recomputed chunk by chunk (two passes)."""
    n_groups = len(x) // batch_size
    n_params = layer_slices(model)[-1][2]
    budget = int(memory_budget_mb * 2**20)
    chunk = groups_per_chunk(n_params, budget)
    fits = 4 * n_params * n_groups <= budget
    # one reusable buffer per device: all P gradients when they fit, else one chunk
    out = _workspace(n_groups if fits else min(chunk, n_groups), n_params, x.device)
    weighted = remainder == "weight" and len(x) % batch_size > 0
    if fits:
        held = list(minibatch_gradients(model, loss_fn, x, y, batch_size, chunk, out=out))
        if not weighted:
            gbar = (sum(_column_sums(g) for g in held) / n_groups).float()
            return held, gbar, 1
    used = len(x) if weighted else n_groups * batch_size
    gbar = full_gradient(model, loss_fn, x[:used], y[:used], chunk=max(batch_size * chunk, 1024))
    if fits:
        return held, gbar, 1
    return minibatch_gradients(model, loss_fn, x, y, batch_size, chunk, out=out), gbar, 2


def _center(g: torch.Tensor, gbar: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """The noise U_p = g_p − ḡ of each row of ``g``, formed in place (the gradients are
    not needed again), and ``norms`` (float64, on the host) = ‖U_p‖₂, its squares added
    in float64: one compiled pass over a contiguous chunk on the CPU
    (:func:`sgdtail.kernels.center_rows`), else torch ops on the chunk's device."""
    if norms.shape != g.shape[:1] or gbar.shape != g.shape[1:]:
        raise ValueError(  # the compiled pass would read or write past an array's end
            f"gradients {tuple(g.shape)} need ḡ ({g.shape[1]},) and norms ({g.shape[0]},); "
            f"got {tuple(gbar.shape)} and {tuple(norms.shape)}"
        )
    if g.device.type == "cpu" and g.is_contiguous():
        from sgdtail import kernels  # numba is imported on first use

        kernels.center_rows(g.numpy(), gbar.numpy(), norms.numpy())
        return g
    g.sub_(gbar)
    norms.copy_(torch.linalg.vector_norm(g, dim=1, dtype=torch.float64).cpu())
    return g


def _stream_noise(
    source: Iterable[torch.Tensor],
    gbar: torch.Tensor,
    stats: StreamingTailStats,
    pstats: StreamingTailStats | None,
    divisor: torch.Tensor | None,
) -> tuple[torch.Tensor, float]:
    """Form the noise U = g − ḡ of each chunk of ``source`` in place, take its rows' norms
    and feed it to ``stats`` (and U / d to ``pstats``); returns (norms (P,) float64, the
    seconds spent outside ``source``)."""
    norms = torch.empty(stats.n_rows, dtype=torch.float64)
    seconds, done = 0.0, 0
    for g in source:
        t0 = time.perf_counter()
        u = _center(g, gbar, norms[done : done + len(g)])
        stats.update(u)
        if pstats is not None:  # the estimators keep no reference to u
            pstats.update(u.div_(divisor))
        seconds += time.perf_counter() - t0
        done += len(u)
    return norms, seconds


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
    divisor: torch.Tensor | None = None,
) -> NoiseResult:
    """Measure the gradient noise of ``model`` on (x, y) and estimate its tail index.

    ``estimator_options`` are passed to :class:`StreamingTailStats`; on a CUDA device its
    ``device`` defaults to the data's, so that the rows of U never leave the GPU
    (``device=None`` there estimates on the host instead). The model
    is put in eval mode for the measurement (dropout off; batch norm uses, and does not
    update, its running statistics) and restored afterwards. Per-layer rows name each
    layer by its parameter's name (:func:`sgdtail.models.layer_slices`). With ``divisor``
    (M,), an optimizer's elementwise preconditioner d, the preconditioned noise U_p / d
    goes through the same estimators too (``preconditioned_rows``).
    """
    n_groups = _check_measurement(remainder, len(x), batch_size)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    slices = layer_slices(model)
    n_params = slices[-1][2]
    source, gbar, passes = _gradient_source(
        model, loss_fn, x, y, batch_size, remainder, memory_budget_mb
    )
    t_est = time.perf_counter()
    options = {"device": x.device if x.device.type == "cuda" else None, **(estimator_options or {})}
    stats = StreamingTailStats(n_groups, n_params, slices, **options)
    pstats = None
    if divisor is not None:
        divisor = divisor.to(device=x.device, dtype=torch.float32)
        pstats = StreamingTailStats(n_groups, n_params, slices, **options)
    est_seconds = time.perf_counter() - t_est
    norms, seconds = _stream_noise(source, gbar, stats, pstats, divisor)
    est_seconds += seconds
    del source
    t_est = time.perf_counter()
    rows = stats.finalize()
    preconditioned_rows = pstats.finalize() if pstats is not None else None
    est_seconds += time.perf_counter() - t_est
    model.train(was_training)
    return NoiseResult(
        rows=rows,
        norms=norms,
        n_minibatches=n_groups,
        n_parameters=n_params,
        gradient_norm=float(torch.linalg.vector_norm(gbar.double())),
        seconds=time.perf_counter() - t0,
        estimator_seconds=est_seconds,
        passes=passes,
        preconditioned_rows=preconditioned_rows,
        preconditioned_gradient_norm=(
            float(torch.linalg.vector_norm(gbar.double() / divisor.double()))
            if divisor is not None
            else float("nan")
        ),
    )


def _pooled_alpha(rows: list[dict], estimator: str) -> float:
    """α̂ of ``estimator`` on the pooled noise in natural order (NaN when absent)."""
    for row in rows:
        if (row.get("estimator"), row.get("scope"), row.get("order")) == (
            estimator,
            "pooled",
            "natural",
        ):
            return float(row["alpha"])
    return float("nan")


def _report(
    item: int, total: int, step: int, split: str, rows: list[dict], seconds: float, kept: bool
) -> None:
    """One progress line per checkpoint × split: seconds, pooled α̂ (reference, robust), zeros."""
    zeros = next(
        (
            float(r["zero_fraction"])
            for r in rows
            if r.get("scope") == "pooled" and "zero_fraction" in r
        ),
        float("nan"),
    )
    log.info(
        "progress: %d/%d checkpoint step %d, split %s: %s; pooled alpha reference %.4g, "
        "robust %.4g; zero fraction %.4g",
        item,
        total,
        step,
        split,
        "kept from an earlier attempt" if kept else f"{seconds:.2f} s",
        _pooled_alpha(rows, "mohammadi_reference"),
        _pooled_alpha(rows, "mohammadi_robust"),
        zeros,
    )


def _state_key(state: dict, settings: dict) -> str:
    """SHA-256 of a checkpoint's tensors and the measurement settings: what a part is of."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' shapes, dtypes and values (a split's images and labels)."""
    import hashlib

    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{tuple(t.shape)} {t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _code_digest() -> str:
    """SHA-256 of the measurement's code (this module, the estimators, their kernels, the
    models and losses): a part written by other code is measured again."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for name in (
        "noise.py",
        "estimators.py",
        "kernels.py",
        "torch_kernels.py",
        "models.py",
        "losses.py",
    ):
        h.update((Path(__file__).with_name(name)).read_bytes())
    return h.hexdigest()


def _load_part(path, key: str) -> dict | None:
    """A finished checkpoint × split written by an earlier attempt, if it is this one's (a
    part that cannot be read, e.g. cut short by a kill, is measured again)."""
    from sgdtail import io

    if path is None or not path.exists():
        return None
    try:
        part = io.load_torch(path)
    except Exception:  # noqa: BLE001 - any unreadable file is simply measured again
        log.warning("noise part %s cannot be read: measuring it again", path)
        return None
    return part if isinstance(part, dict) and part.get("key") == key else None


def _preconditioned_estimates(
    res: NoiseResult | None, base: dict, extra: dict, note: str
) -> list[dict]:
    """Estimate rows of the preconditioned noise (``noise`` = preconditioned): the rows of
    ``res``, or one row with ``note`` when there are none (no optimizer state yet, weights
    not finite)."""
    base = {**base, "noise": PRECONDITIONED_NOISE}
    if res is None or res.preconditioned_rows is None:
        return [{**base, "estimator": "none", "note": note}]
    extra = {**extra, "gradient_norm": res.preconditioned_gradient_norm}
    return [{**base, **row, **extra} for row in res.preconditioned_rows]


def _measure_one(
    model,
    loss_fn,
    x,
    y,
    batch_size: int,
    base: dict,
    finite: bool,
    options: dict,
    precondition: tuple[bool, torch.Tensor | None] = (False, None),
) -> dict:
    """Estimate rows and norm rows of one checkpoint × split (the part file's content).

    ``precondition``: whether the run's optimizer preconditions its steps, and its divisor at
    this checkpoint (None before its first step). Estimate rows carry ``noise``: gradient,
    and for such an optimizer also preconditioned rows."""
    adaptive, divisor = precondition
    gradient = {**base, "noise": GRADIENT_NOISE}
    if not finite:
        note = "weights not finite"
        return {
            "estimates": [{**gradient, "estimator": "none", "note": note}]
            + (_preconditioned_estimates(None, base, {}, note) if adaptive else []),
            "norms": [],
            "seconds": 0.0,
        }
    res = measure_noise(model, loss_fn, x, y, batch_size, divisor=divisor, **options)
    extra = {
        "n_minibatches": res.n_minibatches,
        "n_parameters": res.n_parameters,
        "gradient_norm": res.gradient_norm,
        "seconds": res.seconds,
        "note": "",
    }
    estimates = [{**gradient, **row, **extra} for row in res.rows]
    if adaptive:
        note = "no optimizer state before the optimizer's first step"
        estimates += _preconditioned_estimates(res, base, extra, note)
    return {
        "estimates": estimates,
        "norms": [{**base, "minibatch": p, "norm": float(v)} for p, v in enumerate(res.norms)],
        "seconds": res.seconds,
    }


class _Parts:
    """The part files of one noise job: each checkpoint × split's rows in
    ``<parts_dir>/step<step>_<split>.pt``, keyed by a hash of the checkpoint's weights (and
    preconditioner), the split's data, the measurement code and ``settings``. With
    ``parts_dir`` None nothing is read or written."""

    def __init__(self, parts_dir, splits: dict, settings: dict) -> None:
        from pathlib import Path

        self.folder = Path(parts_dir) if parts_dir is not None else None
        self.settings = settings
        self.digests = dict.fromkeys(splits, "")
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.digests = {s: _tensor_digest(x, y) for s, (x, y) in splits.items()}

    def keys(self, state: dict) -> dict[str, str]:
        """Split -> what the part of this checkpoint (its tensors ``state``) × split is of."""
        if self.folder is None:
            return dict.fromkeys(self.digests, "")
        state_key = _state_key(state, self.settings)
        return {split: state_key + split + digest for split, digest in self.digests.items()}

    def load(self, step: int, split: str, key: str) -> dict | None:
        """The part written by an earlier attempt, if it is this one's (see :func:`_load_part`)."""
        return _load_part(self._path(step, split), key)

    def save(self, step: int, split: str, key: str, part: dict) -> None:
        """Write a measured part (atomically); nothing without a folder."""
        from sgdtail import io

        if self.folder is not None:
            io.save_torch(self._path(step, split), {**part, "key": key})

    def _path(self, step: int, split: str):
        return self.folder / f"step{step}_{split}.pt" if self.folder is not None else None


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
    parts_dir=None,
) -> tuple[list[dict], list[dict]]:
    """Measure every saved checkpoint of a run on every split.

    ``checkpoints`` is the content of a run's ``checkpoints.pt``; ``build``
    returns a fresh model on the data's device. Returns (estimate rows, norm
    rows): each estimate row is a StreamingTailStats row plus ``step``,
    ``split``, ``noise``, ``n_minibatches``, ``n_parameters``, ``gradient_norm``,
    ``seconds`` and ``note``; each norm row is (step, split, minibatch, norm) of the
    gradient noise. ``noise`` is ``gradient`` for the gradient noise; a run of an adaptive
    optimizer (``checkpoints["optimizer"]``, with its state at each checkpoint in
    ``checkpoints["optimizer_states"]``) also gets ``preconditioned`` rows: the same
    estimators on the noise divided by the optimizer's preconditioner at that checkpoint
    (module docstring). A checkpoint whose weights are not finite is skipped with a row
    saying so.

    With ``parts_dir`` (a folder), each checkpoint × split's rows are written there
    (atomically) as soon as they are measured, keyed by a hash of the checkpoint's weights,
    the split's data, the measurement code and the settings (not the gradient budget); a
    rerun after the job was killed loads the parts that match and measures only the rest
    (and any part it cannot read), so its tables equal an uninterrupted job's. A progress line per
    checkpoint × split goes to the log.
    """
    options = {
        "remainder": remainder,
        "memory_budget_mb": memory_budget_mb,
        "estimator_options": estimator_options,
    }
    parts = _Parts(
        parts_dir,
        splits,
        {  # what a part's numbers depend on (the gradient budget only changes whether the
            # gradients are computed in one pass or two, and grows on a retry)
            "remainder": remainder,
            "estimator_options": estimator_options,
            "batch_size": batch_size,
            "code": _code_digest(),
        },
    )
    estimates: list[dict] = []
    norms: list[dict] = []
    model = build()
    device = next(model.parameters()).device
    optimizer = checkpoints.get("optimizer", DEFAULT_OPTIMIZER)
    adaptive = optimizer in PRECONDITIONED_OPTIMIZERS
    n_tensors = sum(1 for p in model.parameters() if p.requires_grad)
    steps = [int(s) for s in checkpoints["steps"]]
    total, item = len(steps) * len(splits), 0
    for step in steps:
        state = checkpoints["state_dicts"][str(step)]
        finite = all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
        opt_state = checkpoints.get("optimizer_states", {}).get(str(step))
        divisor = preconditioner(optimizer, opt_state, n_tensors)
        keys = parts.keys(state if divisor is None else {**state, "preconditioner": divisor})
        for split, (x, y) in splits.items():
            item += 1
            key = keys[split]
            part = parts.load(step, split, key)
            kept = part is not None
            if part is None:
                base = {"step": step, "split": split}
                part = _measure_one(
                    model, loss_fn, x, y, batch_size, base, finite, options, (adaptive, divisor)
                )
                parts.save(step, split, key, part)
            _report(item, total, step, split, part["estimates"], part["seconds"], kept)
            estimates.extend(part["estimates"])
            norms.extend(part["norms"])
    release_workspaces()  # the gradient buffer is only reused within one run
    return estimates, norms
