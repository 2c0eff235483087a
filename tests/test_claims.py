"""Tests of sgdtail.claims: every verdict of every claim from small synthetic tables."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sgdtail import claims as C
from sgdtail.grid import AXES

REPO = Path(__file__).resolve().parents[1]
STEPS = (0, 1, 4, 16, 63, 251, 1000)
SWEEP_K1 = (10, 100, 1000)

AlphaFn = Callable[[dict, int], float]


def run(**axes) -> dict:
    """A run's axes: MNIST FCN 16×2, b = 500, η = 0.1, cross-entropy, seed 0, plain SGD,
    unless given."""
    base = {
        "dataset": "mnist",
        "arch": "fcn",
        "width": 16,
        "depth": 2,
        "batch_size": 500,
        "lr": 0.1,
        "loss": "cross_entropy",
        "seed": 0,
        "optimizer": "sgd",
    }
    return {**base, **axes}


def make_tables(
    runs: Sequence[dict],
    alpha: AlphaFn | float = 1.3,
    half_width: float = 0.02,
    steps: Sequence[int] = STEPS,
    accuracy: Callable[[dict, int], float] | None = None,
    other: dict[str, AlphaFn] | None = None,
    sweep: Callable[[dict, int, int], float] | None = None,
    status: dict[int, str] | None = None,
    flags: Callable[[dict, int], dict] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary, estimates, runs) tables shaped like sgdtail.aggregate's.

    ``alpha(run, step)`` gives the robust α̂ (interval ± ``half_width``); ``other``
    overrides the reference / per-coordinate α̂ (default: the robust one);
    ``sweep(run, step, k1)`` the block-sweep α̂ (default: the robust one, both
    orders); ``accuracy(run, step)`` the test accuracy (default: a sharp rise
    between steps 1 and 4); ``status`` maps run index -> status (a
    ``not_trained`` run ends at 12% training accuracy); ``flags(run, step)``
    gives the summary columns pooled_enough / per_coordinate_enough (default:
    no such columns, as before aggregate wrote them).
    """
    alpha_fn = alpha if callable(alpha) else (lambda r, s: alpha)
    acc_fn = accuracy or (lambda r, s: 0.1 if s <= 1 else 0.9)
    other = other or {}
    status = status or {}
    summary_rows, estimate_rows, run_rows = [], [], []
    for i, r in enumerate(runs):
        st = status.get(i, "completed")
        run_rows.append(
            {
                **r,
                "status": st,
                "diverged_at": 50 if st == "diverged" else math.nan,
                "n_parameters": 1000,
                "final_train_accuracy": 0.12 if st == "not_trained" else 0.95,
            }
        )
        for step in steps:
            a = alpha_fn(r, step)
            for split in ("train", "test"):
                summary_rows.append(
                    {
                        **r,
                        "step": step,
                        "split": split,
                        "alpha_robust": a,
                        "alpha_robust_ci_low": a - half_width,
                        "alpha_robust_ci_high": a + half_width,
                        "alpha_reference": other.get("reference", alpha_fn)(r, step),
                        "alpha_per_coordinate_median": other.get("per_coordinate", alpha_fn)(
                            r, step
                        ),
                        "n_minibatches": 20,
                        "zero_fraction": 0.0,
                        "test_accuracy": acc_fn(r, step),
                        "train_accuracy": acc_fn(r, step),
                        "status": st,
                        "n_parameters": 1000,
                        **(flags(r, step) if flags else {}),
                    }
                )
                for order in ("natural", "shuffled"):
                    for k1 in SWEEP_K1:
                        estimate_rows.append(
                            {
                                **r,
                                "step": step,
                                "split": split,
                                "estimator": "block_sweep",
                                "scope": "pooled",
                                "order": order,
                                "k1": k1,
                                "alpha": sweep(r, step, k1) if sweep else a,
                            }
                        )
    return pd.DataFrame(summary_rows), pd.DataFrame(estimate_rows), pd.DataFrame(run_rows)


def judge(summary, estimates, th=None) -> pd.DataFrame:
    table = C.evaluate_claims(summary, estimates, th or C.Thresholds())
    return table.set_index(["claim", "estimator"])


def widths(n: int = 5) -> list[dict]:
    return [run(width=16 * 2**i) for i in range(n)]


# ----------------------------------------------------------------------------
# C1
# ----------------------------------------------------------------------------


def test_c1_supported_by_every_estimator_when_alpha_is_far_below_2():
    table = judge(*make_tables(widths(), alpha=1.3)[:2])
    assert set(table.loc["C1"].verdict) == {"supported"}
    assert table.loc[("C1", "robust"), "value"] == 1.0
    assert C.survives(table.loc["C1"].reset_index()) == "yes"


def test_c1_not_supported_when_alpha_is_gaussian():
    table = judge(*make_tables(widths(), alpha=1.98)[:2])
    assert set(table.loc["C1"].verdict) == {"not supported"}


def test_c1_inconclusive_with_too_few_runs():
    row = judge(*make_tables(widths(2), alpha=1.3)[:2]).loc[("C1", "robust")]
    assert row.verdict == "inconclusive" and "too few runs" in row.reason


def test_c1_inconclusive_when_intervals_straddle_the_threshold_and_estimators_disagree():
    summary, estimates, _ = make_tables(
        widths(),
        alpha=1.88,
        half_width=0.1,
        other={"per_coordinate": lambda r, s: 1.95},
    )
    table = judge(summary, estimates)
    assert table.loc[("C1", "robust"), "verdict"] == "inconclusive"
    assert "too much spread" in table.loc[("C1", "robust"), "reason"]
    assert table.loc[("C1", "reference"), "verdict"] == "supported"  # point value 1.88 < 1.9
    assert table.loc[("C1", "per_coordinate"), "verdict"] == "not supported"
    assert C.survives(table.loc["C1"].reset_index()).startswith("no (")


def test_c1_block_sweep_depends_on_k1():
    summary, estimates, _ = make_tables(
        widths(), alpha=1.3, sweep=lambda r, s, k1: 1.2 if k1 < 1000 else 1.97
    )
    row = judge(summary, estimates).loc[("C1", "block_sweep")]
    assert row.verdict == "inconclusive" and row.reason == "depends on K1"
    assert "not supported: natural order at K1 = 1,000" in row.detail
    assert row.ci_low == 0.0 and row.ci_high == 1.0  # range of the share over block sizes


def test_c1_robust_interval_covers_the_spread_over_block_sizes():
    """The robust α̂ is a median over K1 = f·√K (K = 20 × 1,000, members K1 = 35 ... 565);
    its batch-means interval (± 0.02) belongs to one member. With α̂ rising 0.15 per decade of
    K1 the members reach 0.15·log10(565/141) above the median: 1.85 + 0.02 + 0.09 > 1.9."""
    drift = lambda r, s, k1: 1.85 + 0.15 * math.log10(k1 / 141)  # noqa: E731
    summary, estimates, _ = make_tables(widths(), alpha=1.85, half_width=0.02, sweep=drift)
    spread = C.k1_spread(summary, estimates)
    assert len(spread) == len(summary)
    assert spread.k1_up.to_numpy() == pytest.approx(0.15 * math.log10(565 / 141), abs=1e-3)
    assert spread.k1_down.to_numpy() == pytest.approx(0.15 * math.log10(141 / 35), abs=1e-3)
    row = judge(summary, estimates).loc[("C1", "robust")]
    assert row.verdict == "inconclusive" and "5 undecided" in row.detail, row.detail
    assert "widened by the K1 spread" in row.detail
    # the same runs with a flat sweep: the batch-means interval alone decides (1.87 < 1.9)
    flat = judge(*make_tables(widths(), alpha=1.85, half_width=0.02)[:2]).loc[("C1", "robust")]
    assert flat.verdict == "supported"


def test_c1_run_is_undecided_when_the_sweep_does_not_cover_the_robust_block_sizes():
    summary, estimates, _ = make_tables(widths(), alpha=1.3)
    estimates = estimates[estimates.k1 != 1000]  # the largest member, K1 = 565, is not reached
    assert C.k1_spread(summary, estimates).empty
    row = judge(summary, estimates).loc[("C1", "robust")]
    assert row.verdict == "inconclusive" and "does not cover" in row.detail, row.detail


def test_alpha_measurements_by_hand():
    """One run, two checkpoints, both noise splits, read on the test split at the 90 % level:
    the robust α̂ 1.7 ± 0.05 widened by its K1 spread (members K1 = 64, 128, 256 of a sweep
    rising 0.15 per decade: 0.15·log10(2) on each side), every choice's se from the robust
    interval, the sweep's variants in order; another estimator's rows, a layer's sweep and the
    shuffled order (flat in K1) enter neither the spread nor the sweep's pooled rows twice."""
    drift = lambda r, s, k1: 1.3 + 0.15 * math.log10(k1 / 141)  # noqa: E731
    summary, estimates, _ = make_tables([run()], half_width=0.05, steps=(10, 100), sweep=drift)
    robust_columns = ["alpha_robust", "alpha_robust_ci_low", "alpha_robust_ci_high"]
    summary.loc[summary.split == "test", robust_columns] = [1.7, 1.65, 1.75]
    natural = estimates[estimates.order == "natural"]
    estimates.loc[estimates.order == "shuffled", "alpha"] = 1.3
    others = [natural.assign(estimator="hill", alpha=9.0), natural.assign(scope="fc1", alpha=9.0)]
    estimates = pd.concat([estimates, *others], ignore_index=True)
    estimates["k1"] = estimates["k1"].astype(float)  # as parquet gives it back with NaNs
    m = C.alpha_measurements(summary, estimates, 0.9, (0.5, 1.0, 2.0), split="test")
    assert set(m["split"]) == {"test"} and len(m) == 2 * (3 + 6)
    assert m.index.equals(pd.RangeIndex(len(m)))  # one label per row
    robust = m[m.estimator == "robust"]
    spread = 0.15 * math.log10(2)
    assert list(robust["alpha"]) == [1.7, 1.7] and list(robust["last"]) == [False, True]
    np.testing.assert_allclose(robust[["k1_down", "k1_up"]].to_numpy(), spread)
    np.testing.assert_allclose(robust["low"], 1.65 - spread)
    np.testing.assert_allclose(robust["high"], 1.75 + spread)
    np.testing.assert_allclose(m["se"], 0.1 / (2 * 1.6448536), rtol=1e-6)
    assert (m.loc[m.estimator != "block_sweep", "variant"] == "").all()
    sweep = m[m.estimator == "block_sweep"]
    assert list(dict.fromkeys(sweep["variant"])) == [
        f"{order} K1={k1}" for order in ("natural", "shuffled") for k1 in SWEEP_K1
    ]
    natural_100 = sweep[sweep.variant == "natural K1=100"]
    np.testing.assert_allclose(natural_100["alpha"], drift(None, 0, 100))


def c1_rows(intervals: list[tuple[float, float, float]], **columns) -> pd.DataFrame:
    """Measurement rows of one estimator, one run each at its last checkpoint: (α̂, low, high)
    per run, plus an earlier checkpoint of the first run (α̂ 5) that must not count."""
    rows = [
        {**run(width=16 * 2**i), "step": 1000, "alpha": a, "low": lo, "high": hi, "last": True}
        for i, (a, lo, hi) in enumerate(intervals)
    ]
    rows.append({**rows[0], "step": 10, "alpha": 5.0, "low": 5.0, "high": 5.0, "last": False})
    return pd.DataFrame(rows).assign(**columns)


