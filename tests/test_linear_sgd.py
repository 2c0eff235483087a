"""SGD on Gaussian linear regression: the theory's tail index and the simulated iterates."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sgdtail.claims import EXTERNAL_KEYS
from sgdtail.estimators import batch_means_interval
from sgdtail.linear_sgd import (
    MAX_TAIL_INDEX,
    LinearSetting,
    _steps,
    claim_c7_linear,
    eta_for_tail_index,
    moment_ratio,
    moment_ratio_two,
    ratio_window,
    relaxation_steps,
    simulate_norms,
    simulation_sweep,
    stationary_estimate,
    theory_curves,
    theory_tail_index,
)


def full_sgd_norms(s: LinearSetting, chains: int, steps: int, seed: int, start: float):
    """‖x − x*‖ after ``steps`` steps of d-dimensional online SGD on least squares,
    x* = 0, started at start·e₁: the recursion itself, no reduction."""
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, s.d))
    x[:, 0] = start
    for _ in range(steps):
        a = s.sigma * rng.standard_normal((chains, s.b, s.d))
        y = s.sigma_y * rng.standard_normal((chains, s.b))  # a_iᵀx* + ε_i with x* = 0
        residual = np.einsum("cbd,cd->cb", a, x) - y
        x = x - (s.eta / s.b) * np.einsum("cbd,cb->cd", a, residual)
    return np.linalg.norm(x, axis=1)


SETTINGS = [
    LinearSetting(0.3, 2, 5),
    LinearSetting(0.05, 1, 50, sigma=1.5),
    LinearSetting(0.6, 4, 5, sigma_y=0.3),
    LinearSetting(0.25, 1, 2),
]


@pytest.mark.parametrize("setting", SETTINGS)
def test_moment_ratio_at_two_equals_its_closed_form(setting):
    assert moment_ratio(2.0, setting) == pytest.approx(moment_ratio_two(setting), rel=1e-10)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("s", [0.7, 1.6, 3.3])
def test_moment_ratio_against_monte_carlo_of_the_matrix_itself(setting, s):
    """E‖M e₁‖^s with M = I − (η/b) Σ a_i a_iᵀ built from sampled Gaussian features."""
    rng = np.random.default_rng(0)
    n = 100_000
    a = setting.sigma * rng.standard_normal((n, setting.b, setting.d))
    m_e1 = -(setting.eta / setting.b) * np.einsum("nbd,nb->nd", a, a[:, :, 0])
    m_e1[:, 0] += 1.0
    v = np.linalg.norm(m_e1, axis=1) ** s
    se = v.std() / math.sqrt(n)
    assert abs(moment_ratio(s, setting) - v.mean()) < 5 * se + 1e-6


@pytest.mark.parametrize("b, d", [(1, 5), (2, 10), (4, 20)])
def test_tail_index_is_two_exactly_where_the_second_moment_ratio_is_one(b, d):
    eta = 2.0 * b / (b + d + 1)  # ρ(2) = 1 − 2η + η²(b + d + 1)/b = 1
    assert moment_ratio_two(LinearSetting(eta, b, d)) == pytest.approx(1.0)
    assert theory_tail_index(LinearSetting(eta, b, d)) == pytest.approx(2.0, abs=1e-4)
    assert theory_tail_index(LinearSetting(0.99 * eta, b, d)) > 2.0
    assert theory_tail_index(LinearSetting(1.01 * eta, b, d)) < 2.0


def test_tail_index_is_a_root_of_the_moment_ratio():
    s = LinearSetting(0.3, 2, 10)
    alpha = theory_tail_index(s)
    assert 1.0 < alpha < 4.0
    assert moment_ratio(alpha, s) == pytest.approx(1.0, abs=1e-8)
    assert moment_ratio(0.9 * alpha, s) < 1.0 < moment_ratio(1.1 * alpha, s)


def test_tail_index_moves_as_the_theory_says():
    """Heavier tails for a larger step, a smaller batch at the same step, a larger dimension;
    η and σ² enter only as ησ²."""
    base = theory_tail_index(LinearSetting(0.3, 2, 10))
    assert theory_tail_index(LinearSetting(0.33, 2, 10)) < base  # larger η
    assert theory_tail_index(LinearSetting(0.3, 3, 10)) > base  # larger b
    assert theory_tail_index(LinearSetting(0.3, 2, 11)) < base  # larger d
    same = theory_tail_index(LinearSetting(0.3 / 2.25, 2, 10, sigma=1.5))
    assert same == pytest.approx(base, rel=1e-6)
    # the same η/b with a larger batch is not the same tail: η grows with it
    assert theory_tail_index(LinearSetting(0.45, 3, 10)) < base


def test_tail_index_nan_without_a_stationary_law_and_inf_for_very_light_tails():
    assert math.isnan(theory_tail_index(LinearSetting(0.5, 1, 10)))
    assert theory_tail_index(LinearSetting(0.001, 4, 5)) == math.inf


def test_bad_settings_are_refused():
    for kwargs in ({"eta": 0.0}, {"b": 0}, {"b": 1.5}, {"d": 1}, {"sigma": -1.0}):
        with pytest.raises(ValueError, match="must be"):
            LinearSetting(**{"eta": 0.1, "b": 2, "d": 5, **kwargs})


@pytest.mark.parametrize(
    "setting",
    [
        LinearSetting(0.3, 2, 5),
        LinearSetting(0.15, 1, 10),
        LinearSetting(0.06, 2, 5, sigma=2.0, sigma_y=0.5),
    ],
)
def test_norm_chain_has_the_law_of_the_full_sgd_norm(setting):
    """The reduced chain against d-dimensional SGD after 20 steps from ‖x_0‖ = 1 (two-sample
    Kolmogorov–Smirnov; a chain with the wrong dimension is rejected at the same size). The
    third setting has features of scale σ = 2, where σ, σ² and σ⁴ differ."""
    full = full_sgd_norms(setting, 4000, 20, seed=0, start=1.0)
    reduced = simulate_norms(setting, 4000, 20, seed=1, start=1.0)
    assert stats.ks_2samp(full, reduced).pvalue > 1e-3
    wrong = dataclasses.replace(setting, d=setting.d + 3)
    assert stats.ks_2samp(full, simulate_norms(wrong, 4000, 20, seed=1, start=1.0)).pvalue < 1e-6


def test_simulated_stationary_tail_matches_the_theory():
    s = LinearSetting(0.3, 2, 10)
    est = stationary_estimate(simulate_norms(s, 20_000, 600, seed=3))
    alpha = theory_tail_index(s)
    assert est.ci_low < alpha < est.ci_high, (est, alpha)
    assert abs(est.alpha - alpha) < 0.2 * alpha


def test_stationary_estimate_on_pareto_samples():
    rng = np.random.default_rng(4)
    x = rng.pareto(2.5, 40_000) + 1.0  # P(X > t) = t^(−2.5)
    est = stationary_estimate(x, groups=8)
    assert (est.k, est.n) == (200, 40_000)
    assert est.alpha == pytest.approx(2.5, rel=0.1)
    assert est.ci_low < 2.5 < est.ci_high
    assert est.ci_high - est.ci_low < 1.0


@pytest.mark.parametrize("b, d", [(1, 5), (4, 10)])
@pytest.mark.parametrize("alpha", [1.0, 2.0, 4.5])
@pytest.mark.parametrize("sigma", [1.2, 0.5])
def test_eta_for_tail_index_inverts_the_theory(b, d, alpha, sigma):
    """At σ = 0.5 the steps are large (η > 1.25 for α = 1): the search for the bracket's
    upper end must grow it geometrically to get there."""
    s = LinearSetting(eta_for_tail_index(alpha, b, d, sigma=sigma), b, d, sigma=sigma)
    assert theory_tail_index(s) == pytest.approx(alpha, rel=1e-4)


def test_tail_index_is_resolved_up_to_its_largest_value():
    """A tail index of 50 is found and one of 70 reported as inf (:data:`MAX_TAIL_INDEX` = 64).
    The bracket's upper end doubles from 0.5 to 64; a search that stopped doubling one step
    early (at 32), tripled the end (stopping at 40.5) or started it at 1.5 (stopping at 48)
    would report 50 as inf."""
    assert MAX_TAIL_INDEX == 64.0
    for alpha, expected in ((50.0, 50.0), (70.0, math.inf)):
        s = LinearSetting(eta_for_tail_index(alpha, 2, 5), 2, 5)
        assert theory_tail_index(s) == pytest.approx(expected, rel=1e-6)


def _table(rows):
    """A simulation table from (d, b, eta/b, alpha_hat, ci_low, ci_high[, theory alpha]) rows:
    the theory's alpha defaults to alpha_hat; a row with alpha_hat None is not simulated."""
    return pd.DataFrame(
        [
            {"d": d, "b": b, "eta_over_b": r, "alpha_hat": a, "ci_low": lo, "ci_high": hi,
             "alpha_theory": theory[0] if theory else a, "simulated": a is not None}
            for d, b, r, a, lo, hi, *theory in rows
        ]
    ).fillna(math.nan)  # fmt: skip


