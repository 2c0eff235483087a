"""Tests of sgdtail.estimators: in-memory estimators, the SαS sampler, and the
streaming accumulator (which must equal the in-memory functions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import levy_stable

from sgdtail import estimators as E

ALPHAS = (0.8, 1.2, 1.6, 2.0)


@pytest.fixture(scope="module")
def sas_1e6() -> dict[float, np.ndarray]:
    """10**6 float32 SαS samples per α (fixed seed)."""
    rng = np.random.default_rng(20190124)
    return {a: E.sample_sas(a, 10**6, rng).astype(np.float32) for a in ALPHAS}


# ---------------------------------------------------------------- sampler


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.5, 2.0])
def test_sample_sas_cdf_matches_scipy(alpha: float) -> None:
    """Empirical CDF of 2·10^5 draws vs scipy's levy_stable CDF (β = 0).

    DKW: P(sup |F_n − F| > 0.006) ≤ 2·exp(−2·n·0.006²) ≈ 1e-6.
    """
    n = 200_000
    x = np.sort(E.sample_sas(alpha, n, np.random.default_rng(7)))
    pts = np.array([-20.0, -5.0, -2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.5, 6.0, 30.0])
    emp = np.searchsorted(x, pts, side="right") / n
    ref = levy_stable.cdf(pts, alpha, 0.0)
    assert np.max(np.abs(emp - ref)) < 0.006


def test_sample_sas_scale_and_gaussian_case() -> None:
    rng = np.random.default_rng(3)
    x = E.sample_sas(1.5, 200_000, rng, scale=2.5) / 2.5
    pts = np.array([-4.0, -1.0, 0.5, 2.0])
    emp = np.searchsorted(np.sort(x), pts, side="right") / x.size
    assert np.max(np.abs(emp - levy_stable.cdf(pts, 1.5, 0.0))) < 0.006
    g = E.sample_sas(2.0, 200_000, rng)
    assert g.var() == pytest.approx(2.0, rel=0.02)  # α = 2 is N(0, 2)
    with pytest.raises(ValueError, match="alpha"):
        E.sample_sas(2.5, 10, rng)


# ------------------------------------------------------------- block rules


def test_reference_k1_known_numbers() -> None:
    assert E.reference_k1(10**6) == 1000
    assert E.reference_k1(12) == 3
    assert E.reference_k1(600 * 118016) == 7680  # MNIST FCN 128x3, b = 100
    assert E.reference_k1(600 * 118016 - 1) == 133  # one value fewer: K1 collapses
    assert E.reference_k1(1_000_003) == 1  # prime
    assert E.reference_k1(2 * 1_000_003) == 2
    for k in (1, 2, 97, 360, 9991):
        brute = max(d for d in range(1, math.isqrt(k) + 1) if k % d == 0)
        assert E.reference_k1(k) == brute


def test_block_size_rules() -> None:
    assert E.robust_k1_values(10**6) == [250, 500, 1000, 2000, 4000]
    assert E.robust_k1_values(16, (0.1, 0.25, 1.0)) == [2, 4]
    assert E.default_sweep_k1(10**5) == [10, 30, 100, 300, 1000, 3000, 10000]
    assert E.default_sweep_k1(99) == []
    assert E.default_hill_k(50) == 10
    assert E.default_hill_k(10**6) == 1000


# ------------------------------------------------------- in-memory estimators


@pytest.mark.parametrize("alpha", ALPHAS)
def test_unit_bar_1e6(sas_1e6: dict[float, np.ndarray], alpha: float) -> None:
    x = sas_1e6[alpha]
    assert abs(E.mohammadi_robust(x) - alpha) <= 0.05
    assert abs(E.mohammadi_alpha(x, 1000) - alpha) <= 0.05


def test_mohammadi_alpha_dtypes_and_torch_agree(sas_1e6: dict[float, np.ndarray]) -> None:
    x = sas_1e6[1.2][:100_000]
    a32 = E.mohammadi_alpha(x, 300)
    assert E.mohammadi_alpha(x.astype(np.float64), 300) == pytest.approx(a32, rel=1e-6)
    assert E.mohammadi_alpha(torch.from_numpy(x), 300) == pytest.approx(a32, rel=1e-12)


def test_mohammadi_alpha_matches_formula() -> None:
    x = np.array([1.0, -2.0, 3.0, 0.5, 4.0, -1.0, 7.0])  # k1 = 3 drops the last value
    y = np.array([2.0, 3.5])
    inv = (np.log(np.abs(y)).mean() - np.log(np.abs(x[:6])).mean()) / np.log(3)
    assert E.mohammadi_alpha(x, 3) == pytest.approx(1 / inv, rel=1e-12)


def test_mohammadi_alpha_errors_say_what_to_change() -> None:
    with pytest.raises(ValueError, match="k1 >= 2"):
        E.mohammadi_alpha(np.ones(10), 1)
    with pytest.raises(ValueError, match="k1 <= len"):
        E.mohammadi_alpha(np.ones(10), 11)
    with pytest.raises(ValueError, match="flatten"):
        E.mohammadi_alpha(np.ones((3, 3)), 2)


def test_mohammadi_reference_uses_divisor_rule_and_prime_gives_nan() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10_000).astype(np.float32)
    assert E.mohammadi_reference(x) == pytest.approx(
        E.mohammadi_alpha(x, 100, eps=E.REFERENCE_EPS), rel=1e-12
    )
    assert math.isnan(E.mohammadi_reference(rng.standard_normal(10_007)))  # prime


def test_hill_on_pareto() -> None:
    rng = np.random.default_rng(1)
    alpha = 1.5
    x = rng.pareto(alpha, 10**6) + 1.0  # P(X > t) = t^-1.5, t >= 1
    x *= rng.choice([-1.0, 1.0], x.size)
    assert abs(E.hill_alpha(x, 10_000) - alpha) < 0.05
    assert abs(E.hill_alpha(x, E.default_hill_k(x.size)) - alpha) < 0.15
    with pytest.raises(ValueError, match="lower k"):
        E.hill_alpha(x[:10], 10)
    assert math.isnan(E.hill_alpha(np.r_[np.zeros(20), 1.0, 2.0], 5))


def test_pitfall_exact_zeros() -> None:
    """10% exact zeros: the reference drops to ≈ 1.0; robust without zeros ≈ 2."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(10**6).astype(np.float32)
    x[rng.random(x.size) < 0.10] = 0.0
    assert abs(E.mohammadi_reference(x) - 1.0) < 0.1
    assert abs(E.mohammadi_robust(x[x != 0]) - 2.0) < 0.1
    assert E.mohammadi_robust(x) == 0.0  # zeros kept with eps = 0: log 0 = -inf