def test_c1_counts_each_run_once_by_hand():
    """Threshold 1.9: below (1.5, 1.8), at it (low = 1.9: no), touching it from below (high =
    1.9: not below, so undecided), above, straddling."""
    runs = [(1.5, 1.4, 1.6), (1.9, 1.9, 2.0), (1.85, 1.8, 1.9), (2.1, 2.0, 2.2), (1.9, 1.7, 2.1)]
    th = C.Thresholds(c1_alpha_max=1.9, min_share=0.9)
    ev = C.claim_c1(c1_rows(runs, estimator="reference"), th)
    share, low, high, verdict, reason = C.share_verdict(1, 2, 2, th)
    assert (ev.value, ev.ci_low, ev.ci_high, ev.verdict) == (share, low, high, verdict)
    assert ev.statistic == "share of runs whose α̂ interval lies below 1.9"
    assert ev.threshold == "≥ 0.9 of runs" and ev.n_runs == 5
    assert ev.detail == (
        "1 of 5 runs below, 2 at or above, 2 undecided; α̂ at the last checkpoint (train split) "
        "from 1.50 to 2.10, median 1.90"
    )  # no K1 note: the reference estimate has no K1 spread
    spread = {"k1_down": [0.01, 0.02, 0.03, np.nan, 0.05], "k1_up": [0.1, 0.2, 0.3, np.nan, 0.5]}
    robust = C.claim_c1(c1_rows(runs, estimator="robust").iloc[:5].assign(**spread), th)
    assert robust.detail.endswith(
        "median 1.90; intervals widened by the K1 spread of the robust α̂ (median −0.025 / "
        "+0.250, at most +0.500); 1 runs undecided because their block sweep does not cover "
        "the robust block sizes"
    )
    empty = C.claim_c1(c1_rows(runs, estimator="robust").iloc[:0], th)
    assert empty.detail == "no measurements" and empty.n_runs == 0


def test_sample_note_variants_and_sweep_slopes_by_hand():
    m = c1_rows([(1.5, 1.4, 1.6)] * 2, enough=True, split="train")
    assert C.small_sample_note(m, "robust") == ""
    # variants in the table's order (K1 = 16 before 128), those of every measurement only
    sweep = pd.DataFrame(
        {"variant": ["natural K1=16", "natural K1=128", "natural K1=16", "natural K1=128",
                     "natural K1=256"], "alpha": [1.0, 1.1, 1.2, 1.3, 1.4]}
    )  # fmt: skip
    assert C.common_variants(sweep, 2) == ["natural K1=16", "natural K1=128"]
    # two width sweeps, listed out of order: one row each, sorted by label; α̂ falls 0.1 per
    # doubling in both
    rows = [
        {**run(width=w, lr=lr), "alpha": 2.0 - 0.1 * math.log2(w), "se": 0.01}
        for lr in (0.2, 0.1)
        for w in (16, 32, 64)
    ]
    slopes = C.sweep_slopes(pd.DataFrame(rows), ["width", "batch_size"])
    assert list(slopes.columns) == [
        "axis", "sweep", "n_values", "n_runs", "slope", "effect", "se", *C.SETTING_KEYS,
        "batches",
    ]  # fmt: skip
    assert list(slopes["sweep"]) == sorted(slopes["sweep"]) and len(slopes) == 2
    np.testing.assert_allclose(slopes["slope"], -0.1)
    np.testing.assert_allclose(slopes["effect"], 0.1)
    empty = C.sweep_slopes(pd.DataFrame(rows).iloc[:0], ["width"])
    assert empty.empty and list(empty.columns) == list(slopes.columns)
    # no width or depth sweep to compare: still a table of sweeps, with its columns
    for none in C._comparable(slopes.iloc[:0], slopes):  # and then no batch-size sweep either
        assert none.empty and list(none.columns) == list(slopes.columns)


def c2_table(points: list[tuple[dict, float]], se: float = 0.01) -> pd.DataFrame:
    """Measurement rows for claim_c2 by hand: (axes given to run(), α̂) per run, each at its
    last checkpoint with standard error ``se``."""
    return pd.DataFrame([{**run(**axes), "alpha": a, "se": se, "last": True} for axes, a in points])


def test_c2_names_the_sweeps_it_misses():
    th = C.Thresholds()
    batch = [({"batch_size": b}, 1.3) for b in (100, 250, 500)]
    ev = C.claim_c2(c2_table(batch), th)
    assert ev.reason == "too few runs (no width or depth sweep in the grid)"
    assert ev.statistic == (
        "|α̂ change per doubling of batch size| / |per doubling of width or depth|"
    )
    assert ev.threshold == f"< {th.c2_ratio_max}"
    elsewhere = [({"width": w, "lr": 0.2}, 1.3) for w in (16, 32)]  # another learning rate
    ev = C.claim_c2(c2_table(batch + elsewhere), th)
    assert ev.reason == (
        "too few runs (no width or depth (in a batch-size sweep's setting) sweep in the grid)"
    )


#: Batch-size sweeps at width 16 (b 125-500) and 32 (b 250-500), both −0.05 per doubling;
#: width sweeps at b = 500 (16-64) and 250 (16-32), both −0.2, and a depth sweep (2-4: −0.1)
#: in their setting; a width sweep at another learning rate (left out). 7 distinct runs.
C2_POINTS = [
    ({"batch_size": 125}, 1.5),
    ({"batch_size": 250}, 1.45),
    ({}, 1.4),
    ({"width": 32}, 1.2),
    ({"width": 64}, 1.0),
    ({"depth": 4}, 1.3),
    ({"batch_size": 250, "width": 32}, 1.25),
    ({"lr": 0.2}, 1.4),
    ({"lr": 0.2, "width": 32}, 1.3),
]


def test_c2_by_hand():
    th = C.Thresholds(min_runs=7)
    ev = C.claim_c2(c2_table(C2_POINTS), th)
    # exact points: the measurement error over Sxx = 2 (three points) or 0.5 (two points)
    three, two = 0.01 / math.sqrt(2), 0.01 / math.sqrt(0.5)
    se_b, se_n = (three + two) / 2, two  # medians over the sweeps
    assert ev.value == pytest.approx(0.05 / 0.2, rel=1e-12)
    assert ev.ci_low == pytest.approx((0.05 - 2 * se_b) / (0.2 + 2 * se_n), rel=1e-12)
    assert ev.ci_high == pytest.approx((0.05 + 2 * se_b) / (0.2 - 2 * se_n), rel=1e-12)
    assert (ev.verdict, ev.reason, ev.n_runs) == ("supported", "", 7)
    assert ev.statistic == (
        "|α̂ change per doubling of batch size| / |per doubling of width or depth|"
    )
    assert ev.threshold == "< 1.0"
    assert ev.detail == (
        "batch size: |slope| 0.050 ± 0.011 per doubling (median of 2 sweeps, 2-3 levels, 2-3 "
        "runs each; 0 others left out); width/depth: |slope| 0.200 ± 0.014 per doubling "
        "(median of 3 sweeps: 2 over width, 1 over depth, 2-3 levels, 2-3 runs each, in the "
        "batch-size sweeps' data "
        "set, architecture, loss and learning rate; 1 other width/depth sweeps left out)"
    )
    few = C.claim_c2(c2_table(C2_POINTS), C.Thresholds(min_runs=8))
    assert (few.verdict, few.reason) == ("inconclusive", "too few runs (7 < min_runs 8)")


def test_c2_leaves_out_batch_size_sweeps_without_a_size_sweep_in_their_setting():
    """Two more batch-size sweeps, at learning rates with no width or depth sweep, each −0.5
    per doubling: they would move the numerator's median from 0.05 to 0.275 (ratio 1.4, not
    supported); compared in no common setting, they are left out and counted."""
    th = C.Thresholds(min_runs=7)
    sweep = ((500, 1.4), (250, 1.9), (125, 2.4))  # batch size, α̂
    others = [({"lr": lr, "batch_size": b}, a) for lr in (0.05, 0.3) for b, a in sweep]
    ev = C.claim_c2(c2_table(C2_POINTS + others), th)
    assert ev.value == pytest.approx(0.05 / 0.2, rel=1e-12)
    assert (ev.verdict, ev.n_runs) == ("supported", 7)
    assert "(median of 2 sweeps, 2-3 levels, 2-3 runs each; 2 others left out)" in ev.detail


def test_c2_by_hand_unknown_errors_and_missing_sweeps():
    # the batch-size sweep's two runs have no standard error: the interval is unbounded
    no_error = c2_table([({"batch_size": 125}, 1.5), ({"batch_size": 250}, 1.45)], se=math.nan)
    width = c2_table([({"batch_size": 250, "width": w}, a) for w, a in ((32, 1.25), (64, 1.05))])
    th = C.Thresholds()
    ev = C.claim_c2(pd.concat([no_error, width]), th)
    assert (ev.ci_low, ev.ci_high, ev.verdict) == (-math.inf, math.inf, "inconclusive")
    assert ev.reason == "too much spread (interval [-inf, inf] contains 1.0)"
    assert ev.value == pytest.approx(0.05 / 0.2, rel=1e-12)
    decider = C._c2_decider(0.05, math.nan, 0.2, 0.01 / math.sqrt(2), th, 1)
    assert ev.detail.endswith("other width/depth sweeps left out); " + decider)
    # no sweep at all, or only the batch-size sweep
    advice = (
        "a sweep is ≥ 2 values of one axis with every other axis fixed; the width/depth sweeps "
        "must share the batch-size sweep's data set, architecture, loss, learning rate and one "
        "of its batch sizes; add them to the grid (the paper grid has batch-size, width and "
        "depth sweeps)"
    )
    none = C.claim_c2(c2_table(C2_POINTS[2:3]), th)
    assert none.reason == "too few runs (no batch-size and no width or depth sweep in the grid)"
    assert (none.verdict, none.n_runs, none.detail) == ("inconclusive", 0, advice)
    assert all(math.isnan(v) for v in (none.value, none.ci_low, none.ci_high))
    batch_only = C.claim_c2(c2_table(C2_POINTS[:3]), th)
    assert batch_only.reason == "too few runs (no width or depth sweep in the grid)"
    assert (batch_only.n_runs, batch_only.detail) == (3, advice)
    assert batch_only.threshold == "< 1.0" and batch_only.statistic == ev.statistic


def test_k1_spread_is_empty_without_estimates_or_problem_sizes():
    summary, estimates, _ = make_tables(widths(), alpha=1.3)
    columns = [*C.MEASUREMENT_KEYS, "k1_down", "k1_up"]
    for empty in (
        C.k1_spread(summary, pd.DataFrame()),
        C.k1_spread(summary.drop(columns="n_parameters"), estimates),
    ):
        assert empty.empty and list(empty.columns) == columns
        assert (empty[["k1_down", "k1_up"]].dtypes == np.float64).all()


def test_flags_read_missing_as_false_and_default_to_true():
    df = pd.DataFrame({"enough": [True, None, False]}, index=[5, 7, 9])
    pd.testing.assert_series_equal(
        C._flag(df, "enough"), pd.Series([True, False, False], index=[5, 7, 9], name="enough")
    )
    pd.testing.assert_series_equal(C._flag(df, "absent"), pd.Series(True, index=df.index))
    for dtype in (float, "boolean"):  # a bool column with a gap, as float or nullable
        gap = pd.DataFrame({"enough": pd.Series([1, None, 0], dtype=dtype)})
        pd.testing.assert_series_equal(
            C._flag(gap, "enough"), pd.Series([True, False, False], name="enough")
        )


def test_diverged_and_untrained_runs_are_excluded_and_reported():
    runs = widths(5)
    alpha = lambda r, s: 2.0 if r["width"] >= 128 else 1.3  # noqa: E731
    summary, estimates, runs_table = make_tables(
        runs, alpha=alpha, status={3: "diverged", 4: "not_trained"}
    )
    table = judge(summary, estimates)
    assert table.loc[("C1", "robust"), "verdict"] == "supported"
    assert table.loc[("C1", "robust"), "n_runs"] == 3
    note = C.excluded_runs_note(runs_table, 0.5)
    assert note.startswith("5 runs in the grid; 2 excluded from every statistic"), note
    assert "1 diverged (loss not finite; at steps 50)" in note
    assert "1 did not train (final training accuracy 12% < claims.min_train_accuracy 50%)" in note
    text = C.claims_markdown(
        C.evaluate_claims(summary, estimates, C.Thresholds()), runs_table, C.Thresholds()
    )
    assert "1 did not train" in text


