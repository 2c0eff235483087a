"""Tidy tables from the per-run files.

- ``runs``: one row per run: every grid axis, status (``not_trained`` when the final
  training accuracy is below the trained gate), steps done, divergence step,
  parameter count, time, final accuracies.
- ``estimates``: one row per run × checkpoint × split × noise × estimator (× scope, block
  size and order where they apply): every row the estimators produced.
- ``summary``: one row per run × checkpoint × split × noise, the main estimates side by
  side with the accuracies at that checkpoint; what the figures draw.

``noise`` (:data:`sgdtail.grid.NOISE_KINDS`) is ``gradient`` for the gradient noise, which
every run has and the figures and claims use (:func:`gradient_rows`), and ``preconditioned``
for the noise an adaptive optimizer steps with.
- ``norms``: the noise norms ‖U_p‖ per run × checkpoint × split × minibatch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sgdtail.estimators import robust_k1_values
from sgdtail.grid import AXES, GRADIENT_NOISE, typed_axes
from sgdtail.validation import sweep_slope

#: The α̂ columns of ``summary.csv`` that the figures and claims put side by side, by the
#: short name the claims use, in the figures' order: the papers' estimator, the robust one
#: and the per-coordinate median.
ALPHA_COLUMNS: dict[str, str] = {
    "reference": "alpha_reference",
    "robust": "alpha_robust",
    "per_coordinate": "alpha_per_coordinate_median",
}

USABLE_STATUSES: tuple[str, ...] = ("completed", "converged")
"""Run statuses whose noise enters α statistics, figures and claims."""

EXCLUDED_STATUSES: dict[str, str] = {
    "diverged": "diverged (loss not finite)",
    "not_trained": "did not train (final training accuracy below claims.min_train_accuracy)",
}
"""Every other status a run can have, and why it is left out."""


def usable(status: pd.Series) -> pd.Series:
    """True where a run's status is one of :data:`USABLE_STATUSES`."""
    return status.isin(USABLE_STATUSES)


def run_status(info_status: str, final_train_accuracy: float, min_train_accuracy: float) -> str:
    """Status of a run in the tables: ``run.json``'s status, or ``not_trained`` when a run that
    did not diverge ended below ``min_train_accuracy`` (or has no training accuracy)."""
    if info_status == "diverged":
        return info_status
    if not final_train_accuracy >= min_train_accuracy:  # NaN counts as not trained
        return "not_trained"
    return info_status


def gradient_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the gradient noise of a tail-index table (``estimates`` or ``summary``;
    every row of a table without a ``noise`` column)."""
    if "noise" not in df.columns:
        return df
    return df[df["noise"] == GRADIENT_NOISE]


def with_noise_column(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``noise`` column, ``gradient`` in the rows without one (a tail-index
    file written before the column existed holds the gradient noise only)."""
    return df.assign(noise=df["noise"].fillna(GRADIENT_NOISE) if "noise" in df else GRADIENT_NOISE)


def read_with_axes(axes: Sequence[dict], paths: Sequence[str]) -> pd.DataFrame:
    """Concatenate per-run CSV files, adding each run's grid axes as columns."""
    frames = []
    for ax, path in zip(axes, paths, strict=True):
        df = pd.read_csv(path)
        # a per-row column named like an axis (checkpoint_metrics' lr, the learning rate in
        # force at that step under lr_schedule: halve) is kept as <name>_current
        df = df.rename(columns={a: f"{a}_current" for a in AXES if a in df.columns})
        for axis, value in typed_axes(ax).items():
            df[axis] = value
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def runs_table(
    axes: Sequence[dict],
    infos: Sequence[str],
    metrics: pd.DataFrame,
    min_train_accuracy: float = 0.0,
) -> pd.DataFrame:
    """One row per run (see module docstring); ``metrics`` from :func:`read_with_axes`.

    ``status`` is :func:`run_status` of ``run.json``'s status and the final training
    accuracy; ``trained_status`` keeps ``run.json``'s own."""
    last = metrics.sort_values("step").groupby(list(AXES)).tail(1).set_index(list(AXES))
    rows = []
    for ax, info_path in zip(axes, infos, strict=True):
        with open(info_path) as fh:
            info = json.load(fh)
        values = typed_axes(ax)
        key = tuple(values[a] for a in AXES)
        final = last.loc[key] if key in last.index else {}
        train_accuracy = final.get("train_accuracy", np.nan)
        rows.append(
            {
                **values,
                "status": run_status(info["status"], train_accuracy, min_train_accuracy),
                "trained_status": info["status"],
                "steps_done": info["steps_done"],
                "diverged_at": info["diverged_at"],
                "n_parameters": info["n_parameters"],
                "train_seconds": info["seconds"],
                "steps_per_second": info["steps_per_second"],
                "final_train_accuracy": train_accuracy,
                "final_test_accuracy": final.get("test_accuracy", np.nan),
            }
        )
    return pd.DataFrame(rows)


