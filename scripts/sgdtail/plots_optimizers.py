"""Figures of the optimizer comparison: α̂ per optimizer (``alpha_vs_optimizer``) and the
per-layer α̂ of torchvision models (``alpha_per_layer``).

Both draw the training-set noise at each run's last checkpoint, leave out runs that diverged
or did not train (counted in the title, :func:`sgdtail.aggregate.excluded_runs_note`) and
estimates from too few samples (counted too), and colour each optimizer the same way.
Families of runs: :mod:`sgdtail.optimizer_families`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sgdtail.aggregate import ALPHA_COLUMNS, excluded_runs_note, gradient_rows, usable
from sgdtail.archs import is_torchvision
from sgdtail.grid import AXES, GRADIENT_NOISE, PRECONDITIONED_NOISE
from sgdtail.optimizer_families import (
    LAYER_AXES,
    OPTIMIZER_FAMILY_AXES,
    OPTIMIZER_LABELS,
    OPTIMIZER_ORDER,
)
from sgdtail.plots import (
    DATASET_LABELS,
    ESTIMATOR_LABELS,
    GAUSSIAN_ALPHA,
    LOSS_LABELS,
    enough_samples,
    final_checkpoints,
    interval_bars,
    level_text,
    network_label,
    save_figure,
    set_style,
    suptitle,
    too_few_note,
)

OPTIMIZER_COLOURS: dict[str, str] = {
    "sgd": "#1f77b4",  # blue
    "momentum": "#2ca02c",  # green
    "nesterov": "#9467bd",  # purple
    "adam": "#d62728",  # red
}
"""One colour per optimizer (:data:`OPTIMIZER_ORDER`), the same in both figures."""

NOISE_STYLES: dict[str, tuple[float, str, bool]] = {
    GRADIENT_NOISE: (0.0, "o", True),
    PRECONDITIONED_NOISE: (0.3, "D", False),
}
"""Per noise: x offset from its optimizer's position, marker, filled."""

ROBUST = ALPHA_COLUMNS["robust"]
SEED_JITTER = 0.06
"""x distance between the points of two seeds of one optimizer."""

_NO_FAMILY = (
    "no network trained by two or more optimizers (runs equal in every axis but the optimizer, "
    "the learning rate and the seed) among the measured runs that trained; add such runs to "
    "the selected grid (and check their final training accuracy against "
    "claims.min_train_accuracy) to draw this figure"
)
_NO_TORCHVISION = (
    "no per-layer α̂ of a torchvision model that trained at its last checkpoint (training "
    "split); add runs of a torchvision model (e.g. arch: [resnet18]) to the selected grid (and "
    "check their final training accuracy against claims.min_train_accuracy) to draw this figure"
)


def _setting(row: pd.Series | dict) -> str:
    """``CIFAR10, resnet18, cross-entropy, b = 100``: what an optimizer family shares."""
    return (
        f"{DATASET_LABELS.get(row['dataset'], row['dataset'])}, "
        f"{network_label(row['arch'], int(row['width']), int(row['depth']))}, "
        f"{LOSS_LABELS.get(row['loss'], row['loss'])}, b = {int(row['batch_size'])}"
    )


def _optimizer_lines(rows: pd.DataFrame) -> list[tuple[str, float]]:
    """The (optimizer, learning rate) pairs of ``rows``, plain SGD first, Adam last."""
    pairs = {(str(o), float(lr)) for o, lr in rows[["optimizer", "lr"]].itertuples(index=False)}
    return sorted(pairs, key=lambda pair: (OPTIMIZER_ORDER.index(pair[0]), pair[1]))


def _line_label(optimizer: str, lr: float) -> str:
    return f"{OPTIMIZER_LABELS[optimizer]}, η = {lr:g}"


def _noise_of(rows: pd.DataFrame) -> pd.Series:
    """The ``noise`` column of a summary (gradient in a table without one)."""
    return rows["noise"] if "noise" in rows else pd.Series(GRADIENT_NOISE, index=rows.index)


# ----------------------------------------------------------------------------
# α̂ per optimizer
# ----------------------------------------------------------------------------