def test_pitfall_mixed_scales_lower_alpha() -> None:
    rng = np.random.default_rng(4)
    n = 10**6
    x = rng.standard_normal(n) * np.exp(rng.standard_normal(n))  # log-normal scales, σ = 1
    assert E.mohammadi_robust(x) < 1.8


def test_per_coordinate_alpha_equals_columnwise() -> None:
    rng = np.random.default_rng(5)
    u = E.sample_sas(1.4, (50, 6), rng).astype(np.float32)
    u[10, 2] = 0.0
    got = E.per_coordinate_alpha(u)
    assert got.shape == (6,)
    for m in range(6):
        if m == 2:
            assert math.isnan(got[m])
        else:
            assert got[m] == pytest.approx(E.mohammadi_alpha(u[:, m], 7), rel=1e-9)


def test_block_size_sweep() -> None:
    rng = np.random.default_rng(6)
    x = E.sample_sas(1.3, 20_000, rng)
    df = E.block_size_sweep(x, [10, 100, 50_000])
    assert list(df.columns) == ["k1", "alpha"]
    assert df.alpha[0] == pytest.approx(E.mohammadi_alpha(x, 10))
    assert math.isnan(df.alpha[2])
    s1 = E.block_size_sweep(x, [10, 100], shuffle=True, seed=1)
    s2 = E.block_size_sweep(x, [10, 100], shuffle=True, seed=1)
    assert s1.equals(s2)
    assert not np.allclose(s1.alpha, df.alpha[:2])


def test_batch_means_interval() -> None:
    lo, hi = E.batch_means_interval(np.full(10, 0.5))
    assert (lo, hi) == (2.0, 2.0)
    v = np.array([0.6, 0.7, 0.8, 0.9])
    half = 3.182446305284263 * v.std(ddof=1) / 2.0  # t_{0.975, 3}
    lo, hi = E.batch_means_interval(v, 0.95)
    assert lo == pytest.approx(1 / (0.75 + half))
    assert hi == pytest.approx(1 / (0.75 - half))
    assert E.batch_means_interval([0.1, 0.9])[1] == math.inf
    assert all(math.isnan(b) for b in E.batch_means_interval([0.5]))


