"""Claim C7 on neural networks: the tail index and the sharpness against η/b.

The review leans on the Brownian-theory result that the step size over the batch size, η/b,
sets the width of the minima SGD reaches; Gürbüzbalaban, Şimşekli & Zhu (ICML 2021) tie η/b to
the tail index. Here the claim is judged on trained networks, within *families*: runs equal
in every grid axis but the learning rate, the batch size and the seed
(:data:`RATIO_FAMILY_AXES`), made of *cells*, the runs of one (η, b) (their seeds). A family
with two or more values of η/b can judge C7a and C7c; one where two cells share a ratio can
judge C7b.

* C7a: α̂ falls as η/b grows. Per family, the least-squares slope of the cells' mean α̂ against
  log2(η/b) (:func:`cell_slope`: every cell one point, so that an effect of η or b beyond η/b,
  shared by a cell's seeds, counts as noise rather than as replication), ± z standard errors.
  Supported when every family's interval lies below 0, not supported when one lies above.
* C7b: runs with the same η/b but different η and b have the same α̂. Per family and shared
  ratio, the mean α̂ over seeds at the largest b minus at the smallest b, ± z standard errors
  (the seed-to-seed variance pooled over the family's cells, at least the measurements' own
  squared standard errors; without two seeds in some cell: inconclusive). Supported when every
  interval lies inside ± the tolerance, not supported when one lies outside it.
* C7c: the sharpness (top Hessian eigenvalue λ_max) falls as η/b grows: per family, the
  :func:`cell_slope` of log2 λ_max, over the end points whose sharpness is measured and that
  rest in a minimum (sharpness.csv's ``excluded_sharpness``: C6's admission without its α̂
  checks).

The α̂ rows come from :func:`sgdtail.claims.alpha_measurements` (one estimator choice at a
time, each run's last checkpoint); :func:`sgdtail.claims.evaluate_claims` judges C7a and C7b
with every estimator choice like C1-C3, and once more on the tail index of the SGD iterates
(the quantity of the 2021 paper; :func:`iterate_rows`, estimator ``iterates``) when the grid
measures it. C7c does not depend on the α estimator.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sgdtail.aggregate import usable
from sgdtail.claims import Evaluation, Thresholds
from sgdtail.grid import AXES, DEFAULT_OPTIMIZER, optimizer_text
from sgdtail.verdicts import INCONCLUSIVE, combine, interval_state, three_way

RATIO_FAMILY_AXES: tuple[str, ...] = tuple(a for a in AXES if a not in ("lr", "batch_size", "seed"))
"""Axes a family of C7 runs shares: everything but η, b and the seed."""

RATIO = "eta_over_b"

_ADD_GRID = (
    "add runs at several learning rates and batch sizes of one network, with (η, b) pairs that "
    "share a ratio (the default grid's η × b sub-grid: lr [0.05, 0.1, 0.2] × batch_size "
    "[250, 500, 1000], three seeds)"
)


def ratio(lr: Any, batch_size: Any) -> float:
    """η/b rounded to 10 significant digits, so that equal ratios compare equal
    (0.05/250 and 0.1/500)."""
    return float(f"{float(lr) / float(batch_size):.10g}")


def with_ratio(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a column ``eta_over_b`` (:func:`ratio` of its ``lr`` and ``batch_size``)."""
    values = [ratio(lr, b) for lr, b in zip(df["lr"], df["batch_size"], strict=True)]
    return df.assign(**{RATIO: pd.Series(values, index=df.index, dtype=np.float64)})


def family_label(row: Mapping[str, Any]) -> str:
    """``mnist/fcn/w64_d3/cross_entropy`` (``..._adam`` for Adam runs, as in run paths): the
    axes a family shares."""
    optimizer = optimizer_text(row.get("optimizer", DEFAULT_OPTIMIZER))
    label = f"{row['dataset']}/{row['arch']}/w{row['width']}_d{row['depth']}/{row['loss']}"
    named = ("dataset", "arch", "width", "depth", "loss", "optimizer")
    return " ".join(
        [label + optimizer, *(f"{a}={row[a]}" for a in RATIO_FAMILY_AXES if a not in named)]
    )