def optimizer_family_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Last-checkpoint training-split rows (gradient and preconditioned noise) of the runs that
    trained, in families with two or more optimizers; ``ValueError`` when there are none.

    Families are found among every run's gradient rows, then runs that diverged or did not
    train are dropped: a family that lost runs is still drawn with what is left."""
    last = final_checkpoints(summary, keep_excluded=True)
    gradient = gradient_rows(last)
    keys = list(OPTIMIZER_FAMILY_AXES)
    n_optimizers = gradient.groupby(keys)["optimizer"].transform("nunique")
    families = gradient.loc[n_optimizers >= 2, keys].drop_duplicates()
    rows = last.merge(families, on=keys)
    rows = rows[usable(rows["status"])]
    if rows.empty:
        raise ValueError(_NO_FAMILY)
    return rows.reset_index(drop=True)


def _seed_offsets(seeds: pd.Series, all_seeds: list) -> np.ndarray:
    """x offsets that set the seeds of one optimizer side by side."""
    centre = (len(all_seeds) - 1) / 2
    return np.array([(all_seeds.index(s) - centre) * SEED_JITTER for s in seeds])


def _draw_points(
    ax: plt.Axes, sub: pd.DataFrame, x0: float, column: str, kind: str, seeds: list
) -> None:
    """One marker per seed of one optimizer and noise at ``x0`` (+ the noise's offset), the
    robust α̂'s interval, and the mean over seeds as a short horizontal line."""
    offset, marker, filled = NOISE_STYLES[kind]
    colour = OPTIMIZER_COLOURS[sub["optimizer"].iloc[0]]
    x = x0 + offset + _seed_offsets(sub["seed"], seeds)
    ax.plot(
        x,
        sub[column],
        ls="",
        marker=marker,
        ms=5,
        color=colour,
        mfc=colour if filled else "none",
        gid=kind,
    )
    if column == ROBUST:
        ax.errorbar(
            x,
            sub[column],
            yerr=interval_bars(
                sub[column], sub["alpha_robust_ci_low"], sub["alpha_robust_ci_high"]
            ),
            fmt="none",
            ecolor=colour,
            lw=0.8,
            capsize=2,
        )
    if len(sub) > 1:
        half = SEED_JITTER * len(seeds) / 2 + 0.04
        mean = sub[column].mean()
        ax.hlines(mean, x0 + offset - half, x0 + offset + half, colors=colour, lw=1.4, gid="mean")


def _optimizer_panel(ax: plt.Axes, family: pd.DataFrame, column: str) -> None:
    """One estimator's α̂ of one family: per optimizer (and learning rate) its seeds' points
    for each noise, at x = 0, 1, ... in :data:`OPTIMIZER_ORDER`."""
    lines = _optimizer_lines(family)
    seeds = sorted(family["seed"].unique())
    noise = _noise_of(family)
    drawn = family[np.isfinite(family[column])]
    for i, (optimizer, lr) in enumerate(lines):
        cell = drawn[(drawn["optimizer"] == optimizer) & np.isclose(drawn["lr"], lr)]
        for kind in NOISE_STYLES:
            sub = cell[noise.loc[cell.index] == kind]
            if not sub.empty:
                _draw_points(ax, sub.sort_values("seed"), i, column, kind, seeds)
    if drawn.empty:
        text = "no estimate from enough samples"
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", color="grey")
    ax.set_xticks(range(len(lines)), [_line_label(o, lr).replace(", ", "\n") for o, lr in lines])
    ax.set_xlim(-0.6, len(lines) - 0.3)
    ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.8, ls="--")


