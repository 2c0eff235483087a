"""The per-value kernels of :mod:`sgdtail.kernels` in torch ops, for rows of U that stay
on their device (a GPU): same names, arguments and results, with the rows, the per-column
state (``prod``, ``power``, ``zeros``, ``partial``), the bounds ``hi`` and the shuffled
stream's buffer and the ladder of block sums as tensors on that device; what comes back
to the host is small (the order-statistics candidates, the columns' extremes once, the
central block size's sums, and a handful of totals per piece).

Σ ℓ is taken as a float64 sum of logs here, not as a product: per column,
log(prod) + Σ ℓ over the new rows is split into k·log 2 + r (0 ≤ r < log 2), so that
prod = e^r and power += k keep the meaning they have in :func:`sgdtail.kernels.scan`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOG2 = math.log(2.0)


def scan(
    u, prod, power, zeros, partial, add, hi, lo, floor, eps, gather, place, gathered, values,
    columns, n,
) -> int:  # fmt: skip
    """:func:`sgdtail.kernels.scan` on u's device: one call per segment of rows, whose
    per-column work is a few tensor operations over the whole segment."""
    a = u.abs()
    logs = torch.where(a != 0, torch.log(a.double() + eps), 0.0).sum(0) + torch.log(prod)
    k = torch.floor(logs / LOG2)
    k = torch.where(torch.isfinite(k), k, 0.0)  # NaN or inf (refused later) stays in prod
    prod.copy_(torch.exp(logs - k * LOG2))
    power += k
    zeros += (a == 0).sum(0, dtype=zeros.dtype)
    if add:
        partial += u.sum(0, dtype=torch.float64)
    gathered[:, place] = u[:, gather]
    return _take(a, hi, lo, floor, values, columns, n)


#: The natural log of a tensor (:mod:`sgdtail.kernels`: of a numpy array).
log = torch.log


def _take(a, hi, lo, floor, values, columns, n) -> int:
    """Append the candidates among |u| = ``a`` (row after row) to the host arrays
    (values, columns) from position n; returns the new count."""
    rows, cols = ((a >= hi) | ((a > floor) & (a <= lo))).nonzero(as_tuple=True)
    found = a[rows, cols].cpu().numpy()
    values[n : n + found.size] = found
    columns[n : n + found.size] = cols.cpu().numpy()
    return n + found.size


def buffer(n: int, like):
    """An uninitialised float64 (2, n) tensor on the device of ``like``."""
    return torch.empty((2, n), dtype=torch.float64, device=like.device)


def run_sums(a, q: int, out) -> None:
    """:func:`sgdtail.kernels.run_sums` on a's device."""
    out.copy_(a.reshape(2, -1, q).sum(2))


def block_logs(sums, counts, k1: int, exclude: bool, eps: float) -> tuple[float, int, float]:
    """:func:`sgdtail.kernels.block_logs` on the sums' device (Σ ℓ(Y) as a sum of logs)."""
    if exclude:
        kept = sums != 0
        sums, counts = sums[kept], counts[kept]
    blocks = sums.numel()
    log_y = float(torch.log(sums.abs() + eps).sum())
    log_n = float(torch.log(counts).sum()) if exclude else blocks * math.log(k1)
    return log_y, blocks, log_n


def value_runs(x, q, carry, out) -> int:
    """:func:`sgdtail.kernels.value_runs` on x's device (``out`` there too), ``carry`` on
    the host."""
    flat = x.reshape(-1)
    head = min(q - int(carry[2]), flat.numel()) if carry[2] else 0
    carry += _totals(flat[:head], head)
    n = int(carry[2] == q)
    if n:
        (out[0, 0], out[1, 0]), carry[:] = carry[:2], 0.0
    runs = (flat.numel() - head) // q
    body = flat[head : head + runs * q].view(runs, q)
    out[0, n : n + runs] = body.sum(1, dtype=torch.float64)
    out[1, n : n + runs] = (body != 0).sum(1)
    tail = flat[head + runs * q :]
    if tail.numel():
        carry[:] = _totals(tail, tail.numel())
    return n + runs


def _totals(values, length: int) -> np.ndarray:
    """(float64 sum, number of nonzero values, length) of ``values``."""
    if not length:
        return np.zeros(3)
    total = values.sum(dtype=torch.float64).item()  # .item(): numpy cannot read a GPU tensor
    return np.array([total, int(torch.count_nonzero(values)), length], float)


def column_extremes(u, low, high, floor) -> None:
    """:func:`sgdtail.kernels.column_extremes` on u's device, ``low`` and ``high`` on the
    host; NaN is left out."""
    a = u.abs()
    low[:] = torch.where(a > floor, a, math.inf).amin(0).cpu().numpy()
    high[:] = torch.where(a.isnan(), 0.0, a).amax(0).cpu().numpy()