def estimates_table(axes: Sequence[dict], estimates: Sequence[str]) -> pd.DataFrame:
    """Every estimator row of every run, with the grid axes as columns (``noise`` is
    ``gradient`` in the rows of a file written without the column)."""
    df = with_noise_column(read_with_axes(axes, estimates))
    first = list(AXES) + ["step", "split", "noise", "estimator", "scope", "order", "k1"]
    return df[first + [c for c in df.columns if c not in first]]


def _pick(est: pd.DataFrame, estimator: str, scope: str = "pooled", order: str = "natural"):
    sel = est[(est.estimator == estimator) & (est.scope == scope) & (est.order == order)]
    return sel.set_index(list(AXES) + ["step", "split", "noise"])


def summary_table(
    estimates: pd.DataFrame,
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    min_pooled_values: int = 0,
    min_per_coordinate_minibatches: int = 0,
) -> pd.DataFrame:
    """Run × checkpoint × split × noise: main α estimates, block-sweep slope and accuracies.

    ``pooled_enough``: the pooled estimators saw at least ``min_pooled_values``
    values; ``per_coordinate_enough``: the per-coordinate estimator saw at least
    ``min_per_coordinate_minibatches`` minibatches (config ``estimators``).
    Measurements without enough are kept in the table and flagged."""
    keys = list(AXES) + ["step", "split", "noise"]
    estimates = with_noise_column(estimates)
    robust = _pick(estimates, "mohammadi_robust")
    out = pd.DataFrame(index=robust.index)
    out[ALPHA_COLUMNS["robust"]] = robust["alpha"]
    out["alpha_robust_ci_low"] = robust["ci_low"]
    out["alpha_robust_ci_high"] = robust["ci_high"]
    out["zero_fraction"] = robust["zero_fraction"]
    out["n_values"] = robust["n_values"]
    out["n_minibatches"] = robust["n_minibatches"]
    out["pooled_enough"] = robust["n_values"] >= min_pooled_values
    out["per_coordinate_enough"] = robust["n_minibatches"] >= min_per_coordinate_minibatches
    out["measure_seconds"] = robust["seconds"]
    out[ALPHA_COLUMNS["reference"]] = _pick(estimates, "mohammadi_reference")["alpha"]
    out["alpha_hill"] = _pick(estimates, "hill")["alpha"]
    out["alpha_order"] = _pick(estimates, "mohammadi_order")["alpha"]  # NaN where not measured
    per_coord = _pick(estimates, "per_coordinate")
    out[ALPHA_COLUMNS["per_coordinate"]] = per_coord["alpha"]
    out["alpha_per_coordinate_q25"] = per_coord["q25"]
    out["alpha_per_coordinate_q75"] = per_coord["q75"]
    for order in ("natural", "shuffled"):
        sweep = estimates[
            (estimates.estimator == "block_sweep")
            & (estimates.scope == "pooled")
            & (estimates.order == order)
        ]
        slopes = {  # NaN for measurements without a sweep in this order (none at all included)
            key: sweep_slope(g["k1"].to_numpy(), g["alpha"].to_numpy())
            for key, g in sweep.groupby(keys)
        }
        out[f"sweep_slope_{order}"] = pd.Series(slopes, dtype=float).reindex(out.index)
    out = out.reset_index()

    out = out.merge(metrics, on=list(AXES) + ["step"], how="left")
    out = out.merge(runs[list(AXES) + ["status", "n_parameters"]], on=list(AXES), how="left")
    return out.sort_values(keys).reset_index(drop=True)