# ------------------------------------------------------------------ streaming

P, M = 60, 50
LAYERS = [("fc1", 0, 20), ("fc2", 20, 45), ("fc3", 45, 50)]
KEYS = [
    "estimator",
    "scope",
    "order",
    "k1",
    "alpha",
    "ci_low",
    "ci_high",
    "q25",
    "q75",
    "n_values",
    "zero_fraction",
]


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """A small U with scattered exact zeros, an all-zero stretch, a zero column."""
    rng = np.random.default_rng(11)
    u = E.sample_sas(1.5, (P, M), rng).astype(np.float32)
    u *= np.exp(rng.standard_normal(M)).astype(np.float32)  # coordinates of mixed scales
    u[rng.random((P, M)) < 0.005] = 0.0
    u[10:13, 15:40] = 0.0
    u[20:25, 45:50] = 0.0  # layer fc3 all zero for 5 rows: zero blocks cross rows
    u[:, 47] = 0.0
    return u


def _stream(u: np.ndarray, chunk: int, layers=LAYERS, **kw) -> list[dict]:
    s = E.StreamingTailStats(u.shape[0], u.shape[1], layers, **kw)
    for i in range(0, u.shape[0], chunk):
        s.update(torch.from_numpy(u[i : i + chunk]))
    return s.finalize()


def _pick(rows: list[dict], estimator: str, scope: str = "pooled", order: str = "natural"):
    return [
        r for r in rows if (r["estimator"], r["scope"], r["order"]) == (estimator, scope, order)
    ]


def _values(x: np.ndarray, exclude: bool) -> np.ndarray:
    return x[x != 0] if exclude else x


@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", [(1, 1 << 20), (7, 1 << 20), (P, 1 << 20), (P, 120)])
@pytest.mark.parametrize("level1_values", [1 << 20, 100])
def test_streaming_equals_in_memory(
    monkeypatch, noise: np.ndarray, chunk: int, max_piece: int, exclude_zeros: bool, level1_values
) -> None:
    monkeypatch.setattr(E, "LEVEL1_VALUES", level1_values)  # 100: per-value passes row by row
    monkeypatch.setattr(E, "WIDE_TENS", 7)  # float64 10-sums in chunks of 70 values
    rows = _stream(noise, chunk, exclude_zeros=exclude_zeros, max_piece_values=max_piece)
    assert all(list(r) == KEYS for r in rows)
    assert {r["estimator"] for r in rows} == set(E.ESTIMATORS)
    eps = 0.0 if exclude_zeros else E.REFERENCE_EPS
    rel = 1e-6
    flat = noise.reshape(-1)

    (ref,) = _pick(rows, "mohammadi_reference")
    assert ref["alpha"] == pytest.approx(E.mohammadi_reference(flat), rel=rel)
    assert ref["k1"] == E.reference_k1(P * M)
    assert ref["zero_fraction"] == pytest.approx(np.mean(flat == 0))

    cols = E.per_coordinate_alpha(noise)
    for name, start, stop in [("pooled", 0, M), *LAYERS]:
        x_all = noise[:, start:stop].reshape(-1)
        x = _values(x_all, exclude_zeros)
        k = P * (stop - start)
        (rob,) = _pick(rows, "mohammadi_robust", name)
        assert rob["alpha"] == pytest.approx(E.mohammadi_robust(x, eps=eps, k_nominal=k), rel=rel)
        assert rob["k1"] == max(2, math.isqrt(k))
        assert rob["n_values"] == x.size
        assert rob["zero_fraction"] == pytest.approx(np.mean(x_all == 0))
        (hill,) = _pick(rows, "hill", name)
        assert hill["alpha"] == pytest.approx(E.hill_alpha(x, E.default_hill_k(x.size)), rel=rel)
        (pc,) = _pick(rows, "per_coordinate", name)
        valid = cols[start:stop][np.isfinite(cols[start:stop])]
        q = np.quantile(valid, [0.25, 0.5, 0.75]) if valid.size else [math.nan] * 3
        assert [pc["q25"], pc["alpha"], pc["q75"]] == pytest.approx(list(q), rel=rel, nan_ok=True)
        assert pc["n_values"] == valid.size * 56
        assert pc["k1"] == 7

    x = _values(flat, exclude_zeros)
    sweep = _pick(rows, "block_sweep")
    expected = E.block_size_sweep(x, E.default_sweep_k1(P * M), eps=eps)
    assert [r["k1"] for r in sweep] == expected.k1.tolist() == [10, 30, 100, 300]
    assert [r["alpha"] for r in sweep] == pytest.approx(expected.alpha.tolist(), rel=rel)
    assert len(_pick(rows, "block_sweep", order="shuffled")) == 4


