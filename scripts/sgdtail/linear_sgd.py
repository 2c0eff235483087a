"""SGD on linear regression with Gaussian data: the tail index of its iterates, in theory
and in simulation (Gürbüzbalaban, Şimşekli & Zhu, ICML 2021, "The Heavy-Tail Phenomenon
in SGD").

Online SGD with step η and batch b on the least-squares loss, with features a_i ~ N(0, σ²I_d)
and responses y_i = a_iᵀx* + ε_i, ε_i ~ N(0, σ_y²) (fresh data every step), is

    x_{k+1} − x* = M_k (x_k − x*) + q_k,   M_k = I − (η/b) Σ_i a_i a_iᵀ,   q_k = (η/b) Σ_i a_i ε_i.

Its iterates converge to a stationary law whose norm has a power-law tail,
P(‖x − x*‖ > t) ~ C t^(−α), where α is the positive root of ρ(s) = E‖M e₁‖^s = 1 (the
paper's Theorems 2–3: for isotropic Gaussian features the growth rate of the matrix product
reduces to one column). Writing X = ‖first coordinates of the a_i‖²/σ² ~ χ²_b and
Q ~ χ²_{d−1}, independent, and c = ησ²/b,

    ‖M e₁‖² = (1 − cX)² + c²·X·Q,

so ρ(s) = E[((1 − cX)² + c²XQ)^{s/2}] is a two-dimensional integral (computed here by
Gauss–Laguerre quadrature over both χ² laws). At s = 2 it has the closed form
ρ(2) = 1 − 2ησ² + η²σ⁴(b + d + 1)/b, so α > 2 (finite variance) exactly when
ησ²(b + d + 1)/b < 2: the tail is heavier for a larger step, a smaller batch, a larger
dimension and a larger curvature σ², and it is not a function of η/b alone.

The simulation follows the norm of x − x*: given ‖x_k − x*‖ = r, rotating so that
x_k − x* = r·e₁ (the a_i are isotropic) gives with u_i = r·a_{i1} − ε_i

    ‖x_{k+1} − x*‖² = (r − (η/b) Σ_i a_{i1} u_i)² + (η/b)²·σ²·(Σ_i u_i²)·Q_k,

Q_k ~ χ²_{d−1}: the same Markov chain as the norm of the full d-dimensional SGD, at a cost
of 2b + 1 random numbers per step instead of b·(d + 1).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from sgdtail.estimators import batch_means_interval, default_hill_k, hill_alpha
from sgdtail.verdicts import (
    INCONCLUSIVE,
    combine,
    interval_state,
    json_number,
    three_way,
    with_reason,
)

__all__ = [
    "LinearSetting",
    "claim_c7_linear",
    "relaxation_steps",
    "eta_for_tail_index",
    "ratio_window",
    "simulation_sweep",
    "theory_curves",
    "moment_ratio",
    "moment_ratio_two",
    "simulate_norms",
    "stationary_estimate",
    "theory_tail_index",
]

log = logging.getLogger(__name__)

#: Quadrature nodes per χ² law in :func:`moment_ratio`.
QUADRATURE_NODES: int = 100
#: Largest tail index :func:`theory_tail_index` resolves; beyond it the tail is reported as inf.
MAX_TAIL_INDEX: float = 64.0


@dataclass(frozen=True)
class LinearSetting:
    """One SGD setting: step ``eta``, batch ``b``, dimension ``d``, feature scale ``sigma``
    (a_i ~ N(0, σ²I_d)) and response noise ``sigma_y``."""

    eta: float
    b: int
    d: int
    sigma: float = 1.0
    sigma_y: float = 1.0

    def __post_init__(self) -> None:
        if not (self.eta > 0 and self.sigma > 0 and self.sigma_y > 0):
            raise ValueError(f"{self}: eta, sigma and sigma_y must be positive")
        if int(self.b) != self.b or self.b < 1 or int(self.d) != self.d or self.d < 2:
            raise ValueError(f"{self}: b must be an integer >= 1 and d an integer >= 2")

    @property
    def c(self) -> float:
        """ησ²/b, the scale of the random part of M."""
        return self.eta * self.sigma**2 / self.b


def _chi2_nodes(k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of an n-point rule for E f(χ²_k)."""
    t, w = special.roots_genlaguerre(n, k / 2.0 - 1.0)
    return 2.0 * t, w / w.sum()


def moment_ratio(s: float, setting: LinearSetting, nodes: int = QUADRATURE_NODES) -> float:
    """ρ(s) = E‖M e₁‖^s = E[((1 − cX)² + c²XQ)^{s/2}], X ~ χ²_b, Q ~ χ²_{d−1}, by
    Gauss–Laguerre quadrature in X and in Q (exact for even integer s up to the rule's
    polynomial degree)."""
    x, wx = _chi2_nodes(setting.b, nodes)
    q, wq = _chi2_nodes(setting.d - 1, nodes)
    c = setting.c
    norm2 = (1.0 - c * x[:, None]) ** 2 + c * c * x[:, None] * q[None, :]
    return float(wx @ (norm2 ** (s / 2.0)) @ wq)


def moment_ratio_two(setting: LinearSetting) -> float:
    """ρ(2) in closed form: 1 − 2ησ² + η²σ⁴(b + d + 1)/b."""
    e = setting.eta * setting.sigma**2
    return 1.0 - 2.0 * e + e * e * (setting.b + setting.d + 1) / setting.b


def theory_tail_index(setting: LinearSetting) -> float:
    """α, the positive root of ρ(s) = 1: the tail index of the stationary iterates.

    Returns NaN when ρ(s) ≥ 1 already at s = 10⁻³ (E log‖M e₁‖ ≥ 0 to that precision: the
    iterates have no stationary law), and inf when ρ(s) < 1 up to :data:`MAX_TAIL_INDEX`
    (lighter tails than any this module resolves).
    """

    def log_rho(s: float) -> float:
        return math.log(moment_ratio(s, setting))

    low = 1e-3
    if log_rho(low) >= 0.0:
        return math.nan
    high = 0.5
    while log_rho(high) < 0.0:
        low, high = high, 2.0 * high
        if high > MAX_TAIL_INDEX:
            return math.inf
    return float(optimize.brentq(log_rho, low, high, xtol=1e-6))


def simulate_norms(
    setting: LinearSetting, chains: int, steps: int, seed: int = 0, start: float = 0.0
) -> np.ndarray:
    """‖x_steps − x*‖ of ``chains`` independent online-SGD runs started at ‖x_0 − x*‖ =
    ``start``, simulated through the norm's Markov chain (see the module docstring)."""
    rng = np.random.default_rng(seed)
    b, h, sigma = setting.b, setting.eta / setting.b, setting.sigma
    r = np.full(chains, float(start))
    for _ in range(steps):
        a1 = sigma * rng.standard_normal((chains, b))
        u = r[:, None] * a1 - setting.sigma_y * rng.standard_normal((chains, b))
        first = r - h * np.einsum("ij,ij->i", a1, u)
        rest = h * h * sigma**2 * np.einsum("ij,ij->i", u, u) * rng.chisquare(setting.d - 1, chains)
        r = np.sqrt(first * first + rest)
    return r


@dataclass(frozen=True)
class StationaryEstimate:
    """Hill's α̂ of the stationary norms and its batch-means interval over chain groups."""

    alpha: float
    ci_low: float
    ci_high: float
    k: int
    n: int


def stationary_estimate(
    norms: np.ndarray, groups: int = 10, level: float = 0.95
) -> StationaryEstimate:
    """Hill's α̂ from the norms of independent chains, k = max(10, ⌊√n⌋) order statistics
    (:func:`~sgdtail.estimators.default_hill_k`), and a batch-means interval
    (:func:`~sgdtail.estimators.batch_means_interval`) with the spread of Hill's 1/α̂ over
    ``groups`` equal groups of the chains (each with the same fraction k/n of its values),
    centred on the estimate from all of them."""
    norms = np.asarray(norms, dtype=np.float64)
    n = norms.size
    k = default_hill_k(n)
    alpha = hill_alpha(norms, k)
    size = n // groups
    k_group = max(2, round(k * size / n))
    inv = np.array(
        [1.0 / hill_alpha(norms[g * size : (g + 1) * size], k_group) for g in range(groups)]
    )
    low, high = batch_means_interval(inv - np.nanmean(inv) + 1.0 / alpha, level)
    return StationaryEstimate(alpha, low, high, k, n)


def relaxation_steps(setting: LinearSetting, nodes: int = QUADRATURE_NODES) -> float:
    """1 / |E log‖M e₁‖|: the steps over which the chain forgets its start (E log‖M e₁‖ =
    ρ′(0) < 0 is the log growth rate of the random matrix product); inf when it is ≥ 0."""
    x, wx = _chi2_nodes(setting.b, nodes)
    q, wq = _chi2_nodes(setting.d - 1, nodes)
    c = setting.c
    norm2 = (1.0 - c * x[:, None]) ** 2 + c * c * x[:, None] * q[None, :]
    rate = 0.5 * float(wx @ np.log(norm2) @ wq)
    return 1.0 / -rate if rate < 0.0 else math.inf


def eta_for_tail_index(alpha: float, b: int, d: int, sigma: float = 1.0) -> float:
    """The step η at which the theory's tail index equals ``alpha``: the η > 0 with
    ρ(alpha) = 1 (ρ is log-convex in s with ρ(0) = 1, so ρ(alpha) = 1 makes alpha its
    positive root). ρ(alpha) < 1 at small steps and grows past 1 as η grows."""

    def log_rho(eta: float) -> float:
        return math.log(moment_ratio(alpha, LinearSetting(eta, b, d, sigma)))

    low = high = 2.0 * b / (sigma**2 * (b + d + 1))  # where α = 2 (ρ(2) = 1)
    while log_rho(low) >= 0.0:
        low /= 2.0
    while log_rho(high) <= 0.0:
        high *= 1.25
    return float(optimize.brentq(log_rho, low, high, xtol=1e-12, rtol=1e-10))


def ratio_window(
    batch_sizes: list[int], d: int, sigma: float, alpha_range: tuple[float, float]
) -> tuple[float, float]:
    """The η/b range over which the theory's α runs from ``alpha_range[1]`` down to
    ``alpha_range[0]`` for at least one of the batch sizes."""
    low = min(eta_for_tail_index(alpha_range[1], b, d, sigma) / b for b in batch_sizes)
    high = max(eta_for_tail_index(alpha_range[0], b, d, sigma) / b for b in batch_sizes)
    return low, high


def _settings(cfg: dict) -> list[tuple[float, LinearSetting]]:
    """(η/b, setting) for every dimension, η/b on ``cfg["ratios"]`` log-spaced points of its
    :func:`ratio_window`, and batch size, η = (η/b)·b."""
    out = []
    sigma, sigma_y = float(cfg["sigma"]), float(cfg["sigma_y"])
    for d in cfg["dimensions"]:
        window = ratio_window(cfg["batch_sizes"], int(d), sigma, tuple(cfg["alpha_range"]))
        for ratio in np.geomspace(*window, int(cfg["ratios"])):
            for b in cfg["batch_sizes"]:
                out.append((float(ratio), LinearSetting(ratio * b, int(b), int(d), sigma, sigma_y)))
    return out


