"""The aggregation: the trained gate and the sample-size flags of the tidy tables."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sgdtail import aggregate as A
from sgdtail.grid import AXES
from sgdtail.plots import enough_samples, too_few_note

AXES_OF = [
    dict(dataset="mnist", arch="fcn", width=str(w), depth="2", batch_size="50", lr="0.1",
         loss="cross_entropy", seed="0")
    for w in (4, 8, 16, 32)
]


@pytest.mark.parametrize(
    "info, accuracy, expected",
    [
        ("completed", 0.93, "completed"),
        ("converged", 1.0, "converged"),
        ("completed", 0.12, "not_trained"),
        ("completed", 0.5, "completed"),  # the gate is inclusive
        ("completed", math.nan, "not_trained"),
        ("diverged", 0.12, "diverged"),  # divergence is the reason given, not the accuracy
    ],
)
def test_run_status(info, accuracy, expected):
    assert A.run_status(info, accuracy, 0.5) == expected


def tables(tmp_path, min_train_accuracy=0.5):
    infos, metric_rows = [], []
    statuses = ["completed", "completed", "diverged", "converged"]
    accuracies = [0.95, 0.2, math.nan, 1.0]
    for ax, st, acc in zip(AXES_OF, statuses, accuracies, strict=True):
        path = tmp_path / f"w{ax['width']}.json"
        diverged_at = 10 if st == "diverged" else None
        path.write_text(json.dumps({"status": st, "steps_done": 20, "diverged_at": diverged_at,
                                    "n_parameters": 100, "seconds": 1.0,
                                    "steps_per_second": 20.0}))
        infos.append(str(path))
        for step in (0, 20):
            metric_rows.append({**A.typed_axes(ax), "step": step, "train_accuracy": acc,
                                "test_accuracy": acc})
    metrics = pd.DataFrame(metric_rows)
    return A.runs_table(AXES_OF, infos, metrics, min_train_accuracy), metrics


def test_runs_below_the_gate_are_not_trained_and_keep_their_own_status(tmp_path):
    runs, _ = tables(tmp_path)
    assert list(runs.status) == ["completed", "not_trained", "diverged", "converged"]
    assert list(runs.trained_status) == ["completed", "completed", "diverged", "converged"]
    assert list(A.usable(runs.status)) == [True, False, False, True]
    note = A.excluded_runs_note(runs, 0.5)
    assert note.startswith("4 runs in the grid; 2 excluded from every statistic: 1 diverged")
    assert "1 did not train (final training accuracy 20% < claims.min_train_accuracy 50%)" in note
    assert "at steps 10" in note and "1 stopped early" in note, note
    runs, _ = tables(tmp_path, min_train_accuracy=0.0)
    assert list(runs.status) == ["completed", "completed", "diverged", "converged"]
    assert A.excluded_runs_note(runs).startswith("4 runs in the grid; 1 excluded from every "
                                                 "statistic: 1 diverged")


def test_summary_flags_estimates_from_too_few_samples(tmp_path):
    runs, metrics = tables(tmp_path)
    rows = []
    for ax, (n_values, p) in zip(AXES_OF, [(50_000, 100), (50_000, 4), (500, 100),
                                           (50_000, 20)], strict=True):
        for est in ("mohammadi_robust", "mohammadi_reference", "hill", "per_coordinate"):
            rows.append({**A.typed_axes(ax), "step": 20, "split": "train", "estimator": est,
                         "scope": "pooled", "order": "natural", "k1": math.nan, "alpha": 1.5,
                         "ci_low": 1.4, "ci_high": 1.6, "zero_fraction": 0.0,
                         "n_values": n_values, "n_minibatches": p, "seconds": 0.1,
                         "q25": 1.4, "q75": 1.6})
        for order in ("natural", "shuffled"):
            for k1 in (10, 100):
                rows.append({**A.typed_axes(ax), "step": 20, "split": "train",
                             "estimator": "block_sweep", "scope": "pooled", "order": order,
                             "k1": k1, "alpha": 1.5})
    summary = A.summary_table(pd.DataFrame(rows), runs, metrics, min_pooled_values=10_000,
                              min_per_coordinate_minibatches=50)
    assert list(summary.pooled_enough) == [True, True, False, True]
    assert list(summary.per_coordinate_enough) == [True, False, True, False]
    shown = enough_samples(summary)
    assert shown.alpha_per_coordinate_median.isna().tolist() == [False, True, False, True]
    assert shown.alpha_robust.isna().tolist() == [False, False, True, False]
    assert "left out of 2 measurement(s) (too few minibatches: P = 4, 20)" in too_few_note(summary)
    assert set(AXES) <= set(summary.columns)
