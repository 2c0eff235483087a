"""Tail-index estimators for gradient noise, in memory and streamed.

All estimators treat their input as samples of one scalar, symmetric
α-stable (SαS) variable, α ∈ (0, 2] (α = 2 is Gaussian, smaller α is heavier
tailed). Values are unit-free: the estimators are scale invariant.

In-memory functions (1-D samples ``x`` in the given order):

* :func:`mohammadi_alpha` -- Mohammadi, Mohammadpour & Ogata (2015), Cor. 2.4,
  at one block size K1.
* :func:`mohammadi_reference` -- exactly what the authors' 2019 code computes:
  K1 = largest divisor of K that is ≤ √K, zeros kept, ``REFERENCE_EPS`` inside
  the logs.
* :func:`mohammadi_robust` -- median of :func:`mohammadi_alpha` over
  K1 = ⌊f·√K⌋ for a few factors f (no divisor rule, no epsilon).
* :func:`hill_alpha` -- Hill estimator on |X| from the top-k order statistics.
* :func:`per_coordinate_alpha` -- one estimate per column of a (P, M) matrix.
* :func:`block_size_sweep` -- α̂ as a function of K1.

:class:`StreamingTailStats` computes the same numbers over a noise matrix U
(P minibatches × M parameters) fed row chunk by row chunk, in memory that does
not grow with P. The pooled sample order is row-major over U (the flattening
``U.reshape(-1)``), as in the reference code.

Numerics: logs of the samples are taken in the input's precision (float32
for noise; the streaming class casts rows to float32), sums of logs are
accumulated in float64 (the streaming class first adds at most 10 logs, or
one piece's rows of one column, in float32), block sums Y are float64 (the
streaming class takes them as differences of float64 prefix sums, built
from float64 sums of 10 consecutive values, then of those: a block of real
gradient noise can cancel to ~1e-7 of its terms, where float32 10-sums
moved the reference's α̂ by 2e-4; per-coordinate block sums add at most
one block's rows in float32). Torch tensors are accepted and
converted to numpy (no copy on the CPU); the work itself is numpy: on the
2-core machine single-threaded numpy was both faster and steadier than
torch's thread pool, which slowed to ~100 ns per value when the other core
was busy.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:  # torch is imported only where it is used: the figure, aggregation and
    import torch  # validation jobs that import this module start ~1.7 s faster without it

try:  # optional: keeps BLAS on one thread inside the estimator (see _one_blas_thread)
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - without it BLAS keeps its own thread count
    ThreadpoolController = None

__all__ = [
    "DEFAULT_ROBUST_FACTORS",
    "ESTIMATORS",
    "REFERENCE_EPS",
    "StreamingTailStats",
    "alpha_from_log_sums",
    "batch_means_interval",
    "block_size_sweep",
    "default_hill_k",
    "default_sweep_k1",
    "hill_alpha",
    "mohammadi_alpha",
    "mohammadi_reference",
    "mohammadi_robust",
    "per_coordinate_alpha",
    "reference_k1",
    "robust_k1_values",
    "sample_sas",
]

#: Epsilon the 2019 code adds inside both logs: ``np.spacing(1)`` = 2**-52
#: (float64 machine epsilon, *not* float32's). An exact zero becomes
#: log(2**-52) ≈ -36.0; this is what drags α̂ to ≈ 1.0 on Gaussian data with 10%
#: zeros (float32's epsilon would give ≈ 1.4).
REFERENCE_EPS: float = float(np.spacing(1.0))

#: The shuffled block sweep uses S = min(M, max(SHUFFLE_MIN_COLUMNS, ⌈M/8⌉))
#: columns of U (see :class:`StreamingTailStats`): all of them for M ≤ 16,384,
#: 16,384 of 118,016 (13.9%) for the MNIST FCN 128×3.
SHUFFLE_MIN_COLUMNS: int = 16384

#: Multiples of √K used as block sizes by :func:`mohammadi_robust`.
DEFAULT_ROBUST_FACTORS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)

#: Values of the ``estimator`` column written by :meth:`StreamingTailStats.finalize`.
ESTIMATORS: tuple[str, ...] = (
    "mohammadi_reference",
    "mohammadi_robust",
    "hill",
    "per_coordinate",
    "block_sweep",
)

ArrayLike = "np.ndarray | torch.Tensor | Sequence[float]"


# ----------------------------------------------------------------------------
# Synthetic data
# ----------------------------------------------------------------------------


def sample_sas(
    alpha: float, size: int | tuple[int, ...], rng: np.random.Generator, scale: float = 1.0
) -> np.ndarray:
    """Draw symmetric α-stable samples (Chambers, Mallows & Stuck 1976).

    Characteristic function exp(-|scale·t|^α), the parametrisation of
    ``scipy.stats.levy_stable(alpha, 0, scale=scale)``; α = 2 gives
    N(0, 2·scale²), α = 1 gives a Cauchy law.

    Args:
        alpha: stability index, 0 < α ≤ 2.
        size: output shape.
        rng: numpy Generator (the only source of randomness).
        scale: scale parameter σ > 0.

    Returns:
        float64 array of shape ``size``.
    """
    if not 0.0 < alpha <= 2.0:
        raise ValueError(f"alpha={alpha} is outside (0, 2]; pass a stability index in (0, 2]")
    if scale <= 0.0:
        raise ValueError(f"scale={scale} must be positive")
    v = rng.uniform(-np.pi / 2.0, np.pi / 2.0, size)
    if alpha == 1.0:
        return scale * np.tan(v)
    w = rng.standard_exponential(size)
    x = (
        np.sin(alpha * v)
        / np.cos(v) ** (1.0 / alpha)
        * (np.cos(v - alpha * v) / w) ** ((1.0 - alpha) / alpha)
    )
    return scale * x


# ----------------------------------------------------------------------------
# Block-size and order-statistic rules
# ----------------------------------------------------------------------------


def reference_k1(k: int) -> int:
    """Largest divisor of ``k`` that is ≤ √k: the block size of the 2019 code.

    Collapses to 1 when k is prime (the 2019 code then divides by log 1 = 0)
    and to tiny blocks when k has no divisor near √k.
    Uses the exact integer square root (the 2019 code uses ``int(math.sqrt)``,
    which agrees for every k below 2**52).
    """
    k = _positive_int(k, "k")
    for d in range(math.isqrt(k), 0, -1):
        if k % d == 0:
            return d
    return 1  # pragma: no cover - d = 1 always divides


def robust_k1_values(k: int, factors: Sequence[float] = DEFAULT_ROBUST_FACTORS) -> list[int]:
    """Block sizes K1 = max(2, ⌊f·√k⌋) for each factor f, sorted and deduplicated."""
    k = _positive_int(k, "k")
    if len(factors) == 0 or any(f <= 0 for f in factors):
        raise ValueError(f"factors={tuple(factors)} must be a non-empty list of positive numbers")
    return sorted({max(2, math.floor(f * math.sqrt(k))) for f in factors})


def default_hill_k(n: int) -> int:
    """Default number of order statistics for :func:`hill_alpha`: max(10, ⌊√n⌋)."""
    return max(10, math.isqrt(_positive_int(n, "n")))


def default_sweep_k1(k: int) -> list[int]:
    """Block sizes 10, 30, 100, 300, 1000, ... (1-3-10 progression) up to k // 10."""
    k = _positive_int(k, "k")
    out: list[int] = []
    base = 10
    while True:
        for k1 in (base, 3 * base):
            if k1 > k // 10:
                return out
            out.append(k1)
        base *= 10


# ----------------------------------------------------------------------------
# In-memory estimators
# ----------------------------------------------------------------------------


def alpha_from_log_sums(
    sum_log_y: float, n_blocks: int, sum_log_x: float, n_values: int, k1: int
) -> float:
    """α̂ from the sums of Mohammadi et al. (2015), Cor. 2.4.

    1/α̂ = (1/log K1)·[sum_log_y/n_blocks − sum_log_x/n_values].
    Returns NaN when there is no block or K1 < 2; inf and 0 pass through
    (α̂ = 0 when an exact zero was logged with eps = 0).
    """
    if n_blocks < 1 or n_values < 1 or k1 < 2:
        return math.nan
    inv = (sum_log_y / n_blocks - sum_log_x / n_values) / math.log(k1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(1.0) / np.float64(inv))


def mohammadi_alpha(x: ArrayLike, k1: int, eps: float = 0.0) -> float:
    """Tail index by Mohammadi, Mohammadpour & Ogata (2015), Corollary 2.4.

    Uses the first K = K2·K1 values (K2 = len(x) // k1, the remainder is
    dropped); Y_i = sum of the i-th block of k1 consecutive values;
    1/α̂ = (1/log k1)·[mean_i log(|Y_i| + eps) − mean_j log(|X_j| + eps)].

    Args:
        x: 1-D samples, shape (n,); float32 stays float32 for the logs of X,
            every sum is float64.
        k1: block size, 2 ≤ k1 ≤ n.
        eps: added to |.| inside both logs. With eps = 0 an exact zero gives
            log 0 = -inf and α̂ = 0: drop zeros first or pass eps > 0.

    Returns:
        α̂ as a float (not clipped to (0, 2]).
    """
    a = _as_1d(x, "x")
    k1 = _positive_int(k1, "k1")
    if k1 < 2:
        raise ValueError("k1=1 makes log(k1) = 0; use a block size k1 >= 2")
    k2 = a.size // k1
    if k2 < 1:
        raise ValueError(f"k1={k1} exceeds the {a.size} samples; use k1 <= len(x)")
    used = a[: k2 * k1]
    with np.errstate(divide="ignore"):
        sum_log_x = float(np.log(np.abs(used) + eps).sum(dtype=np.float64))
        y = used.reshape(k2, k1).sum(axis=1, dtype=np.float64)
        sum_log_y = float(np.log(np.abs(y) + eps).sum())
    return alpha_from_log_sums(sum_log_y, k2, sum_log_x, k2 * k1, k1)