def test_measurements_with_too_few_minibatches_are_left_out_by_their_estimator():
    """per_coordinate_enough false on the two widest nets (whose per-coordinate α̂ reads 1.98):
    the per-coordinate choice leaves them out; the pooled choices keep them."""

    def small(r, s):
        return {
            "pooled_enough": True,  # noqa: E731
            "per_coordinate_enough": r["width"] < 128,
        }

    other = {"per_coordinate": lambda r, s: 1.98 if r["width"] >= 128 else 1.3}
    tables = make_tables(widths(), alpha=1.3, other=other, flags=small)
    table = judge(*tables[:2])
    row = table.loc[("C1", "per_coordinate")]
    assert row.verdict == "supported" and row.n_runs == 3
    assert "14 measurements with too few minibatches" in row.detail  # 2 runs × 7 checkpoints
    assert table.loc[("C1", "robust"), "n_runs"] == 5
    assert "too few" not in table.loc[("C1", "robust"), "detail"]
    without = judge(*make_tables(widths(), alpha=1.3, other=other)[:2])  # no flag columns
    assert without.loc[("C1", "per_coordinate"), "verdict"] == "not supported"


def test_measurements_with_too_few_values_are_left_out_by_the_pooled_estimators():
    def few(r, s):
        return {
            "pooled_enough": r["width"] != 16,  # noqa: E731
            "per_coordinate_enough": True,
        }

    table = judge(*make_tables(widths(), alpha=1.3, flags=few)[:2])
    for estimator in ("robust", "reference", "block_sweep"):
        row = table.loc[("C1", estimator)]
        assert row.n_runs == 4 and "7 measurements with too few noise values" in row.detail
    assert table.loc[("C1", "per_coordinate"), "n_runs"] == 5


# ----------------------------------------------------------------------------
# C2
# ----------------------------------------------------------------------------


def c2_runs() -> list[dict]:
    size = [run(width=w) for w in (16, 32, 64, 128)] + [run(width=64, depth=d) for d in (3, 4)]
    batch = [run(width=64, batch_size=b) for b in (100, 250, 1000)]
    return size + batch


def c2_alpha(width_effect: float, batch_effect: float) -> AlphaFn:
    def alpha(r: dict, step: int) -> float:
        return (
            1.2
            + width_effect * math.log2(r["width"] / 16) / 3
            + batch_effect * math.log10(r["batch_size"] / 100)
        )

    return alpha


def test_c2_supported_when_batch_size_matters_less_than_width():
    summary, estimates, _ = make_tables(c2_runs(), alpha=c2_alpha(0.6, 0.05), half_width=0.01)
    row = judge(summary, estimates).loc[("C2", "robust")]
    assert row.verdict == "supported", row.detail
    assert 0 < row.value < 1 and row.ci_high < 1


def test_c2_not_supported_when_batch_size_matters_more():
    summary, estimates, _ = make_tables(c2_runs(), alpha=c2_alpha(0.05, 0.6), half_width=0.01)
    row = judge(summary, estimates).loc[("C2", "robust")]
    assert row.verdict == "not supported", row.detail
    assert row.ci_low >= 1


def test_c2_inconclusive_without_a_batch_sweep():
    summary, estimates, _ = make_tables(widths(), alpha=c2_alpha(0.6, 0.0))
    table = judge(summary, estimates)
    assert set(table.loc["C2"].verdict) == {"inconclusive"}
    assert "no batch-size sweep" in table.loc[("C2", "robust"), "reason"]


def test_c2_compares_only_width_and_depth_sweeps_in_the_batch_sweeps_setting():
    other = [run(dataset="cifar10", arch="alexnet", depth=8, width=w) for w in (8, 16, 32)]
    batch = [run(width=64, batch_size=b) for b in (100, 250, 500)]
    summary, estimates, _ = make_tables(other + batch, alpha=c2_alpha(0.6, 0.05))
    row = judge(summary, estimates).loc[("C2", "robust")]
    assert row.verdict == "inconclusive"
    assert "in a batch-size sweep's setting" in row.reason


def test_c2_inconclusive_when_the_effects_are_within_noise():
    summary, estimates, _ = make_tables(c2_runs(), alpha=c2_alpha(0.1, 0.1), half_width=0.3)
    row = judge(summary, estimates).loc[("C2", "robust")]
    assert row.verdict == "inconclusive" and "too much spread" in row.reason


def test_c2_uses_the_seed_spread_when_there_are_several_seeds():
    runs = [{**r, "seed": s} for r in c2_runs() for s in (0, 1, 2)]
    noisy = lambda r, s: c2_alpha(0.6, 0.05)(r, s) + 0.3 * (r["seed"] - 1)  # noqa: E731
    summary, estimates, _ = make_tables(runs, alpha=noisy, half_width=0.001)
    row = judge(summary, estimates).loc[("C2", "robust")]
    assert row.verdict == "inconclusive", row  # seeds disagree by ±0.3: too much spread


def test_c2_supported_with_replicate_seeds_that_agree():
    runs = [{**r, "seed": s} for r in c2_runs() for s in (0, 1, 2)]
    noisy = lambda r, s: c2_alpha(0.6, 0.05)(r, s) + 0.005 * (r["seed"] - 1)  # noqa: E731
    summary, estimates, _ = make_tables(runs, alpha=noisy, half_width=0.001)
    row = judge(summary, estimates).loc[("C2", "robust")]
    assert row.verdict == "supported", row.detail


def per_doubling(width: float, batch: float) -> AlphaFn:
    """α̂ changing by ``width`` per doubling of the width, ``batch`` per doubling of b."""
    return lambda r, s: (
        1.3 + width * math.log2(r["width"] / 64) + batch * math.log2(r["batch_size"] / 500)
    )


@pytest.mark.parametrize("axis", ["batch_size", "width"])
def test_c2_does_not_change_when_levels_are_added(axis):
    """Batch size changes α̂ more per doubling (0.05) than width (0.03): not supported, with
    2 or 5 levels of either. (The range of seed means, C2's former statistic, read 0.05 / 0.12
    = 0.42, supported, with batch sizes 250 and 500 against 5 widths.)"""
    few = {"batch_size": [250, 500], "width": [32, 64]}
    many = {"batch_size": [125, 250, 500, 1000, 2000], "width": [16, 32, 64, 128, 256]}
    rows = []
    for levels in (few[axis], many[axis]):
        values = {**many, axis: levels}
        runs = [run(width=w) for w in values["width"]] + [
            run(width=64, batch_size=b) for b in values["batch_size"] if b != 500
        ]
        summary, estimates, _ = make_tables(runs, alpha=per_doubling(0.03, 0.05), half_width=0.01)
        rows.append(judge(summary, estimates).loc[("C2", "robust")])
    assert rows[0].value == pytest.approx(0.05 / 0.03) == rows[1].value
    assert rows[0].verdict == rows[1].verdict == "not supported", [r.detail for r in rows]


