"""Figures of claim C7 on networks: α̂ and the sharpness against η/b (sgdtail.eta_over_b).

Both draw one column per family (runs equal in every axis but η, b and the seed, with two or
more η/b) and one colour per batch size b, so that runs at the same η/b but different b (C7b)
sit above one another.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sgdtail.aggregate import excluded_runs_note, gradient_rows
from sgdtail.eta_over_b import RATIO, families, with_ratio
from sgdtail.plots import (
    ESTIMATOR_LABELS,
    GAUSSIAN_ALPHA,
    enough_samples,
    final_checkpoints,
    interval_bars,
    plain_log_axis,
    save_figure,
    set_style,
    suptitle,
    too_few_note,
)

_NO_FAMILY = (
    "no family of trained runs (equal in every axis but η, b and the seed) with two or more "
    "values of η/b; add runs of one network at several learning rates and batch sizes to the "
    "selected grid (and check their final training accuracy against claims.min_train_accuracy)"
)


def _colours(batches: list[int]) -> dict[int, tuple]:
    palette = sns.color_palette("viridis", len(batches))
    return dict(zip(batches, palette, strict=True))


def _legend(fig: Figure, colours: dict[int, tuple], extra: list[Line2D] = ()) -> None:
    handles = [Line2D([], [], color=c, marker="o", label=f"b = {b}") for b, c in colours.items()]
    fig.legend(
        handles=[*handles, *extra],
        title="batch size",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )


def _cell_means(rows: pd.DataFrame, column: str, geometric: bool) -> pd.DataFrame:
    """Per (b, η): η/b, the mean of ``column`` over seeds (geometric: of its log, as C7c fits
    log2 λ_max) and its range."""
    values = np.log(rows[column]) if geometric else rows[column]
    table = (
        rows.assign(value=values)
        .groupby(["batch_size", "lr"], sort=True)
        .agg(
            ratio=(RATIO, "first"),
            mean=("value", "mean"),
            low=(column, "min"),
            high=(column, "max"),
        )
        .reset_index()
        .sort_values(["batch_size", "ratio"])
    )
    return table.assign(mean=np.exp(table["mean"])) if geometric else table


def _draw_cells(
    ax: plt.Axes, rows: pd.DataFrame, column: str, colours: dict, geometric: bool = False
) -> None:
    """One line per batch size through its cells' means over seeds, bars: the seed range."""
    for b, cells in _cell_means(rows, column, geometric).groupby("batch_size", sort=True):
        ax.errorbar(
            cells["ratio"],
            cells["mean"],
            # never negative: a one-seed cell's geometric mean exp(log x) can differ from x by
            # rounding
            yerr=interval_bars(cells["mean"], cells["low"], cells["high"]),
            color=colours[b],
            marker="o",
            ms=4,
            capsize=2,
            lw=1.0,
        )
    plain_log_axis(ax, 10, rows[RATIO].unique())


def plot_alpha_vs_eta_over_b(
    summary: pd.DataFrame, runs: pd.DataFrame, pdf: str | Path, png: str | Path
) -> Figure:
    """α̂ of the training-set noise at each run's last checkpoint against η/b: rows the three
    estimators, columns the families; per batch size a line through the mean over seeds of
    each (η, b), bars the range over seeds. α = 2 dashed."""
    set_style()
    last = enough_samples(final_checkpoints(gradient_rows(summary)))
    fams = families(with_ratio(last))
    if not fams:
        raise ValueError(_NO_FAMILY)
    few = too_few_note(pd.concat([rows for _, rows in fams]))
    colours = _colours(sorted({int(b) for _, rows in fams for b in rows["batch_size"]}))
    fig, axes = plt.subplots(
        len(ESTIMATOR_LABELS),
        len(fams),
        figsize=(4.2 * len(fams) + 1.6, 2.6 * len(ESTIMATOR_LABELS)),
        sharex="col",
        sharey=True,
        squeeze=False,
    )
    for r, (column, label) in enumerate(ESTIMATOR_LABELS.items()):
        for c, (family, rows) in enumerate(fams):
            ax = axes[r, c]
            ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.8, ls="--")
            _draw_cells(ax, rows[np.isfinite(rows[column])], column, colours)
            ax.set_title(f"{family}\n{label}" if r == 0 else label, fontsize=9)
            ax.set_xlabel("η / b" if r == len(ESTIMATOR_LABELS) - 1 else "")
            ax.set_ylabel("tail index α̂" if c == 0 else "")
    _legend(fig, colours)
    n_seeds = int(
        max(rows.groupby(["lr", "batch_size"])["seed"].nunique().max() for _, rows in fams)
    )
    suptitle(
        fig,
        f"α̂ of the training-set gradient noise at each run's last checkpoint against η/b (points: "
        f"mean over up to {n_seeds} seeds, bars: their range); same η/b, different colours: C7b\n"
        f"{sum(len(rows) for _, rows in fams)} runs drawn; {excluded_runs_note(runs)[:-1]}{few}",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


def plot_sharpness_vs_eta_over_b(
    sharpness: pd.DataFrame, pdf: str | Path, png: str | Path
) -> Figure:
    """The top Hessian eigenvalue λ_max at each run's end point against η/b, one column per
    family: a line per batch size through the geometric mean over seeds of the end points C7c
    admits (``excluded_sharpness`` empty)
    (bars: their range), every admitted run as a filled point, the others hollow."""
    set_style()
    df = with_ratio(sharpness[np.isfinite(sharpness["top_hessian_eigenvalue"])])
    fams = families(df)
    if not fams:
        raise ValueError(_NO_FAMILY.replace("trained runs", "runs with a measured λ_max"))
    colours = _colours(sorted({int(b) for _, rows in fams for b in rows["batch_size"]}))
    fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams) + 1.6, 3.6), squeeze=False)
    n_out = 0
    for ax, (family, rows) in zip(axes[0], fams, strict=True):
        admitted = rows["excluded_sharpness"].fillna("").astype(str) == ""
        admitted &= rows["top_hessian_eigenvalue"] > 0
        n_out += int((~admitted).sum())
        _draw_cells(ax, rows[admitted], "top_hessian_eigenvalue", colours, geometric=True)
        for keep, face in ((admitted, None), (~admitted, "none")):
            sub = rows[keep]
            ax.scatter(
                sub[RATIO],
                sub["top_hessian_eigenvalue"].clip(lower=1e-6),
                c=[colours[int(b)] for b in sub["batch_size"]] if face is None else "none",
                edgecolors=[colours[int(b)] for b in sub["batch_size"]],
                s=14,
                zorder=3,
            )
        ax.set_yscale("log")
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("η / b")
    axes[0][0].set_ylabel("top Hessian eigenvalue λ_max")
    hollow = Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="not admitted")
    _legend(fig, colours, [hollow])
    suptitle(
        fig,
        "Sharpness of each run's end point against η/b (line: geometric mean over seeds of the "
        "end points "
        "claim C7c admits, bars: their range; filled: each admitted run; hollow: left out "
        f"({n_out}): not trained, not converged or not at a minimum, see sharpness.csv)",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig
