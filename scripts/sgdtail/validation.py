"""Checks of the tail-index estimators on synthetic data with a known answer.

* :func:`validate_estimators` -- every estimator on SαS samples of known α, plus
  the pitfall cases of the reference procedure (exact zeros, mixed scales);
  the table behind the "estimated versus true α" figure.
* :func:`synthetic_block_sweep` -- α̂ against the block size K1 on i.i.d. data,
  the baseline a real-noise sweep is compared with.
* :func:`sweep_slope` -- one number per sweep curve: d α̂ / d log10 K1
  (≈ 0 for truly stable, independent data).
* :func:`gaussian_readings` / :func:`smallest_reliable_sizes` -- what each
  estimator reads on Gaussian data (true α = 2) of a given size, and the
  smallest size from which it reads 2 within a tolerance: the evidence behind
  the minimum sample sizes in config (``estimators.min_*``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sgdtail.estimators import (
    block_size_sweep,
    central_k1,
    default_hill_k,
    hill_alpha,
    mohammadi_alpha,
    mohammadi_order_alpha,
    mohammadi_reference,
    mohammadi_robust,
    per_coordinate_alpha,
    sample_sas,
)

log = logging.getLogger(__name__)

__all__ = [
    "PITFALL_CASES",
    "gaussian_readings",
    "minimum_sample_table",
    "smallest_reliable_sizes",
    "synthetic_block_sweep",
    "sweep_slope",
    "validate_estimators",
]

#: Pitfall cases of :func:`validate_estimators`: name -> (zero fraction, log-normal σ).
#: All are Gaussian underneath, so the true α is 2.
PITFALL_CASES: dict[str, tuple[float, float]] = {
    "gauss_zeros_1pct": (0.01, 0.0),
    "gauss_zeros_10pct": (0.10, 0.0),
    "gauss_lognormal_scales": (0.0, 1.0),
}

_CASE_IDS = {"sas": 0, **{name: i + 1 for i, name in enumerate(PITFALL_CASES)}}
_COLUMNS = ["case", "true_alpha", "size", "repeat", "estimator", "alpha_hat"]


def validate_estimators(
    alphas: Sequence[float], sizes: Sequence[int], repeats: int, seed: int = 0
) -> pd.DataFrame:
    """Run every estimator on synthetic samples of known tail index.

    Case ``"sas"``: float32 SαS samples (scale 1) for each α in ``alphas``.
    Estimators: ``mohammadi_reference`` (2019 rule), ``mohammadi_robust``,
    ``mohammadi_sqrtK`` (one block size K1 = max(2, ⌊√K⌋)), ``mohammadi_order``
    (Cor. 2.2 at K1 = :func:`~sgdtail.estimators.central_k1` (K)), ``hill``
    (k = max(10, ⌊√n⌋)).

    Pitfall cases (Gaussian, true α = 2), see :data:`PITFALL_CASES`:
    ``gauss_zeros_1pct`` / ``gauss_zeros_10pct`` set each value to an exact 0
    with that probability; the reference keeps the zeros as values (as the
    2019 code does), the other estimators leave them out, and
    ``mohammadi_robust_zeros_kept`` keeps them (ℓ(0) = log ε). ``gauss_lognormal_scales``
    multiplies N(0, 1) values by exp(N(0, 1)) scales (coordinates of
    different sizes pooled together).

    Args:
        alphas: true α values in (0, 2].
        sizes: sample sizes n (≥ 100).
        repeats: independent repeats per (case, α, size).
        seed: base seed; each sample gets its own stream from
            (seed, case, α, size, repeat), so rows do not depend on the order
            or the other entries of ``alphas``/``sizes``.

    Returns:
        Long table with columns case, true_alpha, size, repeat, estimator, alpha_hat.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    if any(int(n) < 100 for n in sizes):
        raise ValueError(f"sizes={list(sizes)} must all be >= 100 samples")
    rows: list[dict] = []
    t0, points, done = time.perf_counter(), len(sizes) * repeats, 0
    for n in (int(s) for s in sizes):
        for rep in range(repeats):
            done += 1
            log.info(
                "progress: sweep point %d/%d (size %d, repeat %d), %.1f s so far",
                done,
                points,
                n,
                rep,
                time.perf_counter() - t0,
            )
            for alpha in alphas:
                rng = _rng(seed, "sas", alpha, n, rep)
                x = sample_sas(float(alpha), n, rng).astype(np.float32)
                for name, a in _standard_estimates(x).items():
                    rows.append(_vrow("sas", alpha, n, rep, name, a))
            for case, (zero_p, sigma) in PITFALL_CASES.items():
                rng = _rng(seed, case, 2.0, n, rep)
                x = _pitfall_sample(rng, n, zero_p, sigma)
                for name, a in _pitfall_estimates(x, zero_p > 0).items():
                    rows.append(_vrow(case, 2.0, n, rep, name, a))
    return pd.DataFrame(rows, columns=_COLUMNS)


