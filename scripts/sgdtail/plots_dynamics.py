"""Figures of the simulated dynamics (figures 2 and 3, claims C4 and C5).

Drawn from the tables of :mod:`sgdtail.dynamics` with the shared style and
save helpers of :mod:`sgdtail.plots`; like those, each figure function saves
the figure (PDF and PNG) and returns it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    NullFormatter,
    NullLocator,
    ScalarFormatter,
)
from scipy import stats  # noqa: E402

from sgdtail.dynamics import (  # noqa: E402
    brownian_mean_exit_time,
    check_alpha,
    levy_mean_exit_time_asymptotic,
    potential,
    sample_paths,
    small_noise_asymptote,
)
from sgdtail.plots import save_figure, set_style  # noqa: E402


def _alpha_palette(alphas: Sequence[float]) -> dict[float, Any]:
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
    png: str | os.PathLike,
) -> Figure:
    """Mean exit time against barrier height, and its approach to the ε → 0 asymptote.

    Left: mean exit time (log) against ``H`` (log), one line per α, interval
    bars; dashed: the ``eps → 0`` asymptotes (Kramers for α = 2,
    Imkeller–Pavlyukevich for α < 2, flat in ``H``); dotted (α = 2): the exact
    Brownian mean exit time.  Right: ``mean/asymptote`` against the effective
    noise ``σ`` (:func:`effective_noise`) of every simulated point; the claim
    is about ``σ → 0``.
    """
    set_style()
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
    ar.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ar.set_xscale("log")
    ar.set_yscale("log")
    for axis in (ar.xaxis, ar.yaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ar.set_xlabel("effective noise σ = ε W^(2/α−1) H^(−1/α) (log scale)")
    ar.set_ylabel("mean / ε → 0 asymptote (log scale)")
    ar.set_title("approach to the asymptote as σ → 0\n(height and width sweeps)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


def plot_exit_time_vs_width(
    df: pd.DataFrame,
    pdf: str | os.PathLike,
    png: str | os.PathLike,
) -> Figure:
    """Mean exit time against basin width (log-log), α < 2, with the ε → 0 asymptotes dashed.

    The asymptote ``π W^α/(Γ(α) sin(πα/2) eps^α)`` is a power law of exponent α.
    """
    set_style()
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
    save_figure(fig, pdf, png)
    return fig


def _noise_colors(labels: Sequence[str]) -> dict[str, Any]:
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
    png: str | os.PathLike,
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
    set_style()
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
    save_figure(fig, pdf, png)
    return fig


def plot_stable_densities(
    alphas: Sequence[float], pdf: str | os.PathLike, png: str | os.PathLike
) -> Figure:
    """Figure 2 (left): SαS(1) densities, linear panel and log-log tail panel.

    Densities from ``scipy.stats.levy_stable(alpha, 0).pdf``; α = 2 (Gaussian,
    variance 2) is always drawn as the reference.  The tail panel shows
    ``p(x) ~ α c x^{-1-α}`` power laws against the Gaussian's ``exp(-x²/4)``.
    """
    set_style()
    alphas = sorted({check_alpha(a) for a in alphas} | {2.0})
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
    save_figure(fig, pdf, png)
    return fig


def plot_metastability(
    pdf: str | os.PathLike,
    png: str | os.PathLike,
    **kwargs: Any,
) -> dict[str, Any]:
    """Figure 3 (:func:`metastability_figure`, keyword arguments its own) saved to ``pdf``
    and ``png``; returns its summary dict."""
    fig, info = metastability_figure(**kwargs)
    save_figure(fig, pdf, png)
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
    set_style()
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


def plot_alpha_vs_eta_over_b_linear(
    simulation: pd.DataFrame, theory: pd.DataFrame, pdf: str, png: str
) -> Figure:
    """SGD on Gaussian linear regression (:mod:`sgdtail.linear_sgd`): the tail index of the
    iterates against η/b, one panel per dimension d, one colour per batch size b: the
    theory's α as a line, Hill's α̂ of the simulated chains as points with their intervals.
    α = 2 (finite variance above) dashed."""
    set_style()
    dims = sorted(simulation["d"].unique())
    batches = sorted(simulation["b"].unique())
    colors = dict(zip(batches, sns.color_palette("viridis", len(batches)), strict=True))
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 3.6), squeeze=False)
    top = 1.4 * float(np.nanmax(simulation.loc[simulation.simulated, "alpha_theory"]))
    for ax, d in zip(axes[0], dims, strict=True):
        for b in batches:
            curve = theory[(theory.d == d) & (theory.b == b)].sort_values("eta_over_b")
            ax.plot(curve.eta_over_b, curve.alpha, color=colors[b], lw=1.2, label=f"b = {b}")
            sim = simulation[(simulation.d == d) & (simulation.b == b) & simulation.simulated]
            ax.errorbar(
                sim.eta_over_b,
                sim.alpha_hat,
                yerr=np.vstack([sim.alpha_hat - sim.ci_low, sim.ci_high - sim.alpha_hat]),
                color=colors[b],
                marker="o",
                ms=4,
                ls="",
                capsize=2,
            )
        ax.axhline(2.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0.0, top)
        ax.set_title(f"d = {d}")
        ax.set_xlabel("η / b")
    axes[0][0].set_ylabel("tail index α of the iterates")
    axes[0][0].legend(title="theory (line), simulated (points)", fontsize=8, title_fontsize=8)
    save_figure(fig, pdf, png)
    return fig
