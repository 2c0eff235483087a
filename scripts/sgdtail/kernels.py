"""Compiled per-value kernels of the streaming estimators (:mod:`sgdtail.estimators`).

numba compiles them on first use and caches the machine code next to this file
(``__pycache__``), so later jobs load it. Each is a plain loop that a reader can check
line by line; they exist because numpy would need one pass over the noise per
quantity, and these take several in one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["row_sums", "scan", "value_sums"]


@njit(cache=True)
def row_sums(a: np.ndarray, q: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[i] = a[i·q] + a[i·q + 1] + ... + a[i·q + q − 1], added in order in float64
    (a's size a multiple of q). Compiled: one pass over a, the blocks' sums in registers."""
    for i in range(out.size):
        total = 0.0
        for k in range(i * q, i * q + q):
            total += a[k]
        out[i] = total


@njit(cache=True)
def value_sums(a: np.ndarray, q: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[0, i] = a[i·q] + ... + a[i·q + q − 1] added in order in float64, and out[1, i] the
    number of nonzero values among them (a's size a multiple of q). Compiled: one pass (two
    plain loops per run, which the compiler vectorises; one loop doing both is 2× slower)."""
    for i in range(out.shape[1]):
        run = a[i * q : i * q + q]
        total, count = 0.0, 0
        for k in range(q):
            total += run[k]
        for k in range(q):
            count += run[k] != 0
        out[0, i] = total
        out[1, i] = count


@njit(cache=True)
def scan(
    u: np.ndarray,
    out: np.ndarray,
    col_min: np.ndarray,
    col_max: np.ndarray,
    columns: np.ndarray,
    gathered: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """One pass over the rows of u (c, M): out = |u|, the minimum and maximum of |u| in
    each column, and gathered[i, k] = u[i, columns[k]] while row i is in cache. NaN is
    passed to ``out`` and left out of the extremes."""
    col_min[:] = np.inf
    col_max[:] = 0.0
    for i in range(u.shape[0]):
        for j in range(u.shape[1]):
            a = abs(u[i, j])
            out[i, j] = a
            col_min[j] = min(col_min[j], a)
            col_max[j] = max(col_max[j], a)
        for k in range(columns.size):
            gathered[i, k] = u[i, columns[k]]
