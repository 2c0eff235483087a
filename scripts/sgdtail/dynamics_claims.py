"""Fits and verdicts of claims C4 and C5 (simulated dynamics) and of C5 on SGD.

C4: the height and width laws of the mean exit time, fitted to the table of
:func:`sgdtail.dynamics.exit_time_sweep` (:func:`fit_exit_slopes`) and judged
by :func:`claim_c4_verdict`.  C5: the slope of the largest-step share against
the window, fitted to :func:`sgdtail.dynamics.jump_share_table`
(:func:`fit_jump_share_slopes`) and judged by :func:`claim_c5_verdict`.  C5 on
SGD: the same share on the measured noise-norm sequences
(:func:`norm_sequences`, :func:`sgd_jump_share`) against the i.i.d. bands of
:func:`sgdtail.dynamics.calibrate_jump_share` (:func:`claim_c5_sgd_verdict`).

Each condition of a claim is a state of the verdict vocabulary
(:mod:`sgdtail.verdicts`); the verdict dicts have the keys ``verdict,
statistic, value, ci_low, ci_high, detail``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sgdtail.aggregate import EXCLUDED_STATUSES, usable
from sgdtail.dynamics import brownian_mean_exit_time, effective_noise, sequence_shares
from sgdtail.verdicts import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    UNCLEAR,
    combine,
    interval_state,
    json_number,
    need_columns,
    need_keys,
    state_verdict,
    three_way,
    with_reason,
)

# --------------------------------------------------------------------------- C4: fits


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
    """Elasticity between the two largest heights and ``rho`` at the largest, NaN if absent
    (also when every particle at the largest height was censored: the pair below it says
    nothing about the top; ``height_top_censored`` is then 1)."""
    heights = g[g["sweep"] == "height"].sort_values("height")
    top_censored = bool(len(heights)) and not np.isfinite(heights["mean"].to_numpy(float)[-1])
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
    out["height_top_censored"] = int(top_censored)
    if len(elast) and not top_censored:
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
      mean exit time (:func:`~sgdtail.dynamics.brownian_mean_exit_time`), NaN for α < 2.
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
    need_columns(df.columns, need, "exit-time table")
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


# --------------------------------------------------------------------------- C4: verdict


def _finish(
    states: Sequence[str], notes: Sequence[str], fixes: Sequence[str], what: str, reason: str
) -> tuple[str, str]:
    """Verdict string and detail: the statistic sentence, the notes, what would decide."""
    verdict = combine(states)
    detail = what + " " + "; ".join(notes) + "."
    if verdict == INCONCLUSIVE:
        verdict = with_reason(verdict, reason)
        todo = sorted(set(fixes))
        detail += " To decide: " + "; ".join(todo) + "." if todo else ""
    return verdict, detail


def _small_noise_state(
    lo: float,
    hi: float,
    inside: tuple[float, float],
    sigma: float,
    max_sigma: float,
    key: str,
    fixes: list[str],
) -> str:
    """:func:`~sgdtail.verdicts.interval_state` of ``[lo, hi]`` where the effective noise
    ``sigma`` is within ``max_sigma`` (else unclear); appends to ``fixes`` the setting that
    would decide it."""
    if not sigma <= max_sigma:
        fixes.append(f"raise {key} (effective noise above dynamics.c4.max_sigma)")
        return UNCLEAR
    st = interval_state(lo, hi, inside)
    if st == UNCLEAR:
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
    if r.get("height_top_censored", 0):  # no exit at the largest height within the horizon
        states.append(UNCLEAR)
        fixes.append("raise dynamics.horizon (no particle left the largest height's well)")
        notes.append(f"alpha={a:g} height elasticity: every particle censored at the largest "
                     f"height: {UNCLEAR}")  # fmt: skip
    else:
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
    judged only where the effective noise (:func:`~sgdtail.dynamics.effective_noise`) of every
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
    need_keys(thresholds, keys, "C4 thresholds")
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
    need_columns(slopes.columns, need, "slope table")
    b = slopes[slopes["alpha"] == 2.0]
    levy = slopes[slopes["alpha"] < 2.0]
    if len(b) != 1:
        raise ValueError(f"C4 needs exactly one alpha = 2 (Brownian) row, found {len(b)}")
    if levy.empty:
        raise ValueError("C4 needs at least one alpha < 2 row")
    b = b.iloc[0]
    bmin = float(thresholds["brownian_min_height_slope"])
    blo, bhi = float(b["height_slope_ci_low"]), float(b["height_slope_ci_high"])
    st = interval_state(blo, bhi, (bmin, math.inf))
    states, fixes = [st], ["raise dynamics.particles (narrower intervals)"] * (st == UNCLEAR)
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
        value=json_number(worst["height_elasticity"]),
        ci_low=json_number(worst["height_elasticity_ci_low"]),
        ci_high=json_number(worst["height_elasticity_ci_high"]),
        detail=detail,
    )


# --------------------------------------------------------------------------- C5: fit and verdict


def fit_jump_share_slopes(table: pd.DataFrame, long_from: int, level: float = 0.95) -> pd.DataFrame:
    """Per noise: log-log slope of the median share on the window over windows ≥ ``long_from``.

    WLS of ``log share`` on ``log window`` with weights ``1/log_se²`` (rows are
    independent walks, see :func:`~sgdtail.dynamics.jump_share_table`), interval from
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
    need_columns(table.columns, need, "jump-share table")
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
        st = interval_state(lo, hi, (-math.inf, -dmax))
        word = {PASS: "separates", FAIL: "does not separate"}.get(st, "interval too wide")
        fixes = {PASS: [], FAIL: [fix_w]}.get(st, [fix_n])
        note = (
            f"control {r['noise']} slope {r['slope']:.3g} [{lo:.3g}, {hi:.3g}] must be "
            f"< -{dmax:g}: {word}"
        )
        return [PASS if st == PASS else UNCLEAR], [note], fixes
    st = interval_state(lo, hi, (-dmax, math.inf))
    states, fixes = [st], [fix_n] * (st == UNCLEAR)
    notes = [f"{r['noise']} slope {r['slope']:.3g} [{lo:.3g}, {hi:.3g}] vs > -{dmax:g}: {st}"]
    alo, ahi = float(r["short_auc_ci_low"]), float(r["short_auc_ci_high"])
    st = interval_state(alo, ahi, (1.0 - amax, amax))  # separable either way is not Gaussian
    states.append(st)
    fixes += [fix_n] * (st == UNCLEAR)
    notes.append(
        f"{r['noise']} window-{int(r['short_window'])} AUC vs Gaussian "
        f"{r['short_auc']:.3g} [{alo:.3g}, {ahi:.3g}] vs within [{1 - amax:.3g}, "
        f"{amax:g}]: {st}"
    )
    return states, notes, fixes