FALLING = [(5, 1, 0.2, 4.0, 3.6, 4.4), (5, 1, 0.3, 2.0, 1.8, 2.2)]


@pytest.mark.parametrize(
    "rows, verdict",
    [
        (FALLING + [(5, 2, 0.2, 3.0, 2.8, 3.2), (5, 2, 0.25, 1.5, 1.4, 1.6)], "supported"),
        (FALLING + [(5, 2, 0.2, 1.5, 1.4, 1.6), (5, 2, 0.25, 3.0, 2.8, 3.2)], "not supported"),
        (FALLING + [(5, 2, 0.2, 2.0, 1.5, 2.5), (5, 2, 0.25, 1.9, 1.4, 2.4)], "inconclusive"),
        (FALLING[:1] + [(5, 2, 0.3, 2.0, 1.8, 2.2)], "inconclusive"),  # no series of two
    ],
)
def test_c7a_every_verdict(rows, verdict):
    (c7a, _) = claim_c7_linear(_table(rows), 0.25)
    assert c7a["verdict"].split(" (")[0] == verdict, c7a
    assert set(c7a) == set(EXTERNAL_KEYS)


def test_c7a_reports_the_series_closest_to_a_rise_and_ignores_unsimulated_rows():
    rows = FALLING + [(5, 2, 0.2, 3.0, 2.8, 3.2), (5, 2, 0.25, 2.5, 2.3, 2.7)]
    table = _table(rows + [(5, 2, 0.3, 9.0, 8.0, 10.0)])
    table.loc[table.index[-1], "simulated"] = False
    (c7a, _) = claim_c7_linear(table, 0.25)
    assert c7a["value"] == pytest.approx(-0.5)
    assert (c7a["ci_low"], c7a["ci_high"]) == pytest.approx((-0.9, -0.1))
    assert "d=5 b=1: -2" in c7a["detail"] and c7a["verdict"] == "supported"