def test_log2_slope_and_its_standard_error():
    x = np.array([16, 32, 64, 128])
    slope, se = C.log2_slope(x, 1.0 + 0.1 * np.log2(x), np.full(4, 0.01))
    assert slope == pytest.approx(0.1) and se == pytest.approx(0.01 / math.sqrt(5))
    noisy = 1.0 + 0.1 * np.log2(x) + np.array([0.1, -0.1, -0.1, 0.1])
    slope, se = C.log2_slope(x, noisy, np.full(4, 0.01))  # residual variance 0.04/2 > 0.01²
    assert slope == pytest.approx(0.1) and se == pytest.approx(math.sqrt(0.02 / 5))
    assert all(math.isnan(v) for v in C.log2_slope(np.array([8, 8]), np.ones(2), np.ones(2)))
    # three points: slope 0.25, residuals (−1, 2, −1)/12, residual variance 1/24 over 1
    # degree of freedom, Sxx = 2; errors unknown (NaN) or far smaller give the same
    x, a = np.array([1, 2, 4]), np.array([1.0, 1.5, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty array of errors
        for se in (np.full(3, np.nan), np.full(3, 0.001)):
            slope, err = C.log2_slope(x, a, se)
            assert slope == pytest.approx(0.25) and err == pytest.approx(math.sqrt(1 / 48))


# ----------------------------------------------------------------------------
# C3
# ----------------------------------------------------------------------------


def early_alpha_drop(r: dict, step: int) -> float:
    return 1.8 if step <= 1 else 1.3


def test_c3_supported_when_alpha_and_accuracy_change_together_early():
    summary, estimates, _ = make_tables(widths(), alpha=early_alpha_drop)
    table = judge(summary, estimates)
    assert set(table.loc["C3"].verdict) == {"supported"}, table.loc["C3"].detail.tolist()


def test_c3_not_supported_when_accuracy_rises_late():
    summary, estimates, _ = make_tables(
        widths(), alpha=early_alpha_drop, accuracy=lambda r, s: 0.1 if s <= 251 else 0.9
    )
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "not supported"
    assert "steepest test-accuracy rise at step 1000" in row.detail, row.detail


def late_alpha(r: dict, step: int) -> float:
    """α̂ moves 0.1 (above noise) between steps 0 and 1, then 0.5 between steps 251 and 1000."""
    return 1.8 if step == 0 else 1.7 if step <= 251 else 1.2


def accuracy_16_to_63(r: dict, step: int) -> float:
    """Test accuracy rises 0.05 (above noise) between steps 0 and 1, then most between 16 and 63."""
    return 0.10 if step == 0 else 0.15 if step <= 16 else 0.90


def test_c3_not_supported_when_alpha_changes_late_at_log_spaced_checkpoints():
    """The reviewer's case. Per SGD step the one-step interval [0, 1] has the steepest change of
    both (0.1/1 vs 0.5/749; 0.05/1 vs 0.75/47), which put both "early, coinciding". Per unit of
    log(step + 1) α̂ changes fastest from 251 to 1000 (0.1/0.69 vs 0.5/1.38), accuracy from 16
    to 63 (0.05/0.69 vs 0.75/1.33): α̂ late, not early."""
    steps = np.array(STEPS)
    per_step = lambda f: np.abs(np.diff([f(run(), s) for s in steps])) / np.diff(steps)  # noqa: E731
    assert np.argmax(per_step(late_alpha)) == np.argmax(per_step(accuracy_16_to_63)) == 0
    summary, estimates, _ = make_tables(widths(), alpha=late_alpha, accuracy=accuracy_16_to_63)
    table = judge(summary, estimates)
    assert set(table.loc["C3"].verdict) == {"not supported"}, table.loc["C3"].detail.tolist()
    detail = table.loc[("C3", "robust"), "detail"]
    assert (
        "α̂ change per log(step + 1) ends at a median step 1000, steepest test-accuracy "
        "rise at step 63" in detail
    ), detail


def test_c3_supported_when_both_change_mostly_between_16_and_63():
    alpha = lambda r, s: 1.8 if s == 0 else 1.75 if s <= 16 else 1.3  # noqa: E731
    summary, estimates, _ = make_tables(widths(), alpha=alpha, accuracy=accuracy_16_to_63)
    table = judge(summary, estimates)
    assert set(table.loc["C3"].verdict) == {"supported"}, table.loc["C3"].detail.tolist()


def test_c3_inconclusive_when_the_timing_is_within_noise_of_the_early_limit():
    """α̂ falls by 0.1 from step 16 to 63 and by 0.2 from 63 to 251 (early = by step 100): per
    log(step + 1) the second is steeper, but with ±0.1 intervals not beyond noise."""
    alpha = lambda r, s: {0: 1.8, 1: 1.8, 4: 1.8, 16: 1.8, 63: 1.7, 251: 1.5}.get(s, 1.5)  # noqa: E731
    summary, estimates, _ = make_tables(
        widths(), alpha=alpha, half_width=0.1, accuracy=accuracy_16_to_63
    )
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "inconclusive" and "too much spread" in row.reason, row.detail


def test_c3_inconclusive_when_alpha_never_changes_beyond_noise():
    summary, estimates, _ = make_tables(widths(), alpha=lambda r, s: 1.3 + 0.001 * (s % 2))
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "inconclusive" and "too much spread" in row.reason


@pytest.mark.parametrize(
    ("yes", "no", "undecided", "to_no", "to_yes"),
    [(3, 6, 52, 1, 52), (0, 0, 10, 2, 9), (5, 1, 4, 1, 4), (0, 5, 50, 1, 50), (1, 0, 2, 1, 2)],
)
def test_c3_decider_counts_the_undecided_runs_each_verdict_needs(yes, no, undecided, to_no, to_yes):
    """At min_share 0.9: not supported once more than a tenth of the runs say no, supported
    once nine tenths say yes; the counts are the fewest undecided runs that would tip it."""
    th = C.Thresholds(min_share=0.9)
    counts = {"yes": yes, "no": no, "undecided": undecided}
    n = yes + no + undecided
    verdict = C.share_verdict(yes, no, undecided, th)[3]
    assert verdict == "inconclusive"
    text = C.c3_decider(counts, th)
    assert f"{to_no} more answering no would make it not supported" in text
    assert f"{to_yes} answering yes supported" in text
    # one run fewer either way leaves it undecided; the count itself decides it
    assert C.share_verdict(yes, no + to_no, undecided - to_no, th)[3] == "not supported"
    assert C.share_verdict(yes + to_yes, no, undecided - to_yes, th)[3] == "supported"
    if to_no > 1:
        assert C.share_verdict(yes, no + to_no - 1, undecided - to_no + 1, th)[3] == verdict
    assert C.share_verdict(yes + to_yes - 1, no, n - yes - no - to_yes + 1, th)[3] == verdict


def test_c3_decider_names_only_the_kinds_of_undecided_runs_present():
    th = C.Thresholds(min_share=0.9)
    flat_only = C.c3_decider({"yes": 0, "no": 0, "undecided": 5, "flat": 5}, th)
    assert "the 5 without" in flat_only and "training.checkpoints" not in flat_only
    straddle = C.c3_decider({"yes": 0, "no": 0, "undecided": 5, "flat": 0}, th)
    assert "the 5 with candidate intervals" in straddle and "without" not in straddle
    both = C.c3_decider({"yes": 3, "no": 6, "undecided": 52, "flat": 31}, th)
    assert both == (
        "decided by the undecided runs: 1 more answering no would make it not supported, 52 "
        "answering yes supported; the 31 without an α̂ change or accuracy rise beyond noise "
        "need smaller standard errors (more noise values or test images per measurement); the "
        "21 with candidate intervals on both sides of a limit need checkpoints closer together "
        "(training.checkpoints)"
    )
    assert "without" not in C.c3_decider({"yes": 0, "no": 0, "undecided": 5}, th)  # no "flat"


def test_an_inconclusive_c3_says_what_decides_it():
    summary, estimates, _ = make_tables(widths(), alpha=lambda r, s: 1.3 + 0.001 * (s % 2))
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "inconclusive" and "decided by the undecided runs" in row.detail
    assert "need smaller standard errors" in row.detail  # α̂ never changes beyond noise


def test_c3_inconclusive_with_too_few_checkpoints():
    summary, estimates, _ = make_tables(widths(), alpha=early_alpha_drop, steps=(0, 1, 1000))
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "inconclusive" and "too few checkpoints" in row.reason


def test_steepest_intervals_per_log_step_and_their_noise():
    steps = np.array([0.0, 1, 4, 16, 63])
    u = np.log1p(steps)
    values = np.array([0.10, 0.15, 0.20, 0.30, 0.90])  # per unit of u: 0.07, 0.05, 0.08, 0.45
    assert list(C.steepest_intervals(u, values, np.full(5, 0.01), 2.0, True)) == [3]
    # per SGD step the first interval would win: 0.05 / 1 > 0.6 / 47
    assert np.argmax(np.diff(values) / np.diff(steps)) == 0
    # with ±0.2 errors every interval is within noise of the steepest
    assert list(C.steepest_intervals(u, values, np.full(5, 0.2), 2.0, True)) == [0, 1, 2, 3]
    assert C.steepest_intervals(u, values, np.full(5, 0.5), 2.0, True).size == 0  # 0.6 < 2 × 0.71
    falling = values[::-1]
    assert C.steepest_intervals(u, falling, np.full(5, 0.01), 2.0, True).size == 0
    assert list(C.steepest_intervals(u, falling, np.full(5, 0.01), 2.0, False)) == [0]
    unknown = C.steepest_intervals(u, values, np.array([0.01, 0.01, np.nan, 0.01, 0.01]), 2.0, True)
    assert list(unknown) == [1, 2, 3]  # rates next to an unknown error are not ruled out


def test_c3_run_rule():
    steps = np.array([0.0, 1, 4, 16, 63, 251, 1000])
    rule = lambda a, c: C.c3_run(np.array(a), np.array(c), steps, 100.0, 4.0)  # noqa: E731
    assert rule([3], [3]) == "yes"
    assert rule([2, 3], [2]) == "yes"  # centres √(5·17) and √(17·64): a factor 3.9
    assert rule([1], [3]) == "no"  # centres √(2·5) and √(17·64): a factor 10.4
    assert rule([1, 3], [3]) == "undecided"  # one candidate coincides, one does not
    assert rule([5], [3]) == "no"  # α̂ changes after step 100
    assert rule([3, 4], [3]) == "undecided"  # one candidate early, one late
    assert rule([], [3]) == "undecided"


def test_steepest_intervals_at_their_limits():
    """Rates and their errors are per unit of u; a change of exactly z standard errors is not
    beyond noise; equally steep intervals are all candidates; no candidate is an empty
    array of indices."""
    u = np.array([0.0, 1.0, 3.0])
    noise = np.full(3, 0.1)  # each change ± 0.141; per unit of u ± 0.141 and ± 0.071
    # rates 1 and 0.5: 0.5 apart, beyond 2 × √(0.141² + 0.071²) = 0.32
    assert list(C.steepest_intervals(u, np.array([0.0, 1.0, 2.0]), noise, 2.0, True)) == [0]
    # rates 1 and 0.65: 0.35 apart, beyond 0.32 (the errors per unit of u), within 0.4 (the
    # errors of the changes themselves)
    assert list(C.steepest_intervals(u, np.array([0.0, 1.0, 2.3]), noise, 2.0, True)) == [0]
    # rates 1 and 0.9: within noise
    assert list(C.steepest_intervals(u, np.array([0.0, 1.0, 2.8]), noise, 2.0, True)) == [0, 1]
    at_limit = C.steepest_intervals(u[:2], np.array([0.0, 2.0]), np.array([0.0, 1.0]), 2.0, True)
    assert at_limit.size == 0 and np.arange(3)[at_limit].size == 0  # usable as indices
    even = np.array([0.0, 1.0, 2.0])
    assert list(C.steepest_intervals(even, even, np.zeros(3), 2.0, True)) == [0, 1]  # a tie


def test_c3_run_rule_at_its_limits():
    """An interval ending at the early step is early; "coincide" compares the
    geometric means of the intervals' (step + 1) ends, and includes a factor of exactly
    max_ratio; a late α̂ alone answers no even when the intervals coincide."""
    steps = np.array([0.0, 1, 4, 16, 63, 251, 1000])
    assert C.c3_run(np.array([3]), np.array([3]), steps, 63.0, 4.0) == "yes"  # both end at 63
    assert C.c3_run(np.array([3]), np.array([3]), steps, 62.0, 4.0) == "no"
    assert C.c3_run(np.array([3]), np.array([3]), steps, 100.0, 1.0) == "yes"  # same centre
    # [4, 16] and [16, 63]: centres √(5·17) = 9.22 and √(17·64) = 32.98, a factor 3.58
    assert C.c3_run(np.array([2]), np.array([3]), steps, 100.0, 3.6) == "yes"
    assert C.c3_run(np.array([2]), np.array([3]), steps, 100.0, 3.5) == "no"
    # α̂ in [63, 251], ending after the early step, accuracy in [16, 63], ending before it:
    # centres √(17·64) = 33 and √(64·252) = 127, a factor 3.85
    assert C.c3_run(np.array([4]), np.array([3]), steps, 100.0, 4.0) == "no"
    assert C.c3_run(np.array([3]), np.array([4]), steps, 100.0, 4.0) == "no"


def test_steepest_intervals_never_pick_an_interval_next_to_a_missing_value():
    u = np.log1p(np.array([0.0, 1, 4, 16, 63]))
    values = np.array([0.1, np.nan, 0.2, 0.3, 0.9])
    assert list(C.steepest_intervals(u, values, np.full(5, 0.01), 2.0, True)) == [3]
    assert list(C.steepest_intervals(u, values, np.full(5, 0.01), 2.0, False)) == [3]
    # a missing value with an unknown error too (an accuracy without a test-set size)
    noise = np.array([0.01, np.nan, 0.01, 0.01, 0.01])
    assert list(C.steepest_intervals(u, values, noise, 2.0, True)) == [3]
    assert list(C.steepest_intervals(u, values[::-1], noise[::-1], 2.0, False)) == [0]


def test_steepest_end_is_the_end_of_the_steepest_candidate_per_unit_of_u():
    steps = np.array([0.0, 1, 4, 16, 63])
    u = np.log1p(steps)  # interval lengths 0.69, 0.92, 1.22, 1.33
    values = np.array([0.0, -0.3, -0.3, 0.2, 0.2])  # interval 0 falls 0.3, interval 2 rises 0.5
    candidates = np.array([0, 2])
    # |change| per unit of u: 0.43 (interval 0) against 0.41 (interval 2)
    assert C._steepest_end(candidates, u, values, False, steps) == 1.0
    # a rise only: interval 2
    assert C._steepest_end(candidates, u, values, True, steps) == 16.0


def test_c3_detail_text():
    counts = {"yes": 1, "no": 2, "undecided": 5, "flat": 2}
    assert C._c3_detail(counts, []) == (
        "1 runs yes, 2 no, 5 undecided (2 with no α̂ change or accuracy rise beyond noise, "
        "3 with candidate intervals on both sides of a limit)"
    )
    where = [(10.0, 20.0), (30.0, 40.0), (50.0, 400.0)]
    assert C._c3_detail(counts, where).endswith(
        "; steepest α̂ change per log(step + 1) ends at a median step 30, steepest "
        "test-accuracy rise at step 40"
    )


def c3_tables(*runs: dict, split: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(m, accuracy) for claim_c3 by hand, one run per dict (width 16·2^i): "alpha" and "acc"
    at its "steps" (default STEPS), α̂'s standard error "se" (0.01) and the test images
    "n_test" per checkpoint (10,000; NaN: not known); a run's "skip" steps have no accuracy
    row. ``split``: both tables get a column "split" (m: train, accuracy: test)."""
    m_rows, acc_rows = [], []
    for i, r in enumerate(runs):
        axes, steps = run(width=16 * 2**i), r.get("steps", STEPS)
        n_test = r.get("n_test", [10_000] * len(steps))
        for k, step in enumerate(steps):
            m_rows.append({**axes, "step": step, "alpha": r["alpha"][k], "se": r.get("se", 0.01)})
            if step not in r.get("skip", ()):
                acc = {"step": step, "test_accuracy": r["acc"][k], "n_test": n_test[k]}
                acc_rows.append({**axes, **acc})
    m, acc = pd.DataFrame(m_rows), pd.DataFrame(acc_rows)
    if split:
        m, acc = m.assign(split="train"), acc.assign(split="test")
    return m, acc


#: α̂ falls by 0.5 between steps 4 and 16 (interval 2); accuracy rises 0.1 -> 0.9 there
FALL_4_16 = [1.8, 1.8, 1.8, 1.3, 1.3, 1.3, 1.3]
RISE_4_16 = [0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9]


def c3_five_runs() -> list[dict]:
    """Five runs at the default thresholds (early: by step 100; coincide: a factor 4):

    - yes: α̂ and accuracy both change between steps 4 and 16;
    - flat: α̂ constant (undecided, no change beyond noise);
    - yes through the accuracy's binomial error: 0.4 -> 0.6 between steps 4 and 16 measured
      on 100 test images at those two checkpoints: a change of 0.2 against 2 × 0.069 (with
      p / (1 − p), p (1 + p) or p (2 − p) in place of p (1 − p) it would be within noise);
    - yes with exactly c3_min_checkpoints checkpoints, one without an accuracy row (NaN);
    - yes although accuracy falls 0.5 between steps 0 and 1 (0.72 per unit of log(step + 1),
      steeper than its rise, 0.33): only a rise counts for accuracy.
    """
    return [
        {"alpha": FALL_4_16, "acc": RISE_4_16},
        {"alpha": [1.5] * 7, "acc": RISE_4_16},
        {
            "alpha": FALL_4_16,
            "acc": [0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6],
            "n_test": [10_000, 10_000, 100, 100, 10_000, 10_000, 10_000],
        },
        {
            "steps": (0, 4, 16, 1000),
            "alpha": [1.8, 1.8, 1.3, 1.3],
            "acc": [0.1, 0.1, 0.9, 0.9],
            "skip": (1000,),
        },
        {"alpha": FALL_4_16, "acc": [0.6, 0.1, 0.1, 0.5, 0.5, 0.5, 0.5]},
    ]


def test_c3_a_checkpoint_without_alpha_keeps_its_place():
    """α̂ falls between steps 4 and 63 with no α̂ at step 16 (left out as too small, or not
    finite), accuracy rises between 4 and 16: the intervals next to the missing checkpoint are
    not candidates (steepest_intervals), so α̂ has no change beyond noise in any run and C3
    is inconclusive; merging 4 and 63 into one interval made every run a coinciding yes."""
    nan = math.nan
    one = {"alpha": [1.8, 1.8, 1.8, nan, 1.3, 1.3, 1.3], "acc": RISE_4_16}
    ev = C.claim_c3(*c3_tables(*[one] * 4), C.Thresholds())
    assert ev.verdict == "inconclusive" and ev.value == 0.0, ev.detail
    assert ev.detail.startswith("0 runs yes, 0 no, 4 undecided (4 with no α̂ change"), ev.detail
    m, acc = c3_tables(*[one] * 4)
    m = m[np.isfinite(m["alpha"])]  # the row missing altogether: the same
    assert C.claim_c3(m, acc, C.Thresholds()).detail == ev.detail


def test_c3_by_hand_counts_texts_and_the_accuracy_error():
    th = C.Thresholds()
    ev = C.claim_c3(*c3_tables(*c3_five_runs()), th)
    assert (ev.value, (ev.ci_low, ev.ci_high), ev.verdict) == (
        0.8, C.wilson_interval(4, 5), "inconclusive"
    )  # fmt: skip
    assert ev.reason == "too much spread (1 of 5 runs undecided)" and ev.n_runs == 5
    assert ev.statistic == (
        "share of runs whose steepest α̂ change and test-accuracy rise per log(step + 1) end by "
        "10% of the run, within a factor 4 in step + 1"
    )
    assert ev.threshold == "≥ 0.9 of runs"
    assert ev.detail == (
        "4 runs yes, 0 no, 1 undecided (1 with no α̂ change or accuracy rise beyond noise, 0 with "
        "candidate intervals on both sides of a limit); steepest α̂ change per log(step + 1) "
        "ends at a median step 16, steepest test-accuracy rise at step 16; decided by the "
        "undecided runs: 1 more answering no would make it not supported, 1 answering yes "
        "supported; the 1 without an α̂ change or accuracy rise beyond noise need smaller "
        "standard errors (more noise values or test images per measurement)"
    )
    # the accuracy table's extra rows and columns do not enter: a later duplicate of a
    # checkpoint, and a column both tables share beyond the run and step
    m, acc = c3_tables(*c3_five_runs(), split=True)
    stale = acc[(acc["width"] == 16) & (acc["step"] == 16)].assign(test_accuracy=0.1)
    again = C.claim_c3(m, pd.concat([acc, stale], ignore_index=True), th)
    assert (again.value, again.n_runs, again.detail) == (ev.value, ev.n_runs, ev.detail)


def test_c3_by_hand_too_few_checkpoints_counts_every_run():
    """A run with 3 checkpoints (sorted first) makes C3 inconclusive; n_runs counts all."""
    short = {"steps": (0, 16, 1000), "alpha": [1.8, 1.3, 1.3], "acc": [0.1, 0.9, 0.9]}
    runs = [short, *c3_five_runs()[:2]]
    ev = C.claim_c3(*c3_tables(*runs), C.Thresholds())
    assert all(math.isnan(v) for v in (ev.value, ev.ci_low, ev.ci_high))
    assert ev.statistic.startswith("share of runs whose steepest α̂ change")
    assert (ev.threshold, ev.verdict, ev.n_runs) == ("≥ 0.9 of runs", "inconclusive", 3)
    assert ev.reason == "too few checkpoints (3 < c3_min_checkpoints 4)"
    assert ev.detail == (
        "add checkpoints (training.checkpoints) to resolve when α̂ and accuracy change"
    )
    # a run whose accuracy is missing at a checkpoint still has that checkpoint
    four = c3_five_runs()[3]
    assert C.claim_c3(*c3_tables(four), C.Thresholds()).detail.startswith("1 runs yes")


@pytest.mark.parametrize(
    ("one_run", "ends"),
    [
        # α̂ falls 0.3 between steps 0 and 1 (0.43 per unit of u) and rises 0.5 between 4 and
        # 16 (0.41): both candidates; the steepest change either way is the fall
        ({"alpha": [1.5, 1.2, 1.2, 1.7, 1.7, 1.7, 1.7], "acc": RISE_4_16}, (1, 16)),
        # accuracy falls 0.4 between steps 0 and 1, with no known error at step 0 (a
        # candidate), and rises 0.4 between 16 and 63: the steepest rise ends at 63
        (
            {
                "alpha": [1.8, 1.8, 1.8, 1.8, 1.3, 1.3, 1.3],
                "acc": [0.5, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5],
                "n_test": [np.nan] + [10_000] * 6,
            },
            (63, 63),
        ),
    ],
)
def test_c3_by_hand_steepest_ends_of_one_run(one_run, ends):
    ev = C.claim_c3(*c3_tables(one_run), C.Thresholds())
    assert ev.detail == (
        "0 runs yes, 0 no, 1 undecided (0 with no α̂ change or accuracy rise beyond noise, 1 "
        "with candidate intervals on both sides of a limit); steepest α̂ change per "
        f"log(step + 1) ends at a median step {ends[0]}, steepest test-accuracy rise at step "
        f"{ends[1]}"
    )


def sweep_ev(verdict: str, value: float, reason: str = "", n_runs: int = 5) -> C.Evaluation:
    """A claim judged at one block size of the sweep (statistic "s", threshold "t")."""
    return C.Evaluation("s", value, value - 0.1, value + 0.1, "t", verdict, reason, n_runs)


def test_combine_sweep_by_hand():
    empty = C.combine_sweep({})
    assert (empty.statistic, empty.threshold, empty.verdict, empty.n_runs, empty.detail) == (
        "", "", "inconclusive", 0, ""
    )  # fmt: skip
    assert empty.reason == "no block size common to every measurement"
    assert all(math.isnan(v) for v in (empty.value, empty.ci_low, empty.ci_high))
    few = "too few runs (2 < min_runs 3)"
    one = C.combine_sweep({"natural K1=100": sweep_ev("inconclusive", 0.8, few, 2)})
    assert (one.statistic, one.value, one.ci_low, one.ci_high, one.threshold) == (
        "s", 0.8, 0.8, 0.8, "t"
    )  # fmt: skip
    assert (one.verdict, one.reason, one.n_runs) == ("inconclusive", few, 2)
    assert one.detail == (
        "value: median over 1 block sizes × orders (K1 = 100 to 100), interval: their range; "
        "inconclusive: natural order at every K1"
    )
    # a common verdict other than inconclusive has no reason; the value is the median of the
    # finite values and the interval their range; n_runs the largest
    agree = C.combine_sweep(
        {
            "natural K1=10": sweep_ev("supported", 0.9, "ignored", 4),
            "natural K1=1000": sweep_ev("supported", 1.0, "", 6),
            "shuffled K1=10": sweep_ev("supported", math.nan, "", 5),
        }
    )
    assert (agree.value, agree.ci_low, agree.ci_high, agree.n_runs) == (0.95, 0.9, 1.0, 6)
    assert (agree.verdict, agree.reason) == ("supported", "")
    with warnings.catch_warnings():  # no value at all: NaN, without a median of nothing
        warnings.simplefilter("error")
        unknown = C.combine_sweep({"natural K1=10": sweep_ev("inconclusive", math.nan)})
    assert all(math.isnan(v) for v in (unknown.value, unknown.ci_low, unknown.ci_high))
    assert agree.detail == (
        "value: median over 3 block sizes × orders (K1 = 10 to 1,000), interval: their range; "
        "supported: natural order at every K1, shuffled order at every K1"
    )
    # the reason of an inconclusive common verdict is the first variant's
    spread = "too much spread (1 of 5 runs undecided)"
    both = {
        "natural K1=10": sweep_ev("inconclusive", 0.8, spread),
        "natural K1=30": sweep_ev("inconclusive", 0.7, few),
    }
    assert C.combine_sweep(both).reason == spread
    split = C.combine_sweep(
        {
            "natural K1=10": sweep_ev("supported", 0.95),
            "natural K1=30": sweep_ev("not supported", 0.2),
            "shuffled K1=10": sweep_ev("supported", 0.9),
            "shuffled K1=30": sweep_ev("supported", 1.0),
        }
    )
    assert (split.verdict, split.reason, split.value) == ("inconclusive", "depends on K1", 0.925)
    assert split.detail.endswith(
        "(K1 = 10 to 30), interval: their range; supported: natural order at K1 = 10, shuffled "
        "order at every K1; not supported: natural order at K1 = 30"
    )


def test_accuracy_table_by_hand():
    """One row per run × checkpoint (the first of its rows), with the test images of the test
    split's measurement (n_minibatches × batch size), else 10,000."""
    rows = []
    for width, steps in ((16, (0, 10)), (32, (0,))):
        for step in steps:
            for split, n in (("train", 100), ("test", 16)):
                acc = 0.5 + step / 100 if split == "train" else 0.2  # not the same in both
                rows.append({**run(width=width), "step": step, "split": split,
                             "test_accuracy": acc, "n_minibatches": n})  # fmt: skip
    summary = pd.DataFrame(rows)
    summary = summary[~((summary.width == 32) & (summary.split == "test"))]  # no test split
    acc = C.accuracy_table(summary)
    assert list(acc.columns) == [*C.RUN_KEYS, "step", "test_accuracy", "n_test"]
    assert acc[["width", "step", "test_accuracy", "n_test"]].values.tolist() == [
        [16, 0, 0.5, 16 * 500],
        [16, 10, 0.6, 16 * 500],
        [32, 0, 0.5, 10_000],
    ]


def same_fields(row: dict, ev: C.Evaluation) -> None:
    """A row of the long claims table holds exactly the fields of ``ev`` (NaN equal to NaN)."""
    for key, want in dataclasses.asdict(ev).items():
        got = row[key]
        assert got == want or (pd.isna(got) and pd.isna(want)), (key, got, want)


def test_evaluate_claims_passes_its_settings_to_every_claim():
    """ci_level, k1_factors, the thresholds, the iterates and the sharpness reach the claims
    they belong to: each row equals the claim judged directly with the same settings."""
    from test_eta_over_b import TH, falls_with_ratio, paired_iterates, sharpness_table

    from sgdtail import eta_over_b as E

    # α̂ moves with K1 over the sweep, so the robust K1 spread depends on the factors
    summary, estimates, _ = make_tables(
        widths(), alpha=1.85, sweep=lambda r, s, k1: 1.85 + 0.1 * math.log10(k1 / 100)
    )
    iterates, sharp = paired_iterates(falls_with_ratio), sharpness_table(lambda lr, b: lr / b)
    factors, level = (1.0, 4.0), 0.8
    th = dataclasses.replace(TH, z=1.5, min_share=0.8, c7_same_tolerance=0.03)
    long = C.evaluate_claims(
        summary, estimates, th, level, factors, sharpness=sharp, iterates=iterates
    )
    assert list(long.columns) == C.COLUMNS
    rows = {(r["claim"], r["estimator"]): r for r in long.to_dict("records")}
    for claim, ev in E.iterates_claims(iterates, th, level):
        same_fields(rows[(claim, C.ITERATES)], ev)
    same_fields(rows[("C7c", "n/a")], E.claim_c7c(sharp, th))
    m = C.alpha_measurements(summary, estimates, level, factors, split=th.split)
    robust = C.claim_c1(m[m["estimator"] == "robust"], th)
    same_fields(rows[("C1", "robust")], robust)
    default = C.evaluate_claims(summary, estimates, TH, level, factors, sharp, iterates)
    default = default.set_index(["claim", "estimator"])
    # the settings matter here: the default factors and thresholds give other rows
    assert (
        C.evaluate_claims(summary, estimates, th, level)
        .set_index(["claim", "estimator"])
        .loc[("C1", "robust"), "detail"]
        != robust.detail
    )
    assert default.loc[("C7b", C.ITERATES), "verdict"] != rows[("C7b", C.ITERATES)]["verdict"]


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 10), (4, 5), (9, 10), (37, 61)])
@pytest.mark.parametrize("z", [1.96, 1.0])
def test_wilson_interval_ends_solve_the_score_equation(k, n, z):
    """The ends are the p with (k/n − p)² = z² p (1 − p) / n: the roots of
    (1 + z²/n) p² − (2k/n + z²/n) p + (k/n)² = 0."""
    share = k / n
    roots = np.sort(np.roots([1 + z * z / n, -(2 * share + z * z / n), share * share]).real)
    np.testing.assert_allclose(C.wilson_interval(k, n, z), roots, rtol=1e-9, atol=1e-12)
    assert all(math.isnan(v) for v in C.wilson_interval(0, 0, z))
    if z == 1.96:  # the default: a 95% interval
        assert C.wilson_interval(k, n) == C.wilson_interval(k, n, 1.96)