def families(df: pd.DataFrame, min_ratios: int = 2) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) of each family in ``df`` (which needs the axes and ``eta_over_b``) with
    at least ``min_ratios`` values of η/b, in a stable order."""
    out = []
    for _, rows in df.groupby(list(RATIO_FAMILY_AXES), sort=True, dropna=False):
        if rows[RATIO].nunique() >= min_ratios:
            out.append((family_label(rows.iloc[0]), rows))
    return out


def cells(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """The (η, b) cells of one family's ``runs``: lr, batch_size, ratio, mean of ``column``
    over the cell's seeds, n (seeds), var (their sample variance; NaN for one seed)."""
    return (
        runs.groupby(["lr", "batch_size"], sort=True)
        .agg(
            ratio=(RATIO, "first"),
            mean=(column, "mean"),
            n=(column, "size"),
            var=(column, "var"),
        )
        .reset_index()
    )


def seed_variance(table: pd.DataFrame) -> float:
    """The variance of one run about its cell's mean, pooled over the :func:`cells` of
    ``table`` that have two or more seeds; NaN when none has."""
    dof = (table["n"] - 1).clip(lower=0)
    total = float(dof.sum())
    return float((dof * table["var"].fillna(0.0)).sum() / total) if total else math.nan


def _measurement_variance(runs: pd.DataFrame) -> float:
    """Mean squared standard error of the runs' own α̂ (column ``se``), NaN when unknown."""
    se2 = runs["se"].to_numpy(dtype=np.float64) ** 2 if "se" in runs else np.array([])
    se2 = se2[np.isfinite(se2)]
    return float(se2.mean()) if se2.size else math.nan


def _largest(*values: float) -> float:
    known = [v for v in values if math.isfinite(v)]
    return max(known) if known else math.nan


def cell_slope(runs: pd.DataFrame, column: str) -> tuple[float, float]:
    """Least-squares slope of the cells' means of ``column`` against log2(η/b) (change per
    doubling; every cell one point) and its standard error √(v / Σ(log2 x − mean)²), v the
    largest of: the residual variance of the cells' means (cells − 2 degrees of freedom, with
    three or more cells) and the variance a cell's mean has from its seeds alone (pooled seed
    variance, or the runs' mean squared standard error, over the cell's seeds, averaged over
    cells). (NaN, NaN) with one value of η/b."""
    table = cells(runs, column)
    u = np.log2(table["ratio"].to_numpy(dtype=np.float64))
    y = table["mean"].to_numpy(dtype=np.float64)
    uc = u - u.mean()
    sxx = float((uc**2).sum())
    if sxx <= 0:
        return math.nan, math.nan
    slope = float((uc * y).sum() / sxx)
    per_seed = _largest(seed_variance(table), _measurement_variance(runs))
    v = per_seed * float((1.0 / table["n"]).mean())
    if len(table) > 2:
        resid = y - y.mean() - slope * uc
        v = _largest(v, float((resid**2).sum() / (len(table) - 2)))
    return slope, math.sqrt(v / sxx) if math.isfinite(v) else math.nan


def has_ratio_family(points: Iterable[Mapping[str, Any]]) -> bool:
    """Whether grid points (mappings with every axis) hold a family with two or more η/b."""
    seen: dict[tuple, set[float]] = {}
    for p in points:
        seen.setdefault(tuple(p[a] for a in RATIO_FAMILY_AXES), set()).add(
            ratio(p["lr"], p["batch_size"])
        )
    return any(len(ratios) >= 2 for ratios in seen.values())


def _last(m: pd.DataFrame) -> pd.DataFrame:
    """Each run's last-checkpoint row with a finite α̂, with η/b."""
    last = m[m["last"].astype(bool) & np.isfinite(m["alpha"])]
    return with_ratio(last)


NOT_MEASURED = (
    "the iterates' α̂ is not measured in this grid (set iterates.measure: true, docs/science.md)"
)