@pytest.mark.parametrize("chunk,max_piece", [(1, 1 << 20), (7, 1 << 20), (P, 120), (P, 1 << 20)])
@pytest.mark.parametrize("level1_values", [1 << 20, 100])
@pytest.mark.parametrize("zeros", [True, False])
def test_streaming_with_center_equals_streaming_the_noise(
    monkeypatch, noise: np.ndarray, chunk: int, max_piece: int, level1_values: int, zeros: bool
) -> None:
    """Feeding gradients g with center ḡ (the noise g - ḡ formed inside, in the
    segment's buffer, exact zeros then removed in place) gives the same rows as
    feeding g - ḡ, and the norms of g - ḡ; g itself is not modified."""
    monkeypatch.setattr(E, "LEVEL1_VALUES", level1_values)
    if not zeros:  # no row with an exact zero: nothing to remove
        noise = np.where(noise == 0, np.float32(0.5), noise)
    rng = np.random.default_rng(21)
    center = rng.standard_normal(M).astype(np.float32)
    g = noise + center  # exact zeros of the noise survive g - center only where exact
    u = g - center
    expected = _stream(u, chunk, max_piece_values=max_piece)
    s = E.StreamingTailStats(P, M, LAYERS, max_piece_values=max_piece)
    g_before = g.copy()
    norms = np.full(P, np.nan)
    for i in range(0, P, chunk):
        s.update(torch.from_numpy(g[i : i + chunk]), center=center, norms=norms[i : i + chunk])
    assert np.array_equal(g, g_before)
    got = s.finalize()
    assert [r["estimator"] for r in got] == [r["estimator"] for r in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-12, nan_ok=True), key
            else:
                assert a[key] == b[key], key
    assert (u == 0).any() == zeros  # rows with exact zeros were fed, or not
    want = torch.linalg.vector_norm(torch.from_numpy(u), dim=1).double().numpy()
    np.testing.assert_allclose(norms, want, rtol=1e-6)


def test_streaming_with_center_input_errors() -> None:
    s = E.StreamingTailStats(4, 3, [("a", 0, 3)])
    with pytest.raises(ValueError, match="center must have 3"):
        s.update(np.ones((1, 3), np.float32), center=np.zeros(2))
    with pytest.raises(ValueError, match="norms must be"):
        s.update(np.ones((2, 3), np.float32), norms=np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.array([[1.0, np.inf, 2.0]], np.float32), center=np.zeros(3))
    assert s.rows_seen == 0
    s.update(np.ones((4, 3), np.float32), center=np.full(3, 0.5))
    assert s.rows_seen == 4


def test_streaming_interval_does_not_depend_on_chunking(noise: np.ndarray) -> None:
    cis = []
    for chunk in (1, 7, P):
        (rob,) = _pick(_stream(noise, chunk, ci_groups=6), "mohammadi_robust")
        cis.append((rob["ci_low"], rob["ci_high"]))
    assert np.all(np.isfinite(cis))
    for ci in cis[1:]:
        assert ci == pytest.approx(cis[0], rel=1e-9)


