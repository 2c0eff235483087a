"""Lévy-driven versus Brownian dynamics in a 1-D double well (claims C4, C5; figures 2-3).

Also the C5 check on SGD data: the largest-step share of walks built from the
measured gradient-noise norms, calibrated against i.i.d. sequences.

Everything here is dimensionless: positions ``x`` and times ``t`` are in the
units of the model below ("position units", "time units"); there is no link
to SGD iterations other than the analogy the papers draw.

Conventions
-----------
Noise
    ``S ~ SαS(1)``: standard symmetric α-stable, ``E exp(iuS) = exp(-|u|^α)``,
    i.e. ``scipy.stats.levy_stable(alpha, 0)`` with scale 1.  For α = 2 this is
    ``√2·N(0, 1)``.  The Lévy motion ``L_t`` has ``L_1 ~ SαS(1)``, so an
    increment over a step ``dt`` is ``dt^{1/α}·S``.
Dynamics
    ``dX = -U'(X) dt + eps·dL_t``.  For α = 2, ``eps·dL = eps·√2·dB``: the
    generator is ``-U'∂ + D∂²`` with diffusion coefficient ``D = eps²`` and the
    stationary density is ``∝ exp(-U/eps²)``.
Potential
    ``U(x) = H·f(x/W)``, ``f(z) = (z² - 1)²``: minima at ``±W`` (``U = 0``),
    barrier top at 0 (``U = H``); ``U''(±W) = 8H/W²``, ``U''(0) = -4H/W²``.
    ``H`` (barrier height, energy units) and ``W`` (basin half-width, position
    units) are set independently.  :func:`potential` also allows a different
    width on each side (figure 3).
Exit problem
    Particles start at the left minimum ``x0 = -W``.  The exit time is the
    first grid time ``k·dt`` at which ``X_k ≥ 0``, i.e. the particle has reached
    the barrier top or jumped over it.  Crossings between grid times are not
    seen (discrete monitoring); for α = 2 this delays exits a little, like a
    barrier shifted right by ``≈ 0.5826·eps·√(2·dt)`` (Broadie–Glasserman–Kou).

Theory the simulations are compared with
    Brownian (Kramers, ``eps² ≪ H``): the mean time to reach the barrier top is
    ``E τ ≈ π/√(U''(-W)·|U''(0)|)·exp(H/D) = π W²/(4√2 H)·exp(H/eps²)``, so
    ``log E τ`` is linear in ``H`` with slope ``≈ 1/eps² - 1/H`` and grows like
    ``W²`` with the width.  :func:`brownian_mean_exit_time` gives the exact
    value (quadrature of the mean-first-passage-time formula).
    Lévy, α < 2 (Imkeller & Pavlyukevich 2006, small-noise limit): the particle
    leaves at the first jump of ``eps·L`` longer than the distance ``W`` to the
    barrier.  Jumps of ``L`` longer than ``r`` to the right arrive at rate
    ``Γ(α) sin(πα/2)/π · r^{-α}``, so
    ``E τ ≈ π W^α / (Γ(α) sin(πα/2) eps^α)``, independent of ``H``
    (:func:`levy_mean_exit_time_asymptotic`).
    Both are ``eps → 0`` asymptotes.  In the well's own units the noise scale
    is ``σ = eps·W^{2/α-1}·H^{-1/α}`` (:func:`effective_noise`); the
    asymptotes hold for ``σ ≪ 1``, which for α < 2 is reached cheaply by high
    barriers, since the Lévy exit time does not grow with ``H``.

Time stepping
    The default scheme ``"split"`` is a Lie–Trotter splitting: the drift is
    integrated *exactly* over ``dt`` (for this quartic the flow of
    ``dz/dt = (4H/W²) z(1 - z²)`` has the closed form
    ``z(t) = z0/√(e + (1 - e) z0²)``, ``e = exp(-8H t/W²)``), then the noise
    increment is added: ``X_{k+1} = Φ_dt(X_k) + eps·dt^{1/α}·S_k``.  It has the
    weak order of Euler–Maruyama but is stable for any jump size: a particle
    thrown to ``x = -10⁶`` comes back to ``|x| ≲ W/√(1 - e)`` in one step, and
    a jump to the right past 0 is an exit.  No clamping is needed.
    The scheme ``"euler"`` is the explicit Euler step
    ``X_{k+1} = X_k - U'(X_k) dt + eps·dt^{1/α}·S_k`` with the state clamped to
    ``[-EULER_CLAMP·W, +∞)`` after each step (a far jump to the left is put back
    at ``-3W``; the drift returns it to the well in a few relaxation times
    ``W²/(8H)`` anyway).  It is only stable when ``dt·U''(-3W) ≤ 1``, i.e.
    ``dt ≤ W²/(104 H)``, which is checked.  It is kept as a cross-check.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

from sgdtail.aggregate import EXCLUDED_STATUSES as AGGREGATE_EXCLUDED
from sgdtail.aggregate import usable

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # matplotlib is imported by the figure functions only
    from matplotlib.figure import Figure

#: The Broadie–Glasserman–Kou constant −ζ(1/2)/√(2π): discrete monitoring of a
#: Brownian path with step variance σ²dt acts like a barrier moved by β·σ·√dt.
BGK_BETA = 0.5825971579390106

#: Left clamp of the explicit Euler scheme, in units of the basin width W.
EULER_CLAMP = 3.0

#: Defaults of :func:`exit_time_sweep` (those of config.yaml's ``dynamics``).
DEFAULT_ALPHAS: tuple[float, ...] = (1.2, 1.5, 1.8, 2.0)
DEFAULT_EPS = 1.0
DEFAULT_HEIGHTS: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0)
DEFAULT_WIDTHS: tuple[float, ...] = (0.5, 0.707, 1.0, 1.414, 2.0)
DEFAULT_HEIGHT_FIXED = 64.0
DEFAULT_WIDTH_FIXED = 1.0
DEFAULT_DT_REL = 0.05
DEFAULT_N_PARTICLES = 1000
DEFAULT_HORIZON = 1000.0

SWEEP_COLUMNS = [
    "alpha",
    "height",
    "width",
    "eps",
    "mean",
    "ci_low",
    "ci_high",
    "n_particles",
    "n_censored",
    "estimator",
    "sweep",
    "n_exits",
    "log_se",
    "level",
    "dt",
    "horizon",
    "scheme",
    "sigma",
    "asymptote",
    "rho",
    "rho_ci_low",
    "rho_ci_high",
]

# --------------------------------------------------------------------------- noise


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (0.0 < alpha <= 2.0) or not math.isfinite(alpha):
        raise ValueError(f"alpha must lie in (0, 2], got {alpha!r}")
    return alpha


def sas_increments(
    alpha: float, size: int | tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Draw standard symmetric α-stable variables ``S ~ SαS(1)`` (dimensionless).

    Chambers–Mallows–Stuck (1976) with ``β = 0``: for ``V ~ U(-π/2, π/2)`` and
    ``E ~ Exp(1)``,
    ``S = sin(αV)/cos(V)^{1/α} · (cos((1-α)V)/E)^{(1-α)/α}``; ``S = tan V`` for
    α = 1.  The law is that of ``scipy.stats.levy_stable(alpha, 0)`` (scale 1,
    characteristic function ``exp(-|u|^α)``); α = 2 gives ``√2·N(0, 1)``, drawn
    directly from the normal generator (the CMS formula gives the same law).
    """
    alpha = _check_alpha(alpha)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if alpha == 2.0:
        return math.sqrt(2.0) * rng.standard_normal(size)
    v = np.pi * (rng.random(size) - 0.5)
    if alpha == 1.0:
        return np.tan(v)
    e = np.maximum(rng.standard_exponential(size), np.finfo(float).tiny)
    return (
        np.sin(alpha * v)
        / np.cos(v) ** (1.0 / alpha)
        * (np.cos((1.0 - alpha) * v) / e) ** ((1.0 - alpha) / alpha)
    )


def levy_right_tail_constant(alpha: float) -> float:
    """``c`` in ``P(S > r) ~ ν((r, ∞)) = c·r^{-α}`` for ``S ~ SαS(1)``: ``Γ(α) sin(πα/2)/π``.

    Zero for α = 2 (no jumps).
    """
    alpha = _check_alpha(alpha)
    if alpha == 2.0:
        return 0.0
    return float(special.gamma(alpha) * math.sin(math.pi * alpha / 2.0) / math.pi)


# --------------------------------------------------------------------------- potential


def potential(
    x: np.ndarray | float, height: float, width: float, width_right: float | None = None
) -> np.ndarray:
    """Double-well potential ``U(x) = H·((x/W)² - 1)²`` (energy units).

    ``width`` is the half-width ``W`` of the left basin (minimum at ``-W``);
    ``width_right`` (default: ``width``) that of the right basin.  Both basins
    have depth ``H`` and the barrier top is at ``x = 0``.
    """
    wr = width if width_right is None else width_right
    x = np.asarray(x, dtype=float)
    w = np.where(x < 0, width, wr)
    return height * ((x / w) ** 2 - 1.0) ** 2


def potential_gradient(
    x: np.ndarray | float, height: float, width: float, width_right: float | None = None
) -> np.ndarray:
    """``U'(x) = (4H/W)·z(z² - 1)``, ``z = x/W`` (energy per position unit)."""
    wr = width if width_right is None else width_right
    x = np.asarray(x, dtype=float)
    w = np.where(x < 0, width, wr)
    z = x / w
    return 4.0 * height / w * z * (z * z - 1.0)


def _check_well(height: float, width: float) -> None:
    if not (np.isfinite(height) and height > 0):
        raise ValueError(f"barrier height must be > 0, got {height!r}")
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"basin width must be > 0, got {width!r}")


def _drift_flow(
    x: np.ndarray, decay_l: np.ndarray, decay_r: np.ndarray, w_l: np.ndarray, w_r: np.ndarray
) -> np.ndarray:
    """Exact flow of ``dx/dt = -U'(x)`` over one step; ``decay = exp(-8H dt/W²)`` per side.

    ``z(t) = z0/√(e + (1 - e) z0²)`` solves ``dz/dt = (4H/W²) z(1 - z²)``; 0 is a
    fixed point, so a particle never crosses the barrier by the drift alone.
    """
    left = x < 0
    w = np.where(left, w_l, w_r)
    e = np.where(left, decay_l, decay_r)
    z = np.clip(x / w, -1e100, 1e100)
    return w * z / np.sqrt(e + (1.0 - e) * z * z)


# --------------------------------------------------------------------------- simulation


def _validate_sim(dt: float, horizon: float, scheme: str) -> int:
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be > 0, got {dt!r}")
    if not (np.isfinite(horizon) and horizon >= dt):
        raise ValueError(f"horizon must be finite and >= dt, got {horizon!r} (dt={dt})")
    if scheme not in ("split", "euler"):
        raise ValueError(f"scheme must be 'split' or 'euler', got {scheme!r}")
    return int(math.ceil(horizon / dt - 1e-9))


