"""Tests of sgdtail.claims: every verdict of every claim from small synthetic tables."""

from __future__ import annotations

import math
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
    """A run's axes: MNIST FCN 16×2, b = 500, η = 0.1, cross-entropy, seed 0, unless given."""
    base = {"dataset": "mnist", "arch": "fcn", "width": 16, "depth": 2, "batch_size": 500,
            "lr": 0.1, "loss": "cross_entropy", "seed": 0}
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
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary, estimates, runs) tables shaped like sgdtail.aggregate's.

    ``alpha(run, step)`` gives the robust α̂ (interval ± ``half_width``); ``other``
    overrides the reference / per-coordinate α̂ (default: the robust one);
    ``sweep(run, step, k1)`` the block-sweep α̂ (default: the robust one, both
    orders); ``accuracy(run, step)`` the test accuracy (default: a sharp rise
    between steps 1 and 4); ``status`` maps run index -> status.
    """
    alpha_fn = alpha if callable(alpha) else (lambda r, s: alpha)
    acc_fn = accuracy or (lambda r, s: 0.1 if s <= 1 else 0.9)
    other = other or {}
    status = status or {}
    summary_rows, estimate_rows, run_rows = [], [], []
    for i, r in enumerate(runs):
        st = status.get(i, "completed")
        run_rows.append({**r, "status": st, "diverged_at": 50 if st == "diverged" else math.nan,
                         "n_parameters": 1000})
        for step in steps:
            a = alpha_fn(r, step)
            for split in ("train", "test"):
                summary_rows.append({
                    **r, "step": step, "split": split, "alpha_robust": a,
                    "alpha_robust_ci_low": a - half_width, "alpha_robust_ci_high": a + half_width,
                    "alpha_reference": other.get("reference", alpha_fn)(r, step),
                    "alpha_per_coordinate_median": other.get("per_coordinate", alpha_fn)(r, step),
                    "n_minibatches": 20, "zero_fraction": 0.0, "test_accuracy": acc_fn(r, step),
                    "train_accuracy": acc_fn(r, step), "status": st, "n_parameters": 1000,
                })
                for order in ("natural", "shuffled"):
                    for k1 in SWEEP_K1:
                        estimate_rows.append({
                            **r, "step": step, "split": split, "estimator": "block_sweep",
                            "scope": "pooled", "order": order, "k1": k1,
                            "alpha": sweep(r, step, k1) if sweep else a,
                        })
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
        widths(), alpha=1.88, half_width=0.1,
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


def test_diverged_runs_are_excluded_and_reported():
    runs = widths(4)
    alpha = lambda r, s: 2.0 if r["width"] == 128 else 1.3  # noqa: E731
    summary, estimates, runs_table = make_tables(runs, alpha=alpha, status={3: "diverged"})
    table = judge(summary, estimates)
    assert table.loc[("C1", "robust"), "verdict"] == "supported"
    assert table.loc[("C1", "robust"), "n_runs"] == 3
    note = C.excluded_runs_note(runs_table)
    assert "4 runs" in note and "1 excluded" in note and "diverged" in note and "50" in note


# ----------------------------------------------------------------------------
# C2
# ----------------------------------------------------------------------------


def c2_runs() -> list[dict]:
    size = [run(width=w) for w in (16, 32, 64, 128)] + [run(width=64, depth=d) for d in (3, 4)]
    batch = [run(width=64, batch_size=b) for b in (100, 250, 1000)]
    return size + batch


def c2_alpha(width_effect: float, batch_effect: float) -> AlphaFn:
    def alpha(r: dict, step: int) -> float:
        return (1.2 + width_effect * math.log2(r["width"] / 16) / 3
                + batch_effect * math.log10(r["batch_size"] / 100))

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
    assert "steepest test-accuracy rise at 100.0%" in row.detail


def test_c3_inconclusive_when_alpha_never_changes_beyond_noise():
    summary, estimates, _ = make_tables(widths(), alpha=lambda r, s: 1.3 + 0.001 * (s % 2))
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "inconclusive" and "too much spread" in row.reason


def test_c3_inconclusive_with_too_few_checkpoints():
    summary, estimates, _ = make_tables(widths(), alpha=early_alpha_drop, steps=(0, 1, 1000))
    row = judge(summary, estimates).loc[("C3", "robust")]
    assert row.verdict == "inconclusive" and "too few checkpoints" in row.reason


def test_steepest_interval_ignores_changes_within_noise_and_falls():
    steps = np.array([0, 1, 4, 16])
    values = np.array([0.1, 0.11, 0.5, 0.2])
    noise = np.full(4, 0.01)
    assert C.steepest_interval(steps, values, noise, z=2.0, rise_only=True) == 1
    assert C.steepest_interval(steps, values, noise, z=2.0, rise_only=False) == 1
    assert C.steepest_interval(steps, values, np.full(4, 1.0), z=2.0, rise_only=False) == -1


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


def external(claim: str, verdict: str, **kw) -> dict:
    return {"claim": claim, "statistic": "max |slope| of exit time", "value": 0.5, "ci_low": 0.4,
            "ci_high": 0.6, "threshold": "< 1", "verdict": verdict, "detail": "from dynamics",
            **kw}


def test_external_claims_are_merged_with_their_verdicts():
    ext = C.external_claims([external("C4", "supported"),
                             external("C6", "inconclusive (too few runs)")])
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


def test_markdown_table_has_every_estimator_column_and_the_rules():
    summary, estimates, runs_table = make_tables(widths(), alpha=early_alpha_drop)
    long = C.evaluate_claims(summary, estimates, C.Thresholds())
    text = C.claims_markdown(long, runs_table, C.Thresholds())
    for label in C.ESTIMATOR_CHOICES.values():
        assert label in text
    assert "5 runs in the grid; none excluded" in text
    assert "## Rules and thresholds" in text
    html = C.claims_html(text, C.wide_table(long))
    assert html.startswith("<!DOCTYPE html>") and "<table" in html


def test_config_claims_section_matches_the_thresholds():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    th = C.Thresholds.from_config(config["claims"])
    assert th == C.Thresholds()  # the dataclass defaults document the config's values
    with pytest.raises(ValueError, match="unknown claims keys"):
        C.Thresholds.from_config({"c1_alpha": 1.9})


def test_claim_rows_cover_every_claim_and_estimator():
    summary, estimates, _ = make_tables(widths())
    long = C.evaluate_claims(summary, estimates, C.Thresholds())
    assert list(long.columns) == C.COLUMNS
    assert len(long) == 3 * len(C.ESTIMATOR_CHOICES)
    assert set(long.verdict) <= set(C.VERDICTS)
    assert set(AXES) <= set(summary.columns)
