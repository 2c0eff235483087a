"""Claim C7 on networks (sgdtail.eta_over_b): families, every verdict of C7a-c on synthetic
tables, and the two η/b figures read back by content."""

from __future__ import annotations

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from sgdtail import eta_over_b as E
from sgdtail.claims import Thresholds
from sgdtail.figures import FIGURES, missing_runs
from sgdtail.grid import AXES
from sgdtail.plots_eta_over_b import plot_alpha_vs_eta_over_b, plot_sharpness_vs_eta_over_b
from sgdtail.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

LRS = (0.05, 0.1, 0.2)
BATCHES = (250, 500, 1000)
SEEDS = (0, 1, 2)
TH = Thresholds(z=2.0, min_runs=3, c7_same_tolerance=0.1)


def point(lr: float, b: int, seed: int, width: int = 64) -> dict:
    return {
        "dataset": "mnist",
        "arch": "fcn",
        "width": width,
        "depth": 3,
        "batch_size": b,
        "lr": lr,
        "loss": "cross_entropy",
        "seed": seed,
        "optimizer": "sgd",
    }


def measurements(alpha_of, se: float = 0.01, noise: float = 0.0, width: int = 64) -> pd.DataFrame:
    """Rows shaped like sgdtail.claims.alpha_measurements (one estimator): α̂ =
    alpha_of(lr, b) + noise·(seed − 1) at each run's last checkpoint, and an earlier checkpoint
    with α̂ = 5 that must not count."""
    rows = []
    for lr in LRS:
        for b in BATCHES:
            for seed in SEEDS:
                alpha = alpha_of(lr, b) + noise * (seed - 1)
                for step, last, value in ((10, False, 5.0), (1000, True, alpha)):
                    rows.append(
                        {
                            **point(lr, b, seed, width),
                            "step": step,
                            "split": "train",
                            "estimator": "robust",
                            "variant": "",
                            "alpha": value,
                            "low": value,
                            "high": value,
                            "se": se,
                            "last": last,
                            "enough": True,
                        }
                    )
    return pd.DataFrame(rows)


def falls_with_ratio(lr: float, b: int) -> float:
    """α = 1.6 − 0.1 log2(η/b / 2e-4): a function of η/b alone that falls as it grows."""
    return 1.6 - 0.1 * math.log2(lr / b / 2e-4)


def test_ratio_makes_equal_ratios_equal_and_families_need_two_ratios():
    assert E.ratio(0.05, 250) == E.ratio(0.1, 500) == E.ratio(0.2, 1000)
    assert 0.3 / 3 != 0.1 / 1 and E.ratio(0.3, 3) == E.ratio(0.1, 1)
    one_ratio = E.with_ratio(pd.DataFrame([point(0.1, 500, s) for s in SEEDS]))
    assert E.families(one_ratio) == []
    two = E.with_ratio(
        pd.DataFrame([point(0.1, 500, 0), point(0.1, 250, 0), point(0.1, 250, 0, 16)])
    )
    ((label, rows),) = E.families(two)
    assert label == "mnist/fcn/w64_d3/cross_entropy" and len(rows) == 2
    adam = E.with_ratio(pd.DataFrame([{**point(0.1, 500, 0), "optimizer": "adam"}] * 2))
    assert E.family_label(adam.iloc[0]) == "mnist/fcn/w64_d3/cross_entropy_adam"
    mixed = E.with_ratio(
        pd.DataFrame([point(0.1, 500, 0), {**point(0.1, 250, 0), "optimizer": "adam"}])
    )
    assert E.families(mixed) == []  # optimizers are kept apart
    assert set(E.RATIO_FAMILY_AXES) == set(AXES) - {"lr", "batch_size", "seed"}
    assert E.has_ratio_family([point(0.1, 500, 0), point(0.05, 500, 0)])
    assert not E.has_ratio_family([point(0.1, 500, 0), point(0.1, 500, 1, 16)])


def test_families_without_an_optimizer_or_with_a_missing_axis_value():
    """A row without an optimizer is plain SGD; a missing value in an axis is a value too;
    two values of η/b in two networks make no family."""
    plain = {k: v for k, v in point(0.1, 500, 0).items() if k != "optimizer"}
    assert E.family_label(plain) == "mnist/fcn/w64_d3/cross_entropy"
    two = E.with_ratio(pd.DataFrame([point(0.1, 500, 0), point(0.1, 250, 0)]))
    assert [len(rows) for _, rows in E.families(two.assign(optimizer=None))] == [2]
    assert E.with_ratio(two.iloc[:0])[E.RATIO].dtype == np.float64
    assert not E.has_ratio_family([point(0.1, 500, 0), point(0.05, 500, 0, 16)])