def test_wilson_interval_is_clipped_to_zero_and_one():
    assert C.wilson_interval(5, 5)[1] == 1.0  # unclipped, rounding gives 1 + 2.2e-16
    assert C.wilson_interval(0, 5)[0] == 0.0


def test_describe_variants_names_orders_and_their_block_sizes():
    every = [f"{o} K1={k}" for o in ("natural", "shuffled") for k in (10, 30, 1000)]
    assert C._describe_variants(every, every) == (
        "natural order at every K1, shuffled order at every K1"
    )
    some = ["natural K1=10", "natural K1=1000", "shuffled K1=30"]
    assert C._describe_variants(some, every) == (
        "natural order at K1 = 10, 1,000, shuffled order at K1 = 30"
    )


def test_effect_ratio_and_level_ranges():
    assert C._ratio(6.0, 2.0) == 3.0
    assert C._ratio(0.5, 0.0) == math.inf  # only the denominator vanishes
    assert math.isnan(C._ratio(0.0, 0.0))
    assert C._ratio(0.0, 0.5) == 0.0
    sweeps = pd.DataFrame({"n_values": [3, 3], "n_runs": [9, 15]})
    assert C._levels(sweeps) == "3 levels, 9-15 runs each"
    assert C._levels(sweeps.assign(n_values=[3, 5], n_runs=9)) == "3-5 levels, 9 runs each"


