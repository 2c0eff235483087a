"""Tail-index estimators for gradient noise, in memory and streamed.

All estimators treat their input as samples of one scalar, symmetric
α-stable (SαS) variable, α ∈ (0, 2] (α = 2 is Gaussian, smaller α is heavier
tailed). Values are unit-free: the estimators are scale invariant.

Every log is ℓ(v) = log(|v| + ε) with ε = :data:`REFERENCE_EPS`, the 2019
code's, taken in float64 (as the 2019 code's ``np.log(np.abs(X) + eps)`` does
for float32 X under NumPy 2); it differs from log|v| by more than 1e-8 only
for |v| below ~2e-8 and makes an exact zero finite. With ``exclude_zeros``
(the default of every estimator but the reference) exact zeros leave the
sample: they are not values, and a block's size is the number of nonzero
values in it.

In-memory functions (1-D samples ``x`` in the given order):

* :func:`mohammadi_alpha` -- Mohammadi, Mohammadpour & Ogata (2015), Cor. 2.4,
  at one block size K1.
* :func:`mohammadi_reference` -- exactly what the authors' 2019 code computes:
  K1 = largest divisor of K that is ≤ √K, zeros kept as values.
* :func:`mohammadi_robust` -- median of :func:`mohammadi_alpha` over the
  block sizes 2^j nearest to f·√K for a few factors f.
* :func:`mohammadi_order_alpha` -- Mohammadi et al. (2015), Cor. 2.2: the
  same scaling read from order statistics (the 2019 code's ``alpha_estimator2``).
* :func:`hill_alpha` -- Hill estimator on |X| from the top-k order statistics.
* :func:`per_coordinate_alpha` -- one estimate per column of a (P, M) matrix.
* :func:`block_size_sweep` -- α̂ as a function of K1.

:class:`StreamingTailStats` computes the same numbers over a noise matrix U
(P minibatches × M parameters) fed row chunk by row chunk, in memory that does
not grow with P. The pooled sample order is row-major over U (the flattening
``U.reshape(-1)``), as in the reference code.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

if TYPE_CHECKING:  # torch is imported only where it is used: the figure, aggregation and
    import torch  # validation jobs that import this module start ~1.7 s faster without it

__all__ = [
    "DEFAULT_ROBUST_FACTORS",
    "ESTIMATORS",
    "REFERENCE_EPS",
    "StreamingTailStats",
    "batch_means_interval",
    "block_size_sweep",
    "central_k1",
    "default_hill_k",
    "default_order_k",
    "default_sweep_k1",
    "hill_alpha",
    "mohammadi_alpha",
    "mohammadi_order_alpha",
    "mohammadi_reference",
    "mohammadi_robust",
    "order_x_rank",
    "per_coordinate_alpha",
    "reference_k1",
    "robust_k1_values",
    "sample_sas",
]

#: ε of every log, ℓ(v) = log(|v| + ε): the 2019 code's ``np.spacing(1)`` = 2**-52
#: (float64 machine epsilon, *not* float32's). An exact zero kept as a value becomes
#: ℓ(0) ≈ -36.0; this is what drags the reference α̂ below 1 on Gaussian data with
#: 10% zeros (docs/science.md gives the numbers).
REFERENCE_EPS: float = float(np.spacing(1.0))

#: The shuffled block sweep uses S = min(M, max(SHUFFLE_MIN_COLUMNS, ⌈M/8⌉))
#: columns of U (see :class:`StreamingTailStats`): all of them for M ≤ 16,384,
#: 16,384 of 118,016 (13.9%) for the MNIST FCN 128×3.
SHUFFLE_MIN_COLUMNS: int = 16384

#: The shuffled sweep runs at the block sizes K1 of the sweep with K1 ≤ S / this: a block
#: then takes at most 1/16 of one minibatch's S shuffled coordinates and at most one block
#: in 16 spans two rows. Larger blocks hold much of a row, or whole rows, whose sums do not
#: depend on the order: there the shuffled sweep would repeat the natural one.
SHUFFLED_BLOCKS_PER_ROW: int = 16

#: Multiples of √K whose nearest powers of two are the block sizes of :func:`mohammadi_robust`.
DEFAULT_ROBUST_FACTORS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)

#: Values of the ``estimator`` column written by :meth:`StreamingTailStats.finalize`.
ESTIMATORS: tuple[str, ...] = (
    "mohammadi_reference",
    "mohammadi_robust",
    "mohammadi_order",
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
    """Block sizes 2^j, j = max(1, round(log2(f·√k))) for each factor f, sorted and deduplicated.

    Powers of two, so that the streaming engine gets every one of them from one
    ladder of pair sums; with the default factors, the five powers of two
    around √k."""
    k = _positive_int(k, "k")
    if len(factors) == 0 or any(f <= 0 for f in factors):
        raise ValueError(f"factors={tuple(factors)} must be a non-empty list of positive numbers")
    return sorted({2 ** max(1, round(math.log2(f * math.sqrt(k)))) for f in factors})


def central_k1(k: int) -> int:
    """The power of two nearest to √k (at least 2): the robust member that
    carries the batch-means interval and the order-statistics estimate."""
    return robust_k1_values(k, (1.0,))[0]


def default_hill_k(n: int) -> int:
    """Default number of order statistics for :func:`hill_alpha`: max(10, ⌊√n⌋)."""
    return max(10, math.isqrt(_positive_int(n, "n")))


#: Most values :func:`default_order_k` lets the order-statistics estimator hold (k1·k).
ORDER_MAX_HELD: int = 1 << 16


def default_order_k(n_blocks: int, k1: int) -> int:
    """Default rank k of :func:`mohammadi_order_alpha` for K2 blocks of k1 values:
    ⌊√K2⌋, at most :data:`ORDER_MAX_HELD` // k1, at least 1."""
    n_blocks, k1 = _positive_int(n_blocks, "n_blocks"), _positive_int(k1, "k1")
    return max(1, min(math.isqrt(n_blocks), ORDER_MAX_HELD // k1))


def default_sweep_k1(k: int) -> list[int]:
    """Block sizes 16, 32, 64, ... (powers of two) up to k // 10."""
    k = _positive_int(k, "k")
    out: list[int] = []
    k1 = 16
    while k1 <= k // 10:
        out.append(k1)
        k1 *= 2
    return out


# ----------------------------------------------------------------------------
# In-memory estimators
# ----------------------------------------------------------------------------


def _log_eps(v: np.ndarray) -> np.ndarray:
    """ℓ(v) = log(|v| + ε) in float64."""
    out = np.abs(v, dtype=np.float64)
    out += REFERENCE_EPS
    return np.log(out, out=out)


def _alpha(sum_log_y: float, n_blocks: int, sum_log_x: float, n_values: int, sum_log_n: float):
    """α̂ = 1 / :func:`_inverse_alpha` (NaN without a block or value; inf and 0 pass through)."""
    inv = _inverse_alpha(sum_log_y, n_blocks, sum_log_x, n_values, sum_log_n)
    with np.errstate(divide="ignore"):
        return float(np.float64(1.0) / inv)


def mohammadi_alpha(x: ArrayLike, k1: int, exclude_zeros: bool = True) -> float:
    """Tail index by Mohammadi, Mohammadpour & Ogata (2015), Corollary 2.4.

    Blocks: the first K2 = len(x) // k1 runs of k1 consecutive values (the
    remainder is in no block); Y_i = sum of block i (float64).
    1/α̂ = [mean_i ℓ(Y_i) − mean_j ℓ(X_j)] / mean_i log n_i, with X_j every value
    and n_i = k1.

    With ``exclude_zeros`` exact zeros are not values: X_j runs over the nonzero
    values, n_i is the number of nonzero values in block i, and blocks with
    Y_i = 0 are left out. Without zeros both forms are the same.

    Args:
        x: 1-D samples, shape (n,); ℓ and every sum are taken in float64.
        k1: block size, 2 ≤ k1 ≤ n.

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
    blocks = a[: k2 * k1].reshape(k2, k1)
    y = blocks.sum(axis=1, dtype=np.float64)
    log_x = _log_eps(a)
    if not exclude_zeros:
        return _alpha(
            float(_log_eps(y).sum()), k2, float(log_x.sum()), a.size,
            k2 * math.log(k1),
        )  # fmt: skip
    n = np.count_nonzero(blocks, axis=1)[y != 0]
    nonzero = a != 0
    return _alpha(
        float(_log_eps(y[y != 0]).sum()),
        n.size,
        float(log_x[nonzero].sum()),
        int(nonzero.sum()),
        float(np.log(n).sum()),
    )


def mohammadi_reference(x: ArrayLike) -> float:
    """The 2019 code's estimate: :func:`mohammadi_alpha` at K1 = :func:`reference_k1`
    (len(x)) with zeros kept as values (ℓ(0) = log ε).

    Returns NaN when len(x) is prime (K1 = 1: the 2019 code divides by log 1 = 0).
    """
    a = _as_1d(x, "x")
    k1 = reference_k1(a.size)
    if k1 < 2:
        return math.nan
    return mohammadi_alpha(a, k1, exclude_zeros=False)


def mohammadi_robust(
    x: ArrayLike,
    factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
    exclude_zeros: bool = True,
    k_nominal: int | None = None,
) -> float:
    """Median of :func:`mohammadi_alpha` over K1 in :func:`robust_k1_values`.

    Args:
        x: 1-D samples.
        factors: multiples f of √K whose nearest powers of two are the block sizes.
        exclude_zeros: passed to :func:`mohammadi_alpha`.
        k_nominal: the K used to derive the block sizes; default len(x).

    Returns:
        median over the block sizes that leave at least one full block and
        give a finite α̂ (NaN if none).
    """
    a = _as_1d(x, "x")
    k = a.size if k_nominal is None else k_nominal
    values = [
        mohammadi_alpha(a, k1, exclude_zeros)
        for k1 in robust_k1_values(k, factors)
        if a.size // k1 >= 1
    ]
    return _finite_median(values)


def mohammadi_order_alpha(
    x: ArrayLike, k1: int, k: int | None = None, exclude_zeros: bool = True
) -> float:
    """Tail index from order statistics, Mohammadi et al. (2015), Corollary 2.2.

    For i.i.d. SαS values a block sum of m values has the law of m^{1/α}·X, so
    every quantile of |Y| is m^{1/α} times the same quantile of |X|. With Y the
    K2 = len(x) // k1 block sums of k1 consecutive values (as in
    :func:`mohammadi_alpha`): 1/α̂ = [ℓ(|Y|_(k)) − ℓ(|X|_(k1·k))] / log k1, where
    |Y|_(k) is the k-th smallest |Y| and |X|_(k1·k) the (k1·k)-th smallest |X|
    (the 2019 code's ``alpha_estimator2``, applied to scalars).

    With ``exclude_zeros`` exact zeros and blocks with Y = 0 are left out, and the
    two order statistics are read at the same quantile of what is left: |X| at rank
    :func:`order_x_rank` (k, k1, N, K2) of the N nonzero values, K2 the blocks kept, and
    log k1 is replaced by the mean log n_i of the kept blocks' numbers of nonzero values
    (as :func:`mohammadi_alpha` does). Without zeros both forms are the same.

    Args:
        k: rank, default :func:`default_order_k` (K2, k1).

    Returns:
        α̂, or NaN when there are fewer than k blocks or too few values, or x holds NaN.
    """
    a = _as_1d(x, "x")
    k1 = _positive_int(k1, "k1")
    k2 = a.size // k1
    if k1 < 2 or k2 < 1:
        raise ValueError(f"k1={k1} must lie in [2, {a.size}] for {a.size} samples")
    k = default_order_k(k2, k1) if k is None else _positive_int(k, "k")
    if np.isnan(a).any():
        return math.nan
    blocks = a[: k2 * k1].reshape(k2, k1)
    y = np.abs(blocks.sum(axis=1, dtype=np.float64))
    v = np.abs(a)
    log_n, rank = math.log(k1), k1 * k
    if exclude_zeros:
        n = np.count_nonzero(blocks, axis=1)[y != 0]
        y, v = y[y != 0], v[v != 0]
        log_n = float(np.log(n).sum()) / n.size if n.size else math.nan
        rank = order_x_rank(k, k1, v.size, y.size)
    if y.size < k or v.size < rank or not log_n > 0:
        return math.nan  # log_n = 0: every kept block holds one nonzero value
    y_k = np.partition(y, k - 1)[k - 1 : k]
    x_k = np.partition(v, rank - 1)[rank - 1 : rank]
    return _order_alpha(y_k, x_k, log_n)


def order_x_rank(k: int, k1: int, n_values: int, n_blocks: int) -> int:
    """Rank of |X| in :func:`mohammadi_order_alpha` with zeros left out: the k-th of
    n_blocks block sums and this rank of n_values values sit at the same quantile,
    round(k·n_values / n_blocks), between 1 and k1·k (k1·k when nothing was left out)."""
    if n_blocks < 1:
        return k1 * k
    return int(min(k1 * k, max(1, round(k * n_values / n_blocks))))


def _order_alpha(y_k: np.ndarray, x_k: np.ndarray, log_n: float) -> float:
    """α̂ of Cor. 2.2 from the two order statistics (1-element arrays) and the mean log
    block size."""
    inv = (float(_log_eps(y_k)[0]) - float(_log_eps(x_k)[0])) / log_n
    with np.errstate(divide="ignore"):
        return float(np.float64(1.0) / np.float64(inv))


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

    For column m: :func:`mohammadi_alpha` (u[:, m], K1 = max(2, ⌊√P⌋)).

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
    sum_log_x = _log_eps(a).sum(axis=0)
    y = a[: k2 * k1].reshape(k2, k1, m).sum(axis=1, dtype=np.float64)
    has_zero = (a == 0).any(axis=0)
    return _column_alphas(_log_eps(y).sum(axis=0), sum_log_x, has_zero, k1, k2, p)


def block_size_sweep(
    x: ArrayLike,
    k1_values: Sequence[int],
    shuffle: bool = False,
    seed: int = 0,
    exclude_zeros: bool = True,
) -> pd.DataFrame:
    """α̂ of :func:`mohammadi_alpha` for each block size.

    Args:
        x: 1-D samples.
        k1_values: block sizes (each ≥ 2); those larger than len(x) give NaN.
        shuffle: apply one global random permutation first
            (``np.random.default_rng(seed).permutation``).
        seed: seed of that permutation.
        exclude_zeros: passed to :func:`mohammadi_alpha`.

    Returns:
        DataFrame with columns ``k1`` (int) and ``alpha`` (float), one row per block size.
    """
    a = _as_1d(x, "x")
    if shuffle:
        a = a[np.random.default_rng(seed).permutation(a.size)]
    rows = []
    for k1 in k1_values:
        k1 = int(k1)
        alpha = mohammadi_alpha(a, k1, exclude_zeros) if a.size // k1 >= 1 else math.nan
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
    # Student's t quantile (scipy.stats.t.ppf calls the same function; scipy.special imports
    # in half the time, and every noise job imports this module)
    half = float(special.stdtrit(g - 1, 0.5 + level / 2.0) * v.std(ddof=1) / math.sqrt(g))
    lo_inv, hi_inv = float(v.mean()) - half, float(v.mean()) + half
    if hi_inv <= 0.0:
        return math.nan, math.nan
    return 1.0 / hi_inv, (1.0 / lo_inv if lo_inv > 0.0 else math.inf)


# ----------------------------------------------------------------------------
# Streaming engine
# ----------------------------------------------------------------------------

#: ℓ(0) = log(0 + ε).
LOG_EPS: float = math.log(REFERENCE_EPS)


class _Adder:
    """Sums of consecutive runs of q entries of a stream fed in pieces, with their numbers
    of nonzero values, as a (2, n) float64 array: each completed run's sum and count.

    With ``values`` it is fed values, (c, w) rows read one after the other (a row may be
    a strided slice of a wider matrix: :func:`sgdtail.kernels.value_runs`); else (2, n)
    such sums, and it adds q consecutive columns. The run that the earlier pieces left
    open is carried (sum, count, length); the output buffer is reused from piece to
    piece (fresh large arrays cost page faults), so an output is valid until the next call.
    """

    def __init__(self, q: int, values: bool = False) -> None:
        self.q, self.values, self.open = q, values, np.zeros(3)
        self.buf = np.empty((2, 0))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """The sums of the runs that end in ``a``, in order (where ``a`` is: a tensor's on
        its device)."""
        q, size, kernels = self.q, math.prod(a.shape) if self.values else a.shape[1], _kernels(a)
        if self.buf.shape[1] <= (size + int(self.open[2])) // q:
            self.buf = kernels.buffer(2 * (size // q + 1), a)
        if self.values:
            return self.buf[:, : kernels.value_runs(a, q, self.open, self.buf)]
        s, c = self.open[:2], int(self.open[2])
        head = min(q - c, size) if c else 0
        if head:
            s, c = s + _as_array(a[:, :head].sum(1)), c + head
        n = (size - head) // q
        out = self.buf[:, : n + (c == q)]
        if c == q:
            (out[0, 0], out[1, 0]), s, c = s, np.zeros(2), 0
        kernels.run_sums(a[:, head : head + n * q], q, out[:, out.shape[1] - n :])
        if size > head + n * q:
            s, c = _as_array(a[:, head + n * q :].sum(1)), size - head - n * q
        self.open[:2], self.open[2] = s, c
        return out


def _kernels(a=None):
    """The per-value kernels for ``a``: their torch version (:mod:`sgdtail.torch_kernels`)
    for a tensor, else the compiled ones (:mod:`sgdtail.kernels`; numba is imported on
    first use: jobs that only read estimates, such as the figures, start ~0.5 s sooner)."""
    if a is not None and not isinstance(a, np.ndarray):
        from sgdtail import torch_kernels

        return torch_kernels
    from sgdtail import kernels

    return kernels


class _Extremes:
    """The ``keep`` largest (or smallest) values seen so far, for order statistics.

    Only values beyond :attr:`threshold` are taken: the keep-th value held once
    ``keep`` are held, before that the keep-th value of a sample of the data (a
    sample's keep-th largest is never above the data's). Candidates wait and are merged, with
    one partition, once they number ``keep``.
    """

    def __init__(self, keep: int, largest: bool, exclude_zeros: bool) -> None:
        self.keep, self.largest, self.exclude_zeros = int(keep), largest, exclude_zeros
        self.held = np.empty(0, dtype=np.float32)  # float64 once float64 values come
        self.threshold = 0.0 if largest else math.inf
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def bound_from(self, a: np.ndarray, extremes: np.ndarray | None = None) -> None:
        """While nothing is held: the threshold from |a| (any shape), or from
        ``extremes``, the extreme of each column of a 2-D ``a`` (values of distinct
        places, so their keep-th is a bound) when there are keep of them. Else a sample
        of √(keep·n) values: its partition and the candidates it lets through (about
        n·keep/sample) then cost alike, and its keep-th value is a valid bound."""
        if self.held.size >= self.keep or self._pending:
            return
        if extremes is not None and extremes.size >= self.keep:
            self.threshold = self._bound(extremes)
            return
        stride = max(1, min(a.shape[-1], math.isqrt(math.prod(a.shape) // self.keep)))
        self.threshold = self._bound(np.abs(np.ravel(_as_array(a[..., ::stride]))))

    def add_from(self, a: np.ndarray) -> None:
        """Take the candidates among the values of ``a`` (1-D, ≥ 0): those at or beyond
        the threshold (ties are taken: the threshold may be one of the values kept)."""
        c = a[a >= self.threshold] if self.largest else a[a <= self.threshold]
        c = c[c != 0] if self.exclude_zeros else c
        self._pending.append(c)
        self._n_pending += c.size
        if self.held.size < self.keep or self._n_pending >= self.keep:
            self._merge()

    def _bound(self, sample: np.ndarray) -> float:
        if self.exclude_zeros:
            sample = sample[sample != 0]
        if sample.size < self.keep:
            return self.threshold
        top = self._top(sample)
        return float(top.min() if self.largest else top.max())

    def _top(self, a: np.ndarray) -> np.ndarray:
        """The keep most extreme entries of a, in any order."""
        if a.size <= self.keep:
            return a
        i = a.size - self.keep if self.largest else self.keep - 1
        part = np.partition(a, i)
        return part[i:] if self.largest else part[: self.keep]

    def _merge(self) -> None:
        self.held = self._top(np.concatenate([self.held, *self._pending]))
        self._pending, self._n_pending = [], 0
        if self.held.size == self.keep:
            self.threshold = float(self.held.min() if self.largest else self.held.max())

    def sorted(self) -> np.ndarray:
        """The values held, most extreme first."""
        self._merge()
        s = np.sort(self.held)
        return s[::-1] if self.largest else s

    def nth(self, r: int) -> np.ndarray:
        """The r-th most extreme value held (r = 1 the most extreme), as a 1-element array;
        empty when fewer are held."""
        self._merge()
        if self.held.size < r:
            return self.held[:0]
        i = self.held.size - r if self.largest else r - 1
        return np.partition(self.held, i)[i : i + 1]


class _Sums:
    """Running Mohammadi sums of one stream at one block size K1, per interval group.

    Per group g, over the blocks whose last value falls in g: Σ ℓ(Y), their
    number and Σ log n (n = K1, or with ``exclude_zeros`` the block's number
    of nonzero values, and blocks with Y = 0 left out).
    """

    def __init__(self, k1: int, n_groups: int, exclude_zeros: bool) -> None:
        self.k1, self.exclude_zeros = k1, exclude_zeros
        self.log_y = np.zeros(n_groups)
        self.blocks = np.zeros(n_groups, dtype=np.int64)
        self.log_n = np.zeros(n_groups)
        self.smallest: _Extremes | None = None  # |Y| order statistics, when asked for

    def add(self, y: np.ndarray, group: int) -> None:
        """Blocks ending in ``group``: ``y`` (2, n), their float64 sums and their numbers
        of nonzero values."""
        args = (self.k1, self.exclude_zeros, REFERENCE_EPS)
        log_y, blocks, log_n = _kernels(y).block_logs(y[0], y[1], *args)
        self.log_y[group] += log_y
        self.blocks[group] += blocks
        self.log_n[group] += log_n
        if self.smallest is not None:
            y = _as_array(y[0])  # the central block size's sums: few
            y_abs = np.abs(y[y != 0] if self.exclude_zeros else y)
            self.smallest.bound_from(y_abs)
            self.smallest.add_from(y_abs)


def _odd_split(k1: int) -> tuple[int, int]:
    """(v, q) with k1 = q·2^v and q odd."""
    v = (k1 & -k1).bit_length() - 1
    return v, k1 >> v


class _Stream:
    """Block sums of one stream of values at several block sizes, fed in pieces.

    A block size K1 = q·2^v (q odd) groups q consecutive sums of 2^v values; the
    sums of 2^j values come from a ladder: its first level adds runs of 16 values
    (fewer when no block size needs 16) in one compiled pass, each level above adds
    consecutive pairs of the level below; a block size below the first level adds
    its K1 values (or sums of 16, from base 4 on) itself. Every sum carries its
    number of nonzero values, added alike.
    Blocks start at multiples of K1 from the stream's first value, whatever the
    pieces. The stream is the rows of a (P, width) matrix one after the other;
    the specs in ``grouped`` keep their sums per interval group (a block counts in
    the group of the row of its last value). From ``base`` 4 on it is fed the
    (2, n) sums of 16 values instead.
    """

    def __init__(self, specs, width, row_group, grouped=(), base=0):
        n_groups = int(row_group[-1]) + 1
        self.sums = {
            spec: _Sums(spec[0], n_groups if spec in grouped else 1, spec[1])
            for spec in sorted(set(specs))
        }
        self.width, self.row_group, self.base = width, row_group, base
        top = max(_odd_split(k)[0] for k, _ in self.sums)
        first = base + max(1, min(4, top - base))
        #: (level, adder): level ``level`` adds runs of entries of the level below
        self.ladder = [(first, _Adder(1 << first - base, base == 0))] if top >= first else []
        self.ladder += [(j, _Adder(2)) for j in range(first + 1, top + 1)]
        #: Per spec: the level it reads, and the adder of its blocks' entries (None: each
        #: entry of the level is a block)
        self.reads = {spec: self._reader(spec[0], first) for spec in self.sums}
        self.done = dict.fromkeys(self.sums, 0)

    def _reader(self, k1: int, first: int) -> tuple[int, _Adder | None]:
        """K1 = q·2^v reads level v, adding q of its sums; below the ladder's first level it
        reads the stream's input (values, or sums of 2^base values) and adds K1 / 2^base."""
        v, q = _odd_split(k1)
        if v < first:
            return self.base, _Adder(k1 >> self.base, self.base == 0)
        return v, None if q == 1 else _Adder(q)

    def feed(self, x: np.ndarray) -> list:
        """The stream's next values, rows (c, width) (strided or not), or from base 4 on
        (2, n) sums of 16 values; returns the levels made: ``levels[j]`` (2, n) holds the
        completed sums of 2^j values (None where not made)."""
        levels = [None] * self.base + [x]
        for level, adder in self.ladder:
            levels += [None] * (level - len(levels)) + [adder(levels[-1])]
        for spec, sums in self.sums.items():
            level, adder = self.reads[spec]
            y = levels[level] if adder is None else adder(levels[level])
            for g, a, b in self._runs(spec[0], self.done[spec], y.shape[1], sums.log_y.size > 1):
                sums.add(y[:, a:b], g)
            self.done[spec] += y.shape[1]
        return levels

    def _runs(self, k1: int, first: int, n: int, grouped: bool) -> list[tuple[int, int, int]]:
        """(group, start, stop): the blocks first + start .. first + stop − 1 end in one
        interval group (one run in group 0 when the sums are not kept per group)."""
        if not grouped or n == 0:
            return [(0, 0, n)] if n else []
        g = self.row_group[((first + np.arange(1, n + 1)) * k1 - 1) // self.width]
        cuts = [0, *(np.flatnonzero(np.diff(g)) + 1).tolist(), n]
        return [(int(g[a]), a, b) for a, b in zip(cuts, cuts[1:], strict=False)]


class _Scope:
    """One sample of the noise matrix (all of it, one layer, or the shuffled
    columns): its stream's block sums, ℓ(X) sums per interval group, and Hill
    buffer. Its robust block sizes are :func:`robust_k1_values` of its number
    of values, and the sums at :func:`central_k1` are kept per group."""

    def __init__(self, name, columns, row_group, specs, exclude_zeros, hill_keep, **stream):
        self.name, self.columns = name, columns
        self.width = columns.stop - columns.start if isinstance(columns, slice) else columns.size
        self.n_expected = row_group.size * self.width
        self.ci = (central_k1(self.n_expected), exclude_zeros)
        self.stream = _Stream(specs, self.width, row_group, {self.ci}, **stream)
        n_groups = int(row_group[-1]) + 1
        self.log_x = np.zeros(n_groups)  # Σ ℓ(X) over the nonzero values, per group
        self.n_x = np.zeros(n_groups, dtype=np.int64)
        self.n_zero = np.zeros(n_groups, dtype=np.int64)
        self.hill = _Extremes(hill_keep, True, True) if hill_keep else None
        self._seen = (0.0, 0)  # Σ ℓ(X) and zeros at the last group's end

    def close_group(self, g: int, rows: int, col_log: np.ndarray, zeros: np.ndarray) -> None:
        """Interval group g has ended after ``rows`` rows; per column of U, Σ ℓ over its
        nonzero values and its number of exact zeros, over every row so far."""
        seen = (float(col_log[self.columns].sum()), int(zeros[self.columns].sum()))
        self.log_x[g] = seen[0] - self._seen[0]
        self.n_x[g] = rows * self.width
        self.n_zero[g] = seen[1] - self._seen[1]
        self._seen = seen

    def x_sums(self, exclude_zeros: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per group: Σ ℓ(X) and the number of values (nonzero ones with ``exclude_zeros``)."""
        if exclude_zeros:
            return self.log_x, self.n_x - self.n_zero
        return self.log_x + self.n_zero * LOG_EPS, self.n_x

    def inverse_alphas(self) -> np.ndarray:
        """1/α̂ per group at the central block size (NaN where a group has no block)."""
        s = self.stream.sums[self.ci]
        sx, nx = self.x_sums(self.ci[1])
        return _inverse_alpha(s.log_y, s.blocks, sx, nx, s.log_n)

    def alpha(self, spec: tuple[int, bool]) -> float:
        """α̂ over all groups at one block size."""
        s = self.stream.sums[spec]
        sx, nx = self.x_sums(spec[1])
        return _alpha(s.log_y.sum(), s.blocks.sum(), sx.sum(), nx.sum(), s.log_n.sum())


class _Columns:
    """Per-coordinate Mohammadi sums along the rows of U.

    K1 = max(2, ⌊√P⌋) consecutive rows form a block; rows after the last complete
    block are in no block. State, of shape (M,): the open block's float64 sums
    (``partial``, which the caller adds rows to) and Σ ℓ(Y).
    """

    def __init__(self, n_rows: int, n_cols: int) -> None:
        self.k1 = max(2, math.isqrt(n_rows))
        self.k2 = n_rows // self.k1
        self.n_rows = n_rows
        self.partial = np.zeros(n_cols)
        self.log_y = np.zeros(n_cols)

    def rows_done(self, rows: int) -> None:
        """Rows 0 .. rows − 1 have been added: close the block they complete, if any."""
        if rows <= self.k1 * self.k2 and rows % self.k1 == 0:
            self.log_y += _kernels(self.partial).log(abs(self.partial) + REFERENCE_EPS)
            self.partial[:] = 0.0

    def alphas(self, log_x: np.ndarray, has_zero: np.ndarray) -> np.ndarray:
        """α̂ per column, shape (M,), given each column's Σ ℓ(X) over every row; NaN for
        the columns with an exact zero."""
        log_y = _as_array(self.log_y)
        return _column_alphas(log_y, log_x, has_zero, self.k1, self.k2, self.n_rows)


class StreamingTailStats:
    """Tail-index estimates of a noise matrix U (P × M) fed in row chunks.

    Feed the rows of U in order with :meth:`update` (any chunking), then call
    :meth:`finalize`. The pooled sample is U flattened row-major (row p's M
    coordinates, then row p+1's, ...); a layer's sample is
    ``U[:, start:stop]`` flattened row-major. State is O(M + block sizes +
    order-statistic buffers); scratch is O(piece size).

    Rows of :meth:`finalize`, each equal (to float rounding, whatever the
    chunking) to the in-memory function named; zeros are handled as
    ``exclude_zeros`` says for all but the reference:

    * ``mohammadi_reference`` (pooled): :func:`mohammadi_reference` (U.flatten()).
    * ``mohammadi_robust`` (pooled and per layer): :func:`mohammadi_robust`
      (x, factors, k_nominal=K), K = P·M (per layer P·width). ``k1`` holds
      :func:`central_k1` (K); ``ci_low``/``ci_high`` are a batch-means interval
      at that K1 over G = ``ci_groups`` groups of consecutive minibatches (rows
      ⌊g·P/G⌋ to ⌊(g+1)·P/G⌋ − 1): each group gives 1/α̂_g from the blocks that
      end in it and its own values, see :func:`batch_means_interval`. It
      measures sampling noise across minibatches, not the dependence on K1
      (``block_sweep`` shows that).
    * ``mohammadi_order`` (pooled): :func:`mohammadi_order_alpha` (U.flatten(),
      K1 = :func:`central_k1` (K)).
    * ``hill`` (pooled and per layer): :func:`hill_alpha` on the scope's values
      (nonzero ones with ``exclude_zeros``), k = ``hill_k`` or
      :func:`default_hill_k` (their number).
    * ``per_coordinate`` (pooled and per layer): :func:`per_coordinate_alpha`
      (U); ``alpha`` is the median over the scope's columns without an exact
      zero, ``q25``/``q75`` the quartiles, ``k1`` = max(2, ⌊√P⌋).
    * ``block_sweep`` (pooled): :func:`mohammadi_alpha` at each K1 in
      ``sweep_k1``; ``order="natural"`` on U.flatten(); ``order="shuffled"`` on
      ``U[:, shuffle_columns].reshape(-1)``: S = min(M, max(
      :data:`SHUFFLE_MIN_COLUMNS`, ⌈M/8⌉)) columns, the first S entries of
      ``np.random.default_rng(shuffle_seed).permutation(M)``, at the K1 of
      ``sweep_k1`` up to S / :data:`SHUFFLED_BLOCKS_PER_ROW` (``shuffled_k1``).
      Consecutive values of a block are then random coordinates of one
      minibatch, not neighbours in one layer (a global shuffle cannot stream).

    ``zero_fraction`` is the fraction of exact zeros among the scope's values;
    ``n_values`` the number of values that entered the estimate.

    How, per piece of rows: one compiled pass (:func:`sgdtail.kernels.scan`)
    multiplies each column's running product by |u| + ε for its nonzero values
    (Σ ℓ = log of the product, kept as product × 2^power), counts its exact
    zeros, adds the per-coordinate block sums, gathers the shuffled stream and
    reports the order-statistics candidates: the values beyond their column's
    Hill bounds (pooled and layer) or below the order estimate's. At the end of
    an interval group each scope reads its Σ ℓ(X) and zeros off that state.
    Each scope's values go through a ladder of float64 block sums
    (:class:`_Stream`): sums of 16 consecutive values in one compiled pass, then
    pair sums, level j holding the sums of 2^j values, so every robust and sweep
    block size comes from one pass; any other K1 = q·2^v (the reference's) adds q
    consecutive sums of level v, or below level 4 its own K1 values. A layer reads
    its values in place (strided rows of U), or the pooled sums of 16 values where
    no layer boundary cuts one. Each sum carries its number of nonzero values,
    which gives a block's size when exact zeros are left out; Σ ℓ(Y) is again the
    log of a product (:func:`sgdtail.kernels.block_logs`). With a ``device`` the
    per-value work, the per-column state and the ladder of block sums stay there,
    in torch ops (:mod:`sgdtail.torch_kernels`).
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
        max_piece_values: int = 1 << 23,
        device: str | None = None,
    ) -> None:
        """
        Args:
            n_rows: P, the number of minibatches (rows of U), ≥ 2.
            n_cols: M, the number of parameters (columns of U).
            layers: (name, start, stop) column ranges that tile [0, M) without
                gaps or overlaps; may be empty (then no per-layer rows).
            exclude_zeros: leave exact zeros out of every estimate but the reference.
            robust_factors: factors f of the robust block sizes (powers of two near f·√K).
            sweep_k1: block sizes of the sweep; default :func:`default_sweep_k1`
                (P·M); ``[]`` disables the sweep.
            hill_k: order statistics for Hill; default :func:`default_hill_k`.
            ci_groups: G, groups of consecutive rows for the interval (≥ 2; capped at P).
            ci_level: coverage of the interval, in (0, 1).
            shuffle_seed: seed of the shuffled sweep's columns (``shuffle_columns``).
            per_coordinate: also compute per-coordinate estimates (O(M) state).
            shuffled_sweep: also run the sweep on the shuffled stream.
            device: None: rows are estimated on the host by the compiled kernels (a
                tensor elsewhere is copied there). A torch device ("cuda", "cpu"): the
                per-value work runs in torch ops there (:mod:`sgdtail.torch_kernels`),
                rows elsewhere are moved there, and only small results come to the
                host (order-statistics candidates, per-piece totals of the block logs).
            max_piece_values: most values processed at once (whole rows, at least
                one; scratch is ~16 bytes per value of address space, of which only the
                pages written are resident).
        """
        self.n_rows = _positive_int(n_rows, "n_rows")
        self.n_cols = _positive_int(n_cols, "n_cols")
        _check_options(self.n_rows, ci_groups, ci_level, hill_k)
        self.layers = _check_layers(layers, self.n_cols)
        self.exclude_zeros = bool(exclude_zeros)
        self.ci_level, self.hill_k, self.factors = float(ci_level), hill_k, tuple(robust_factors)
        n_total = self.n_rows * self.n_cols
        chosen = default_sweep_k1(n_total) if sweep_k1 is None else sweep_k1
        self.sweep_k1 = sorted({int(k) for k in chosen})
        if any(k < 2 for k in self.sweep_k1):
            raise ValueError(f"sweep_k1={self.sweep_k1} must contain block sizes >= 2 only")
        n_groups = min(int(ci_groups), self.n_rows)
        self.group_bounds = [(g * self.n_rows) // n_groups for g in range(n_groups + 1)]
        #: Interval group of each row of U.
        self.row_group = np.searchsorted(self.group_bounds, np.arange(self.n_rows), "right") - 1
        self.reference_k1 = reference_k1(n_total)
        self.rows_seen = 0
        self.max_piece_rows = max(1, int(max_piece_values) // self.n_cols)
        self.device = device
        sweep = [(k, self.exclude_zeros) for k in self.sweep_k1]
        reference = [(self.reference_k1, False)] if self.reference_k1 >= 2 else []
        self._layer_base = self._base_of_layers()
        pooled = self._scope("pooled", slice(0, self.n_cols), [*sweep, *reference])
        self._scopes = [pooled]
        self._scopes += [
            self._scope(n, slice(a, b), [], base=self._layer_base) for n, a, b in self.layers
        ]
        m = central_k1(n_total)
        order_k = default_order_k(n_total // m, m)
        self._order_x = _Extremes(m * order_k, False, self.exclude_zeros)
        self._order_y = self._scopes[0].stream.sums[(m, self.exclude_zeros)]
        self._order_y.smallest = _Extremes(order_k, False, self.exclude_zeros)
        self._shuffle(shuffle_seed, sweep if shuffled_sweep else [])
        self._columns = _Columns(self.n_rows, self.n_cols) if per_coordinate else None
        self._state()

    def _state(self) -> None:
        """The per-column state and the scratch of the scan."""
        rows = min(self.max_piece_rows, self.n_rows)
        self._gathered = self._on_device(np.empty((rows, self._gather[0].size), np.float32))
        #: Per column over the rows so far: Σ ℓ as (product, power of 2), and exact zeros.
        state = (np.ones(self.n_cols), np.zeros(self.n_cols), np.zeros(self.n_cols, np.int32))
        self._acc = tuple(self._on_device(a) for a in state)
        self._gather = tuple(self._on_device(a) for a in self._gather)
        if cols := self._columns:
            cols.partial, cols.log_y = self._on_device(cols.partial), self._on_device(cols.log_y)
        # a piece's candidates, one per value at most (only the pages written take memory)
        room = rows * self.n_cols
        self._found = (np.empty(room, np.float32), np.empty(room, np.int64))
        blocks = cols.k1 * np.arange(1, cols.k2 + 1) if cols is not None else ()
        #: Rows where an interval group or a per-coordinate block ends.
        self._ends = np.union1d(self.group_bounds[1:], blocks).astype(np.int64)

    def _on_device(self, a: np.ndarray):
        """``a`` itself, or with a ``device``, a copy of it there as a tensor."""
        if self.device is None:
            return a
        import torch

        return torch.from_numpy(a).to(self.device)

    def _shuffle(self, seed: int, sweep: list) -> None:
        """The shuffled stream's columns (and its scope, when there is a sweep to run)."""
        n_shuffled = min(self.n_cols, max(SHUFFLE_MIN_COLUMNS, -(-self.n_cols // 8)))
        #: Columns of U, in order, that form each row of the shuffled stream.
        self.shuffle_columns = np.random.default_rng(seed).permutation(self.n_cols)[:n_shuffled]
        self._shuffled = None
        #: (columns of U in increasing order, their places in a shuffled row), if any
        self._gather = (np.empty(0, np.int64), np.empty(0, np.int64))
        sweep = [spec for spec in sweep if spec[0] * SHUFFLED_BLOCKS_PER_ROW <= n_shuffled]
        #: Block sizes of the shuffled sweep (:data:`SHUFFLED_BLOCKS_PER_ROW`).
        self.shuffled_k1 = [k for k, _ in sweep]
        if sweep:
            order = np.argsort(self.shuffle_columns)
            self._gather = (self.shuffle_columns[order].astype(np.int64), order.astype(np.int64))
            self._shuffled = _Scope(
                "shuffled", self.shuffle_columns, self.row_group, sweep, self.exclude_zeros, None
            )

    def _base_of_layers(self) -> int:
        """4 when the layers take their streams from the pooled sums of 16 values (no
        layer boundary cuts one and every layer block size is a multiple of 16; the pooled
        stream's robust block sizes, at least any layer's, then make its ladder reach
        level 4), else 0: each layer reads its values from the rows of U in place."""
        cuts = [self.n_cols, *(a for _, a, _ in self.layers)]
        sizes = [k for _, a, b in self.layers for k, _ in self._specs(b - a)]
        return 4 if all(c % 16 == 0 for c in cuts + sizes) else 0

    def _specs(self, width: int) -> list[tuple[int, bool]]:
        """The robust block sizes of a scope of ``width`` columns, and its central one."""
        n = self.n_rows * width
        return [
            (k, self.exclude_zeros) for k in [*robust_k1_values(n, self.factors), central_k1(n)]
        ]

    def _scope(self, name: str, columns: slice, extra: Sequence, **stream) -> _Scope:
        specs = [*self._specs(columns.stop - columns.start), *extra]
        n = self.n_rows * (columns.stop - columns.start)
        keep = (self.hill_k if self.hill_k is not None else default_hill_k(n)) + 1
        ex = self.exclude_zeros
        return _Scope(name, columns, self.row_group, specs, ex, keep, **stream)

    # -- feeding -------------------------------------------------------------

    def update(self, rows: torch.Tensor | np.ndarray) -> None:
        """Consume the next consecutive rows of U.

        Args:
            rows: shape (c, M) (or (M,) for one row), finite; converted to a
                float32 numpy array on the CPU, or with a ``device`` to a float32
                tensor there. c ≥ 1, any chunking.

        A row with NaN or inf raises ValueError; rows of the same call may
        already have entered the sums (the accumulator is then of no further use).
        """
        a = self._rows(rows)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != self.n_cols:
            raise ValueError(
                f"rows must have shape (c, {self.n_cols}), got {a.shape}; "
                "pass consecutive rows of the P x M noise matrix"
            )
        if self.rows_seen + a.shape[0] > self.n_rows:
            raise ValueError(
                f"got {self.rows_seen + a.shape[0]} rows in total but n_rows={self.n_rows}; "
                "construct StreamingTailStats with the true number of minibatches"
            )
        n_pieces = -(-a.shape[0] // self.max_piece_rows)  # pieces of near-equal size
        cuts = [i * a.shape[0] // n_pieces for i in range(n_pieces + 1)]
        for r, stop in zip(cuts, cuts[1:], strict=False):
            piece = a[r:stop]
            piece = np.ascontiguousarray(piece) if self.device is None else piece.contiguous()
            self._piece(piece, self.rows_seen)
            self.rows_seen += piece.shape[0]

    def _rows(self, rows):
        """``rows`` as float32: a numpy array on the host, or a tensor on ``device``."""
        if self.device is None:
            return _as_array(rows).astype(np.float32, copy=False)
        import torch

        return torch.as_tensor(rows).detach().to(device=self.device, dtype=torch.float32)

    def _piece(self, u: np.ndarray, first_row: int) -> None:
        """Feed one piece of rows, rows first_row .. first_row + c − 1 of U."""
        hi, lo, floor = self._thresholds(u, first_row)
        shuffled = self._gathered[: u.shape[0]]  # the shuffled stream's rows
        cols, (values, columns), n = self._columns, self._found, 0
        cuts = self._ends[(self._ends > first_row) & (self._ends < first_row + len(u))]
        cuts = [0, *(cuts - first_row).tolist(), len(u)]
        for a, b in zip(cuts, cuts[1:], strict=False):
            add = cols is not None and first_row + a < cols.k1 * cols.k2
            partial = cols.partial if cols is not None else self._acc[0]  # untouched
            args = (add, hi, lo, floor, REFERENCE_EPS, *self._gather, shuffled[a:b])
            n = _kernels(u).scan(u[a:b], *self._acc, partial, *args, values, columns, n)
            self._rows_done(first_row + b)
        if not bool((abs(self._acc[0]) < math.inf).all()):  # NaN or inf in a column makes its
            raise ValueError(  # product NaN or inf for good
                "rows contain NaN or inf (diverged training?); measure a finite checkpoint"
            )
        self._take(values[:n], columns[:n], floor)
        levels = self._scopes[0].stream.feed(u)
        for scope in self._scopes[1:]:
            scope.stream.feed(self._layer_part(u, levels, scope.columns))
        if self._shuffled is not None:
            self._shuffled.stream.feed(shuffled)

    def _layer_part(self, u: np.ndarray, levels: list, columns: slice) -> np.ndarray:
        """A layer's part of a piece of rows ``u``: its values in place, or (at layer base 4)
        the pooled sums of 16 values that fall in it, row after row."""
        if not self._layer_base:
            return u[:, columns]
        sums = levels[4].reshape(2, u.shape[0], -1)[..., columns.start >> 4 : columns.stop >> 4]
        return sums.reshape(2, -1)  # a copy, row after row

    def _thresholds(
        self, u: np.ndarray, first_row: int
    ) -> tuple[np.ndarray, np.float32, np.float32]:
        """(hi, lo, floor): the values of U that may be order statistics are those with
        |u| ≥ hi[column] (Hill, pooled or in the column's layer) or floor < |u| ≤ lo (the
        order estimate's |X|; floor 0 leaves zeros out). Bounds come from ``u`` while an
        order-statistics buffer holds fewer than its keep values and none wait."""
        floor = np.float32(0.0 if self.exclude_zeros else -1.0)
        low = high = None
        if first_row == 0:  # the first piece: bounds from the columns' extremes
            low, high = np.empty((2, self.n_cols), np.float32)
            _kernels(u).column_extremes(u, low, high, floor)
        self._order_x.bound_from(u, low)
        for scope in self._scopes:
            extremes = None if high is None else high[scope.columns]
            scope.hill.bound_from(u[:, scope.columns], extremes)
        pooled = self._scopes[0].hill.threshold
        hi = np.full(self.n_cols, pooled, np.float32)
        for scope in self._scopes[1:]:
            hi[scope.columns] = min(pooled, scope.hill.threshold)
        return self._on_device(hi), np.float32(self._order_x.threshold), floor

    def _take(self, values: np.ndarray, columns: np.ndarray, floor: np.float32) -> None:
        """Give the candidates (|u| and column) to the order-statistics buffers."""
        for scope in self._scopes:
            inside = values >= scope.hill.threshold
            if scope is not self._scopes[0]:
                inside &= (columns >= scope.columns.start) & (columns < scope.columns.stop)
            scope.hill.add_from(values[inside])
        self._order_x.add_from(values[(values > floor) & (values <= self._order_x.threshold)])

    def _rows_done(self, rows: int) -> None:
        """Rows 0 .. rows − 1 of U are in: close the interval group and the per-coordinate
        block that end there, if any."""
        if self._columns is not None:
            self._columns.rows_done(rows)
        if rows not in self.group_bounds:
            return
        g = self.group_bounds.index(rows) - 1
        col_log = self._column_logs()
        for scope in [*self._scopes, *([self._shuffled] if self._shuffled else [])]:
            scope.close_group(g, rows - self.group_bounds[g], col_log, self._acc[2])

    def _column_logs(self) -> np.ndarray:
        """Σ ℓ over the nonzero values of each column of U in the rows so far (where the
        state is: on ``device`` as a tensor)."""
        prod, power = self._acc[:2]
        return _kernels(prod).log(prod) + power * math.log(2.0)

    # -- results -------------------------------------------------------------

    def finalize(self) -> list[dict]:
        """Tidy result rows (see the class docstring), one dict per row.

        Keys: estimator, scope, order, k1, rank (the number k of order statistics of
        ``hill`` and ``mohammadi_order``, −1 for the others), alpha, ci_low, ci_high, q25,
        q75, n_values, zero_fraction.
        """
        if self.rows_seen != self.n_rows:
            raise ValueError(
                f"finalize() after {self.rows_seen} of n_rows={self.n_rows} rows; "
                "feed every row of U first, or construct with the true n_rows"
            )
        pooled = self._scopes[0]
        zf = pooled.n_zero.sum() / pooled.n_expected
        ref = (self.reference_k1, False)
        out = [
            _row(
                "mohammadi_reference",
                "pooled",
                k1=self.reference_k1,
                n_values=pooled.n_expected,
                alpha=pooled.alpha(ref) if ref in pooled.stream.sums else math.nan,
                zero_fraction=zf,
            )
        ]
        cols = (
            self._columns.alphas(_as_array(self._column_logs()), _as_array(self._acc[2]) > 0)
            if self._columns
            else None
        )
        for scope in self._scopes:
            out.extend(self._scope_rows(scope, cols))
        out.insert(2, self._order_row(zf))
        sweeps = (
            ("natural", pooled, self.sweep_k1),
            ("shuffled", self._shuffled, self.shuffled_k1),
        )
        for order, scope, k1s in sweeps:  # shuffled_k1 is empty when there is no shuffled scope
            for k1 in k1s:
                blocks = int(scope.stream.sums[(k1, self.exclude_zeros)].blocks.sum())
                out.append(
                    _row(
                        "block_sweep",
                        "pooled",
                        order=order,
                        k1=k1,
                        n_values=blocks * k1,
                        alpha=scope.alpha((k1, self.exclude_zeros)),
                        zero_fraction=zf,
                    )
                )
        return out

    def _order_row(self, zero_fraction: float) -> dict:
        sums, m = self._order_y, self._order_y.k1
        k = sums.smallest.keep
        n = int(self._scopes[0].x_sums(self.exclude_zeros)[1].sum())
        blocks = int(sums.blocks.sum())
        rank = order_x_rank(k, m, n, blocks) if self.exclude_zeros else m * k
        y, x = sums.smallest.nth(k), self._order_x.nth(rank)
        log_n = float(sums.log_n.sum()) / blocks if blocks else math.nan
        alpha = _order_alpha(y, x, log_n) if (y.size and x.size and log_n > 0) else math.nan
        return _row("mohammadi_order", "pooled", k1=m, rank=k, alpha=alpha, n_values=n,
                    zero_fraction=zero_fraction)  # fmt: skip

    def _scope_rows(self, scope: _Scope, column_alphas: np.ndarray | None) -> list[dict]:
        ex = self.exclude_zeros
        n = int(scope.x_sums(ex)[1].sum())
        zf = scope.n_zero.sum() / scope.n_expected
        low, high = batch_means_interval(scope.inverse_alphas(), self.ci_level)
        robust = [scope.alpha((k, ex)) for k in robust_k1_values(scope.n_expected, self.factors)]
        top = scope.hill.sorted()
        k = self.hill_k if self.hill_k is not None else (default_hill_k(n) if n else 0)
        k = k if 0 < k < top.size else -1  # -1: no k-th value beyond the threshold's, no estimate
        hill = _hill_from_top(top[: k + 1], k) if k > 0 else math.nan
        rows = [
            _row("mohammadi_robust", scope.name, k1=scope.ci[0], alpha=_finite_median(robust),
                 ci_low=low, ci_high=high, n_values=n, zero_fraction=zf),
            _row("hill", scope.name, rank=k, alpha=hill, n_values=n, zero_fraction=zf),
        ]  # fmt: skip
        if column_alphas is not None:
            a = column_alphas[scope.columns]
            a = a[np.isfinite(a)]
            q25, med, q75 = np.quantile(a, [0.25, 0.5, 0.75]) if a.size else (math.nan,) * 3
            rows.append(
                _row("per_coordinate", scope.name, k1=self._columns.k1, alpha=float(med),
                     q25=float(q25), q75=float(q75),
                     n_values=int(a.size) * self._columns.k1 * self._columns.k2, zero_fraction=zf)
            )  # fmt: skip
        return rows


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


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
    if math.isnan(mean_log):
        return math.nan
    return 1.0 / mean_log if mean_log > 0 else math.inf


def _column_alphas(
    sum_log_y: np.ndarray, sum_log_x: np.ndarray, has_zero: np.ndarray, k1: int, k2: int, p: int
) -> np.ndarray:
    """α̂ per column from Σ ℓ(Y) over k2 blocks of k1 rows and Σ ℓ(X) over p rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 / ((sum_log_y / k2 - sum_log_x / p) / math.log(k1))
    alpha[has_zero] = np.nan
    return alpha


def _inverse_alpha(sum_log_y, n_blocks, sum_log_x, n_values, sum_log_n):
    """1/α̂ = (mean ℓ(Y) − mean ℓ(X)) / mean log n, for scalars or arrays (one entry
    per group); NaN where there is no block, no value, or mean log n is 0."""
    sum_log_y, n_blocks, sum_log_x, n_values, sum_log_n = (
        np.asarray(v, dtype=np.float64)
        for v in (sum_log_y, n_blocks, sum_log_x, n_values, sum_log_n)
    )  # numpy division: a zero count gives NaN, not ZeroDivisionError
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (sum_log_y / n_blocks - sum_log_x / n_values) / (sum_log_n / n_blocks)
    return np.where((n_blocks > 0) & (n_values > 0) & (sum_log_n > 0), inv, np.nan)


def _check_options(n_rows: int, ci_groups: int, ci_level: float, hill_k: int | None) -> None:
    if n_rows < 2:
        raise ValueError("n_rows must be >= 2 (one row has no noise to estimate)")
    if ci_groups < 2:
        raise ValueError(f"ci_groups={ci_groups} must be >= 2 for a batch-means interval")
    if not 0.0 < ci_level < 1.0:
        raise ValueError(f"ci_level={ci_level} must lie in (0, 1), e.g. 0.95")
    if hill_k is not None and hill_k < 1:
        raise ValueError(f"hill_k={hill_k} must be >= 1, or None for the default")


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


#: The columns of a result row of :meth:`StreamingTailStats.finalize`, with their defaults.
_ROW = {"estimator": "", "scope": "", "order": "natural", "k1": -1, "rank": -1, "alpha": math.nan,
        "ci_low": math.nan, "ci_high": math.nan, "q25": math.nan, "q75": math.nan,
        "n_values": 0, "zero_fraction": math.nan}  # fmt: skip


def _row(estimator: str, scope: str, **given) -> dict:
    """A result row: the given columns (cast to their column's type), defaults elsewhere."""
    if unknown := set(given) - set(_ROW):
        raise TypeError(f"_row() got unknown columns {sorted(unknown)}")
    given.update(estimator=estimator, scope=scope)
    return {k: type(d)(given.get(k, d)) for k, d in _ROW.items()}