def _group_inverse_alphas(
    u: np.ndarray, start: int, stop: int, k1: int, groups: int, exclude: bool
) -> np.ndarray:
    """In memory: 1/α̂ per group of consecutive rows at block size k1, a block in the
    group of its last value, a group's mean log|X| over all its values."""
    p, width = u.shape[0], stop - start
    bounds = [(g * p) // groups for g in range(groups + 1)]
    x = u[:, start:stop].reshape(-1)
    row = np.repeat(np.arange(p), width)
    if exclude:
        row, x = row[x != 0], x[x != 0]
    eps = 0.0 if exclude else E.REFERENCE_EPS
    value_group = np.searchsorted(bounds, row, side="right") - 1
    log_x = np.log(np.abs(x) + eps).astype(np.float64)
    nb = x.size // k1
    y = x[: nb * k1].reshape(nb, k1).sum(axis=1, dtype=np.float64)
    block_group = value_group[(np.arange(nb) + 1) * k1 - 1]
    log_y = np.log(np.abs(y) + eps)
    out = np.full(groups, np.nan)
    for g in range(groups):
        if (block_group == g).any():
            gap = log_y[block_group == g].mean() - log_x[value_group == g].mean()
            out[g] = gap / math.log(k1)
    return out


@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", [(1, 1 << 20), (7, 1 << 20), (P, 1 << 20), (P, 120)])
def test_streaming_group_sums_equal_in_memory(
    noise: np.ndarray, chunk: int, max_piece: int, exclude_zeros: bool
) -> None:
    """The interval's per-group 1/α̂, with pieces spanning several groups (one piece of
    all 60 rows), inside one group (2 rows a piece) or collected from small chunks."""
    s = E.StreamingTailStats(
        P, M, LAYERS, ci_groups=6, exclude_zeros=exclude_zeros, max_piece_values=max_piece
    )
    for i in range(0, P, chunk):
        s.update(noise[i : i + chunk])
    for scope, (start, stop) in [(s._pooled, (0, M))] + [
        (sc, (a, b)) for sc, (_, a, b) in zip(s._layers, LAYERS, strict=True)
    ]:
        want = _group_inverse_alphas(noise, start, stop, scope.ci_k1, 6, exclude_zeros)
        got = scope.sums.group_inverse_alphas()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=scope.name)


def test_streaming_on_iid_sas_shuffled_matches_natural_and_ci_covers() -> None:
    rng = np.random.default_rng(12)
    alpha, p, m = 1.5, 200, 500
    u = E.sample_sas(alpha, (p, m), rng).astype(np.float32)
    layers = [("a", 0, 100), ("b", 100, m)]
    rows = _stream(u, 10, layers, sweep_k1=[10, 30, 100, 300, 1000], ci_groups=20)
    nat = {r["k1"]: r["alpha"] for r in _pick(rows, "block_sweep")}
    shu = {r["k1"]: r["alpha"] for r in _pick(rows, "block_sweep", order="shuffled")}
    for k1 in nat:
        assert abs(nat[k1] - alpha) < 0.15
        assert abs(shu[k1] - nat[k1]) < 0.15
    (rob,) = _pick(rows, "mohammadi_robust")
    assert rob["ci_low"] < alpha < rob["ci_high"]
    assert rob["ci_high"] - rob["ci_low"] < 0.5
    (pc,) = _pick(rows, "per_coordinate")
    assert abs(pc["alpha"] - alpha) < 0.15


def test_shuffle_breaks_within_row_correlation() -> None:
    """Each value repeated 10 times: natural K1 = 10 blocks see 10·x (α̂ = 1);
    shuffling within pieces restores ≈ 2 for Gaussian values."""
    rng = np.random.default_rng(13)
    u = np.repeat(rng.standard_normal((40, 100)), 10, axis=1).astype(np.float32)
    s = E.StreamingTailStats(40, 1000, [], sweep_k1=[10])
    for i in range(0, 40, 4):
        s.update(u[i : i + 4])
    out = s.finalize()
    (nat,) = _pick(out, "block_sweep")
    (shu,) = _pick(out, "block_sweep", order="shuffled")
    assert nat["alpha"] == pytest.approx(1.0, abs=1e-4)
    assert abs(shu["alpha"] - 2.0) < 0.15


def test_streaming_state_does_not_grow_with_rows() -> None:
    rng = np.random.default_rng(14)
    u = rng.standard_normal((400, 30)).astype(np.float32)
    # pieces of 20 rows (by default rows are collected into pieces of up to 4M values)
    s = E.StreamingTailStats(400, 30, [("a", 0, 10), ("b", 10, 30)], max_piece_values=600)
    s.update(u[:100])
    assert s._pooled.hill.top.size > 0  # the first 100 rows went in
    size_early = s.state_nbytes()
    s.update(u[100:])
    assert s.state_nbytes() == size_early
    assert size_early < 20_000


def test_streaming_input_errors() -> None:
    s = E.StreamingTailStats(4, 3, [("a", 0, 3)])
    with pytest.raises(ValueError, match=r"shape \(c, 3\)"):
        s.update(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.array([[1.0, np.nan, 2.0]], np.float32))
    s.update(np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match="feed every row"):
        s.finalize()
    with pytest.raises(ValueError, match="n_rows=4"):
        s.update(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="tile"):
        E.StreamingTailStats(4, 3, [("a", 0, 1), ("b", 2, 3)])
    with pytest.raises(ValueError, match="cover every column"):
        E.StreamingTailStats(4, 3, [("a", 0, 2)])
    with pytest.raises(ValueError, match="unique"):
        E.StreamingTailStats(4, 3, [("a", 0, 1), ("a", 1, 3)])
    with pytest.raises(ValueError, match="ci_groups"):
        E.StreamingTailStats(4, 3, [], ci_groups=1)