@pytest.mark.parametrize(
    "second, verdict",
    [
        ((5, 4, 0.2, 2.05, 1.95, 2.15), "supported"),  # within ±0.25
        ((5, 4, 0.2, 3.0, 2.9, 3.1), "not supported"),  # the larger batch: lighter here
        ((5, 4, 0.2, 2.0, 1.5, 2.5), "inconclusive"),  # too wide for the tolerance
    ],
)
def test_c7b_every_verdict(second, verdict):
    rows = [(5, 1, 0.2, 2.0, 1.9, 2.1), second, (5, 1, 0.3, 1.0, 0.9, 1.1)]
    (_, c7b) = claim_c7_linear(_table(rows), 0.25)
    assert c7b["verdict"].split(" (")[0] == verdict, c7b
    assert "eta/b=0.2 b=1 vs 4" in c7b["detail"]


def test_c7_claims_give_every_field_of_the_worst_series_and_pair():
    """Two (d, b) series fall (−2 and −0.5: the worst is −0.5), one has a single η/b and is
    left out; at η/b = 0.2 the batch sizes 1 and 2 differ by −1 [−1.6, −0.4], outside ±0.25."""
    rows = FALLING + [(5, 2, 0.2, 3.0, 2.8, 3.2), (5, 2, 0.25, 2.5, 2.3, 2.7)]
    c7a, c7b = claim_c7_linear(_table(rows + [(10, 1, 0.2, 2.0, 1.9, 2.1)]), 0.25)
    assert (c7a["value"], c7a["ci_low"], c7a["ci_high"]) == pytest.approx((-0.5, -0.9, -0.1))
    assert c7a["verdict"] == "supported" and c7a["threshold"] == "< 0 for every series"
    assert c7a["detail"] == (
        "d=5 b=1: -2 [-2.6, -1.4]; d=5 b=2: -0.5 [-0.9, -0.1]; "
        "fewer than two simulated eta/b (left out): d=10 b=1"
    )
    assert c7a["statistic"].startswith("change of Hill's alpha-hat from the smallest to the")
    assert (c7b["value"], c7b["ci_low"], c7b["ci_high"]) == pytest.approx((-1.0, -1.6, -0.4))
    assert c7b["verdict"] == "not supported"
    assert c7b["threshold"] == "within +-0.25 (linear_sgd.c7_same_tolerance)"
    assert c7b["detail"] == "d=5 eta/b=0.2 b=1 vs 2: -1 [-1.6, -0.4] (theory -1)"
    assert c7b["statistic"].startswith("alpha-hat at the largest minus at the smallest batch")
    # three batch sizes at one η/b: the largest against the smallest; the theory's own change
    table = _table(
        [(5, 1, 0.2, 2.0, 1.9, 2.1), (5, 2, 0.2, 9.0, 8.0, 10.0), (5, 4, 0.2, 2.0, 1.5, 2.5)]
    )
    table.loc[2, "alpha_theory"] = 1.7
    c7a, c7b = claim_c7_linear(table, 0.25)
    assert c7b["verdict"] == (
        "inconclusive (intervals too wide for the tolerance: raise linear_sgd.chains)"
    )
    assert c7b["detail"] == "d=5 eta/b=0.2 b=1 vs 4: +0 [-0.6, +0.6] (theory -0.3)"
    assert c7a["verdict"] == (
        "inconclusive (too few simulated settings: widen linear_sgd.alpha_range or raise "
        "linear_sgd.ratios)"
    )
    assert c7a["detail"] == "no (d, b) series with two simulated eta/b" and c7a["value"] is None