def _optimizer_legend(fig: Figure, rows: pd.DataFrame) -> None:
    present = [o for o in OPTIMIZER_ORDER if o in set(rows["optimizer"])]
    handles = [
        Line2D([], [], color=OPTIMIZER_COLOURS[o], marker="o", ls="", label=OPTIMIZER_LABELS[o])
        for o in present
    ]
    handles.append(Line2D([], [], color="grey", marker="o", ls="", label="gradient noise"))
    if (_noise_of(rows) == PRECONDITIONED_NOISE).any():
        label = "Adam: preconditioned"
        handles.append(Line2D([], [], color="grey", marker="D", mfc="none", ls="", label=label))
    if rows.groupby([*OPTIMIZER_FAMILY_AXES, "optimizer", "lr"])["seed"].nunique().max() > 1:
        handles.append(Line2D([], [], color="grey", lw=1.4, label="mean over seeds"))
    handles.append(Line2D([], [], color="grey", ls="--", lw=0.8, label="Gaussian, α = 2"))
    fig.legend(
        handles=handles,
        title="optimizer",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )


def plot_alpha_vs_optimizer(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    pdf: str | Path,
    png: str | Path,
    ci_level: float = 0.95,
) -> Figure:
    """α̂ of the training-set noise at each run's last checkpoint per optimizer: rows the
    three estimators, columns the families (one network, data set, loss and batch size trained
    by two or more optimizers); per optimizer and learning rate a point per seed (filled: the
    gradient noise; hollow diamonds: Adam's preconditioned noise), its robust α̂'s
    batch-means interval, and the mean over seeds. α = 2 dashed."""
    set_style()
    rows = optimizer_family_rows(summary)
    few = too_few_note(rows)
    rows = enough_samples(rows)
    families = list(rows.groupby(list(OPTIMIZER_FAMILY_AXES), sort=True))
    width = max(len(_optimizer_lines(family)) for _, family in families)
    fig, axes = plt.subplots(
        len(ESTIMATOR_LABELS),
        len(families),
        figsize=(1.1 * width * len(families) + 1.8 * len(families) + 1.6, 2.6 * 3),
        sharey=True,
        squeeze=False,
    )
    last_row = len(ESTIMATOR_LABELS) - 1
    for r, (column, label) in enumerate(ESTIMATOR_LABELS.items()):
        for c, (_, family) in enumerate(families):
            ax = axes[r, c]
            _optimizer_panel(ax, family, column)
            setting = _setting(family.iloc[0])
            ax.set_title(f"{setting}\n{label}" if r == 0 else label, fontsize=9)
            ax.set_xlabel("optimizer, learning rate η" if r == last_row else "")
            ax.set_ylabel("tail index α̂" if c == 0 else "")
    _optimizer_legend(fig, rows)
    n_runs = len(gradient_rows(rows))
    suptitle(
        fig,
        "α̂ of the training-set noise at each run's last checkpoint per optimizer (points: "
        f"seeds; bars: {level_text(ci_level)} batch-means interval of the robust α̂; line: mean "
        "over seeds; filled: the gradient noise, hollow diamonds: Adam's preconditioned noise)\n"
        f"{n_runs} runs drawn (those of a network trained by two or more optimizers); "
        f"{excluded_runs_note(runs)[:-1]}{few}",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


# ----------------------------------------------------------------------------
# Per-layer α̂ of torchvision models
# ----------------------------------------------------------------------------


def layer_rows(estimates: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The per-layer robust α̂ rows (gradient noise, training split, each run's last
    checkpoint) of the torchvision-model runs that trained, in the order of ``estimates``
    (each run's layers in its network's parameter order); ``ValueError`` when there are none."""
    est = gradient_rows(estimates)
    est = est[
        (est["estimator"] == "mohammadi_robust")
        & (est["scope"] != "pooled")
        & (est["split"] == "train")
        & est["arch"].map(is_torchvision).astype(bool)
    ]
    last = est.groupby(list(AXES))["step"].transform("max")
    est = est[est["step"] == last].drop(columns=["status"], errors="ignore")
    rows = est.merge(runs[[*AXES, "status"]], on=list(AXES), how="left")
    rows = rows[usable(rows["status"])]
    if rows.empty:
        raise ValueError(_NO_TORCHVISION)
    return rows.reset_index(drop=True)


def _layer_line(
    ax: plt.Axes, rows: pd.DataFrame, layers: list[str], offset: float, label: str
) -> None:
    """One optimizer's line: per layer the mean α̂ over seeds with the batch-means interval
    averaged over seeds (bars) and, with several seeds, their range (band)."""
    colour = OPTIMIZER_COLOURS[rows["optimizer"].iloc[0]]
    by_layer = rows.groupby("scope", sort=False)
    means = by_layer[["alpha", "ci_low", "ci_high"]].mean().reindex(layers)
    x = np.arange(len(layers)) + offset
    ax.errorbar(
        x,
        means["alpha"],
        yerr=interval_bars(means["alpha"], means["ci_low"], means["ci_high"]),
        color=colour,
        marker="o",
        ms=3,
        lw=0.9,
        elinewidth=0.7,
        capsize=1.5,
        label=label,
    )
    if rows["seed"].nunique() > 1:
        spread = by_layer["alpha"].agg(["min", "max"]).reindex(layers)
        ax.fill_between(x, spread["min"], spread["max"], color=colour, alpha=0.15, lw=0)


def _layer_panel(ax: plt.Axes, network: pd.DataFrame) -> None:
    """One network's layers on the x axis (named, in the network's order), one line per
    optimizer and learning rate."""
    layers = list(pd.unique(network["scope"]))
    lines = _optimizer_lines(network)
    for i, (optimizer, lr) in enumerate(lines):
        rows = network[(network["optimizer"] == optimizer) & np.isclose(network["lr"], lr)]
        offset = (i - (len(lines) - 1) / 2) * 0.12
        _layer_line(ax, rows, layers, offset, _line_label(optimizer, lr))
    ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=6.5)
    ax.set_xlim(-0.7, len(layers) - 0.3)
    ax.set_title(_setting(network.iloc[0]), fontsize=9)
    ax.set_xlabel("layer (parameter tensor, in the network's order)")
    ax.set_ylabel("robust tail index α̂")
    ax.legend(
        title="optimizer",
        fontsize=7,
        title_fontsize=8,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )


def plot_alpha_per_layer(
    estimates: pd.DataFrame,
    runs: pd.DataFrame,
    pdf: str | Path,
    png: str | Path,
    min_pooled_values: int = 0,
    ci_level: float = 0.95,
) -> Figure:
    """The robust α̂ of each layer's training-set gradient noise at each run's last checkpoint
    against the layer's position in the network, for the torchvision-model runs: one panel per
    network (data set, model, loss and batch size), one line per optimizer and learning rate
    (mean over seeds; bars: the batch-means interval averaged over seeds; band: the seeds'
    range). Layer estimates from fewer than ``min_pooled_values`` noise values are left out and
    counted."""
    set_style()
    rows = layer_rows(estimates, runs)
    few = rows["n_values"] < min_pooled_values
    rows.loc[few, ["alpha", "ci_low", "ci_high"]] = np.nan
    networks = list(rows.groupby(list(LAYER_AXES), sort=True))
    n_layers = max(network["scope"].nunique() for _, network in networks)
    fig, axes = plt.subplots(
        len(networks),
        1,
        figsize=(max(7.0, 0.17 * n_layers + 2.5), 4.6 * len(networks)),
        squeeze=False,
    )
    for ax, (_, network) in zip(axes[:, 0], networks, strict=True):
        _layer_panel(ax, network)
    few_note = ""
    if few.any():
        sizes = ", ".join(f"{int(k):,}" for k in sorted(rows.loc[few, "n_values"].unique()))
        few_note = (
            f"; {int(few.sum())} layer estimate(s) left out (too few noise values: K = {sizes} "
            f"< estimators.min_pooled_values = {min_pooled_values:,})"
        )
    n_runs = len(rows.drop_duplicates(list(AXES)))
    suptitle(
        fig,
        "Robust α̂ of each layer's training-set gradient noise at each run's last checkpoint, "
        f"torchvision models (line: mean over seeds; bars: {level_text(ci_level)} batch-means "
        "interval, averaged "
        "over seeds; band: range over seeds); batch-norm scales and shifts and biases are "
        f"layers of their own\n{n_runs} runs drawn; {excluded_runs_note(runs)[:-1]}{few_note}",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig
