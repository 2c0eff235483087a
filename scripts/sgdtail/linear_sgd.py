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

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from sgdtail.estimators import batch_means_interval, default_hill_k, hill_alpha

__all__ = [
    "LinearSetting",
    "eta_for_tail_index",
    "simulation_sweep",
    "theory_curve",
    "moment_ratio",
    "moment_ratio_two",
    "simulate_norms",
    "stationary_estimate",
    "theory_tail_index",
]

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
    (:func:`~sgdtail.estimators.batch_means_interval`) from Hill's 1/α̂ in ``groups`` equal
    groups of the chains, each with the same fraction k/n of its values."""
    norms = np.asarray(norms, dtype=np.float64)
    n = norms.size
    k = default_hill_k(n)
    size = n // groups
    k_group = max(2, round(k * size / n))
    inv = [1.0 / hill_alpha(norms[g * size : (g + 1) * size], k_group) for g in range(groups)]
    low, high = batch_means_interval(inv, level)
    return StationaryEstimate(hill_alpha(norms, k), low, high, k, n)


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


def theory_curve(b: int, d: int, sigma: float, alpha_range: tuple[float, float], points: int):
    """Rows (b, d, eta, eta_over_b, alpha) of the theory at ``points`` steps log-spaced
    between those where α equals the ends of ``alpha_range``."""
    high, low = (eta_for_tail_index(a, b, d, sigma) for a in alpha_range)
    rows = []
    for eta in np.geomspace(high, low, points):
        alpha = theory_tail_index(LinearSetting(float(eta), b, d, sigma))
        rows.append({"b": b, "d": d, "eta": eta, "eta_over_b": eta / b, "alpha": alpha})
    return pd.DataFrame(rows)


def simulation_sweep(cfg: dict) -> pd.DataFrame:
    """For each batch size b, dimension d and theory tail index α in ``cfg``: the step η
    with that α (:func:`eta_for_tail_index`), and Hill's α̂ of ``cfg["chains"]`` chains
    after ``cfg["steps"]`` steps from x* (:func:`simulate_norms`,
    :func:`stationary_estimate`). One row per setting."""
    rows = []
    seed = int(cfg["seed"])
    for b in cfg["batch_sizes"]:
        for d in cfg["dimensions"]:
            for target in cfg["tail_indices"]:
                eta = eta_for_tail_index(float(target), int(b), int(d), float(cfg["sigma"]))
                s = LinearSetting(eta, int(b), int(d), float(cfg["sigma"]), float(cfg["sigma_y"]))
                norms = simulate_norms(s, int(cfg["chains"]), int(cfg["steps"]), seed)
                est = stationary_estimate(norms, int(cfg["groups"]), float(cfg["level"]))
                rows.append(
                    {"b": s.b, "d": s.d, "eta": eta, "eta_over_b": eta / s.b,
                     "alpha_theory": theory_tail_index(s), "alpha_hat": est.alpha,
                     "ci_low": est.ci_low, "ci_high": est.ci_high, "hill_k": est.k,
                     "chains": est.n, "steps": int(cfg["steps"])}
                )  # fmt: skip
                seed += 1
    return pd.DataFrame(rows)