def iterate_rows(paired: pd.DataFrame, ci_level: float) -> pd.DataFrame:
    """The pooled robust α̂ of each trained run's iterates (``iterates_vs_noise.csv``) as rows
    C7a and C7b read: the axes, alpha, se (from its batch-means interval, as for the noise),
    last (true), and the K1 spread k1_down, k1_up (NaN where unknown) for
    :func:`iterates_k1_note`. An estimate from too few values (``enough_iterates``) is left
    out; the noise's sample size does not matter here."""
    rows = paired[(paired["scope"] == "pooled") & usable(paired["status"])]
    rows = rows[rows["enough_iterates"].astype(bool) & np.isfinite(rows["alpha_iterates"])]
    z_level = statistics.NormalDist().inv_cdf(0.5 + ci_level / 2.0)
    se = (rows["ci_high_iterates"] - rows["ci_low_iterates"]) / (2.0 * z_level)
    unknown = pd.Series(np.nan, index=rows.index)
    return rows[list(AXES)].assign(
        alpha=rows["alpha_iterates"],
        se=se.where(np.isfinite(se)),
        last=True,
        k1_down=rows.get("k1_down_iterates", unknown),
        k1_up=rows.get("k1_up_iterates", unknown),
    )


def iterates_k1_note(rows: pd.DataFrame) -> str:
    """How far the iterates' robust α̂ (:func:`iterate_rows`) moves over its block sizes: a
    median over K1 whose members can differ by more than the batch-means interval, which
    belongs to the middle K1. Not part of the standard error: two runs judged by the same K1
    rule differ by sampling noise (and their seeds' spread), as for the noise. ``""`` when
    the spread is unknown for every run."""
    known = rows["k1_up"].notna() & rows["k1_down"].notna()
    if not known.any():
        return ""
    down, up = rows.loc[known, "k1_down"], rows.loc[known, "k1_up"]
    return (
        f"the iterates' robust α̂ moves over its block sizes K1 (median −{down.median():.3f} / "
        f"+{up.median():.3f}, at most −{down.max():.3f} / +{up.max():.3f} around it, "
        f"{int(known.sum())} runs; not in its standard error)"
    )


def _open(statistic: str, threshold: str, n_runs: int = 0, **why: str) -> Evaluation:
    """An inconclusive Evaluation with no value yet (``why``: reason, detail)."""
    nan = math.nan
    return Evaluation(statistic, nan, nan, nan, threshold, INCONCLUSIVE, n_runs=n_runs, **why)


def not_measured(claim: str) -> Evaluation:
    """C7a or C7b on the iterates of a grid that does not measure them: inconclusive."""
    return _open(
        f"as {claim} on the gradient noise, with the iterates' pooled robust α̂",
        "as on the gradient noise",
        reason="not measured",
        detail=NOT_MEASURED,
    )


def _no_family(base: Evaluation, n_runs: int, what: str) -> Evaluation:
    """``base``'s claim with no family that can judge it: inconclusive, naming what to add."""
    return _open(
        base.statistic,
        base.threshold,
        n_runs,
        reason=f"too few runs (no family with {what})",
        detail=f"a family is runs equal in every axis but η, b and the seed; {_ADD_GRID}",
    )


def _slopes(
    fams: list[tuple[str, pd.DataFrame]], column: str, z: float, unit: str
) -> tuple[list[str], list[tuple[float, float, float, str]]]:
    """Per family, the :func:`cell_slope` of ``column`` ± ``z`` standard errors: the states
    (pass: interval below 0, fail: above) and (slope, low, high, text) rows."""
    states, rows = [], []
    for label, runs in fams:
        slope, s = cell_slope(runs, column)
        low, high = slope - z * s, slope + z * s
        states.append(three_way(high < 0.0, low > 0.0))
        n_cells = len(runs.groupby(["lr", "batch_size"]))
        text = (
            f"{label}: {slope:+.3f} [{low:+.3f}, {high:+.3f}] {unit} per doubling of η/b "
            f"({runs[RATIO].nunique()} values of η/b, {n_cells} (η, b) cells, {len(runs)} runs)"
        )
        rows.append((slope, low, high, text))
    return states, rows