def test_c7a_supported_when_alpha_falls_with_the_ratio():
    ev = E.claim_c7a(measurements(falls_with_ratio, noise=0.01), TH)
    assert ev.verdict == SUPPORTED, ev
    assert ev.value == pytest.approx(-0.1, abs=1e-9) and ev.ci_high < 0
    assert ev.n_runs == 27 and "5 values of η/b" in ev.detail


def test_c7a_not_supported_when_alpha_rises_with_the_ratio():
    ev = E.claim_c7a(measurements(lambda lr, b: 3.2 - falls_with_ratio(lr, b), noise=0.01), TH)
    assert ev.verdict == NOT_SUPPORTED and ev.value == pytest.approx(0.1, abs=1e-9)
    assert ev.ci_low > 0


def test_c7a_inconclusive_when_seed_noise_hides_the_slope_and_when_there_is_no_family():
    ev = E.claim_c7a(measurements(falls_with_ratio, noise=1.0), TH)
    assert ev.verdict == INCONCLUSIVE and ev.reason.startswith("too much spread")
    assert ev.ci_low < 0 < ev.ci_high
    one = measurements(falls_with_ratio)
    one = one[(one.lr == 0.1) & (one.batch_size == 500)]
    ev = E.claim_c7a(one, TH)
    assert ev.verdict == INCONCLUSIVE and "no family" in ev.reason and math.isnan(ev.value)
    assert ev.statistic == (
        "least-squares slope of the mean α̂ of each (η, b) against log2(η/b), per family of runs "
        "equal but for η, b and seed; the family closest to a rise"
    )
    assert ev.threshold == "< 0 for every family" and ev.n_runs == 3  # the cell's three seeds
    assert ev.reason == "too few runs (no family with two or more η/b)"
    assert math.isnan(ev.ci_low) and math.isnan(ev.ci_high)
    assert ev.detail.startswith("a family is runs equal in every axis but η, b and the seed; ")


def test_c7a_is_judged_in_every_family_and_too_few_runs_is_inconclusive():
    rising = measurements(lambda lr, b: 3.2 - falls_with_ratio(lr, b), width=16)
    both = pd.concat([measurements(falls_with_ratio), rising])
    ev = E.claim_c7a(both, TH)
    assert ev.verdict == NOT_SUPPORTED and "w16_d3" in ev.detail and "w64_d3" in ev.detail
    assert "27 runs); mnist/fcn/w64_d3/cross_entropy: -0.100 [" in ev.detail  # one per family
    assert "α̂ per doubling of η/b" in ev.detail
    few = measurements(falls_with_ratio)
    few = few[(few.seed == 0) & (few.batch_size == 500) & (few.lr < 0.2)]
    assert E.claim_c7a(few, TH).reason == "too few runs (2 < min_runs 3)"


def cell_runs(cells: dict[tuple[float, int], list[float]], se: float) -> pd.DataFrame:
    """Runs with α̂ ``values`` per (η, b) cell (one run per value), each with standard error
    ``se``."""
    rows = [
        {**point(lr, b, seed), "alpha": a, "se": se, "last": True}
        for (lr, b), values in cells.items()
        for seed, a in enumerate(values)
    ]
    return E.with_ratio(pd.DataFrame(rows))


def test_cell_slope_and_its_standard_error_by_hand():
    # two cells one doubling of η/b apart (u = 0, 1: Σ(u - ū)² = 0.5), two seeds each (seed
    # variance 0.02): v = 0.02 · mean(1/n) = 0.01, se = √(0.01 / 0.5)
    two = {(0.1, 500): [1.0, 1.2], (0.2, 500): [1.5, 1.7]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two cells have no residual variance to take
        slope, se = E.cell_slope(cell_runs(two, se=0.01), "alpha")
    assert slope == pytest.approx(0.5) and se == pytest.approx(math.sqrt(0.02))
    # the runs' own standard errors when they exceed the seeds' spread: v = 0.25 / 2
    assert E.cell_slope(cell_runs(two, se=0.5), "alpha")[1] == pytest.approx(0.5)
    # three cells, one seed each: the residual variance 0.0067 (1 degree of freedom) decides
    three = {(0.1, 500): [1.0], (0.2, 500): [1.3], (0.4, 500): [1.4]}
    slope, se = E.cell_slope(cell_runs(three, se=0.001), "alpha")
    assert slope == pytest.approx(0.2) and se == pytest.approx(math.sqrt(0.02 / 3 / 2))
    # four cells: the residual variance has 2 degrees of freedom
    four = {(0.1, 500): [1.0], (0.2, 500): [1.3], (0.4, 500): [1.4], (0.8, 500): [1.5]}
    slope, se = E.cell_slope(cell_runs(four, se=0.001), "alpha")
    assert slope == pytest.approx(0.16) and se == pytest.approx(math.sqrt(0.012 / 2 / 5))
    # one η/b: no slope
    same = {(0.1, 500): [1.0, 1.1], (0.05, 250): [1.2, 1.3]}
    assert all(math.isnan(x) for x in E.cell_slope(cell_runs(same, se=0.01), "alpha"))
    # one seed per cell and no standard errors: no error known, and no warning either
    lone = cell_runs({(0.1, 500): [1.0], (0.2, 500): [1.5]}, se=0.01).drop(columns="se")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        slope, se = E.cell_slope(lone, "alpha")
    assert slope == pytest.approx(0.5) and math.isnan(se)


def test_c7b_by_hand():
    """Two batch sizes, two shared ratios: at η/b = 2e-4 the mean α̂ moves +0.15 from b = 250
    to 500, at 4e-4 it moves -0.5; the value is the one furthest from 0. Seeds ± 0.1 (variance
    0.02): each difference ± 2·√(0.02/2 + 0.02/2)."""
    cells = {(0.05, 250): [1.0, 1.2], (0.1, 500): [1.15, 1.35]}
    cells |= {(0.1, 250): [1.0, 1.2], (0.2, 500): [0.5, 0.7]}
    ev = E.claim_c7b(cell_runs(cells, se=0.01), TH)
    assert ev.value == pytest.approx(-0.5) and ev.verdict == NOT_SUPPORTED
    assert ev.ci_high - ev.ci_low == pytest.approx(4 * math.sqrt(0.02))
    assert ev.statistic == (
        "mean α̂ at the largest minus at the smallest batch size with the same η/b (per family "
        "and η/b); the pair furthest from 0"
    )
    assert ev.threshold == "within ±0.1 (claims.c7_same_tolerance)"
    assert ev.detail.startswith(
        "mnist/fcn/w64_d3/cross_entropy η/b = 0.0002: (η 0.05, b 250) → (η 0.1, b 500): +0.150 "
    )
    assert ev.detail.index("η/b = 0.0002") < ev.detail.index("η/b = 0.0004")
    # furthest from 0 by the difference itself, not by an end of its interval: +0.35
    # [+0.07, +0.63] against -0.3 [-0.58, -0.02]
    other = {(0.05, 250): [1.0, 1.2], (0.1, 500): [1.35, 1.55]}
    other |= {(0.1, 250): [1.0, 1.2], (0.2, 500): [0.7, 0.9]}
    assert E.claim_c7b(cell_runs(other, se=0.01), TH).value == pytest.approx(0.35)
    # the runs' own standard errors when they exceed the seeds' spread: ± 2·√(0.25/2 + 0.25/2)
    wide = E.claim_c7b(cell_runs(cells, se=0.5), TH)
    assert wide.ci_high - wide.ci_low == pytest.approx(4 * 0.5)
    # ratios in increasing order even when the cells list the larger one first
    flat = {(0.05, 125): [1.0, 1.0], (0.1, 250): [1.0, 1.0]}
    flat |= {(0.1, 500): [1.0, 1.0], (0.2, 1000): [1.0, 1.0]}
    detail = E.claim_c7b(cell_runs(flat, se=0.01), TH).detail
    assert detail.index("η/b = 0.0002") < detail.index("η/b = 0.0004")
    # one seed per cell: no seed-to-seed spread, and the pair says so
    single = E.claim_c7b(cell_runs({k: v[:1] for k, v in cells.items()}, se=0.01), TH)
    assert single.verdict == INCONCLUSIVE
    assert (
        "(η 0.1, b 250) → (η 0.2, b 500): -0.500 [+nan, +nan] (1 and 1 seeds) (no cell of the "
        "family has two seeds: no seed-to-seed spread)" in single.detail
    )


def test_c7a_interval_touching_zero_does_not_decide():
    """Slope ∓0.5 per doubling with standard error 0.25 exactly (seeds agree, each run ± 0.25):
    at z = 2 the interval ends exactly at 0, which it does not exclude."""
    for sign in (-1, 1):
        runs = cell_runs({(0.1, 500): [1.0, 1.0], (0.2, 500): [1.0 + 0.5 * sign] * 2}, se=0.25)
        ev = E.claim_c7a(runs, TH)
        assert ev.value == 0.5 * sign and (ev.ci_low, ev.ci_high) == tuple(sorted((0.0, sign)))
        assert ev.verdict == INCONCLUSIVE and ev.reason.startswith("too much spread")
    # the family closest to a rise decides, by its slope: -0.05 ± 1 (width 16) beside
    # -0.1 ± 0.01 (width 64), whose lower end is the higher
    steep = cell_runs({(0.1, 500): [1.0, 1.0], (0.2, 500): [0.9, 0.9]}, se=0.005)
    vague = cell_runs({(0.1, 500): [1.0, 1.0], (0.2, 500): [0.95, 0.95]}, se=0.5).assign(width=16)
    assert E.claim_c7a(pd.concat([steep, vague]), TH).value == pytest.approx(-0.05)
    # exactly min_runs runs are enough to judge
    three = cell_runs({(0.1, 500): [1.0], (0.2, 500): [0.9], (0.4, 500): [0.8]}, se=0.01)
    assert TH.min_runs == 3 and E.claim_c7a(three, TH).verdict == SUPPORTED


def test_c7b_supported_when_only_the_ratio_matters():
    ev = E.claim_c7b(measurements(falls_with_ratio, noise=0.01), TH)
    assert ev.verdict == SUPPORTED, ev
    assert ev.value == pytest.approx(0.0, abs=1e-9)
    # η/b = 2e-4 is held by three pairs: the largest and the smallest b are compared
    assert "(η 0.05, b 250) → (η 0.2, b 1000)" in ev.detail
    assert ev.detail.count("η/b =") == 3  # shared: 1e-4, 2e-4 (three pairs) and 4e-4
    lo, hi = falls_with_ratio(0.05, 1000), falls_with_ratio(0.2, 250)  # 5e-5 and 8e-4
    assert f"the cells' mean α̂ span mnist/fcn/w64_d3/cross_entropy {hi:.3f}-{lo:.3f}" in ev.detail
    # a family of one (η, b) compares nothing and is not in the note for scale
    single = measurements(falls_with_ratio, noise=0.01, width=16)
    single = single[(single.lr == 0.1) & (single.batch_size == 500)]
    both = E.claim_c7b(pd.concat([measurements(falls_with_ratio, noise=0.01), single]), TH)
    assert both.detail == ev.detail and "w16_d3" not in both.detail
    assert ev.detail.endswith(" (for scale: see C7a)")
    two = E.claim_c7b(
        pd.concat(
            [measurements(falls_with_ratio, noise=0.01), measurements(falls_with_ratio, width=16)]
        ),
        TH,
    )
    spans = f"w16_d3/cross_entropy {hi:.3f}-{lo:.3f}, mnist/fcn/w64_d3/cross_entropy {hi:.3f}"
    assert spans in two.detail  # the families in label order


def test_c7b_not_supported_when_the_batch_size_matters_at_the_same_ratio():
    ev = E.claim_c7b(
        measurements(lambda lr, b: falls_with_ratio(lr, b) + 0.3 * math.log2(b / 250)), TH
    )
    assert ev.verdict == NOT_SUPPORTED
    assert ev.value == pytest.approx(0.6, abs=1e-9)  # b 250 → 1000 at η/b = 2e-4


def test_c7b_inconclusive_when_the_seeds_spread_too_much_or_no_ratio_is_shared():
    ev = E.claim_c7b(measurements(falls_with_ratio, noise=0.2), TH)
    assert (
        ev.verdict == INCONCLUSIVE
        and ev.reason == "intervals too wide for the tolerance: add seeds"
    )
    m = measurements(falls_with_ratio)
    ev = E.claim_c7b(m[m.batch_size == 500], TH)
    assert ev.verdict == INCONCLUSIVE and "no family with two (η, b) at one η/b" in ev.reason


def test_c7b_interval_uses_the_seed_variance_pooled_over_cells():
    m = measurements(falls_with_ratio, se=0.0, noise=0.03)
    ev = E.claim_c7b(m, TH)
    # each cell's seeds are -0.03, 0, +0.03 around its mean: variance 0.0009, 3 seeds per side
    half = 2.0 * math.sqrt(0.0009 / 3 + 0.0009 / 3)
    assert ev.ci_high - ev.ci_low == pytest.approx(2 * half, rel=1e-9)


def sharpness_table(lam_of, excluded=lambda lr, b, s: "") -> pd.DataFrame:
    """Rows shaped like sharpness.csv; ``excluded(lr, b, seed)`` is C7c's exclusion reason."""
    rows = [
        {
            **point(lr, b, s),
            "top_hessian_eigenvalue": lam_of(lr, b) * (1 + 0.01 * (s - 1)),
            "excluded_sharpness": excluded(lr, b, s),
        }
        for lr in LRS
        for b in BATCHES
        for s in SEEDS
    ]
    return pd.DataFrame(rows)


def test_c7c_every_verdict():
    falls = sharpness_table(lambda lr, b: 40.0 * (lr / b / 2e-4) ** -0.5)
    ev = E.claim_c7c(falls, TH)
    assert ev.verdict == SUPPORTED and ev.value == pytest.approx(-0.5, abs=1e-3)
    rises = sharpness_table(lambda lr, b: 40.0 * (lr / b / 2e-4) ** 0.5)
    assert E.claim_c7c(rises, TH).verdict == NOT_SUPPORTED
    rng = np.random.default_rng(0)
    flat = sharpness_table(lambda lr, b: 40.0 * math.exp(rng.normal(0, 1)))
    assert E.claim_c7c(flat, TH).verdict == INCONCLUSIVE


def test_c7c_leaves_out_the_end_points_c6_does_not_admit_and_says_so():
    lam = lambda lr, b: 40.0 * (lr / b / 2e-4) ** -0.5  # noqa: E731
    out = sharpness_table(lam, lambda lr, b, s: "not a minimum" if lr == 0.2 else "")
    ev = E.claim_c7c(out, TH)
    assert ev.verdict == SUPPORTED and ev.n_runs == 18
    assert "9 end points left out: not a minimum" in ev.detail
    none = sharpness_table(lam, lambda lr, b, s: "did not train")
    ev = E.claim_c7c(none, TH)
    assert ev.verdict == INCONCLUSIVE and "27 end points left out: did not train" in ev.detail


def test_c7c_statistic_detail_and_every_reason_to_leave_an_end_point_out():
    lam = lambda lr, b: 40.0 * (lr / b / 2e-4) ** -0.5  # noqa: E731
    ev = E.claim_c7c(sharpness_table(lam), TH)
    assert ev.statistic == (
        "least-squares slope of the mean log2 λ_max (top Hessian eigenvalue at the end point) "
        "of each (η, b) against log2(η/b), per family; the family closest to a rise"
    )
    assert ev.threshold == "< 0 for every family"
    assert ev.detail == (
        "mnist/fcn/w64_d3/cross_entropy: -0.500 [-0.505, -0.495] log2 λ_max per doubling of "
        "η/b (5 values of η/b, 9 (η, b) cells, 27 runs)"
    )  # nothing left out, nothing said about it
    # small eigenvalues (below 1) count; a zero or negative one has no log and is left out
    small = sharpness_table(lambda lr, b: lam(lr, b) / 100)
    assert E.claim_c7c(small, TH).verdict == SUPPORTED
    cell = (small.lr == 0.2) & (small.batch_size == 250) & (small.seed < 2)
    small.loc[cell, "top_hessian_eigenvalue"] = [0.0, -1.0]
    small.loc[small.batch_size == 1000, "excluded_sharpness"] = "not a minimum"
    ev = E.claim_c7c(small, TH)
    assert ev.verdict == SUPPORTED and ev.n_runs == 16
    assert ev.detail.endswith(
        "; 9 end points left out: not a minimum; 2 end points left out: non-positive top "
        "Hessian eigenvalue"
    )
    # end points of a network with one η/b are not C7c's to leave out
    other = sharpness_table(lam).assign(width=16, excluded_sharpness="not trained")
    other = other[(other.lr == 0.1) & (other.batch_size == 500)]
    assert E.claim_c7c(pd.concat([small, other]), TH).detail == ev.detail
    # no family: the end points considered are still counted
    one = sharpness_table(lam)
    one = one[(one.lr == 0.1) & (one.batch_size == 500)]
    ev = E.claim_c7c(one, TH)
    assert ev.verdict == INCONCLUSIVE and ev.n_runs == 3 and "no family" in ev.reason


def test_eta_over_b_figures_need_two_ratios_of_one_network():
    fig = FIGURES["alpha_vs_eta_over_b"]
    assert missing_runs(fig, [point(0.1, 500, 0), point(0.1, 250, 0)], {}, "g") is None
    why = missing_runs(fig, [point(0.1, 500, 0), point(0.1, 500, 0, 16)], {}, "g")
    assert "figure alpha_vs_eta_over_b needs runs of one network" in why
    assert "grids.g.runs" in why


def summary_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    m = measurements(falls_with_ratio, noise=0.02)
    last = m[m["last"]]
    summary = last[[*AXES, "step", "split"]].assign(
        status="completed",
        alpha_reference=last["alpha"] - 0.1,
        alpha_robust=last["alpha"],
        alpha_per_coordinate_median=last["alpha"] + 0.1,
        pooled_enough=True,
        per_coordinate_enough=True,
        noise="gradient",
    )
    # Adam-style preconditioned rows of the same runs, far off: the figure must not draw them
    shifted = summary.assign(noise="preconditioned", alpha_robust=summary["alpha_robust"] + 5)
    summary = pd.concat([summary, shifted])
    runs = last[list(AXES)].assign(status="completed", diverged_at=np.nan, final_train_accuracy=0.9)
    return summary.reset_index(drop=True), runs.reset_index(drop=True)


def test_alpha_vs_eta_over_b_draws_a_line_per_batch_size_with_the_cell_means(tmp_path):
    summary, runs = summary_table()
    fig = plot_alpha_vs_eta_over_b(summary, runs, tmp_path / "a.pdf", tmp_path / "a.png")
    axes = fig.axes
    assert len(axes) == 3  # three estimators × one family
    for ax, shift in zip(axes, (-0.1, 0.0, 0.1), strict=True):
        bars = [c for c in ax.containers if hasattr(c, "has_yerr")]
        assert len(bars) == 3  # one per batch size
        for b, container in zip(BATCHES, bars, strict=True):
            x, y = (np.asarray(v, float) for v in container.lines[0].get_data())
            expected_x = sorted(E.ratio(lr, b) for lr in LRS)
            np.testing.assert_allclose(x, expected_x)
            expected = [falls_with_ratio(r * b, b) + shift for r in expected_x]
            np.testing.assert_allclose(y, expected, atol=1e-9)
        assert ax.get_xscale() == "log"
    assert axes[-1].get_xlabel() == "η / b"
    assert "27 runs drawn" in " ".join(fig._suptitle.get_text().split())
    plt.close("all")


def test_sharpness_vs_eta_over_b_draws_admitted_means_and_hollow_left_out_points(tmp_path):
    lam = lambda lr, b: 40.0 * (lr / b / 2e-4) ** -0.5  # noqa: E731
    table = sharpness_table(lam, lambda lr, b, s: "not a minimum" if lr == 0.2 else "")
    fig = plot_sharpness_vs_eta_over_b(table, tmp_path / "s.pdf", tmp_path / "s.png")
    (ax,) = [a for a in fig.axes if a.get_ylabel() or a.get_xlabel()]
    bars = [c for c in ax.containers if hasattr(c, "has_yerr")]
    assert len(bars) == 3
    for container in bars:
        assert len(container.lines[0].get_xdata()) == 2  # lr 0.05 and 0.1 admitted
    filled, hollow = ax.collections[-2:]
    assert len(filled.get_offsets()) == 18 and len(hollow.get_offsets()) == 9
    assert ax.get_yscale() == "log"
    assert "hollow: left out (9)" in " ".join(fig._suptitle.get_text().split())
    plt.close("all")


def paired_iterates(alpha_of, status: str = "completed") -> pd.DataFrame:
    """Rows shaped like iterates_vs_noise.csv: a pooled and a layer row per run; the seed-0
    runs' noise saw too few values (``enough`` false), their iterates did not."""
    rows = []
    for lr in LRS:
        for b in BATCHES:
            for seed in SEEDS:
                alpha = alpha_of(lr, b) + 0.01 * (seed - 1)
                for scope, a in (("pooled", alpha), ("net.0.weight", 9.0)):
                    rows.append(
                        {
                            **point(lr, b, seed),
                            "scope": scope,
                            "alpha_iterates": a,
                            "ci_low_iterates": a - 0.0392,  # se 0.02 at the 95% level
                            "ci_high_iterates": a + 0.0392,
                            "k1_down_iterates": 0.03 + 0.01 * seed,  # the K1 spread
                            "k1_up_iterates": 0.05,
                            "status": status,
                            "enough_iterates": True,
                            "enough": seed != 0,
                        }
                    )
    return pd.DataFrame(rows)


def test_iterate_rows_keep_the_pooled_alpha_of_trained_runs_with_its_standard_error():
    rows = E.iterate_rows(paired_iterates(falls_with_ratio), 0.95)
    assert len(rows) == 27 and rows["last"].all()
    # the batch-means interval alone, as for the noise: the K1 spread is carried, not added
    np.testing.assert_allclose(rows["se"], 0.02, rtol=1e-3)
    at_half = E.iterate_rows(paired_iterates(falls_with_ratio), 0.5)["se"]
    np.testing.assert_allclose(at_half, 0.0784 / (2 * 0.6745), rtol=1e-3)
    assert sorted(set(rows["k1_down"].round(9))) == [0.03, 0.04, 0.05]
    assert E.iterates_k1_note(rows) == (
        "the iterates' robust α̂ moves over its block sizes K1 (median −0.040 / +0.050, at most "
        "−0.050 / +0.050 around it, 27 runs; not in its standard error)"
    )
    unknown = paired_iterates(falls_with_ratio).drop(columns=["k1_down_iterates", "k1_up_iterates"])
    rows = E.iterate_rows(unknown, 0.95)
    np.testing.assert_allclose(rows["se"], 0.02, rtol=1e-3)
    assert rows["k1_up"].isna().all() and E.iterates_k1_note(rows) == ""
    assert rows["k1_up"].dtype == rows["k1_down"].dtype == np.float64  # NaN, not None
    # a run counts in the note only when both sides of its spread are known
    half = E.iterate_rows(paired_iterates(falls_with_ratio), 0.95)
    half.loc[half.seed == 2, "k1_down"] = np.nan
    assert "18 runs" in E.iterates_k1_note(half)
    assert E.iterate_rows(paired_iterates(falls_with_ratio, "not_trained"), 0.95).empty
    few = paired_iterates(falls_with_ratio).assign(enough_iterates=lambda d: d.seed != 1)
    assert sorted(set(E.iterate_rows(few, 0.95)["seed"])) == [0, 2]


def test_c7_on_the_iterates_is_its_own_column_and_says_when_it_is_not_measured():
    from test_claims import make_tables, widths

    from sgdtail import claims as C

    summary, estimates, _ = make_tables(widths())
    long = C.evaluate_claims(summary, estimates, TH)
    its = long[long.estimator == C.ITERATES]
    assert list(its.claim) == ["C7a", "C7b"]
    assert (its.verdict == INCONCLUSIVE).all() and (its.reason == "not measured").all()
    assert "iterates.measure: true" in its.detail.iloc[0]
    assert list(its.statistic) == [
        f"as {c} on the gradient noise, with the iterates' pooled robust α̂" for c in ("C7a", "C7b")
    ]
    assert (its.threshold == "as on the gradient noise").all() and (its.n_runs == 0).all()
    # iterates without a known K1 spread: no note, and nothing appended for it
    unknown = paired_iterates(falls_with_ratio).drop(columns=["k1_down_iterates", "k1_up_iterates"])
    plain = dict(E.iterates_claims(unknown, TH, 0.95))
    assert plain["C7a"].detail == E.claim_c7a(E.iterate_rows(unknown, 0.95), TH).detail
    long = C.evaluate_claims(summary, estimates, TH, iterates=paired_iterates(falls_with_ratio))
    its = long[long.estimator == C.ITERATES].set_index("claim")
    assert its.loc["C7a", "verdict"] == SUPPORTED and its.loc["C7b", "verdict"] == SUPPORTED
    assert its.loc["C7a", "value"] == pytest.approx(-0.1, abs=1e-9)
    assert all("moves over its block sizes K1 (median −0.040" in d for d in its["detail"])
    wide = C.wide_table(long).set_index("claim")
    assert wide.loc["C7a", C.ITERATES_LABEL] == SUPPORTED
    assert wide.loc["C1", C.ITERATES_LABEL] == "n/a"
    # the iterates are another quantity: they do not enter "survives every estimator"
    assert wide.loc["C7a", "survives every estimator"] == C.survives(
        long[(long.claim == "C7a") & (long.estimator != C.ITERATES)]
    )


def test_c7a_counts_a_cell_effect_as_noise_not_as_replication():
    """α̂ = a trend of -0.05 per doubling of η/b plus an effect of η·b that the three seeds of
    each cell share (orthogonal to η/b in this design): run by run, 27 points would give
    -0.05 ± 0.04; cell by cell (9 points) the interval holds 0."""

    def alpha(lr, b):
        shared = 0.1 * (math.log2(lr / 0.1) + math.log2(b / 500))
        return falls_with_ratio(lr, b) / 2 + 0.8 + shared

    ev = E.claim_c7a(measurements(alpha, noise=0.01), TH)
    assert ev.value == pytest.approx(-0.05, abs=1e-9)
    assert ev.verdict == INCONCLUSIVE and ev.ci_low < 0 < ev.ci_high, ev
    assert "9 (η, b) cells, 27 runs" in ev.detail


def test_c7b_without_seed_replication_stays_inconclusive_and_counts_the_compared_runs():
    one_seed = measurements(lambda lr, b: falls_with_ratio(lr, b) + 0.3 * math.log2(b / 250))
    one_seed = one_seed[one_seed.seed == 0]
    ev = E.claim_c7b(one_seed, TH)
    assert ev.verdict == INCONCLUSIVE and math.isnan(ev.ci_low), ev
    assert "no seed-to-seed spread" in ev.detail
    ev = E.claim_c7b(measurements(falls_with_ratio, noise=0.01), TH)
    assert ev.n_runs == 18  # three shared ratios, two cells of three seeds each


def test_c7b_judges_a_family_that_only_holds_equal_ratios():
    m = measurements(falls_with_ratio, noise=0.01)
    same = m[[E.ratio(lr, b) == 2e-4 for lr, b in zip(m.lr, m.batch_size, strict=True)]]
    ev = E.claim_c7b(same, TH)
    assert ev.verdict == SUPPORTED and "(η 0.05, b 250) → (η 0.2, b 1000)" in ev.detail
    assert E.claim_c7a(same, TH).verdict == INCONCLUSIVE  # one value of η/b: no slope


def test_c7c_reads_sharpness_csv_after_a_csv_round_trip(tmp_path):
    lam = lambda lr, b: 40.0 * (lr / b / 2e-4) ** -0.5  # noqa: E731
    table = sharpness_table(lam, lambda lr, b, s: "not a minimum" if lr == 0.2 else "")
    table.to_csv(tmp_path / "sharpness.csv", index=False)
    back = pd.read_csv(tmp_path / "sharpness.csv")
    assert back["excluded_sharpness"].isna().sum() == 18  # "" comes back as NaN
    ev = E.claim_c7c(back, TH)
    assert ev.verdict == SUPPORTED and ev.n_runs == 18


def test_c7_end_to_end_through_evaluate_claims_with_every_estimator():
    from test_claims import make_tables, run

    from sgdtail import claims as C

    runs = [
        run(width=64, depth=3, lr=lr, batch_size=b, seed=s)
        for lr in LRS
        for b in BATCHES
        for s in SEEDS
    ]
    summary, estimates, _ = make_tables(
        runs, alpha=lambda r, step: falls_with_ratio(r["lr"], r["batch_size"]) + 0.01 * r["seed"]
    )
    long = C.evaluate_claims(summary, estimates, TH)
    for claim in ("C7a", "C7b"):
        rows = long[(long.claim == claim) & long.estimator.isin(C.ESTIMATOR_CHOICES)]
        assert len(rows) == 4 and (rows.verdict == SUPPORTED).all(), rows[["estimator", "reason"]]
    robust = long[(long.claim == "C7a") & (long.estimator == "robust")].iloc[0]
    assert robust.value == pytest.approx(-0.1, abs=1e-9) and robust.n_runs == 27


def test_results_page_keeps_the_iterates_column_out_of_other_estimators():
    from sgdtail.results import claim_row

    long = pd.DataFrame(
        [
            {"claim": "C7a", "estimator": "robust", "verdict": SUPPORTED, "reason": ""},
            {"claim": "C7a", "estimator": "reference", "verdict": SUPPORTED, "reason": ""},
            {"claim": "C7a", "estimator": "iterates", "verdict": INCONCLUSIVE, "reason": "x"},
        ]
    ).assign(statistic="s", value=-0.1, ci_low=-0.2, ci_high=-0.05)
    row = claim_row("C7a", long)
    assert row["agreement"] == "agrees", row
    long.loc[1, "verdict"] = NOT_SUPPORTED
    assert claim_row("C7a", long)["agreement"] == "agrees; other estimators differ: reference"


def test_sharpness_figure_draws_one_seed_cells_whose_geometric_mean_rounds_below_the_value(
    tmp_path,
):
    """exp(log x) < x by rounding for x = 1.6863431715857928: the bar below the point would be
    negative (matplotlib refuses it) unless clipped; the smoke_sweeps grid has such cells."""
    x = 1.6863431715857928
    assert np.exp(np.log(x)) < x
    table = sharpness_table(lambda lr, b: x)
    table = table[table.seed == 0].assign(top_hessian_eigenvalue=x)
    fig = plot_sharpness_vs_eta_over_b(table, tmp_path / "s.pdf", tmp_path / "s.png")
    (ax,) = [a for a in fig.axes if a.get_xlabel()]
    assert len([c for c in ax.containers if hasattr(c, "has_yerr")]) == 3
    plt.close("all")