def _simulate_batch(
    alpha: np.ndarray,
    height: np.ndarray,
    width: np.ndarray,
    eps: np.ndarray,
    dt: np.ndarray,
    horizon: float,
    rng: np.random.Generator,
    scheme: str = "split",
) -> tuple[np.ndarray, np.ndarray]:
    """Exit times of many particles, each with its own (α, H, W, eps, dt).

    Returns ``(times, censored)``; a censored particle gets
    ``times = ceil(horizon/dt)·dt`` (the horizon rounded up to its grid).
    Particles are grouped by α so the noise of each group is drawn in one call;
    exited and censored particles are dropped from the working arrays, so the
    cost is ``Σ min(exit time, horizon)/dt`` particle-steps.
    """
    for d in np.unique(dt):
        _validate_sim(float(d), horizon, scheme)
    n = alpha.size
    order = np.argsort(alpha, kind="stable")
    a, h, w, ep, dtp = alpha[order], height[order], width[order], eps[order], dt[order]
    kmax = np.ceil(horizon / dtp - 1e-9).astype(np.int64)
    scale = ep * dtp ** (1.0 / a)
    decay = np.exp(-8.0 * h * dtp / w**2)
    x = -w.copy()
    idx = np.arange(n)
    times = kmax * dtp
    censored = np.ones(n, dtype=bool)
    if scheme == "euler":
        curv = h / w**2 * (12.0 * EULER_CLAMP**2 - 4.0)
        if np.any(dtp * curv > 1.0):
            worst = float(np.min(1.0 / curv))
            raise ValueError(
                f"explicit Euler is unstable for these wells: need dt <= {worst:.3g} "
                f"(dt*U''(-{EULER_CLAMP:g}W) <= 1), got dt={float(dtp.max())}; "
                "use scheme='split'"
            )
    alphas_u = np.unique(a)
    k = 0
    while idx.size:
        k += 1
        if scheme == "split":
            x = _drift_flow(x, decay, decay, w, w)
        else:
            z = x / w
            x = x - dtp * 4.0 * h / w * z * (z * z - 1.0)
        # noise, one draw per α group (a is sorted and stays sorted after compaction)
        bounds = np.searchsorted(a, alphas_u, side="left").tolist() + [a.size]
        noise = np.empty_like(x)
        for j, al in enumerate(alphas_u):
            lo, hi = bounds[j], bounds[j + 1]
            if hi > lo:
                noise[lo:hi] = sas_increments(float(al), hi - lo, rng)
        x = x + scale * noise
        if scheme == "euler":
            x = np.maximum(x, -EULER_CLAMP * w)
        out = x >= 0.0
        if out.any():
            gone = idx[out]
            times[gone] = k * dtp[out]
            censored[gone] = False
        drop = out | (k >= kmax)
        if drop.any():
            keep = ~drop
            x, a, h, w, scale, decay, idx, dtp, kmax = (
                x[keep],
                a[keep],
                h[keep],
                w[keep],
                scale[keep],
                decay[keep],
                idx[keep],
                dtp[keep],
                kmax[keep],
            )
    inv = np.empty(n, dtype=int)
    inv[order] = np.arange(n)
    return times[inv], censored[inv]


def simulate_exit_times(
    alpha: float,
    height: float,
    width: float,
    eps: float,
    dt: float,
    n_particles: int,
    horizon: float,
    rng: np.random.Generator,
    scheme: str = "split",
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate exit times from the left basin of ``U(x) = H·((x/W)² - 1)²``.

    ``n_particles`` independent particles start at ``x = -W`` and follow
    ``X_{k+1} = Φ_dt(X_k) + eps·dt^{1/α}·S_k`` (``scheme="split"``: exact drift
    flow then noise; ``"euler"``: explicit Euler with a clamp at ``-3W``; see
    the module docstring).  A particle exits at the first ``k·dt`` with
    ``X_k ≥ 0`` (barrier top reached or jumped over; a jump of any length to the
    right counts).

    Parameters are dimensionless: ``height`` in energy units, ``width`` and
    ``eps`` in position units (``eps`` multiplies the unit-scale Lévy motion),
    ``dt`` and ``horizon`` in time units.

    Returns ``(times, censored)``: exit times (time units) and a boolean mask of
    particles still inside at the horizon, whose ``times`` equal
    ``ceil(horizon/dt)·dt``.  Pass both to :func:`mean_exit_time`.
    """
    alpha = _check_alpha(alpha)
    _check_well(height, width)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    n_particles = int(n_particles)
    if n_particles < 1:
        raise ValueError(f"n_particles must be >= 1, got {n_particles}")
    _validate_sim(dt, horizon, scheme)
    full = np.full(n_particles, 1.0)
    return _simulate_batch(
        alpha * full, height * full, width * full, eps * full, dt * full, horizon, rng, scheme
    )


# --------------------------------------------------------------------------- estimation


def mean_exit_time(
    times: np.ndarray, censored: np.ndarray, horizon: float, level: float = 0.95
) -> dict[str, Any]:
    """Mean exit time (time units) with a confidence interval, censoring included.

    Estimator: exponential maximum likelihood under type-I (fixed-horizon)
    censoring, ``mean = T/d`` with ``T`` the total time on test (exit times of
    the exited particles plus ``horizon`` for each censored one) and ``d`` the
    number of exits.  Exits from a metastable basin are close to memoryless
    (exponential), which is what makes this right; with no censoring it is the
    sample mean.  Interval (Cox 1953, time-truncated tests):
    ``[2T/χ²_{1-a/2}(2d+2), 2T/χ²_{a/2}(2d)]``, ``a = 1 - level``.  It assumes
    exponential exit times; for exit-time laws less variable than exponential
    (low barriers) it is conservative.

    If every particle is censored, ``mean`` is NaN, ``ci_low`` is the one-sided
    ``level`` lower bound ``2T/χ²_{level}(2)`` and ``ci_high`` is ``inf``; the
    ``estimator`` string says so.  Censored particles are never dropped.

    Returns ``dict(mean, ci_low, ci_high, n_censored, estimator, n_exits, log_se)``;
    ``log_se = 1/√d`` is the standard error of ``log(mean)`` (NaN if ``d = 0``).
    """
    t = np.asarray(times, dtype=float)
    c = np.asarray(censored, dtype=bool)
    if t.ndim != 1 or t.shape != c.shape:
        raise ValueError(
            f"times and censored must be 1-D of equal length, got {t.shape}, {c.shape}"
        )
    if t.size == 0:
        raise ValueError("no exit times given")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be > 0, got {horizon!r}")
    if np.any(~np.isfinite(t[~c])) or np.any(t[~c] < 0):
        raise ValueError("exit times of exited particles must be finite and >= 0")
    if np.any(t[~c] > horizon * (1 + 1e-9) + 1e-12):
        raise ValueError("some uncensored exit times exceed the horizon: wrong horizon?")
    d = int((~c).sum())
    n_cens = int(c.sum())
    total = float(t[~c].sum() + horizon * n_cens)
    a = 1.0 - level
    if d == 0:
        low = 2.0 * total / stats.chi2.ppf(level, 2)
        return dict(
            mean=float("nan"),
            ci_low=float(low),
            ci_high=float("inf"),
            n_censored=n_cens,
            estimator=(
                f"exponential-MLE; all {n_cens} censored: mean undefined, ci_low is a "
                f"one-sided {level:g} lower bound"
            ),
            n_exits=0,
            log_se=float("nan"),
        )
    mean = total / d
    low = 2.0 * total / stats.chi2.ppf(1.0 - a / 2.0, 2 * d + 2)
    high = 2.0 * total / stats.chi2.ppf(a / 2.0, 2 * d)
    return dict(
        mean=float(mean),
        ci_low=float(low),
        ci_high=float(high),
        n_censored=n_cens,
        estimator="exponential-MLE",
        n_exits=d,
        log_se=float(1.0 / math.sqrt(d)),
    )


def brownian_mean_exit_time(
    height: float, width: float, eps: float, barrier: float = 0.0, n_grid: int = 20001
) -> float:
    """Exact mean time (time units) for α = 2 to go from ``-W`` to ``barrier``.

    Mean-first-passage-time formula for ``dX = -U'dt + √(2D) dB``, ``D = eps²``,
    natural boundary at ``-∞``:
    ``T = (1/D)∫_{-W}^{b} e^{U(y)/D} ∫_{-∞}^{y} e^{-U(z)/D} dz dy``, by
    trapezoid quadrature on ``[-4W, b]`` (``U(-4W) = 225H``, so the cut is
    negligible).  ``barrier`` > 0 mimics the discrete-monitoring delay
    (``BGK_BETA·eps·√(2dt)``).
    """
    _check_well(height, width)
    d = eps**2
    if height / d > 600:
        raise ValueError(f"H/eps^2 = {height / d:.0f} overflows the quadrature (max 600)")
    if not (-width < barrier < width):
        raise ValueError(f"barrier must lie in (-W, W), got {barrier}")
    z = np.linspace(-4.0 * width, barrier, n_grid)
    u = potential(z, height, width)
    inner = integrate.cumulative_trapezoid(np.exp(-u / d), z, initial=0.0)
    sel = z >= -width
    return float(integrate.trapezoid(np.exp(u[sel] / d) * inner[sel], z[sel]) / d)


def relaxation_time(height: float, width: float) -> float:
    """Relaxation time ``1/U''(-W) = W²/(8H)`` of a basin (time units)."""
    _check_well(height, width)
    return float(width**2 / (8.0 * height))


def kramers_mean_exit_time(height: float, width: float, eps: float) -> float:
    """Kramers approximation ``π W²/(4√2 H)·exp(H/eps²)`` (time units), valid for ``eps² ≪ H``."""
    _check_well(height, width)
    return float(math.pi * width**2 / (4.0 * math.sqrt(2.0) * height) * math.exp(height / eps**2))


def levy_mean_exit_time_asymptotic(alpha: float, width: float, eps: float) -> float:
    """Small-noise Lévy mean exit time ``π W^α / (Γ(α) sin(πα/2) eps^α)`` (time units), α < 2.

    The rate of jumps of ``eps·L`` to the right longer than ``W``; independent of
    the barrier height.
    """
    alpha = _check_alpha(alpha)
    if alpha == 2.0:
        raise ValueError("the jump asymptotic needs alpha < 2; use brownian_mean_exit_time")
    return float((width / eps) ** alpha / levy_right_tail_constant(alpha))


def effective_noise(
    alpha: float, height: float | np.ndarray, width: float | np.ndarray, eps: float
) -> np.ndarray | float:
    """Noise scale ``σ = eps·W^{2/α-1}·H^{-1/α}`` of the well in its own units (dimensionless).

    With ``x = W·z`` and ``t = (W²/H)·s`` the dynamics become
    ``dz = -f'(z) ds + σ dL_s`` with ``f(z) = (z² - 1)²``, so the law of
    ``τ·H/W²`` depends on ``(α, σ)`` only.  Both small-noise asymptotics
    (Kramers for α = 2, Imkeller–Pavlyukevich for α < 2) are limits ``σ → 0``:
    a smaller ``eps``, a higher barrier ``H`` or, for α < 2, a narrower basin.
    """
    alpha = _check_alpha(alpha)
    h = np.asarray(height, dtype=float)
    w = np.asarray(width, dtype=float)
    out = eps * w ** (2.0 / alpha - 1.0) * h ** (-1.0 / alpha)
    return float(out) if out.ndim == 0 else out


def small_noise_asymptote(alpha: float, height: float, width: float, eps: float) -> float:
    """The ``eps → 0`` asymptote of the mean exit time (time units).

    α < 2: :func:`levy_mean_exit_time_asymptotic` (no ``H`` in it); α = 2:
    :func:`kramers_mean_exit_time`.
    """
    if _check_alpha(alpha) == 2.0:
        return kramers_mean_exit_time(height, width, eps)
    return levy_mean_exit_time_asymptotic(alpha, width, eps)


def _sweep_chunk(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    alpha, height, width, eps, dt, horizon, seed, scheme = args
    return _simulate_batch(
        alpha, height, width, eps, dt, horizon, np.random.default_rng(seed), scheme
    )


def _sweep_configs(
    alphas: Sequence[float],
    heights: Sequence[float],
    levy_heights: Sequence[float],
    widths: Sequence[float],
    height_fixed: float,
    width_fixed: float,
) -> list[tuple[float, float, float, str]]:
    """``(alpha, height, width, sweep)`` of every configuration of :func:`exit_time_sweep`."""
    configs: list[tuple[float, float, float, str]] = []
    for a in alphas:
        hs = heights if a == 2.0 else levy_heights
        configs += [(a, h, width_fixed, "height") for h in hs]
        if a < 2.0:
            configs += [(a, height_fixed, w, "width") for w in widths]
    return configs


def _run_particles(
    configs: Sequence[tuple[float, float, float, str]],
    cfg_dt: np.ndarray,
    eps: float,
    n_particles: int,
    horizon: float,
    seed: int,
    scheme: str,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate ``n_particles`` per configuration; returns ``(config index, times, censored)``."""
    cfg = np.repeat(np.arange(len(configs)), n_particles)
    arr = np.array([c[:3] for c in configs], dtype=float)[cfg]
    ep = np.full(cfg.size, float(eps))
    dtp = cfg_dt[cfg]
    n_jobs = max(1, min(int(n_jobs), os.cpu_count() or 1))
    # interleaved chunks, so every process gets a share of every configuration
    parts = [np.arange(j, cfg.size, n_jobs) for j in range(n_jobs)]
    seeds = np.random.SeedSequence(seed).spawn(n_jobs)
    jobs = [
        (arr[p, 0], arr[p, 1], arr[p, 2], ep[p], dtp[p], horizon, s, scheme)
        for p, s in zip(parts, seeds, strict=True)
    ]
    if n_jobs == 1:
        results = [_sweep_chunk(jobs[0])]
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(_sweep_chunk, jobs))
    times = np.empty(cfg.size)
    cens = np.empty(cfg.size, dtype=bool)
    for p, (tt, cc) in zip(parts, results, strict=True):
        times[p], cens[p] = tt, cc
    return cfg, times, cens