def mohammadi_reference(x: ArrayLike) -> float:
    """The 2019 code's estimate: K1 = :func:`reference_k1` (len(x)), zeros kept,
    eps = :data:`REFERENCE_EPS` in both logs.

    Returns NaN when len(x) is prime (K1 = 1: the 2019 code divides by log 1 = 0).
    """
    a = _as_1d(x, "x")
    k1 = reference_k1(a.size)
    if k1 < 2:
        return math.nan
    return mohammadi_alpha(a, k1, eps=REFERENCE_EPS)


def mohammadi_robust(
    x: ArrayLike,
    factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
    eps: float = 0.0,
    k_nominal: int | None = None,
) -> float:
    """Median of :func:`mohammadi_alpha` over K1 in :func:`robust_k1_values`.

    Args:
        x: 1-D samples (remove exact zeros first, or pass eps > 0).
        factors: multiples f of √K giving the block sizes K1 = max(2, ⌊f·√K⌋).
        eps: passed to :func:`mohammadi_alpha`.
        k_nominal: the K used to derive the block sizes; default len(x).
            :class:`StreamingTailStats` uses P·M here (see its docstring).

    Returns:
        median over the block sizes that leave at least one full block and
        give a finite α̂ (NaN if none).
    """
    a = _as_1d(x, "x")
    k = a.size if k_nominal is None else k_nominal
    values = [
        mohammadi_alpha(a, k1, eps) for k1 in robust_k1_values(k, factors) if a.size // k1 >= 1
    ]
    return _finite_median(values)


def hill_alpha(x: ArrayLike, k: int) -> float:
    """Hill estimator of the tail index of |X| from its k largest values.

    α̂ = 1 / mean_{i<k} log(|X|_(i) / |X|_(k)), order statistics 0-based and
    descending (the threshold is the (k+1)-th largest). Logs in float64.

    Args:
        x: 1-D samples, shape (n,).
        k: number of order statistics, 1 ≤ k ≤ n − 1
            (:func:`default_hill_k` gives max(10, ⌊√n⌋)).

    Returns:
        α̂, or NaN when the threshold |X|_(k) is 0 (fewer than k+1 nonzero values).
    """
    a = np.abs(_as_1d(x, "x"))
    k = _positive_int(k, "k")
    if k >= a.size:
        raise ValueError(f"k={k} needs at least k+1={k + 1} samples, got {a.size}; lower k")
    return _hill_from_top(_top_sorted(a, k + 1), k)


def per_coordinate_alpha(u: ArrayLike) -> np.ndarray:
    """Mohammadi α̂ of every column of a (P, M) matrix, blocks along P.

    For column m: :func:`mohammadi_alpha` (u[:, m], K1 = max(2, ⌊√P⌋)), eps 0.

    Args:
        u: noise matrix, shape (P, M), P ≥ 2 (minibatches × parameters).

    Returns:
        float64 array of shape (M,); NaN for a column containing an exact zero.
    """
    a = _as_array(u)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"u must have shape (P, M) with P >= 2, got {a.shape}")
    p, m = a.shape
    k1 = max(2, math.isqrt(p))
    k2 = p // k1
    used = a[: k2 * k1]
    with np.errstate(divide="ignore"):
        sum_log_x = np.log(np.abs(used)).sum(axis=0, dtype=np.float64)
        y = used.reshape(k2, k1, m).sum(axis=1, dtype=np.float64)
        sum_log_y = np.log(np.abs(y)).sum(axis=0)
    has_zero = (a == 0).any(axis=0)
    return _column_alphas(sum_log_y, sum_log_x, has_zero, k1, k2)


def block_size_sweep(
    x: ArrayLike,
    k1_values: Sequence[int],
    shuffle: bool = False,
    seed: int = 0,
    eps: float = 0.0,
) -> pd.DataFrame:
    """α̂ of :func:`mohammadi_alpha` for each block size.

    Args:
        x: 1-D samples (remove exact zeros first, or pass eps > 0).
        k1_values: block sizes (each ≥ 2); those larger than len(x) give NaN.
        shuffle: apply one global random permutation first
            (``np.random.default_rng(seed).permutation``).
        seed: seed of that permutation.
        eps: passed to :func:`mohammadi_alpha`.

    Returns:
        DataFrame with columns ``k1`` (int) and ``alpha`` (float), one row per block size.
    """
    a = _as_1d(x, "x")
    if shuffle:
        a = a[np.random.default_rng(seed).permutation(a.size)]
    rows = []
    for k1 in k1_values:
        k1 = int(k1)
        alpha = mohammadi_alpha(a, k1, eps) if a.size // k1 >= 1 else math.nan
        rows.append({"k1": k1, "alpha": alpha})
    return pd.DataFrame(rows, columns=["k1", "alpha"])


def batch_means_interval(inv_alpha_groups: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Batch-means interval for α from per-group estimates of 1/α.

    Interval for 1/α: mean ± t_{(1+level)/2, G−1}·sd/√G over the G finite
    group values (sd with ddof = 1), inverted to α (1/α decreases in α).
    The upper end is +inf when the interval for 1/α reaches 0; both ends are
    NaN with fewer than 2 groups or when the whole interval for 1/α is ≤ 0.

    Returns:
        (alpha_low, alpha_high).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} must lie in (0, 1), e.g. 0.95")
    v = np.asarray(inv_alpha_groups, dtype=np.float64)
    v = v[np.isfinite(v)]
    g = v.size
    if g < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2.0, g - 1) * v.std(ddof=1) / math.sqrt(g))
    lo_inv, hi_inv = float(v.mean()) - half, float(v.mean()) + half
    if hi_inv <= 0.0:
        return math.nan, math.nan
    return 1.0 / hi_inv, (1.0 / lo_inv if lo_inv > 0.0 else math.inf)


# ----------------------------------------------------------------------------
# Streaming accumulator
# ----------------------------------------------------------------------------