def test_c7b_without_two_batch_sizes_at_one_ratio_is_inconclusive():
    (_, c7b) = claim_c7_linear(_table(FALLING), 0.25)
    assert c7b["verdict"].startswith("inconclusive (too few simulated settings: widen")
    assert c7b["value"] is None


def test_experiment_on_a_small_config_supports_c7a_and_refutes_c7b():
    """The theory's direction, measured: α̂ falls along η/b for each batch size, and at the
    same η/b the larger batch (and step) has the heavier tail, by more than 0.25."""
    cfg = {"dimensions": [5], "batch_sizes": [1, 2], "ratios": 4, "alpha_range": [1.5, 4.5],
           "sigma": 1.0, "sigma_y": 1.0, "chains": 20000, "steps": 400, "relaxations": 0,
           "groups": 10, "level": 0.95, "seed": 0, "curve_points": 5}  # fmt: skip
    table = simulation_sweep(cfg)
    assert table.simulated.sum() >= 5
    c7a, c7b = claim_c7_linear(table, 0.25)
    assert c7a["verdict"] == "supported", c7a
    assert c7b["verdict"] == "not supported", c7b
    assert c7b["value"] < -0.25
    curves = theory_curves(cfg)
    assert len(curves) == 5 * 2 and set(curves.columns) == {"d", "b", "eta_over_b", "alpha"}


def test_relaxation_time_is_one_over_the_log_contraction():
    s = LinearSetting(0.3, 2, 10)
    rng = np.random.default_rng(8)
    n = 400_000
    x, q = rng.chisquare(2, n), rng.chisquare(9, n)
    rate = 0.5 * np.mean(np.log((1 - s.c * x) ** 2 + s.c**2 * x * q))
    assert relaxation_steps(s) == pytest.approx(-1 / rate, rel=0.02)
    assert relaxation_steps(LinearSetting(0.5, 1, 10)) == math.inf  # no stationary law
    # the steps a setting runs: the configured floor or enough relaxation times
    cfg = {"steps": 100, "relaxations": 20}
    assert _steps(s, cfg) == max(100, math.ceil(20 * relaxation_steps(s)))
    assert _steps(LinearSetting(0.5, 1, 10), cfg) == 100


def test_a_slowly_settling_setting_reaches_the_theory_with_its_relaxation_times():
    """d = 10, b = 1 at theory α = 1.5 (relaxation time ~121 steps): 20 relaxation times."""
    eta = eta_for_tail_index(1.5, 1, 10)
    s = LinearSetting(eta, 1, 10)
    est = stationary_estimate(simulate_norms(s, 10_000, _steps(s, {"steps": 1, "relaxations": 20})))
    assert est.ci_low < 1.5 < est.ci_high, est


def test_stationary_interval_is_centred_on_the_estimate_from_every_chain():
    rng = np.random.default_rng(9)
    for _ in range(20):
        est = stationary_estimate(np.abs(rng.standard_t(2.0, 5_000)), groups=10)
        assert est.ci_low <= est.alpha <= est.ci_high, est
        assert 1 / est.ci_low - 1 / est.alpha == pytest.approx(1 / est.alpha - 1 / est.ci_high)


def test_ratio_window_ends_are_the_theory_at_the_range_ends():
    """The window is as wide as any batch size needs: at its low end the theory's α is the
    range's upper end for one batch size and above it for the other, at its high end the
    lower end for one and below it for the other (at σ = 2, the features' scale given)."""
    low, high = ratio_window([1, 2], 3, 2.0, (1.5, 4.5))

    def alphas(ratio: float) -> list[float]:
        return [theory_tail_index(LinearSetting(ratio * b, b, 3, 2.0)) for b in (1, 2)]

    assert min(alphas(low)) == pytest.approx(4.5, rel=1e-6) and max(alphas(low)) > 4.6
    assert max(alphas(high)) == pytest.approx(1.5, rel=1e-6) and min(alphas(high)) < 1.4