def simulation_sweep(cfg: dict) -> pd.DataFrame:
    """The experiment's table: for every dimension d, η/b (:func:`_settings`) and batch size
    b, the theory's α (:func:`theory_tail_index`) and, where it lies in
    ``cfg["alpha_range"]`` (to a relative 10⁻⁶: the window's ends are solved for; tails
    light enough for a stationary law, heavy enough for Hill's
    estimator at this sample size), Hill's α̂ of ``cfg["chains"]`` chains after
    max(``cfg["steps"]``, ``cfg["relaxations"]`` × :func:`relaxation_steps`) steps from x*
    (near α = 1 and at large d the chain settles slowly, and its far tail more slowly
    still) with its interval (:func:`simulate_norms`,
    :func:`stationary_estimate`); NaN where not simulated. Each simulated setting has its
    own seed, ``cfg["seed"]`` + its row number."""
    low, high = cfg["alpha_range"]
    rows = []
    settings = _settings(cfg)
    for i, (ratio, s) in enumerate(settings):
        alpha = theory_tail_index(s)
        row = {"d": s.d, "b": s.b, "eta": s.eta, "eta_over_b": ratio, "alpha_theory": alpha,
               "simulated": bool(low * (1 - 1e-6) <= alpha <= high * (1 + 1e-6)),
               "alpha_hat": math.nan,
               "ci_low": math.nan, "ci_high": math.nan, "hill_k": 0,
               "chains": int(cfg["chains"]), "steps": _steps(s, cfg)}  # fmt: skip
        if row["simulated"]:
            norms = simulate_norms(s, int(cfg["chains"]), row["steps"], int(cfg["seed"]) + i)
            est = stationary_estimate(norms, int(cfg["groups"]), float(cfg["level"]))
            row.update(alpha_hat=est.alpha, ci_low=est.ci_low, ci_high=est.ci_high, hill_k=est.k)
        log.info(
            "progress: setting %d/%d (d %d, b %d, eta/b %.4g): theory alpha %.3g, simulated "
            "alpha-hat %.3g",
            i + 1, len(settings), s.d, s.b, ratio, alpha, row["alpha_hat"],
        )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _steps(setting: LinearSetting, cfg: dict) -> int:
    """Steps a setting is simulated for: at least ``cfg["steps"]`` and ``cfg["relaxations"]``
    relaxation times."""
    relax = relaxation_steps(setting)
    if not math.isfinite(relax):
        return int(cfg["steps"])
    return max(int(cfg["steps"]), math.ceil(float(cfg["relaxations"]) * relax))


def theory_curves(cfg: dict) -> pd.DataFrame:
    """Rows (d, b, eta_over_b, alpha) of the theory on ``cfg["curve_points"]`` log-spaced
    η/b over each dimension's :func:`ratio_window` widened by 10 % on each side (α = NaN where
    the iterates have no stationary law, inf where the tails are lighter than resolved)."""
    sigma = float(cfg["sigma"])
    rows = []
    for d in cfg["dimensions"]:
        low, high = ratio_window(cfg["batch_sizes"], int(d), sigma, tuple(cfg["alpha_range"]))
        for ratio in np.geomspace(low / 1.1, high * 1.1, int(cfg["curve_points"])):
            for b in cfg["batch_sizes"]:
                alpha = theory_tail_index(LinearSetting(ratio * b, int(b), int(d), sigma))
                rows.append({"d": int(d), "b": int(b), "eta_over_b": ratio, "alpha": alpha})
    return pd.DataFrame(rows)


def _difference(first: pd.Series, second: pd.Series) -> tuple[float, float, float]:
    """second − first of two simulated rows, with the interval of the difference from the
    two intervals (low: second's low − first's high; high: second's high − first's low):
    conservative, it covers the difference with at least 1 − 2·(1 − level) probability."""
    return (
        second.alpha_hat - first.alpha_hat,
        second.ci_low - first.ci_high,
        second.ci_high - first.ci_low,
    )


def _c7a(table: pd.DataFrame) -> dict:
    """C7a on the linear experiment: α̂ falls from the smallest to the largest simulated η/b
    of every (d, b) series."""
    sim = table[table.simulated].sort_values(["d", "b", "eta_over_b"])
    states, changes, dropped = [], [], []
    for (d, b), series in sim.groupby(["d", "b"]):
        if len(series) < 2:
            dropped.append(f"d={d} b={b}")
            continue
        change, low, high = _difference(series.iloc[0], series.iloc[-1])
        states.append(three_way(high < 0.0, low > 0.0))
        changes.append((change, low, high, f"d={d} b={b}: {change:+.3g} [{low:+.3g}, {high:+.3g}]"))
    name, threshold = "C7a (linear regression)", "< 0 for every series"
    if not states:
        return _claim(
            name, INCONCLUSIVE, _TOO_FEW, (math.nan,) * 3,
            "no (d, b) series with two simulated eta/b", _C7A_STATISTIC, threshold,
        )  # fmt: skip
    worst = max(changes, key=lambda c: c[0])
    detail = "; ".join(c[3] for c in changes)
    if dropped:
        detail += f"; fewer than two simulated eta/b (left out): {', '.join(dropped)}"
    return _claim(
        name,
        combine(states),
        "intervals overlap 0: raise linear_sgd.chains",
        worst[:3],
        detail,
        _C7A_STATISTIC,
        threshold,
    )


_TOO_FEW = "too few simulated settings: widen linear_sgd.alpha_range or raise linear_sgd.ratios"
_C7A_STATISTIC = (
    "change of Hill's alpha-hat from the smallest to the largest simulated eta/b, per "
    "(dimension, batch size) series; the series closest to a rise"
)
_C7B_STATISTIC = (
    "alpha-hat at the largest minus at the smallest batch size with the same eta/b, per "
    "(dimension, eta/b); the pair furthest from 0"
)


def _c7b(table: pd.DataFrame, tolerance: float) -> dict:
    """C7b on the linear experiment: at each (d, η/b) with two or more simulated batch
    sizes, α̂ at the largest b minus at the smallest b lies within ±``tolerance``."""
    sim = table[table.simulated].sort_values(["d", "eta_over_b", "b"])
    states, diffs = [], []
    for (d, ratio), same in sim.groupby(["d", "eta_over_b"]):
        if len(same) < 2:
            continue
        diff, low, high = _difference(same.iloc[0], same.iloc[-1])
        states.append(interval_state(low, high, (-tolerance, tolerance)))
        theory = same.iloc[-1].alpha_theory - same.iloc[0].alpha_theory
        diffs.append((diff, low, high, f"d={d} eta/b={ratio:.4g} b={same.iloc[0].b} vs "
                      f"{same.iloc[-1].b}: {diff:+.3g} [{low:+.3g}, {high:+.3g}] "
                      f"(theory {theory:+.3g})"))  # fmt: skip
    name = "C7b (linear regression)"
    threshold = f"within +-{tolerance:g} (linear_sgd.c7_same_tolerance)"
    if not states:
        return _claim(
            name, INCONCLUSIVE, _TOO_FEW, (math.nan,) * 3,
            "no eta/b with two simulated batch sizes", _C7B_STATISTIC, threshold,
        )  # fmt: skip
    worst = max(diffs, key=lambda c: abs(c[0]))
    detail = "; ".join(c[3] for c in diffs)
    reason = "intervals too wide for the tolerance: raise linear_sgd.chains"
    return _claim(name, combine(states), reason, worst[:3], detail, _C7B_STATISTIC, threshold)


def _claim(name, verdict, reason, value, detail, statistic, threshold) -> dict:
    """A claim dict with :data:`sgdtail.claims.EXTERNAL_KEYS`."""
    return {
        "claim": name,
        "statistic": statistic,
        "value": json_number(value[0]),
        "ci_low": json_number(value[1]),
        "ci_high": json_number(value[2]),
        "threshold": threshold,
        "verdict": with_reason(verdict, reason),
        "detail": detail,
    }


def claim_c7_linear(table: pd.DataFrame, tolerance: float) -> list[dict]:
    """C7a and C7b judged on :func:`simulation_sweep`'s table (verdicts from
    :mod:`sgdtail.verdicts`; a condition passes, fails or is unclear by its interval)."""
    return [_c7a(table), _c7b(table, float(tolerance))]
