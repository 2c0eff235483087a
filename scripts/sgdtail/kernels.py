"""Compiled per-value kernels of the noise stage (:mod:`sgdtail.noise`) and the streaming
estimators (:mod:`sgdtail.estimators`).

numba compiles them on first use and caches the machine code next to this file
(``__pycache__``), so later jobs load it. Each is a plain loop that a reader can check
line by line; they exist because numpy would need one pass over the noise per
quantity, and these take several in one. A few numpy functions (``log``, ``buffer``,
``run_sums``) sit beside them so that this module and its torch version
(:mod:`sgdtail.torch_kernels`, for rows on a GPU) offer the same functions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "SCALE",
    "block_logs",
    "buffer",
    "center_rows",
    "column_extremes",
    "log",
    "run_sums",
    "scan",
    "value_runs",
]

#: Σ log a is kept as log(p) + e·log 2: p, a float64 product, is multiplied by SCALE
#: or 1/SCALE (exactly: powers of two) when it has left [1/SCALE, SCALE], and e counts
#: the steps. A factor of the scan lies in [ε, 2^128] (ε = 2^-52), one of block_logs in
#: [ε, K1·2^128]: one step after each factor, or after every three of the scan's,
#: keeps p within [2^-500, 2^500] and every product within float64's range.
SCALE = 2.0**500
LOG2_SCALE = 500
CHUNK = 32  # columns checked for candidates at once: a bit each in a uint32


#: The natural log of an array of this back end (:mod:`sgdtail.torch_kernels`: of a tensor).
log = np.log


@njit(cache=True, fastmath={"reassoc"})
def center_rows(g, gbar, norms) -> None:  # pragma: no cover - compiled
    """g[i] −= gbar in place for each row of g (c, M), and norms[i] = the Euclidean norm
    of the new row, its squares added in float64 (in any order). One pass."""
    for i in range(g.shape[0]):
        row = g[i]
        total = 0.0
        for j in range(row.size):
            row[j] -= gbar[j]
            total += np.float64(row[j]) * np.float64(row[j])
        norms[i] = math.sqrt(total)


@njit(cache=True, fastmath={"reassoc"})
def value_runs(x, q, carry, out) -> int:  # pragma: no cover - compiled
    """Sums of consecutive runs of q values of x (c, w), read row after row (a row may be
    a strided slice of a wider matrix): out[0, r] the float64 sum of run r (its terms
    added in any order), out[1, r] its number of nonzero values, for each run completed
    here. carry = (sum, nonzero count, length) of the run left open, updated. Returns
    the number of runs written; raises IndexError (writing nothing past its end) when
    ``out`` has room for fewer runs than x completes."""
    total, count, length = carry[0], carry[1], int(carry[2])
    n = 0
    for i in range(x.shape[0]):
        row = x[i]
        j = 0
        while j < row.size:
            part = row[j : j + q - length]
            t, c = 0.0, 0
            for k in range(part.size):
                t += part[k]
            for k in range(part.size):
                c += part[k] != 0
            total, count, length, j = total + t, count + c, length + part.size, j + part.size
            if length == q:
                if n == out.shape[1]:  # numba does not check bounds
                    raise IndexError("value_runs: out has room for fewer runs than x completes")
                out[0, n], out[1, n] = total, count
                total, count, length, n = 0.0, 0.0, 0, n + 1
    carry[0], carry[1], carry[2] = total, count, length
    return n


def buffer(n: int, like=None) -> np.ndarray:
    """An uninitialised float64 (2, n) array (for sums of runs and their counts)."""
    return np.empty((2, n))


def run_sums(a: np.ndarray, q: int, out: np.ndarray) -> None:
    """out[r, i] = a[r, i·q] + ... + a[r, i·q + q − 1] for both rows r of a (2, n·q) and
    out (2, n), in float64: numpy's pair sums for q = 2 (faster than a loop over runs of
    two), else :func:`_run_sums`."""
    if q == 2:
        np.add(a[:, 0::2], a[:, 1::2], out=out)
    else:
        _run_sums(a, q, out)


@njit(cache=True, fastmath={"reassoc"})
def _run_sums(a, q, out) -> None:  # pragma: no cover - compiled
    """out[r, i] = a[r, i·q] + ... + a[r, i·q + q − 1] for both rows r of a (2, ≥ n·q) and
    out (2, n), in float64 (the compiler may add the q terms in any order)."""
    for r in range(2):
        for i in range(out.shape[1]):
            run = a[r, i * q : i * q + q]
            total = 0.0
            for k in range(q):
                total += run[k]
            out[r, i] = total


@njit(cache=True, inline="always")
def _times(p: float, power: int, x: float) -> tuple[float, int]:  # pragma: no cover - compiled
    """p·2^power times x, as (p, power) with p brought back into [1/SCALE, SCALE]."""
    p *= x
    small, big = p < 1.0 / SCALE, p > SCALE
    return p * (SCALE if small else (1.0 / SCALE if big else 1.0)), power + (
        -LOG2_SCALE if small else (LOG2_SCALE if big else 0)
    )


@njit(cache=True, inline="always")
def _factor(y: float, exclude: bool, eps: float) -> float:  # pragma: no cover - compiled
    """|Y| + ε, or 1 (no factor) for a block left out."""
    return abs(y) + eps if (y != 0 or not exclude) else 1.0


@njit(cache=True)
def block_logs(
    sums: np.ndarray, counts: np.ndarray, k1: int, exclude: bool, eps: float
) -> tuple[float, int, float]:  # pragma: no cover - compiled
    """(Σ ℓ(Y), number of blocks, Σ log n) over blocks with sums Y and n nonzero values,
    ℓ(Y) = log(|Y| + ε). With ``exclude`` blocks with Y = 0 are left out and n is their
    count, else every block counts with n = k1. Σ ℓ is the log of a product, kept in
    eight lanes (block i in lane i mod 8, the last size mod 8 in lane 0) so that the
    compiler can vectorise it."""
    lanes, powers = np.ones(8), np.zeros(8, np.int64)
    whole = sums.size - sums.size % 8
    for i in range(0, whole, 8):
        for lane in range(8):
            factor = _factor(sums[i + lane], exclude, eps)
            lanes[lane], powers[lane] = _times(lanes[lane], powers[lane], factor)
    for i in range(whole, sums.size):
        lanes[0], powers[0] = _times(lanes[0], powers[0], _factor(sums[i], exclude, eps))
    blocks, log_n = 0, 0.0
    for i in range(sums.size):
        keep = sums[i] != 0 or not exclude
        blocks += keep
        if exclude and keep and counts[i] < k1:
            log_n += math.log(counts[i]) - math.log(k1)
    total = powers.sum() * math.log(2.0) + np.log(lanes).sum()
    return total, blocks, log_n + blocks * math.log(k1)


@njit(cache=True, inline="always")
def _columns(row, prod, zeros, hi, lo, floor, eps, j0, j1):  # pragma: no cover - compiled
    """Columns j0 .. j1 − 1 (at most 32) of one row into the state of :func:`scan`;
    returns a bit mask of the candidates among them (bit j − j0)."""
    bits = np.uint32(0)
    for j in range(j0, j1):
        a = abs(row[j])
        hit = (a >= hi[j]) | ((a > floor) & (a <= lo))
        bits |= np.uint32(hit) << np.uint32(j - j0)
        zeros[j] += a == 0
        prod[j] *= np.float64(a) + eps if a != 0 else 1.0
    return bits


@njit(cache=True)
def _rescale(prod, power) -> None:  # pragma: no cover - compiled
    """One step of SCALE for each prod[j] outside [1/SCALE, SCALE], power[j] counting the
    steps: called after every three rows, it keeps prod within [1/SCALE, SCALE] (three
    factors move it by at most 2^384 up or 2^156 down)."""
    for j in range(prod.size):
        p = prod[j]
        small, big = p < 1.0 / SCALE, p > SCALE
        prod[j] = p * (SCALE if small else (1.0 / SCALE if big else 1.0))
        power[j] += -LOG2_SCALE if small else (LOG2_SCALE if big else 0)


@njit(cache=True)
def _take(row, j0, bits, values, columns, n):  # pragma: no cover - compiled
    """Append to (values, columns) the candidates |row[j0 + k]| for each set bit k of
    ``bits``; returns the new count. Raises IndexError (writing nothing past the arrays'
    end) when they have no room left."""
    while bits:
        j = j0 + math.frexp(bits & -bits)[1] - 1  # the lowest set bit
        if n >= values.size:  # numba does not check bounds
            raise IndexError("_take: no room left for candidates")
        values[n], columns[n] = abs(row[j]), j
        n += 1
        bits &= bits - 1
    return n


@njit(cache=True)
def _check_sizes(
    u, prod, power, zeros, partial, hi, gather, place, gathered, values, columns, n
) -> None:  # pragma: no cover - compiled
    """Raise ValueError unless the arrays of :func:`scan` match u and each other."""
    m = u.shape[1]
    if not prod.size == power.size == zeros.size == partial.size == hi.size == m:
        raise ValueError("scan: a per-column array does not have u's number of columns")
    if not place.size == gather.size == gathered.shape[1] or gathered.shape[0] < u.shape[0]:
        raise ValueError("scan: the gather arrays do not match each other or u's rows")
    if not (values.size == columns.size and 0 <= n <= values.size):
        raise ValueError("scan: the candidate arrays do not match each other or n")


@njit(cache=True)
def scan(
    u: np.ndarray,
    prod: np.ndarray,
    power: np.ndarray,
    zeros: np.ndarray,
    partial: np.ndarray,
    add: bool,
    hi: np.ndarray,
    lo: float,
    floor: float,
    eps: float,
    gather: np.ndarray,
    place: np.ndarray,
    gathered: np.ndarray,
    values: np.ndarray,
    columns: np.ndarray,
    n: int,
) -> int:  # pragma: no cover - compiled
    """One pass over the rows of u (c, M), a = |u|, into per-column state:

    * prod (M,) float64 times 2^power (M,) float64 multiplied by a + ε (in float64) for
      each nonzero a, so that Σ ℓ = log prod + power·log 2; zeros (M,) int32 counts the
      exact zeros (separate arrays: rows of one 2-D array run 1.7× slower);
    * with ``add``, each row added to ``partial`` (M,) in float64;
    * gathered[i, place[k]] = u[i, gather[k]] (``gather`` sorted: reading the row in
      order and writing the shorter gathered row at random is 2× faster than the reverse);
    * candidates for order statistics, a ≥ hi[j] or floor < a ≤ lo, appended to
      (values, columns) from position n (room for one per value of u).

    Returns the new candidate count. NaN or inf in u makes prod NaN or inf. Raises
    ValueError when the arrays' sizes do not match u's or each other's (numba does not
    check bounds)."""
    _check_sizes(u, prod, power, zeros, partial, hi, gather, place, gathered, values, columns, n)
    m = u.shape[1]
    n_chunks = -(-m // CHUNK)
    hits = np.zeros(n_chunks, np.uint32)
    for i in range(u.shape[0]):
        row = u[i]
        for c in range(n_chunks - 1):
            j0 = c * CHUNK
            hits[c] = _columns(row, prod, zeros, hi, lo, floor, eps, j0, j0 + CHUNK)
        hits[-1] = _columns(row, prod, zeros, hi, lo, floor, eps, (n_chunks - 1) * CHUNK, m)
        for c in range(n_chunks):
            if hits[c]:
                n = _take(row, c * CHUNK, np.int64(hits[c]), values, columns, n)
        if i % 3 == 2 or i == u.shape[0] - 1:
            _rescale(prod, power)
        if add:
            for j in range(m):
                partial[j] += row[j]
        for k in range(gather.size):
            gathered[i, place[k]] = row[gather[k]]
    return n


@njit(cache=True)
def column_extremes(
    u: np.ndarray, low: np.ndarray, high: np.ndarray, floor: float
) -> None:  # pragma: no cover - compiled
    """low[j] = the smallest |u[i, j]| above ``floor`` (inf if none), high[j] = the
    largest |u[i, j]|, over the rows of u (c, M); NaN is left out."""
    low[:] = np.inf
    high[:] = 0.0
    for i in range(u.shape[0]):
        for j in range(u.shape[1]):
            a = abs(u[i, j])
            low[j] = min(low[j], a if a > floor else np.inf)
            high[j] = max(high[j], a)