def test_streaming_prime_total_gives_nan_reference() -> None:
    rng = np.random.default_rng(15)
    u = rng.standard_normal((7, 13)).astype(np.float32)  # K = 91 = 7·13, K1 = 7
    s = E.StreamingTailStats(7, 13, [])
    s.update(u)
    (ref,) = _pick(s.finalize(), "mohammadi_reference")
    assert ref["k1"] == 7
    s = E.StreamingTailStats(13, 1, [])  # K = 13 is prime
    s.update(rng.standard_normal((13, 1)))
    (ref,) = _pick(s.finalize(), "mohammadi_reference")
    assert ref["k1"] == 1 and math.isnan(ref["alpha"])


# ------------------------------------------- streaming fast path (no zeros)


def _check_stream_vs_memory(u: np.ndarray, layers, rows: list[dict], s, exclude: bool) -> None:
    eps = 0.0 if exclude else E.REFERENCE_EPS
    p, m = u.shape
    flat = u.reshape(-1)
    rel = 1e-6
    (ref,) = _pick(rows, "mohammadi_reference")
    assert ref["alpha"] == pytest.approx(E.mohammadi_reference(flat), rel=rel, nan_ok=True)
    cols = E.per_coordinate_alpha(u)
    for name, start, stop in [("pooled", 0, m), *layers]:
        x = _values(u[:, start:stop].reshape(-1), exclude)
        k = p * (stop - start)
        (rob,) = _pick(rows, "mohammadi_robust", name)
        assert rob["alpha"] == pytest.approx(E.mohammadi_robust(x, eps=eps, k_nominal=k), rel=rel)
        assert rob["n_values"] == x.size
        (hill,) = _pick(rows, "hill", name)
        assert hill["alpha"] == pytest.approx(E.hill_alpha(x, E.default_hill_k(x.size)), rel=rel)
        (pc,) = _pick(rows, "per_coordinate", name)
        valid = cols[start:stop][np.isfinite(cols[start:stop])]
        q = np.quantile(valid, [0.25, 0.5, 0.75]) if valid.size else [math.nan] * 3
        assert [pc["q25"], pc["alpha"], pc["q75"]] == pytest.approx(list(q), rel=rel, nan_ok=True)
    sweep = _pick(rows, "block_sweep")
    k1s = [r["k1"] for r in sweep]
    expected = E.block_size_sweep(_values(flat, exclude), k1s, eps=eps)
    assert [r["alpha"] for r in sweep] == pytest.approx(expected.alpha.tolist(), rel=rel)
    # shuffled: each row restricted to, and reordered by, the fixed column subset
    shuffled = _values(u[:, s.shuffle_columns].reshape(-1), exclude)
    expected = E.block_size_sweep(shuffled, k1s, eps=eps)
    got = [r["alpha"] for r in _pick(rows, "block_sweep", order="shuffled")]
    assert got == pytest.approx(expected.alpha.tolist(), rel=rel, nan_ok=True)


@pytest.mark.parametrize("zero_rows", [False, True])
@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", [(1, 1 << 20), (3, 1 << 20), (40, 1 << 20), (40, 777)])
@pytest.mark.parametrize("level1_values", [1 << 20, 3000])
def test_streaming_fast_path_equals_in_memory(
    monkeypatch, chunk: int, max_piece: int, exclude_zeros: bool, zero_rows: bool, level1_values
) -> None:
    """Rows without zeros take the fast path (10/100-sums); rows with zeros the
    general one; both, mixed in any chunking, equal the in-memory functions.
    With LEVEL1_VALUES = 3000 the per-value passes run two rows at a time and a
    run of fast rows spans several of them before its bookkeeping."""
    monkeypatch.setattr(E, "LEVEL1_VALUES", level1_values)
    rng = np.random.default_rng(21)
    p, m = 40, 1234
    layers = [("a", 0, 1000), ("b", 1000, 1230), ("c", 1230, 1234)]
    u = E.sample_sas(1.3, (p, m), rng).astype(np.float32)
    u *= np.exp(rng.standard_normal(m)).astype(np.float32)
    u[np.abs(u) < 1e-6] = 1e-3  # no tiny values: every clean row is fast
    if zero_rows:
        u[5, 17] = 0.0
        u[22, 1000:1234] = 0.0
        u[23, 3] = 1e-9  # below 2**-27: log(|x| + eps) != log|x|
    s = E.StreamingTailStats(
        p,
        m,
        layers,
        exclude_zeros=exclude_zeros,
        sweep_k1=[10, 20, 30, 100, 300, 700, 1000, 3000],
        max_piece_values=max_piece,
    )
    for i in range(0, p, chunk):
        s.update(u[i : i + chunk])
    rows = s.finalize()
    _check_stream_vs_memory(u, layers, rows, s, exclude_zeros)


