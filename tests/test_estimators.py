"""Tests of sgdtail.estimators: in-memory estimators, the SαS sampler, and the
streaming accumulator (which must equal the in-memory functions)."""

from __future__ import annotations

import math
import warnings

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
    assert E.robust_k1_values(10**6) == [256, 512, 1024, 2048, 4096]  # 2^round(log2(f·1000))
    assert E.robust_k1_values(16, (0.1, 0.25, 1.0)) == [2, 4]
    assert E.robust_k1_values(600 * 118016, (1.0,)) == [8192]  # √K = 8414
    assert E.central_k1(10**6) == 1024
    assert E.central_k1(3) == 2
    assert E.default_sweep_k1(10**5) == [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
    assert E.default_sweep_k1(160) == [16]
    assert E.default_sweep_k1(159) == []
    assert E.default_hill_k(50) == 10
    assert E.default_hill_k(10**6) == 1000
    assert E.default_order_k(976, 1024) == 31  # ⌊√976⌋
    assert E.default_order_k(8643, 8192) == 8  # capped: 8·8192 = ORDER_MAX_HELD values held
    assert E.default_order_k(10, 10**6) == 1


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
    x = np.array([1.0, -2.0, 3.0, 0.5, 4.0, -1.0, 7.0])  # k1 = 3: the last value is in no block
    y = np.array([2.0, 3.5])
    inv = (np.log(np.abs(y)).mean() - np.log(np.abs(x)).mean()) / np.log(3)
    assert E.mohammadi_alpha(x, 3) == pytest.approx(1 / inv, rel=1e-12)
    assert E.mohammadi_alpha(x, 3, exclude_zeros=False) == pytest.approx(1 / inv, rel=1e-12)


def test_mohammadi_alpha_with_zeros_by_formula() -> None:
    """Excluded zeros are not values: a block's size is its number of nonzero values, and a
    block that sums to 0 is left out. Kept zeros are values with ℓ(0) = log ε."""
    x = np.array([1.0, 0.0, 2.0, -1.5, 0.0, 0.0, 4.0, 5.0, 2.0, -2.0, 0.0, 0.0, 9.0])
    # blocks of 4: sums 1.5 (3 nonzero), 9 (2 nonzero), 0 (left out); 9.0 is in no block
    nonzero = x[x != 0]
    inv = (np.log([1.5, 9.0]).mean() - np.log(np.abs(nonzero)).mean()) / np.log([3, 2]).mean()
    assert E.mohammadi_alpha(x, 4) == pytest.approx(1 / inv, rel=1e-12)
    eps = E.REFERENCE_EPS
    kept = (np.log(np.abs([1.5, 9.0, 0.0]) + eps).mean() - np.log(np.abs(x) + eps).mean()) / (
        np.log(4)
    )
    assert E.mohammadi_alpha(x, 4, exclude_zeros=False) == pytest.approx(1 / kept, rel=1e-12)


def test_mohammadi_order_alpha_by_formula_and_on_sas(sas_1e6: dict[float, np.ndarray]) -> None:
    """Cor. 2.2: the k-th smallest |Y| over the (k1·k)-th smallest |X|, per log k1."""
    x = np.array([3.0, -1.0, 0.5, 2.0, -4.0, 1.0, 0.25, -0.75, 6.0])  # k1 = 2: 4 blocks
    y = np.sort(np.abs([2.0, 2.5, -3.0, -0.5]))  # 0.5, 2, 2.5, 3
    v = np.sort(np.abs(x))
    inv = (np.log(y[1]) - np.log(v[2 * 2 - 1])) / np.log(2)  # k = 2
    assert E.mohammadi_order_alpha(x, 2, k=2) == pytest.approx(1 / inv, rel=1e-12)
    assert math.isnan(E.mohammadi_order_alpha(x, 2, k=5))  # only 4 blocks
    for alpha, a in sas_1e6.items():  # default k: ⌊√K2⌋ = 31 of 976 blocks of 1024
        assert abs(E.mohammadi_order_alpha(a, 1024) - alpha) < 0.2, alpha


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
        E.mohammadi_alpha(x, 100, exclude_zeros=False), rel=1e-12
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
    """10% exact zeros: the reference drops to ≈ 1.0; robust with zeros left out ≈ 2,
    whether they are dropped first or left in place (blocks then count nonzero values)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(10**6).astype(np.float32)
    x[rng.random(x.size) < 0.10] = 0.0
    assert abs(E.mohammadi_reference(x) - 1.0) < 0.1
    assert abs(E.mohammadi_robust(x[x != 0]) - 2.0) < 0.05
    assert abs(E.mohammadi_robust(x) - 2.0) < 0.05
    assert E.mohammadi_robust(x, exclude_zeros=False) < 1.5  # zeros kept as values


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
    "rank",
    "alpha",
    "ci_low",
    "ci_high",
    "q25",
    "q75",
    "n_values",
    "zero_fraction",
]
CHUNKINGS = [(1, 1 << 20), (7, 1 << 20), (P, 1 << 20), (P, 120), (13, 300)]
#: Where the per-value work runs: None the compiled kernels on the host, "cpu" their torch
#: version (sgdtail.torch_kernels, the GPU's path) on the CPU.
DEVICES = [None, "cpu"]


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


def _check_stream_vs_memory(u: np.ndarray, layers, rows: list[dict], s, exclude: bool) -> None:
    """Every row of the streamed estimates equals its in-memory function to 1e-6."""
    _check_pooled_rows(u, rows, exclude)
    cols = E.per_coordinate_alpha(u)
    for name, start, stop in [("pooled", 0, u.shape[1]), *layers]:
        _check_scope_rows(u, rows, name, start, stop, cols, exclude)
    _check_sweep_rows(u, rows, s, exclude)


def _check_pooled_rows(u: np.ndarray, rows: list[dict], exclude: bool) -> None:
    """The reference and order-statistics rows against their in-memory functions."""
    p, m = u.shape
    flat = u.reshape(-1)
    (ref,) = _pick(rows, "mohammadi_reference")
    assert ref["alpha"] == pytest.approx(E.mohammadi_reference(flat), rel=1e-6, nan_ok=True)
    assert ref["k1"] == E.reference_k1(p * m)
    assert ref["zero_fraction"] == pytest.approx(np.mean(flat == 0))
    (order,) = _pick(rows, "mohammadi_order")
    assert order["k1"] == E.central_k1(p * m)
    assert order["rank"] == E.default_order_k(p * m // order["k1"], order["k1"])
    want = E.mohammadi_order_alpha(flat, order["k1"], order["rank"], exclude_zeros=exclude)
    assert order["alpha"] == pytest.approx(want, rel=1e-6, nan_ok=True)
    assert {r["rank"] for r in rows if r["estimator"] not in ("hill", "mohammadi_order")} == {-1}


def _check_scope_rows(u, rows, name, start, stop, cols, exclude: bool) -> None:
    """A scope's robust, Hill and per-coordinate rows (columns start .. stop − 1 of U;
    ``cols`` the in-memory per-coordinate α̂ of every column)."""
    p = u.shape[0]
    rel = 1e-6
    x_all = u[:, start:stop].reshape(-1)
    x = _values(x_all, exclude)
    k = p * (stop - start)
    (rob,) = _pick(rows, "mohammadi_robust", name)
    want = E.mohammadi_robust(x_all, exclude_zeros=exclude, k_nominal=k)
    assert rob["alpha"] == pytest.approx(want, rel=rel), name
    assert rob["k1"] == E.central_k1(k)
    assert rob["n_values"] == x.size
    assert rob["zero_fraction"] == pytest.approx(np.mean(x_all == 0))
    (hill,) = _pick(rows, "hill", name)
    want = E.hill_alpha(x, E.default_hill_k(x.size)) if x.size > 10 else math.nan
    assert hill["alpha"] == pytest.approx(want, rel=rel, nan_ok=True), name
    assert hill["rank"] == (E.default_hill_k(x.size) if x.size > 10 else -1), name  # -1: no k
    (pc,) = _pick(rows, "per_coordinate", name)
    valid = cols[start:stop][np.isfinite(cols[start:stop])]
    q = np.quantile(valid, [0.25, 0.5, 0.75]) if valid.size else [math.nan] * 3
    assert [pc["q25"], pc["alpha"], pc["q75"]] == pytest.approx(list(q), rel=rel, nan_ok=True)
    k1c = max(2, math.isqrt(p))
    assert pc["k1"] == k1c and pc["n_values"] == valid.size * (p // k1c) * k1c
    assert pc["zero_fraction"] == pytest.approx(np.mean(x_all == 0))


def _check_sweep_rows(u: np.ndarray, rows: list[dict], s, exclude: bool) -> None:
    """The natural and shuffled block sweeps against :func:`E.block_size_sweep`."""
    sweep = _pick(rows, "block_sweep")
    k1s = [r["k1"] for r in sweep]
    assert k1s == sorted(s.sweep_k1)
    expected = E.block_size_sweep(u.reshape(-1), k1s, exclude_zeros=exclude)
    assert [r["alpha"] for r in sweep] == pytest.approx(expected.alpha.tolist(), rel=1e-6)
    # shuffled: each row restricted to, and reordered by, the fixed column subset, at the
    # block sizes up to 1/16 of its S columns
    shuffled = u[:, s.shuffle_columns].reshape(-1)
    k1s = [k for k in k1s if 16 * k <= s.shuffle_columns.size]
    assert s.shuffled_k1 == k1s
    expected = E.block_size_sweep(shuffled, k1s, exclude_zeros=exclude)
    got = _pick(rows, "block_sweep", order="shuffled")
    assert [r["k1"] for r in got] == k1s
    assert [r["alpha"] for r in got] == pytest.approx(
        expected.alpha.tolist(), rel=1e-6, nan_ok=True
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", CHUNKINGS)
def test_streaming_equals_in_memory(
    noise: np.ndarray, chunk: int, max_piece: int, exclude_zeros: bool, device
) -> None:
    s = E.StreamingTailStats(
        P, M, LAYERS, exclude_zeros=exclude_zeros, max_piece_values=max_piece, device=device
    )
    for i in range(0, P, chunk):
        s.update(torch.from_numpy(noise[i : i + chunk]))
    rows = s.finalize()
    assert all(list(r) == KEYS for r in rows)
    assert {r["estimator"] for r in rows} == set(E.ESTIMATORS)
    assert s.sweep_k1 == [16, 32, 64, 128, 256]  # default: powers of two up to P·M / 10
    assert isinstance(s._acc[0], torch.Tensor) == (device is not None)  # where the state is
    _check_stream_vs_memory(noise, LAYERS, rows, s, exclude_zeros)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", [(1, 1 << 20), (5, 1 << 20), (48, 700)])
@pytest.mark.parametrize(
    "last,base",
    [(384, 4), (496, 0)],  # layer "c" of 16 columns: its robust K1 = 8 is not a multiple of 16
)
def test_layers_from_the_pooled_sums_of_16_equal_in_memory(
    chunk: int, max_piece: int, exclude_zeros: bool, last: int, base: int, device
) -> None:
    """Layers whose boundaries and block sizes are multiples of 16 take their streams from
    the pooled sums of 16 values, others from U: every row equals its in-memory function
    either way, with zeros scattered, in a whole row of a layer, and across a boundary."""
    rng = np.random.default_rng(23)
    p, m = 48, 512
    layers = [("a", 0, 256), ("b", 256, last), ("c", last, 512)]
    u = E.sample_sas(1.4, (p, m), rng).astype(np.float32)
    u *= np.exp(rng.standard_normal(m)).astype(np.float32)
    u[rng.random((p, m)) < 0.01] = 0.0
    u[7, last:512] = 0.0
    u[30, 250:270] = 0.0
    s = E.StreamingTailStats(
        p, m, layers, exclude_zeros=exclude_zeros, max_piece_values=max_piece, device=device
    )
    assert s._layer_base == base
    for i in range(0, p, chunk):
        s.update(u[i : i + chunk])
    _check_stream_vs_memory(u, layers, s.finalize(), s, exclude_zeros)
    misaligned = [("a", 0, 250), ("b", 250, 512)]
    assert E.StreamingTailStats(p, m, misaligned)._layer_base == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("zero_rows", [False, True])
@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", [(1, 1 << 20), (3, 1 << 20), (40, 1 << 20), (40, 777)])
def test_streaming_equals_in_memory_at_any_block_size(
    chunk: int, max_piece: int, exclude_zeros: bool, zero_rows: bool, device
) -> None:
    """Block sizes off the ladder of powers of two (10 = 5·2, 3000 = 375·8, odd 375...),
    layers whose starts are not multiples of a large power of two, tiny values (where
    log(|x| + ε) ≠ log|x|) and rows of zeros across a layer, in any chunking."""
    rng = np.random.default_rng(21)
    p, m = 40, 1234
    layers = [("a", 0, 1000), ("b", 1000, 1230), ("c", 1230, 1234)]
    u = E.sample_sas(1.3, (p, m), rng).astype(np.float32)
    u *= np.exp(rng.standard_normal(m)).astype(np.float32)
    if zero_rows:
        u[5, 17] = 0.0
        u[22, 1000:1234] = 0.0
        u[23, 3] = 1e-9  # below 2**-27: log(|x| + eps) != log|x|
    sweep = [10, 20, 30, 100, 300, 375, 700, 1000, 3000]
    s = E.StreamingTailStats(
        p,
        m,
        layers,
        exclude_zeros=exclude_zeros,
        sweep_k1=sweep,
        max_piece_values=max_piece,
        device=device,
    )
    for i in range(0, p, chunk):
        s.update(u[i : i + chunk])
    _check_stream_vs_memory(u, layers, s.finalize(), s, exclude_zeros)


def test_streaming_interval_does_not_depend_on_chunking(noise: np.ndarray) -> None:
    cis = []
    for chunk, max_piece in CHUNKINGS:
        (rob,) = _pick(
            _stream(noise, chunk, ci_groups=6, max_piece_values=max_piece), "mohammadi_robust"
        )
        cis.append((rob["ci_low"], rob["ci_high"]))
    assert np.all(np.isfinite(cis))
    for ci in cis[1:]:  # the same to the rounding of float64 sums in another order
        assert ci == pytest.approx(cis[0], rel=1e-12)


def _group_inverse_alphas(
    u: np.ndarray, start: int, stop: int, k1: int, groups: int, exclude: bool
) -> np.ndarray:
    """In memory: 1/α̂ per group of consecutive rows at block size k1, zeros in place; a
    block in the group of its last value's row, a group's mean ℓ(X) over its own values."""
    p, width = u.shape[0], stop - start
    bounds = [(g * p) // groups for g in range(groups + 1)]
    x = u[:, start:stop].reshape(-1)
    value_group = np.searchsorted(bounds, np.repeat(np.arange(p), width), side="right") - 1
    log_x = np.log(np.abs(x.astype(np.float64)) + E.REFERENCE_EPS)
    nb = x.size // k1
    blocks = x[: nb * k1].reshape(nb, k1)
    y = blocks.sum(axis=1, dtype=np.float64)
    n = np.count_nonzero(blocks, axis=1) if exclude else np.full(nb, k1)
    block_group = value_group[(np.arange(nb) + 1) * k1 - 1]
    keep = (y != 0) if exclude else np.ones(nb, bool)
    counted = (x != 0) if exclude else np.ones(x.size, bool)
    out = np.full(groups, np.nan)
    for g in range(groups):
        b = keep & (block_group == g)
        if b.any():
            gap = np.log(np.abs(y[b]) + E.REFERENCE_EPS).mean()
            gap -= log_x[counted & (value_group == g)].mean()
            out[g] = gap / np.log(n[b]).mean()
    return out


@pytest.mark.parametrize("exclude_zeros", [True, False])
@pytest.mark.parametrize("chunk,max_piece", CHUNKINGS)
def test_streaming_group_sums_equal_in_memory(
    noise: np.ndarray, chunk: int, max_piece: int, exclude_zeros: bool
) -> None:
    """The interval's per-group 1/α̂, with pieces spanning several groups (one piece of
    all 60 rows), inside one group, or cut across groups (13 rows a chunk, 6 a piece)."""
    s = E.StreamingTailStats(
        P, M, LAYERS, ci_groups=6, exclude_zeros=exclude_zeros, max_piece_values=max_piece
    )
    for i in range(0, P, chunk):
        s.update(noise[i : i + chunk])
    for scope, (start, stop) in zip(
        s._scopes, [(0, M)] + [(a, b) for _, a, b in LAYERS], strict=True
    ):
        want = _group_inverse_alphas(noise, start, stop, scope.ci[0], 6, exclude_zeros)
        np.testing.assert_allclose(
            scope.inverse_alphas(), want, rtol=1e-6, atol=1e-9, err_msg=scope.name
        )


def test_streaming_on_iid_sas_shuffled_matches_natural_and_ci_covers() -> None:
    rng = np.random.default_rng(12)
    alpha, p, m = 1.5, 200, 500
    u = E.sample_sas(alpha, (p, m), rng).astype(np.float32)
    layers = [("a", 0, 100), ("b", 100, m)]
    rows = _stream(u, 10, layers, sweep_k1=[10, 30, 100, 300, 1000], ci_groups=20)
    nat = {r["k1"]: r["alpha"] for r in _pick(rows, "block_sweep")}
    shu = {r["k1"]: r["alpha"] for r in _pick(rows, "block_sweep", order="shuffled")}
    assert list(shu) == [10, 30]  # up to S / 16 = 500 / 16
    for k1 in nat:
        assert abs(nat[k1] - alpha) < 0.15
    for k1 in shu:
        assert abs(shu[k1] - nat[k1]) < 0.15
    (rob,) = _pick(rows, "mohammadi_robust")
    assert rob["ci_low"] < alpha < rob["ci_high"]
    assert rob["ci_high"] - rob["ci_low"] < 0.5
    (pc,) = _pick(rows, "per_coordinate")
    assert abs(pc["alpha"] - alpha) < 0.15
    (order,) = _pick(rows, "mohammadi_order")
    assert abs(order["alpha"] - alpha) < 0.25


def test_shuffle_breaks_within_row_correlation() -> None:
    """Each value repeated 10 times: natural K1 = 10 blocks see 10·x (α̂ = 1);
    the shuffled columns restore ≈ 2 for Gaussian values."""
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


def test_shuffled_sweep_stops_where_blocks_would_span_whole_rows() -> None:
    """Values equal to their column's neighbours (each repeated 8 times along the row), S = M:
    the natural sweep reads α̂ ≈ 1 at K1 = 8 and, at K1 ≥ M, block sums of whole rows, which
    do not depend on the order; the shuffled sweep runs only at K1 ≤ M / 16, where it reads
    2 (Gaussian values) at the smallest K1, and has no row at K1 ≥ M, where it would repeat
    the natural one."""
    rng = np.random.default_rng(14)
    p, m = 400, 1024
    u = np.repeat(rng.standard_normal((p, m // 8)), 8, axis=1).astype(np.float32)
    s = E.StreamingTailStats(p, m, [], sweep_k1=[8, 64, 512, 1024, 4096])
    s.update(u)
    rows = s.finalize()
    nat = {r["k1"]: r["alpha"] for r in _pick(rows, "block_sweep")}
    shu = {r["k1"]: r["alpha"] for r in _pick(rows, "block_sweep", order="shuffled")}
    assert s.shuffle_columns.size == m and list(shu) == [8, 64] and s.shuffled_k1 == [8, 64]
    assert nat[8] == pytest.approx(1.0, abs=1e-3)
    assert abs(shu[8] - 2.0) < 0.1
    # a block of 64 of the 1,024 shuffled coordinates holds ~14 pairs of copies: closer to 2
    # than the natural order, not at 2 (the shuffle's remaining dependence grows with K1 / S)
    assert nat[64] + 0.3 < shu[64] < 1.95
    whole_rows = E.block_size_sweep(u[:, s.shuffle_columns].reshape(-1), [1024, 4096]).alpha
    assert list(whole_rows) == pytest.approx([nat[1024], nat[4096]], rel=1e-9)
    # the default seed's columns; switched off, no shuffled row even at small K1
    assert np.array_equal(s.shuffle_columns, np.random.default_rng(0).permutation(m))
    off = E.StreamingTailStats(p, m, [], sweep_k1=[8, 64], shuffled_sweep=False)
    off.update(u)
    assert not _pick(off.finalize(), "block_sweep", order="shuffled") and off.shuffled_k1 == []


def _state_nbytes(obj, seen=None) -> int:
    """Bytes of the numpy arrays reachable from an accumulator (buffers included)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, E._Extremes):
        obj._merge()  # candidates wait until they number `keep`
    if isinstance(obj, dict):
        return sum(_state_nbytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_state_nbytes(v, seen) for v in obj)
    if type(obj).__module__ == E.__name__:
        return _state_nbytes(vars(obj), seen)
    return 0