GAUSSIAN_ESTIMATORS: dict[str, str] = {
    "mohammadi_reference": "pooled",
    "mohammadi_robust": "pooled",
    "hill": "pooled",
    "per_coordinate_median": "per_coordinate",
}
"""Estimators of :func:`gaussian_readings` and the kind of sample size each is read at:
``pooled`` (n values) or ``per_coordinate`` (P minibatches per coordinate)."""


def gaussian_readings(
    pooled_sizes: Sequence[int],
    minibatch_counts: Sequence[int],
    coordinates: int,
    repeats: int,
    seed: int = 0,
) -> pd.DataFrame:
    """α̂ of Gaussian data (true α = 2) at each sample size, for every estimator.

    Pooled estimators (reference, robust, Hill): float32 N(0, 1) samples of
    each size in ``pooled_sizes``. Per-coordinate estimator: a P × ``coordinates``
    Gaussian matrix for each P in ``minibatch_counts``, centred per coordinate
    (as the noise g_p − ḡ is), read by
    :func:`~sgdtail.estimators.per_coordinate_alpha` and summarised by the
    median over coordinates (what the tables report).

    Returns:
        Long table with columns estimator, kind (``pooled`` or
        ``per_coordinate``), size, repeat, alpha_hat.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    rows = []
    for rep in range(int(repeats)):
        for n in (int(v) for v in pooled_sizes):
            x = np.random.default_rng([int(seed), 7, n, rep]).standard_normal(n)
            x = x.astype(np.float32)
            readings = {
                "mohammadi_reference": mohammadi_reference(x),
                "mohammadi_robust": mohammadi_robust(x),
                "hill": hill_alpha(x, default_hill_k(n)),
            }
            rows += [_grow(name, n, rep, a) for name, a in readings.items()]
        for p in (int(v) for v in minibatch_counts):
            u = np.random.default_rng([int(seed), 8, p, rep]).standard_normal((p, coordinates))
            u -= u.mean(axis=0)
            a = float(np.nanmedian(per_coordinate_alpha(u.astype(np.float32))))
            rows.append(_grow("per_coordinate_median", p, rep, a))
    return pd.DataFrame(rows, columns=["estimator", "kind", "size", "repeat", "alpha_hat"])


def smallest_reliable_sizes(readings: pd.DataFrame, tolerance: float = 0.1) -> pd.DataFrame:
    """Per estimator: the smallest size from which Gaussian data read 2 ± ``tolerance``.

    A size counts when the mean reading over repeats lies within the tolerance
    of 2; the reliable size is the smallest one from which every larger size
    in the table counts too (NaN when even the largest does not, as for Hill,
    which is not bounded by 2).

    Returns:
        One row per estimator: estimator, kind, reliable_size, reading_at_largest.
    """
    rows = []
    for name, d in readings.groupby("estimator", sort=False):
        means = d.groupby("size")["alpha_hat"].mean().sort_index()
        ok = (means - 2.0).abs() <= tolerance
        reliable = math.nan
        for size in means.index[::-1]:
            if not ok[size]:
                break
            reliable = float(size)
        rows.append(
            {
                "estimator": name,
                "kind": GAUSSIAN_ESTIMATORS[name],
                "reliable_size": reliable,
                "reading_at_largest": float(means.iloc[-1]),
            }
        )
    return pd.DataFrame(rows)


def minimum_sample_table(
    readings: pd.DataFrame,
    min_pooled_values: int,
    min_per_coordinate_minibatches: int,
    tolerance: float = 0.1,
) -> pd.DataFrame:
    """:func:`smallest_reliable_sizes` beside the minimum sizes configured for the tables
    (``estimators.min_pooled_values`` / ``min_per_coordinate_minibatches``).

    ``consistent``: the configured minimum is at least the reliable size; false
    when an estimator never reads 2 ± tolerance at the sizes tried (Hill, which is
    not bounded by 2 and which no claim uses, is exempt).
    """
    out = smallest_reliable_sizes(readings, tolerance)
    configured = {"pooled": min_pooled_values, "per_coordinate": min_per_coordinate_minibatches}
    out["configured_minimum"] = out["kind"].map(configured)
    out["tolerance"] = tolerance
    out["consistent"] = out["configured_minimum"] >= out["reliable_size"]  # NaN: never reliable
    out.loc[out["estimator"] == "hill", "consistent"] = True
    return out


def _grow(estimator: str, size: int, rep: int, alpha: float) -> dict:
    return {
        "estimator": estimator,
        "kind": GAUSSIAN_ESTIMATORS[estimator],
        "size": int(size),
        "repeat": int(rep),
        "alpha_hat": float(alpha),
    }


def synthetic_block_sweep(
    n: int, alpha: float, k1_values: Sequence[int], seed: int = 0
) -> pd.DataFrame:
    """Block-size sweep on i.i.d. synthetic data of size n.

    Two curves: ``case="sas"`` (SαS with the given α) and ``case="gaussian"``
    (N(0, 1), true α = 2), both float32, in natural order (the data are
    i.i.d., so shuffling would change nothing in distribution).

    Returns:
        DataFrame with columns case, true_alpha, size, k1, alpha_hat
        (NaN where k1 > n).
    """
    n = int(n)
    rng = np.random.default_rng([int(seed), 1, n, round(1000 * alpha)])
    samples = {
        "sas": (float(alpha), sample_sas(float(alpha), n, rng).astype(np.float32)),
        "gaussian": (2.0, rng.standard_normal(n).astype(np.float32)),
    }
    frames = []
    for case, (true_alpha, x) in samples.items():
        sweep = block_size_sweep(x, k1_values)
        frames.append(
            pd.DataFrame(
                {
                    "case": case,
                    "true_alpha": true_alpha,
                    "size": n,
                    "k1": sweep.k1,
                    "alpha_hat": sweep.alpha,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def sweep_slope(k1: Sequence[int] | np.ndarray, alpha: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of α̂ against log10(K1) (per decade of block size).

    0 for truly stable, independent data; NaN with fewer than two finite
    points at distinct K1.
    """
    x = np.log10(np.asarray(k1, dtype=np.float64))
    y = np.asarray(alpha, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"k1 and alpha must have the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if np.unique(x).size < 2:
        return math.nan
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


# ----------------------------------------------------------------------------


def _rng(seed: int, case: str, alpha: float, n: int, rep: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _CASE_IDS[case], round(1000 * alpha), n, rep])