def claim_c5_verdict(
    table: pd.DataFrame, thresholds: Mapping[str, float], long_from: int, level: float = 0.95
) -> dict[str, Any]:
    """Verdict on C5 (simulated paths) from a :func:`~sgdtail.dynamics.jump_share_table`.

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
    need_keys(thresholds, ["max_decay", "max_short_auc"], "C5 thresholds")
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
        value=json_number(worst["slope"]),
        ci_low=json_number(worst["slope_ci_low"]),
        ci_high=json_number(worst["slope_ci_high"]),
        detail=detail,
    )


# --------------------------------------------------------------------------- C5 on SGD


def sgd_jump_share(
    sequences: Sequence[np.ndarray],
    window: int,
    rng: np.random.Generator,
    *,
    clusters: Sequence[int] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
) -> dict[str, Any]:
    """Pooled median share over every window of every sequence, with a bootstrap interval.

    ``value``: median of all :func:`~sgdtail.dynamics.sequence_shares`.  Interval: percentile
    bootstrap resampling whole clusters with replacement (``clusters[i]``: the cluster of
    sequence i, e.g. its run, whose checkpoints share one network; default: each sequence
    its own), so that the windows of one cluster stay together; ``n_boot`` replicates.
    """
    shares = sequence_shares(sequences, window)
    ids = range(len(shares)) if clusters is None else clusters
    by_cluster: dict[Any, list[np.ndarray]] = {}
    for i, v in zip(ids, shares, strict=True):
        if v.size:
            by_cluster.setdefault(i, []).append(v)
    per = [np.concatenate(v) for v in by_cluster.values()]
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
        n_sequences=sum(len(v) for v in by_cluster.values()),
        n_windows=n_win,
    )


def norm_sequences(
    norms: pd.DataFrame, runs: pd.DataFrame, split: str = "train", axes: Sequence[str] | None = None
) -> tuple[list[np.ndarray], dict[str, int]]:
    """Noise-norm sequences of the usable runs, one per run × checkpoint, in minibatch order.

    ``norms``: ``results/tables/noise_norms.parquet`` (grid axes, ``step, split,
    minibatch, norm``); ``runs``: ``results/tables/runs.csv`` (grid axes,
    ``status``).  Runs with a status in :data:`EXCLUDED_STATUSES` are left out
    and counted.  Returns the sequences (``split`` only), counts
    ``runs, used, diverged, not_trained``, and the run of each sequence (an index:
    the clusters of :func:`sgd_jump_share`).
    """
    from .grid import AXES

    axes = list(AXES if axes is None else axes)
    bad = ~usable(runs["status"])
    counts = {"runs": int(len(runs)), "used": int((~bad).sum())}
    counts.update({s: int((runs["status"] == s).sum()) for s in EXCLUDED_STATUSES})
    keep = runs.loc[~bad, axes]
    d = norms[norms["split"] == split].merge(keep, on=axes, how="inner")
    groups = list(d.groupby(axes + ["step"], sort=True))
    seqs = [g.sort_values("minibatch")["norm"].to_numpy(float) for _, g in groups]
    run_keys = [key[:-1] for key, _ in groups]
    index = {k: i for i, k in enumerate(sorted(set(run_keys)))}
    return seqs, counts, [index[k] for k in run_keys]


def _c5_sgd_decision(
    lo: float, hi: float, u_t: float, l_s: float, n_win: int, min_windows: int
) -> tuple[str, str, str]:
    """(verdict, reason, what would decide) of C5 on SGD (:func:`claim_c5_sgd_verdict`)."""
    if n_win < min_windows:
        return (
            INCONCLUSIVE,
            "too little SGD data",
            "more usable runs or checkpoints, or a smaller "
            f"dynamics.sgd.window (needs >= {min_windows} windows)",
        )
    verdict = state_verdict(three_way(lo > u_t, hi < l_s))
    if verdict != INCONCLUSIVE:
        return verdict, "", ""
    if u_t >= l_s:
        return (
            verdict,
            "sequences too short to separate",
            "a larger dynamics.sgd.window, which needs more minibatches "
            "per checkpoint (a smaller batch size in the grid)",
        )
    return (
        verdict,
        "between finite-variance and stable bands",
        "more usable runs (a narrower SGD interval)",
    )


def claim_c5_sgd_verdict(
    sgd: Mapping[str, Any],
    bands: pd.DataFrame,
    counts: Mapping[str, int],
    window: int,
    min_windows: int,
) -> dict[str, Any]:
    """Verdict on C5 for SGD: the SGD share against the calibration bands.

    ``sgd`` from :func:`sgd_jump_share`, ``bands`` from
    :func:`~sgdtail.dynamics.calibrate_jump_share`.  Let ``u_t`` be the upper end of the t(ν)
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
    verdict, reason, todo = _c5_sgd_decision(lo, hi, u_t, l_s, n_win, min_windows)
    note += f". To decide: {todo}" if todo else ""
    return dict(
        verdict=with_reason(verdict, reason),
        statistic=f"median largest-step share, windows of {window}",
        value=json_number(sgd["value"]),
        ci_low=json_number(lo),
        ci_high=json_number(hi),
        detail=f"{what} {note}.",
    )