def _config_steps(
    configs: Sequence[tuple[float, float, float, str]],
    dt_rel: float,
    dt: float | None,
    horizon: float,
    scheme: str,
) -> np.ndarray:
    """Time step of each configuration: ``dt_rel·W²/(8H)``, or ``dt`` when given."""
    steps = np.array(
        [relaxation_time(h, w) * dt_rel if dt is None else float(dt) for _, h, w, _ in configs]
    )
    for d in steps:
        _validate_sim(float(d), horizon, scheme)
    return steps


def _check_positive(name: str, values: Iterable[float]) -> None:
    bad = [v for v in values if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{name} must be > 0, got {bad[0]!r}")


def _check_sweep_args(
    alphas: Sequence[float],
    heights: Sequence[float],
    widths: Sequence[float],
    eps: float,
    n_particles: int,
    dt_rel: float | None,
) -> None:
    if not alphas or not heights or not widths:
        raise ValueError("alphas, heights, levy_heights and widths must all be non-empty")
    for name, values in (("barrier height", heights), ("basin width", widths), ("eps", [eps])):
        _check_positive(name, values)
    if n_particles < 1:
        raise ValueError(f"n_particles must be >= 1, got {n_particles}")
    if dt_rel is not None and not (np.isfinite(dt_rel) and 0 < dt_rel <= 1):
        raise ValueError(f"dt_rel must lie in (0, 1], got {dt_rel!r}")


def exit_time_sweep(
    alphas: Iterable[float] = DEFAULT_ALPHAS,
    heights: Iterable[float] = DEFAULT_HEIGHTS,
    widths: Iterable[float] = DEFAULT_WIDTHS,
    *,
    levy_heights: Iterable[float] | None = None,
    height_fixed: float = DEFAULT_HEIGHT_FIXED,
    width_fixed: float = DEFAULT_WIDTH_FIXED,
    eps: float = DEFAULT_EPS,
    dt_rel: float = DEFAULT_DT_REL,
    dt: float | None = None,
    n_particles: int = DEFAULT_N_PARTICLES,
    horizon: float = DEFAULT_HORIZON,
    level: float = 0.95,
    seed: int = 0,
    scheme: str = "split",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Mean exit time versus barrier height and, for α < 2, versus basin width.

    Configurations (all at noise scale ``eps``):

    * α = 2: ``sweep="height"`` rows over ``heights`` at ``W = width_fixed``.
      Brownian exit times grow like ``exp(H/eps²)``, so only moderate ``H/eps²``
      can be simulated.
    * α < 2: ``sweep="height"`` rows over ``levy_heights`` (default: ``heights``)
      at ``W = width_fixed``, and ``sweep="width"`` rows over ``widths`` at
      ``H = height_fixed``.  Lévy exit times stay of the order of the jump
      asymptote however high the barrier, so the heights can be taken large
      enough for the effective noise :func:`effective_noise` to be small,
      which is where the Imkeller–Pavlyukevich asymptote applies.

    Each configuration gets ``n_particles`` particles; mean and interval from
    :func:`mean_exit_time`.  Time step ``dt = dt_rel·W²/(8H)``, a fixed fraction
    of the basin's relaxation time, so every configuration is resolved alike in
    the well's own units (pass ``dt`` for one fixed step instead).  The cost is
    ``Σ min(τ, horizon)/dt`` particle-steps, i.e. grows like ``1/(dt_rel·σ^α)``
    per α < 2 particle.

    Seeds: one ``SeedSequence(seed)`` child per process chunk, so the result
    depends on ``seed`` and ``n_jobs`` only.

    Returns columns ``SWEEP_COLUMNS``: ``alpha, height, width, eps, mean, ci_low,
    ci_high, n_particles, n_censored, estimator, sweep, n_exits, log_se``
    (s.e. of log mean), ``level, dt, horizon, scheme``, ``sigma``
    (:func:`effective_noise`), ``asymptote`` (:func:`small_noise_asymptote`)
    and ``rho = mean/asymptote`` with ``rho_ci_low, rho_ci_high``.
    """
    alphas = [_check_alpha(a) for a in alphas]
    heights = [float(h) for h in heights]
    levy_heights = heights if levy_heights is None else [float(h) for h in levy_heights]
    widths = [float(w) for w in widths]
    n_particles = int(n_particles)
    _check_sweep_args(
        alphas,
        heights + levy_heights + [height_fixed],
        widths + [width_fixed],
        eps,
        n_particles,
        None if dt is not None else dt_rel,
    )
    configs = _sweep_configs(alphas, heights, levy_heights, widths, height_fixed, width_fixed)
    cfg_dt = _config_steps(configs, dt_rel, dt, horizon, scheme)
    log.info("progress: simulating %d sweep points x %d particles", len(configs), n_particles)
    t0 = time.perf_counter()
    cfg, times, cens = _run_particles(
        configs, cfg_dt, eps, n_particles, horizon, seed, scheme, n_jobs
    )
    log.info("progress: particles simulated in %.1f s", time.perf_counter() - t0)
    rows = []
    for i, (a, h, w, sweep) in enumerate(configs):
        sel = cfg == i
        horizon_grid = math.ceil(horizon / cfg_dt[i] - 1e-9) * cfg_dt[i]
        est = mean_exit_time(times[sel], cens[sel], horizon_grid, level)
        asym = small_noise_asymptote(a, h, w, eps)
        rows.append(
            dict(
                alpha=a,
                height=h,
                width=w,
                eps=float(eps),
                mean=est["mean"],
                ci_low=est["ci_low"],
                ci_high=est["ci_high"],
                n_particles=n_particles,
                n_censored=est["n_censored"],
                estimator=est["estimator"],
                sweep=sweep,
                n_exits=est["n_exits"],
                log_se=est["log_se"],
                level=level,
                dt=cfg_dt[i],
                horizon=horizon_grid,
                scheme=scheme,
                sigma=effective_noise(a, h, w, eps),
                asymptote=asym,
                rho=est["mean"] / asym,
                rho_ci_low=est["ci_low"] / asym,
                rho_ci_high=est["ci_high"] / asym,
            )
        )
        log.info(
            "progress: sweep point %d/%d (%s: alpha %g, height %g, width %g): mean exit "
            "time %.4g, %d censored",
            i + 1,
            len(configs),
            sweep,
            a,
            h,
            w,
            est["mean"],
            est["n_censored"],
        )
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


# --------------------------------------------------------------------------- slopes


def _wls_line(x: np.ndarray, y: np.ndarray, se: np.ndarray, level: float) -> dict[str, float]:
    """Weighted least squares ``y = b0 + b1 x`` with weights ``1/se²``.

    The points' standard errors are taken as known (each comes from hundreds
    of independent samples), so the slope variance is ``1/Σ w(x - x̄)²``; it is
    multiplied by the reduced χ² when that exceeds 1 (scatter or curvature
    beyond the stated errors), and the interval is ``slope ± z·se`` with ``z``
    the normal quantile of ``level``.  Fewer than 3 points: slope only, NaN
    interval.
    """
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(se) & (se > 0)
    x, y, se = x[ok], y[ok], se[ok]
    n = int(x.size)
    nan = float("nan")
    if n < 2 or np.ptp(x) == 0:
        return dict(
            slope=nan,
            ci_low=nan,
            ci_high=nan,
            se=nan,
            intercept=nan,
            red_chi2=nan,
            n=n,
            dof=max(n - 2, 0),
        )
    wts = 1.0 / se**2
    xm = np.sum(wts * x) / wts.sum()
    ym = np.sum(wts * y) / wts.sum()
    sxx = np.sum(wts * (x - xm) ** 2)
    b1 = float(np.sum(wts * (x - xm) * (y - ym)) / sxx)
    b0 = float(ym - b1 * xm)
    if n < 3:
        return dict(
            slope=b1, ci_low=nan, ci_high=nan, se=nan, intercept=b0, red_chi2=nan, n=n, dof=0
        )
    red = float(np.sum(wts * (y - b0 - b1 * x) ** 2) / (n - 2))
    s = math.sqrt(max(1.0, red) / sxx)
    q = float(stats.norm.ppf(0.5 + level / 2.0))
    return dict(
        slope=b1,
        ci_low=b1 - q * s,
        ci_high=b1 + q * s,
        se=s,
        intercept=b0,
        red_chi2=red,
        n=n,
        dof=n - 2,
    )


def _log_se(df: pd.DataFrame) -> np.ndarray:
    """Standard error of ``log(mean)`` per row: ``log_se``, else from the interval."""
    if "log_se" in df.columns:
        return df["log_se"].to_numpy(float)
    if {"ci_low", "ci_high", "level"} <= set(df.columns):
        z = stats.norm.ppf(0.5 + df["level"].to_numpy(float) / 2.0)
        return (np.log(df["ci_high"]) - np.log(df["ci_low"])).to_numpy(float) / (2 * z)
    raise ValueError("exit-time table needs 'log_se' or 'ci_low', 'ci_high', 'level'")


def _rows_sigma(rows: pd.DataFrame) -> np.ndarray:
    if "sigma" in rows.columns:
        return rows["sigma"].to_numpy(float)
    return np.array(
        [
            effective_noise(a, h, w, e)
            for a, h, w, e in zip(
                rows["alpha"], rows["height"], rows["width"], rows["eps"], strict=True
            )
        ]
    )


def height_elasticities(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Local elasticity of the mean exit time in the barrier height, per consecutive pair.

    For each α and each pair of consecutive heights ``H₁ < H₂`` of the height
    sweep: ``e = (log τ₂ - log τ₁)/(log H₂ - log H₁)`` (dimensionless: the
    percentage change of ``τ`` per percentage change of ``H``).  ``e = 0`` is
    height independence (the α < 2 asymptote), Kramers gives ``e ≈ H/eps² - 1``.
    The two means are independent simulations, so
    ``se(e) = √(se₁² + se₂²)/(log H₂ - log H₁)`` with ``se = log_se``; the
    interval is ``e ± z·se`` (normal, ``level``).  Pairs with an undefined mean
    (all censored) are skipped.  ``sigma_max`` is the larger effective noise
    of the pair (the one further from the asymptote).

    Columns: ``alpha, height_low, height_high, sigma_max, elasticity, ci_low,
    ci_high, se``; rows ordered by α then height.
    """
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    d = df[df["sweep"] == "height"].assign(_se=_log_se(df[df["sweep"] == "height"]))
    d = d.assign(_sigma=_rows_sigma(d))
    rows = []
    for alpha, g in d.groupby("alpha", sort=True):
        g = g.sort_values("height")
        g = g[np.isfinite(g["mean"].to_numpy(float)) & (g["mean"] > 0)]
        h, m = g["height"].to_numpy(float), g["mean"].to_numpy(float)
        se, sig = g["_se"].to_numpy(float), g["_sigma"].to_numpy(float)
        for i in range(len(g) - 1):
            dx = math.log(h[i + 1] / h[i])
            e = math.log(m[i + 1] / m[i]) / dx
            s = math.hypot(se[i], se[i + 1]) / dx
            rows.append(
                dict(
                    alpha=float(alpha),
                    height_low=h[i],
                    height_high=h[i + 1],
                    sigma_max=float(max(sig[i], sig[i + 1])),
                    elasticity=e,
                    ci_low=e - z * s,
                    ci_high=e + z * s,
                    se=s,
                )
            )
    cols = [
        "alpha",
        "height_low",
        "height_high",
        "sigma_max",
        "elasticity",
        "ci_low",
        "ci_high",
        "se",
    ]
    return pd.DataFrame(rows, columns=cols)


def _fit_sweep(s: pd.DataFrame, log_x: bool, level: float) -> dict[str, float]:
    mean = s["mean"].to_numpy(float)
    good = np.isfinite(mean) & (mean > 0)
    x = s["_x"].to_numpy(float)
    x = np.log(x) if log_x else x
    return _wls_line(x[good], np.log(mean[good]), s["_se"].to_numpy(float)[good], level)


def _top_of_height_sweep(g: pd.DataFrame, elast: pd.DataFrame) -> dict[str, float]:
    """Elasticity between the two largest heights and ``rho`` at the largest, NaN if absent."""
    out = dict.fromkeys(
        [
            "height_elasticity",
            "height_elasticity_ci_low",
            "height_elasticity_ci_high",
            "height_elasticity_sigma",
            "rho_top",
            "rho_top_ci_low",
            "rho_top_ci_high",
        ],
        float("nan"),
    )
    if len(elast):
        e = elast.iloc[-1]
        out.update(
            height_elasticity=float(e["elasticity"]),
            height_elasticity_ci_low=float(e["ci_low"]),
            height_elasticity_ci_high=float(e["ci_high"]),
            height_elasticity_sigma=float(e["sigma_max"]),
        )
    top = g[g["sweep"] == "height"].sort_values("height").tail(1)
    if len(top) and "rho" in top.columns:
        t = top.iloc[0]
        out.update(
            rho_top=float(t["rho"]),
            rho_top_ci_low=float(t["rho_ci_low"]),
            rho_top_ci_high=float(t["rho_ci_high"]),
        )
    return out


def fit_exit_slopes(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per α: the height and width laws of the mean exit time ``τ``, with intervals.

    * ``height_slope``: WLS slope of ``log τ`` on ``H`` over the height sweep
      (per energy unit; Kramers: ``≈ 1/eps² - 1/H``).
      ``height_slope_theory``: for α = 2 the same fit to the exact Brownian
      mean exit time (:func:`brownian_mean_exit_time`), NaN for α < 2.
    * ``height_elasticity``: the local elasticity ``d log τ/d log H`` between
      the two largest heights (:func:`height_elasticities`; asymptote 0 for
      α < 2), with ``height_elasticity_ci_low/high`` and
      ``height_elasticity_sigma`` (the larger effective noise of the pair).
    * ``width_exponent``: WLS slope of ``log τ`` on ``log W`` over the width
      sweep (asymptote α for α < 2), with interval and ``width_sigma_max``,
      the largest effective noise of the sweep; NaN without width rows.
    * ``rho_top``: ``mean/asymptote`` at the largest height, with interval.

    WLS fits weight each point by ``1/log_se²`` (``log_se = 1/√exits``),
    inflate the slope variance by the reduced χ² when it exceeds 1 and use a
    normal interval (``_wls_line``).  Rows whose mean is
    undefined (all particles censored) are left out and counted in
    ``*_n_all_censored``.
    """
    need = {"alpha", "height", "width", "eps", "mean", "sweep"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"exit-time table lacks columns {sorted(missing)}")
    df = df.assign(_se=_log_se(df))
    df = df.assign(_sigma=_rows_sigma(df))
    elast = height_elasticities(df, level)
    rows = []
    for alpha, g in df.groupby("alpha", sort=True):
        eps_vals = g["eps"].unique()
        if eps_vals.size != 1:
            raise ValueError(f"alpha={alpha}: several eps values {eps_vals}; fit each eps apart")
        row: dict[str, Any] = dict(alpha=float(alpha), eps=float(eps_vals[0]))
        for sweep, key, log_x in (
            ("height", "height_slope", False),
            ("width", "width_exponent", True),
        ):
            s = g[g["sweep"] == sweep].sort_values(sweep)
            fit = _fit_sweep(s.assign(_x=s[sweep]), log_x, level)
            row.update(
                {
                    key: fit["slope"],
                    f"{key}_ci_low": fit["ci_low"],
                    f"{key}_ci_high": fit["ci_high"],
                    f"{key}_se": fit["se"],
                    f"{sweep}_red_chi2": fit["red_chi2"],
                    f"{sweep}_n": fit["n"],
                    f"{sweep}_n_all_censored": int((~np.isfinite(s["mean"])).sum()),
                    f"{sweep}_sigma_max": float(s["_sigma"].max()) if len(s) else np.nan,
                }
            )
        row.update(_top_of_height_sweep(g, elast[elast["alpha"] == alpha]))
        row["height_slope_theory"] = np.nan
        hs = g[g["sweep"] == "height"]
        if alpha == 2.0 and hs["height"].nunique() >= 2:
            exact = [
                brownian_mean_exit_time(h, w, row["eps"])
                for h, w in zip(hs["height"], hs["width"], strict=True)
            ]
            row["height_slope_theory"] = float(np.polyfit(hs["height"], np.log(exact), 1)[0])
        row["width_exponent_theory"] = float(alpha)
        row["level"] = level
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts


def _need_keys(thresholds: Mapping[str, float], keys: Sequence[str], claim: str) -> None:
    missing = [k for k in keys if k not in thresholds]
    if missing:
        raise KeyError(f"{claim} thresholds lack {missing}; give all of {list(keys)}")


def _three_way(passes: bool, fails: bool) -> str:
    return "pass" if passes else ("fail" if fails else "unclear")


def _combine(states: Sequence[str]) -> str:
    if "fail" in states:
        return "not supported"
    if all(s == "pass" for s in states):
        return "supported"
    return "inconclusive"


def _finish(
    states: Sequence[str], notes: Sequence[str], fixes: Sequence[str], what: str, reason: str
) -> tuple[str, str]:
    """Verdict string and detail: the statistic sentence, the notes, what would decide."""
    verdict = _combine(states)
    detail = what + " " + "; ".join(notes) + "."
    if verdict == "inconclusive":
        verdict = f"inconclusive ({reason})"
        todo = sorted(set(fixes))
        detail += " To decide: " + "; ".join(todo) + "." if todo else ""
    return verdict, detail


def _num(x: float) -> float | None:
    """``x`` as a float, or None (JSON null) when it is not finite."""
    return float(x) if x is not None and np.isfinite(x) else None


def _interval_state(lo: float, hi: float, inside: tuple[float, float]) -> str:
    """pass if ``[lo, hi]`` lies inside ``inside``, fail if disjoint from it, else unclear."""
    if not np.isfinite([lo, hi]).all():
        return "unclear"
    a, b = inside
    return _three_way(a <= lo and hi <= b, hi < a or lo > b)


def _small_noise_state(
    lo: float,
    hi: float,
    inside: tuple[float, float],
    sigma: float,
    max_sigma: float,
    key: str,
    fixes: list[str],
) -> str:
    """:func:`_interval_state` of ``[lo, hi]`` where the effective noise ``sigma`` is within
    ``max_sigma`` (else unclear); appends to ``fixes`` the setting that would decide it."""
    if not sigma <= max_sigma:
        fixes.append(f"raise {key} (effective noise above dynamics.c4.max_sigma)")
        return "unclear"
    st = _interval_state(lo, hi, inside)
    if st == "unclear":
        fixes.append("raise dynamics.particles (narrower intervals)")
    return st


def _c4_levy_states(
    r: pd.Series, emax: float, tol: float, smax: float
) -> tuple[list[str], list[str], list[str]]:
    """States, notes and fixes of one α < 2 row of the C4 slope table."""
    a = float(r["alpha"])
    states, notes, fixes = [], [], []
    lo, hi = float(r["height_elasticity_ci_low"]), float(r["height_elasticity_ci_high"])
    sig = float(r["height_elasticity_sigma"])
    st = _small_noise_state(lo, hi, (-emax, emax), sig, smax, "dynamics.levy_heights", fixes)
    states.append(st)
    notes.append(
        f"alpha={a:g} height elasticity {r['height_elasticity']:.3g} [{lo:.3g}, "
        f"{hi:.3g}] at sigma<={sig:.3g} vs |e|<={emax:g}: {st}"
    )
    lo, hi = float(r["width_exponent_ci_low"]), float(r["width_exponent_ci_high"])
    sig = float(r["width_sigma_max"])
    st = _small_noise_state(lo, hi, (a - tol, a + tol), sig, smax, "dynamics.height_fixed", fixes)
    states.append(st)
    notes.append(
        f"alpha={a:g} width exponent {r['width_exponent']:.3g} [{lo:.3g}, {hi:.3g}] "
        f"at sigma<={sig:.3g} vs {a:g}±{tol:g}: {st}"
    )
    return states, notes, fixes


def claim_c4_verdict(slopes: pd.DataFrame, thresholds: Mapping[str, float]) -> dict[str, Any]:
    """Verdict on C4 from the table of :func:`fit_exit_slopes`.

    Thresholds (all required): ``brownian_min_height_slope`` (per energy unit),
    ``levy_max_height_elasticity``, ``width_exponent_tolerance``, ``max_sigma``.
    Conditions, each judged on an interval:

    1. Brownian exponential growth: the α = 2 slope of ``log τ`` on ``H`` has
       its interval above ``brownian_min_height_slope`` (pass) or below (fail).
    2. Lévy height independence, each α < 2: the elasticity ``d log τ/d log H``
       between the two largest heights has its interval inside
       ``±levy_max_height_elasticity`` (pass) or entirely outside (fail).
    3. Lévy polynomial width law, each α < 2: the interval of the exponent of
       ``τ`` in ``W`` lies inside ``α ± width_exponent_tolerance`` (pass) or
       entirely outside (fail).

    Conditions 2 and 3 are statements about the small-noise limit: they are
    judged only where the effective noise (:func:`effective_noise`) of every
    point used is at most ``max_sigma``; elsewhere they are "unclear" and the
    detail names the setting that lowers σ.  Any fail → "not supported", all
    pass → "supported", otherwise "inconclusive (reason)".  ``value`` is the
    α < 2 elasticity largest in absolute value, ``ci_low/ci_high`` its interval.
    """
    keys = [
        "brownian_min_height_slope",
        "levy_max_height_elasticity",
        "width_exponent_tolerance",
        "max_sigma",
    ]
    _need_keys(thresholds, keys, "C4")
    need = {
        "alpha",
        "height_slope",
        "height_slope_ci_low",
        "height_slope_ci_high",
        "height_elasticity",
        "height_elasticity_ci_low",
        "height_elasticity_ci_high",
        "height_elasticity_sigma",
        "width_exponent",
        "width_exponent_ci_low",
        "width_exponent_ci_high",
        "width_sigma_max",
    }
    if need - set(slopes.columns):
        raise ValueError(f"slope table lacks columns {sorted(need - set(slopes.columns))}")
    b = slopes[slopes["alpha"] == 2.0]
    levy = slopes[slopes["alpha"] < 2.0]
    if len(b) != 1:
        raise ValueError(f"C4 needs exactly one alpha = 2 (Brownian) row, found {len(b)}")
    if levy.empty:
        raise ValueError("C4 needs at least one alpha < 2 row")
    b = b.iloc[0]
    bmin = float(thresholds["brownian_min_height_slope"])
    blo, bhi = float(b["height_slope_ci_low"]), float(b["height_slope_ci_high"])
    st = _interval_state(blo, bhi, (bmin, math.inf))
    states, fixes = [st], ["raise dynamics.particles (narrower intervals)"] * (st == "unclear")
    notes = [
        f"alpha=2 height slope {b['height_slope']:.3g} [{blo:.3g}, {bhi:.3g}] vs min {bmin:g}: {st}"
    ]
    for _, r in levy.iterrows():
        s, n, f = _c4_levy_states(
            r,
            float(thresholds["levy_max_height_elasticity"]),
            float(thresholds["width_exponent_tolerance"]),
            float(thresholds["max_sigma"]),
        )
        states, notes, fixes = states + s, notes + n, fixes + f
    worst = (
        levy.loc[levy["height_elasticity"].abs().idxmax()]
        if levy["height_elasticity"].notna().any()
        else levy.iloc[0]
    )
    regime = any("max_sigma" in f for f in fixes)
    verdict, detail = _finish(
        states,
        notes,
        fixes,
        "Statistic: for alpha < 2, the elasticity d log(mean exit time)/d log(height) between "
        "the two largest simulated heights (0 in the eps -> 0 limit), with the width exponent "
        "and the Brownian slope of log(mean exit time) on height as further conditions.",
        "not in the small-noise regime" if regime else "intervals overlap thresholds",
    )
    return dict(
        verdict=verdict,
        statistic="d log tau / d log H at the largest heights, the alpha < 2 value largest in size",
        value=_num(worst["height_elasticity"]),
        ci_low=_num(worst["height_elasticity_ci_low"]),
        ci_high=_num(worst["height_elasticity_ci_high"]),
        detail=detail,
    )


# --------------------------------------------------------------------------- paths


def sample_paths(
    alphas: Iterable[float],
    n_steps: int,
    dt: float,
    eps: float,
    rng: np.random.Generator,
    *,
    n_paths: int = 1,
    x0: float = 0.0,
    height: float | None = None,
    width: float | None = None,
    width_right: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample paths of ``eps·L_t`` (free) or of ``dX = -U'dt + eps·dL`` (in a potential).

    Free Lévy motion when ``height`` is None: ``X_k = x0 + eps·Σ dt^{1/α} S_j``.
    With ``height`` and ``width`` (and optionally ``width_right`` for an
    asymmetric well, figure 3) the "split" scheme of the module docstring is
    used; paths are not stopped at the barrier.

    Returns ``(t, paths)``: times ``k·dt`` (time units), shape ``(n_steps+1,)``,
    and positions (position units), shape ``(len(alphas), n_paths, n_steps+1)``.
    """
    alphas = [_check_alpha(a) for a in alphas]
    n_steps, n_paths = int(n_steps), int(n_paths)
    if n_steps < 1 or n_paths < 1:
        raise ValueError(f"n_steps and n_paths must be >= 1, got {n_steps}, {n_paths}")
    if not (np.isfinite(dt) and dt > 0) or not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"need dt > 0 and eps >= 0, got dt={dt}, eps={eps}")
    t = dt * np.arange(n_steps + 1)
    out = np.empty((len(alphas), n_paths, n_steps + 1))
    out[:, :, 0] = x0
    if height is None:
        for i, a in enumerate(alphas):
            inc = eps * dt ** (1.0 / a) * sas_increments(a, (n_paths, n_steps), rng)
            out[i, :, 1:] = x0 + np.cumsum(inc, axis=1)
        return t, out
    if width is None:
        raise ValueError("give width together with height")
    _check_well(height, width)
    wr = width if width_right is None else float(width_right)
    _check_well(height, wr)
    dec_l = np.exp(-8.0 * height * dt / width**2)
    dec_r = np.exp(-8.0 * height * dt / wr**2)
    for i, a in enumerate(alphas):
        x = np.full(n_paths, float(x0))
        scale = eps * dt ** (1.0 / a)
        for k in range(1, n_steps + 1):
            x = _drift_flow(x, dec_l, dec_r, width, wr) + scale * sas_increments(a, n_paths, rng)
            out[i, :, k] = x
    return t, out


# --------------------------------------------------------------------------- C5: jumps


#: Run statuses (results/tables/runs.csv) whose noise does not count for C5 (SGD): the
#: statuses of :data:`sgdtail.aggregate.EXCLUDED_STATUSES` (any status not known to be usable
#: is left out too).
EXCLUDED_STATUSES: tuple[str, ...] = tuple(AGGREGATE_EXCLUDED)

SHARE_COLUMNS = [
    "noise",
    "family",
    "alpha",
    "df",
    "window",
    "share",
    "share_ci_low",
    "share_ci_high",
    "log_se",
    "n_paths",
    "auc_vs_gaussian",
    "auc_se",
]


def noise_list(alphas: Iterable[float], student_df: float | None) -> list[dict[str, Any]]:
    """The noises of the C5 check: SαS for each α (α = 2: Gaussian), then Student t(df).

    Each entry: ``noise`` (label), ``family`` (``stable``, ``gaussian`` or
    ``student_t``), ``alpha`` (NaN for t) and ``df`` (NaN for SαS).
    """
    out = []
    for a in sorted({_check_alpha(a) for a in alphas}):
        fam = "gaussian" if a == 2.0 else "stable"
        out.append(
            dict(
                noise="Gaussian" if a == 2.0 else f"SaS({a:g})",
                family=fam,
                alpha=a,
                df=float("nan"),
            )
        )
    if student_df is not None:
        if not (np.isfinite(student_df) and student_df > 2):
            raise ValueError(f"student_df must be > 2 (finite variance), got {student_df!r}")
        out.append(
            dict(
                noise=f"t({student_df:g})",
                family="student_t",
                alpha=float("nan"),
                df=float(student_df),
            )
        )
    return out


def draw_increments(
    size: int | tuple[int, ...], rng: np.random.Generator, noise: Mapping[str, Any]
) -> np.ndarray:
    """I.i.d. draws of one :func:`noise_list` entry: SαS(1) (:func:`sas_increments`) or t(df)."""
    if noise["family"] == "student_t":
        return rng.standard_t(float(noise["df"]), size)
    return sas_increments(float(noise["alpha"]), size, rng)


def largest_step_share(increments: np.ndarray) -> np.ndarray:
    """Largest single step over the range of the walk, one value per row.

    Row ``(ΔX_1, …, ΔX_n)`` defines the walk ``X_0 = 0``, ``X_k = ΔX_1 + … + ΔX_k``;
    the statistic is ``max_k |ΔX_k| / (max_k X_k - min_k X_k)`` (``k = 0 … n``),
    in ``[1/n, 1]`` and scale-free.  For a Lévy motion with α < 2 both the
    largest jump and the range grow like ``n^{1/α}``, so its law tends to a
    non-degenerate limit: flat in ``n``.  With finite variance the range
    grows like ``√n`` and the largest step more slowly (``√(2 log n)`` for
    Gaussian steps, ``n^{1/ν}`` for Student t(ν)), so it falls to 0.
    """
    inc = np.atleast_2d(np.asarray(increments, dtype=float))
    if inc.ndim != 2 or inc.shape[1] < 1:
        raise ValueError(f"increments must be 1-D or 2-D with >= 1 step, got {inc.shape}")
    if not np.isfinite(inc).all():
        raise ValueError("increments contain NaN or inf")
    walk = np.cumsum(inc, axis=1)
    span = np.maximum(walk.max(axis=1), 0.0) - np.minimum(walk.min(axis=1), 0.0)
    if np.any(span == 0):
        raise ValueError("a walk with all steps 0 has no range")
    return np.abs(inc).max(axis=1) / span


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Median with its distribution-free order-statistic interval (normal approximation).

    For ``k`` values sorted ``v_(0) ≤ … ≤ v_(k-1)`` the interval is
    ``[v_(j), v_(u)]``, ``j = ⌊k/2 - z√k/2⌋``, ``u = ⌈k/2 + z√k/2⌉`` (clipped to
    the sample), ``z`` the two-sided normal quantile of ``level``.
    """
    v = np.sort(np.asarray(values, dtype=float))
    k = v.size
    if k == 0:
        raise ValueError("no values")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    j = max(int(math.floor(k / 2 - z * math.sqrt(k) / 2)), 0)
    u = min(int(math.ceil(k / 2 + z * math.sqrt(k) / 2)), k - 1)
    return float(np.median(v)), float(v[j]), float(v[u])


def auc(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``A = P(X > Y) + P(X = Y)/2`` from two samples, with Hanley–McNeil (1982) s.e.

    ``A = U/(m n)`` (Mann–Whitney U of ``x``);
    ``se² = [A(1-A) + (m-1)(Q1-A²) + (n-1)(Q2-A²)]/(m n)``, ``Q1 = A/(2-A)``,
    ``Q2 = 2A²/(1+A)``.  ``A = 0.5``: the two samples cannot be told apart.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    m, n = x.size, y.size
    a = float(stats.mannwhitneyu(x, y).statistic / (m * n))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)
    return a, float(math.sqrt(max(var, 0.0)))


def _shares_of(
    noise: Mapping[str, Any], n_paths: int, window: int, rng: np.random.Generator
) -> np.ndarray:
    """:func:`largest_step_share` of ``n_paths`` independent walks of ``window`` steps."""
    rows = max(1, (1 << 22) // window)  # about 32 MiB of increments per draw
    parts = []
    for start in range(0, n_paths, rows):
        k = min(rows, n_paths - start)
        parts.append(largest_step_share(draw_increments((k, window), rng, noise)))
    return np.concatenate(parts)


def jump_share_table(
    alphas: Iterable[float],
    windows: Iterable[int],
    n_paths: int,
    rng: np.random.Generator,
    *,
    student_df: float | None = 3.0,
    level: float = 0.95,
) -> pd.DataFrame:
    """:func:`largest_step_share` against the window length, per noise of :func:`noise_list`.

    Every (noise, window) gets its own ``n_paths`` independent walks of
    ``window`` steps, so the rows are independent of one another.  Per row:
    ``share`` = median over the walks with its order-statistic interval
    (:func:`median_interval`), ``log_se = (log ci_high - log ci_low)/(2z)``,
    and ``auc_vs_gaussian`` = :func:`auc` of the noise's values against the
    Gaussian's at the same window (0.5: indistinguishable; needs α = 2 in
    ``alphas``).  Columns: :data:`SHARE_COLUMNS`.
    """
    noises = noise_list(alphas, student_df)
    if not any(nz["family"] == "gaussian" for nz in noises):
        raise ValueError("alphas must include 2.0 (the Gaussian reference)")
    n_paths = int(n_paths)
    if n_paths < 10:
        raise ValueError(f"n_paths must be >= 10, got {n_paths}")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    rows = []
    for n in sorted({int(w) for w in windows}):
        if n < 2:
            raise ValueError(f"windows must be >= 2 steps, got {n}")
        shares = {nz["noise"]: _shares_of(nz, n_paths, n, rng) for nz in noises}
        gauss = shares["Gaussian"]
        for nz in noises:
            v = shares[nz["noise"]]
            med, lo, hi = median_interval(v, level)
            a, a_se = auc(v, gauss)
            rows.append(
                dict(
                    nz,
                    window=n,
                    share=med,
                    share_ci_low=lo,
                    share_ci_high=hi,
                    log_se=(math.log(hi) - math.log(lo)) / (2 * z),
                    n_paths=n_paths,
                    auc_vs_gaussian=a,
                    auc_se=a_se,
                )
            )
    return pd.DataFrame(rows, columns=SHARE_COLUMNS)


def fit_jump_share_slopes(table: pd.DataFrame, long_from: int, level: float = 0.95) -> pd.DataFrame:
    """Per noise: log-log slope of the median share on the window over windows ≥ ``long_from``.

    WLS of ``log share`` on ``log window`` with weights ``1/log_se²`` (rows are
    independent walks, see :func:`jump_share_table`), interval from
    ``_wls_line``.  Asymptotes: 0 for SαS with α < 2, ``-1/2 + 1/ν`` for
    t(ν), ``-1/2`` (up to a log) for Gaussian.  Also the shortest window's
    ``auc_vs_gaussian`` with a normal ``level`` interval.
    Columns: ``noise, family, alpha, df, slope, slope_ci_low, slope_ci_high,
    slope_se, n_long, short_window, short_auc, short_auc_ci_low, short_auc_ci_high``.
    """
    need = {
        "noise",
        "family",
        "alpha",
        "df",
        "window",
        "share",
        "log_se",
        "auc_vs_gaussian",
        "auc_se",
    }
    if need - set(table.columns):
        raise ValueError(f"jump-share table lacks columns {sorted(need - set(table.columns))}")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    rows = []
    for name, g in table.groupby("noise", sort=False):
        g = g.sort_values("window")
        long = g[g["window"] >= long_from]
        fit = _wls_line(
            np.log(long["window"].to_numpy(float)),
            np.log(long["share"].to_numpy(float)),
            long["log_se"].to_numpy(float),
            level,
        )
        first = g.iloc[0]
        a, a_se = float(first["auc_vs_gaussian"]), float(first["auc_se"])
        rows.append(
            dict(
                noise=name,
                family=first["family"],
                alpha=first["alpha"],
                df=first["df"],
                slope=fit["slope"],
                slope_ci_low=fit["ci_low"],
                slope_ci_high=fit["ci_high"],
                slope_se=fit["se"],
                n_long=int(len(long)),
                short_window=int(first["window"]),
                short_auc=a,
                short_auc_ci_low=a - z * a_se,
                short_auc_ci_high=a + z * a_se,
            )
        )
    return pd.DataFrame(rows)


def _c5_state(r: pd.Series, dmax: float, amax: float) -> tuple[list[str], list[str], list[str]]:
    """States, notes and fixes of one noise row of the C5 slope table."""
    lo, hi = float(r["slope_ci_low"]), float(r["slope_ci_high"])
    fix_n = "raise dynamics.paths.n_paths (narrower intervals)"
    fix_w = "add longer dynamics.paths.windows"
    if r["family"] != "stable":  # control: a finite-variance walk must show a falling share
        st = _interval_state(lo, hi, (-math.inf, -dmax))
        word = {"pass": "separates", "fail": "does not separate"}.get(st, "interval too wide")
        fixes = {"pass": [], "fail": [fix_w]}.get(st, [fix_n])
        note = (
            f"control {r['noise']} slope {r['slope']:.3g} [{lo:.3g}, {hi:.3g}] must be "
            f"< -{dmax:g}: {word}"
        )
        return ["pass" if st == "pass" else "unclear"], [note], fixes
    st = _interval_state(lo, hi, (-dmax, math.inf))
    states, fixes = [st], [fix_n] * (st == "unclear")
    notes = [f"{r['noise']} slope {r['slope']:.3g} [{lo:.3g}, {hi:.3g}] vs > -{dmax:g}: {st}"]
    alo, ahi = float(r["short_auc_ci_low"]), float(r["short_auc_ci_high"])
    st = _interval_state(alo, ahi, (1.0 - amax, amax))  # separable either way is not Gaussian
    states.append(st)
    fixes += [fix_n] * (st == "unclear")
    notes.append(
        f"{r['noise']} window-{int(r['short_window'])} AUC vs Gaussian "
        f"{r['short_auc']:.3g} [{alo:.3g}, {ahi:.3g}] vs within [{1 - amax:.3g}, "
        f"{amax:g}]: {st}"
    )
    return states, notes, fixes


def claim_c5_verdict(
    table: pd.DataFrame, thresholds: Mapping[str, float], long_from: int, level: float = 0.95
) -> dict[str, Any]:
    """Verdict on C5 (simulated paths) from a :func:`jump_share_table`.

    Thresholds (required): ``max_decay`` and ``max_short_auc``.  From
    :func:`fit_jump_share_slopes` (windows ≥ ``long_from``):

    1. Controls, Gaussian and t(ν): the slope interval must lie below
       ``-max_decay`` (a finite-variance walk's share falls); otherwise the
       statistic does not separate them at these windows → "unclear".
    2. Long windows, each α < 2: slope interval above ``-max_decay`` (the
       largest jump keeps its share of the range: pass), below (fail).
    3. Short windows, each α < 2: the AUC of its shares against the
       Gaussian's at the shortest window has its normal interval below
       ``max_short_auc`` (hard to tell from Gaussian: pass) or above (fail).

    Any fail → "not supported", all pass → "supported", else
    "inconclusive (reason)".  ``value``: the smallest α < 2 slope, with its
    interval.
    """
    _need_keys(thresholds, ["max_decay", "max_short_auc"], "C5")
    dmax, amax = float(thresholds["max_decay"]), float(thresholds["max_short_auc"])
    s = fit_jump_share_slopes(table, long_from, level)
    fams = set(s["family"])
    if not {"gaussian", "student_t", "stable"} <= fams:
        raise ValueError("C5 needs Gaussian, Student-t and at least one alpha < 2 noise")
    states, notes, fixes = [], [], []
    for _, r in s.iterrows():
        st, nt, fx = _c5_state(r, dmax, amax)
        states, notes, fixes = states + st, notes + nt, fixes + fx
    levy = s[s["family"] == "stable"]
    worst = levy.loc[levy["slope"].idxmin()] if levy["slope"].notna().any() else levy.iloc[0]
    ctrl_bad = any(n.startswith("control") and "does not" in n for n in notes)
    verdict, detail = _finish(
        states,
        notes,
        fixes,
        f"Statistic: the log-log slope, over windows of {long_from} or more steps, of the "
        "median share of the walk's range taken by its largest single step (0 for alpha < 2 "
        "stable noise, negative with finite variance), each window from its own independent "
        "walks, with the AUC against Gaussian walks at the shortest window.",
        "statistic does not separate finite variance"
        if ctrl_bad
        else "intervals overlap thresholds",
    )
    return dict(
        verdict=verdict,
        statistic=f"smallest alpha<2 slope of log median(largest step / range) on log window "
        f"(windows >= {long_from})",
        value=_num(worst["slope"]),
        ci_low=_num(worst["slope_ci_low"]),
        ci_high=_num(worst["slope_ci_high"]),
        detail=detail,
    )


def walk_paths(
    noises: Sequence[Mapping[str, Any]], n_steps: int, rng: np.random.Generator
) -> np.ndarray:
    """One walk ``X_0 = 0, X_k = ΔX_1 + … + ΔX_k`` per noise (unit scale), ``(len, n_steps+1)``.

    For SαS this is the free Lévy motion of :func:`sample_paths` at ``dt = 1``,
    ``eps = 1``.
    """
    out = np.zeros((len(noises), int(n_steps) + 1))
    for i, nz in enumerate(noises):
        out[i, 1:] = np.cumsum(draw_increments(int(n_steps), rng, nz))
    return out


# --------------------------------------------------------------------------- C5 on SGD


def _window_shares(x: np.ndarray, window: int) -> np.ndarray:
    """Shares of the non-overlapping windows of each row of 2-D ``x``, each window mean-centred."""
    k = x.shape[1] // window
    if k == 0:
        return np.empty(0)
    w = x[:, : k * window].reshape(-1, window)
    return largest_step_share(w - w.mean(axis=1, keepdims=True))


def sequence_shares(sequences: Sequence[np.ndarray], window: int) -> list[np.ndarray]:
    """Per sequence: :func:`largest_step_share` of each of its non-overlapping windows.

    Each window of ``window`` consecutive values, minus the window's own mean
    (so that a slow drift of the level along the sequence does not become a
    trend of the walk), is taken as the steps of a walk; a trailing remainder
    shorter than ``window`` is dropped, and a sequence shorter than ``window``
    gives no values.
    """
    window = int(window)
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    return [_window_shares(np.asarray(s, dtype=float)[None, :], window) for s in sequences]


def sgd_jump_share(
    sequences: Sequence[np.ndarray],
    window: int,
    rng: np.random.Generator,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
) -> dict[str, Any]:
    """Pooled median share over every window of every sequence, with a bootstrap interval.

    ``value``: median of all :func:`sequence_shares`.  Interval: percentile
    bootstrap resampling whole sequences with replacement (windows of one
    sequence stay together), ``n_boot`` replicates.
    """
    per = [v for v in sequence_shares(sequences, window) if v.size]
    n_win = int(sum(v.size for v in per))
    if not per:
        return dict(
            value=float("nan"),
            ci_low=float("nan"),
            ci_high=float("nan"),
            n_sequences=0,
            n_windows=0,
        )
    reps = np.empty(int(n_boot))
    for b in range(reps.size):
        pick = rng.integers(0, len(per), len(per))
        reps[b] = np.median(np.concatenate([per[i] for i in pick]))
    lo, hi = np.quantile(reps, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return dict(
        value=float(np.median(np.concatenate(per))),
        ci_low=float(lo),
        ci_high=float(hi),
        n_sequences=len(per),
        n_windows=n_win,
    )


def calibrate_jump_share(
    lengths: Sequence[int],
    window: int,
    rng: np.random.Generator,
    *,
    alphas: Iterable[float],
    student_df: float,
    n_rep: int = 200,
    level: float = 0.95,
) -> pd.DataFrame:
    """What :func:`sgd_jump_share`'s value is for i.i.d. noise of the same lengths.

    For each noise of :func:`noise_list` (absolute values, since noise norms
    are positive): ``n_rep`` times, one sequence of ``|noise|`` per entry of
    ``lengths``, pooled median share as in :func:`sgd_jump_share`.  Returns per
    noise the central ``level`` band and median of those replicates:
    ``noise, family, alpha, df, band_low, band_median, band_high, n_rep``
    (NaN bands when no length reaches ``window``).
    """
    counts = pd.Series(np.asarray(lengths, dtype=int)).value_counts().sort_index()
    counts = counts[counts.index >= window]
    rows = []
    for nz in noise_list(alphas, student_df):
        reps = np.full(int(n_rep) if len(counts) else 1, np.nan)
        for r in range(reps.size if len(counts) else 0):
            vals = [
                _window_shares(np.abs(draw_increments((int(c), int(n)), rng, nz)), window)
                for n, c in counts.items()
            ]
            reps[r] = np.median(np.concatenate(vals))
        lo, med, hi = np.quantile(reps, [0.5 - level / 2.0, 0.5, 0.5 + level / 2.0])
        rows.append(dict(nz, band_low=lo, band_median=med, band_high=hi, n_rep=int(n_rep)))
    return pd.DataFrame(rows)


def norm_sequences(
    norms: pd.DataFrame, runs: pd.DataFrame, split: str = "train", axes: Sequence[str] | None = None
) -> tuple[list[np.ndarray], dict[str, int]]:
    """Noise-norm sequences of the usable runs, one per run × checkpoint, in minibatch order.

    ``norms``: ``results/tables/noise_norms.parquet`` (grid axes, ``step, split,
    minibatch, norm``); ``runs``: ``results/tables/runs.csv`` (grid axes,
    ``status``).  Runs with a status in :data:`EXCLUDED_STATUSES` are left out
    and counted.  Returns the sequences (``split`` only) and counts
    ``runs, used, diverged, not_trained``.
    """
    from .grid import AXES

    axes = list(AXES if axes is None else axes)
    bad = ~usable(runs["status"])
    counts = {"runs": int(len(runs)), "used": int((~bad).sum())}
    counts.update({s: int((runs["status"] == s).sum()) for s in EXCLUDED_STATUSES})
    keep = runs.loc[~bad, axes]
    d = norms[norms["split"] == split].merge(keep, on=axes, how="inner")
    seqs = [
        g.sort_values("minibatch")["norm"].to_numpy(float)
        for _, g in d.groupby(axes + ["step"], sort=True)
    ]
    return seqs, counts


def claim_c5_sgd_verdict(
    sgd: Mapping[str, Any],
    bands: pd.DataFrame,
    counts: Mapping[str, int],
    window: int,
    min_windows: int,
) -> dict[str, Any]:
    """Verdict on C5 for SGD: the SGD share against the calibration bands.

    ``sgd`` from :func:`sgd_jump_share`, ``bands`` from
    :func:`calibrate_jump_share`.  Let ``u_t`` be the upper end of the t(ν)
    band and ``l_s`` the lower end of the band of the mildest stable noise
    (largest α < 2).  Fewer than ``min_windows`` SGD windows → inconclusive.
    Interval above ``u_t``: larger largest-step shares than finite-variance
    t(ν) sequences of the same lengths give → "supported".  Interval below
    ``l_s``: smaller than even the mildest stable noise → "not supported".
    Otherwise inconclusive; when ``u_t ≥ l_s`` the sequences are too short for
    the statistic to tell t(ν) from that stable noise.
    """
    t = bands[bands["family"] == "student_t"].iloc[0]
    s = bands[bands["family"] == "stable"].sort_values("alpha").iloc[-1]
    u_t, l_s = float(t["band_high"]), float(s["band_low"])
    lo, hi, n_win = float(sgd["ci_low"]), float(sgd["ci_high"]), int(sgd["n_windows"])
    what = (
        f"Statistic: median over windows of {window} consecutive minibatches (one "
        "checkpoint of one usable run each) of the share of the walk's range taken by "
        "its largest step, the walk's steps being the gradient-noise norms ||U_p|| minus "
        f"their window mean; compared with |{t['noise']}| and |{s['noise']}| sequences of "
        f"the same lengths ({t['noise']} band upper end {u_t:.3g}, {s['noise']} band lower end "
        f"{l_s:.3g})."
    )
    runs = (
        f"runs used {counts.get('used', 0)} of {counts.get('runs', 0)} (excluded: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in EXCLUDED_STATUSES)
        + ")"
    )
    note = f"SGD share {sgd['value']:.3g} [{lo:.3g}, {hi:.3g}] from {n_win} windows; {runs}"
    if n_win < min_windows:
        verdict = "inconclusive (too little SGD data)"
        note += (
            f". To decide: more usable runs or checkpoints, or a smaller "
            f"dynamics.sgd.window (needs >= {min_windows} windows)"
        )
    elif lo > u_t:
        verdict = "supported"
    elif hi < l_s:
        verdict = "not supported"
    elif u_t >= l_s:
        verdict = "inconclusive (sequences too short to separate)"
        note += (
            ". To decide: a larger dynamics.sgd.window, which needs more minibatches "
            "per checkpoint (a smaller batch size in the grid)"
        )
    else:
        verdict = "inconclusive (between finite-variance and stable bands)"
        note += ". To decide: more usable runs (a narrower SGD interval)"
    return dict(
        verdict=verdict,
        statistic=f"median largest-step share, windows of {window}",
        value=_num(sgd["value"]),
        ci_low=_num(lo),
        ci_high=_num(hi),
        detail=f"{what} {note}.",
    )


# --------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid")
    return plt, sns


def _save(fig, pdf: str | os.PathLike, png: str | os.PathLike | None) -> None:
    """Save ``fig`` to ``pdf`` and ``png``; ``png=None`` means ``pdf`` is a path stem."""
    from pathlib import Path

    from .io import atomic_path

    if png is None:
        stem = Path(pdf)
        pdf, png = stem.with_suffix(".pdf"), stem.with_suffix(".png")
    for path, kw in ((pdf, {}), (png, {"dpi": 200})):
        with atomic_path(path) as tmp:
            fig.savefig(
                tmp, format=Path(path).suffix.lstrip(".") or None, bbox_inches="tight", **kw
            )
    import matplotlib.pyplot as plt

    plt.close(fig)


def _alpha_palette(alphas: Sequence[float]) -> dict[float, Any]:
    _, sns = _plt()
    levy = sorted(a for a in alphas if a < 2.0)
    cols = dict(zip(levy, sns.color_palette("flare", max(len(levy), 1)), strict=False))
    cols[2.0] = (0.1, 0.1, 0.1)
    return cols


def _errorbar(ax, x, g: pd.DataFrame, col: str, color, label: str) -> None:
    """Points of ``g[col]`` with ``col_ci_low/high`` bars; all-censored rows as ▲ lower bounds."""
    m = g[col].to_numpy(float)
    lo, hi = g[f"{col}_ci_low"].to_numpy(float), g[f"{col}_ci_high"].to_numpy(float)
    ok = np.isfinite(m)
    ax.errorbar(
        x[ok],
        m[ok],
        yerr=np.vstack([m - lo, hi - m])[:, ok],
        color=color,
        marker="o",
        ms=4,
        capsize=2,
        label=label,
    )
    if (~ok).any():
        ax.plot(x[~ok], lo[~ok], "^", color=color, ms=6, label=f"{label}: all censored")


def _label(a: float) -> str:
    return "α = 2 (Brownian)" if a == 2.0 else f"α = {a:g}"


def _ci_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"ci_low": "mean_ci_low", "ci_high": "mean_ci_high"})


def plot_exit_time_vs_height(
    df: pd.DataFrame,
    pdf: str | os.PathLike,
    png: str | os.PathLike | None = None,
) -> Figure:
    """Mean exit time against barrier height, and its approach to the ε → 0 asymptote.

    Left: mean exit time (log) against ``H`` (log), one line per α, interval
    bars; dashed: the ``eps → 0`` asymptotes (Kramers for α = 2,
    Imkeller–Pavlyukevich for α < 2, flat in ``H``); dotted (α = 2): the exact
    Brownian mean exit time.  Right: ``mean/asymptote`` against the effective
    noise ``σ`` (:func:`effective_noise`) of every simulated point; the claim
    is about ``σ → 0``.  ``png=None``: ``pdf`` is a stem.
    """
    plt, _ = _plt()
    d = _ci_columns(df).sort_values(["alpha", "height"])
    if d.empty:
        raise ValueError("empty exit-time table")
    pal = _alpha_palette(sorted(d["alpha"].unique()))
    fig, (ax, ar) = plt.subplots(1, 2, figsize=(9.0, 3.9))
    h = d[d["sweep"] == "height"]
    for a, g in h.groupby("alpha"):
        x = g["height"].to_numpy(float)
        _errorbar(ax, x, g, "mean", pal[a], _label(a))
        eps, w = float(g["eps"].iloc[0]), float(g["width"].iloc[0])
        xf = np.geomspace(x.min(), x.max(), 60)
        ax.plot(
            xf,
            [small_noise_asymptote(a, hh, w, eps) for hh in xf],
            ls="--",
            lw=0.9,
            color=pal[a],
            alpha=0.8,
        )
        if a == 2.0:
            ax.plot(
                xf,
                [brownian_mean_exit_time(hh, w, eps) for hh in xf],
                ls=":",
                lw=1.0,
                color=pal[a],
                label="α = 2: exact mean (quadrature)",
            )
    for a, g in d.groupby("alpha"):
        _errorbar(ar, g["sigma"].to_numpy(float), g, "rho", pal[a], _label(a))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("barrier height H (energy units, log scale)")
    ax.set_ylabel("mean exit time (time units, log scale)")
    ax.set_title(
        f"W = {h['width'].iloc[0]:g}, ε = {h['eps'].iloc[0]:g}; bars: "
        f"{h['level'].iloc[0] * 100:.0f} % CI\ndashed: ε → 0 asymptotes",
        fontsize=9,
    )
    ax.legend(fontsize=7, frameon=True)
    from matplotlib.ticker import NullFormatter

    ar.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ar.set_xscale("log")
    ar.set_yscale("log")
    for axis in (ar.xaxis, ar.yaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ar.set_xlabel("effective noise σ = ε W^(2/α−1) H^(−1/α) (log scale)")
    ar.set_ylabel("mean / ε → 0 asymptote (log scale)")
    ar.set_title("approach to the asymptote as σ → 0\n(height and width sweeps)", fontsize=9)
    fig.tight_layout()
    _save(fig, pdf, png)
    return fig


def plot_exit_time_vs_width(
    df: pd.DataFrame,
    pdf: str | os.PathLike,
    png: str | os.PathLike | None = None,
) -> Figure:
    """Mean exit time against basin width (log-log), α < 2, with the ε → 0 asymptotes dashed.

    The asymptote ``π W^α/(Γ(α) sin(πα/2) eps^α)`` is a power law of exponent α.
    """
    plt, _ = _plt()
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    d = _ci_columns(df[df["sweep"] == "width"]).sort_values(["alpha", "width"])
    if d.empty:
        raise ValueError("no rows with sweep == 'width' in the exit-time table")
    pal = _alpha_palette(sorted(d["alpha"].unique()))
    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    for a, g in d.groupby("alpha"):
        x = g["width"].to_numpy(float)
        _errorbar(ax, x, g, "mean", pal[a], _label(a))
        xf = np.geomspace(x.min(), x.max(), 40)
        ax.plot(
            xf,
            [levy_mean_exit_time_asymptotic(a, w, float(g["eps"].iloc[0])) for w in xf],
            ls="--",
            lw=0.9,
            color=pal[a],
            alpha=0.8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(d["width"].unique())))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("basin half-width W (position units, log scale)")
    ax.set_ylabel("mean exit time (time units, log scale)")
    ax.set_title(
        f"H = {d['height'].iloc[0]:g}, ε = {d['eps'].iloc[0]:g}, σ ≤ "
        f"{d['sigma'].max():.2g}; bars: {d['level'].iloc[0] * 100:.0f} % CI\n"
        "dashed: ε → 0 asymptote ∝ W^α",
        fontsize=9,
    )
    ax.legend(fontsize=7, frameon=True)
    _save(fig, pdf, png)
    return fig


def _noise_colors(labels: Sequence[str]) -> dict[str, Any]:
    _, sns = _plt()
    levy = [lab for lab in labels if lab.startswith("SaS")]
    cols = dict(zip(levy, sns.color_palette("flare", max(len(levy), 1)), strict=False))
    cols["Gaussian"] = (0.1, 0.1, 0.1)
    cols.update({lab: (0.15, 0.45, 0.75) for lab in labels if lab.startswith("t(")})
    return cols


def plot_levy_vs_brownian_paths(
    paths: np.ndarray,
    labels: Sequence[str],
    shares: pd.DataFrame,
    pdf: str | os.PathLike,
    png: str | os.PathLike | None = None,
    zoom_steps: int | None = None,
) -> Figure:
    """Figure 2 (right): one walk per noise, a zoom on its first steps, and the C5 statistic.

    ``paths``: ``(len(labels), n+1)`` walks (:func:`walk_paths`); ``labels``
    their :func:`noise_list` names; ``shares``: a :func:`jump_share_table`.
    Left column: the whole walk, the zoomed steps shaded.  Middle: the first
    ``zoom_steps`` steps (default ``n/100``) on the *same* y-axis as the whole
    walk.  Right: median share of the range taken by the largest step against
    the window (log-log), with intervals, for every noise.
    """
    plt, _ = _plt()
    p = np.asarray(paths, dtype=float)
    if p.ndim != 2 or p.shape[0] != len(labels):
        raise ValueError(f"paths shape {p.shape} does not match {len(labels)} labels")
    n = p.shape[1] - 1
    zoom = max(int(zoom_steps or n // 100), 2)
    k = np.arange(n + 1)
    cols = _noise_colors(list(labels))
    fig = plt.figure(figsize=(10.0, 1.5 * len(labels) + 0.9))
    gs = fig.add_gridspec(len(labels), 3, width_ratios=[2.0, 1.0, 1.6], wspace=0.45)
    for i, lab in enumerate(labels):
        ax = fig.add_subplot(gs[i, 0])
        az = fig.add_subplot(gs[i, 1], sharey=ax)
        ax.plot(k, p[i], lw=0.5, color=cols[lab])
        ax.axvspan(0, zoom, color="0.85", zorder=0)
        az.plot(k[: zoom + 1], p[i, : zoom + 1], lw=0.8, color=cols[lab])
        ax.set_ylabel(f"{lab}\nX_k", fontsize=8)
        if i == 0:
            ax.set_title(f"whole walk, {n} steps", fontsize=9)
            az.set_title(f"first {zoom} steps, same y-scale", fontsize=9)
        if i == len(labels) - 1:
            ax.set_xlabel("step k")
            az.set_xlabel("step k")
    ar = fig.add_subplot(gs[:, 2])
    for lab, g in shares.groupby("noise", sort=False):
        g = g.sort_values("window")
        m = g["share"].to_numpy(float)
        err = np.vstack([m - g["share_ci_low"], g["share_ci_high"] - m])
        ar.errorbar(
            g["window"],
            m,
            yerr=err,
            color=cols.get(lab, "0.5"),
            marker="o",
            ms=3,
            capsize=2,
            label=lab,
        )
    ar.set_xscale("log")
    ar.set_yscale("log")
    ar.set_xlabel("window (steps, log scale)")
    ar.set_ylabel("median largest step / range (log scale)")
    ar.set_title("C5 statistic: flat for α < 2,\nfalling with finite variance", fontsize=9)
    ar.legend(fontsize=7)
    fig.suptitle("Walks of i.i.d. SαS, Gaussian and Student-t steps (unit scale)", fontsize=10)
    _save(fig, pdf, png)
    return fig


def plot_stable_densities(
    alphas: Sequence[float], pdf: str | os.PathLike, png: str | os.PathLike | None = None
) -> Figure:
    """Figure 2 (left): SαS(1) densities, linear panel and log-log tail panel.

    Densities from ``scipy.stats.levy_stable(alpha, 0).pdf``; α = 2 (Gaussian,
    variance 2) is always drawn as the reference.  The tail panel shows
    ``p(x) ~ α c x^{-1-α}`` power laws against the Gaussian's ``exp(-x²/4)``.
    """
    plt, _ = _plt()
    alphas = sorted({_check_alpha(a) for a in alphas} | {2.0})
    pal = _alpha_palette(alphas)
    x_lin = np.linspace(-6, 6, 241)
    x_tail = np.logspace(-1, 2, 61)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    for a in alphas:
        dist = stats.levy_stable(a, 0.0)
        lab = "α = 2 (Gaussian)" if a == 2.0 else f"α = {a:g}"
        a1.plot(x_lin, dist.pdf(x_lin), color=pal[a], label=lab)
        dens = stats.norm(scale=math.sqrt(2)).pdf(x_tail) if a == 2.0 else dist.pdf(x_tail)
        ok = dens > 1e-300
        a2.plot(x_tail[ok], dens[ok], color=pal[a], label=lab)
    a1.set_xlabel("x (dimensionless)")
    a1.set_ylabel("density p(x)")
    a1.set_title("SαS(1) densities", fontsize=9)
    a1.legend(fontsize=7)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_ylim(1e-8, 1)
    a2.set_xlabel("x (dimensionless, log scale)")
    a2.set_ylabel("density p(x) (log scale)")
    a2.set_title("tails: power law x^(-1-α) vs Gaussian", fontsize=9)
    fig.tight_layout()
    _save(fig, pdf, png)
    return fig


def plot_metastability(
    pdf: str | os.PathLike,
    png: str | os.PathLike | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Figure 3 (:func:`metastability_figure`, keyword arguments its own) saved to ``pdf``
    and ``png``; returns its summary dict."""
    fig, info = metastability_figure(**kwargs)
    _save(fig, pdf, png)
    return info


def metastability_figure(
    *,
    alpha: float = 1.2,
    height: float = 1.0,
    width_narrow: float = 0.5,
    width_wide: float = 2.0,
    eps: float = 0.35,
    dt: float = 0.005,
    n_steps: int = 20000,
    n_candidates: int = 64,
    seed: int = 0,
) -> tuple[Figure, dict[str, Any]]:
    """Figure 3: narrow versus wide basin, escape by a jump (Lévy) vs staying (Brownian).

    Potential ``U = H((x/W)² - 1)²`` with ``W = width_narrow`` for ``x < 0`` and
    ``width_wide`` for ``x > 0`` (same depth ``H``).  ``n_candidates`` Lévy and
    Brownian paths are simulated from the narrow minimum with
    :func:`sample_paths`; the Lévy path shown is the first whose first exit from
    the narrow basin is one step that crosses 0 from inside ``x < -W_n/2``
    (a jump), the Brownian path is the first candidate.  Everything shown is
    simulated.  Panels: the potential; the Lévy path; the Brownian path; the
    fraction of time spent in the wide basin over all candidates.  A jump that
    lands beyond ``W_wide/4`` is preferred, any crossing jump otherwise; if no
    candidate escapes by a jump, path 0 is shown and ``jump_time`` is None.

    Returns the Figure (not saved) and a summary dict (fraction of time in the
    wide basin per noise, index and time of the jump shown).
    """
    plt, _ = _plt()
    rng = np.random.default_rng(seed)
    t, paths = sample_paths(
        [alpha, 2.0],
        n_steps,
        dt,
        eps,
        rng,
        n_paths=n_candidates,
        x0=-width_narrow,
        height=height,
        width=width_narrow,
        width_right=width_wide,
    )
    lev, bro = paths[0], paths[1]
    pick, jump_k = 0, None
    for land in (0.25 * width_wide, 0.0):  # prefer a jump that lands well inside
        for j in range(n_candidates):
            out = np.nonzero(lev[j] >= 0)[0]
            if out.size and lev[j, out[0] - 1] < -0.5 * width_narrow and lev[j, out[0]] > land:
                pick, jump_k = j, int(out[0])
                break
        if jump_k is not None:
            break
    frac = {f"alpha={alpha:g}": float((lev > 0).mean()), "alpha=2": float((bro > 0).mean())}

    fig = plt.figure(figsize=(8.5, 5.2))
    gs = fig.add_gridspec(2, 2, width_ratios=[1, 2.6], hspace=0.55, wspace=0.3)
    ax_u = fig.add_subplot(gs[0, 0])
    xs = np.linspace(-1.6 * width_narrow, 1.4 * width_wide, 400)
    ax_u.plot(xs, potential(xs, height, width_narrow, width_wide), color="k")
    ax_u.axvline(0, color="0.5", ls=":", lw=0.8)
    ax_u.set_ylim(0, 2.0 * height)
    ax_u.set_xlabel("x (position units)")
    ax_u.set_ylabel("U(x) (energy units)")
    ax_u.set_title("narrow (x < 0) and wide (x > 0)\nbasins, same depth H", fontsize=8)
    pal = _alpha_palette([alpha, 2.0])
    ax_b = None
    for row, (p, a, lab) in enumerate(
        ((lev[pick], alpha, f"Lévy, α = {alpha:g}"), (bro[0], 2.0, "Brownian, α = 2"))
    ):
        ax = fig.add_subplot(gs[row, 1], sharex=ax_b)
        ax.plot(t, np.clip(p, xs[0], xs[-1]), lw=0.5, color=pal[a])
        ax.axhline(0, color="0.5", ls=":", lw=0.8)
        ax.axhline(-width_narrow, color="0.6", lw=0.6, ls="--")
        ax.axhline(width_wide, color="0.6", lw=0.6, ls="--")
        ax.set_ylim(xs[0], xs[-1])
        ax.set_ylabel(f"{lab}\nposition X(t)", fontsize=8)
        if row == 0 and jump_k is not None:
            ax.plot(
                [t[jump_k - 1], t[jump_k]],
                [p[jump_k - 1], p[jump_k]],
                color="tab:blue",
                lw=1.6,
                marker="o",
                ms=3,
            )
            ax.annotate(
                "escape from the narrow basin in one jump",
                xy=(t[jump_k], 0.5 * (p[jump_k - 1] + p[jump_k])),
                xytext=(0.55, 0.45),
                textcoords="axes fraction",
                fontsize=8,
                arrowprops=dict(arrowstyle="->", lw=0.8, color="tab:blue"),
            )
        ax_b = ax
    ax_b.set_xlabel("time t (time units)")
    ax_f = fig.add_subplot(gs[1, 0])
    ax_f.bar([f"α = {alpha:g}", "α = 2"], list(frac.values()), color=[pal[alpha], pal[2.0]])
    ax_f.set_ylim(0, 1)
    ax_f.set_ylabel("fraction of time\nin the wide basin", fontsize=8)
    ax_f.set_title(f"{n_candidates} paths each, start in narrow basin", fontsize=8)
    fig.suptitle(
        f"Metastability: H = {height:g}, W = {width_narrow:g} vs {width_wide:g}, ε = {eps:g}",
        fontsize=10,
    )
    return fig, dict(
        frac_time_wide=frac, levy_path=pick, jump_time=None if jump_k is None else float(t[jump_k])
    )