def test_streaming_state_does_not_grow_with_rows() -> None:
    rng = np.random.default_rng(14)
    u = rng.standard_normal((400, 30)).astype(np.float32)
    s = E.StreamingTailStats(400, 30, [("a", 0, 10), ("b", 10, 30)], max_piece_values=600)
    s.update(u[:100])
    assert s._scopes[0].hill.held.size > 0  # the first 100 rows went in
    size_early = _state_nbytes(s)
    s.update(u[100:])
    assert _state_nbytes(s) == size_early
    assert size_early < 200_000


def test_streaming_cuts_a_chunk_into_near_equal_pieces(monkeypatch) -> None:
    """A piece has a fixed cost: 71 rows with pieces of at most 35 rows go in as 23 + 24 + 24
    rows, not 35 + 35 + 1; the pieces follow one another."""
    seen = []
    monkeypatch.setattr(
        E.StreamingTailStats, "_piece", lambda self, u, first: seen.append((first, u.shape[0]))
    )
    s = E.StreamingTailStats(80, 30, [], max_piece_values=35 * 30 + 29)
    s.update(np.ones((71, 30), np.float32))
    s.update(np.ones((9, 30), np.float32))
    assert seen == [(0, 23), (23, 24), (47, 24), (71, 9)] and s.rows_seen == 80


