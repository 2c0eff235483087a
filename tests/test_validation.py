"""Tests of sgdtail.validation (small sizes, fast)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sgdtail import validation as V


@pytest.fixture(scope="module")
def table():
    return V.validate_estimators(alphas=[1.0, 1.8], sizes=[20_000], repeats=2, seed=3)


def test_validate_estimators_layout(table) -> None:
    assert list(table.columns) == ["case", "true_alpha", "size", "repeat", "estimator", "alpha_hat"]
    assert set(table.case) == {"sas", *V.PITFALL_CASES}
    sas = table[table.case == "sas"]
    names = {
        "mohammadi_reference",
        "mohammadi_robust",
        "mohammadi_sqrtK",
        "mohammadi_order",
        "hill",
    }
    assert set(sas.estimator) == names
    assert len(sas) == 2 * 2 * 5  # alphas x repeats x estimators
    zeros = table[table.case == "gauss_zeros_10pct"]
    assert "mohammadi_robust_zeros_kept" in set(zeros.estimator)
    assert (table[table.case != "sas"].true_alpha == 2.0).all()
    assert np.isfinite(table.alpha_hat).all()


def test_validate_estimators_values_and_pitfalls(table) -> None:
    def est(case, name, alpha=None):
        rows = table[(table.case == case) & (table.estimator == name)]
        if alpha is not None:
            rows = rows[rows.true_alpha == alpha]
        return rows.alpha_hat.mean()

    for alpha in (1.0, 1.8):
        assert abs(est("sas", "mohammadi_robust", alpha) - alpha) < 0.15
        assert abs(est("sas", "mohammadi_order", alpha) - alpha) < 0.3  # 4 of 156 blocks
    assert abs(est("gauss_zeros_10pct", "mohammadi_reference") - 1.0) < 0.2
    assert abs(est("gauss_zeros_10pct", "mohammadi_robust") - 2.0) < 0.15
    assert abs(est("gauss_zeros_10pct", "mohammadi_sqrtK") - 2.0) < 0.15
    assert est("gauss_zeros_10pct", "mohammadi_robust_zeros_kept") < 1.5
    assert est("gauss_lognormal_scales", "mohammadi_robust") < 1.85


def test_validate_estimators_reproducible_and_order_free(table) -> None:
    again = V.validate_estimators(alphas=[1.8], sizes=[20_000], repeats=1, seed=3)
    a = table[(table.true_alpha == 1.8) & (table.repeat == 0) & (table.case == "sas")]
    b = again[again.case == "sas"]
    assert np.array_equal(a.alpha_hat.to_numpy(), b.alpha_hat.to_numpy())
    with pytest.raises(ValueError, match="repeats"):
        V.validate_estimators([1.5], [1000], 0)


def test_synthetic_block_sweep() -> None:
    df = V.synthetic_block_sweep(50_000, 1.4, [10, 100, 1000, 10**6], seed=1)
    assert list(df.columns) == ["case", "true_alpha", "size", "k1", "alpha_hat"]
    assert set(df.case) == {"sas", "gaussian"}
    sas = df[df.case == "sas"]
    assert math.isnan(sas.alpha_hat.iloc[-1])
    assert np.all(np.abs(sas.alpha_hat.iloc[:3] - 1.4) < 0.15)
    gauss = df[df.case == "gaussian"]
    assert np.all(np.abs(gauss.alpha_hat.iloc[:3] - 2.0) < 0.2)
    assert abs(V.sweep_slope(sas.k1, sas.alpha_hat)) < 0.1


def test_sweep_slope() -> None:
    k1 = np.array([10, 100, 1000, 10000])
    assert V.sweep_slope(k1, 1.0 + 0.1 * np.log10(k1)) == pytest.approx(0.1)
    assert V.sweep_slope(k1, [1.5, 1.5, np.nan, 1.5]) == pytest.approx(0.0)
    assert math.isnan(V.sweep_slope([10, 10], [1.0, 2.0]))
    with pytest.raises(ValueError, match="same length"):
        V.sweep_slope([10, 100], [1.0])


def test_gaussian_readings_find_the_smallest_reliable_sizes():
    readings = V.gaussian_readings([1000, 100_000], [4, 100], coordinates=2000, repeats=2)
    assert set(readings.estimator) == {
        "mohammadi_reference",
        "mohammadi_robust",
        "hill",
        "per_coordinate_median",
    }
    assert len(readings) == 2 * (3 * 2 + 2)
    means = readings.groupby(["estimator", "size"])["alpha_hat"].mean()
    assert abs(means["mohammadi_robust", 100_000] - 2) < 0.05
    assert means["per_coordinate_median", 4] < 1.2  # K1 = 2 of 4 centred values: far from 2
    assert abs(means["per_coordinate_median", 100] - 2) < 0.1
    assert means["hill", 100_000] > 5  # Hill is not bounded by 2
    sizes = V.smallest_reliable_sizes(readings).set_index("estimator")["reliable_size"]
    assert sizes["per_coordinate_median"] == 100 and sizes["mohammadi_robust"] <= 100_000
    assert np.isnan(sizes["hill"])


def test_smallest_reliable_size_needs_every_larger_size_to_read_2():
    rows = [
        ("mohammadi_robust", n, a) for n, a in [(10, 2.0), (100, 1.7), (1000, 1.95), (10_000, 2.02)]
    ]
    readings = pd.DataFrame(
        [
            {"estimator": e, "kind": "pooled", "size": n, "repeat": 0, "alpha_hat": a}
            for e, n, a in rows
        ]
    )
    out = V.minimum_sample_table(readings, min_pooled_values=100, min_per_coordinate_minibatches=50)
    row = out.iloc[0]
    assert row.reliable_size == 1000  # 10 reads 2 by chance, 100 does not: 1000 and up
    assert not row.consistent  # configured 100 < 1000
    assert V.minimum_sample_table(readings, 1000, 50).iloc[0].consistent
    assert np.isnan(V.smallest_reliable_sizes(readings, tolerance=0.01).iloc[0].reliable_size)


def test_an_estimator_that_never_reads_2_is_not_consistent_with_any_minimum():
    readings = pd.DataFrame(
        [
            {
                "estimator": "per_coordinate_median",
                "kind": "per_coordinate",
                "size": p,
                "repeat": 0,
                "alpha_hat": 1.8,
            }
            for p in (4, 50, 600)
        ]
    )
    row = V.minimum_sample_table(readings, 10_000, 50).iloc[0]
    assert np.isnan(row.reliable_size) and not row.consistent