def test_wide_table_shows_the_iterates_verdict_beside_the_noises():
    def row(claim, estimator, verdict, reason=""):
        return {"claim": claim, "estimator": estimator, "statistic": "slope", "value": -0.1,
                "ci_low": -0.2, "ci_high": 0.0, "threshold": "< 0", "verdict": verdict,
                "reason": reason, "n_runs": 9, "detail": ""}  # fmt: skip

    long = pd.DataFrame(
        [row("C7a", e, "supported") for e in C.ESTIMATOR_CHOICES]
        + [row("C7a", C.ITERATES, "inconclusive", "not measured"), row("C1", "robust", "supported")]
    )
    wide = C.wide_table(long).set_index("claim")
    assert wide.loc["C7a", C.ITERATES_LABEL] == "inconclusive: not measured"
    assert wide.loc["C1", C.ITERATES_LABEL] == "n/a"


# ----------------------------------------------------------------------------
# Sweeps, external claims, the table
# ----------------------------------------------------------------------------


def test_axis_sweeps_groups_runs_that_differ_in_one_axis():
    points = c2_runs() + [run(width=64, batch_size=1000, seed=1)]
    by_batch = C.axis_sweeps(points, "batch_size")
    assert len(by_batch) == 1 and {p["batch_size"] for p in by_batch[0]} == {100, 250, 500, 1000}
    assert len(C.axis_sweeps(points, "width")) == 1
    assert C.axis_sweeps(points, "lr") == []
    with pytest.raises(ValueError, match="axis"):
        C.axis_sweeps(points, "seed")


def test_sweep_rows_label_each_sweep_and_keep_a_text_column_when_empty():
    df = pd.DataFrame(c2_runs())
    rows = C.sweep_rows(df, "batch_size")
    assert sorted(rows["batch_size"]) == [100, 250, 500, 1000]  # the width-64 runs only
    assert set(rows["sweep"]) == {"mnist fcn 64 2 0.1 cross_entropy sgd"}
    for empty in (C.sweep_rows(df, "lr"), C.sweep_rows(df.iloc[:0], "width")):
        assert empty.empty and empty["sweep"].dtype == rows["sweep"].dtype
    # a missing value in another axis (a grid without optimizers) is a value like any other
    unnamed = C.sweep_rows(df.assign(optimizer=None), "batch_size")
    assert sorted(unnamed["batch_size"]) == [100, 250, 500, 1000]
    assert set(unnamed["sweep"]) == {"mnist fcn 64 2 0.1 cross_entropy None"}


def external(claim: str, verdict: str, **kw) -> dict:
    return {
        "claim": claim,
        "statistic": "max |slope| of exit time",
        "value": 0.5,
        "ci_low": 0.4,
        "ci_high": 0.6,
        "threshold": "< 1",
        "verdict": verdict,
        "detail": "from dynamics",
        **kw,
    }


def test_external_claims_are_merged_with_their_verdicts():
    ext = C.external_claims(
        [external("C4", "supported"), external("C6", "inconclusive (too few runs)")]
    )
    assert list(ext.columns) == C.COLUMNS
    assert ext.set_index("claim").loc["C6", "reason"] == "too few runs"
    summary, estimates, runs_table = make_tables(widths())
    long = pd.concat([C.evaluate_claims(summary, estimates, C.Thresholds()), ext])
    wide = C.wide_table(long).set_index("claim")
    assert wide.loc["C4", "survives every estimator"] == "n/a"
    assert wide.loc["C4", C.ESTIMATOR_CHOICES["robust"]] == "supported"
    text = C.claims_markdown(long, runs_table, C.Thresholds())
    assert "| C4 |" in text and "| C6 |" in text and "inconclusive: too few runs" in text
    assert "max \\|slope\\| of exit time" in text  # a | inside a cell is escaped


@pytest.mark.parametrize(
    "bad, message",
    [({"verdict": "maybe"}, "not one of"), ({"value": None, "detail": None}, None)],
)
def test_external_claims_reject_bad_dicts(bad, message):
    claim = {**external("C5", "supported"), **bad}
    if message is None:  # None values are fine (NaN), missing keys are not
        assert math.isnan(C.external_claims([claim]).value.iloc[0])
        claim.pop("threshold")
        message = "lacks keys"
    with pytest.raises(ValueError, match=message):
        C.external_claims([claim])


def test_axis_sweeps_exact_groups_ignore_the_seed_and_need_two_values():
    a, b, c = run(width=16, seed=0), run(width=32, seed=1), run(width=16, seed=2)
    d, e = run(width=16, lr=0.01), run(width=64, lr=0.01)  # exactly two widths: a sweep
    f, g = run(width=16, lr=0.5), run(width=16, lr=0.5, seed=3)  # one width only: none
    assert C.axis_sweeps([a, d, b, f, c, e, g], "width") == [[a, b, c], [d, e]]
    assert C.axis_sweeps([a, f], "width") == []
    assert C.axis_sweeps([a, f], "lr") == [[a, f]]
    # runs of different optimizers are different sweeps; the optimizer is an axis to sweep
    h = run(width=32, optimizer="adam")
    assert C.axis_sweeps([a, b, h], "width") == [[a, b]]
    assert C.axis_sweeps([b, h], "optimizer") == [[b, h]]
    with pytest.raises(
        ValueError,
        match=r"^axis='seed' must be one of \['dataset', 'arch', "
        r"'width', 'depth', 'batch_size', 'lr', 'loss', 'optimizer'\]$",
    ):
        C.axis_sweeps([a], "seed")


def test_external_claims_exact_rows_and_messages():
    import re

    ext = C.external_claims(
        [
            external(
                "C4",
                "inconclusive (window longer than MAX)",
                value=0.25,
                ci_low=None,
                ci_high=2,
                threshold=0.5,
                detail=7,
            ),
            external("C6", "not supported", value=None, ci_low=-1.5, ci_high=None),
        ]
    )
    want = pd.DataFrame(
        {
            "claim": ["C4", "C6"],
            "estimator": ["n/a", "n/a"],
            "statistic": ["max |slope| of exit time"] * 2,
            "value": [0.25, math.nan],
            "ci_low": [math.nan, -1.5],
            "ci_high": [2.0, math.nan],
            "threshold": ["0.5", "< 1"],
            "verdict": ["inconclusive", "not supported"],
            "reason": ["window longer than MAX", ""],
            "n_runs": [0, 0],
            "detail": ["7", "from dynamics"],
        },
        columns=C.COLUMNS,
    )
    pd.testing.assert_frame_equal(ext, want)
    assert list(C.external_claims([]).columns) == C.COLUMNS  # none: still every column
    no_claim = {k: v for k, v in external("C5", "supported").items() if k != "claim"}
    with pytest.raises(ValueError, match=re.escape("claim dict #0 (?) lacks keys ['claim']")):
        C.external_claims([no_claim])
    no_detail = {k: v for k, v in external("C5", "supported").items() if k != "detail"}
    with pytest.raises(ValueError, match=re.escape("claim dict #1 (C5) lacks keys ['detail']")):
        C.external_claims([external("C4", "supported"), no_detail])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "claim C5: verdict 'maybe (x)' is not one of ['supported', 'not supported', "
            "'inconclusive']"
        ),
    ):
        C.external_claims([external("C5", "maybe (x)")])


def _decides(seeds_needed: int, seeds: int) -> str:
    return (
        f"at these slopes about {seeds_needed} seeds per grid point "
        f"(grids.<name>.runs[].seed; now {seeds}) would decide it"
    )


@pytest.mark.parametrize(
    "e_b, se_b, e_n, se_n, seeds, want",
    [
        # upper end (e_b + 2·se_b·s) / (e_n − 2·se_n·s), s = 1/√factor: exactly 1 at factor 4
        # (not below 1: undecided), below from 5 on
        (0.5, 0.25, 1.0, 0.25, 3, _decides(15, 3)),
        (0.2, 0.05, 1.0, 0.05, 1, _decides(2, 1)),  # already clear at factor 2
        # lower end (e_b − 2·se_b·s) / (e_n + 2·se_n·s): exactly 1 at factor 4 (≥ 1: decided)
        (1.5, 0.25, 1.0, 0.25, 2, _decides(8, 2)),
        # lower end ≥ 1 from factor 3 on; its numerator is clipped at 0, not at 1
        (0.9, 0.5, 0.2, 0.05, 5, _decides(15, 5)),
        # upper end exactly 1 at factor 64 (s = 1/8): not decided within 64 times the seeds
        (
            0.5,
            1.0,
            1.0,
            1.0,
            3,
            "at these slopes even 192 seeds per grid point would not decide "
            "it: the two effects are about equal",
        ),
    ],
)
def test_c2_decider_counts_the_seeds_that_would_decide(e_b, se_b, e_n, se_n, seeds, want):
    assert C._c2_decider(e_b, se_b, e_n, se_n, C.Thresholds(), seeds) == want


def _claim_row(
    claim,
    est,
    value,
    lo,
    hi,
    verdict,
    reason="",
    statistic="share of runs with α̂ < 1.9",
    threshold="≥ 0.9",
    detail="d.",
):
    return dict(
        claim=claim,
        estimator=est,
        statistic=statistic,
        value=value,
        ci_low=lo,
        ci_high=hi,
        threshold=threshold,
        verdict=verdict,
        reason=reason,
        n_runs=5,
        detail=detail,
    )


def _markdown_fixture():
    """A long claims table (C2 listed first; one end of its interval unknown; a | in its
    statistic; C1 with two estimators that differ; an external C5) and runs (two diverged,
    two not trained, one of them without accuracy, one converged), thresholds off default."""
    nan = math.nan
    long = pd.DataFrame(
        [
            _claim_row(
                "C2",
                "robust",
                0.5,
                nan,
                0.7,
                "supported",
                statistic="|slope| ratio",
                threshold="< 1",
                detail="two sweeps.",
            ),
            _claim_row("C1", "robust", 0.8, 0.6, 0.9, "supported", detail="4 of 5 yes."),
            _claim_row("C1", "reference", 0.2, 0.1, 0.3, "not supported"),
            _claim_row("C1", "per_coordinate", 0.95, 0.9, 1.0, "supported"),
            _claim_row("C1", "block_sweep", nan, nan, nan, "inconclusive", "depends on K1"),
            _claim_row(
                "C5",
                "n/a",
                None,
                None,
                None,
                "inconclusive",
                "too few runs",
                statistic="share",
                threshold="> 0.5",
                detail="from dynamics.",
            ),
        ],
        columns=C.COLUMNS,
    )
    runs = pd.DataFrame(
        {
            "status": [
                "completed",
                "diverged",
                "not_trained",
                "diverged",
                "not_trained",
                "converged",
            ],
            "diverged_at": [nan, 12.0, nan, 30.0, nan, nan],
            "final_train_accuracy": [0.9, nan, 0.2, nan, nan, 1.0],
        }
    )
    th = C.Thresholds(
        min_share=0.8,
        min_train_accuracy=0.25,
        z=1.5,
        c1_alpha_max=1.8,
        c2_ratio_max=0.75,
        c3_early_fraction=0.2,
        c3_max_step_ratio=2.5,
        c3_min_checkpoints=5,
        c7_same_tolerance=0.15,
        min_runs=4,
        split="test",
    )
    return long, runs, th


MD_RULES = [
    "- Runs: only runs that trained count (status completed or converged); diverged runs and "
    "runs whose final training accuracy is below 25% (not_trained) enter no statistic. A "
    "measurement with too few noise values (pooled_enough false) is not used by the pooled "
    "estimators (robust, reference, block sweep), one with too few minibatches "
    "(per_coordinate_enough false) not by the per-coordinate median; each claim's details say "
    "how many were left out.",
    "- Share claims (C1, C3): each run is yes, no or undecided; supported when ≥ 0.8 of the "
    "runs are yes, not supported when more than 0.2 are no, otherwise inconclusive (too much "
    "spread); fewer than 4 runs: inconclusive (too few runs). The value is the share of yes "
    "with its Wilson 95% interval.",
    "- C1: at each run's last checkpoint, yes when the upper end of the α̂ interval is below "
    "1.8, no when its lower end is at or above it. Robust estimate: the interval is the "
    "batch-means interval (which belongs to K1 = the power of two nearest √K only) widened by the "
    "spread of the robust estimate's own members, the α̂ at K1 = the power of two nearest f·√K "
    "for every factor f (read off the natural-order "
    "block sweep, linear in log K1): lower end − (median member − smallest), upper end + "
    "(largest − median member). The other estimators have no interval: their point value is "
    "compared.",
    "- C2: for each sweep (runs equal in every axis but one and the seed, last checkpoint) the "
    "least-squares slope of α̂ against log2 of the swept value, i.e. the change of α̂ per "
    "doubling, every seed a point; it does not grow with the number of levels. Its standard "
    "error is √(v / Σ(log2 x − mean)²), v the larger of the residual variance and the mean "
    "squared batch-means standard error. The ratio is the median |slope| over batch-size sweeps "
    "divided by the median |slope| over the width and depth sweeps, each side counting only "
    "sweeps that have one of the other kind in their data set, architecture, loss and learning "
    "rate; its interval uses each median ± 1.5 × the median "
    "standard error. Supported when the whole interval is below 0.75, not supported when it is "
    "at or above, inconclusive when it straddles or when a sweep is missing.",
    "- C3: time is measured as u = log(step + 1), on which log-spaced checkpoints are evenly "
    "spaced. For α̂ (a change either way) and for test accuracy (a rise), each checkpoint "
    "interval's change is divided by its length in u; the candidates are the steepest interval "
    "and every interval whose rate is within 1.5 standard errors of it (standard error of a "
    "change: √(se₁² + se₂²); accuracy: √(p(1 − p)/n_test)). A run is yes when every candidate "
    "of both ends by step 20% × the run's last step (early) and every α̂ candidate lies within "
    "a factor 2.5 in step + 1 of every accuracy candidate (interval centres: geometric mean of "
    "step + 1 at its ends; coincide); no when all candidates of α̂ or all of accuracy end after "
    "the early step, or no pair coincides; undecided otherwise, or when the steepest change is "
    "not above 1.5 standard errors. Fewer than 5 checkpoints: inconclusive.",
    "- C7 on networks: a family is the runs equal in every axis but the learning rate η, the "
    "batch size b and the seed, a cell the runs of one (η, b), each at its last checkpoint. "
    "C7a: per family with two or more η/b, the least-squares slope of the cells' mean α̂ "
    "against log2(η/b), every cell a point; standard error √(v / Σ(log2 x − mean)²), v the "
    "larger of the cells' residual variance and the variance of a cell's mean from its seeds "
    "(the pooled seed-to-seed variance, at least the mean squared batch-means standard error, "
    "over the cell's seeds); ± 1.5 standard errors; supported when every family's interval "
    "lies below 0, not supported when one lies above 0, else inconclusive. C7b: per family and "
    "η/b held by two or more cells, the mean α̂ over seeds at the largest b minus at the "
    "smallest b, ± 1.5 standard errors (the seed-to-seed variance pooled over the family's "
    "cells, at least the mean squared batch-means standard error; no cell with two seeds: "
    "inconclusive); supported when every interval lies inside ±0.15, not supported when one "
    "lies outside it. C7c: as C7a for log2 λ_max (top Hessian eigenvalue) over the end points "
    "C6 admits, its checks of the α̂ aside; it does not depend on the α estimator. Fewer than 4 "
    "runs: inconclusive.",
    "- Block-size sweep: the rule is applied at every block size K1 that every measurement has, "
    "in natural and shuffled order; one verdict if all agree, otherwise inconclusive (depends "
    "on K1).",
]
MD_HEAD = [
    "# Claims and verdicts",
    "",
    "Runs: 6 runs in the grid; 4 excluded from every statistic: 2 diverged (loss not finite; at "
    "steps 12, 30); 2 did not train (final training accuracy 20%, n/a < "
    "claims.min_train_accuracy 25%); 1 stopped early at training.stop_at_train_accuracy (kept: "
    "their last checkpoint is the one used). Noise split: test.",
    "",
    "| claim | statistic | value [interval] | threshold | pooled robust | pooled reference "
    "(2019) | per-coordinate median | block-size sweep (every K1, both orders) | survives every "
    "estimator | iterates (C7a, C7b) |",
    "|---|---|---|---|---|---|---|---|---|---|",
    "| C1 | share of runs with α̂ < 1.9 | 0.80 [0.60, 0.90] | ≥ 0.9 | supported | not supported "
    "| supported | inconclusive: depends on K1 | no (pooled reference (2019), block-size sweep "
    "(every K1, both orders) differ) | n/a |",
    "| C2 | \\|slope\\| ratio | 0.50 [nan, 0.70] | < 1 | supported | n/a | n/a | n/a | yes | n/a |",
    "| C5 | share | n/a | > 0.5 | inconclusive: too few runs | n/a | n/a | n/a | n/a | n/a |",
    "",
    "Value: the primary estimate (pooled robust) with its interval (share claims: Wilson 95% "
    "interval over runs; C2: ± z standard errors). Each estimator column is the verdict the "
    "same rule gives with that estimator; *survives every estimator* is `yes` when all four "
    "agree. The last column judges C7a and C7b on the tail index of the SGD iterates instead "
    "of the gradient noise.",
    "",
    "## Claims",
    "",
    "- **C1**: The gradient noise is not Gaussian: α̂ is well below 2 in every setting.",
    "- **C2**: Batch size has a smaller effect on α than network size.",
    "- **C5**: A heavy-tailed path looks Gaussian over short windows but shows frequent large "
    "jumps over long ones.",
    "",
    "## Rules and thresholds",
]
MD_TAIL = [
    "## Details",
    "",
    "- **C2, pooled robust**: 0.50 [nan, 0.70]; supported. two sweeps.",
    "- **C1, pooled robust**: 0.80 [0.60, 0.90]; supported. 4 of 5 yes.",
    "- **C1, pooled reference (2019)**: 0.20 [0.10, 0.30]; not supported. d.",
    "- **C1, per-coordinate median**: 0.95 [0.90, 1.00]; supported. d.",
    "- **C1, block-size sweep (every K1, both orders)**: n/a; inconclusive: depends on K1. d.",
    "- **C5, n/a**: n/a; inconclusive: too few runs. from dynamics.",
    "",
]


def test_rules_text_states_every_threshold_exactly():
    *_, th = _markdown_fixture()
    assert C.rules_text(th) == MD_RULES


def test_claims_markdown_exactly():
    """The whole claims Markdown: exclusions with the gate, the table sorted by claim (cells
    escaped, missing estimators n/a, the differing estimators named), the claims' texts, the
    rules and one detail line per row of the long table in its order."""
    long, runs, th = _markdown_fixture()
    text = C.claims_markdown(long, runs, th)
    assert text.split("\n") == [*MD_HEAD, "", *MD_RULES, "", *MD_TAIL]
    # a claim without a stated text (another stage's) is listed with an empty one
    other = long[long.claim == "C5"].assign(claim="C9")
    lines = C.claims_markdown(other, runs, th).split("\n")
    assert lines[lines.index("## Claims") + 2] == "- **C9**: "


