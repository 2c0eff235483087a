"""Verdicts on the papers' claims, computed from the tidy tables (see sgdtail.aggregate).

C1-C3 are judged here from ``summary.csv`` and ``estimates.parquet``; C4-C7
come from the dynamics, sharpness and linear-regression stages as small JSON dicts and are passed
through :func:`external_claims`.

Every claim is judged once per *estimator choice* (:data:`ESTIMATOR_CHOICES`):

* ``robust``: the pooled robust α̂ (median over block sizes K1) with an
  interval that covers both its sampling noise and its K1 spread (see
  :func:`k1_spread`): the primary estimate;
* ``reference``: the pooled α̂ of the 2019 code (no interval);
* ``per_coordinate``: the median over coordinates of the per-coordinate α̂
  across minibatches (no interval);
* ``block_sweep``: the pooled α̂ at each block size K1 of the sweep, in natural
  and in shuffled order; the claim is judged at every K1 (those every
  measurement has), and the sweep's verdict is the common one, or
  ``inconclusive`` (depends on K1) when the K1 values disagree.

A verdict *survives every estimator* when all four choices give the same one.

What enters the statistics:

* the gradient noise only (rows with ``noise`` = gradient, :func:`sgdtail.aggregate.gradient_rows`;
  an adaptive optimizer's preconditioned noise enters none);
* runs with status ``completed`` or ``converged`` (:func:`usable_runs`);
  ``diverged`` runs (loss not finite) and ``not_trained`` runs (final training
  accuracy below ``min_train_accuracy``) enter none;
* of those, the measurements (run × checkpoint × split) the estimator choice
  has enough data for: summary column ``pooled_enough`` for the pooled choices
  (robust, reference, block_sweep), ``per_coordinate_enough`` for the
  per-coordinate one (:data:`ENOUGH_FLAG`; a missing column counts as true).

Verdict rules (thresholds in :class:`Thresholds`, from config key ``claims``):

* share claims (C1, C3): each usable run is *yes*, *no* or *undecided* (its
  interval straddles the threshold, or the quantity is not measurable).
  Fewer than ``min_runs`` runs: inconclusive (too few runs). A *yes* share of
  at least ``min_share``: supported. A *no* share above ``1 - min_share``:
  not supported. Otherwise inconclusive (too much spread).
* ratio claim (C2): the ratio and its interval against ``c2_ratio_max``:
  the whole interval below: supported, the whole interval at or above: not
  supported, else inconclusive (too much spread); no batch-size sweep or no
  width/depth sweep in the grid: inconclusive (too few runs).

Standard error of one measurement (C2, C3): the robust estimate's batch-means
interval, ``se = (high - low) / (2 z_level)``; it measures sampling noise
across minibatches, which is what differs between two measurements made with
the same K1 rule. The other estimators have no interval of their own; they
borrow the robust standard error of the same measurement.
"""

from __future__ import annotations

import dataclasses
import html
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sgdtail.aggregate import (
    ALPHA_COLUMNS,
    excluded_runs_note,
    gradient_rows,
    sweep_spread,
    usable,
)
from sgdtail.estimators import DEFAULT_ROBUST_FACTORS
from sgdtail.grid import AXES
from sgdtail.verdicts import (
    INCONCLUSIVE,
    VERDICTS,
    interval_verdict,
    parse_verdict,
    state_verdict,
    three_way,
)

ESTIMATOR_CHOICES: dict[str, str] = {
    "robust": "pooled robust",
    "reference": "pooled reference (2019)",
    "per_coordinate": "per-coordinate median",
    "block_sweep": "block-size sweep (every K1, both orders)",
}
"""Estimator choices every claim is judged with, in table order; the first is primary."""

ITERATES = "iterates"
ITERATES_LABEL = "iterates (C7a, C7b)"
"""Estimator of the C7a and C7b rows judged on the tail index of the SGD iterates (the pooled
robust α̂ of the centred iterates over each run's last window) instead of the gradient noise:
another quantity, so it is a column of its own and not part of *survives every estimator*."""

PRIMARY = "robust"

ENOUGH_FLAG: dict[str, str] = {
    "robust": "pooled_enough",
    "reference": "pooled_enough",
    "per_coordinate": "per_coordinate_enough",
    "block_sweep": "pooled_enough",
}
"""Summary column that says whether a measurement is large enough for each estimator choice."""

TOO_SMALL: dict[str, str] = {
    "pooled_enough": "too few noise values (n_values < estimators.min_pooled_values)",
    "per_coordinate_enough": "too few minibatches "
    "(n_minibatches < estimators.min_per_coordinate_minibatches)",
}
"""Why a measurement whose flag is false is left out."""

CLAIM_TEXT: dict[str, str] = {
    "C1": "The gradient noise is not Gaussian: α̂ is well below 2 in every setting.",
    "C2": "Batch size has a smaller effect on α than network size.",
    "C3": "Early in training the noise makes large jumps, which fade quickly while accuracy "
    "rises sharply, very early in training.",
    "C4": "Brownian exit times grow exponentially with basin height; α-stable ones do not "
    "depend on the height but grow polynomially with the width.",
    "C5": "A heavy-tailed path looks Gaussian over short windows but shows frequent large "
    "jumps over long ones.",
    "C5 (SGD)": "The same holds for SGD: its measured gradient noise makes the jumps of an "
    "α-stable sequence (C5's statistic on the noise norms of the trained runs).",
    "C6": "Training reaches wide minima more often and faster than Brownian theory predicts.",
    "C7a": "The tail index falls as the step size over the batch size η/b grows (heavier "
    "tails), judged on trained networks of one architecture at several η and b.",
    "C7b": "Runs with the same η/b but different η and b have the same tail index: η/b, not η "
    "or b alone, is what matters (trained networks).",
    "C7c": "The sharpness of the minimum SGD reaches (top Hessian eigenvalue) falls as η/b "
    "grows: the wide-minima half of the story (trained networks).",
    "C7a (linear regression)": "The tail index falls as the step size over the batch size η/b "
    "grows. Tested here at fixed b (so η grows with η/b): on Gaussian linear regression, where "
    "Gürbüzbalaban, Şimşekli & Zhu (ICML 2021) prove that α decreases in η at fixed b, this "
    "checks the simulated chains and Hill's estimate against the theorem.",
    "C7b (linear regression)": "Runs with the same η/b but different η and b have the same "
    "tail index: η/b, not η or b alone, is what matters.",
}
"""The review's claims, as the claims table states them."""

EXTERNAL_KEYS: tuple[str, ...] = (
    "claim",
    "statistic",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "verdict",
    "detail",
)
"""Keys of a claim dict written by another stage (C4-C7)."""

RUN_KEYS: list[str] = list(AXES)
MEASUREMENT_KEYS: list[str] = [*AXES, "step", "split"]

