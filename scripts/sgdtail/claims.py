"""Verdicts on the papers' claims, computed from the tidy tables (see sgdtail.aggregate).

C1-C3 are judged here from ``summary.csv`` and ``estimates.parquet``; C4-C6
come from the dynamics and sharpness stages as small JSON dicts and are passed
through :func:`external_claims`.

Every claim is judged once per *estimator choice* (:data:`ESTIMATOR_CHOICES`):

* ``robust``: the pooled robust α̂ (median over block sizes K1) with its
  batch-means interval: the primary estimate;
* ``reference``: the pooled α̂ of the 2019 code (no interval);
* ``per_coordinate``: the median over coordinates of the per-coordinate α̂
  across minibatches (no interval);
* ``block_sweep``: the pooled α̂ at each block size K1 of the sweep, in natural
  and in shuffled order; the claim is judged at every K1 (those every
  measurement has), and the sweep's verdict is the common one, or
  ``inconclusive`` (depends on K1) when the K1 values disagree.

A verdict *survives every estimator* when all four choices give the same one.

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

Uncertainty of one measurement: the robust estimate's batch-means interval
(``se = (high - low) / (2 z_level)``). The other estimators have no interval
of their own; they borrow the robust standard error of the same measurement.
Across seeds (C2) the standard error of a mean over ≥ 2 seeds is the seeds'
standard deviation / √n instead.
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

from sgdtail.grid import AXES

VERDICTS: tuple[str, ...] = ("supported", "not supported", "inconclusive")
"""The three verdicts; ``inconclusive`` always comes with a reason."""

ESTIMATOR_CHOICES: dict[str, str] = {
    "robust": "pooled robust",
    "reference": "pooled reference (2019)",
    "per_coordinate": "per-coordinate median",
    "block_sweep": "block-size sweep (every K1, both orders)",
}
"""Estimator choices every claim is judged with, in table order; the first is primary."""

PRIMARY = "robust"

CLAIM_TEXT: dict[str, str] = {
    "C1": "The gradient noise is not Gaussian: α̂ is well below 2 in every setting.",
    "C2": "Batch size has a smaller effect on α than network size.",
    "C3": "Early in training the noise makes large jumps, which fade quickly while accuracy "
    "rises sharply, very early in training.",
    "C4": "Brownian exit times grow exponentially with basin height; α-stable ones do not "
    "depend on the height but grow polynomially with the width.",
    "C5": "A heavy-tailed path looks Gaussian over short windows but shows frequent large "
    "jumps over long ones.",
    "C6": "Training reaches wide minima more often and faster than Brownian theory predicts.",
}
"""The review's claims (PAPER.md)."""

EXTERNAL_KEYS: tuple[str, ...] = (
    "claim", "statistic", "value", "ci_low", "ci_high", "threshold", "verdict", "detail",
)
"""Keys of a claim dict written by another stage (C4-C6)."""

RUN_KEYS: list[str] = list(AXES)
MEASUREMENT_KEYS: list[str] = [*AXES, "step", "split"]