def test_streaming_input_errors() -> None:
    s = E.StreamingTailStats(4, 3, [("a", 0, 3)])
    with pytest.raises(ValueError, match=r"shape \(c, 3\)"):
        s.update(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        E.StreamingTailStats(4, 3, []).update(np.array([[1.0, np.nan, 2.0]], np.float32))
    with pytest.raises(ValueError, match="NaN"):
        E.StreamingTailStats(4, 3, []).update(np.array([[1.0, np.inf, 2.0]], np.float32))
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
    with pytest.raises(ValueError, match="block sizes >= 2"):
        E.StreamingTailStats(4, 3, [], sweep_k1=[1, 4])


def test_streaming_prime_total_gives_nan_reference() -> None:
    rng = np.random.default_rng(15)
    u = rng.standard_normal((7, 13)).astype(np.float32)  # K = 91 = 7·13, K1 = 7
    s = E.StreamingTailStats(7, 13, [])
    s.update(u)
    rows = s.finalize()
    (ref,) = _pick(rows, "mohammadi_reference")
    assert ref["k1"] == 7
    assert ref["alpha"] == pytest.approx(E.mohammadi_reference(u.reshape(-1)), rel=1e-9)
    s = E.StreamingTailStats(13, 1, [])  # K = 13 is prime
    s.update(rng.standard_normal((13, 1)))
    (ref,) = _pick(s.finalize(), "mohammadi_reference")
    assert ref["k1"] == 1 and math.isnan(ref["alpha"])


def test_shuffle_columns_rule() -> None:
    s = E.StreamingTailStats(10, 1000, [])
    assert sorted(s.shuffle_columns) == list(range(1000))  # small M: all columns
    s = E.StreamingTailStats(10, 200_000, [], shuffle_seed=3)
    assert s.shuffle_columns.size == max(E.SHUFFLE_MIN_COLUMNS, 25_000)
    assert np.unique(s.shuffle_columns).size == s.shuffle_columns.size
    again = E.StreamingTailStats(10, 200_000, [], shuffle_seed=3)
    assert np.array_equal(s.shuffle_columns, again.shuffle_columns)


@pytest.mark.parametrize("tensor", [False, True])  # the compiled pass, or the torch one
@pytest.mark.parametrize("q", [2, 3, 16, 375])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adder_sums_runs_across_pieces(q: int, dtype, tensor: bool) -> None:
    """The sums of runs of q consecutive values of a stream that is the rows of a
    strided slice of a wider matrix, fed in pieces of rows (shorter and longer than q),
    equal the float64 sums of the whole stream's runs (to float64 rounding: the compiled
    sums may add a run's terms in any order), and carry each run's number of nonzero
    values; an adder fed those (2, n) sums adds q of them."""
    rng = np.random.default_rng(q)
    wide = rng.standard_normal((100, 80)).astype(dtype)
    wide[rng.random(wide.shape) < 0.15] = 0.0
    rows = wide[:, 13:63]  # 50 values a row, not contiguous
    x = rows.reshape(-1)
    cuts = np.sort(rng.choice(np.arange(1, 100), 30, replace=False))
    adder, upper = E._Adder(q, values=True), E._Adder(3)
    got, above = [], []
    for piece in np.split(rows, cuts):  # the tensors' sums stay tensors, on their device
        got.append(adder(torch.from_numpy(piece) if tensor else piece))
        above.append(np.array(E._as_array(upper(got[-1]))))
        got[-1] = np.array(E._as_array(got[-1]))  # a copy: the adder reuses its buffer
    got, above = np.concatenate(got, axis=1), np.concatenate(above, axis=1)
    n = x.size // q
    runs = x[: n * q].astype(np.float64).reshape(n, q)
    np.testing.assert_allclose(got[0], runs.sum(axis=1), rtol=1e-13, atol=1e-13)
    assert np.array_equal(got[1], (runs != 0).sum(axis=1))
    tail = x[n * q :].astype(np.float64)
    assert adder.open[2] == tail.size
    assert adder.open[:2].tolist() == pytest.approx([tail.sum(), np.count_nonzero(tail)])
    m = n // 3
    want = runs[: 3 * m].reshape(m, 3 * q)
    np.testing.assert_allclose(above[0], want.sum(axis=1), rtol=1e-12, atol=1e-12)
    assert np.array_equal(above[1], (want != 0).sum(axis=1))


def test_adder_grows_its_buffer_for_every_run_a_piece_completes() -> None:
    """A first piece of 4 values leaves a run of q = 5 open and a buffer of 2 runs; a
    second piece of 11 values completes 3 runs (the open one among them): all 3 come back."""
    x = np.arange(1, 16, dtype=np.float32)[None, :]
    adder = E._Adder(5, values=True)
    assert adder(x[:, :4]).shape == (2, 0)
    got = adder(x[:, 4:])
    assert got[0].tolist() == [15.0, 40.0, 65.0] and got[1].tolist() == [5.0, 5.0, 5.0]


def test_value_runs_refuses_an_output_too_small() -> None:
    """The compiled pass does not check bounds by itself: 3 runs of 5 into room for 2
    raise, and nothing is written past the room (the array beyond it keeps its values)."""
    from sgdtail import kernels

    x = np.arange(1, 16, dtype=np.float32)[None, :]
    room = np.full((2, 3), -1.0)
    with pytest.raises(IndexError, match="room for fewer runs"):
        kernels.value_runs(x, 5, np.zeros(3), room[:, :2])
    assert room[:, 2].tolist() == [-1.0, -1.0]


def test_scan_refuses_candidates_beyond_its_buffer() -> None:
    """Every value of a row is a candidate (hi = 0) and the buffer has room for 3 of 5
    (a slice of a larger array): the scan raises, and writes nothing past the room."""
    from sgdtail import kernels

    u = np.arange(1, 6, dtype=np.float32)[None, :]
    values, columns = np.full(4, -1.0, np.float32), np.full(4, -1, np.int64)
    state = (np.ones(5), np.zeros(5), np.zeros(5, np.int32), np.zeros(5))
    bounds = (np.zeros(5, np.float32), np.float32(0.0), np.float32(0.0), 2.0**-52)
    gather = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((1, 0), np.float32))
    with pytest.raises(IndexError, match="no room left"):
        kernels.scan(u, *state, False, *bounds, *gather, values[:3], columns[:3], 0)
    assert values.tolist() == [1.0, 2.0, 3.0, -1.0] and columns.tolist() == [0, 1, 2, -1]


@pytest.mark.parametrize(
    "bad",
    ["prod", "power", "zeros", "partial", "hi", "gather", "place", "gathered", "columns", "n"],
)
def test_scan_refuses_arrays_that_do_not_match_its_rows(bad: str) -> None:
    """The compiled scan reads and writes without bounds checks, so it first compares the
    sizes of every array with u's and each other's: one short per-column array, gather
    list or permutation, a gathered buffer with fewer rows, a column buffer shorter than
    the value buffer, or a count past the buffers' end is refused before any write."""
    from sgdtail import kernels

    u = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    arrays = {
        "prod": np.ones(3), "power": np.zeros(3), "zeros": np.zeros(3, np.int32),
        "partial": np.zeros(3), "hi": np.full(3, np.inf, np.float32),
        "gather": np.array([0, 2]), "place": np.array([1, 0]),
        "gathered": np.zeros((2, 2), np.float32),
        "values": np.zeros(6, np.float32), "columns": np.zeros(6, np.int64), "n": 0,
    }  # fmt: skip
    arrays[bad] = 7 if bad == "n" else arrays[bad][:-1]
    a = arrays
    found = (a["values"], a["columns"], a["n"])
    with pytest.raises(ValueError, match="scan: .* do"):
        kernels.scan(
            u, a["prod"], a["power"], a["zeros"], a["partial"], True, a["hi"], np.float32(0),
            np.float32(0), 2.0**-52, a["gather"], a["place"], a["gathered"], *found,
        )  # fmt: skip
    assert np.all(a["prod"] == 1) and np.all(a["gathered"] == 0) and np.all(found[0] == 0)