COLUMNS: list[str] = [
    "claim",
    "estimator",
    "statistic",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "verdict",
    "reason",
    "n_runs",
    "detail",
]
"""Columns of the long claims table (one row per claim × estimator choice)."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Decision thresholds (config key ``claims``; config.yaml says why each value)."""

    split: str = "train"
    min_train_accuracy: float = 0.5
    min_runs: int = 3
    min_share: float = 0.9
    z: float = 2.0
    c1_alpha_max: float = 1.9
    c2_ratio_max: float = 1.0
    c3_early_fraction: float = 0.1
    c3_max_step_ratio: float = 4.0
    c3_min_checkpoints: int = 4
    c7_same_tolerance: float = 0.1

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Thresholds:
        """Build from the ``claims`` config section; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise ValueError(f"unknown claims keys {unknown}; allowed: {sorted(names)}")
        return cls(**dict(section))


@dataclasses.dataclass
class Evaluation:
    """One claim judged with one estimator choice."""

    statistic: str
    value: float
    ci_low: float
    ci_high: float
    threshold: str
    verdict: str
    reason: str = ""
    n_runs: int = 0
    detail: str = ""


# ----------------------------------------------------------------------------
# Sweeps: runs that differ in one axis only
# ----------------------------------------------------------------------------


def axis_sweeps(points: Iterable[Mapping[str, Any]], axis: str) -> list[list[Mapping[str, Any]]]:
    """Groups of runs equal in every axis except ``axis`` and ``seed``, with ≥ 2 values of ``axis``.

    ``points`` are mappings with every key of :data:`~sgdtail.grid.AXES` (e.g.
    ``dataclasses.asdict(run)`` or table records). Groups keep input order.
    """
    if axis not in AXES or axis == "seed":
        raise ValueError(f"axis={axis!r} must be one of {[a for a in AXES if a != 'seed']}")
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for point in points:
        key = tuple(point[a] for a in AXES if a not in (axis, "seed"))
        groups.setdefault(key, []).append(point)
    return [g for g in groups.values() if len({p[axis] for p in g}) >= 2]


def sweep_rows(df: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Rows of ``df`` whose run belongs to a sweep over ``axis`` (see :func:`axis_sweeps`).

    Adds a column ``sweep``: the values of the other axes (seed excepted), as text.
    """
    others = [a for a in AXES if a not in (axis, "seed")]
    if df.empty:
        return df.assign(sweep=pd.Series(dtype=str))
    n_values = df.groupby(others, dropna=False)[axis].transform("nunique")
    out = df[n_values >= 2]
    if out.empty:
        return out.assign(sweep=pd.Series(dtype=str))
    labels = [" ".join(str(v) for v in row) for row in out[others].itertuples(index=False)]
    return out.assign(sweep=labels)


# ----------------------------------------------------------------------------
# Measurements: one α per run × checkpoint × split × estimator variant
# ----------------------------------------------------------------------------