def test_simulation_sweep_rows_are_their_settings_simulated(caplog):
    """Each row: the setting at η/b on the window's log-spaced points, its theory α, whether
    that is in the range, and for those that are, Hill's α̂ of its own chains (seed + row)."""
    cfg = {"dimensions": [3], "batch_sizes": [1, 2], "ratios": 3, "alpha_range": [1.5, 4.5],
           "sigma": 2.0, "sigma_y": 0.5, "chains": 400, "steps": 30, "relaxations": 0,
           "groups": 4, "level": 0.8, "seed": 5}  # fmt: skip
    with caplog.at_level("INFO", logger="sgdtail.linear_sgd"):
        table = simulation_sweep(cfg)
    assert list(table.columns) == [
        "d", "b", "eta", "eta_over_b", "alpha_theory", "simulated", "alpha_hat", "ci_low",
        "ci_high", "hill_k", "chains", "steps",
    ]  # fmt: skip
    low, high = ratio_window([1, 2], 3, 2.0, (1.5, 4.5))
    ratios = np.geomspace(low, high, 3)
    assert len(table) == 6 and table.simulated.any() and not table.simulated.all()
    for i, row in enumerate(table.itertuples()):
        ratio, b = ratios[i // 2], (1, 2)[i % 2]
        s = LinearSetting(ratio * b, b, 3, 2.0, 0.5)
        alpha = theory_tail_index(s)
        assert (row.d, row.b, row.eta, row.eta_over_b) == (3, b, ratio * b, ratio)
        assert (row.alpha_theory, row.chains, row.steps) == (alpha, 400, 30)
        assert row.simulated == (1.5 * (1 - 1e-6) <= alpha <= 4.5 * (1 + 1e-6))
        if row.simulated:
            est = stationary_estimate(simulate_norms(s, 400, 30, 5 + i), 4, 0.8)
            assert (row.alpha_hat, row.ci_low, row.ci_high, row.hill_k) == (
                est.alpha, est.ci_low, est.ci_high, est.k
            )  # fmt: skip
        else:
            assert np.isnan([row.alpha_hat, row.ci_low, row.ci_high]).all() and row.hill_k == 0
    first = table.iloc[0]
    assert caplog.messages[0] == (
        f"progress: setting 1/6 (d 3, b 1, eta/b {ratios[0]:.4g}): theory alpha "
        f"{first.alpha_theory:.3g}, simulated alpha-hat {first.alpha_hat:.3g}"
    )


def test_theory_curves_cover_the_widened_window():
    """The window widened by 10 % each side, on log-spaced η/b, for every batch size."""
    cfg = {"dimensions": [3], "batch_sizes": [1, 2], "alpha_range": [1.5, 4.5], "sigma": 2.0,
           "curve_points": 4}  # fmt: skip
    curves = theory_curves(cfg)
    low, high = ratio_window([1, 2], 3, 2.0, (1.5, 4.5))
    ratios = np.geomspace(low / 1.1, high * 1.1, 4)
    assert list(curves.columns) == ["d", "b", "eta_over_b", "alpha"] and len(curves) == 8
    for i, row in enumerate(curves.itertuples()):
        ratio, b = ratios[i // 2], (1, 2)[i % 2]
        assert (row.d, row.b, row.eta_over_b) == (3, b, ratio)
        assert row.alpha == theory_tail_index(LinearSetting(ratio * b, b, 3, 2.0))


def test_c7a_linear_by_hand():
    """Per (d, b) series: α̂ at its largest simulated η/b minus at its smallest, with the
    interval from the two intervals; the series with the largest change decides the value;
    series with one simulated η/b are left out and named."""
    falls = [(2, 2, 0.1, 3.0, 2.875, 3.125, 3.2), (2, 2, 0.3, 2.5, 2.375, 2.625, 2.6)]
    wide = [(2, 4, 0.1, 3.0, 2.5, 3.5, 3.0), (2, 4, 0.2, 2.75, 2.375, 3.125, 2.7)]
    alone = [(2, 1, 0.1, 3.0, 2.9, 3.1, 3.1), (2, 1, 0.2, None, None, None, 1.0)]
    claims = claim_c7_linear(_table([*alone, *falls, *wide, (2, 8, 0.1, 2.0, 1.9, 2.1, 2.0)]), 0.1)
    claim = claims[0]
    assert claim == {
        "claim": "C7a (linear regression)",
        "statistic": "change of Hill's alpha-hat from the smallest to the largest simulated "
        "eta/b, per (dimension, batch size) series; the series closest to a rise",
        "value": -0.25,  # the wide series: -0.25 [-1.125, +0.625], not the falling one's -0.5
        "ci_low": -1.125,
        "ci_high": 0.625,
        "threshold": "< 0 for every series",
        "verdict": "inconclusive (intervals overlap 0: raise linear_sgd.chains)",
        "detail": "d=2 b=2: -0.5 [-0.75, -0.25]; d=2 b=4: -0.25 [-1.12, +0.625]; fewer than two "
        "simulated eta/b (left out): d=2 b=1, d=2 b=8",
    }
    assert claim_c7_linear(_table(falls), 0.1)[0]["verdict"] == "supported"
    # equal changes: the first series in (d, b) order gives the interval
    tie = [(2, 8, 0.1, 3.0, 2.9375, 3.0625, 3.0), (2, 8, 0.2, 2.5, 2.4375, 2.5625, 2.5)]
    tied = claim_c7_linear(_table([*falls, *tie]), 0.1)[0]
    assert (tied["value"], tied["ci_low"], tied["ci_high"]) == (-0.5, -0.75, -0.25)
    # an interval ending exactly at 0 decides nothing; one starting above 0 is a rise
    at_zero = [(3, 1, 0.1, 3.0, 2.75, 3.25, 3.0), (3, 1, 0.2, 2.5, 2.25, 2.75, 2.5)]
    assert claim_c7_linear(_table(at_zero), 0.1)[0]["verdict"].startswith("inconclusive")
    from_zero = [(3, 2, 0.1, 2.5, 2.25, 2.75, 2.5), (3, 2, 0.2, 3.0, 2.75, 3.25, 3.0)]
    assert claim_c7_linear(_table(from_zero), 0.1)[0]["verdict"].startswith("inconclusive")
    rises = [(3, 2, 0.1, 2.5, 2.375, 2.625, 2.5), (3, 2, 0.2, 3.25, 3.125, 3.375, 3.0)]
    assert claim_c7_linear(_table(rises), 0.1)[0]["verdict"] == "not supported"


def test_c7b_linear_by_hand():
    """Per (d, η/b) with two simulated batch sizes: α̂ at the largest b minus at the smallest,
    within ±tolerance; the pair furthest from 0 decides the value."""
    apart = [(2, 1, 0.1, 3.0, 2.875, 3.125, 3.0), (2, 2, 0.1, 2.5, 2.375, 2.625, 2.75)]
    wide = [(2, 1, 0.2, 2.5, 1.75, 3.25, 2.5), (2, 2, 0.2, 2.75, 2.25, 3.25, 2.25)]
    claim = claim_c7_linear(_table([*apart, *wide, (2, 4, 0.3, 2.0, 1.9, 2.1, 2.0)]), 0.1)[1]
    assert claim == {
        "claim": "C7b (linear regression)",
        "statistic": "alpha-hat at the largest minus at the smallest batch size with the same "
        "eta/b, per (dimension, eta/b); the pair furthest from 0",
        "value": -0.5,  # not +0.25, and not the pair with the lower interval end furthest out
        "ci_low": -0.75,
        "ci_high": -0.25,
        "threshold": "within +-0.1 (linear_sgd.c7_same_tolerance)",
        "verdict": "not supported",
        "detail": "d=2 eta/b=0.1 b=1 vs 2: -0.5 [-0.75, -0.25] (theory -0.25); d=2 eta/b=0.2 "
        "b=1 vs 2: +0.25 [-1, +1.5] (theory -0.25)",
    }
    none = claim_c7_linear(_table([(2, 4, 0.3, 2.0, 1.9, 2.1, 2.0)]), 0.25)[1]
    assert none == {
        "claim": "C7b (linear regression)",
        "statistic": claim["statistic"],
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "threshold": "within +-0.25 (linear_sgd.c7_same_tolerance)",
        "verdict": "inconclusive (too few simulated settings: widen linear_sgd.alpha_range or "
        "raise linear_sgd.ratios)",
        "detail": "no eta/b with two simulated batch sizes",
    }
    none_a = claim_c7_linear(_table([(2, 4, 0.3, 2.0, 1.9, 2.1, 2.0)]), 0.25)[0]
    assert (none_a["claim"], none_a["value"], none_a["threshold"]) == (
        "C7a (linear regression)", None, "< 0 for every series"
    )  # fmt: skip
    assert none_a["verdict"] == none["verdict"] and none_a["statistic"].startswith("change of")
    assert none_a["detail"] == "no (d, b) series with two simulated eta/b"


def test_setting_limits_and_the_defaults_of_the_simulation():
    LinearSetting(0.1, 1, 2)  # the smallest dimension
    for bad in ({"sigma": 0.0}, {"sigma_y": 0.0}):
        with pytest.raises(ValueError, match="must be positive"):
            LinearSetting(0.1, 1, 3, **bad)
    s = LinearSetting(0.2, 2, 3)
    np.testing.assert_array_equal(simulate_norms(s, 50, 10), simulate_norms(s, 50, 10, 0, 0.0))
    norms = simulate_norms(s, 2000, 50, 3)
    assert stationary_estimate(norms) == stationary_estimate(norms, 10, 0.95)
    at_80, at_95 = stationary_estimate(norms, 10, 0.8), stationary_estimate(norms)
    assert at_80.ci_high - at_80.ci_low < at_95.ci_high - at_95.ci_low


def _hill_by_hand(x: np.ndarray, k: int) -> float:
    """1 / mean of log(x_(i) / x_(k+1)) over the k largest x_(1) ≥ ... ≥ x_(k)."""
    t = np.sort(x)[::-1]
    return 1.0 / np.mean(np.log(t[:k] / t[k]))


def test_stationary_interval_by_hand_on_a_small_sample():
    """n = 105 norms in 10 groups of ⌊105/10⌋ = 10 (the last 5 in none): k = 10 for the
    estimate, and round(10·10/105) = 1 raised to the floor of 2 order statistics per group."""
    x = np.random.default_rng(12).pareto(1.5, 105) + 1.0
    est = stationary_estimate(x, groups=10, level=0.9)
    alpha = _hill_by_hand(x, 10)
    inv = np.array([1.0 / _hill_by_hand(x[10 * g : 10 * g + 10], 2) for g in range(10)])
    low, high = batch_means_interval(inv - inv.mean() + 1.0 / alpha, 0.9)
    assert (est.k, est.n) == (10, 105)
    assert est.alpha == pytest.approx(alpha, rel=1e-12)
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), rel=1e-12)