def test_claims_html_page_exactly():
    """The report page: fixed head and style, the table (escaped, no index, no border
    attribute, class claims), then the Markdown text escaped in a <pre>."""
    import re

    wide = pd.DataFrame({"claim": ["C1"], "a <b>": ["x & <i>y</i>"]})
    page = C.claims_html("# Claims\n| a | <c> & d |\n", wide)
    head = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Claims</title><style>"
        "body{font-family:sans-serif;margin:1em}table.claims{border-collapse:collapse}"
        "table.claims td,table.claims th{border:1px solid #bbb;padding:4px;vertical-align:top}"
        "pre{white-space:pre-wrap}</style></head><body><h1>Claims and verdicts</h1>"
        '<table class="dataframe claims">'
    )
    tail = (
        "</table><h2>Exclusions, rules and details</h2>"
        "<pre># Claims\n| a | &lt;c&gt; &amp; d |\n</pre></body></html>\n"
    )
    assert page.startswith(head) and page.endswith(tail)
    table = page[len(head) - len('<table class="dataframe claims">') : -len(tail)]
    assert "border" not in table and "<i>" not in table
    assert re.findall(r"<t[hd]>(.*?)</t[hd]>", table) == [
        "claim",
        "a &lt;b&gt;",
        "C1",
        "x &amp; &lt;i&gt;y&lt;/i&gt;",
    ]


def test_markdown_table_has_every_estimator_column_and_the_rules():
    summary, estimates, runs_table = make_tables(widths(), alpha=early_alpha_drop)
    long = C.evaluate_claims(summary, estimates, C.Thresholds())
    text = C.claims_markdown(long, runs_table, C.Thresholds())
    for label in C.ESTIMATOR_CHOICES.values():
        assert label in text
    assert "5 runs in the grid; none excluded" in text
    assert "## Rules and thresholds" in text
    rules = text.split("## Rules and thresholds")[1].split("## Details")[0]
    for words in (
        "widened by the spread",
        "change of α̂ per doubling",
        "u = log(step + 1)",
        "divided by its length in u",
        "within a factor 4 in step + 1",
        "pooled_enough false",
        "per_coordinate_enough false",
        "below 50% (not_trained)",
    ):
        assert words in rules, words
    html = C.claims_html(text, C.wide_table(long))
    assert html.startswith("<!DOCTYPE html>") and "<table" in html


def test_config_claims_section_matches_the_thresholds():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    th = C.Thresholds.from_config(config["claims"])
    assert th == C.Thresholds()  # the dataclass defaults document the config's values
    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    fields = {f.name for f in dataclasses.fields(C.Thresholds)}
    assert set(schema["$defs"]["claims"]["properties"]) == fields
    assert set(schema["properties"]["claims"]["allOf"][1]["required"]) == fields
    with pytest.raises(ValueError, match="unknown claims keys"):
        C.Thresholds.from_config({"c1_alpha": 1.9})


def test_claim_rows_cover_every_claim_and_estimator():
    summary, estimates, _ = make_tables(widths())
    long = C.evaluate_claims(summary, estimates, C.Thresholds())
    assert list(long.columns) == C.COLUMNS
    assert len(long) == 5 * len(C.ESTIMATOR_CHOICES) + 2  # + C7a, C7b on the iterates
    assert list(long.claim.unique()) == ["C1", "C2", "C3", "C7a", "C7b"]
    assert set(long.verdict) <= set(C.VERDICTS)
    assert set(AXES) <= set(summary.columns)
    # C7c, judged on the sharpness table once (not an α estimate)
    sharp = summary[summary.split == "train"].drop_duplicates(list(AXES))[list(AXES)]
    sharp = sharp.assign(top_hessian_eigenvalue=10.0, excluded="", excluded_sharpness="")
    long = C.evaluate_claims(summary, estimates, C.Thresholds(), sharpness=sharp)
    c7c = long[long.claim == "C7c"]
    assert list(c7c.estimator) == ["n/a"] and len(long) == 5 * len(C.ESTIMATOR_CHOICES) + 3


def test_share_verdict_allows_one_outlier_in_ten_exactly():
    th = C.Thresholds()  # min_share 0.9: "in every setting" with room for 1 outlier in 10
    assert C.share_verdict(8, 1, 1, th)[3] == "inconclusive"
    assert C.share_verdict(17, 2, 1, th)[3] == "inconclusive"
    assert C.share_verdict(9, 1, 0, th)[3] == "supported"
    assert C.share_verdict(8, 2, 0, th)[3] == "not supported"
    # reasons: none for a decided verdict
    assert [C.share_verdict(*counts, th)[4] for counts in ((9, 1, 0), (8, 2, 0))] == ["", ""]
    assert C.share_verdict(8, 1, 1, th)[4] == "too much spread (1 of 10 runs undecided)"
    assert C.share_verdict(1, 0, 1, th)[4] == "too few runs (2 < min_runs 3)"


# ----------------------------------------------------------------------------
# Which checkpoints each claim reads (α changing over training)
# ----------------------------------------------------------------------------


def at_last(late: AlphaFn, early: AlphaFn | float, last: int = STEPS[-1]) -> AlphaFn:
    """α̂ ``late(run, step)`` at the run's last checkpoint ``last``, ``early`` before it."""
    early_fn = early if callable(early) else (lambda r, s: early)
    return lambda r, s: late(r, s) if s == last else early_fn(r, s)


def concat_tables(*tables) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary, estimates, runs) of several :func:`make_tables` calls, one grid."""
    return tuple(pd.concat(parts, ignore_index=True) for parts in zip(*tables, strict=True))


def same_row(a: pd.Series, b: pd.Series) -> None:
    for column in ("verdict", "reason", "n_runs"):
        assert a[column] == b[column], column
    for column in ("value", "ci_low", "ci_high"):
        assert a[column] == pytest.approx(b[column], nan_ok=True), column


@pytest.mark.parametrize(
    "late, early, verdict", [(1.3, 1.98, "supported"), (1.98, 1.3, "not supported")]
)
def test_c1_reads_each_runs_last_checkpoint(late, early, verdict):
    """α̂ differs between the last checkpoint and every earlier one: C1 gives the verdict of
    the last one, with every estimator, and states its α̂ (the first checkpoint's would give the
    opposite verdict)."""
    alpha = at_last(lambda r, s: late, early)
    summary, estimates, _ = make_tables(widths(), alpha=alpha)
    table = judge(summary, estimates)
    assert set(table.loc["C1"].verdict) == {verdict}, table.loc["C1"].detail.tolist()
    detail = table.loc[("C1", "robust"), "detail"]
    assert f"from {late:.2f} to {late:.2f}, median {late:.2f}" in detail, detail
    constant = judge(*make_tables(widths(), alpha=late)[:2])
    for estimator in C.ESTIMATOR_CHOICES:
        same_row(table.loc[("C1", estimator)], constant.loc[("C1", estimator)])


def test_c1_last_checkpoint_is_per_run_when_runs_stop_early():
    """Two runs stopped at step 63 (converged): their last checkpoint is 63, not the grid's
    last step 1000, and it is the only one that counts; before it α̂ reads 1.98."""
    early_steps = (0, 1, 4, 16, 63)
    long = make_tables(widths(3), alpha=at_last(lambda r, s: 1.3, 1.98))
    short = make_tables(
        [run(width=w) for w in (256, 512)],
        steps=early_steps,
        alpha=at_last(lambda r, s: 1.3 if r["width"] == 256 else 1.2, 1.98, last=63),
    )
    summary, estimates, _ = concat_tables(long, short)
    m = C.alpha_measurements(summary, estimates, split="train")
    last = m[(m.estimator == "robust") & m["last"]]
    ends = sorted(zip(last.width, last.step, strict=True))
    assert ends == [(16, 1000), (32, 1000), (64, 1000), (256, 63), (512, 63)]
    row = judge(summary, estimates).loc[("C1", "robust")]
    assert row.verdict == "supported" and row.n_runs == 5 and row.value == 1.0, row.detail
    assert "from 1.20 to 1.30, median 1.30" in row.detail, row.detail


def test_claims_do_not_depend_on_the_order_of_the_table_rows():
    """The summary sorted by descending step (last checkpoint first), the estimates
    shuffled: every claim, every estimator, the same numbers."""

    def alpha(r, s):
        return (
            c2_alpha(0.6, 0.05)(r, s)
            if s >= 16  # noqa: E731
            else c2_alpha(0.05, 0.6)(r, s) + 0.5
        )

    summary, estimates, _ = make_tables(c2_runs(), alpha=alpha, half_width=0.01)
    expected = judge(summary, estimates)
    got = judge(
        summary.sort_values("step", ascending=False, kind="stable"),
        estimates.sample(frac=1.0, random_state=4),
    )
    for key in expected.index:
        same_row(got.loc[key], expected.loc[key])


def test_c2_reads_each_runs_last_checkpoint():
    """At the last checkpoint width changes α̂ far more than batch size (supported); at every
    earlier checkpoint the reverse (which would be not supported). C2 gives the last
    checkpoint's verdict and numbers: slope per doubling 0.05·log10 2 over batch size against
    the median of 0.2 (width) and 0 (depth)."""
    late, early = c2_alpha(0.6, 0.05), c2_alpha(0.05, 0.6)
    summary, estimates, _ = make_tables(c2_runs(), alpha=at_last(late, early), half_width=0.01)
    table = judge(summary, estimates)
    row = table.loc[("C2", "robust")]
    assert row.verdict == "supported", row.detail
    assert row.value == pytest.approx(0.05 * math.log10(2) / 0.1)
    assert "batch size: |slope| 0.015" in row.detail and "|slope| 0.100" in row.detail, row.detail
    constant = judge(*make_tables(c2_runs(), alpha=late, half_width=0.01)[:2])
    for estimator in C.ESTIMATOR_CHOICES:
        same_row(table.loc[("C2", estimator)], constant.loc[("C2", estimator)])
    reverse, _, _ = make_tables(c2_runs(), alpha=at_last(early, late), half_width=0.01)
    assert judge(reverse, estimates).loc[("C2", "robust"), "verdict"] == "not supported"


def test_c3_early_limit_is_a_fraction_of_each_runs_last_step():
    """α̂ and test accuracy both change most between steps 16 and 63 in every run. For the
    three runs that reach step 1000 that is early (63 ≤ 10% × 1000); for the two that stop
    at step 251 it is not (63 > 25.1): 3 yes, 2 no, not supported."""
    alpha = lambda r, s: 1.8 if s == 0 else 1.75 if s <= 16 else 1.3  # noqa: E731
    long = make_tables(widths(3), alpha=alpha, accuracy=accuracy_16_to_63)
    short = make_tables(
        [run(width=w) for w in (256, 512)],
        alpha=alpha,
        accuracy=accuracy_16_to_63,
        steps=STEPS[:-1],
    )
    table = judge(*concat_tables(long, short)[:2])
    row = table.loc[("C3", "robust")]
    assert row.verdict == "not supported", row.detail
    assert row.value == pytest.approx(0.6) and row.n_runs == 5
    assert row.detail.startswith("3 runs yes, 2 no, 0 undecided"), row.detail
    only_long = judge(*long[:2]).loc[("C3", "robust")]
    assert only_long.verdict == "supported" and only_long.detail.startswith("3 runs yes")


def test_c3_follows_alpha_over_every_checkpoint_not_one():
    """C3 reads α̂ at every checkpoint of a run: the same runs, once with α̂ falling between
    steps 16 and 63 (with the accuracy rise: yes) and once between 251 and 1000 (late: no);
    the first and last checkpoints hold the same α̂ in both."""
    early = lambda r, s: 1.8 if s <= 16 else 1.3  # noqa: E731
    late = lambda r, s: 1.8 if s <= 251 else 1.3  # noqa: E731
    rows = {}
    for name, alpha in (("early", early), ("late", late)):
        summary, estimates, _ = make_tables(widths(), alpha=alpha, accuracy=accuracy_16_to_63)
        rows[name] = judge(summary, estimates).loc[("C3", "robust")]
    assert rows["early"].verdict == "supported", rows["early"].detail
    assert "α̂ change per log(step + 1) ends at a median step 63" in rows["early"].detail
    assert rows["late"].verdict == "not supported", rows["late"].detail
    assert "α̂ change per log(step + 1) ends at a median step 1000" in rows["late"].detail