def excluded_runs_note(runs: pd.DataFrame, min_train_accuracy: float | None = None) -> str:
    """How many runs the statistics use, and which were excluded and why.

    Diverged runs are listed with the step they diverged at, ``not_trained``
    runs with their final training accuracy (column ``final_train_accuracy``)
    against ``min_train_accuracy`` (config ``claims.min_train_accuracy``).
    """
    diverged = runs[runs["status"] == "diverged"]
    not_trained = runs[runs["status"] == "not_trained"]
    converged = int((runs["status"] == "converged").sum())
    reasons = []
    if len(diverged):
        steps = ", ".join(str(int(s)) for s in diverged["diverged_at"] if np.isfinite(s))
        reasons.append(f"{len(diverged)} diverged (loss not finite; at steps {steps})")
    if len(not_trained):
        text = f"{len(not_trained)} did not train"
        if "final_train_accuracy" in not_trained.columns:
            accs = ", ".join(
                f"{a:.0%}" if np.isfinite(a) else "n/a"
                for a in sorted(not_trained["final_train_accuracy"])
            )
            limit = (
                f" < claims.min_train_accuracy {min_train_accuracy:.0%}"
                if min_train_accuracy is not None
                else ""
            )
            text += f" (final training accuracy {accs}{limit})"
        reasons.append(text)
    text = f"{len(runs)} runs in the grid; "
    if reasons:
        n = len(diverged) + len(not_trained)
        text += f"{n} excluded from every statistic: " + "; ".join(reasons)
    else:
        text += "none excluded"
    if converged:
        text += (
            f"; {converged} stopped early at training.stop_at_train_accuracy (kept: their "
            "last checkpoint is the one used)"
        )
    return text + "."


def sweep_spread(
    sweep: pd.DataFrame, keys: Sequence[str], factors: Sequence[float]
) -> pd.DataFrame:
    """How far the members of the robust α̂ lie below and above their median, per ``keys``.

    The robust α̂ of K values is the median of the pooled estimator at the block sizes
    :func:`sgdtail.estimators.robust_k1_values` (K, ``factors``); its batch-means interval
    belongs to the member at :func:`sgdtail.estimators.central_k1` (K) only. ``sweep``: the
    pooled natural-order block-sweep rows (the same values in the same order), columns
    ``keys``, ``k1``, ``alpha`` and ``k`` (= K). The members are read off the sweep by linear
    interpolation in log K1. Columns: ``keys``, ``k1_down`` (median member − smallest member),
    ``k1_up`` (largest member − median member). Groups whose sweep does not reach from the
    smallest to the largest member, or whose K is below 1, are left out.
    """
    keys = list(keys)
    rows = []
    sweep = sweep[np.isfinite(sweep["alpha"])].sort_values([*keys, "k1"], kind="stable")
    for key, g in sweep.groupby(keys, sort=False):
        k = float(g["k"].iloc[0])
        if not (np.isfinite(k) and k >= 1):
            continue
        members = np.log(robust_k1_values(int(k), factors))
        log_k1 = np.log(g["k1"].to_numpy(dtype=np.float64))
        if log_k1[0] > members[0] or log_k1[-1] < members[-1]:
            continue
        a = np.interp(members, log_k1, g["alpha"].to_numpy(dtype=np.float64))
        mid = float(np.median(a))
        rows.append((*key, mid - float(a.min()), float(a.max()) - mid))
    empty = sweep[keys].iloc[:0].assign(k1_down=[], k1_up=[])
    if not rows:
        return empty
    return pd.DataFrame(rows, columns=list(empty.columns)).astype(empty.dtypes.to_dict())