def _pitfall_sample(rng: np.random.Generator, n: int, zero_p: float, sigma: float) -> np.ndarray:
    x = rng.standard_normal(n)
    if sigma > 0:
        x *= np.exp(sigma * rng.standard_normal(n))
    if zero_p > 0:
        x[rng.random(n) < zero_p] = 0.0
    return x.astype(np.float32)


def _standard_estimates(x: np.ndarray) -> dict[str, float]:
    """Every estimator, exact zeros left out of all but the reference."""
    nz = x[x != 0]
    return {
        "mohammadi_reference": mohammadi_reference(x),
        "mohammadi_robust": mohammadi_robust(x),
        "mohammadi_sqrtK": mohammadi_alpha(x, max(2, math.isqrt(x.size))),
        "mohammadi_order": mohammadi_order_alpha(x, central_k1(x.size)),
        "hill": hill_alpha(nz, default_hill_k(nz.size)),
    }


def _pitfall_estimates(x: np.ndarray, zeros_case: bool) -> dict[str, float]:
    out = _standard_estimates(x)
    if zeros_case:
        out["mohammadi_robust_zeros_kept"] = mohammadi_robust(x, exclude_zeros=False)
    return out


def _vrow(case: str, true_alpha: float, n: int, rep: int, estimator: str, a: float) -> dict:
    return {
        "case": case,
        "true_alpha": float(true_alpha),
        "size": int(n),
        "repeat": int(rep),
        "estimator": estimator,
        "alpha_hat": float(a),
    }