def test_shuffle_columns_rule() -> None:
    s = E.StreamingTailStats(10, 1000, [])
    assert sorted(s.shuffle_columns) == list(range(1000))  # small M: all columns
    s = E.StreamingTailStats(10, 200_000, [], shuffle_seed=3)
    assert s.shuffle_columns.size == max(E.SHUFFLE_MIN_COLUMNS, 25_000)
    assert np.unique(s.shuffle_columns).size == s.shuffle_columns.size
    again = E.StreamingTailStats(10, 200_000, [], shuffle_seed=3)
    assert np.array_equal(s.shuffle_columns, again.shuffle_columns)


@pytest.mark.parametrize(
    "n,n_drop", [(10, 1), (10, 3), (5, 5), (1000, 5), (100_000, 60), (100_000, 5_000)]
)
def test_drop_positions_compacts_in_place(n: int, n_drop: int) -> None:
    """Exact zeros are removed from the stored streams in place: memmove of the runs
    between a few positions, a compress for many; both keep the order."""
    rng = np.random.default_rng(n + n_drop)
    a = rng.standard_normal(n).astype(np.float32)
    drop = np.sort(rng.choice(n, n_drop, replace=False)).astype(np.int64)
    expected = np.delete(a, drop)
    E._drop_positions(a, drop, E._Workspace())
    assert np.array_equal(a[: n - n_drop], expected)