class _BlockSums:
    """Running Mohammadi sums of one ordered stream at several block sizes.

    The stream arrives in pieces, each given as functions returning the
    float64 sums of its values and of their logs log(|x| + eps) before any
    positions (:meth:`update_fast`). State per block size K1, all
    float64 scalars: the sum of the open (incomplete) block and of its logs
    (its < K1 values are never stored), Σ log(|Y| + eps) over completed blocks,
    and the block count. Σ log(|X| + eps) over the values of completed blocks
    is the running total minus the open block's logs, so values after the last
    complete block are dropped at the end, as in :func:`mohammadi_alpha`.

    Optionally keeps per-group sums at one block size ``ci_k1`` for
    :func:`batch_means_interval`: a block counts in the group where it ends,
    and a group's mean log|X| uses every value fed while that group was current.
    """

    def __init__(
        self, k1_values: Sequence[int], eps: float, n_groups: int = 0, ci_k1: int | None = None
    ) -> None:
        extra = {int(ci_k1)} if ci_k1 is not None else set()
        self.k1 = sorted({int(k) for k in k1_values} | extra)
        if any(k < 2 for k in self.k1):
            raise ValueError(f"block sizes {self.k1} must all be >= 2")
        self.eps = float(eps)
        nk = len(self.k1)
        self.n_values = 0
        self.sum_log_all = 0.0
        self.open_y = np.zeros(nk)
        self.open_log = np.zeros(nk)
        self.sum_log_y = np.zeros(nk)
        self.n_blocks = np.zeros(nk, dtype=np.int64)
        self.open_zeros = np.zeros(nk, dtype=np.int64)  # exact zeros in the open block
        self.ci_index = self.k1.index(int(ci_k1)) if ci_k1 is not None else None
        self.g_sum_log_y = np.zeros(n_groups)
        self.g_n_blocks = np.zeros(n_groups, dtype=np.int64)
        self.g_sum_log_x = np.zeros(n_groups)
        self.g_n_values = np.zeros(n_groups, dtype=np.int64)

    def update_fast(
        self,
        n: int,
        value_prefix,
        log_prefix,
        group: int = -1,
        tens: tuple[np.ndarray, int] | None = None,
        cuts: np.ndarray | None = None,
        zeros: np.ndarray | None = None,
    ) -> None:
        """Feed one piece of ``n`` values given as prefix-sum functions.

        ``zeros``: sorted local positions of the piece's exact zeros, when the
        stream keeps them: a block made only of zeros then gets Y = 0 exactly
        (a difference of prefix sums could leave rounding), as in
        :func:`mohammadi_alpha`.

        ``group``: the interval group current at the piece's first value (-1:
        none); ``cuts``: sorted local positions where the groups ``group + 1``,
        ``group + 2``, ... begin inside the piece (a block counts in the group
        of its last value).

        ``value_prefix(pos)`` / ``log_prefix(pos)`` return the float64 sums of
        the piece's values / logs before the local positions ``pos`` (int64
        array, 0 ≤ pos ≤ n). ``tens`` = (s10, pad): sums of 10 consecutive
        values aligned to multiples of 10 of the whole stream (``s10[t]`` covers
        local positions 10t − pad .. 10t − pad + 9); with it, block sizes
        10·j (j < 10) take their block sums from ``s10`` instead of from
        prefix sums.
        """
        if n == 0:
            return
        # pass 1: block boundaries of every block size, one prefix evaluation
        # (boundaries on the 100-grid of a _Prefix are read off it directly)
        plans = []
        general = [np.array([n], dtype=np.int64)]  # positions needing value_prefix
        parts: list = [None]  # per plan: None (from general) or prefix values
        n_pos = 1
        p100 = getattr(value_prefix, "p100", None)
        pad100 = getattr(value_prefix, "pad", 0)
        for k1 in self.k1:
            filled = self.n_values % k1
            first = (k1 - filled) % k1
            if first > n:
                plans.append(None)
                continue
            count = (n - first) // k1 + 1
            last = first + (count - 1) * k1
            use_tens = tens is not None and k1 % 10 == 0 and k1 < 100 and count > 1
            if use_tens:
                pos = np.array([first, last])
                general.append(pos)
                parts.append(None)
            elif p100 is not None and k1 % 100 == 0 and (first + pad100) % 100 == 0:
                g0 = (first + pad100) // 100
                parts.append(p100[g0 : g0 + (count - 1) * (k1 // 100) + 1 : k1 // 100])
            else:
                general.append(np.arange(first, n + 1, k1))
                parts.append(None)
            size = 2 if use_tens else count
            plans.append((filled, first, count, last, use_tens, n_pos, n_pos + size))
            n_pos += size
        values = value_prefix(np.concatenate(general))
        if all(part is None for part in parts):
            prefix_all = values
        else:  # interleave, in plan order, general values and grid reads
            pieces, i, gi = [], 0, 0
            for part in parts:
                if part is None:
                    size = general[gi].size
                    pieces.append(values[i : i + size])
                    i += size
                    gi += 1
                else:
                    pieces.append(part)
            prefix_all = np.concatenate(pieces)
        v_total = float(prefix_all[0])
        lasts = np.array([p[3] for p in plans if p is not None], dtype=np.int64)
        grouped = group >= 0 and self.g_n_values.size > 0
        cuts = _EMPTY_INT if cuts is None or not grouped else np.asarray(cuts, dtype=np.int64)
        log_at = log_prefix(np.concatenate(([n], lasts, cuts)))
        log_total = float(log_at[0])
        self.sum_log_all += log_total
        if grouped:  # every value counts in the group current when it is fed
            edges = np.concatenate(([0], cuts, [n]))
            at_edges = np.concatenate(([0.0], log_at[1 + lasts.size :], [log_total]))
            last_group = group + cuts.size
            self.g_sum_log_x[group : last_group + 1] += np.diff(at_edges)
            self.g_n_values[group : last_group + 1] += np.diff(edges)
        # pass 2: all block sums at once. Plan j owns ys[a-1 : b-1]: slot a-1
        # holds its first block (open block + head) when one was open, slot
        # i >= a the block between positions i and i+1.
        ys = np.empty(max(n_pos - 1, 1))
        np.subtract(prefix_all[1:], prefix_all[:-1], out=ys[: n_pos - 1])
        active = [j for j in range(len(self.k1)) if plans[j] is not None]
        n_zeros = 0 if zeros is None else int(zeros.size)
        if not active:
            for j in range(len(self.k1)):
                self.open_y[j] += v_total
                self.open_log[j] += log_total
                self.open_zeros[j] += n_zeros
            self.n_values += n
            return
        starts = np.array([plans[j][5] - 1 for j in active])
        unused: list[int] = []
        tens_logs: dict[int, tuple[float, int]] = {}
        for j in active:
            filled, first, count, last, use_tens, a, _ = plans[j]
            if filled:
                ys[a - 1] = self.open_y[j] + prefix_all[a]
            else:
                unused.append(a - 1)
            if n_zeros:  # blocks made only of exact zeros sum to exactly 0
                k1 = self.k1[j]
                zb = np.searchsorted(zeros, first + k1 * np.arange(count, dtype=np.int64))
                if filled and self.open_zeros[j] + zb[0] == filled + first:
                    ys[a - 1] = 0.0
                if not use_tens:  # (10-sums of zeros are exactly 0 already)
                    ys[a + np.flatnonzero(np.diff(zb) == k1)] = 0.0
                self.open_zeros[j] = n_zeros - zb[-1]
            else:
                self.open_zeros[j] = 0
            if use_tens:
                unused.append(a)  # P[last] - P[first]: replaced by the 10j-sums
                s10, pad = tens
                step = self.k1[j] // 10
                t0 = (first + pad) // 10
                inner = s10[t0 : t0 + (count - 1) * step].reshape(count - 1, step)
                # float32 logs of the (count - 1) block sums (3x faster than
                # float64; 6e-8 relative error in |Y|, as in the per-value logs)
                y32 = np.abs(inner @ _ONES64[:step] if step > 1 else inner[:, 0], dtype=np.float32)
                if self.eps:
                    y32 += np.float32(self.eps)
                with np.errstate(divide="ignore"):
                    np.log(y32, out=y32)
                tens_logs[j] = (float(y32.sum(dtype=np.float64)), count - 1, y32)
            self.open_y[j] = v_total - prefix_all[plans[j][6] - 1]
        np.abs(ys, out=ys)
        if self.eps:
            ys += self.eps
        with np.errstate(divide="ignore"):
            np.log(ys, out=ys)
        if unused:
            ys[unused] = 0.0
        log_y_all = np.add.reduceat(ys[: n_pos - 1], starts)
        for i, j in enumerate(active):
            filled, first, count, last, use_tens, a, b = plans[j]
            log_y = float(log_y_all[i])
            nb = (b - a - 1) + (1 if filled else 0)
            if use_tens:
                extra, nb_inner, _ = tens_logs[j]
                log_y += extra
                nb = nb_inner + (1 if filled else 0)
            self.open_log[j] = log_total - log_at[i + 1]
            self.sum_log_y[j] += log_y
            self.n_blocks[j] += nb
            if j == self.ci_index and grouped:
                if not cuts.size:
                    self.g_sum_log_y[group] += log_y
                    self.g_n_blocks[group] += nb
                    continue
                # block t (t = 0 the open block, when one was open) ends before
                # first + t·k1 and counts in the group of its last value
                inner = tens_logs[j][2] if use_tens else ys[a : b - 1]
                logs_t = np.concatenate(([ys[a - 1]], inner))
                ends = first + np.arange(count, dtype=np.int64) * self.k1[j]
                if not filled:
                    logs_t, ends = logs_t[1:], ends[1:]
                g = group + np.searchsorted(cuts, ends - 1, side="right")
                self.g_sum_log_y += np.bincount(g, logs_t, minlength=self.g_sum_log_y.size)
                self.g_n_blocks += np.bincount(g, minlength=self.g_n_blocks.size)
        for j in range(len(self.k1)):
            if plans[j] is None:
                self.open_y[j] += v_total
                self.open_log[j] += log_total
                self.open_zeros[j] += n_zeros
        self.n_values += n

    def alpha(self, k1: int) -> float:
        """α̂ at block size ``k1`` (NaN without a complete block)."""
        j = self.k1.index(int(k1))
        nb = int(self.n_blocks[j])
        sum_log_x = self.sum_log_all - self.open_log[j]
        return alpha_from_log_sums(self.sum_log_y[j], nb, sum_log_x, nb * k1, k1)

    def group_inverse_alphas(self) -> np.ndarray:
        """1/α̂ of each group at ``ci_k1``, shape (G,); NaN for a group without a block."""
        if self.ci_index is None:
            return np.full(self.g_n_values.size, np.nan)
        k1 = self.k1[self.ci_index]
        ok = (self.g_n_blocks > 0) & (self.g_n_values > 0)
        inv = np.full(self.g_n_values.size, np.nan)
        inv[ok] = (
            self.g_sum_log_y[ok] / self.g_n_blocks[ok] - self.g_sum_log_x[ok] / self.g_n_values[ok]
        ) / math.log(k1)
        return inv

    def nbytes(self) -> int:
        arrays = (
            self.open_y,
            self.open_log,
            self.open_zeros,
            self.sum_log_y,
            self.n_blocks,
            self.g_sum_log_y,
            self.g_n_blocks,
            self.g_sum_log_x,
            self.g_n_values,
        )
        return sum(a.nbytes for a in arrays)


_ONES64 = np.ones(10)
_EMPTY_INT = np.zeros(0, dtype=np.int64)
#: log(0 + eps) of an exact zero the reference keeps, in float32 like every stored log.
_LOG_EPS32 = np.log(np.float32(REFERENCE_EPS))
_ONES32 = np.ones(10, dtype=np.float32)
_AR10 = np.arange(10)
#: Smallest |x| for which float32 |x| + REFERENCE_EPS rounds back to |x|
#: (half an ulp of 2**-27 is 2**-51 > 2**-52): above it log(|x| + eps) is log|x|.
_TINY = np.float32(2.0**-27)

#: Values per sub-range of the per-value passes (4 MB of float32: about what stays
#: in cache between one pass and the next).
LEVEL1_VALUES = 1 << 20


class _Prefix:
    """Prefix sums at any positions of one contiguous piece, from 10- and 100-sums.

    The piece's n values sit in a zero-padded buffer ``w`` at offset ``pad``
    (so that ``w[0]`` is at a multiple of 100 of the whole stream: block
    boundaries at multiples of 100 then need no partial sums), with the sums
    of its 10 consecutive entries in ``s10`` (formed by :class:`_Segment` as
    the values arrive); the 100-sums and their float64 cumulative sum are
    formed here, and the sum before position p is the 100-level prefix plus
    at most 9 tens and 9 single values (gathered only where needed). Cost ≈
    0.4 ns per value instead of a float64 ``cumsum``'s 3-10.
    """

    def __init__(self, w: np.ndarray, pad: int, n: int, s10: np.ndarray) -> None:
        """``s10[:length // 10]`` holds the 10-sums of ``w`` (``length = w.size - 10``)."""
        length = w.size - 10  # a multiple of 100, >= pad + n; w[length:] is zero padding
        s10[length // 10 :] = 0.0
        p100 = np.empty(length // 100 + 1)
        p100[0] = 0.0
        np.cumsum(s10[: length // 10].reshape(-1, 10) @ _ONES64, out=p100[1:])
        self.w, self.s10, self.p100, self.pad, self.n = w, s10, p100, pad, n

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        f = np.asarray(pos, dtype=np.int64) + self.pad
        k = f // 100
        out = self.p100[k]
        rem = f - 100 * k
        sel = np.flatnonzero(rem)  # positions off the 100-grid need partial sums
        if sel.size:
            rem = rem[sel]
            base = 100 * k[sel]
            tens, ones = rem // 10, rem % 10
            idx = (base // 10)[:, None] + _AR10
            part = np.where(_AR10 < tens[:, None], self.s10[idx], 0.0).sum(axis=1)
            idx = (base + 10 * tens)[:, None] + _AR10
            part += np.where(_AR10 < ones[:, None], self.w[idx], 0).sum(axis=1, dtype=np.float64)
            out[sel] += part
        return out


#: 10-sums formed per float64 conversion (81,920 values: a 640 KB buffer).
WIDE_TENS = 8192


class _Segment:
    """One stream's values and logs for a run of rows, in zero-padded float32
    buffers aligned to multiples of 100 of the whole stream (as :class:`_Prefix`
    needs), with their 10-sums formed as the values arrive, while they are
    still in cache. :meth:`prefixes` closes the segment."""

    def __init__(self, ws: _Workspace, name: str, capacity: int, pad: int) -> None:
        length = -(-(pad + capacity) // 100) * 100
        self.w = ws.get(name + "_v", length + 10, np.float32)
        self.wl = ws.get(name + "_l", length + 10, np.float32)
        self.s10 = ws.get(name + "_s10v", length // 10 + 10, np.float64)
        self.s10l = ws.get(name + "_s10l", length // 10 + 10, np.float64)
        self.w[:pad] = 0
        self.wl[:pad] = 0
        self.pad, self.n, self.t_done = pad, 0, 0
        self._ws, self._name = ws, name

    def slots(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Buffer views for the next ``k`` values and their logs (then :meth:`advance`)."""
        a = self.pad + self.n
        return self.w[a : a + k], self.wl[a : a + k]

    def advance(self, k: int) -> None:
        """``k`` values and logs were written: form every 10-sum now complete."""
        self.n += k
        self._tens((self.pad + self.n) // 10)

    def _tens(self, t1: int) -> None:
        t0 = self.t_done
        if t1 > t0:
            # values: float64 sums (a block of values can cancel to ~1e-7 of its
            # terms, real gradient noise does: float32 10-sums then moved the
            # reference's α̂ by 2e-4); logs: float32 sums (no such cancellation)
            # (through a float64 copy of at most WIDE_TENS·10 values: stays in L2)
            wide = self._ws.get(self._name + "_f64", 10 * min(t1 - t0, WIDE_TENS), np.float64)
            for a in range(t0, t1, WIDE_TENS):
                b = min(a + WIDE_TENS, t1)
                part = wide[: 10 * (b - a)]
                np.copyto(part, self.w[10 * a : 10 * b])
                np.dot(part.reshape(-1, 10), _ONES64, out=self.s10[a:b])
            self.s10l[t0:t1] = self.wl[10 * t0 : 10 * t1].reshape(-1, 10) @ _ONES32
            self.t_done = t1

    def prefixes(self) -> tuple[_Prefix, _Prefix]:
        """Zero the padding after the last value, form the last 10-sums, and
        return the :class:`_Prefix` of the values and of the logs."""
        end = self.pad + self.n
        length = -(-end // 100) * 100
        self.w[end : length + 10] = 0
        self.wl[end : length + 10] = 0
        self._tens(length // 10)
        size = length // 10 + 10
        vp = _Prefix(self.w[: length + 10], self.pad, self.n, self.s10[:size])
        lp = _Prefix(self.wl[: length + 10], self.pad, self.n, self.s10l[:size])
        return vp, lp


class _Workspace:
    """Reusable scratch arrays (fresh large arrays cost a page fault per 4 KiB)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype) -> np.ndarray:
        """A 1-D scratch array of ``size`` elements (contents undefined)."""
        a = self._arrays.get(name)
        if a is None or a.size < size or a.dtype != dtype:
            a = np.empty(size, dtype=dtype)
            self._arrays[name] = a
        return a[:size]


def _layer_prefixes(pp, lo: np.ndarray, hi: np.ndarray) -> list:
    """Prefix functions of each layer's stream from the stored stream's prefix
    function ``pp``: layer l's stream is the stored ranges [lo[l, r], hi[l, r])
    of the piece's rows r laid end to end (lo, hi: int64 (L, c); a range is
    shorter than the layer's width where exact zeros were dropped). The range
    sums of every layer come from one evaluation of ``pp`` (its cost is mostly
    per call)."""
    n_layers, c = lo.shape
    at = pp(np.concatenate([lo.reshape(-1), hi.reshape(-1)])).reshape(2, n_layers, c)
    out = []
    for seg_lo, seg_start, seg_stop, width in zip(lo, at[0], at[1], hi - lo, strict=True):
        cum_width = np.zeros(c + 1, dtype=np.int64)
        np.cumsum(width, out=cum_width[1:])
        before = np.zeros(c + 1)
        np.cumsum(seg_stop - seg_start, out=before[1:])

        def prefix(
            pos: np.ndarray,
            seg_lo=seg_lo,
            seg_start=seg_start,
            cum_width=cum_width,
            before=before,
        ) -> np.ndarray:
            pos = np.asarray(pos, dtype=np.int64)
            r = np.minimum(np.searchsorted(cum_width, pos, side="right") - 1, c - 1)
            return before[r] + (pp(seg_lo[r] + (pos - cum_width[r])) - seg_start[r])

        out.append(prefix)
    return out


def _drop_positions(arr: np.ndarray, drop: np.ndarray, ws: _Workspace) -> None:
    """Remove the entries at the sorted positions ``drop`` from the contiguous
    1-D ``arr`` in place: its first ``arr.size - drop.size`` entries become the
    kept ones, in order. A few positions: the runs between them are moved with
    memmove (~memcpy speed; a boolean compress costs ~1.6 ns per value);
    many: one compress through a scratch buffer."""
    n, nd = arr.size, drop.size
    if nd == 0:
        return
    if nd > max(16, n // 1000):  # ~1.5 µs a run against ~1.6 ns a value
        keep = ws.get("keep", n, np.bool_)
        keep[:] = True
        keep[drop] = False
        tmp = ws.get("compact", n - nd, arr.dtype)
        np.compress(keep, arr, out=tmp)
        arr[: n - nd] = tmp
        return
    base, size = arr.ctypes.data, arr.itemsize
    ends = np.append(drop[1:], n).tolist()
    dst = int(drop[0])
    for start, stop in zip((drop + 1).tolist(), ends, strict=True):
        if stop > start:
            ctypes.memmove(base + dst * size, base + start * size, (stop - start) * size)
            dst += stop - start


def _through_zeros(vp, lp, zeros: np.ndarray, log_zero: float) -> tuple:
    """Prefix functions (values, logs) of a stream with exact zeros at the sorted
    positions ``zeros`` (in that stream), from those of the same stream without
    them: a position maps to the stored values before it, and each zero before
    it adds ``log_zero`` to the log sum. A block of zeros sums to exactly 0."""

    def values(pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        return vp(pos - np.searchsorted(zeros, pos))

    def logs(pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        before = np.searchsorted(zeros, pos)
        return lp(pos - before) + before * log_zero

    return values, logs


def _above(a: np.ndarray, threshold, keep_zeros: bool) -> np.ndarray:
    """Hill candidates of |x| values ``a``: those above ``threshold``, or all of
    them (exact zeros included) while the buffer fills (threshold 0) and zeros
    are kept."""
    if keep_zeros and threshold == 0:
        return a.reshape(-1)
    return a[a > threshold]


class _TopAbs:
    """The ``keep`` largest |x| seen so far (a Hill buffer, unsorted; sorted on use).

    Once full, only values above its smallest entry (the running threshold)
    are looked at: one comparison pass per piece, no partition of the piece.
    Candidates above the threshold wait in a pending list and are merged (one
    partition) once they number ``keep``: until then the threshold lags, which
    lets a few more candidates in but never drops one of the final top values.
    """

    def __init__(self, keep: int) -> None:
        self.keep = int(keep)
        self.top = np.empty(0, dtype=np.float32)
        self.threshold = np.float32(0)
        self.n_values = 0
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def add(self, cand: np.ndarray) -> None:
        """Merge candidates: 1-D |x| values, all above :attr:`threshold` once
        the buffer is full (nonzero ones only when zeros are dropped)."""
        if cand.size == 0:
            return
        self._pending.append(cand.astype(np.float32, copy=False))
        self._n_pending += cand.size
        if self.top.size < self.keep or self._n_pending >= self.keep:
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        merged = np.concatenate([self.top, *self._pending])
        self._pending, self._n_pending = [], 0
        if merged.size > self.keep:
            merged = np.partition(merged, merged.size - self.keep)[merged.size - self.keep :]
        self.top = merged.copy()
        if self.top.size >= self.keep:
            self.threshold = self.top.min()

    def alpha(self, k: int | None) -> float:
        """Hill α̂ with k order statistics (default :func:`default_hill_k` of the count)."""
        self._merge()
        if self.n_values < 2:
            return math.nan
        k = default_hill_k(self.n_values) if k is None else k
        if k + 1 > self.top.size:
            return math.nan
        return _hill_from_top(np.sort(self.top)[::-1][: k + 1], k)

    def nbytes(self) -> int:
        return self.top.nbytes + sum(a.nbytes for a in self._pending)


class _ColumnSums:
    """Per-coordinate Mohammadi sums along the rows (minibatches) of U.

    K1 = max(2, ⌊√P⌋) consecutive rows form a block; rows after the last
    complete block are dropped. State, all of shape (M,): the open block's
    partial sums, Σ log|Y|, Σ log|X| (eps 0), and an exact-zero flag.
    """

    def __init__(self, n_rows: int, n_cols: int) -> None:
        self.k1 = max(2, math.isqrt(n_rows))
        self.k2 = n_rows // self.k1
        self.used_rows = self.k1 * self.k2
        self.partial = np.zeros(n_cols)
        self.sum_log_y = np.zeros(n_cols)
        self.sum_log_x = np.zeros(n_cols)
        self.has_zero = np.zeros(n_cols, dtype=bool)
        self.row = 0

    def update(self, rows: np.ndarray, log_abs: np.ndarray, has_zero: np.ndarray | None) -> None:
        """Feed rows (c, M), their log|x| (c, M; any value at zeros), and the
        columns with an exact zero in these rows ((M,) bool, or None for none)."""
        c = rows.shape[0]
        if has_zero is not None:
            self.has_zero |= has_zero
        n_used = min(c, max(0, self.used_rows - self.row))
        if n_used:
            # float32 BLAS sum over at most one piece's rows, then float64
            logs = log_abs[:n_used]
            ones = np.ones(n_used, dtype=logs.dtype)
            self.sum_log_x += ones @ logs if n_used > 1 else logs[0]
        i = 0
        while i < n_used:
            filled = (self.row + i) % self.k1
            take = min(self.k1 - filled, n_used - i)
            block = rows[i : i + take]
            if take > 1:  # BLAS column sums in the rows' precision (≤ K1 rows), then float64
                self.partial += np.ones(take, dtype=block.dtype) @ block
            else:
                self.partial += np.add.reduce(block, axis=0, dtype=np.float64)
            i += take
            if filled + take == self.k1:
                with np.errstate(divide="ignore"):
                    self.sum_log_y += np.log(np.abs(self.partial))
                self.partial[:] = 0.0
        self.row += c

    def alphas(self) -> np.ndarray:
        """α̂ per column, shape (M,); NaN for columns with an exact zero."""
        return _column_alphas(self.sum_log_y, self.sum_log_x, self.has_zero, self.k1, self.k2)

    def nbytes(self) -> int:
        arrays = (self.partial, self.sum_log_y, self.sum_log_x, self.has_zero)
        return sum(a.nbytes for a in arrays)


class _Scope:
    """Accumulators of one scope (pooled, or one layer): robust sums, Hill, zeros."""

    def __init__(
        self,
        name: str,
        n_expected: int,
        factors: Sequence[float],
        eps: float,
        n_groups: int,
        hill_k: int | None,
        extra_k1: Sequence[int] = (),
    ) -> None:
        self.name = name
        self.n_expected = n_expected
        self.robust_k1 = robust_k1_values(n_expected, factors)
        self.ci_k1 = max(2, math.floor(math.sqrt(n_expected)))
        self.sums = _BlockSums([*self.robust_k1, *extra_k1], eps, n_groups, self.ci_k1)
        self.hill = _TopAbs((hill_k if hill_k is not None else default_hill_k(n_expected)) + 1)
        self.n_zero = 0

    def robust_alpha(self) -> float:
        return _finite_median([self.sums.alpha(k1) for k1 in self.robust_k1])


class StreamingTailStats:
    """Tail-index estimates of a noise matrix U (P × M) fed in row chunks.

    Feed the rows of U in order with :meth:`update` (any chunking), then call
    :meth:`finalize`. The pooled sample is U flattened row-major (row p's M
    coordinates, then row p+1's, ...); a layer's sample is
    ``U[:, start:stop]`` flattened row-major. State is O(M + number of block
    sizes + Hill buffer), independent of P; temporaries are O(piece size).

    Rows of :meth:`finalize` (each equal, to float rounding, to the in-memory
    function named, whatever the chunking):

    * ``mohammadi_reference`` (pooled): :func:`mohammadi_reference`
      (U.flatten()): K1 = :func:`reference_k1` (P·M), zeros kept,
      eps = :data:`REFERENCE_EPS`.
    * ``mohammadi_robust`` (pooled and per layer):
      :func:`mohammadi_robust` (x, factors, eps, k_nominal=K) with x the
      scope's values in order (exact zeros dropped when ``exclude_zeros``),
      K = P·M (per layer P·layer width). The block sizes come from this
      *nominal* K, known before the data, even when zeros are dropped (the
      number of nonzero values is only known at the end). eps = 0 when zeros
      are dropped, else :data:`REFERENCE_EPS` (with eps = 0 one kept zero would
      force α̂ = 0). ``k1`` holds max(2, ⌊√K⌋); ``ci_low``/``ci_high`` are a
      batch-means interval at that K1 over G = ``ci_groups`` groups of
      consecutive minibatches (rows ⌊g·P/G⌋ to ⌊(g+1)·P/G⌋ − 1): each group
      gives 1/α̂_g from its own blocks (a block belongs to the group where it
      ends) and its own values, see :func:`batch_means_interval`. The
      interval is for the K1 = ⌊√K⌋ member (the point estimate is the median
      over the K1 values): it measures sampling noise across minibatches,
      not the dependence on K1 (see ``block_sweep`` for that).
    * ``hill`` (pooled and per layer): :func:`hill_alpha` on the same values,
      k = ``hill_k`` or :func:`default_hill_k` (number of values used).
    * ``per_coordinate`` (pooled and per layer): :func:`per_coordinate_alpha`
      (U); ``alpha`` is the median over the scope's columns without an exact
      zero, ``q25``/``q75`` the quartiles, ``k1`` = max(2, ⌊√P⌋).
    * ``block_sweep`` (pooled): α̂ at each K1 in ``sweep_k1`` on the same
      values as the pooled robust estimate. ``order="natural"`` equals
      :func:`block_size_sweep`. ``order="shuffled"`` is the same sweep on a
      reordered stream: one fixed random set of S columns in a fixed random
      order, ``cols = shuffle_columns`` = the first S entries of
      ``np.random.default_rng(shuffle_seed).permutation(M)`` with
      S = min(M, max(:data:`SHUFFLE_MIN_COLUMNS`, ⌈M/8⌉)), drawn before the
      data arrive; the stream is ``U[:, cols].reshape(-1)`` (zeros dropped
      when ``exclude_zeros``), i.e. it equals
      :func:`block_size_sweep` (``U[:, cols].reshape(-1)``, shuffle=False).
      Consecutive values of a block are then random coordinates of the same
      minibatch, not neighbours in one layer: this breaks the correlation of
      consecutive coordinates (and mixes layers and units) at the cost of a
      gather of S values per row, instead of a global shuffle, which cannot
      stream. It does not depend on the chunking. For M ≤ 16,384 every
      column is used; for the MNIST FCN 128×3 (M = 118,016) 16,384 columns
      (13.9% of the values).

    Speed: one float32 log per value and one float32 copy; sums of 10 and
    100 consecutive values (matrix-vector products) and their cumulative sum
    give the block sums at any boundary, for every block size and scope at
    once (values below 2**-27, where log(|x| + eps) ≠ log|x|, get a
    correction there). Exact zeros -- real checkpoints have them in every
    row, e.g. the weights of a dead ReLU unit -- are located and their
    positions kept: with ``exclude_zeros`` they are removed from the stored
    values in place (memmove of the runs between them) and the reference
    reads the stored stream through that list; without it they are stored,
    and the list makes a block of zeros sum to exactly 0. The per-value
    passes run on sub-ranges of :data:`LEVEL1_VALUES` values, so that each
    finds its data in cache; the block bookkeeping, whose cost is mostly per
    call, runs once per piece. Small :meth:`update` chunks are collected
    into pieces of up to ``max_piece_values`` values; a chunk of whole
    pieces is processed without a copy. Measured for 70.8 million values
    (MNIST FCN 128×3, b = 100, one thread, forming the noise from the
    gradients and ḡ included): ~0.41 s at initialisation (2 rows with a
    zero), ~0.45 s after 300 SGD steps (a zero in each of the 600 rows;
    ~0.5 s with zeros kept; 1.4 s and 1.15 s when such rows took a
    float64-cumsum path of their own).

    ``zero_fraction`` is the fraction of exact zeros among the scope's values
    (all of U for pooled rows); ``n_values`` the number of values that entered
    the estimate (robust and hill: values after dropping zeros; block_sweep:
    values in complete blocks; per_coordinate: valid columns × rows used).
    """

    def __init__(
        self,
        n_rows: int,
        n_cols: int,
        layers: Sequence[tuple[str, int, int]],
        *,
        exclude_zeros: bool = True,
        robust_factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
        sweep_k1: Sequence[int] | None = None,
        hill_k: int | None = None,
        ci_groups: int = 20,
        ci_level: float = 0.95,
        shuffle_seed: int = 0,
        per_coordinate: bool = True,
        shuffled_sweep: bool = True,
        max_piece_values: int = 1 << 22,
    ) -> None:
        """
        Args:
            n_rows: P, the number of minibatches (rows of U), ≥ 2.
            n_cols: M, the number of parameters (columns of U).
            layers: (name, start, stop) column ranges that tile [0, M) without
                gaps or overlaps; may be empty (then no per-layer rows).
            exclude_zeros: drop exact zeros before the robust, sweep and Hill
                estimates (the reference always keeps them).
            robust_factors: factors f of the robust block sizes ⌊f·√K⌋.
            sweep_k1: block sizes of the sweep; default :func:`default_sweep_k1`
                (P·M); ``[]`` disables the sweep.
            hill_k: order statistics for Hill; default :func:`default_hill_k`.
            ci_groups: G, groups of consecutive rows for the interval (≥ 2;
                capped at P).
            ci_level: coverage of the interval, in (0, 1).
            shuffle_seed: seed of the column subset and order of the shuffled
                sweep (``shuffle_columns``).
            per_coordinate: also compute per-coordinate estimates (O(M) state).
            shuffled_sweep: also run the sweep on the shuffled stream (a gather
                of S of the M columns per row: about a third of the time).
            max_piece_values: most values processed at once (rounded down to
                whole rows, at least one; scratch buffers take about 11 bytes
                per value plus ~8 MB, reused from piece to piece).
        """
        self.n_rows = _positive_int(n_rows, "n_rows")
        self.n_cols = _positive_int(n_cols, "n_cols")
        if self.n_rows < 2:
            raise ValueError("n_rows must be >= 2 (one row has no noise to estimate)")
        if ci_groups < 2:
            raise ValueError(f"ci_groups={ci_groups} must be >= 2 for a batch-means interval")
        if not 0.0 < ci_level < 1.0:
            raise ValueError(f"ci_level={ci_level} must lie in (0, 1), e.g. 0.95")
        if hill_k is not None and hill_k < 1:
            raise ValueError(f"hill_k={hill_k} must be >= 1, or None for the default")
        self.layers = _check_layers(layers, self.n_cols)
        self.exclude_zeros = bool(exclude_zeros)
        self.ci_level = float(ci_level)
        self.hill_k = hill_k
        self.rows_seen = 0
        n_total = self.n_rows * self.n_cols
        self.eps = 0.0 if self.exclude_zeros else REFERENCE_EPS
        chosen = default_sweep_k1(n_total) if sweep_k1 is None else sweep_k1
        self.sweep_k1 = sorted({int(k) for k in chosen})
        if any(k < 2 for k in self.sweep_k1):
            raise ValueError(f"sweep_k1={self.sweep_k1} must contain block sizes >= 2 only")
        n_groups = min(int(ci_groups), self.n_rows)
        self.group_bounds = [(g * self.n_rows) // n_groups for g in range(n_groups + 1)]
        self.reference_k1 = reference_k1(n_total)
        self._reference = (
            _BlockSums([self.reference_k1], REFERENCE_EPS) if self.reference_k1 >= 2 else None
        )
        self._pooled = _Scope(
            "pooled", n_total, robust_factors, self.eps, n_groups, hill_k, self.sweep_k1
        )
        self._shuffled = (
            _BlockSums(self.sweep_k1, self.eps) if (self.sweep_k1 and shuffled_sweep) else None
        )
        self._layers = [
            _Scope(name, self.n_rows * (stop - start), robust_factors, self.eps, n_groups, hill_k)
            for name, start, stop in self.layers
        ]
        self._columns = _ColumnSums(self.n_rows, self.n_cols) if per_coordinate else None
        n_shuffled = min(self.n_cols, max(SHUFFLE_MIN_COLUMNS, -(-self.n_cols // 8)))
        #: Columns of U, in order, that form each row of the shuffled stream.
        self.shuffle_columns = np.random.default_rng(shuffle_seed).permutation(self.n_cols)[
            :n_shuffled
        ]
        self._shuffle_index = None  # torch view of shuffle_columns, made on first use
        self.max_piece_rows = min(self.n_rows, max(1, int(max_piece_values) // self.n_cols))
        self._buffer: np.ndarray | None = None
        self._n_buffered = 0
        self._work = _Workspace()

    # -- feeding -------------------------------------------------------------

    def update(
        self,
        rows: torch.Tensor | np.ndarray,
        center: torch.Tensor | np.ndarray | None = None,
        norms: np.ndarray | None = None,
    ) -> None:
        """Consume the next consecutive rows of U.

        Args:
            rows: shape (c, M) (or (M,) for one row), finite; converted to a
                float32 numpy array on the CPU. c ≥ 1, any chunking.
            center: optional (M,) vector: the rows fed are ``rows - center``
                (float32), formed a cache-sized sub-range at a time inside the
                per-value passes, so that a caller holding minibatch gradients
                and their mean ḡ never writes the noise matrix: one read of the
                gradients instead of a subtraction pass, a norm pass and a
                copy (~4 passes over memory). ``rows`` is not modified.
            norms: optional float64 array of shape (c,), filled with the
                Euclidean norm of each fed row (of ``rows - center`` with a
                center), computed while the row is in cache.

        A row with NaN or inf raises ValueError; rows before it in the same
        call may already have entered the sums (the accumulator is then of no
        further use).
        """
        a = _as_array(rows).astype(np.float32, copy=False)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != self.n_cols:
            raise ValueError(
                f"rows must have shape (c, {self.n_cols}), got {a.shape}; "
                "pass consecutive rows of the P x M noise matrix"
            )
        c = a.shape[0]
        if self.rows_seen + c > self.n_rows:
            raise ValueError(
                f"got {self.rows_seen + c} rows in total but n_rows={self.n_rows}; "
                "construct StreamingTailStats with the true number of minibatches"
            )
        if center is not None:
            center = np.ascontiguousarray(_as_array(center), dtype=np.float32).reshape(-1)
            if center.size != self.n_cols:
                raise ValueError(f"center must have {self.n_cols} entries, got {center.size}")
        if norms is not None and (norms.shape != (c,) or norms.dtype != np.float64):
            raise ValueError(f"norms must be a float64 array of shape ({c},)")
        r = 0
        while r < c:
            p = self.rows_seen
            room = min(self.n_rows - p, self.max_piece_rows - self._n_buffered)
            take = min(c - r, room)
            part_norms = None if norms is None else norms[r : r + take]
            if self._n_buffered == 0 and take == room:  # a whole piece: no copy
                self._process(a[r : r + take], p, center, part_norms)
                self.rows_seen += take
            else:  # collect small chunks into one piece (Python overhead is per piece)
                if self._buffer is None:
                    self._buffer = np.empty((self.max_piece_rows, self.n_cols), np.float32)
                block = self._buffer[self._n_buffered : self._n_buffered + take]
                if center is None:
                    block[:] = a[r : r + take]
                else:
                    np.subtract(a[r : r + take], center, out=block)
                if part_norms is not None:
                    _row_norms(block, part_norms)
                _check_finite(block)
                self._n_buffered += take
                self.rows_seen += take
                if take == room:
                    first = self.rows_seen - self._n_buffered
                    self._process(self._buffer[: self._n_buffered], first, None, None)
                    self._n_buffered = 0
            r += take

    def _process(
        self,
        piece: np.ndarray,
        first_row: int,
        center: np.ndarray | None,
        norms: np.ndarray | None,
    ) -> None:
        with _one_blas_thread():
            self._process_piece(piece, first_row, center, norms)

    def _process_piece(
        self,
        piece: np.ndarray,
        first_row: int,
        center: np.ndarray | None = None,
        norms: np.ndarray | None = None,
    ) -> None:
        """One piece of whole rows, shape (c, M) float32, rows ``first_row`` on
        of U (the rows fed are ``piece - center`` with a center); it may span
        several interval groups.

        The per-value passes run on sub-ranges of about :data:`LEVEL1_VALUES`
        values (so that each pass finds its data in cache); the block
        bookkeeping runs once per piece (its cost is mostly per call). With a
        center, each sub-range's rows are formed straight into the segment's
        value buffer (where they would otherwise be copied).
        """
        piece = np.ascontiguousarray(piece, dtype=np.float32)
        c, m = piece.shape
        step = max(1, LEVEL1_VALUES // m)
        seg = self._new_segment(c, m)
        for r0 in range(0, c, step):
            r1 = min(r0 + step, c)
            if center is None:
                x = piece[r0:r1]
            else:
                x = seg["pooled"].slots((r1 - r0) * m)[0].reshape(r1 - r0, m)
                np.subtract(piece[r0:r1], center, out=x)
            if norms is not None:
                _row_norms(x, norms[r0:r1])
            absval = self._work.get("abs", (r1 - r0) * m, np.float32).reshape(r1 - r0, m)
            np.abs(x, out=absval)
            row_min = absval.min(axis=1)
            if not np.isfinite(absval.max(axis=1)).all():
                _check_finite(x)
            self._fast_rows(seg, x, absval, row_min, in_slot=center is not None)
        self._flush(seg, first_row)

    def _new_segment(self, max_rows: int, m: int) -> dict:
        """State of a piece of at most ``max_rows`` rows about to be fed."""
        ws = self._work
        seg = {
            "rows": 0,
            "pooled": _Segment(ws, "pooled", max_rows * m, self._pooled.sums.n_values % 100),
            # exact zeros: positions in the piece's row-major order (all M columns)
            "zeros": [],
            # values below 2**-27 (log(|x| + eps) != log|x|): (positions in the stored
            # pooled stream, log(|x| + eps) - log|x|)
            "tiny": [],
        }
        if self._shuffled is not None:
            ns = max_rows * self.shuffle_columns.size
            seg["shuffled"] = _Segment(ws, "shuffled", ns, self._shuffled.n_values % 100)
            seg["s_zeros"] = []  # exact zeros kept in the shuffled stream (positions)
        return seg

    def _fast_rows(
        self,
        seg: dict,
        rows: np.ndarray,
        absval: np.ndarray,
        row_min: np.ndarray,
        in_slot: bool = False,
    ) -> None:
        """Per-value passes over rows (``absval`` = |rows|, ``row_min`` its row
        minima): values, logs and their 10-sums into the segment; Hill
        candidates; per-coordinate sums; the shuffled stream. ``in_slot``: the
        rows already sit in the segment's next value slots (they may be
        overwritten).

        Exact zeros are found with the values below 2**-27 (in the rows whose
        minimum is below it) and their positions kept. With ``exclude_zeros``
        they are not stored: values and logs are compacted in place, after the
        per-coordinate sums and the shuffled gather have read the rows, and
        the reference, which keeps zeros, reads the stored stream through the
        zero list (:func:`_through_zeros`). Without it they are stored with
        log(0 + eps), and the zero list makes blocks of zeros sum to exactly 0
        (``_BlockSums.update_fast``), as in the in-memory functions.
        """
        c, m = rows.shape
        n = rows.size
        pooled = seg["pooled"]
        u0 = seg["rows"] * m  # piece position of these rows' first value
        values, logs = pooled.slots(n)
        if not in_slot:
            np.copyto(values, rows.reshape(-1))
        flat_abs = absval.reshape(-1)
        with np.errstate(divide="ignore"):
            np.log(flat_abs, out=logs)  # -inf at exact zeros (removed or replaced below)
        zeros = tiny = _EMPTY_INT
        if row_min.min() < _TINY:  # rare but for exact zeros: scan those rows only
            low_rows = np.flatnonzero(row_min < _TINY)
            low = np.concatenate([r * m + np.flatnonzero(absval[r] < _TINY) for r in low_rows])
            is_zero = flat_abs[low] == 0
            zeros, tiny = low[is_zero], low[~is_zero]
        nz = zeros.size
        has_zero = None
        layer_zeros = np.zeros(len(self._layers), dtype=np.int64)
        if nz:
            seg["zeros"].append(u0 + zeros)
            cols = zeros % m
            has_zero = np.zeros(m, dtype=bool)
            has_zero[cols] = True
            self._pooled.n_zero += nz
            if self._layers:
                bounds = [stop for _, _, stop in self.layers]
                layer_of = np.searchsorted(bounds, cols, side="right")
                layer_zeros = np.bincount(layer_of, minlength=len(self._layers))
                for scope, count in zip(self._layers, layer_zeros, strict=True):
                    scope.n_zero += int(count)
        if tiny.size:  # log(|x| + eps) - log|x|, before logs are moved or replaced
            delta = np.log(flat_abs[tiny] + np.float32(REFERENCE_EPS)) - logs[tiny]
        seg["rows"] += c

        # Hill: one comparison pass; each layer's slice against the lower of
        # its own and the pooled running threshold (0 while a buffer fills)
        keep_zeros = nz > 0 and not self.exclude_zeros
        dropped = nz if self.exclude_zeros else 0
        pooled_hill = self._pooled.hill
        pooled_hill.n_values += n - dropped
        if not self._layers:
            pooled_hill.add(_above(flat_abs, pooled_hill.threshold, keep_zeros))
        pooled_cand = []
        for scope, (_, lo, hi), n_zero in zip(self._layers, self.layers, layer_zeros, strict=True):
            part = absval[:, lo:hi]
            hill = scope.hill
            hill.n_values += c * (hi - lo) - (int(n_zero) if self.exclude_zeros else 0)
            cand = _above(part, min(hill.threshold, pooled_hill.threshold), keep_zeros)
            hill.add(_above(cand, hill.threshold, keep_zeros))
            pooled_cand.append(_above(cand, pooled_hill.threshold, keep_zeros))
        if pooled_cand:
            pooled_hill.add(np.concatenate(pooled_cand))

        if self._columns is not None:  # logs of zeros are -inf: those columns become NaN
            self._columns.update(rows, logs.reshape(c, m), has_zero)

        if self._shuffled is not None:
            self._shuffled_rows(seg, rows, nz > 0)

        kept = n
        if nz and self.exclude_zeros:  # compact values and logs in place
            for arr in (values, logs):
                _drop_positions(arr, zeros, self._work)
            tiny = tiny - np.searchsorted(zeros, tiny)  # positions among the kept values
            kept = n - nz
        elif nz:  # kept: value 0, log(0 + eps)
            logs[zeros] = _LOG_EPS32
        if tiny.size:
            seg["tiny"].append((pooled.n + tiny, delta))
        pooled.advance(kept)

    def _shuffled_rows(self, seg: dict, rows: np.ndarray, any_zero: bool) -> None:
        """The shuffled stream's values and logs of these rows (a gather of the
        ``shuffle_columns``), exact zeros dropped with ``exclude_zeros``."""
        import torch  # its index_select gathers ~1.4x faster than np.take(axis=1)

        if self._shuffle_index is None:
            self._shuffle_index = torch.from_numpy(self.shuffle_columns)
        c = rows.shape[0]
        shuffled = seg["shuffled"]
        ns = c * self.shuffle_columns.size
        s_values, s_logs = shuffled.slots(ns)
        torch.index_select(
            torch.from_numpy(rows),
            1,
            self._shuffle_index,
            out=torch.from_numpy(s_values).view(c, -1),
        )
        gathered = self._work.get("gathered", ns, np.float32)
        np.abs(s_values, out=gathered)
        if any_zero:  # as the pooled stream (see _fast_rows)
            zeros = np.flatnonzero(gathered == 0)
            if zeros.size and self.exclude_zeros:
                nonzero = gathered != 0
                kept = ns - zeros.size
                s_values[:kept] = s_values[nonzero]
                gathered[:kept] = gathered[nonzero]
                ns = kept
            elif zeros.size:
                seg["s_zeros"].append(shuffled.n + zeros)
        if self.eps:
            gathered[:ns] += np.float32(self.eps)
        np.log(gathered[:ns], out=s_logs[:ns])
        shuffled.advance(ns)

    def _flush(self, seg: dict, first_row: int) -> None:
        """Block bookkeeping of a piece, for every stream at once.

        log(|x| + eps) differs from log|x| only for |x| < 2**-27: the streams
        that use eps get those few differences added to their log prefix sums.
        With ``exclude_zeros`` the stored streams lack the exact zeros and the
        reference, which keeps them (log(0 + eps) each), reads the stored
        stream through the zero list; without it every stream keeps them and
        the zero lists make blocks of zeros exact.
        """
        if seg["rows"] == 0:
            return
        c, m = seg["rows"], self.n_cols
        vp, lp = seg["pooled"].prefixes()
        n = seg["pooled"].n  # values stored
        lp_eps = lp
        if seg["tiny"]:
            tiny = np.concatenate([t for t, _ in seg["tiny"]])
            cum = np.zeros(tiny.size + 1)
            np.cumsum(np.concatenate([d for _, d in seg["tiny"]]), dtype=np.float64, out=cum[1:])

            def lp_eps(pos: np.ndarray) -> np.ndarray:
                return lp(pos) + cum[np.searchsorted(tiny, pos)]

        zeros = np.concatenate(seg["zeros"]) if seg["zeros"] else _EMPTY_INT
        rows = np.arange(c, dtype=np.int64) * m
        # interval groups: the first one's index, the piece rows where the next ones begin
        group = _group_of(self.group_bounds, first_row)
        cut_rows = np.array(
            [b - first_row for b in self.group_bounds if first_row < b < first_row + c],
            dtype=np.int64,
        )
        if self.exclude_zeros:  # stored: the values without zeros, eps = 0
            if self._reference is not None:  # keeps zeros: read through their list
                ref_vp, ref_lp = vp, lp_eps
                if zeros.size:
                    ref_vp, ref_lp = _through_zeros(vp, lp_eps, zeros, float(_LOG_EPS32))
                self._reference.update_fast(c * m, ref_vp, ref_lp)
            cuts = cut_rows * m - np.searchsorted(zeros, cut_rows * m)
            self._pooled.sums.update_fast(n, vp, lp, group, tens=(vp.s10, vp.pad), cuts=cuts)
            starts = [rows + a - np.searchsorted(zeros, rows + a) for _, a, _ in self.layers]
            stops = [rows + b - np.searchsorted(zeros, rows + b) for _, _, b in self.layers]
            layer_zeros = [None] * len(self.layers)
            lp_used = lp
        else:  # stored: every value, zeros with log(0 + eps); eps everywhere
            if self._reference is not None:
                self._reference.update_fast(n, vp, lp_eps, zeros=zeros)
            self._pooled.sums.update_fast(
                n, vp, lp_eps, group, tens=(vp.s10, vp.pad), cuts=cut_rows * m, zeros=zeros
            )
            starts = [rows + a for _, a, _ in self.layers]
            stops = [rows + b for _, _, b in self.layers]
            row, col = np.divmod(zeros, m)
            layer_zeros = [
                row[(col >= a) & (col < b)] * (b - a) + col[(col >= a) & (col < b)] - a
                for _, a, b in self.layers
            ]
            lp_used = lp_eps
        if self.layers:
            lo, hi = np.stack(starts), np.stack(stops)
            layer_vp = _layer_prefixes(vp, lo, hi)
            layer_lp = _layer_prefixes(lp_used, lo, hi)
            for scope, lvp, llp, lo_l, hi_l, lz in zip(
                self._layers, layer_vp, layer_lp, lo, hi, layer_zeros, strict=True
            ):
                before = np.concatenate(([0], np.cumsum(hi_l - lo_l)))  # layer position of row r
                scope.sums.update_fast(
                    int(before[-1]), lvp, llp, group, cuts=before[cut_rows], zeros=lz
                )
        if self._shuffled is not None:
            svp, slp = seg["shuffled"].prefixes()
            s_zeros = np.concatenate(seg["s_zeros"]) if seg["s_zeros"] else None
            self._shuffled.update_fast(
                seg["shuffled"].n, svp, slp, tens=(svp.s10, svp.pad), zeros=s_zeros
            )

    # -- results -------------------------------------------------------------

    def finalize(self) -> list[dict]:
        """Tidy result rows (see the class docstring), one dict per row.

        Keys: estimator, scope, order, k1, alpha, ci_low, ci_high, q25, q75,
        n_values, zero_fraction.
        """
        if self.rows_seen != self.n_rows:
            raise ValueError(
                f"finalize() after {self.rows_seen} of n_rows={self.n_rows} rows; "
                "feed every row of U first, or construct with the true n_rows"
            )
        n_total = self.n_rows * self.n_cols
        pooled_zf = self._pooled.n_zero / n_total
        ref_alpha = self._reference.alpha(self.reference_k1) if self._reference else math.nan
        out: list[dict] = [
            _row(
                "mohammadi_reference",
                "pooled",
                k1=self.reference_k1,
                alpha=ref_alpha,
                n_values=n_total,
                zero_fraction=pooled_zf,
            )
        ]
        column_alphas = self._columns.alphas() if self._columns is not None else None
        scopes = [(self._pooled, 0, self.n_cols)] + [
            (s, start, stop) for s, (_, start, stop) in zip(self._layers, self.layers, strict=True)
        ]
        for scope, start, stop in scopes:
            out.extend(self._scope_rows(scope, column_alphas, start, stop))
        for order, sums in (("natural", self._pooled.sums), ("shuffled", self._shuffled)):
            if sums is None:
                continue
            for k1 in self.sweep_k1:
                nb = int(sums.n_blocks[sums.k1.index(k1)])
                out.append(
                    _row(
                        "block_sweep",
                        "pooled",
                        order=order,
                        k1=k1,
                        alpha=sums.alpha(k1),
                        n_values=nb * k1,
                        zero_fraction=pooled_zf,
                    )
                )
        return out

    def _scope_rows(
        self, scope: _Scope, column_alphas: np.ndarray | None, start: int, stop: int
    ) -> list[dict]:
        zf = scope.n_zero / scope.n_expected
        low, high = batch_means_interval(scope.sums.group_inverse_alphas(), self.ci_level)
        rows = [
            _row(
                "mohammadi_robust",
                scope.name,
                k1=scope.ci_k1,
                alpha=scope.robust_alpha(),
                ci_low=low,
                ci_high=high,
                n_values=scope.sums.n_values,
                zero_fraction=zf,
            ),
            _row(
                "hill",
                scope.name,
                alpha=scope.hill.alpha(self.hill_k),
                n_values=scope.hill.n_values,
                zero_fraction=zf,
            ),
        ]
        if column_alphas is not None:
            a = column_alphas[start:stop]
            a = a[np.isfinite(a)]
            q25, med, q75 = np.quantile(a, [0.25, 0.5, 0.75]) if a.size else (math.nan,) * 3
            rows.append(
                _row(
                    "per_coordinate",
                    scope.name,
                    k1=self._columns.k1,
                    alpha=float(med),
                    q25=float(q25),
                    q75=float(q75),
                    n_values=int(a.size) * self._columns.used_rows,
                    zero_fraction=zf,
                )
            )
        return rows

    def state_nbytes(self) -> int:
        """Bytes of accumulated state; does not grow with the number of rows fed.

        Pending Hill candidates are merged first (between merges fewer than
        ``keep`` plus one piece's candidates wait per Hill buffer, see
        :class:`_TopAbs`)."""
        for scope in [self._pooled, *self._layers]:
            scope.hill._merge()
        total = sum(s.nbytes() for s in (self._reference, self._shuffled) if s is not None)
        total += sum(s.sums.nbytes() + s.hill.nbytes() for s in [self._pooled, *self._layers])
        if self._columns is not None:
            total += self._columns.nbytes()
        return total


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


_BLAS_CONTROLLER: list = []


def _one_blas_thread():
    """Context limiting BLAS to one thread (the fast path's matrix-vector
    products are memory bound; a second BLAS thread competing with torch's
    threads or other jobs on the 2-core machine made them ~10× slower).
    A no-op context when threadpoolctl is not installed."""
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    if not _BLAS_CONTROLLER:
        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas")


def _row_norms(x: np.ndarray, out: np.ndarray) -> None:
    """Euclidean norms of the rows of a float32 (c, M) array into ``out`` (float64)
    (the arithmetic of ``torch.linalg.vector_norm`` on float32 rows)."""
    import torch

    out[:] = torch.linalg.vector_norm(torch.from_numpy(x), dim=1).double().numpy()


def _check_finite(x: np.ndarray) -> None:
    if not np.isfinite(x).all():
        raise ValueError(
            "rows contain NaN or inf (diverged training?); measure a finite checkpoint"
        )


def _positive_int(v: int, name: str) -> int:
    if isinstance(v, bool) or int(v) != v or int(v) < 1:
        raise ValueError(f"{name}={v!r} must be a positive integer")
    return int(v)


def _as_array(x: ArrayLike) -> np.ndarray:
    """x as a floating numpy array on the CPU (no copy for float arrays/tensors)."""
    torch = sys.modules.get("torch")  # a tensor implies torch is imported
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
    a = _as_array(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}; flatten it first")
    return a


def _finite_median(values: Sequence[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def _top_sorted(a: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` largest entries of a 1-D array, sorted descending."""
    if a.size > keep:
        a = np.partition(a, a.size - keep)[a.size - keep :]
    return np.sort(a)[::-1].copy()


def _hill_from_top(top: np.ndarray, k: int) -> float:
    """Hill α̂ from the k+1 largest |x| sorted descending, shape (k+1,)."""
    t = top.astype(np.float64)
    threshold = t[k]
    if threshold <= 0:
        return math.nan
    mean_log = float(np.log(t[:k] / threshold).mean())
    return 1.0 / mean_log if mean_log > 0 else math.inf


def _column_alphas(
    sum_log_y: np.ndarray, sum_log_x: np.ndarray, has_zero: np.ndarray, k1: int, k2: int
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (sum_log_y / k2 - sum_log_x / (k1 * k2)) / math.log(k1)
        alpha = 1.0 / inv
    alpha[has_zero] = np.nan
    return alpha


def _check_layers(
    layers: Sequence[tuple[str, int, int]], n_cols: int
) -> list[tuple[str, int, int]]:
    out = [(str(n), int(a), int(b)) for n, a, b in layers]
    if not out:
        return out
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names) or "pooled" in names:
        raise ValueError(f"layer names {names} must be unique and not 'pooled'")
    pos = 0
    for name, start, stop in sorted(out, key=lambda r: r[1]):
        if start != pos or stop <= start:
            raise ValueError(
                f"layer {name!r} covers columns [{start}, {stop}) but should start at {pos}; "
                f"layers must tile [0, {n_cols}) without gaps, overlaps or empty ranges"
            )
        pos = stop
    if pos != n_cols:
        raise ValueError(f"layers end at column {pos}, not at n_cols={n_cols}; cover every column")
    return out


def _group_of(bounds: Sequence[int], row: int) -> int:
    """Index g with bounds[g] <= row < bounds[g + 1]."""
    return int(np.searchsorted(bounds, row, side="right")) - 1


def _row(
    estimator: str,
    scope: str,
    *,
    order: str = "natural",
    k1: int = -1,
    alpha: float = math.nan,
    ci_low: float = math.nan,
    ci_high: float = math.nan,
    q25: float = math.nan,
    q75: float = math.nan,
    n_values: int = 0,
    zero_fraction: float = math.nan,
) -> dict:
    return {
        "estimator": estimator,
        "scope": scope,
        "order": order,
        "k1": int(k1),
        "alpha": float(alpha),
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "q25": float(q25),
        "q75": float(q75),
        "n_values": int(n_values),
        "zero_fraction": float(zero_fraction),
    }
