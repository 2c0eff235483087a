"""The results page: trends and levels beside the papers' directions, on synthetic tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_claims import make_tables, run

from sgdtail import claims as C
from sgdtail import results as R


def measurements(alpha, runs=None):
    runs = runs or [run(width=w, seed=s) for w in (16, 64, 256) for s in (0, 1, 2)]
    summary, estimates, runs_table = make_tables(runs, alpha=alpha)
    return C.alpha_measurements(summary, estimates, split="train"), runs_table


@pytest.mark.parametrize(
    "effect, agreement",
    [(-0.05, "agrees"), (+0.05, "disagrees"), (0.0, "no clear trend")],
)
def test_a_width_trend_agrees_disagrees_or_is_unclear(effect, agreement):
    noise = {0: 0.004, 1: -0.004, 2: 0.0}

    def alpha(r, step):
        return 1.4 + effect * math.log2(r["width"] / 16) + noise[r["seed"]]

    m, _ = measurements(alpha)
    finding = next(f for f in R.FINDINGS if f.key == "alpha_vs_width")
    row = R.trend_row(finding, m, C.Thresholds())
    assert row["agreement"] == agreement, row
    t = R.trend(R.last_alphas(m, "reference"), "width", 2.0)
    assert t["slope"] == pytest.approx(effect, abs=1e-9) and t["sweeps"] == 1 and t["runs"] == 9


def test_trend_agreement_follows_the_interval():
    assert R.trend_agreement({"slope": 0.1, "low": 0.05, "high": 0.15}, "rises") == "agrees"
    assert R.trend_agreement({"slope": 0.1, "low": 0.05, "high": 0.15}, "falls") == "disagrees"
    assert (
        R.trend_agreement({"slope": 0.1, "low": -0.05, "high": 0.15}, "falls") == "no clear trend"
    )
    assert R.trend_agreement(
        {"slope": math.nan, "low": math.nan, "high": math.nan}, "falls"
    ).startswith("not measured")


def test_alexnet_level_below_2_and_untrained_runs_left_out():
    runs = [run(arch="alexnet", width=w, depth=8, seed=s) for w in (16, 32) for s in (0, 1)]
    summary, estimates, runs_table = make_tables(runs, alpha=1.1, status={3: "not_trained"})
    m = C.alpha_measurements(summary, estimates, split="train")
    finding = next(f for f in R.FINDINGS if f.key == "alpha_vs_filters")
    row = R.level_row(finding, m, C.Thresholds())
    assert row["agreement"] == "agrees" and row["measured"].startswith("3 of 3 runs"), row
    high = make_tables(runs, alpha=1.98)
    m = C.alpha_measurements(high[0], high[1], split="train")
    assert R.level_row(finding, m, C.Thresholds())["agreement"] == "disagrees"


@pytest.mark.parametrize(
    ("alpha", "half_width", "n_runs", "agreement"),
    [
        (1.88, 0.05, 4, "undecided (too much spread (4 of 4 runs undecided))"),  # straddle 1.9
        (1.1, 0.05, 2, "undecided (too few runs (2 < min_runs 3))"),
        (1.95, 0.01, 4, "disagrees"),
    ],
)
def test_alexnet_level_follows_c1s_rule(alpha, half_width, n_runs, agreement):
    """The results page's AlexNet level row is C1's rule on the AlexNet runs: intervals that
    straddle the threshold are undecided (not a disagreement), too few runs decide nothing."""
    runs = [run(arch="alexnet", width=16, depth=8, seed=s) for s in range(n_runs)]
    summary, estimates, _ = make_tables(runs, alpha=alpha, half_width=half_width)
    m = C.alpha_measurements(summary, estimates, split="train")
    finding = next(f for f in R.FINDINGS if f.key == "alpha_vs_filters")
    row = R.level_row(finding, m, C.Thresholds())
    assert row["agreement"] == agreement, row


def test_results_page_has_a_row_per_figure_and_claim():
    m, runs_table = measurements(lambda r, s: 1.4 - 0.03 * math.log2(r["width"] / 16))
    claims = pd.DataFrame(
        [
            {
                "claim": "C1",
                "estimator": "robust",
                "statistic": "share",
                "value": 1.0,
                "ci_low": 0.7,
                "ci_high": 1.0,
                "verdict": "supported",
                "reason": "",
            },
            {
                "claim": "C1",
                "estimator": "per_coordinate",
                "statistic": "share",
                "value": 0.0,
                "ci_low": 0.0,
                "ci_high": 0.3,
                "verdict": "not supported",
                "reason": "",
            },
            {
                "claim": "C4",
                "estimator": "n/a",
                "statistic": "elasticity",
                "value": 0.04,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "verdict": "inconclusive",
                "reason": "not in the small-noise regime",
            },
        ]
    )
    validation = pd.DataFrame(
        {
            "case": "sas",
            "estimator": "mohammadi_robust",
            "size": 1000,
            "true_alpha": [1.0, 2.0],
            "alpha_hat": [1.02, 1.97],
        }
    )
    table = R.results_table(m, claims, validation, C.Thresholds(), tolerance=0.1)
    assert len(table) == len(R.FINDINGS) + 2
    by = table.set_index("figure or claim")["agree?"]
    assert by["C1"] == "agrees; other estimators differ: per_coordinate"
    assert by["C4"] == "undecided (not in the small-noise regime)"
    assert by.filter(like="alpha_vs_width").iloc[0] == "agrees"
    assert by.filter(like="estimator_validation").iloc[0] == "agrees"
    text = R.results_markdown(table, "default", "9 runs in the grid; none excluded.")
    assert text.count("\n|") == len(table) + 2 and "grid=default" in text