def _judged(
    states: list[str],
    rows: list[tuple[float, float, float, str]],
    worst: tuple[float, float, float, str],
    base: Evaluation,
    th: Thresholds,
    unclear: str,
) -> Evaluation:
    """``base`` with the value of ``worst``, the verdict :func:`combine` gives ``states``
    (``unclear`` as the reason when inconclusive) and the rows as detail; inconclusive when
    fewer than ``min_runs`` runs."""
    verdict = combine(states)
    reason = unclear if verdict == INCONCLUSIVE else ""
    if base.n_runs < th.min_runs:
        verdict, reason = INCONCLUSIVE, f"too few runs ({base.n_runs} < min_runs {th.min_runs})"
    value, low, high, _ = worst
    detail = "; ".join(r[3] for r in rows)
    return dataclasses.replace(
        base, value=value, ci_low=low, ci_high=high, verdict=verdict, reason=reason, detail=detail
    )


def _falls(
    fams: list[tuple[str, pd.DataFrame]],
    column: str,
    unit: str,
    base: Evaluation,
    th: Thresholds,
    n_runs: int,
) -> Evaluation:
    """C7a's and C7c's verdict: ``column`` falls as η/b grows in every family
    (:func:`_slopes`); the family closest to a rise is the value. ``n_runs``: the runs
    considered, for a grid without a family."""
    if not fams:
        return _no_family(base, n_runs, "two or more η/b")
    states, rows = _slopes(fams, column, th.z, unit)
    worst = max(rows, key=lambda r: r[0])
    return _judged(states, rows, worst, base, th, "too much spread (an interval contains 0)")