@pytest.mark.parametrize("device", DEVICES)
def test_streaming_block_sums_survive_cancellation(device) -> None:
    """Blocks of real gradient noise can cancel to ~1e-7 of their terms (on real MNIST
    noise, float32 sums of 10 values moved the reference's α̂ by 2e-4): here every block
    of 100 holds 50 values and their negatives plus ~1e-6, and the streamed block sums
    must match the in-memory float64 ones."""
    rng = np.random.default_rng(31)
    half = rng.standard_normal((40, 20, 50)).astype(np.float32)
    jitter = (rng.standard_normal((40, 20, 50)) * 1e-6).astype(np.float32)
    u = np.concatenate([half, -half + jitter], axis=2).reshape(40, 2000)
    s = E.StreamingTailStats(
        40, 2000, [], sweep_k1=[100, 128], max_piece_values=5000, device=device
    )
    s.update(u)
    rows = _pick(s.finalize(), "block_sweep")
    expected = E.block_size_sweep(u.reshape(-1), [100, 128]).alpha
    assert [r["alpha"] for r in rows] == pytest.approx(list(expected), rel=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("exclude_zeros", [True, False])
def test_blocks_of_zeros_across_pieces(exclude_zeros: bool, device) -> None:
    """600 exact zeros in a row span blocks and pieces: kept, an all-zero block has Y = 0
    exactly (ℓ = log ε, as in memory); left out, it leaves the estimate and a block
    partly of zeros counts its nonzero values."""
    rng = np.random.default_rng(41)
    u = rng.standard_normal((20, 100)).astype(np.float32)
    u.reshape(-1)[300:900] = 0.0
    k1s = [50, 64, 256]
    s = E.StreamingTailStats(
        20, 100, [], sweep_k1=k1s, exclude_zeros=exclude_zeros, max_piece_values=700, device=device
    )
    for i in range(0, 20, 7):
        s.update(u[i : i + 7])
    rows = _pick(s.finalize(), "block_sweep")
    expected = E.block_size_sweep(u.reshape(-1), k1s, exclude_zeros=exclude_zeros).alpha
    assert [r["alpha"] for r in rows] == pytest.approx(list(expected), rel=1e-9)


# ------------------------------------- the robust estimate and its interval, by definition


def _alpha_by_formula(x: np.ndarray, k1: int) -> float:
    """Mohammadi et al. (2015), Cor. 2.4, written out: blocks of k1 consecutive values,
    the mean log|X| over every value (no zeros here)."""
    x = np.asarray(x, dtype=np.float64)
    k2 = x.size // k1
    y = x[: k2 * k1].reshape(k2, k1).sum(axis=1)
    return math.log(k1) / (np.log(np.abs(y)).mean() - np.log(np.abs(x)).mean())


@pytest.fixture(scope="module")
def repeated() -> np.ndarray:
    """(40, 1000): each row 40 Gaussian values, each repeated 25 times in a row. Blocks of
    K1 values hold about K1/25 independent values times 25, so α̂ rises with K1 (from 1
    for K1 ≤ 25 towards 2 for K1 ≫ 25): the robust block sizes (64 to 1024) give clearly
    different estimates."""
    rng = np.random.default_rng(51)
    return np.repeat(rng.standard_normal((40, 40)), 25, axis=1).astype(np.float32)


@pytest.mark.parametrize("factors", [E.DEFAULT_ROBUST_FACTORS, (0.5, 1.0, 2.0, 4.0)])
def test_robust_alpha_is_the_median_over_block_sizes_in_memory_and_streamed(
    repeated: np.ndarray, factors
) -> None:
    """The robust α̂ is the median of the per-K1 estimates (with an even number of block
    sizes the mean of the middle two), not any other member: the members here differ,
    and the in-memory function and the streamed estimator (pooled and per layer) both
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
        assert min(median - members[0], members[-1] - median) > 0.02, members
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
        k1 = E.central_k1(P * (stop - start))
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


# ------------------------------------------------ edges: every guard and message, by construction


def test_errors_name_the_argument_and_what_to_change() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10)
    cases = [
        (lambda: E.sample_sas(0.0, 5, rng), "alpha=0.0 is outside (0, 2]"),
        (lambda: E.sample_sas(1.5, 5, rng, scale=0.0), "scale=0.0 must be positive"),
        (lambda: E.default_sweep_k1(0), "k=0 must be a positive integer"),
        (lambda: E.mohammadi_alpha(np.ones((3, 3)), 2), "x must be 1-D, got shape (3, 3)"),
        (lambda: E.mohammadi_alpha(x, 0), "k1=0 must be a positive integer"),
        (lambda: E.mohammadi_alpha(x, 1), "k1=1 makes log(k1) = 0; use a block size k1 >= 2"),
        (lambda: E.mohammadi_alpha(x, 11), "k1=11 exceeds the 10 samples; use k1 <= len(x)"),
        (lambda: E.mohammadi_reference(np.ones((2, 2))), "x must be 1-D"),
        (lambda: E.mohammadi_robust(np.ones((2, 2))), "x must be 1-D"),
        (lambda: E.block_size_sweep(np.ones((2, 2)), [2]), "x must be 1-D"),
        (lambda: E.hill_alpha(np.ones((2, 2)), 1), "x must be 1-D"),
        (lambda: E.hill_alpha(x, 0), "k=0 must be a positive integer"),
        (lambda: E.hill_alpha(x, 10), "k=10 needs at least k+1=11 samples, got 10; lower k"),
        (lambda: E.mohammadi_order_alpha(np.ones((2, 2)), 2), "x must be 1-D"),
        (lambda: E.mohammadi_order_alpha(x, 0), "k1=0 must be a positive integer"),
        (lambda: E.mohammadi_order_alpha(x, 1), "k1=1 must lie in [2, 10] for 10 samples"),
        (lambda: E.mohammadi_order_alpha(x, 11), "k1=11 must lie in [2, 10] for 10 samples"),
        (lambda: E.mohammadi_order_alpha(x, 2, k=0), "k=0 must be a positive integer"),
        (
            lambda: E.per_coordinate_alpha(np.ones(5)),
            "u must have shape (P, M) with P >= 2, got (5,)",
        ),
        (lambda: E.per_coordinate_alpha(np.ones((1, 5))), "with P >= 2, got (1, 5)"),
        (lambda: E.batch_means_interval([0.5, 0.6], 0.0), "level=0.0 must lie in (0, 1)"),
        (lambda: E.batch_means_interval([0.5, 0.6], 1.0), "level=1.0 must lie in (0, 1)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert message in str(err.value), (message, str(err.value))
        assert "XX" not in str(err.value) and str(err.value)[0].islower(), str(err.value)


def test_smallest_and_largest_block_sizes_are_estimated() -> None:
    """K1 = 2 and K1 = len(x) (a single block) are valid block sizes everywhere."""
    x = np.array([1.0, -3.0, 0.5, 2.0, -1.0, 4.0])
    y2 = np.array([-2.0, 2.5, 3.0])
    inv2 = (np.log(np.abs(y2)).mean() - np.log(np.abs(x)).mean()) / np.log(2)
    assert E.mohammadi_alpha(x, 2) == pytest.approx(1 / inv2, rel=1e-12)
    inv6 = (np.log(3.5) - np.log(np.abs(x)).mean()) / np.log(6)
    assert E.mohammadi_alpha(x, 6) == pytest.approx(1 / inv6, rel=1e-12)
    four = x[:4]  # K = 4: the reference's K1 = 2
    assert E.mohammadi_reference(four) == pytest.approx(
        E.mohammadi_alpha(four, 2, exclude_zeros=False), rel=1e-12
    )
    sweep = E.block_size_sweep(x, [2, 6, 7])
    assert list(sweep.k1) == [2, 6, 7]
    assert sweep.alpha.iloc[:2].tolist() == pytest.approx([1 / inv2, 1 / inv6], rel=1e-12)
    assert math.isnan(sweep.alpha.iloc[2])
    assert list(E.block_size_sweep(x, []).columns) == ["k1", "alpha"]
    u = np.array([[1.0, 2.0], [-0.5, 0.25]])  # P = 2, M = 2: K1 = 2, one block per column
    want = [E.mohammadi_alpha(u[:, m], 2) for m in range(2)]
    assert E.per_coordinate_alpha(u) == pytest.approx(want, rel=1e-12)


def test_robust_uses_k_nominal_and_a_member_with_one_block() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3000)
    k1s = E.robust_k1_values(10**6)  # 256 ... 4096: 4096 > 3000 has no block, 2048 has one
    members = [E.mohammadi_alpha(x, k1) for k1 in k1s if k1 <= x.size]
    assert len(members) == 4
    assert E.mohammadi_robust(x, k_nominal=10**6) == pytest.approx(np.median(members), rel=1e-12)
    assert E.mohammadi_robust(x, k_nominal=10**6) != pytest.approx(E.mohammadi_robust(x))


def test_sweep_and_order_defaults() -> None:
    """block_size_sweep shuffles with seed 0 and leaves zeros out by default, as the order
    estimator does."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(4000)
    x[rng.random(x.size) < 0.2] = 0.0
    k1s = [10, 100]
    default = E.block_size_sweep(x, k1s, shuffle=True)
    assert default.equals(E.block_size_sweep(x, k1s, shuffle=True, seed=0, exclude_zeros=True))
    assert not default.equals(E.block_size_sweep(x, k1s, shuffle=True, exclude_zeros=False))
    order = E.mohammadi_order_alpha(x, 16)
    assert order == E.mohammadi_order_alpha(x, 16, exclude_zeros=True)
    assert order != pytest.approx(E.mohammadi_order_alpha(x, 16, exclude_zeros=False))


def test_order_statistics_are_the_exact_ranks() -> None:
    """The k-th smallest |Y| and (k1·k)-th smallest |X| (float64 block sums), for many
    random orders of the data; the edge cases of too few blocks or values give NaN."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(400).astype(np.float32)
        k1, k = 4, 7
        y = np.sort(np.abs(x.astype(np.float64).reshape(100, 4).sum(axis=1)))
        v = np.sort(np.abs(x))
        inv = (
            np.log(y[k - 1] + E.REFERENCE_EPS) - np.log(np.float64(v[k1 * k - 1]) + E.REFERENCE_EPS)
        ) / np.log(k1)
        assert E.mohammadi_order_alpha(x, k1, k=k) == pytest.approx(1 / inv, rel=1e-12), seed
    z = np.array([1.0, 0.0, 2.0, -1.0, 3.0, 0.0, 0.0, 0.0])  # k1 = 2: |Y| = 1, 1, 3, 0
    # zeros left out: 3 blocks kept (1, 2 and 1 nonzero values: mean log n = log 2 / 3) and
    # 4 nonzero values |X| = 1, 1, 2, 3. k = 2: the 2nd smallest |Y| is 1 (a block summing to
    # exactly 1 counts); |X| at the same quantile, rank round(2·4/3) = 3, is 2.
    assert E.order_x_rank(2, 2, 4, 3) == 3
    assert E.mohammadi_order_alpha(z, 2, k=2) == pytest.approx((np.log(2) / 3) / (0 - np.log(2)))
    # zeros kept: 4 blocks, the 2nd smallest |Y| is 1; the (k1·k = 4)-th smallest |X| is 0
    want = np.log(2) / (np.log(1 + E.REFERENCE_EPS) - np.log(E.REFERENCE_EPS))
    assert E.mohammadi_order_alpha(z, 2, k=2, exclude_zeros=False) == pytest.approx(want)
    assert math.isnan(E.mohammadi_order_alpha(z, 2, k=4))  # 3 blocks kept < k
    w = np.array([3.0, -2.0, 1.0, 0.0])  # blocks 1 and 1 (2 and 1 nonzero), |X| = 3, 2, 1
    # k = 2: |Y|_(2) = 1, rank round(2·3/2) = 3: |X|_(3) = 3; mean log n = log 2 / 2
    assert E.mohammadi_order_alpha(w, 2, k=2) == pytest.approx((np.log(2) / 2) / (0 - np.log(3)))


def test_order_x_rank_matches_quantiles_and_stays_in_the_buffer() -> None:
    assert E.order_x_rank(7, 4, 400, 100) == 28  # no zeros: k1·k
    assert E.order_x_rank(7, 4, 403, 100) == 28  # the remainder's values do not raise it
    assert E.order_x_rank(7, 4, 300, 100) == 21  # a quarter of the values are zeros
    assert E.order_x_rank(10, 64, 5, 90) == 1  # at least 1
    assert E.order_x_rank(3, 8, 100, 0) == 24  # no block kept: k1·k (the estimate is NaN)
    assert E.order_x_rank(1, 4, 3, 1) == 3  # one block kept, 3 nonzero values: the 3rd


@pytest.mark.parametrize("zero_fraction", [0.1, 0.3, 0.5])
def test_order_estimator_with_zeros_left_out_is_unbiased_on_gaussian_data(zero_fraction) -> None:
    """Gaussian values (α = 2) with a fraction of exact zeros: the mean over 6 samples of
    2^18 values stays within 0.1 of 2 (reading |X| at rank k1·k and dividing by log k1, as
    without zeros, gives 2.1-2.9 here)."""
    rng = np.random.default_rng(5)
    got = []
    for _ in range(6):
        x = rng.standard_normal(1 << 18)
        x[rng.random(x.size) < zero_fraction] = 0.0
        got.append(E.mohammadi_order_alpha(x, 512))
    assert abs(np.mean(got) - 2.0) < 0.1, got


def test_in_memory_estimators_give_nan_for_nan_input() -> None:
    x = np.random.default_rng(6).standard_normal(10_000)
    x[17] = np.nan
    assert math.isnan(E.hill_alpha(x, 50))
    assert math.isnan(E.mohammadi_order_alpha(x, 64))
    assert math.isnan(E.mohammadi_alpha(x, 64))


def test_estimates_at_an_exact_gap_of_zero_are_infinite_without_a_warning() -> None:
    """1/α̂ = 0 gives α̂ = inf quietly (the callers treat it), whatever numpy's error state."""
    with np.errstate(all="raise"):
        assert E._alpha(1.0, 1, 1.0, 1, 1.0) == math.inf
        assert E._order_alpha(np.array([2.0]), np.array([2.0]), 4) == math.inf
        u = np.ones((4, 3))
        u[:, 1] = 0.0  # an all-zero column: NaN, and no division warning
        got = E.per_coordinate_alpha(u)
        assert math.isnan(got[1]) and np.isfinite(got[[0, 2]]).all()


@pytest.mark.parametrize("alpha,scale", [(1.0, 2.5), (0.7, 0.5)])
def test_sample_sas_scale_at_and_off_the_cauchy_case(alpha: float, scale: float) -> None:
    x = E.sample_sas(alpha, 200_000, np.random.default_rng(9), scale=scale)
    pts = np.array([-5.0, -1.0, 0.3, 2.0, 8.0])
    emp = np.searchsorted(np.sort(x), pts, side="right") / x.size
    assert np.max(np.abs(emp - levy_stable.cdf(pts, alpha, 0.0, scale=scale))) < 0.006


def _check_hill_at_k_one(x_all: np.ndarray, rows: list[dict], name: str) -> None:
    """A scope's Hill row at k = 1: its counts and α̂ from the nonzero values of ``x_all``."""
    x = x_all[x_all != 0]
    (hill,) = _pick(rows, "hill", name)
    assert hill["n_values"] == x.size and hill["zero_fraction"] == pytest.approx(
        np.mean(x_all == 0)
    )
    want = E.hill_alpha(x, 1) if x.size > 1 else math.nan
    assert hill["alpha"] == pytest.approx(want, rel=1e-9, nan_ok=True), name
    assert hill["rank"] == (1 if x.size > 1 else -1), name


def test_streamed_rows_in_order_with_counts_and_zero_fractions(noise: np.ndarray) -> None:
    """Row order, n_values and zero_fraction of every row; a layer of zeros only; Hill with
    a given k (1 included); no per-coordinate or shuffled rows when switched off."""
    u = noise.copy()
    layers = [*LAYERS[:2], ("fc3", 45, 50)]
    u[:, 45:50] = 0.0  # fc3: nothing but zeros
    s = E.StreamingTailStats(P, M, layers, hill_k=1, per_coordinate=False, shuffled_sweep=False)
    s.update(u)
    rows = s.finalize()
    names = [(r["estimator"], r["scope"]) for r in rows]
    assert names[:4] == [
        ("mohammadi_reference", "pooled"),
        ("mohammadi_robust", "pooled"),
        ("mohammadi_order", "pooled"),
        ("hill", "pooled"),
    ]
    assert {r["estimator"] for r in rows} == {
        "mohammadi_reference",
        "mohammadi_robust",
        "mohammadi_order",
        "hill",
        "block_sweep",
    }
    assert not _pick(rows, "block_sweep", order="shuffled")
    flat = u.reshape(-1)
    nonzero = int(np.count_nonzero(flat))
    zf = 1 - nonzero / flat.size
    (ref,) = _pick(rows, "mohammadi_reference")
    assert (ref["n_values"], ref["zero_fraction"]) == (flat.size, pytest.approx(zf))
    (order,) = _pick(rows, "mohammadi_order")
    assert (order["n_values"], order["zero_fraction"]) == (nonzero, pytest.approx(zf))
    for name, start, stop in [("pooled", 0, M), *layers]:
        _check_hill_at_k_one(u[:, start:stop].reshape(-1), rows, name)
    (fc3,) = _pick(rows, "mohammadi_robust", "fc3")
    assert math.isnan(fc3["alpha"]) and fc3["n_values"] == 0 and fc3["zero_fraction"] == 1.0
    for r in _pick(rows, "block_sweep"):
        k1 = r["k1"]
        y = flat[: flat.size // k1 * k1].reshape(-1, k1).sum(axis=1, dtype=np.float64)
        assert r["n_values"] == np.count_nonzero(y) * k1  # blocks that entered, times K1
        assert r["zero_fraction"] == pytest.approx(zf)
        want = E.block_size_sweep(flat, [k1]).alpha[0]
        assert r["alpha"] == pytest.approx(want, rel=1e-6)


def test_hill_needs_one_value_beyond_k_and_order_needs_k_blocks_kept() -> None:
    rng = np.random.default_rng(17)
    u = rng.standard_normal((10, 4)).astype(np.float32)
    u[:, 2:] = 0.0
    u[1:, 1] = 0.0  # layer b holds exactly one nonzero value... and layer a 11 of them
    s = E.StreamingTailStats(10, 4, [("a", 0, 2), ("b", 2, 4)], hill_k=11, sweep_k1=[])
    s.update(u)
    rows = s.finalize()
    (hill,) = _pick(rows, "hill", "a")  # 11 nonzero values, k = 11: no threshold value left
    assert math.isnan(hill["alpha"]) and hill["rank"] == -1  # no estimate, no k
    s10 = E.StreamingTailStats(10, 4, [("a", 0, 2), ("b", 2, 4)], hill_k=10, sweep_k1=[])
    s10.update(u)
    (hill10,) = _pick(s10.finalize(), "hill", "a")  # k = 10: the 11th value is the threshold
    assert np.isfinite(hill10["alpha"]) and hill10["rank"] == 10
    # K1 = 8, k = 2: all 5 blocks hold a nonzero value, |X| read at rank round(2·11/5) = 4
    k1 = E.central_k1(40)
    assert (k1, E.default_order_k(5, k1)) == (8, 2)
    (order,) = _pick(rows, "mohammadi_order")
    want = E.mohammadi_order_alpha(u.reshape(-1), k1)
    assert np.isfinite(want) and order["alpha"] == pytest.approx(want, rel=1e-9)
    u[2:] = 0.0  # one block kept, fewer than k = 2
    s = E.StreamingTailStats(10, 4, [], sweep_k1=[])
    s.update(u)
    (order,) = _pick(s.finalize(), "mohammadi_order")
    assert math.isnan(order["alpha"]) and math.isnan(E.mohammadi_order_alpha(u.reshape(-1), k1))


def test_helper_rules_say_what_to_change() -> None:
    cases = [
        (lambda: E.reference_k1(0), "k=0 must be a positive integer"),
        (lambda: E.robust_k1_values(0), "k=0 must be a positive integer"),
        (
            lambda: E.robust_k1_values(10, []),
            "factors=() must be a non-empty list of positive numbers",
        ),
        (lambda: E.robust_k1_values(10, [1.0, 0.0]), "factors=(1.0, 0.0) must be a non-empty list"),
        (lambda: E.default_hill_k(0), "n=0 must be a positive integer"),
        (lambda: E.default_order_k(0, 4), "n_blocks=0 must be a positive integer"),
        (lambda: E.default_order_k(4, 0), "k1=0 must be a positive integer"),
        (lambda: E.reference_k1(True), "k=True must be a positive integer"),
        (lambda: E.StreamingTailStats(0, 3, []), "n_rows=0 must be a positive integer"),
        (lambda: E.StreamingTailStats(4, 0, []), "n_cols=0 must be a positive integer"),
        (
            lambda: E.StreamingTailStats(1, 3, []),
            "n_rows must be >= 2 (one row has no noise to estimate)",
        ),
        (
            lambda: E.StreamingTailStats(4, 3, [], ci_level=0.0),
            "ci_level=0.0 must lie in (0, 1), e.g. 0.95",
        ),
        (lambda: E.StreamingTailStats(4, 3, [], ci_level=1.0), "ci_level=1.0 must lie in (0, 1)"),
        (
            lambda: E.StreamingTailStats(4, 3, [], hill_k=0),
            "hill_k=0 must be >= 1, or None for the default",
        ),
        (lambda: E.StreamingTailStats(4, 3, [("pooled", 0, 3)]), "must be unique and not 'pooled'"),
        (
            lambda: E.StreamingTailStats(4, 3, [("a", 0, 0), ("b", 0, 3)]),
            "layer 'a' covers columns [0, 0)",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert message in str(err.value), (message, str(err.value))
        assert "XX" not in str(err.value) and str(err.value)[0].islower(), str(err.value)
    assert type(E.default_order_k(8643, 8192)) is int
    s = E.StreamingTailStats(2, 3, [], ci_groups=2, sweep_k1=[2])  # the smallest valid ones
    u = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]], np.float32)
    s.update(u)
    (ref,) = _pick(s.finalize(), "mohammadi_reference")  # K = 6: K1 = 2
    assert ref["k1"] == 2
    assert ref["alpha"] == pytest.approx(E.mohammadi_reference(u.reshape(-1)), rel=1e-12)


def test_streaming_checks_rows_in_their_own_words() -> None:
    s = E.StreamingTailStats(4, 3, [])
    with pytest.raises(ValueError) as err:
        s.update(np.zeros((2, 4), np.float32))
    assert str(err.value) == (
        "rows must have shape (c, 3), got (2, 4); pass consecutive rows of the P x M noise matrix"
    )
    s.update(np.ones(3, np.float32))  # one row as a vector
    assert s.rows_seen == 1
    with pytest.raises(ValueError) as err:
        s.update(np.ones((4, 3), np.float32))
    assert str(err.value) == (
        "got 5 rows in total but n_rows=4; "
        "construct StreamingTailStats with the true number of minibatches"
    )
    with pytest.raises(ValueError) as err:
        s.finalize()
    assert str(err.value) == (
        "finalize() after 1 of n_rows=4 rows; "
        "feed every row of U first, or construct with the true n_rows"
    )


def test_streamed_order_statistics_are_exact_with_ties_and_many_zeros() -> None:
    """The held order statistics are exactly the in-memory ones (ℓ of the same float32
    value), also when many values tie at the threshold and when zeros outnumber the values
    held; Hill likewise with ties at its threshold."""
    rng = np.random.default_rng(61)
    p, m = 20, 400
    u = np.round(rng.standard_normal((p, m)), 1).astype(np.float32)  # values repeat: ties
    u[rng.random((p, m)) < 0.5] = 0.0  # zeros outnumber what is held
    for chunk in (1, 3, 20):
        s = E.StreamingTailStats(p, m, [], hill_k=150, sweep_k1=[])
        for i in range(0, p, chunk):
            s.update(u[i : i + chunk])
        rows = s.finalize()
        flat = u.reshape(-1)
        (order,) = _pick(rows, "mohammadi_order")
        want = E.mohammadi_order_alpha(flat, order["k1"])
        assert order["alpha"] == pytest.approx(want, rel=1e-12), chunk
        (hill,) = _pick(rows, "hill")
        assert hill["alpha"] == pytest.approx(E.hill_alpha(flat[flat != 0], 150), rel=1e-12), chunk


def test_hill_below_one_and_blocks_that_cancel_to_zero_without_zeros() -> None:
    """Values all below 1 in pieces smaller than the Hill buffer; blocks whose values cancel
    exactly (no exact zero among them) are left out like blocks of zeros."""
    rng = np.random.default_rng(71)
    u = (rng.standard_normal((30, 8)) * 0.01).astype(np.float32)
    u[:, 4:6] = np.array([0.5, -0.5], np.float32)  # pairs that sum to exactly 0
    s = E.StreamingTailStats(30, 8, [], hill_k=40, sweep_k1=[2, 4])
    for i in range(30):
        s.update(u[i])
    rows = s.finalize()
    flat = u.reshape(-1)
    (hill,) = _pick(rows, "hill")
    assert hill["alpha"] == pytest.approx(E.hill_alpha(flat, 40), rel=1e-12)
    sweep = _pick(rows, "block_sweep")
    want = E.block_size_sweep(flat, [2, 4]).alpha
    assert [r["alpha"] for r in sweep] == pytest.approx(list(want), rel=1e-9)
    y2 = flat.reshape(-1, 2).sum(axis=1)
    assert sweep[0]["n_values"] == 2 * np.count_nonzero(y2) < flat.size  # the pairs left out


@pytest.mark.parametrize("groups", [2, 4])
def test_a_block_ending_on_a_groups_first_value_counts_in_that_group(groups: int) -> None:
    """P = 4 rows of M = 7: blocks of K1 = 4 end at values 3, 7, 11, ...; value 7 is row 1's
    first, so with a group per row that block is row 1's, not row 0's."""
    rng = np.random.default_rng(81)
    u = E.sample_sas(1.5, (4, 7), rng).astype(np.float32)
    s = E.StreamingTailStats(4, 7, [], ci_groups=groups, sweep_k1=[])
    for i in range(4):
        s.update(u[i])
    pooled = s._scopes[0]
    assert pooled.ci[0] == 4
    want = _group_inverse_alphas(u, 0, 7, 4, groups, exclude=True)
    np.testing.assert_allclose(pooled.inverse_alphas(), want, rtol=1e-9)


def test_batch_means_interval_in_float64_and_at_a_zero_end() -> None:
    v32 = np.array([0.61, 0.67, 0.7, 0.66], np.float32)
    want = E.batch_means_interval(v32.astype(np.float64), 0.9)
    assert E.batch_means_interval(v32, 0.9) == pytest.approx(want, rel=1e-14)
    assert all(math.isnan(e) for e in E.batch_means_interval([0.0, 0.0]))  # 1/α up to 0


def test_defaults_of_the_streaming_class(noise: np.ndarray) -> None:
    implicit = _stream(noise, P)
    explicit = _stream(
        noise, P, ci_groups=20, shuffle_seed=0, robust_factors=E.DEFAULT_ROBUST_FACTORS
    )
    assert implicit == explicit


@pytest.mark.parametrize(
    "p,layers",
    [
        (3, [("a", 0, 1000), ("b", 1000, 1230), ("c", 1230, 1234)]),  # per-coordinate K1 = 2
        (40, [("a", 0, 1000), ("b", 1000, 1230), ("c", 1230, 1234)]),
        (4, [("big", 0, 1024), ("tiny", 1024, 1028)]),  # a layer of 16 values: K1 from 2
    ],
)
def test_streaming_equals_in_memory_with_default_block_sizes(p: int, layers) -> None:
    """The default sweep (powers of two from 16) with layers whose boundaries allow only
    low ladder levels, and a layer so small that its own block sizes start at 2."""
    rng = np.random.default_rng(p)
    m = layers[-1][2]
    u = E.sample_sas(1.4, (p, m), rng).astype(np.float32)
    u[0, 3] = 0.0
    s = E.StreamingTailStats(p, m, layers)
    for i in range(0, p, 2):
        s.update(u[i : i + 2])
    _check_stream_vs_memory(u, layers, s.finalize(), s, True)


def test_robust_factors_off_the_default_and_zeros_outside_the_shuffled_columns() -> None:
    rng = np.random.default_rng(91)
    p, m = 4, 20_000  # more columns than the shuffled stream takes (16,384)
    u = E.sample_sas(1.6, (p, m), rng).astype(np.float32)
    s0 = E.StreamingTailStats(p, m, [], robust_factors=(1.0, 8.0), sweep_k1=[16, 64])
    outside = np.setdiff1d(np.arange(m), s0.shuffle_columns)[:50]
    u[:, outside] = 0.0
    s0.update(u)
    rows = s0.finalize()
    (rob,) = _pick(rows, "mohammadi_robust")
    want = E.mohammadi_robust(u.reshape(-1), (1.0, 8.0))
    assert rob["alpha"] == pytest.approx(want, rel=1e-6)
    shuffled = u[:, s0.shuffle_columns].reshape(-1)
    want = E.block_size_sweep(shuffled, [16, 64]).alpha
    got = [r["alpha"] for r in _pick(rows, "block_sweep", order="shuffled")]
    assert got == pytest.approx(list(want), rel=1e-6)


def test_a_layer_of_zeros_with_the_default_hill_k() -> None:
    rng = np.random.default_rng(92)
    u = rng.standard_normal((10, 6)).astype(np.float32)
    u[:, 4:] = 0.0
    s = E.StreamingTailStats(10, 6, [("a", 0, 4), ("b", 4, 6)], sweep_k1=[])
    s.update(u)
    (hill,) = _pick(s.finalize(), "hill", "b")
    assert math.isnan(hill["alpha"]) and hill["n_values"] == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_rows_are_refused_in_words(device, bad: float) -> None:
    with pytest.raises(ValueError) as err:
        E.StreamingTailStats(4, 3, [], device=device).update(np.array([[1.0, bad, 2.0]]))
    assert str(err.value) == (
        "rows contain NaN or inf (diverged training?); measure a finite checkpoint"
    )


def test_integer_input_layers_in_any_name_order_and_small_helpers() -> None:
    assert E.mohammadi_alpha([1, -2, 3, 4, -5, 6], 2) == E.mohammadi_alpha(
        np.array([1.0, -2.0, 3.0, 4.0, -5.0, 6.0]), 2
    )
    s = E.StreamingTailStats(4, 3, [("z", 0, 1), ("a", 1, 3)], sweep_k1=[])  # names unsorted
    s.update(np.arange(1, 13, dtype=np.float32).reshape(4, 3))
    assert {r["scope"] for r in s.finalize()} == {"pooled", "z", "a"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(E._finite_median([math.nan, math.inf]))
    x = np.array([5.0, 3.0, 2.0, 1.5, 1.0, 0.5], np.float32)
    inv = np.log(np.array([5.0, 3.0], np.float64) / 2.0).mean()
    assert E.hill_alpha(x, 2) == pytest.approx(1 / inv, rel=1e-12)  # logs in float64
    y = np.array([3.0, -1.0, 0.5, 2.0])
    assert np.isfinite(E.mohammadi_order_alpha(y, 4, k=1))  # one block of all four values


def test_inverse_alpha_is_nan_without_blocks_values_or_block_size_quietly() -> None:
    with np.errstate(all="raise"):
        assert E._inverse_alpha(1.0, 2, 0.5, 4, 2.0) == pytest.approx((0.5 - 0.125) / 1.0)
        all_cancel = np.array([1.0, -1.0, 2.0, -2.0])  # both blocks of 2 sum to exactly 0
        assert math.isnan(E.mohammadi_alpha(all_cancel, 2))  # no block left: NaN, no error
        for args in [
            (1.0, 0, 0.5, 4, 2.0),  # no block
            (1.0, 2, 0.5, 0, 2.0),  # no value
            (1.0, 2, 0.5, 4, 0.0),  # blocks of one value: log n = 0
        ]:
            assert math.isnan(E._inverse_alpha(*args)), args


def test_values_tied_at_a_sample_bound_are_kept() -> None:
    """Most values equal 1.0, the sample bound of both order-statistic buffers: the tied
    values fill the kept sets (Hill's top 21 holds 5 tens and 16 ones, the order buffer's
    smallest hold 0.1s and ones), in one piece, as in memory."""
    u = np.ones((2, 500), np.float32)
    u[0, [3, 99, 200, 301, 450]] = 10.0
    u[1, [7, 150, 320]] = 0.1
    s = E.StreamingTailStats(2, 500, [], hill_k=20, sweep_k1=[])
    s.update(u)
    rows = s.finalize()
    flat = u.reshape(-1)
    (hill,) = _pick(rows, "hill")
    assert hill["alpha"] == pytest.approx(E.hill_alpha(flat, 20), rel=1e-12)
    (order,) = _pick(rows, "mohammadi_order")
    want = E.mohammadi_order_alpha(flat, order["k1"])
    assert np.isfinite(want) and order["alpha"] == pytest.approx(want, rel=1e-12)


def test_tensor_rows_that_require_grad_are_read_without_copy_errors() -> None:
    """A tensor still attached to autograd is detached before numpy reads it (np.asarray on
    it raises), in memory and streamed."""
    rows = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    flat = rows.detach().numpy().reshape(-1)
    assert E.hill_alpha(rows.reshape(-1), 5) == E.hill_alpha(flat, 5)
    s = E.StreamingTailStats(4, 6, [], sweep_k1=[])
    s.update(rows)
    (hill,) = _pick(s.finalize(), "hill")
    assert hill["alpha"] == pytest.approx(E.hill_alpha(flat.astype(np.float32), 10), rel=1e-6)


def test_order_estimate_is_nan_when_every_kept_block_holds_one_nonzero_value() -> None:
    """Mean log n = 0 (each block of K1 = 2 holds one nonzero value): no block-size scale to
    divide by, NaN in memory and streamed (not 1/inf = 0)."""
    z = np.array([1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 0.0, 4.0] * 4, dtype=np.float32)
    assert math.isnan(E.mohammadi_order_alpha(z, 2, k=2))
    s = E.StreamingTailStats(4, 8, [], sweep_k1=[])
    s.update(z.reshape(4, 8))
    assert E.central_k1(32) == 4  # blocks of 4 hold 2 nonzero values: finite
    (order,) = _pick(s.finalize(), "mohammadi_order")
    assert np.isfinite(order["alpha"])
    sparse = np.zeros((2, 32), dtype=np.float32)
    sparse.reshape(-1)[::8] = np.arange(1.0, 9.0)  # K1 = 8: one nonzero value per block
    s = E.StreamingTailStats(2, 32, [], sweep_k1=[])
    s.update(sparse)
    assert E.central_k1(64) == 8
    (order,) = _pick(s.finalize(), "mohammadi_order")
    assert math.isnan(order["alpha"]) and math.isnan(E.mohammadi_order_alpha(sparse.ravel(), 8))


def test_order_estimate_at_rank_one_reads_the_smallest_values() -> None:
    """k = 1 on 4,000 Cauchy values in blocks of 4: the smallest |Y| and the 4th smallest |X|
    (sorted here). Then zeros left out, 1,000 blocks: 400 of (x, 1, 0, 0) and 600 of
    (100 + |x|, 0, 0, 0), 1,400 nonzero values, so |X| is read at rank round(1,400/1,000) = 1;
    log k1 becomes the mean log of the blocks' numbers of nonzero values."""
    x = np.random.default_rng(0).standard_cauchy(4000)
    y = np.sort(np.abs(x.reshape(-1, 4).sum(axis=1)))
    gap = math.log(y[0] + E.REFERENCE_EPS) - math.log(np.sort(np.abs(x))[3] + E.REFERENCE_EPS)
    assert E.mohammadi_order_alpha(x, 4, k=1) == pytest.approx(math.log(4) / gap, rel=1e-12)
    blocks = np.zeros((1000, 4))
    blocks[:400, 0], blocks[:400, 1] = x[:400], 1.0
    blocks[400:, 0] = 100.0 + np.abs(x[400:1000])
    y = np.sort(np.abs(blocks.sum(axis=1)))
    v = np.sort(np.abs(blocks[blocks != 0]))
    assert (v.size, E.order_x_rank(1, 4, v.size, y.size)) == (1400, 1)
    log_n = (400 * math.log(2) + 600 * math.log(1)) / 1000
    gap = math.log(y[0] + E.REFERENCE_EPS) - math.log(v[0] + E.REFERENCE_EPS)
    assert gap != 0.0
    assert E.mohammadi_order_alpha(blocks.ravel(), 4, k=1) == pytest.approx(log_n / gap, rel=1e-12)


def test_order_and_hill_estimates_are_nan_without_the_values_they_need() -> None:
    """All-zero data keeps no block: NaN in memory and streamed (not a division by zero).
    Nine of ten blocks of K1 = 4 cancel exactly (1, −1, 2, −2): one block is kept, fewer than
    k = 2, though the 40 nonzero values would reach |X|'s rank. Hill with k = 2 on
    (5, 3, 0, 0): its threshold, the 3rd largest |x|, is 0."""
    assert math.isnan(E.mohammadi_order_alpha(np.zeros(100), 10))
    s = E.StreamingTailStats(2, 32, [], sweep_k1=[])
    s.update(np.zeros((2, 32), dtype=np.float32))
    (order,) = _pick(s.finalize(), "mohammadi_order")
    assert math.isnan(order["alpha"]) and order["n_values"] == 0
    cancel = np.array([1.0, -1.0, 2.0, -2.0] * 9 + [1.0, 2.0, 3.0, 4.0])
    assert E.order_x_rank(2, 4, 40, 1) == 8
    assert math.isnan(E.mohammadi_order_alpha(cancel, 4, k=2))
    assert math.isnan(E.hill_alpha([5.0, 3.0, 0.0, 0.0], 2))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", [1e-12, 1e30])
def test_sums_of_logs_survive_products_beyond_float64(scale: float, device) -> None:
    """Σ ℓ(X) per column and Σ ℓ(Y) are logs of float64 products, rescaled by powers of
    two: 300 rows of values near 1e-12 (a product near 1e-3600, far below float64's
    1e-308) or near 1e30 must give the in-memory estimates, in one piece and in pieces of
    a few rows."""
    rng = np.random.default_rng(95)
    u = (E.sample_sas(1.6, (300, 40), rng) * scale).astype(np.float32)
    assert np.isfinite(u).all() and (u != 0).all()
    for piece in (12_000, 200):
        layers = [("a", 0, 25), ("b", 25, 40)]
        s = E.StreamingTailStats(300, 40, layers, max_piece_values=piece, device=device)
        s.update(u)
        _check_stream_vs_memory(u, [("a", 0, 25), ("b", 25, 40)], s.finalize(), s, True)


@pytest.mark.parametrize("device", DEVICES)
def test_products_of_the_largest_float32_values_stay_finite(device) -> None:
    """±3e38 ≈ 2^127.8, near float32's largest: a column's product grows by 2^511 in four
    rows, more than one rescaling step (2^500) takes back, so it must be rescaled every
    three rows; 200 rows in runs of 100 (two interval groups, no per-coordinate blocks)."""
    rng = np.random.default_rng(97)
    u = np.where(rng.random((200, 3)) < 0.5, -3e38, 3e38).astype(np.float32)
    options = {"ci_groups": 2, "per_coordinate": False, "sweep_k1": []}
    s = E.StreamingTailStats(200, 3, [], **options, device=device)
    s.update(u)
    (rob,) = _pick(s.finalize(), "mohammadi_robust")
    assert rob["alpha"] == pytest.approx(E.mohammadi_robust(u.reshape(-1)), rel=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_every_value_a_candidate(monkeypatch, device) -> None:
    """Thresholds that let every value through (and a layer of tied values): the candidate
    buffer holds them all, and the estimates equal the in-memory ones."""
    rng = np.random.default_rng(96)
    u = rng.standard_normal((30, 20)).astype(np.float32)
    u[:, 12:] = 0.5
    layers = [("a", 0, 12), ("b", 12, 20)]
    s = E.StreamingTailStats(30, 20, layers, sweep_k1=[16], device=device)
    monkeypatch.setattr(s, "_thresholds", _loose(s._thresholds))
    s.update(u)
    _check_stream_vs_memory(u, layers, s.finalize(), s, True)


def _loose(thresholds):
    """Thresholds that let every value through (all values are then candidates)."""

    def loose(u, first_row):
        hi, lo, floor = thresholds(u, first_row)
        return hi * 0, np.float32(np.inf), floor  # hi: an array, or a tensor on a device

    return loose


@pytest.mark.parametrize("largest", [True, False])
def test_order_statistics_buffer_reads_its_values_from_either_end(largest: bool) -> None:
    """The buffer of the keep most extreme values: sorted() most extreme first, nth(r) the
    r-th most extreme, empty past the values held; zeros are not values."""
    keep = 4
    ext = E._Extremes(keep, largest, True)
    for piece in ([5.0, 0.0, 1.0], [7.0, 3.0], [2.0, 0.0, 9.0, 4.0]):
        ext.add_from(np.array(piece, np.float32))
    want = [9.0, 7.0, 5.0, 4.0] if largest else [1.0, 2.0, 3.0, 4.0]
    assert ext.sorted().tolist() == want
    assert [ext.nth(r).tolist() for r in (1, 2, 4, 5)] == [[want[0]], [want[1]], [want[3]], []]


def test_streamed_order_estimate_counts_blocks_of_zeros_when_zeros_are_kept() -> None:
    """With zeros kept as values, blocks that sum to 0 are the smallest |Y|: half the
    blocks here are all zeros, so the k-th smallest |Y| is 0, as in memory."""
    rng = np.random.default_rng(98)
    u = rng.standard_normal((20, 100)).astype(np.float32)
    u[:10] = 0.0
    s = E.StreamingTailStats(20, 100, [], exclude_zeros=False, sweep_k1=[])
    s.update(u)
    (order,) = _pick(s.finalize(), "mohammadi_order")
    want = E.mohammadi_order_alpha(u.reshape(-1), order["k1"], exclude_zeros=False)
    assert order["alpha"] == pytest.approx(want, rel=1e-9)
    assert want != pytest.approx(E.mohammadi_order_alpha(u.reshape(-1), order["k1"]))


def test_streamed_order_estimate_keeps_a_block_summing_to_one() -> None:
    """K = 8 values, K1 = 4, k = 1: the smallest |Y| is a block summing to exactly 1."""
    u = np.array([[1.0, 0.0, 0.0, 0.0], [2.0, 1.0, 0.5, 0.5]], np.float32)
    s = E.StreamingTailStats(2, 4, [], sweep_k1=[])
    s.update(u)
    (order,) = _pick(s.finalize(), "mohammadi_order")
    assert order["k1"] == 4
    assert order["alpha"] == pytest.approx(E.mohammadi_order_alpha(u.reshape(-1), 4, k=1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("exclude_zeros", [True, False])
def test_first_bounds_from_column_extremes_keep_every_order_statistic(
    exclude_zeros, device
) -> None:
    """M = 5,000 columns, at least as many as the order estimate keeps (K1 = 256, k = 19:
    4,864 values) and Hill keeps: the first piece's bounds then come from the columns'
    smallest and largest values (zeros in whole columns and scattered), and the order
    and Hill estimates equal the in-memory ones, whatever the chunking."""
    rng = np.random.default_rng(99)
    u = E.sample_sas(1.5, (20, 5000), rng).astype(np.float32)
    u[:, :40] = 0.0
    u[rng.random(u.shape) < 0.01] = 0.0
    for chunk in (20, 3):
        s = E.StreamingTailStats(
            20, 5000, [], exclude_zeros=exclude_zeros, sweep_k1=[], device=device
        )
        assert s._order_x.keep <= 5000 and s._scopes[0].hill.keep <= 5000
        for i in range(0, 20, chunk):
            s.update(u[i : i + chunk])
        rows = s.finalize()
        _check_pooled_rows(u, rows, exclude_zeros)
        (hill,) = _pick(rows, "hill")
        x = _values(u.reshape(-1), exclude_zeros)
        assert hill["alpha"] == pytest.approx(E.hill_alpha(x, E.default_hill_k(x.size)))


class _OnDevice(torch.Tensor):
    """A CPU tensor that behaves as one on a GPU would towards the host: numpy cannot read it
    (``__array__``, ``numpy()`` raise) and a torch operation that mixes it with a numpy array
    or with a host tensor of one or more dimensions raises, except copying and indexing,
    which torch allows across devices. ``cpu()`` gives a plain host tensor (an explicit
    copy); whatever else an operation returns stays "on the device"."""

    def __array__(self, *args, **kwargs):
        raise TypeError("numpy read a device tensor (on a GPU: can't convert cuda:0 to numpy)")

    def numpy(self, *args, **kwargs):
        raise TypeError("numpy() of a device tensor without cpu() first")

    @classmethod
    def _refuse_mixing(cls, func, operands) -> None:
        if func in (torch.Tensor.copy_, torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            return
        for x in [*operands, *(y for a in operands if isinstance(a, (tuple, list)) for y in a)]:
            host = isinstance(x, torch.Tensor) and not isinstance(x, cls) and x.dim() > 0
            if isinstance(x, np.ndarray) or host:
                raise TypeError(f"{func.__name__} mixes a device tensor with a host array")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        cls._refuse_mixing(func, [*args, *kwargs.values()])
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        if getattr(func, "__name__", "") == "cpu":  # on the CPU the same tensor: unwrap it
            return out.as_subclass(torch.Tensor)
        if isinstance(out, tuple):
            return tuple(o.as_subclass(cls) if isinstance(o, torch.Tensor) else o for o in out)
        return out.as_subclass(cls) if isinstance(out, torch.Tensor) else out


@pytest.mark.parametrize(
    "layers, options",
    [
        (LAYERS, {"max_piece_values": 300}),
        ([("fc1", 0, 33), ("fc2", 33, M)], {"exclude_zeros": False, "sweep_k1": [16, 32]}),
    ],
)
def test_device_path_hands_no_device_tensor_to_numpy(noise, monkeypatch, layers, options):
    """With a device, the estimators never let numpy read a tensor of that device nor mix it
    with host arrays in a torch operation (which a GPU refuses, while the CPU tests of the
    torch path would pass): rows, per-column state and the ladder's buffers are made
    "device" tensors that refuse both, and the estimates equal the host engine's."""
    from sgdtail import torch_kernels

    def on_device(self, a):
        return torch.from_numpy(np.array(a)).as_subclass(_OnDevice)

    def rows(self, r):
        return torch.as_tensor(r).detach().to(torch.float32).clone().as_subclass(_OnDevice)

    want = _stream(noise, 7, layers, **options)
    buffer = torch_kernels.buffer
    monkeypatch.setattr(E.StreamingTailStats, "_on_device", on_device)
    monkeypatch.setattr(E.StreamingTailStats, "_rows", rows)
    monkeypatch.setattr(torch_kernels, "buffer", lambda *a: buffer(*a).as_subclass(_OnDevice))
    with pytest.raises(TypeError, match="numpy read a device tensor"):
        np.log(rows(None, noise[:2]))  # the harness does refuse
    got = _stream(noise, 7, layers, device="cpu", **options)
    assert len(got) == len(want) > 10
    for a, b in zip(got, want, strict=True):
        for key in ("alpha", "ci_low", "ci_high", "q25", "q75"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, nan_ok=True), (a, key)


def test_result_rows_have_every_column_typed_and_refuse_unknown_ones() -> None:
    """A result row holds every column (defaults where none is given, numpy numbers cast to
    plain ones); a column name that is not one of them is refused by name."""
    row = E._row("hill", "fc1", alpha=np.float32(1.5), k1=np.int64(8))
    assert list(row) == list(E._ROW) and math.isnan(row["ci_low"]) and row["n_values"] == 0
    assert (row["estimator"], row["scope"], row["order"], row["alpha"], row["k1"]) == (
        "hill", "fc1", "natural", 1.5, 8
    )  # fmt: skip
    assert type(row["alpha"]) is float and type(row["k1"]) is int
    with pytest.raises(TypeError, match=r"_row\(\) got unknown columns \['bogus', 'n'\]"):
        E._row("hill", "fc1", n=1, bogus=2)