COLUMNS: list[str] = [
    "claim", "estimator", "statistic", "value", "ci_low", "ci_high", "threshold", "verdict",
    "reason", "n_runs", "detail",
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
    c3_max_gap: int = 1
    c3_min_checkpoints: int = 4

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
    """Summary rows of runs that did not diverge (diverged runs enter no statistic)."""
    return summary[summary["status"] != "diverged"]


def alpha_measurements(
    summary: pd.DataFrame, estimates: pd.DataFrame, ci_level: float = 0.95
) -> pd.DataFrame:
    """Long table of α̂ per measurement and estimator choice.

    Columns: the grid axes, step, split, estimator (a key of
    :data:`ESTIMATOR_CHOICES`), variant (``""``, or ``"natural K1=100"`` for the
    sweep), alpha, low, high (interval; equal to alpha where there is none), se
    (standard error: see the module docstring). Diverged runs are left out.
    """
    s = usable_runs(summary)
    z_level = statistics.NormalDist().inv_cdf(0.5 + ci_level / 2.0)
    base = s[MEASUREMENT_KEYS].copy()
    robust_se = (s["alpha_robust_ci_high"] - s["alpha_robust_ci_low"]) / (2.0 * z_level)
    robust_se = robust_se.where(np.isfinite(robust_se))
    frames = [
        base.assign(
            estimator="robust", variant="", alpha=s["alpha_robust"],
            low=s["alpha_robust_ci_low"], high=s["alpha_robust_ci_high"], se=robust_se,
        ),
        base.assign(
            estimator="reference", variant="", alpha=s["alpha_reference"],
            low=s["alpha_reference"], high=s["alpha_reference"], se=robust_se,
        ),
        base.assign(
            estimator="per_coordinate", variant="", alpha=s["alpha_per_coordinate_median"],
            low=s["alpha_per_coordinate_median"], high=s["alpha_per_coordinate_median"],
            se=robust_se,
        ),
    ]
    sweep = estimates[(estimates["estimator"] == "block_sweep") & (estimates["scope"] == "pooled")]
    if not sweep.empty:
        se_of = base.assign(se=robust_se)
        sw = sweep[[*MEASUREMENT_KEYS, "order", "k1", "alpha"]].merge(se_of, on=MEASUREMENT_KEYS)
        sw["k1"] = sw["k1"].astype(int)
        sw = sw.sort_values(["order", "k1"], kind="stable")
        frames.append(
            sw.assign(
                estimator="block_sweep",
                variant=sw["order"] + " K1=" + sw["k1"].astype(str),
                low=sw["alpha"], high=sw["alpha"],
            ).drop(columns=["order", "k1"])
        )
    out = pd.concat(frames, ignore_index=True)
    return out[[*MEASUREMENT_KEYS, "estimator", "variant", "alpha", "low", "high", "se"]]


def common_variants(m: pd.DataFrame) -> list[str]:
    """Sweep variants (order × K1) present and finite in every measurement of ``m``.

    Block sizes depend on the number of values, so a small network's sweep stops
    at a smaller K1 than a large one's; only the common ones are comparable.
    """
    sweep = m[(m["estimator"] == "block_sweep") & np.isfinite(m["alpha"])]
    if sweep.empty:
        return []
    n_meas = m[m["estimator"] == PRIMARY].groupby(MEASUREMENT_KEYS).ngroups
    counts = sweep.groupby("variant", sort=False).size()
    return [v for v, c in counts.items() if c == n_meas]


def last_checkpoints(m: pd.DataFrame) -> pd.DataFrame:
    """Rows of each run's last measured checkpoint."""
    last = m.groupby(RUN_KEYS)["step"].transform("max")
    return m[m["step"] == last]


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
        return share, low, high, "inconclusive", f"too few runs ({n} < min_runs {th.min_runs})"
    if n_yes / n >= th.min_share:
        return share, low, high, "supported", ""
    if n_no / n > 1.0 - th.min_share:
        return share, low, high, "not supported", ""
    return (
        share, low, high, "inconclusive",
        f"too much spread ({n_undecided} of {n} runs undecided)",
    )


def interval_verdict(value: float, low: float, high: float, threshold: float) -> tuple[str, str]:
    """Verdict of "value < threshold" from an interval: below, at or above, or straddling."""
    if not np.isfinite(value):
        return "inconclusive", "not measurable"
    if high < threshold:
        return "supported", ""
    if low >= threshold:
        return "not supported", ""
    return "inconclusive", (
        f"too much spread (interval [{low:.2f}, {high:.2f}] contains {threshold})"
    )


# ----------------------------------------------------------------------------
# The claims
# ----------------------------------------------------------------------------


def claim_c1(m: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C1: share of runs whose α̂ (upper interval bound, where there is one) is < c1_alpha_max.

    ``m``: measurements of one estimator variant (see :func:`alpha_measurements`).
    Each run's last checkpoint on ``th.split``. A run is *yes* when its upper
    bound is below the threshold, *no* when its lower bound is at or above it,
    *undecided* otherwise (interval straddles it, or α̂ not finite).
    """
    last = last_checkpoints(m[m["split"] == th.split])
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
    return Evaluation(
        statistic=f"share of runs with α̂ < {th.c1_alpha_max} (upper bound)",
        value=share, ci_low=low, ci_high=high, threshold=f"≥ {th.min_share} of runs",
        verdict=verdict, reason=reason, n_runs=len(last), detail=detail,
    )


SETTING_KEYS: list[str] = ["dataset", "arch", "loss", "lr"]
"""Axes a batch-size sweep and the width/depth sweeps it is compared with must share (C2)."""


def _sweep_spreads(last: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """One row per sweep over any of ``axes``: range of the seed-mean α̂ and its standard error,
    with the sweep's :data:`SETTING_KEYS` and the batch sizes it covers."""
    columns = ["axis", "sweep", "n_values", "n_runs", "spread", "se", *SETTING_KEYS, "batches"]
    rows = []
    for axis in axes:
        sw = sweep_rows(last, axis)
        if sw.empty:
            continue
        per_value = sw.groupby(["sweep", axis]).agg(
            mean=("alpha", "mean"), sd=("alpha", "std"), n=("alpha", "size"),
            se_borrowed=("se", "mean"),
        )
        per_value["se"] = np.where(
            per_value["n"] >= 2, per_value["sd"] / np.sqrt(per_value["n"]),
            per_value["se_borrowed"],
        )
        for label, group in per_value.groupby(level="sweep", sort=True):
            means, se = group["mean"].to_numpy(), group["se"].to_numpy()
            hi, lo = int(np.argmax(means)), int(np.argmin(means))
            runs = sw[sw["sweep"] == label]
            rows.append(
                {
                    "axis": axis, "sweep": label, "n_values": len(group),
                    "n_runs": int(group["n"].sum()), "spread": float(means[hi] - means[lo]),
                    "se": float(math.hypot(se[hi], se[lo])),
                    **runs.iloc[0][SETTING_KEYS].to_dict(),
                    "batches": frozenset(int(b) for b in runs["batch_size"]),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def _comparable(size: pd.DataFrame, batch: pd.DataFrame) -> pd.DataFrame:
    """Width/depth sweeps in the setting of some batch-size sweep: same data set,
    architecture, loss and learning rate, at one of that sweep's batch sizes."""
    keep = [
        any(
            all(row[k] == b[k] for k in SETTING_KEYS) and row["batches"] <= b["batches"]
            for _, b in batch.iterrows()
        )
        for _, row in size.iterrows()
    ]
    return size[np.array(keep, dtype=bool)]


def claim_c2(m: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C2: (α̂ spread over batch sizes) / (α̂ spread over widths and depths) < c2_ratio_max.

    Spread of one sweep (runs equal in every axis but one and the seed): range
    over the swept values of the seed-mean α̂ at the last checkpoint. Each side
    is the median over its sweeps. Interval: each side ± z standard errors
    (standard error of a range = that of the difference of its two ends).
    """
    last = last_checkpoints(m[m["split"] == th.split])
    last = last[np.isfinite(last["alpha"])]
    batch = _sweep_spreads(last, ["batch_size"])
    size = _sweep_spreads(last, ["width", "depth"])
    n_size_sweeps = len(size)
    size = _comparable(size, batch)
    statistic = "α̂ spread over batch sizes / spread over widths and depths"
    threshold = f"< {th.c2_ratio_max}"
    missing = ["batch-size"] if batch.empty else []
    if not n_size_sweeps:
        missing.append("width or depth")
    elif size.empty and not batch.empty:
        missing.append("width or depth (in a batch-size sweep's setting)")
    n_runs = int(batch["n_runs"].sum() + size["n_runs"].sum())
    if missing:
        return Evaluation(
            statistic=statistic, value=math.nan, ci_low=math.nan, ci_high=math.nan,
            threshold=threshold, verdict="inconclusive",
            reason=f"too few runs (no {' and no '.join(missing)} sweep in the grid)",
            n_runs=n_runs,
            detail="a sweep is ≥ 2 values of one axis with every other axis fixed; the "
            "width/depth sweeps must share the batch-size sweep's data set, architecture, loss, "
            "learning rate and one of its batch sizes; add them to the grid (the paper grid has "
            "batch-size, width and depth sweeps)",
        )
    s_b, se_b = float(batch["spread"].median()), float(batch["se"].median())
    s_n, se_n = float(size["spread"].median()), float(size["se"].median())
    ratio = _ratio(s_b, s_n)
    low = _ratio(max(s_b - th.z * se_b, 0.0), s_n + th.z * se_n)
    high = _ratio(s_b + th.z * se_b, s_n - th.z * se_n)
    if not (np.isfinite(se_b) and np.isfinite(se_n)):
        low, high = -math.inf, math.inf
    verdict, reason = interval_verdict(ratio, low, high, th.c2_ratio_max)
    if n_runs < th.min_runs:
        verdict, reason = "inconclusive", f"too few runs ({n_runs} < min_runs {th.min_runs})"
    detail = (
        f"batch-size spread {s_b:.3f} ± {se_b:.3f} (median of {len(batch)} sweeps); "
        f"width/depth spread {s_n:.3f} ± {se_n:.3f} (median of {len(size)} sweeps: "
        f"{int((size.axis == 'width').sum())} over width, {int((size.axis == 'depth').sum())} "
        f"over depth, in the batch-size sweeps' data set, architecture, loss and learning rate; "
        f"{n_size_sweeps - len(size)} other width/depth sweeps left out)"
    )
    return Evaluation(
        statistic=statistic, value=ratio, ci_low=low, ci_high=high, threshold=threshold,
        verdict=verdict, reason=reason, n_runs=n_runs, detail=detail,
    )


def _ratio(num: float, den: float) -> float:
    """num / den for spreads: +inf when only the denominator vanishes, NaN when both do."""
    if den > 0:
        return num / den
    return math.inf if num > 0 else math.nan


def steepest_interval(
    steps: np.ndarray, values: np.ndarray, noise: np.ndarray, z: float, rise_only: bool
) -> int:
    """Index i of the checkpoint interval [steps[i], steps[i+1]] with the steepest change per step.

    A change smaller than ``z`` times its standard error ``√(noise_i² +
    noise_{i+1}²)`` counts as none; ``rise_only`` ignores decreases. -1 when
    no interval has a change that counts.
    """
    dv = np.diff(values)
    dt = np.diff(steps).astype(np.float64)
    se = np.hypot(noise[:-1], noise[1:])
    change = dv if rise_only else np.abs(dv)
    counts = np.isfinite(change) & (change > z * np.nan_to_num(se, nan=np.inf))
    if not counts.any():
        return -1
    rate = np.where(counts, change / dt, -np.inf)
    return int(np.argmax(rate))


def claim_c3(m: pd.DataFrame, accuracy: pd.DataFrame, th: Thresholds) -> Evaluation:
    """C3: share of runs whose steepest α̂ change and steepest test-accuracy rise coincide early.

    Per run, on ``th.split`` noise: the checkpoint interval with the steepest
    α̂ change per SGD step (changes within ``z`` standard errors ignored) and
    the one with the steepest rise of test accuracy per step (standard error
    √(p(1 - p)/n_test)). *yes*: both intervals end within the first
    ``c3_early_fraction`` of the run's steps and lie at most ``c3_max_gap``
    intervals apart; *undecided*: no α̂ change or accuracy rise beyond noise;
    *no* otherwise. Runs with fewer than ``c3_min_checkpoints`` checkpoints
    cannot resolve the timing and make the claim inconclusive.

    ``accuracy``: columns grid axes, step, test_accuracy, n_test (images).
    """
    sel = m[m["split"] == th.split]
    acc = accuracy.drop_duplicates([*RUN_KEYS, "step"])
    merged = sel.merge(acc, on=[*RUN_KEYS, "step"], how="left")
    statistic = (
        f"share of runs whose steepest α̂ change and test-accuracy rise coincide "
        f"in the first {th.c3_early_fraction:.0%} of steps"
    )
    threshold = f"≥ {th.min_share} of runs"
    yes = no = undecided = 0
    a_where: list[float] = []
    acc_where: list[float] = []
    n_checkpoints = []
    for _, run in merged.groupby(RUN_KEYS, sort=True):
        run = run.sort_values("step")
        steps = run["step"].to_numpy()
        n_checkpoints.append(len(steps))
        if len(steps) < th.c3_min_checkpoints:
            continue
        total = float(steps[-1])
        p = run["test_accuracy"].to_numpy(dtype=np.float64)
        acc_se = np.sqrt(p * (1 - p) / run["n_test"].to_numpy(dtype=np.float64))
        i = steepest_interval(steps, run["alpha"].to_numpy(), run["se"].to_numpy(), th.z, False)
        j = steepest_interval(steps, p, acc_se, th.z, True)
        if i < 0 or j < 0:
            undecided += 1
            continue
        a_where.append(steps[i + 1] / total)
        acc_where.append(steps[j + 1] / total)
        early = max(steps[i + 1], steps[j + 1]) <= th.c3_early_fraction * total
        if early and abs(i - j) <= th.c3_max_gap:
            yes += 1
        else:
            no += 1
    if n_checkpoints and min(n_checkpoints) < th.c3_min_checkpoints:
        return Evaluation(
            statistic=statistic, value=math.nan, ci_low=math.nan, ci_high=math.nan,
            threshold=threshold, verdict="inconclusive",
            reason=f"too few checkpoints ({min(n_checkpoints)} < c3_min_checkpoints "
            f"{th.c3_min_checkpoints})",
            n_runs=len(n_checkpoints),
            detail="add checkpoints (training.checkpoints) to resolve when α̂ and accuracy change",
        )
    share, low, high, verdict, reason = share_verdict(yes, no, undecided, th)
    detail = f"{yes} runs yes, {no} no, {undecided} with no α̂ change or accuracy rise beyond noise"
    if a_where:
        detail += (
            f"; steepest α̂ change ends at a median {np.median(a_where):.1%} of the run, "
            f"steepest test-accuracy rise at {np.median(acc_where):.1%}"
        )
    return Evaluation(
        statistic=statistic, value=share, ci_low=low, ci_high=high, threshold=threshold,
        verdict=verdict, reason=reason, n_runs=yes + no + undecided, detail=detail,
    )


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
            statistic="", value=math.nan, ci_low=math.nan, ci_high=math.nan, threshold="",
            verdict="inconclusive", reason="no block size common to every measurement",
        )
    evs = list(evaluations.values())
    values = np.array([e.value for e in evs], dtype=np.float64)
    finite = values[np.isfinite(values)]
    by_verdict: dict[str, list[str]] = {}
    for variant, ev in evaluations.items():
        by_verdict.setdefault(ev.verdict, []).append(variant)
    if len(by_verdict) == 1:
        verdict = evs[0].verdict
        reason = evs[0].reason if verdict == "inconclusive" else ""
    else:
        verdict, reason = "inconclusive", "depends on K1"
    k1s = sorted({int(v.split("K1=")[1]) for v in evaluations})
    detail = "; ".join(
        f"{v}: {_describe_variants(vs, list(evaluations))}" for v, vs in by_verdict.items()
    )
    return Evaluation(
        statistic=evs[0].statistic,
        value=float(np.median(finite)) if finite.size else math.nan,
        ci_low=float(finite.min()) if finite.size else math.nan,
        ci_high=float(finite.max()) if finite.size else math.nan,
        threshold=evs[0].threshold, verdict=verdict, reason=reason,
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
        f"{order} order at every K1" if len(ks) == totals[order]
        else f"{order} order at K1 = {', '.join(f'{k:,}' for k in ks)}"
        for order, ks in split(variants).items()
    )


def evaluate_claims(
    summary: pd.DataFrame, estimates: pd.DataFrame, th: Thresholds, ci_level: float = 0.95
) -> pd.DataFrame:
    """C1-C3 judged with every estimator choice: the long claims table (:data:`COLUMNS`)."""
    m = alpha_measurements(summary, estimates, ci_level)
    m = m[m["split"] == th.split]
    accuracy = accuracy_table(usable_runs(summary))
    judges = {
        "C1": lambda sub: claim_c1(sub, th),
        "C2": lambda sub: claim_c2(sub, th),
        "C3": lambda sub: claim_c3(sub, accuracy, th),
    }
    variants = common_variants(m)
    rows = []
    for claim, judge in judges.items():
        for estimator in ESTIMATOR_CHOICES:
            if estimator == "block_sweep":
                sweep = m[m["estimator"] == "block_sweep"]
                ev = combine_sweep({v: judge(sweep[sweep["variant"] == v]) for v in variants})
            else:
                ev = judge(m[m["estimator"] == estimator])
            rows.append({"claim": claim, "estimator": estimator, **dataclasses.asdict(ev)})
    return pd.DataFrame(rows, columns=COLUMNS)


def external_claims(claims: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Claims judged by other stages (C4-C6), one dict each with :data:`EXTERNAL_KEYS`.

    ``threshold`` may be a number or text; ``verdict`` must be one of
    :data:`VERDICTS` (an ``inconclusive (...)`` reason in parentheses is kept).
    Returned rows have estimator ``"n/a"``: these are not α estimates.
    """
    rows = []
    for i, c in enumerate(claims):
        missing = [k for k in EXTERNAL_KEYS if k not in c]
        if missing:
            raise ValueError(f"claim dict #{i} ({c.get('claim', '?')}) lacks keys {missing}")
        verdict, _, reason = str(c["verdict"]).partition(" (")
        if verdict not in VERDICTS:
            raise ValueError(
                f"claim {c['claim']}: verdict {c['verdict']!r} is not one of {list(VERDICTS)}"
            )
        rows.append(
            {
                "claim": str(c["claim"]), "estimator": "n/a", "statistic": str(c["statistic"]),
                "value": _float(c["value"]), "ci_low": _float(c["ci_low"]),
                "ci_high": _float(c["ci_high"]), "threshold": str(c["threshold"]),
                "verdict": verdict, "reason": reason.rstrip(")"), "n_runs": 0,
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
    verdicts = group.set_index("estimator")["verdict"]
    differ = [ESTIMATOR_CHOICES[e] for e, v in verdicts.items() if v != verdicts[PRIMARY]]
    return "yes" if not differ else f"no ({', '.join(differ)} differ)"


def excluded_runs_note(runs: pd.DataFrame) -> str:
    """How many runs the statistics use, and which were excluded and why."""
    diverged = runs[runs["status"] == "diverged"]
    converged = int((runs["status"] == "converged").sum())
    text = f"{len(runs)} runs in the grid; "
    if diverged.empty:
        text += "none excluded"
    else:
        steps = ", ".join(str(int(s)) for s in diverged["diverged_at"])
        text += (
            f"{len(diverged)} excluded from every statistic because they diverged (loss not "
            f"finite; at steps {steps})"
        )
    if converged:
        text += (
            f"; {converged} stopped early at 100% training accuracy (kept: their last "
            "checkpoint is the one used)"
        )
    return text + "."


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
            "claim": claim, "statistic": primary["statistic"],
            "value [interval]": format_value(primary), "threshold": primary["threshold"],
        }
        for estimator, label in ESTIMATOR_CHOICES.items():
            sel = group[group["estimator"] == estimator]
            row[label] = format_verdict(sel.iloc[0]) if len(sel) else "n/a"
        if (group["estimator"] == "n/a").all():
            row[ESTIMATOR_CHOICES[PRIMARY]] = format_verdict(primary)
        row["survives every estimator"] = survives(group)
        rows.append(row)
    return pd.DataFrame(rows)


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
        f"Runs: {excluded_runs_note(runs)} Noise split: {th.split}.",
        "",
        header, rule, *body,
        "",
        f"Value: the primary estimate ({ESTIMATOR_CHOICES[PRIMARY]}) with its interval "
        "(share claims: Wilson 95% interval over runs; C2: ± z standard errors). Each "
        "estimator column is the verdict the same rule gives with that estimator; "
        "*survives every estimator* is `yes` when all four agree.",
        "",
        "## Claims",
        "",
        *[f"- **{c}**: {CLAIM_TEXT.get(c, '')}" for c in wide["claim"]],
        "",
        "## Rules and thresholds",
        "",
        f"- share claims (C1, C3): supported when ≥ {th.min_share} of the runs agree, not "
        f"supported when more than {1 - th.min_share:.2g} clearly disagree, otherwise "
        f"inconclusive (too much spread); fewer than {th.min_runs} runs: inconclusive "
        "(too few runs).",
        f"- C1: a run counts when its α̂ is below {th.c1_alpha_max} (the upper end of the "
        "batch-means interval for the robust estimate; the point value for the others).",
        f"- C2: supported when the whole interval of the ratio is below {th.c2_ratio_max}; "
        "not supported when it is at or above; inconclusive when it straddles, or when the "
        "grid has no batch-size sweep or no width/depth sweep.",
        f"- C3: changes smaller than {th.z} standard errors are ignored; early = within "
        f"the first {th.c3_early_fraction:.0%} of a run's steps; coincide = at most "
        f"{th.c3_max_gap} checkpoint interval(s) apart; fewer than {th.c3_min_checkpoints} "
        "checkpoints: inconclusive.",
        "- block-size sweep: the rule is applied at every block size K1 that every "
        "measurement has, in natural and shuffled order; one verdict if all agree, "
        "otherwise inconclusive (depends on K1).",
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