def claim_c7a(m: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C7a on networks: α̂ falls as η/b grows, in every family (see the module docstring)."""
    last = _last(m)
    fams = families(last)
    base = _open(
        "least-squares slope of the mean α̂ of each (η, b) against log2(η/b), per family of "
        "runs equal but for η, b and seed; the family closest to a rise",
        "< 0 for every family",
        sum(len(rows) for _, rows in fams),
    )
    return _falls(fams, "alpha", "α̂", base, th, len(last))


def _same_ratio_pairs(
    label: str, runs: pd.DataFrame, z: float, tolerance: float
) -> list[tuple[str, tuple[float, float, float, str], int]]:
    """(state, (diff, low, high, text), runs compared) for each η/b of one family held by two
    or more batch sizes: mean α̂ at the largest b minus at the smallest b, ± ``z`` standard
    errors (unclear without seed replication in the family)."""
    if runs["batch_size"].nunique() < 2:  # two cells with one η/b have two batch sizes
        return []
    table = cells(runs, "alpha")
    seeds = seed_variance(table)
    var = _largest(seeds, _measurement_variance(runs)) if math.isfinite(seeds) else math.nan
    out = []
    for r, same in table.groupby("ratio", sort=True):
        if len(same) < 2:
            continue
        small, big = same.sort_values("batch_size").iloc[[0, -1]].itertuples(index=False)
        diff = big.mean - small.mean
        se = math.sqrt(var / big.n + var / small.n) if math.isfinite(var) else math.nan
        low, high = diff - z * se, diff + z * se
        text = (
            f"{label} η/b = {r:.3g}: (η {small.lr:g}, b {small.batch_size}) → (η {big.lr:g}, "
            f"b {big.batch_size}): {diff:+.3f} [{low:+.3f}, {high:+.3f}] ({small.n} and "
            f"{big.n} seeds)"
        )
        if not math.isfinite(seeds):
            text += " (no cell of the family has two seeds: no seed-to-seed spread)"
        state = interval_state(low, high, (-tolerance, tolerance))
        out.append((state, (diff, low, high, text), int(small.n + big.n)))
    return out


def claim_c7b(m: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C7b on networks: at the same η/b, α̂ at the largest and the smallest batch size agree
    within ± ``c7_same_tolerance`` (see the module docstring)."""
    last = _last(m)
    tolerance = th.c7_same_tolerance
    compared = [
        (label, runs, _same_ratio_pairs(label, runs, th.z, tolerance))
        for label, runs in families(last, min_ratios=1)
    ]
    compared = [c for c in compared if c[2]]
    pairs = [p for *_, family_pairs in compared for p in family_pairs]
    base = _open(
        "mean α̂ at the largest minus at the smallest batch size with the same η/b (per family "
        "and η/b); the pair furthest from 0",
        f"within ±{tolerance:g} (claims.c7_same_tolerance)",
        sum(n for *_, n in pairs),
    )
    if not pairs:
        return _no_family(base, len(last), "two (η, b) at one η/b")
    states = [s for s, _, _ in pairs]
    rows = [r for _, r, _ in pairs]
    worst = max(rows, key=lambda r: abs(r[0]))
    unclear = "intervals too wide for the tolerance: add seeds"
    ev = _judged(states, rows, worst, base, th, unclear)
    note = _spread_note([(label, runs) for label, runs, _ in compared])
    return dataclasses.replace(ev, detail=f"{ev.detail}; {note}")


def _spread_note(fams: list[tuple[str, pd.DataFrame]]) -> str:
    """For scale beside C7b: the range of the cells' mean α̂ in each family that C7b compares.
    Equal α̂ at equal η/b says little when α̂ hardly changes across the whole family (then see
    C7a)."""
    spans = []
    for label, runs in fams:
        means = cells(runs, "alpha")["mean"]
        spans.append(f"{label} {means.min():.3f}-{means.max():.3f}")
    return "the cells' mean α̂ span " + ", ".join(spans) + " (for scale: see C7a)"


def claim_c7c(sharpness: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C7c: log2 λ_max falls as η/b grows, in every family, over the end points whose
    sharpness.csv ``excluded_sharpness`` is empty (a CSV round trip makes it NaN) and whose
    λ_max is positive (it has a log; C6's admission already asks for that); the detail counts
    the end points of families with two or more η/b left out, by reason."""
    from sgdtail.sharpness import NON_POSITIVE_LAMBDA  # its imports cost ~0.5 s: only here

    df = with_ratio(sharpness).reset_index(drop=True)
    reasons = df["excluded_sharpness"].fillna("").astype(str)
    positive = df["top_hessian_eigenvalue"] > 0
    reasons = reasons.where((reasons != "") | positive, NON_POSITIVE_LAMBDA)
    in_families = df.index.isin([i for _, rows in families(df) for i in rows.index])
    admitted = df[reasons == ""]
    admitted = admitted.assign(
        log2_lambda=np.log2(admitted["top_hessian_eigenvalue"].to_numpy(dtype=np.float64))
    )
    fams = families(admitted)
    base = _open(
        "least-squares slope of the mean log2 λ_max (top Hessian eigenvalue at the end point) "
        "of each (η, b) against log2(η/b), per family; the family closest to a rise",
        "< 0 for every family",
        sum(len(rows) for _, rows in fams),
    )
    ev = _falls(fams, "log2_lambda", "log2 λ_max", base, th, len(admitted))
    counts = reasons[in_families & (reasons != "")].value_counts()
    if counts.empty:
        return ev
    left_out = "; ".join(f"{n} end points left out: {why}" for why, n in counts.items())
    return dataclasses.replace(ev, detail=f"{ev.detail}; {left_out}")


def iterates_claims(
    paired: pd.DataFrame | None, th: Thresholds, ci_level: float
) -> list[tuple[str, Evaluation]]:
    """C7a and C7b judged on the iterates' α̂ (``iterates_vs_noise.csv``; None: the grid does
    not measure them, both "not measured"), each detail with :func:`iterates_k1_note`."""
    if paired is None:
        return [(claim, not_measured(claim)) for claim in ("C7a", "C7b")]
    rows = iterate_rows(paired, ci_level)
    note = iterates_k1_note(rows)
    out = []
    for claim, judge in (("C7a", claim_c7a), ("C7b", claim_c7b)):
        ev = judge(rows, th)
        out.append((claim, dataclasses.replace(ev, detail=f"{ev.detail}; {note}") if note else ev))
    return out
