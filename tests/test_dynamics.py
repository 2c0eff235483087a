"""Tests of sgdtail.dynamics: stable noise, exit-time simulation and estimation, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from sgdtail import dynamics as D

# ----------------------------------------------------------------------------- noise


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.2, 1.5, 1.8, 2.0])
def test_sas_increments_match_scipy_quantiles(alpha):
    rng = np.random.default_rng(1)
    s = D.sas_increments(alpha, 100_000, rng)
    probs = np.array([0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    q = stats.levy_stable(alpha, 0.0).ppf(probs)
    ecdf = (s[:, None] <= q[None, :]).mean(axis=0)
    # binomial s.d. of an ECDF value is <= 0.0016 here: allow 5 s.d.
    np.testing.assert_allclose(ecdf, probs, atol=0.008)


def test_sas_alpha_two_is_sqrt2_normal():
    s = D.sas_increments(2.0, 200_000, np.random.default_rng(2))
    assert abs(s.var() - 2.0) < 0.03


@pytest.mark.parametrize("alpha", [1.2, 1.5, 2.0])
def test_stable_increments_scale_as_h_to_one_over_alpha(alpha):
    """Sum of n increments of step h equals in law one increment of step n*h."""
    rng = np.random.default_rng(3)
    h, n, m = 0.01, 16, 40_000
    summed = h ** (1 / alpha) * D.sas_increments(alpha, (m, n), rng).sum(axis=1)
    single = (n * h) ** (1 / alpha) * D.sas_increments(alpha, m, rng)
    probs = [0.05, 0.25, 0.75, 0.95]
    qs, q1 = np.quantile(summed, probs), np.quantile(single, probs)
    np.testing.assert_allclose(qs, q1, rtol=0.05)
    assert stats.ks_2samp(summed, single).pvalue > 1e-3
    # and the wrong exponent (1/2) is rejected for alpha < 2
    if alpha < 2:
        wrong = math.sqrt(n * h) * D.sas_increments(alpha, m, rng)
        assert stats.ks_2samp(summed, wrong).pvalue < 1e-6


def test_sas_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        D.sas_increments(2.5, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="alpha"):
        D.sas_increments(0.0, 10, np.random.default_rng(0))


# ----------------------------------------------------------------------------- potential


def test_potential_shape():
    h, w = 3.0, 0.7
    assert D.potential(-w, h, w) == pytest.approx(0.0)
    assert D.potential(w, h, w) == pytest.approx(0.0)
    assert D.potential(0.0, h, w) == pytest.approx(h)
    x = np.linspace(-2, 2, 41) + 1e-3
    num = (D.potential(x + 1e-6, h, w) - D.potential(x - 1e-6, h, w)) / 2e-6
    np.testing.assert_allclose(D.potential_gradient(x, h, w), num, rtol=1e-5, atol=1e-6)


def test_drift_flow_is_exact_and_stable():
    h, w, t = 2.0, 0.8, 0.05
    x0 = np.array([-3.0, -1.0, -0.3, -1e-3, 0.4, 2.5])
    dec = np.exp(-8 * h * t / w**2)
    got = D._drift_flow(x0, dec, dec, w, w)
    for xi, gi in zip(x0, got, strict=True):
        sol = integrate.solve_ivp(lambda _t, x: -D.potential_gradient(x, h, w), (0, t), [xi],
                                  rtol=1e-10, atol=1e-12)
        assert gi == pytest.approx(sol.y[0, -1], rel=1e-6)
    far = D._drift_flow(np.array([-1e6, -1e300]), dec, dec, w, w)
    assert np.all(np.isfinite(far)) and np.all(far < 0)
    assert np.all(far > -w / math.sqrt(1 - dec) * 1.0001)


# ----------------------------------------------------------------------------- exit times


def test_brownian_exit_time_matches_exact_mfpt():
    """alpha = 2: the simulated mean exit time agrees with the exact MFPT integral.

    Discrete monitoring delays exits like a barrier moved right by
    0.5826*eps*sqrt(2*dt) (Broadie-Glasserman-Kou), so the reference is the exact
    MFPT to that shifted barrier.
    """
    h, w, eps, dt = 2.0, 1.0, 1.0, 1e-3
    shift = D.BGK_BETA * eps * math.sqrt(2 * dt)
    ref = D.brownian_mean_exit_time(h, w, eps, barrier=shift)
    for scheme in ("split", "euler"):
        t, c = D.simulate_exit_times(2.0, h, w, eps, dt, 4000, 200.0,
                                     np.random.default_rng(5), scheme=scheme)
        est = D.mean_exit_time(t, c, 200.0)
        assert est["n_censored"] == 0
        assert est["ci_low"] < ref < est["ci_high"], (scheme, est, ref)
    # the shift is a small correction: the unshifted exact value is within 6 %
    assert ref / D.brownian_mean_exit_time(h, w, eps) == pytest.approx(1.0, abs=0.06)


def test_exact_mfpt_approaches_kramers_for_high_barrier():
    exact = D.brownian_mean_exit_time(10.0, 1.0, 1.0)
    assert exact / D.kramers_mean_exit_time(10.0, 1.0, 1.0) == pytest.approx(1.0, abs=0.08)
    # exact scaling tau = (W^2/H) g(H/eps^2): W^2 at fixed H and eps
    assert D.brownian_mean_exit_time(3.0, 2.0, 1.0) == pytest.approx(
        4 * D.brownian_mean_exit_time(3.0, 1.0, 1.0), rel=1e-6)


def test_levy_exit_time_near_jump_asymptotic_for_small_noise():
    """alpha < 2 with small noise: exit by one jump, rate from the Levy measure."""
    alpha, h, w, eps = 1.2, 8.0, 1.0, 0.6
    t, c = D.simulate_exit_times(alpha, h, w, eps, D.relaxation_time(h, w) * 0.05, 2000, 1e3,
                                 np.random.default_rng(6))
    est = D.mean_exit_time(t, c, 1e3)
    asym = D.levy_mean_exit_time_asymptotic(alpha, w, eps)
    assert 0.7 * asym < est["mean"] < 1.15 * asym


def test_exit_is_counted_for_huge_jumps_and_censoring():
    # tiny noise: nobody leaves; censored particles get the grid horizon
    t, c = D.simulate_exit_times(1.5, 5.0, 1.0, 1e-3, 0.01, 50, 1.0, np.random.default_rng(0))
    assert c.all() and np.allclose(t, 1.0)
    # huge noise: everybody leaves within the first steps, no NaN/inf anywhere
    t, c = D.simulate_exit_times(1.1, 1.0, 1.0, 1e3, 0.01, 500, 10.0, np.random.default_rng(0))
    assert not c.any() and np.all(np.isfinite(t)) and t.max() < 1.0


def test_euler_refuses_unstable_step():
    with pytest.raises(ValueError, match="unstable"):
        D.simulate_exit_times(2.0, 4.0, 1.0, 1.0, 0.1, 10, 1.0, np.random.default_rng(0),
                              scheme="euler")


def test_mean_exit_time_handles_censoring():
    rng = np.random.default_rng(7)
    mean, horizon = 5.0, 6.0
    covered = 0
    n_rep = 300
    for _ in range(n_rep):
        t = rng.exponential(mean, 500)
        cens = t > horizon
        t = np.minimum(t, horizon)
        est = D.mean_exit_time(t, cens, horizon)
        covered += est["ci_low"] < mean < est["ci_high"]
    assert 0.2 < cens.mean() < 0.4  # about 30 % censored
    assert 0.90 <= covered / n_rep <= 0.99
    # dropping the censored particles would be badly biased
    assert t[~cens].mean() < 0.7 * mean


def test_mean_exit_time_all_censored_gives_lower_bound():
    est = D.mean_exit_time(np.full(100, 10.0), np.ones(100, bool), 10.0)
    assert math.isnan(est["mean"]) and math.isinf(est["ci_high"])
    assert est["ci_low"] == pytest.approx(1000.0 / -math.log(0.05))
    assert "lower bound" in est["estimator"]


def test_mean_exit_time_errors():
    with pytest.raises(ValueError, match="equal length"):
        D.mean_exit_time(np.ones(3), np.zeros(2, bool), 1.0)
    with pytest.raises(ValueError, match="exceed the horizon"):
        D.mean_exit_time(np.array([1.0, 5.0]), np.zeros(2, bool), 2.0)


# ----------------------------------------------------------------------------- sweep + slopes


def test_small_sweep_shows_the_physics():
    df = D.exit_time_sweep([1.2, 2.0], [2.0, 3.0, 4.0], [0.5, 1.0, 2.0], height_fixed=3.0,
                           n_particles=300, dt_rel=0.05, seed=1)
    for col in ["alpha", "height", "width", "eps", "mean", "ci_low", "ci_high", "n_particles",
                "n_censored", "estimator", "sweep"]:
        assert col in df.columns
    assert set(df["sweep"]) == {"height", "width"} and len(df) == 12
    assert (df["ci_low"] < df["mean"]).all() and (df["mean"] < df["ci_high"]).all()
    s = D.fit_exit_slopes(df).set_index("alpha")
    assert s.loc[2.0, "height_slope"] > 0.4
    assert abs(s.loc[1.2, "height_slope"]) < 0.3 * s.loc[2.0, "height_slope"]
    assert s.loc[2.0, "width_exponent"] == pytest.approx(2.0, abs=0.3)
    assert s.loc[1.2, "width_exponent"] == pytest.approx(1.2, abs=0.3)
    assert s.loc[2.0, "height_slope_theory"] == pytest.approx(0.67, abs=0.05)


def test_sweep_is_reproducible():
    kw = dict(alphas=[1.5], heights=[2.0, 3.0], widths=[1.0, 2.0], n_particles=50,
              dt_rel=0.1, seed=3)
    a, b = D.exit_time_sweep(**kw), D.exit_time_sweep(**kw)
    pd.testing.assert_frame_equal(a, b)


def test_wls_line_recovers_slope():
    x = np.arange(6.0)
    fit = D._wls_line(x, 1 + 2 * x, np.full(6, 0.1), 0.95)
    assert fit["slope"] == pytest.approx(2.0)
    assert fit["ci_low"] < 2.0 < fit["ci_high"]


# ----------------------------------------------------------------------------- C4 verdict

C4_T = dict(brownian_min_height_slope=0.3, levy_max_height_slope_ratio=0.25,
            width_exponent_tolerance=0.3)


def _slopes(b=(0.7, 0.6, 0.8), lh=(0.02, -0.03, 0.07), we=(1.15, 1.05, 1.25)):
    rows = [
        dict(alpha=1.2, height_slope=lh[0], height_slope_ci_low=lh[1],
             height_slope_ci_high=lh[2], width_exponent=we[0], width_exponent_ci_low=we[1],
             width_exponent_ci_high=we[2]),
        dict(alpha=2.0, height_slope=b[0], height_slope_ci_low=b[1], height_slope_ci_high=b[2],
             width_exponent=2.0, width_exponent_ci_low=1.9, width_exponent_ci_high=2.1),
    ]
    return pd.DataFrame(rows)


def test_c4_verdict_supported():
    v = D.claim_c4_verdict(_slopes(), C4_T)
    assert v["verdict"] == "supported"
    assert v["value"] == pytest.approx(0.02 / 0.7)


@pytest.mark.parametrize("kw", [
    dict(b=(0.1, 0.05, 0.15)),              # Brownian barely grows with H
    dict(lh=(0.5, 0.45, 0.55)),             # Levy depends on height as much as Brownian
    dict(we=(2.0, 1.9, 2.1)),               # Levy width exponent is 2, not alpha
])
def test_c4_verdict_not_supported(kw):
    assert D.claim_c4_verdict(_slopes(**kw), C4_T)["verdict"] == "not supported"


@pytest.mark.parametrize("kw", [
    dict(b=(0.3, 0.1, 0.5)),                # Brownian CI overlaps its threshold
    dict(lh=(0.15, 0.05, 0.25)),            # ratio CI overlaps 0.25
    dict(we=(1.45, 1.3, 1.6)),              # width CI overlaps alpha + tol
])
def test_c4_verdict_inconclusive(kw):
    assert D.claim_c4_verdict(_slopes(**kw), C4_T)["verdict"] == "inconclusive"


def test_c4_verdict_errors():
    with pytest.raises(KeyError, match="width_exponent_tolerance"):
        D.claim_c4_verdict(_slopes(), {"brownian_min_height_slope": 1,
                                       "levy_max_height_slope_ratio": 1})
    with pytest.raises(ValueError, match="alpha = 2"):
        D.claim_c4_verdict(_slopes().iloc[:1], C4_T)


# ----------------------------------------------------------------------------- paths, C5


def test_sample_paths_shapes_and_free_increments():
    rng = np.random.default_rng(8)
    t, p = D.sample_paths([1.5, 2.0], 1000, 0.01, 0.5, rng, n_paths=3, x0=1.0)
    assert t.shape == (1001,) and p.shape == (2, 3, 1001)
    assert np.all(p[:, :, 0] == 1.0)
    inc = np.diff(p[1], axis=1).ravel()
    assert inc.var() == pytest.approx(2 * 0.25 * 0.01, rel=0.1)
    t, p = D.sample_paths([1.2], 500, 0.01, 0.3, rng, x0=-1.0, height=2.0, width=1.0)
    assert np.all(np.isfinite(p))


def test_jump_ratio_by_window():
    rng = np.random.default_rng(9)
    g = D.jump_ratio_by_window(rng.standard_normal((4, 4096)), [4, 64, 1024])
    assert list(g.columns[:3]) == ["window", "ratio", "ratio_se"]
    assert (g["ratio"] >= 1).all() and g["ratio"].is_monotonic_increasing
    # Gaussian: median max|Z| over 1024 is ~ 3.3; median |Z| ~ 0.674
    assert g["ratio"].iloc[-1] == pytest.approx(3.3 / 0.674, rel=0.1)
    with pytest.raises(ValueError, match="window"):
        D.jump_ratio_by_window(np.ones(10), [20])


def test_c5_on_simulated_paths():
    tab = D.jump_ratio_table([1.2, 2.0], [4, 16, 64, 256, 1024], n_paths=8, n_steps=8192,
                             rng=np.random.default_rng(10))
    v = D.claim_c5_verdict(tab, dict(min_slope_excess=0.3, max_short_window_ratio=2.0))
    assert v["verdict"] == "supported", v
    v = D.claim_c5_verdict(tab, dict(min_slope_excess=3.0, max_short_window_ratio=2.0))
    assert v["verdict"] == "not supported"


def _ratio_table(levy_growth, levy_short=2.2, se=0.01):
    windows = np.array([4, 16, 64, 256])
    rows = []
    for a, r0, g in ((1.5, levy_short, levy_growth), (2.0, 2.0, 0.15)):
        for w in windows:
            r = r0 * (w / 4) ** g
            rows.append(dict(alpha=a, window=w, ratio=r, ratio_se=se * r))
    return pd.DataFrame(rows)


def test_c5_verdict_three_ways():
    t = dict(min_slope_excess=0.2, max_short_window_ratio=1.5)
    assert D.claim_c5_verdict(_ratio_table(0.6), t)["verdict"] == "supported"
    assert D.claim_c5_verdict(_ratio_table(0.2), t)["verdict"] == "not supported"
    assert D.claim_c5_verdict(_ratio_table(0.6, levy_short=5.0), t)["verdict"] == "not supported"
    noisy = _ratio_table(0.35, se=0.5)
    noisy["ratio"] *= np.where(np.arange(len(noisy)) % 2, 1.3, 0.77)
    assert D.claim_c5_verdict(noisy, t)["verdict"] == "inconclusive"


# ----------------------------------------------------------------------------- plots


def test_plots_write_pdf_and_png(tmp_path):
    df = D.exit_time_sweep([1.5, 2.0], [2.0, 3.0], [0.5, 1.0], height_fixed=2.0,
                           n_particles=50, dt_rel=0.1)
    D.plot_exit_time_vs_height(df, tmp_path / "h.pdf", tmp_path / "h.png")
    D.plot_exit_time_vs_width(df, tmp_path / "w")
    t, p = D.sample_paths([1.5, 2.0], 2000, 0.01, 1.0, np.random.default_rng(0))
    D.plot_levy_vs_brownian_paths(t, p, [1.5, 2.0], tmp_path / "p.pdf", tmp_path / "p.png")
    D.plot_stable_densities([1.5], tmp_path / "d.pdf", tmp_path / "d.png")
    info = D.plot_metastability(tmp_path / "m.pdf", tmp_path / "m.png", n_steps=4000,
                                n_candidates=16)
    assert set(info) == {"frac_time_wide", "levy_path", "jump_time"}
    for stem in "hwpdm":
        for ext in ("pdf", "png"):
            f = tmp_path / f"{stem}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f


def test_sweep_runs_in_two_processes():
    df = D.exit_time_sweep([1.5, 2.0], [2.0, 3.0], [1.0, 2.0], n_particles=40, dt_rel=0.1,
                           n_jobs=2)
    assert len(df) == 8 and df["mean"].notna().all()
