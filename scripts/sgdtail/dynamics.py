"""Lévy-driven versus Brownian dynamics in a 1-D double well: simulation and theory.

The simulations behind claims C4 and C5 (exit times from a well, walks of
i.i.d. steps and their largest-step share, the i.i.d. calibration of that
share for sequences as long as the measured noise-norm sequences) and the
exit-time asymptotes they are compared with.  The fits and verdicts of C4 and
C5 are in :mod:`sgdtail.dynamics_claims`, the figures in
:mod:`sgdtail.plots_dynamics`.

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
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

log = logging.getLogger(__name__)

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


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float, checked to lie in (0, 2] (the stable indices)."""
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
    alpha = check_alpha(alpha)
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
    alpha = check_alpha(alpha)
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
    alpha = check_alpha(alpha)
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
    alpha = check_alpha(alpha)
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
    alpha = check_alpha(alpha)
    h = np.asarray(height, dtype=float)
    w = np.asarray(width, dtype=float)
    out = eps * w ** (2.0 / alpha - 1.0) * h ** (-1.0 / alpha)
    return float(out) if out.ndim == 0 else out


def small_noise_asymptote(alpha: float, height: float, width: float, eps: float) -> float:
    """The ``eps → 0`` asymptote of the mean exit time (time units).

    α < 2: :func:`levy_mean_exit_time_asymptotic` (no ``H`` in it); α = 2:
    :func:`kramers_mean_exit_time`.
    """
    if check_alpha(alpha) == 2.0:
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


#: Chunks the particles of :func:`exit_time_sweep` are dealt into, one seed each (the most
#: processes the sweep uses).
SIM_CHUNKS: int = 4


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
    n_jobs = max(1, min(int(n_jobs), os.cpu_count() or 1, SIM_CHUNKS))
    # SIM_CHUNKS interleaved chunks, each with its own seed (so the particles do not depend
    # on the number of processes), each holding a share of every configuration
    parts = [np.arange(j, cfg.size, SIM_CHUNKS) for j in range(SIM_CHUNKS)]
    seeds = np.random.SeedSequence(seed).spawn(SIM_CHUNKS)
    jobs = [
        (arr[p, 0], arr[p, 1], arr[p, 2], ep[p], dtp[p], horizon, s, scheme)
        for p, s in zip(parts, seeds, strict=True)
    ]
    if n_jobs == 1:
        results = [_sweep_chunk(job) for job in jobs]
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

    Seeds: the particles are dealt into :data:`SIM_CHUNKS` interleaved chunks, each with
    its own ``SeedSequence(seed)`` child, run by up to ``n_jobs`` processes: the result
    depends on ``seed`` only, not on ``n_jobs`` or the machine's core count.

    Returns columns ``SWEEP_COLUMNS``: ``alpha, height, width, eps, mean, ci_low,
    ci_high, n_particles, n_censored, estimator, sweep, n_exits, log_se``
    (s.e. of log mean), ``level, dt, horizon, scheme``, ``sigma``
    (:func:`effective_noise`), ``asymptote`` (:func:`small_noise_asymptote`)
    and ``rho = mean/asymptote`` with ``rho_ci_low, rho_ci_high``.
    """
    alphas = [check_alpha(a) for a in alphas]
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
    alphas = [check_alpha(a) for a in alphas]
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
    for a in sorted({check_alpha(a) for a in alphas}):
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
    """What the SGD statistic (:func:`sgdtail.dynamics_claims.sgd_jump_share`) is for i.i.d. noise.

    For each noise of :func:`noise_list` (absolute values, since noise norms
    are positive): ``n_rep`` times, one sequence of ``|noise|`` per entry of
    ``lengths``, pooled median share as for the SGD sequences.  Returns per
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