def usable_runs(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary rows of runs that trained (:func:`sgdtail.aggregate.usable`): diverged and
    not-trained runs, and any status not known to be usable, enter no statistic."""
    return summary[usable(summary["status"])]


def _flag(df: pd.DataFrame, column: str) -> pd.Series:
    """Boolean column ``column`` of ``df``: true where it holds True (a missing value, None or
    NaN, is false); all true when the table has no such column."""
    if column not in df.columns:
        return pd.Series(True, index=df.index)
    return df[column].eq(True).fillna(False).astype(bool)  # a nullable column gives NA


def k1_spread(
    summary: pd.DataFrame,
    estimates: pd.DataFrame,
    factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
) -> pd.DataFrame:
    """How far the members of the robust α̂ lie below and above their median, per measurement
    (:func:`sgdtail.aggregate.sweep_spread` with K = n_minibatches × n_parameters).

    Columns: :data:`MEASUREMENT_KEYS`, ``k1_down``, ``k1_up``. Measurements whose sweep does
    not reach from the smallest to the largest member's K1 are left out.
    """
    needed = ["n_minibatches", "n_parameters"]
    if estimates.empty or not set(needed) <= set(summary.columns):
        return summary[MEASUREMENT_KEYS].iloc[:0].assign(k1_down=[], k1_up=[])
    sweep = estimates[
        (estimates["estimator"] == "block_sweep")
        & (estimates["scope"] == "pooled")
        & (estimates["order"] == "natural")
    ]
    sizes = summary[[*MEASUREMENT_KEYS, *needed]].drop_duplicates(MEASUREMENT_KEYS)
    sweep = sweep[[*MEASUREMENT_KEYS, "k1", "alpha"]].merge(sizes, on=MEASUREMENT_KEYS)
    sweep = sweep.assign(k=sweep["n_minibatches"].astype(float) * sweep["n_parameters"])
    return sweep_spread(sweep, MEASUREMENT_KEYS, factors)


def alpha_measurements(
    summary: pd.DataFrame,
    estimates: pd.DataFrame,
    ci_level: float = 0.95,
    k1_factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
    split: str | None = None,
) -> pd.DataFrame:
    """Long table of α̂ per measurement and estimator choice (runs of :func:`usable_runs` only).

    Columns: the grid axes, step, split, estimator (a key of
    :data:`ESTIMATOR_CHOICES`), variant (``""``, or ``"natural K1=100"`` for
    the sweep), alpha; low, high: the interval (robust: the batch-means
    interval widened by :func:`k1_spread`, ``[ci_low − k1_down, ci_high +
    k1_up]``, NaN where the spread is unknown; the others: alpha itself); se
    (standard error: see the module docstring); last (the run's last
    checkpoint); enough (the measurement's :data:`ENOUGH_FLAG` column); k1_down,
    k1_up (robust rows). ``split``: keep only that noise split. Gradient noise only
    (:func:`sgdtail.aggregate.gradient_rows`).
    """
    estimates = gradient_rows(estimates)
    s = usable_runs(gradient_rows(summary))
    if split is not None:
        s = s[s["split"] == split]
    spread = k1_spread(s, estimates, k1_factors)
    s = s.merge(spread, on=MEASUREMENT_KEYS, how="left").reset_index(drop=True)
    z_level = statistics.NormalDist().inv_cdf(0.5 + ci_level / 2.0)
    robust_se = (s["alpha_robust_ci_high"] - s["alpha_robust_ci_low"]) / (2.0 * z_level)
    base = s[MEASUREMENT_KEYS].assign(
        se=robust_se.where(np.isfinite(robust_se)),
        last=s["step"] == s.groupby(RUN_KEYS)["step"].transform("max"),
        pooled=_flag(s, "pooled_enough"),
        per_coordinate=_flag(s, "per_coordinate_enough"),
    )

    def point(estimator: str, column: str, flag: str) -> pd.DataFrame:
        return base.assign(
            estimator=estimator,
            variant="",
            alpha=s[column],
            low=s[column],
            high=s[column],
            enough=base[flag],
        )

    frames = [
        base.assign(
            estimator="robust",
            variant="",
            alpha=s["alpha_robust"],
            low=s["alpha_robust_ci_low"] - s["k1_down"],
            high=s["alpha_robust_ci_high"] + s["k1_up"],
            enough=base["pooled"],
            k1_down=s["k1_down"],
            k1_up=s["k1_up"],
        ),
        point("reference", ALPHA_COLUMNS["reference"], "pooled"),
        point("per_coordinate", ALPHA_COLUMNS["per_coordinate"], "per_coordinate"),
    ]
    sweep = estimates[(estimates["estimator"] == "block_sweep") & (estimates["scope"] == "pooled")]
    if not sweep.empty:
        sw = sweep[[*MEASUREMENT_KEYS, "order", "k1", "alpha"]].merge(base, on=MEASUREMENT_KEYS)
        sw["k1"] = sw["k1"].astype(int)
        sw = sw.sort_values(["order", "k1"], kind="stable")
        frames.append(
            sw.assign(
                estimator="block_sweep",
                variant=sw["order"] + " K1=" + sw["k1"].astype(str),
                low=sw["alpha"],
                high=sw["alpha"],
                enough=sw["pooled"],
            ).drop(columns=["order", "k1"])
        )
    out = pd.concat(frames, ignore_index=True)
    return out[
        [
            *MEASUREMENT_KEYS,
            "estimator",
            "variant",
            "alpha",
            "low",
            "high",
            "se",
            "last",
            "enough",
            "k1_down",
            "k1_up",
        ]
    ]


def small_sample_note(m: pd.DataFrame, estimator: str) -> str:
    """``N measurements with too few ... left out`` for the rows of ``m`` (one estimator
    choice) whose ``enough`` is false; ``""`` when there are none."""
    n = len(m.loc[~m["enough"].astype(bool), MEASUREMENT_KEYS].drop_duplicates())
    if not n:
        return ""
    return f"{n} measurements with {TOO_SMALL[ENOUGH_FLAG[estimator]]} left out"


def common_variants(sweep: pd.DataFrame, n_measurements: int) -> list[str]:
    """Sweep variants (order × K1) present and finite in all ``n_measurements`` measurements.

    Block sizes depend on the number of values, so a small network's sweep stops
    at a smaller K1 than a large one's; only the common ones are comparable.
    """
    sweep = sweep[np.isfinite(sweep["alpha"])]
    if sweep.empty:
        return []
    counts = sweep.groupby("variant", sort=False).size()
    return [v for v, c in counts.items() if c == n_measurements]


# ----------------------------------------------------------------------------
# Verdict rules
# ----------------------------------------------------------------------------


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (NaN for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def share_verdict(
    n_yes: int, n_no: int, n_undecided: int, th: Thresholds
) -> tuple[float, float, float, str, str]:
    """(share, ci_low, ci_high, verdict, reason) of a share-of-runs claim (module docstring)."""
    n = n_yes + n_no + n_undecided
    low, high = wilson_interval(n_yes, n)
    share = n_yes / n if n else math.nan
    if n < th.min_runs:
        return share, low, high, INCONCLUSIVE, f"too few runs ({n} < min_runs {th.min_runs})"
    # more than 1 - min_share disagree: (n - n_no) / n < min_share (no float subtraction)
    verdict = state_verdict(three_way(n_yes / n >= th.min_share, (n - n_no) / n < th.min_share))
    if verdict != INCONCLUSIVE:
        return share, low, high, verdict, ""
    return share, low, high, verdict, f"too much spread ({n_undecided} of {n} runs undecided)"


# ----------------------------------------------------------------------------
# The claims
# ----------------------------------------------------------------------------


def claim_c1(m: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C1: share of runs whose α̂ interval lies below ``c1_alpha_max``.

    ``m``: measurements of one estimator variant (see :func:`alpha_measurements`).
    Each run's last checkpoint. A run is *yes* when the upper end of its
    interval (``high``) is below the threshold, *no* when the lower end
    (``low``) is at or above it, *undecided* otherwise (the interval straddles
    it, or is not known). The robust interval is the batch-means interval
    widened by the K1 spread of the robust α̂; the other estimators have no
    interval (low = high = α̂).
    """
    last = m[m["last"]]
    yes = int((last["high"] < th.c1_alpha_max).sum())
    no = int((last["low"] >= th.c1_alpha_max).sum())
    undecided = len(last) - yes - no
    share, low, high, verdict, reason = share_verdict(yes, no, undecided, th)
    alphas = last["alpha"]
    detail = (
        f"{yes} of {len(last)} runs below, {no} at or above, {undecided} undecided; "
        f"α̂ at the last checkpoint ({th.split} split) from {alphas.min():.2f} to "
        f"{alphas.max():.2f}, median {alphas.median():.2f}"
        if len(last)
        else "no measurements"
    )
    if len(last) and (last["estimator"] == "robust").all():
        detail += _k1_spread_note(last)
    return Evaluation(
        statistic=f"share of runs whose α̂ interval lies below {th.c1_alpha_max}",
        value=share,
        ci_low=low,
        ci_high=high,
        threshold=f"≥ {th.min_share} of runs",
        verdict=verdict,
        reason=reason,
        n_runs=len(last),
        detail=detail,
    )


def _k1_spread_note(last: pd.DataFrame) -> str:
    """How much the K1 spread widened the robust intervals of C1, and where it is unknown."""
    known = last["k1_up"].notna()
    down, up = last.loc[known, "k1_down"], last.loc[known, "k1_up"]
    text = ""
    if known.any():
        text += (
            f"; intervals widened by the K1 spread of the robust α̂ (median −{down.median():.3f} "
            f"/ +{up.median():.3f}, at most +{up.max():.3f})"
        )
    if not known.all():
        text += (
            f"; {int((~known).sum())} runs undecided because their block sweep does not cover "
            "the robust block sizes"
        )
    return text


SETTING_KEYS: list[str] = ["dataset", "arch", "loss", "lr"]
"""Axes a batch-size sweep and the width/depth sweeps it is compared with must share (C2)."""


def log2_slope(x: np.ndarray, alpha: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of α̂ against log2(x) (change of α̂ per doubling) and its standard error.

    Every run is one point (seeds are replicates). Standard error: √(v / Sxx)
    with Sxx = Σ (log2 x − mean)² and v the larger of the residual variance
    RSS / (n − 2) (n > 2 points) and the mean squared measurement standard
    error ``se`` (measurement noise is a floor the residuals of a few points
    can fall below by chance). (NaN, NaN) when x takes one value.
    """
    u = np.log2(np.asarray(x, dtype=np.float64))
    a = np.asarray(alpha, dtype=np.float64)
    uc = u - u.mean()
    sxx = float((uc**2).sum())
    if sxx <= 0:
        return math.nan, math.nan
    slope = float((uc * a).sum() / sxx)
    s2 = np.asarray(se, dtype=np.float64) ** 2
    s2 = s2[~np.isnan(s2)]
    v = float(s2.mean()) if s2.size else math.nan
    if len(u) > 2:
        resid = a - a.mean() - slope * uc
        resid_var = float((resid**2).sum() / (len(u) - 2))
        v = resid_var if math.isnan(v) else max(v, resid_var)
    return slope, math.sqrt(v / sxx)


def sweep_slopes(last: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """One row per sweep over any of ``axes``: :func:`log2_slope` of α̂ over the swept values,
    with the sweep's :data:`SETTING_KEYS` and the batch sizes it covers."""
    columns = [
        "axis",
        "sweep",
        "n_values",
        "n_runs",
        "slope",
        "effect",
        "se",
        *SETTING_KEYS,
        "batches",
    ]
    rows = []
    for axis in axes:
        sw = sweep_rows(last, axis)
        for label, runs in sw.groupby("sweep", sort=True):
            slope, se = log2_slope(
                runs[axis].to_numpy(), runs["alpha"].to_numpy(), runs["se"].to_numpy()
            )
            rows.append(
                {
                    "axis": axis,
                    "sweep": label,
                    "n_values": int(runs[axis].nunique()),
                    "n_runs": len(runs),
                    "slope": slope,
                    "effect": abs(slope),
                    "se": se,
                    **runs.iloc[0][SETTING_KEYS].to_dict(),
                    "batches": frozenset(int(b) for b in runs["batch_size"]),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def _comparable(size: pd.DataFrame, batch: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(width/depth sweeps, batch-size sweeps) that have a sweep of the other kind in their
    setting: same data set, architecture, loss and learning rate, the width/depth sweep at
    one of the batch-size sweep's batch sizes."""
    pairs = np.array(
        [
            [
                all(s[k] == b[k] for k in SETTING_KEYS) and s["batches"] <= b["batches"]
                for _, b in batch.iterrows()
            ]
            for _, s in size.iterrows()
        ],
        dtype=bool,
    ).reshape(len(size), len(batch))
    return size[pairs.any(axis=1)], batch[pairs.any(axis=0)]


def claim_c2(m: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C2: |slope of α̂ per doubling of batch size| / |slope per doubling of width or depth|.

    Each sweep (runs equal in every axis but one and the seed, at their last
    checkpoint) gives :func:`log2_slope`; its size does not grow with the
    number of levels. Each side is the median over its sweeps of |slope| (and
    of its standard error); a sweep counts only where the other side has one in
    its data set, architecture, loss and learning rate (:func:`_comparable`).
    Interval: each side ± z standard errors, the numerator's lower end clipped at 0.
    """
    last = m[m["last"] & np.isfinite(m["alpha"])]
    batch = sweep_slopes(last, ["batch_size"])
    size = sweep_slopes(last, ["width", "depth"])
    found = pd.concat([batch, size], ignore_index=True)
    n_size_sweeps, n_batch_sweeps = len(size), len(batch)
    size, batch = _comparable(size, batch)
    statistic = "|α̂ change per doubling of batch size| / |per doubling of width or depth|"
    threshold = f"< {th.c2_ratio_max}"
    missing = [] if n_batch_sweeps else ["batch-size"]
    if not n_size_sweeps:
        missing.append("width or depth")
    elif size.empty and n_batch_sweeps:
        missing.append("width or depth (in a batch-size sweep's setting)")
    n_runs = _distinct_runs(last, found if missing else pd.concat([batch, size], ignore_index=True))
    if missing:
        return Evaluation(
            statistic=statistic,
            value=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            threshold=threshold,
            verdict=INCONCLUSIVE,
            reason=f"too few runs (no {' and no '.join(missing)} sweep in the grid)",
            n_runs=n_runs,
            detail="a sweep is ≥ 2 values of one axis with every other axis fixed; the "
            "width/depth sweeps must share the batch-size sweep's data set, architecture, loss, "
            "learning rate and one of its batch sizes; add them to the grid (the paper grid has "
            "batch-size, width and depth sweeps)",
        )
    e_b, se_b = float(batch["effect"].median()), float(batch["se"].median())
    e_n, se_n = float(size["effect"].median()), float(size["se"].median())
    ratio = _ratio(e_b, e_n)
    low = _ratio(max(e_b - th.z * se_b, 0.0), e_n + th.z * se_n)
    high = _ratio(e_b + th.z * se_b, e_n - th.z * se_n)
    if not (np.isfinite(se_b) and np.isfinite(se_n)):
        low, high = -math.inf, math.inf
    verdict, reason = interval_verdict(ratio, low, high, th.c2_ratio_max)
    if n_runs < th.min_runs:
        verdict, reason = INCONCLUSIVE, f"too few runs ({n_runs} < min_runs {th.min_runs})"
    detail = (
        f"batch size: |slope| {e_b:.3f} ± {se_b:.3f} per doubling (median of {len(batch)} "
        f"sweeps, {_levels(batch)}; {n_batch_sweeps - len(batch)} others left out); "
        f"width/depth: |slope| {e_n:.3f} ± {se_n:.3f} per doubling "
        f"(median of {len(size)} sweeps: {int((size.axis == 'width').sum())} over width, "
        f"{int((size.axis == 'depth').sum())} over depth, {_levels(size)}, in the batch-size "
        f"sweeps' data set, architecture, loss and learning rate; "
        f"{n_size_sweeps - len(size)} other width/depth sweeps left out)"
    )
    if reason.startswith("too much spread"):
        detail += "; " + _c2_decider(e_b, se_b, e_n, se_n, th, int(last["seed"].nunique()))
    return Evaluation(
        statistic=statistic,
        value=ratio,
        ci_low=low,
        ci_high=high,
        threshold=threshold,
        verdict=verdict,
        reason=reason,
        n_runs=n_runs,
        detail=detail,
    )


def _c2_decider(
    e_b: float, se_b: float, e_n: float, se_n: float, th: Thresholds, seeds: int
) -> str:
    """What would decide C2 at the measured slopes: the number of seeds per grid point at which
    the interval (standard errors shrinking as 1/√seeds) would clear ``c2_ratio_max``."""
    for factor in range(2, 65):
        s = 1.0 / math.sqrt(factor)
        low = _ratio(max(e_b - th.z * se_b * s, 0.0), e_n + th.z * se_n * s)
        high = _ratio(e_b + th.z * se_b * s, e_n - th.z * se_n * s)
        if high < th.c2_ratio_max or low >= th.c2_ratio_max:
            return (
                f"at these slopes about {factor * seeds} seeds per grid point "
                f"(grids.<name>.runs[].seed; now {seeds}) would decide it"
            )
    return (
        f"at these slopes even {64 * seeds} seeds per grid point would not decide it: the "
        "two effects are about equal"
    )


def _levels(sweeps: pd.DataFrame) -> str:
    """``3-5 levels, 9-15 runs each`` for rows of :func:`sweep_slopes`."""

    def span(col: str) -> str:
        lo, hi = int(sweeps[col].min()), int(sweeps[col].max())
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    return f"{span('n_values')} levels, {span('n_runs')} runs each"


def _distinct_runs(last: pd.DataFrame, sweeps: pd.DataFrame) -> int:
    """Runs in any of ``sweeps`` (rows of :func:`sweep_slopes`), each counted once (a run at
    the crossing of a batch-size and a width sweep is in both)."""
    keys = set()
    for axis, labels in sweeps.groupby("axis")["sweep"]:
        rows = sweep_rows(last, axis)
        rows = rows[rows["sweep"].isin(set(labels))]
        keys.update(rows[RUN_KEYS].itertuples(index=False, name=None))
    return len(keys)


def _ratio(num: float, den: float) -> float:
    """num / den for effects: +inf when only the denominator vanishes, NaN when both do."""
    if den > 0:
        return num / den
    return math.inf if num > 0 else math.nan


def steepest_intervals(
    u: np.ndarray, values: np.ndarray, noise: np.ndarray, z: float, rise_only: bool
) -> np.ndarray:
    """Checkpoint intervals [i, i+1] whose change per unit of ``u`` is within noise of the steepest.

    ``u``: checkpoint times (here log(step + 1)); ``values`` with standard
    errors ``noise`` (NaN counts as unknown: infinite). Interval i changes by
    c_i = |v_{i+1} − v_i| (``rise_only``: v_{i+1} − v_i) with standard error
    e_i = √(se_i² + se_{i+1}²); its rate is r_i = c_i / Δu_i with standard
    error e_i / Δu_i. With k the steepest interval, returns every i with
    r_k − r_i ≤ z·√(se(r_k)² + se(r_i)²) (k included), in order; empty when
    c_k is not above z·e_k (no change beyond noise). An interval next to a missing
    value (NaN) is never a candidate, even when its error is unknown too.
    """
    se = np.nan_to_num(np.asarray(noise, dtype=np.float64), nan=np.inf)
    dv = np.diff(np.asarray(values, dtype=np.float64))
    du = np.diff(np.asarray(u, dtype=np.float64))
    change = np.where(np.isfinite(dv), dv if rise_only else np.abs(dv), -np.inf)
    change_se = np.hypot(se[:-1], se[1:])
    rate, rate_se = change / du, change_se / du
    k = int(np.argmax(rate))
    if not change[k] > z * change_se[k]:
        return np.zeros(0, dtype=int)
    below = rate[k] - rate  # rate[k] is finite
    close = ~(below > z * np.hypot(rate_se[k], rate_se))  # an unknown error keeps a candidate
    close &= np.isfinite(change)  # but not an unknown value
    close[k] = True
    return np.flatnonzero(close)


def c3_run(
    alpha: np.ndarray, acc: np.ndarray, steps: np.ndarray, early_step: float, max_ratio: float
) -> str:
    """*yes*, *no* or *undecided* for one run of C3, from the :func:`steepest_intervals` of α̂
    (``alpha``) and of test accuracy (``acc``) at checkpoints ``steps``.

    An interval [t_i, t_{i+1}] is *early* when t_{i+1} ≤ ``early_step``; two
    intervals *coincide* when the geometric means of their (step + 1) ends are
    within a factor ``max_ratio``. *yes*: every candidate interval of both is
    early and every pair (α̂, accuracy) coincides. *no*: every candidate of α̂,
    or every one of accuracy, ends after ``early_step``, or no pair coincides.
    *undecided*: otherwise, or when α̂ or accuracy has no change beyond noise.
    """
    if alpha.size == 0 or acc.size == 0:
        return "undecided"
    ends = steps[1:]
    mid = np.log1p(steps[:-1]) / 2 + np.log1p(steps[1:]) / 2
    gaps = np.abs(mid[alpha][:, None] - mid[acc][None, :])
    coincide = gaps <= math.log(max_ratio)
    early_a, early_c = ends[alpha] <= early_step, ends[acc] <= early_step
    if early_a.all() and early_c.all() and coincide.all():
        return "yes"
    if not early_a.any() or not early_c.any() or not coincide.any():
        return "no"
    return "undecided"


def claim_c3(m: pd.DataFrame, accuracy: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C3: share of runs whose steepest α̂ change and steepest test-accuracy rise coincide early.

    Per run, on the scale u = log(step + 1) (log-spaced checkpoints are evenly
    spaced on it, so a one-step first interval gets no advantage): the
    :func:`steepest_intervals` of α̂ (either direction) and of test accuracy
    (a rise; standard error √(p(1 − p)/n_test)); judged by :func:`c3_run` with
    "early" = ending by step ``c3_early_fraction`` × the run's last step and
    "coincide" = within a factor ``c3_max_step_ratio`` in step + 1. Runs with
    fewer than ``c3_min_checkpoints`` checkpoints cannot place a change in time
    and make the claim inconclusive.

    ``accuracy``: columns grid axes, step, test_accuracy, n_test (images).
    """
    acc = accuracy.drop_duplicates([*RUN_KEYS, "step"])
    # every checkpoint of each run measured, α̂ NaN where it has none (left out as too small,
    # or not finite): an interval next to it is then never a candidate (steepest_intervals)
    keys = [*RUN_KEYS, "step"]
    steps = pd.concat([m[keys], acc.merge(m[RUN_KEYS].drop_duplicates(), on=RUN_KEYS)[keys]])
    merged = steps.drop_duplicates().merge(m, on=keys, how="left").merge(acc, on=keys, how="left")
    statistic = (
        f"share of runs whose steepest α̂ change and test-accuracy rise per log(step + 1) end "
        f"by {th.c3_early_fraction:.0%} of the run, within a factor {th.c3_max_step_ratio:g} "
        "in step + 1"
    )
    threshold = f"≥ {th.min_share} of runs"
    counts = {"yes": 0, "no": 0, "undecided": 0, "flat": 0}
    where: list[tuple[float, float]] = []
    n_checkpoints = []
    for _, run in merged.groupby(RUN_KEYS, sort=True):
        run = run.sort_values("step")
        steps = run["step"].to_numpy(dtype=np.float64)
        n_checkpoints.append(len(steps))
        if len(steps) < th.c3_min_checkpoints:
            continue
        u = np.log1p(steps)
        p = run["test_accuracy"].to_numpy(dtype=np.float64)
        acc_se = np.sqrt(p * (1 - p) / run["n_test"].to_numpy(dtype=np.float64))
        a = steepest_intervals(u, run["alpha"].to_numpy(), run["se"].to_numpy(), th.z, False)
        c = steepest_intervals(u, p, acc_se, th.z, True)
        counts[c3_run(a, c, steps, th.c3_early_fraction * steps[-1], th.c3_max_step_ratio)] += 1
        counts["flat"] += a.size == 0 or c.size == 0
        if a.size and c.size:
            where.append(
                (
                    _steepest_end(a, u, run["alpha"].to_numpy(), False, steps),
                    _steepest_end(c, u, p, True, steps),
                )
            )
    if n_checkpoints and min(n_checkpoints) < th.c3_min_checkpoints:
        return Evaluation(
            statistic=statistic,
            value=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            threshold=threshold,
            verdict=INCONCLUSIVE,
            reason=f"too few checkpoints ({min(n_checkpoints)} < c3_min_checkpoints "
            f"{th.c3_min_checkpoints})",
            n_runs=len(n_checkpoints),
            detail="add checkpoints (training.checkpoints) to resolve when α̂ and accuracy change",
        )
    share, low, high, verdict, reason = share_verdict(
        counts["yes"], counts["no"], counts["undecided"], th
    )
    detail = _c3_detail(counts, where)
    if reason.startswith("too much spread"):
        detail += "; " + c3_decider(counts, th)
    return Evaluation(
        statistic=statistic,
        value=share,
        ci_low=low,
        ci_high=high,
        threshold=threshold,
        verdict=verdict,
        reason=reason,
        n_runs=counts["yes"] + counts["no"] + counts["undecided"],
        detail=detail,
    )


def _steepest_end(
    candidates: np.ndarray, u: np.ndarray, values: np.ndarray, rise_only: bool, steps: np.ndarray
) -> float:
    """End step of the steepest of the ``candidates`` intervals (change per unit of ``u``)."""
    dv = np.diff(values.astype(np.float64))[candidates]
    rate = (dv if rise_only else np.abs(dv)) / np.diff(u)[candidates]
    return float(steps[candidates[int(np.argmax(rate))] + 1])


def c3_decider(counts: Mapping[str, int], th: Thresholds) -> str:
    """What would decide an inconclusive C3: how many of its undecided runs would have to
    answer no (not supported) or yes (supported), and what resolves each kind of undecided
    run present (``counts["flat"]`` of them without a change beyond noise). Called only for
    "too much spread" (share_verdict), where enough undecided runs can give either verdict."""
    yes, no, undecided = counts["yes"], counts["no"], counts["undecided"]
    n = yes + no + undecided
    to_no = next(k for k in range(undecided + 1) if (n - no - k) / n < th.min_share)
    to_yes = next(k for k in range(undecided + 1) if (yes + k) / n >= th.min_share)
    flat = counts.get("flat", 0)
    fixes = []
    if flat:
        fixes.append(
            f"the {flat} without an α̂ change or accuracy rise beyond noise need smaller "
            "standard errors (more noise values or test images per measurement)"
        )
    if undecided > flat:
        fixes.append(
            f"the {undecided - flat} with candidate intervals on both sides of a limit need "
            "checkpoints closer together (training.checkpoints)"
        )
    return (
        f"decided by the undecided runs: {to_no} more answering no would make it not "
        f"supported, {to_yes} answering yes supported; " + "; ".join(fixes)
    )


def _c3_detail(counts: Mapping[str, int], where: Sequence[tuple[float, float]]) -> str:
    """Counts of C3's run verdicts and the median end steps of the steepest intervals."""
    text = (
        f"{counts['yes']} runs yes, {counts['no']} no, {counts['undecided']} undecided "
        f"({counts['flat']} with no α̂ change or accuracy rise beyond noise, "
        f"{counts['undecided'] - counts['flat']} with candidate intervals on both sides of a "
        "limit)"
    )
    if where:
        a, c = np.median(np.array(where), axis=0)
        text += (
            f"; steepest α̂ change per log(step + 1) ends at a median step {a:.0f}, steepest "
            f"test-accuracy rise at step {c:.0f}"
        )
    return text


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per run × checkpoint with the number of test images it was measured on.

    ``n_test`` = test minibatches × batch size (the images the test-split noise
    used); 10,000 (every data set's test split) when the test split was not measured.
    """
    acc = summary[[*RUN_KEYS, "step", "test_accuracy"]].drop_duplicates([*RUN_KEYS, "step"])
    test = summary[summary["split"] == "test"]
    n_test = test.assign(n_test=test["n_minibatches"] * test["batch_size"])
    acc = acc.merge(n_test[[*RUN_KEYS, "step", "n_test"]], on=[*RUN_KEYS, "step"], how="left")
    acc["n_test"] = acc["n_test"].fillna(10_000)
    return acc


# ----------------------------------------------------------------------------
# All claims × all estimator choices
# ----------------------------------------------------------------------------


def combine_sweep(evaluations: Mapping[str, Evaluation]) -> Evaluation:
    """One verdict from the claim judged at every block size (variant): the common one, or
    inconclusive (depends on K1) when they disagree."""
    if not evaluations:
        return Evaluation(
            statistic="",
            value=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            threshold="",
            verdict=INCONCLUSIVE,
            reason="no block size common to every measurement",
        )
    evs = list(evaluations.values())
    values = np.array([e.value for e in evs], dtype=np.float64)
    finite = values[np.isfinite(values)]
    by_verdict: dict[str, list[str]] = {}
    for variant, ev in evaluations.items():
        by_verdict.setdefault(ev.verdict, []).append(variant)
    if len(by_verdict) == 1:
        verdict = evs[0].verdict
        reason = evs[0].reason if verdict == INCONCLUSIVE else ""
    else:
        verdict, reason = INCONCLUSIVE, "depends on K1"
    k1s = sorted({int(v.split("K1=")[1]) for v in evaluations})
    detail = "; ".join(
        f"{v}: {_describe_variants(vs, list(evaluations))}" for v, vs in by_verdict.items()
    )
    return Evaluation(
        statistic=evs[0].statistic,
        value=float(np.median(finite)) if finite.size else math.nan,
        ci_low=float(finite.min()) if finite.size else math.nan,
        ci_high=float(finite.max()) if finite.size else math.nan,
        threshold=evs[0].threshold,
        verdict=verdict,
        reason=reason,
        n_runs=max(e.n_runs for e in evs),
        detail=f"value: median over {len(evs)} block sizes × orders (K1 = {k1s[0]:,} to "
        f"{k1s[-1]:,}), interval: their range; " + detail,
    )


def _describe_variants(variants: Sequence[str], all_variants: Sequence[str]) -> str:
    """``natural order at every K1, shuffled order at K1 = 10, 30`` from ``"<order> K1=<k>"``."""

    def split(vs: Sequence[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for v in vs:
            order, k1 = v.split(" K1=")
            out.setdefault(order, []).append(int(k1))
        return out

    totals = {order: len(ks) for order, ks in split(all_variants).items()}
    return ", ".join(
        f"{order} order at every K1"
        if len(ks) == totals[order]
        else f"{order} order at K1 = {', '.join(f'{k:,}' for k in ks)}"
        for order, ks in split(variants).items()
    )


def evaluate_claims(
    summary: pd.DataFrame,
    estimates: pd.DataFrame,
    th: Thresholds,
    ci_level: float = 0.95,
    k1_factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
    sharpness: pd.DataFrame | None = None,
    iterates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """C1-C3, C7a and C7b judged with every estimator choice, C7a and C7b on the iterates'
    α̂ (:data:`ITERATES`: ``iterates``, iterates_vs_noise.csv, or None when the grid does not
    measure them: inconclusive rows), and C7c from ``sharpness`` (sharpness.csv) when given:
    the long claims table (:data:`COLUMNS`).

    Each choice uses only the measurements it has enough data for
    (:data:`ENOUGH_FLAG`); how many it left out is appended to the detail.
    ``k1_factors``: config ``estimators.robust_k1_factors`` (see :func:`k1_spread`).
    """
    from sgdtail.eta_over_b import (  # they import this module
        claim_c7a,
        claim_c7b,
        claim_c7c,
        iterates_claims,
    )

    m = alpha_measurements(summary, estimates, ci_level, k1_factors, split=th.split)
    accuracy = accuracy_table(usable_runs(gradient_rows(summary)))
    judges = {
        "C1": lambda sub: claim_c1(sub, th),
        "C2": lambda sub: claim_c2(sub, th),
        "C3": lambda sub: claim_c3(sub, accuracy, th),
        "C7a": lambda sub: claim_c7a(sub, th),
        "C7b": lambda sub: claim_c7b(sub, th),
    }
    chosen = {e: m[m["estimator"] == e] for e in ESTIMATOR_CHOICES}
    notes = {e: small_sample_note(sub, e) for e, sub in chosen.items()}
    chosen = {e: sub[sub["enough"].astype(bool)] for e, sub in chosen.items()}
    n_measurements = len(chosen[PRIMARY])
    variants = common_variants(chosen["block_sweep"], n_measurements)
    rows = []
    for claim, judge in judges.items():
        for estimator, sub in chosen.items():
            if estimator == "block_sweep":
                ev = combine_sweep({v: judge(sub[sub["variant"] == v]) for v in variants})
            else:
                ev = judge(sub)
            if notes[estimator]:
                ev.detail = f"{ev.detail}; {notes[estimator]}"
            rows.append({"claim": claim, "estimator": estimator, **dataclasses.asdict(ev)})
    for claim, ev in iterates_claims(iterates, th, ci_level):
        rows.append({"claim": claim, "estimator": ITERATES, **dataclasses.asdict(ev)})
    if sharpness is not None:
        ev = claim_c7c(sharpness, th)
        rows.append({"claim": "C7c", "estimator": "n/a", **dataclasses.asdict(ev)})
    return pd.DataFrame(rows, columns=COLUMNS)


def external_claims(claims: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Claims judged by other stages (C4-C7), one dict each with :data:`EXTERNAL_KEYS`.

    ``threshold`` may be a number or text; ``verdict`` must be one of
    :data:`VERDICTS` (an ``inconclusive (...)`` reason in parentheses is kept).
    Returned rows have estimator ``"n/a"``: these are not α estimates.
    """
    rows = []
    for i, c in enumerate(claims):
        missing = [k for k in EXTERNAL_KEYS if k not in c]
        if missing:
            raise ValueError(f"claim dict #{i} ({c.get('claim', '?')}) lacks keys {missing}")
        verdict, reason = parse_verdict(c["verdict"])
        if verdict not in VERDICTS:
            raise ValueError(
                f"claim {c['claim']}: verdict {c['verdict']!r} is not one of {list(VERDICTS)}"
            )
        rows.append(
            {
                "claim": str(c["claim"]),
                "estimator": "n/a",
                "statistic": str(c["statistic"]),
                "value": _float(c["value"]),
                "ci_low": _float(c["ci_low"]),
                "ci_high": _float(c["ci_high"]),
                "threshold": str(c["threshold"]),
                "verdict": verdict,
                "reason": reason,
                "n_runs": 0,
                "detail": str(c["detail"]),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def survives(group: pd.DataFrame) -> str:
    """``yes`` when every estimator choice gives the primary's verdict, else ``no`` naming the
    choices that differ; ``n/a`` for claims that are not α estimates."""
    if (group["estimator"] == "n/a").all():
        return "n/a"
    verdicts = group[group["estimator"].isin(ESTIMATOR_CHOICES)].set_index("estimator")["verdict"]
    differ = [ESTIMATOR_CHOICES[e] for e, v in verdicts.items() if v != verdicts[PRIMARY]]
    return "yes" if not differ else f"no ({', '.join(differ)} differ)"


def format_value(row: Mapping[str, Any]) -> str:
    """``0.93 [0.70, 0.99]``; ``n/a`` when not measurable."""
    value = row["value"]
    if value is None or not np.isfinite(value):
        return "n/a"
    text = f"{value:.2f}"
    if np.isfinite(row["ci_low"]) or np.isfinite(row["ci_high"]):
        text += f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return text


def format_verdict(row: Mapping[str, Any]) -> str:
    """``supported`` / ``not supported`` / ``inconclusive: <reason>``."""
    return row["verdict"] + (f": {row['reason']}" if row["reason"] else "")


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: the primary estimate, threshold, and each estimator choice's verdict."""
    rows = []
    for claim, group in long.groupby("claim", sort=True):
        primary = group[group["estimator"].isin([PRIMARY, "n/a"])].iloc[0]
        row = {
            "claim": claim,
            "statistic": primary["statistic"],
            "value [interval]": format_value(primary),
            "threshold": primary["threshold"],
        }
        for estimator, label in ESTIMATOR_CHOICES.items():
            sel = group[group["estimator"] == estimator]
            row[label] = format_verdict(sel.iloc[0]) if len(sel) else "n/a"
        if (group["estimator"] == "n/a").all():
            row[ESTIMATOR_CHOICES[PRIMARY]] = format_verdict(primary)
        row["survives every estimator"] = survives(group)
        sel = group[group["estimator"] == ITERATES]
        row[ITERATES_LABEL] = format_verdict(sel.iloc[0]) if len(sel) else "n/a"
        rows.append(row)
    return pd.DataFrame(rows)


def rules_text(th: Thresholds) -> list[str]:
    """The "Rules and thresholds" bullets of the claims Markdown: each statistic in words."""
    return [
        f"- Runs: only runs that trained count (status completed or converged); diverged runs "
        f"and runs whose final training accuracy is below {th.min_train_accuracy:.0%} "
        "(not_trained) enter no statistic. A measurement with too few noise values "
        "(pooled_enough false) is not used by the pooled estimators (robust, reference, block "
        "sweep), one with too few minibatches (per_coordinate_enough false) not by the "
        "per-coordinate median; each claim's details say how many were left out.",
        f"- Share claims (C1, C3): each run is yes, no or undecided; supported when ≥ "
        f"{th.min_share} of the runs are yes, not supported when more than "
        f"{1 - th.min_share:.2g} are no, otherwise inconclusive (too much spread); fewer than "
        f"{th.min_runs} runs: inconclusive (too few runs). The value is the share of yes with "
        "its Wilson 95% interval.",
        f"- C1: at each run's last checkpoint, yes when the upper end of the α̂ interval is "
        f"below {th.c1_alpha_max}, no when its lower end is at or above it. Robust estimate: "
        "the interval is the batch-means interval (which belongs to K1 = the power of two "
        "nearest √K only) widened by the spread of the robust estimate's own members, the α̂ "
        "at K1 = the power of two nearest f·√K for every "
        "factor f (read off the natural-order block sweep, linear in log K1): lower end − "
        "(median member − smallest), upper end + (largest − median member). The other "
        "estimators have no interval: their point value is compared.",
        f"- C2: for each sweep (runs equal in every axis but one and the seed, last "
        "checkpoint) the least-squares slope of α̂ against log2 of the swept value, i.e. the "
        "change of α̂ per doubling, every seed a point; it does not grow with the number of "
        "levels. Its standard error is √(v / Σ(log2 x − mean)²), v the larger of the residual "
        "variance and the mean squared batch-means standard error. The ratio is the median "
        "|slope| over batch-size sweeps divided by the median |slope| over the width and depth "
        "sweeps, each side counting only sweeps that have one of the other kind in their data "
        "set, architecture, loss and learning rate; its interval uses "
        f"each median ± {th.z} × the median standard error. Supported when the whole interval "
        f"is below {th.c2_ratio_max}, not supported when it is at or above, inconclusive when "
        "it straddles or when a sweep is missing.",
        "- C3: time is measured as u = log(step + 1), on which log-spaced checkpoints are "
        "evenly spaced. For α̂ (a change either way) and for test accuracy (a rise), each "
        "checkpoint interval's change is divided by its length in u; the candidates are the "
        f"steepest interval and every interval whose rate is within {th.z} standard errors of "
        "it (standard error of a change: √(se₁² + se₂²); accuracy: √(p(1 − p)/n_test)). A run "
        "is yes when every candidate of both ends by step "
        f"{th.c3_early_fraction:.0%} × the run's last step (early) and every α̂ candidate lies "
        f"within a factor {th.c3_max_step_ratio:g} in step + 1 of every accuracy candidate "
        "(interval centres: geometric mean of step + 1 at its ends; coincide); no when all "
        "candidates of α̂ or all of accuracy end after the early step, or no pair coincides; "
        f"undecided otherwise, or when the steepest change is not above {th.z} standard errors. "
        f"Fewer than {th.c3_min_checkpoints} checkpoints: inconclusive.",
        "- C7 on networks: a family is the runs equal in every axis but the learning rate η, "
        "the batch size b and the seed, a cell the runs of one (η, b), each at its last "
        "checkpoint. C7a: per family with two or more η/b, the least-squares slope of the "
        "cells' mean α̂ against log2(η/b), every cell a point; standard error √(v / Σ(log2 x − "
        "mean)²), v the larger of the cells' residual variance and the variance of a cell's "
        "mean from its seeds (the pooled seed-to-seed variance, at least the mean squared "
        f"batch-means standard error, over the cell's seeds); ± {th.z} standard errors; "
        "supported when every family's interval lies below 0, not supported when one lies "
        "above 0, else inconclusive. C7b: per family and η/b held by two or more cells, the "
        f"mean α̂ over seeds at the largest b minus at the smallest b, ± {th.z} standard errors "
        "(the seed-to-seed variance pooled over the family's cells, at least the mean squared "
        "batch-means standard error; no cell with two seeds: inconclusive); supported when "
        f"every interval lies inside ±{th.c7_same_tolerance:g}, not supported when one lies "
        "outside it. C7c: as C7a for log2 λ_max (top Hessian eigenvalue) over the end points "
        "C6 admits, its checks of the α̂ aside; it does not depend on the α estimator. Fewer "
        f"than {th.min_runs} runs: inconclusive.",
        "- Block-size sweep: the rule is applied at every block size K1 that every "
        "measurement has, in natural and shuffled order; one verdict if all agree, "
        "otherwise inconclusive (depends on K1).",
    ]


def claims_markdown(long: pd.DataFrame, runs: pd.DataFrame, th: Thresholds) -> str:
    """The claims table as Markdown: table, exclusions, rules and per-estimator details."""
    wide = wide_table(long)
    header = "| " + " | ".join(wide.columns) + " |"
    rule = "|" + "---|" * len(wide.columns)
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in wide.itertuples(index=False)
    ]
    lines = [
        "# Claims and verdicts",
        "",
        f"Runs: {excluded_runs_note(runs, th.min_train_accuracy)} Noise split: {th.split}.",
        "",
        header,
        rule,
        *body,
        "",
        f"Value: the primary estimate ({ESTIMATOR_CHOICES[PRIMARY]}) with its interval "
        "(share claims: Wilson 95% interval over runs; C2: ± z standard errors). Each "
        "estimator column is the verdict the same rule gives with that estimator; "
        "*survives every estimator* is `yes` when all four agree. The last column judges C7a "
        "and C7b on the tail index of the SGD iterates instead of the gradient noise.",
        "",
        "## Claims",
        "",
        *[f"- **{c}**: {CLAIM_TEXT.get(c, '')}" for c in wide["claim"]],
        "",
        "## Rules and thresholds",
        "",
        *rules_text(th),
        "",
        "## Details",
        "",
    ]
    for row in long.itertuples(index=False):
        label = ESTIMATOR_CHOICES.get(row.estimator, row.estimator)
        lines.append(
            f"- **{row.claim}, {label}**: {format_value(row._asdict())}; "
            f"{format_verdict(row._asdict())}. {row.detail}"
        )
    return "\n".join(lines) + "\n"


def claims_html(markdown_text: str, wide: pd.DataFrame) -> str:
    """A self-contained HTML page for the Snakemake report: the table, then the Markdown text
    (exclusions, rules, details) as preformatted text."""
    table = wide.to_html(index=False, escape=True, border=0, classes="claims")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Claims</title><style>"
        "body{font-family:sans-serif;margin:1em}table.claims{border-collapse:collapse}"
        "table.claims td,table.claims th{border:1px solid #bbb;padding:4px;vertical-align:top}"
        "pre{white-space:pre-wrap}</style></head><body><h1>Claims and verdicts</h1>"
        f"{table}<h2>Exclusions, rules and details</h2><pre>{html.escape(markdown_text)}</pre>"
        "</body></html>\n"
    )