def test_streaming_block_sums_survive_cancellation() -> None:
    """Blocks of real gradient noise can cancel to ~1e-7 of their terms (on real MNIST
    noise, float32 sums of 10 values moved the reference's α̂ by 2e-4): here every block
    of 100 holds 50 values and their negatives plus ~1e-6, and the streamed block sums
    must match the in-memory float64 ones."""
    rng = np.random.default_rng(31)
    half = rng.standard_normal((40, 20, 50)).astype(np.float32)
    jitter = (rng.standard_normal((40, 20, 50)) * 1e-6).astype(np.float32)
    u = np.concatenate([half, -half + jitter], axis=2).reshape(40, 2000)
    s = E.StreamingTailStats(40, 2000, [], sweep_k1=[100])
    s.update(u)
    (row,) = _pick(s.finalize(), "block_sweep")
    expected = E.block_size_sweep(u.reshape(-1), [100], eps=0.0).alpha[0]
    assert row["alpha"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("k1", [50, 64])
def test_blocks_of_zeros_sum_to_exactly_zero(k1: int) -> None:
    """With zeros kept, a block made only of exact zeros gets Y = 0 (log eps, as in
    memory) even when the prefix sums it is read from carry rounding (here a drift of
    1e-12 per position); K1 = 64 puts a block of zeros across the two pieces."""
    rng = np.random.default_rng(41)
    x = rng.standard_normal(2000).astype(np.float32)
    x[300:900] = 0.0
    eps = E.REFERENCE_EPS
    prefix = np.concatenate([[0.0], np.cumsum(x.astype(np.float64))])
    logs = np.concatenate([[0.0], np.cumsum(np.log(np.abs(x) + np.float32(eps)), dtype=np.float64)])
    zeros = np.flatnonzero(x == 0)
    sums = E._BlockSums([k1], eps)
    for a, b in ((0, 700), (700, 2000)):
        sums.update_fast(
            b - a,
            lambda p, a=a: prefix[a + p] - prefix[a] + 1e-12 * p,
            lambda p, a=a: logs[a + p] - logs[a],
            zeros=zeros[(zeros >= a) & (zeros < b)] - a,
        )
    assert sums.alpha(k1) == pytest.approx(E.mohammadi_alpha(x, k1, eps), rel=1e-6)


# ------------------------------------- the robust estimate and its interval, by definition


def _alpha_by_formula(x: np.ndarray, k1: int) -> float:
    """Mohammadi et al. (2015), Cor. 2.4, written out: blocks of k1 consecutive values."""
    x = np.asarray(x, dtype=np.float64)
    k2 = x.size // k1
    used = x[: k2 * k1]
    y = used.reshape(k2, k1).sum(axis=1)
    return math.log(k1) / (np.log(np.abs(y)).mean() - np.log(np.abs(used)).mean())


@pytest.fixture(scope="module")
def repeated() -> np.ndarray:
    """(40, 1000): each row 100 Gaussian values, each repeated 10 times in a row. Blocks of
    K1 values hold K1/10 independent values times 10, so α̂ rises with K1 (1 at K1 = 10,
    towards 2 for K1 ≫ 10): the robust block sizes give clearly different estimates."""
    rng = np.random.default_rng(51)
    return np.repeat(rng.standard_normal((40, 100)), 10, axis=1).astype(np.float32)


@pytest.mark.parametrize("factors", [E.DEFAULT_ROBUST_FACTORS, (0.5, 1.0, 2.0, 4.0)])
def test_robust_alpha_is_the_median_over_block_sizes_in_memory_and_streamed(
    repeated: np.ndarray, factors
) -> None:
    """The robust α̂ is the median of the per-K1 estimates (with an even number of block
    sizes the mean of the middle two), not any other member: the members here differ by
    ~0.2, and the in-memory function and the streamed estimator (pooled and per layer) both
    give the median of the estimates computed from the formula."""
    p, m = repeated.shape
    layers = [("a", 0, 600), ("b", 600, 1000)]
    s = E.StreamingTailStats(p, m, layers, robust_factors=factors, sweep_k1=[])
    for i in range(0, p, 7):
        s.update(repeated[i : i + 7])
    rows = s.finalize()
    for name, start, stop in [("pooled", 0, m), *layers]:
        x = repeated[:, start:stop].reshape(-1)
        k1s = E.robust_k1_values(x.size, factors)
        assert len(k1s) == len(factors)
        members = sorted(_alpha_by_formula(x, k1) for k1 in k1s)
        assert members[-1] - members[0] > 0.1, members  # the block sizes disagree
        middle = len(members) // 2
        median = (
            members[middle] if len(members) % 2 else (members[middle - 1] + members[middle]) / 2
        )
        assert min(median - members[0], members[-1] - median) > 0.03, members
        assert E.mohammadi_robust(x, factors) == pytest.approx(median, rel=1e-6), name
        (rob,) = _pick(rows, "mohammadi_robust", name)
        assert rob["alpha"] == pytest.approx(median, rel=1e-6), name


@pytest.mark.parametrize("level", [0.8, 0.99])
def test_streamed_interval_is_the_batch_means_interval_at_ci_level(noise: np.ndarray, level):
    """The streamed robust interval (pooled and per layer) is batch_means_interval of the
    per-group 1/α̂ at the configured ci_level, not at the default 0.95."""
    s = E.StreamingTailStats(P, M, LAYERS, ci_groups=6, ci_level=level)
    for i in range(0, P, 7):
        s.update(noise[i : i + 7])
    rows = s.finalize()
    for name, start, stop in [("pooled", 0, M), *LAYERS]:
        k1 = max(2, math.isqrt(P * (stop - start)))
        groups = _group_inverse_alphas(noise, start, stop, k1, 6, exclude=True)
        low, high = E.batch_means_interval(groups, level)
        low95, high95 = E.batch_means_interval(groups, 0.95)
        (rob,) = _pick(rows, "mohammadi_robust", name)
        assert (rob["ci_low"], rob["ci_high"]) == pytest.approx((low, high), rel=1e-6), name
        assert (rob["ci_low"], rob["ci_high"]) != pytest.approx((low95, high95), rel=1e-3), name


def test_streamed_interval_widens_with_ci_level(noise: np.ndarray) -> None:
    """0.8 ⊂ 0.95 ⊂ 0.99: each level gives its own interval around the same estimate."""
    ends = {}
    for level in (0.8, 0.95, 0.99):
        (rob,) = _pick(_stream(noise, P, ci_groups=6, ci_level=level), "mohammadi_robust")
        ends[level] = (rob["ci_low"], rob["ci_high"])
    assert np.all(np.isfinite(list(ends.values())))
    assert (
        ends[0.99][0] < ends[0.95][0] < ends[0.8][0] < ends[0.8][1] < ends[0.95][1] < ends[0.99][1]
    ), ends
