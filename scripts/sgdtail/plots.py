"""Figures drawn with seaborn from the tidy tables (see sgdtail.aggregate).

One function per figure; each takes tables (pandas DataFrames) and the output
paths, and raises ``ValueError`` naming the runs to add when the tables cannot
draw it (never an empty or made-up figure). Each returns the Figure it saved
(closed; its axes and artists stay readable, which the tests check). Runs that
diverged or did not train (see :data:`sgdtail.aggregate.EXCLUDED_STATUSES`) are
left out of every α statistic and counted in the figure title; estimates from
too few samples are left out and counted too.
"""

from __future__ import annotations

import itertools
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from sgdtail.aggregate import (  # noqa: E402
    ALPHA_COLUMNS,
    EXCLUDED_STATUSES,
    excluded_runs_note,
    gradient_rows,
    usable,
)
from sgdtail.claims import sweep_rows  # noqa: E402
from sgdtail.estimators import sample_sas  # noqa: E402
from sgdtail.grid import AXES, RUN_PATH_REGEX, parse_run_path  # noqa: E402
from sgdtail.io import atomic_path  # noqa: E402
from sgdtail.validation import sweep_slope  # noqa: E402

ESTIMATOR_LABELS = {
    ALPHA_COLUMNS["reference"]: "pooled, reference (2019 code)",
    ALPHA_COLUMNS["robust"]: "pooled, robust (median over K1)",
    ALPHA_COLUMNS["per_coordinate"]: "per coordinate across minibatches (median)",
}
"""The α columns of the summary table shown side by side, so no figure hides the estimator."""

LOSS_LABELS = {"cross_entropy": "cross-entropy", "hinge": "hinge"}
DATASET_LABELS = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
SPLIT_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}
RUN_KEYS = list(AXES)
GAUSSIAN_ALPHA = 2.0

VALIDATION_ESTIMATORS = {
    "mohammadi_reference": "reference (2019: K1 = divisor ≤ √K)",
    "mohammadi_robust": "robust (median over K1)",
    "mohammadi_sqrtK": "one block size K1 = ⌊√K⌋",
    "mohammadi_order": "order statistics (Cor. 2.2)",
    "hill": "Hill (k = √n)",
    "mohammadi_robust_zeros_kept": "robust, zeros kept",
}
GAUSSIAN_LABELS = {
    "mohammadi_reference": "reference",
    "mohammadi_robust": "robust",
    "hill": "Hill (▲ capped)",
    "per_coordinate_median": "per-coordinate median",
}
PITFALL_LABELS = {
    "gauss_zeros_1pct": "Gaussian,\n1% exact zeros",
    "gauss_zeros_10pct": "Gaussian,\n10% exact zeros",
    "gauss_lognormal_scales": "Gaussian, log-normal\nscales (σ = 1)",
}

_BENCHMARK_PATH = re.compile(rf"(?:^|/)benchmarks/(?P<rule>[^/]+)/(?P<run>{RUN_PATH_REGEX})\.tsv$")


# ----------------------------------------------------------------------------
# Common helpers
# ----------------------------------------------------------------------------


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig: plt.Figure, pdf: str | Path, png: str | Path) -> None:
    """Save ``fig`` as PDF and PNG (150 dpi), atomically, and close it."""
    for path, kwargs in ((pdf, {}), (png, {"dpi": 150})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix[1:], bbox_inches="tight", **kwargs)
    plt.close(fig)


def suptitle(fig: plt.Figure, text: str, fontsize: float = 10) -> None:
    """Figure title wrapped to the figure's width (each paragraph separately)."""
    width = max(40, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    lines = [textwrap.fill(par, width, break_on_hyphens=False) for par in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def select_run(df: pd.DataFrame, run: Mapping) -> pd.DataFrame:
    """Rows of ``df`` belonging to the run with axes ``run``."""
    mask = np.ones(len(df), dtype=bool)
    for axis in RUN_KEYS:
        if axis == "lr":
            mask &= np.isclose(df[axis].to_numpy(dtype=float), float(run[axis]))
        else:
            mask &= (df[axis] == run[axis]).to_numpy()
    return df[mask]


def network_label(arch: str, width: int, depth: int) -> str:
    """``FCN 128×3`` (width × depth), ``AlexNet ch 64``, or a torchvision model's name."""
    if arch == "alexnet":
        return f"AlexNet ch {width}"
    return f"FCN {width}×{depth}" if arch == "fcn" else arch


def run_label(run: Mapping) -> str:
    """One line naming a run, e.g. ``MNIST, FCN 16×2, cross-entropy, b = 500, η = 0.1, seed 0``."""
    return (
        f"{DATASET_LABELS.get(run['dataset'], run['dataset'])}, "
        f"{network_label(run['arch'], run['width'], run['depth'])}, "
        f"{LOSS_LABELS.get(run['loss'], run['loss'])}, b = {run['batch_size']}, "
        f"η = {run['lr']:g}, seed {run['seed']}"
    )


def final_checkpoints(
    summary: pd.DataFrame, split: str = "train", keep_excluded: bool = False
) -> pd.DataFrame:
    """Rows of each run's last measured checkpoint on ``split``; runs that diverged or did
    not train are left out unless ``keep_excluded``."""
    ok = summary[summary.split == split]
    if not keep_excluded:
        ok = ok[usable(ok.status)]
    last = ok.groupby(RUN_KEYS)["step"].transform("max")
    return ok[ok.step == last]


def enough_samples(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each α̂ set to NaN where its estimator saw too few samples (summary columns
    ``pooled_enough`` and ``per_coordinate_enough``; absent columns mean enough)."""
    out = df.copy()
    pooled = out.get("pooled_enough", pd.Series(True, index=out.index)).astype(bool)
    per_coord = out.get("per_coordinate_enough", pd.Series(True, index=out.index)).astype(bool)
    for col in ("alpha_reference", "alpha_robust", "alpha_robust_ci_low", "alpha_robust_ci_high"):
        if col in out:
            out.loc[~pooled, col] = np.nan
    for col in (
        "alpha_per_coordinate_median",
        "alpha_per_coordinate_q25",
        "alpha_per_coordinate_q75",
    ):
        if col in out:
            out.loc[~per_coord, col] = np.nan
    return out


def too_few_note(df: pd.DataFrame) -> str:
    """``; per-coordinate α̂ left out of 4 measurement(s) (too few minibatches: P = 4, 20)``
    (and the same for pooled α̂ with too few values), or ""."""
    text = ""
    for flag, what, size, unit in (
        ("per_coordinate_enough", "per-coordinate", "n_minibatches", "minibatches: P"),
        ("pooled_enough", "pooled", "n_values", "noise values: K"),
    ):
        if flag not in df:
            continue
        few = df[~df[flag].astype(bool)]
        if few.empty:
            continue
        sizes = ", ".join(f"{int(p):,}" for p in sorted(few[size].unique()))
        text += f"; {what} α̂ left out of {len(few)} measurement(s) (too few {unit} = {sizes})"
    return text


def long_alpha(df: pd.DataFrame) -> pd.DataFrame:
    """Melt the α columns of ``df`` into (estimator, alpha) rows with readable labels."""
    id_vars = [c for c in df.columns if c not in ESTIMATOR_LABELS]
    long = df.melt(
        id_vars=id_vars, value_vars=list(ESTIMATOR_LABELS), var_name="estimator", value_name="alpha"
    )
    long["estimator"] = long["estimator"].map(ESTIMATOR_LABELS)
    long["setting"] = (
        long["dataset"].map(DATASET_LABELS).fillna(long["dataset"])
        + ", "
        + long["loss"].map(LOSS_LABELS).fillna(long["loss"])
    )
    return long


def plain_log_axis(ax: plt.Axes, base: float, values: Sequence[float]) -> None:
    """Log x axis whose ticks are the plotted values, written plainly (16, 32, ..., 0.05);
    upright labels when two neighbours are within a factor 1.5 (e.g. η/b = 4e-05 and 5e-05),
    which would overlap side by side."""
    ax.set_xscale("log", base=base)
    ticks = sorted(set(values))
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if any(high < 1.5 * low for low, high in itertools.pairwise(ticks)):
        ax.tick_params(axis="x", labelrotation=90)


def level_text(ci_level: float) -> str:
    """A confidence level as the figures print it: 0.95 → ``95%``, 0.975 → ``97.5%``."""
    return f"{ci_level * 100:g}%"


def interval_bars(alpha: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    """Asymmetric error bars (2 × n) of an interval around ``alpha`` for ``errorbar``: never
    negative (an estimate a rounding step outside its interval), 0 where it is missing."""
    below = (alpha - low).clip(lower=0).fillna(0).to_numpy()
    above = (high - alpha).clip(lower=0).fillna(0).to_numpy()
    return np.vstack([below, above])


def _minibatch_note(measurements: pd.DataFrame) -> str:
    """``P = 120 training / 20 test minibatches`` from a run's summary rows."""
    counts = measurements.groupby("split")["n_minibatches"].max()
    names = {"train": "training", "test": "test"}
    parts = [f"{int(counts[s])} {names[s]}" for s in ("train", "test") if s in counts]
    return f"noise from P = {' / '.join(parts)} minibatches"


def _plain_log_ticks(axis: matplotlib.axis.Axis) -> None:
    """Ticks at 1, 2, 5 × 10^k written plainly (0.2, 0.5, 1, 2, ...), no minor labels."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
    axis.set_minor_formatter(NullFormatter())


def _symlog_steps(ax: plt.Axes, last_step: float) -> None:
    """Symmetric-log x axis for SGD steps: linear on [0, 1], logarithmic above (includes 0)."""
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_xlim(0, last_step * 1.3)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


# ----------------------------------------------------------------------------
# Figure: α against one grid axis (width, depth, filters, batch size, learning rate)
# ----------------------------------------------------------------------------


def plot_alpha_vs_axis(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    axis: str,
    hue: str,
    pdf: str | Path,
    png: str | Path,
    arch: str | None = None,
    log_base: float | None = 2,
    axis_label: str | None = None,
    hue_label: str | None = None,
    ci_level: float = 0.95,
) -> plt.Figure:
    """α at the end of training against ``axis``, one line per ``hue``, bands over seeds.

    Only runs in a sweep over ``axis`` are drawn (every other axis fixed, ≥ 2
    values of ``axis``; see :func:`sgdtail.claims.sweep_rows`). Rows: the three
    estimators; columns: data set × loss; train-split noise at each run's last
    checkpoint. Line: mean over seeds; band: range over seeds; robust row:
    also the batch-means interval (mean of its ends over seeds) as bars.
    ``hue`` may be an axis or ``"network"`` (architecture, width × depth).
    """
    summary = gradient_rows(summary)  # the gradient noise, not a preconditioned one
    set_style()
    df = _sweep_runs(summary, axis, arch)
    few = too_few_note(df)
    df = enough_samples(df)
    df = df.assign(network=[network_label(*v) for v in df[["arch", "width", "depth"]].to_numpy()])
    long, lines = _sweep_lines(long_alpha(df), axis, hue)
    estimators = list(ESTIMATOR_LABELS.values())
    settings = sorted(long["setting"].unique())
    fig, axes = plt.subplots(
        len(estimators),
        len(settings),
        figsize=(3.6 * len(settings) + 1.6, 2.5 * len(estimators)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for r, estimator in enumerate(estimators):
        for c, setting in enumerate(settings):
            ax = axes[r, c]
            sub = long[(long.estimator == estimator) & (long.setting == setting)]
            ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.8, ls="--")
            if sub.empty:
                ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", color="grey")
                continue
            _sweep_panel(ax, sub, axis, lines, estimator)
            if log_base:
                plain_log_axis(ax, log_base, long[axis].unique())
            else:
                ax.set_xticks(sorted(long[axis].unique()))
            ax.set_title(f"{setting}\n{estimator}" if r == 0 else estimator, fontsize=9)
            ax.set_xlabel(axis_label or axis if r == len(estimators) - 1 else "")
            ax.set_ylabel("tail index α̂" if c == 0 else "")
    fig.legend(
        handles=_sweep_legend_handles(lines),
        title=hue_label or hue,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    n_seeds = df.groupby(RUN_KEYS[:-1])["seed"].nunique().max()
    spread = "line: mean over seeds, band: range over seeds" if n_seeds > 1 else "one seed"
    suptitle(
        fig,
        f"α̂ of the training-set gradient noise at each run's last checkpoint ({spread}; "
        f"bars: {level_text(ci_level)} batch-means interval of the robust α̂)\n{len(df)} runs "
        f"drawn (those in a sweep over {axis}); {excluded_runs_note(runs)[:-1]}{few}",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


def _sweep_runs(summary: pd.DataFrame, axis: str, arch: str | None) -> pd.DataFrame:
    """Last-checkpoint rows of the runs that trained in a sweep over ``axis`` (among ``arch``
    runs when given); ``ValueError`` naming the runs to add when there are none."""
    # the sweep is found among all runs, then diverged ones are dropped: a sweep that lost
    # runs to divergence is still drawn with what is left (the title counts the excluded)
    df = final_checkpoints(summary, keep_excluded=True)
    if arch is not None:
        df = df[df.arch == arch]
    df = sweep_rows(df, axis)
    df = df[usable(df.status)]
    if df.empty:
        what = f"{arch} runs" if arch else "runs"
        raise ValueError(
            f"no {what} that differ only in {axis} (and seed) among the measured runs that "
            f"trained; add {what} at two or more values of {axis} with every other axis fixed "
            "to the selected grid (and check their final training accuracy against "
            "claims.min_train_accuracy) to draw this figure"
        )
    return df


@dataclass(frozen=True)
class _Lines:
    """How the lines of an α-vs-axis figure look: a colour per ``hue`` value and, when the
    hue does not tell apart the lines of a panel, a marker and dash per ``style`` value."""

    hue: str
    hue_values: list
    palette: dict
    style: str | None
    styles: list
    markers: dict | bool
    dashes: dict | bool


def _sweep_lines(long: pd.DataFrame, axis: str, hue: str) -> tuple[pd.DataFrame, _Lines]:
    """``long`` with a ``line`` column where :func:`line_labels` finds lines to tell apart,
    and the look of the lines."""
    labels = line_labels(long, axis, hue)
    style = None if labels is None else "line"
    if labels is not None:
        long = long.assign(line=labels)
    hue_values = sorted(long[hue].unique())
    styles = sorted(long[style].unique()) if style else []
    lines = _Lines(
        hue=hue,
        hue_values=hue_values,
        palette=dict(zip(hue_values, sns.color_palette("viridis", len(hue_values)), strict=True)),
        style=style,
        styles=styles,
        markers=dict(zip(styles, _MARKERS, strict=False)) if style else True,
        dashes=dict(zip(styles, _DASHES, strict=False)) if style else True,
    )
    return long, lines


def _sweep_panel(ax: plt.Axes, sub: pd.DataFrame, axis: str, lines: _Lines, estimator: str) -> None:
    """One panel of an α-vs-axis figure: the lines and bands of one estimator and setting,
    the robust interval bars, and the share of exact zeros under the reference estimator."""
    sns.lineplot(
        data=sub,
        x=axis,
        y="alpha",
        hue=lines.hue,
        hue_order=lines.hue_values,
        palette=lines.palette,
        style=lines.style,
        style_order=lines.styles or None,
        markers=lines.markers,
        dashes=lines.dashes,
        marker=None if lines.style else "o",
        errorbar=("pi", 100),
        estimator="mean",
        ax=ax,
        legend=False,
    )
    if estimator == ESTIMATOR_LABELS[ALPHA_COLUMNS["robust"]]:
        _robust_interval_bars(ax, sub, axis, lines.hue, lines.palette, lines.style)
    zeros = sub["zero_fraction"]
    if estimator == ESTIMATOR_LABELS[ALPHA_COLUMNS["reference"]] and zeros.max() > 0.01:
        ax.text(
            0.98,
            0.04,
            f"exact zeros: {zeros.min():.0%} to {zeros.max():.0%} of "
            "the noise values\n(kept by the reference: biases it low)",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )


def _sweep_legend_handles(lines: _Lines) -> list[Line2D]:
    """Legend entries: each hue colour, each line style, and the Gaussian α = 2 line."""
    handles = [
        Line2D([], [], color=lines.palette[h], marker="o", label=str(h)) for h in lines.hue_values
    ]
    handles += [
        Line2D(
            [],
            [],
            color="grey",
            marker=lines.markers[s],
            dashes=lines.dashes[s] or (None, None),
            label=s,
        )
        for s in lines.styles
    ]
    handles.append(Line2D([], [], color="grey", ls="--", lw=0.8, label="Gaussian, α = 2"))
    return handles


_MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*"]
_DASHES = ["", (4, 2), (1, 1), (6, 2, 1, 2), (2, 2), (8, 2), (3, 1, 1, 1), (5, 5)]


def line_labels(long: pd.DataFrame, axis: str, hue: str) -> pd.Series | None:
    """Labels (``batch_size=100, lr=0.1``) telling apart lines that share a facet and a hue
    colour, or None when facet and hue already identify every line."""
    fixed = {axis, hue, "seed", "dataset", "loss"}
    rest = [a for a in ("arch", "width", "depth", "batch_size", "lr") if a not in fixed]
    if hue == "network":
        rest = [a for a in rest if a not in ("arch", "width", "depth")]
    varying = [a for a in rest if long.groupby(["setting", hue])[a].nunique().max() > 1]
    if not varying:
        return None
    return pd.Series(
        [
            ", ".join(f"{a}={v}" for a, v in zip(varying, row, strict=True))
            for row in long[varying].itertuples(index=False)
        ],
        index=long.index,
    )


def _robust_interval_bars(
    ax: plt.Axes, sub: pd.DataFrame, axis: str, hue: str, palette: Mapping, style: str | None
) -> None:
    """Error bars of the robust α̂'s batch-means interval, averaged over seeds, per line point."""
    keys = [hue, axis] + ([style] if style else [])
    means = sub.groupby(keys)[["alpha", "alpha_robust_ci_low", "alpha_robust_ci_high"]].mean()
    for key, row in means.iterrows():
        h, x = key[0], key[1]
        low, high = row["alpha_robust_ci_low"], row["alpha_robust_ci_high"]
        if np.isfinite(low) and np.isfinite(high):
            ax.errorbar(
                x,
                row["alpha"],
                yerr=[[max(row["alpha"] - low, 0)], [max(high - row["alpha"], 0)]],
                color=palette[h],
                lw=0.8,
                capsize=2,
            )


# ----------------------------------------------------------------------------
# Figure 1: noise norms against Gaussian and SαS vectors
# ----------------------------------------------------------------------------


def synthetic_norms(
    dim: int, n_vectors: int, alpha: float, rng: np.random.Generator, chunk: int = 1 << 20
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean norms of ``n_vectors`` random vectors of dimension ``dim`` (unit scale).

    Gaussian: i.i.d. N(0, 1) coordinates (norms drawn exactly, as √χ²_dim).
    SαS: i.i.d. SαS(α, scale 1) coordinates, drawn in chunks of ``chunk`` values.
    """
    gauss = np.sqrt(rng.chisquare(dim, size=n_vectors))
    sas = np.empty(n_vectors)
    for i in range(n_vectors):
        sq = 0.0
        for start in range(0, dim, chunk):
            x = sample_sas(alpha, min(chunk, dim - start), rng)
            sq += float(np.dot(x, x))
        sas[i] = math.sqrt(sq)
    return gauss, sas


def plot_noise_norm_histogram(
    norms: pd.DataFrame,
    summary: pd.DataFrame,
    showcase: Sequence[Mapping],
    pdf: str | Path,
    png: str | Path,
    seed: int = 0,
    max_synthetic_values: int = 50_000_000,
) -> plt.Figure:
    """Histogram of ‖U_p‖ (showcase runs, last checkpoint, train split) beside Gaussian and SαS.

    Synthetic vectors have the noise's dimension M (trainable parameters) and
    i.i.d. coordinates; SαS uses the robust α̂ of that measurement. Scale:
    each synthetic sample is multiplied so that its median norm equals the
    median measured norm (only the shape of the distribution is compared). As
    many synthetic vectors as measured minibatches, fewer for SαS when
    that would exceed ``max_synthetic_values`` coordinates (at least 20).
    """
    summary = gradient_rows(summary)  # the gradient noise, not a preconditioned one
    set_style()
    fig, axes = plt.subplots(
        3, len(showcase), figsize=(4.8 * len(showcase) + 0.6, 7.6), sharex="col", squeeze=False
    )
    rng = np.random.default_rng(seed)
    for c, run in enumerate(showcase):
        train = select_run(norms, run)
        train = train[train.split == "train"]
        meas = select_run(summary, run)
        if train.empty or meas.empty:
            raise ValueError(
                f"no noise norms for showcase run {run_label(run)}; is it in the grid?"
            )
        step = int(train.step.max())
        measured = train[train.step == step]["norm"].to_numpy(dtype=np.float64)
        row = meas[(meas.step == step) & (meas.split == "train")].iloc[0]
        dim, alpha = int(row["n_parameters"]), float(row["alpha_robust"])
        n_sas = max(20, min(len(measured), max_synthetic_values // dim))
        gauss, sas = synthetic_norms(dim, len(measured), alpha, rng)
        if n_sas < len(measured):
            sas = sas[:n_sas]
        med = np.median(measured)
        sigma = med / np.median(gauss)
        samples = [
            ("measured noise ‖U_p‖ of the minibatches", measured, "#4c72b0"),
            (f"Gaussian, σ = {sigma:.2g} per coordinate", gauss * sigma, "#55a868"),
            (
                f"SαS, α = {alpha:.2f} (robust α̂), scale matched",
                sas * med / np.median(sas),
                "#c44e52",
            ),
        ]
        values = np.concatenate([s[1] for s in samples])
        values = values[values > 0]
        log_range = (np.log10(values.min()) - 0.02, np.log10(values.max()) + 0.02)
        bins = int(np.clip(2 * np.sqrt(len(measured)), 15, 60))
        for r, (label, x, color) in enumerate(samples):
            ax = axes[r, c]
            sns.histplot(
                x=x,
                bins=bins,
                binrange=log_range,
                log_scale=True,
                stat="percent",
                color=color,
                ax=ax,
                edgecolor=color,
            )
            ax.axvline(med, color="k", lw=0.7, ls=":")
            q10, q90 = np.quantile(x, [0.1, 0.9])
            title = f"{label}\n{len(x)} vectors, 90%/10% quantile ratio {q90 / q10:.3g}"
            if r == 0:
                title = (
                    f"{run_label(run)}{_status_note(meas)}\nstep {step}, training set, "
                    f"M = {dim:,} parameters\n\n{title}"
                )
            ax.set_title(title, fontsize=8)
            ax.set_ylabel("% of vectors" if c == 0 else "")
            _plain_log_ticks(ax.xaxis)
        axes[-1, c].set_xlabel("Euclidean norm (gradient units; log scale)")
    suptitle(
        fig,
        "Norms of the gradient noise against vectors of the same dimension with i.i.d. "
        "Gaussian or SαS coordinates\nsynthetic norms scaled so that their median equals the "
        "measured median (dotted line): compare the shapes",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


# ----------------------------------------------------------------------------
# Figure 4: estimators on synthetic data with a known α
# ----------------------------------------------------------------------------


def plot_estimator_validation(
    table: pd.DataFrame,
    pdf: str | Path,
    png: str | Path,
    y_max: float = 2.6,
    gaussian: pd.DataFrame | None = None,
    minimums: pd.DataFrame | None = None,
) -> plt.Figure:
    """Estimated against true α on SαS samples (one panel per estimator, hue = sample size),
    the pitfall cases (Gaussian data, true α = 2) in a panel of their own, and, given
    ``gaussian`` (:func:`sgdtail.validation.gaussian_readings`) and ``minimums``
    (:func:`sgdtail.validation.minimum_sample_table`), what Gaussian data read at each
    sample size beside the configured minimum sizes.

    Points: mean over repeats; bars/bands: range over repeats. Values above
    ``y_max`` (Hill on Gaussian data) are drawn as ▲ at the top edge with their value.
    """
    set_style()
    sas = table[table.case == "sas"]
    pit = table[table.case != "sas"]
    if sas.empty:
        raise ValueError("the validation table has no 'sas' rows; rerun validate_estimators")
    names = [e for e in VALIDATION_ESTIMATORS if e in set(sas.estimator)]
    sizes = sorted(table["size"].unique())
    palette = dict(zip(sizes, sns.color_palette("viridis", len(sizes)), strict=True))
    fig = plt.figure(figsize=(3.0 * len(names) + 2.8, 7.6), layout="constrained")
    sub_top, sub_bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.9], hspace=0.04)
    axes = sub_top.subplots(1, len(names), sharey=True, squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        d = sas[sas.estimator == name]
        lim = [0, y_max]
        ax.plot(lim, lim, color="grey", lw=0.8, ls="--")
        sns.lineplot(
            data=d,
            x="true_alpha",
            y="alpha_hat",
            hue="size",
            palette=palette,
            hue_order=sizes,
            marker="o",
            errorbar=("pi", 100),
            ax=ax,
            legend=False,
        )
        means = d.groupby(["true_alpha", "size"])["alpha_hat"].mean()
        off = means[means > y_max]
        for (true, size), _ in off.items():
            ax.plot(true, y_max * 0.98, marker="^", color=palette[size], clip_on=False)
        if len(off):
            ax.text(
                0.97,
                0.9,
                f"▲ off scale: α̂ up to {off.max():.1f}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
            )
        ax.set_ylim(0, y_max)
        ax.set_xlim(0.4, 2.1)
        ax.set_title(VALIDATION_ESTIMATORS[name], fontsize=9)
        ax.set_xlabel("true α")
        ax.set_ylabel("estimated α̂")
    handles = [Line2D([], [], color=palette[s], marker="o", label=f"n = {s:,}") for s in sizes]
    handles.append(Line2D([], [], color="grey", ls="--", label="α̂ = α"))
    sub_top.legend(
        handles=handles,
        title="sample size",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    sub_top.suptitle("SαS samples of known α: mean over repeats, band = range", fontsize=10)
    with_sizes = gaussian is not None and minimums is not None and not gaussian.empty
    ratios = [2.2, 1.0, 1.0] if with_sizes else [1.0]
    bottom = sub_bottom.subplots(1, len(ratios), width_ratios=ratios, squeeze=False)[0]
    if not pit.empty:
        _pitfall_panel(bottom[0], pit, y_max)
    if with_sizes:
        _gaussian_size_panels(bottom[1], bottom[2], gaussian, minimums, y_max)
    sub_bottom.suptitle(
        "Gaussian data (true α = 2): the pitfalls of the pooled estimate (mean over sizes and "
        "repeats, bars = range)"
        + (
            "; what each estimator reads at each sample size, and the "
            "smallest samples the tables use"
            if with_sizes
            else ""
        ),
        fontsize=10,
    )
    save_figure(fig, pdf, png)
    return fig


def _gaussian_size_panels(
    ax_pooled: plt.Axes,
    ax_coord: plt.Axes,
    gaussian: pd.DataFrame,
    minimums: pd.DataFrame,
    y_max: float,
) -> None:
    """α̂ of Gaussian data against the pooled sample size and against the number of minibatches
    P of the per-coordinate estimator; band 2 ± tolerance, dotted line at the configured
    minimum."""
    tol = float(minimums["tolerance"].iloc[0])
    configured = minimums.groupby("kind")["configured_minimum"].first()
    panels = [
        (ax_pooled, "pooled", "values n (pooled)"),
        (ax_coord, "per_coordinate", "minibatches P (per coordinate)"),
    ]
    colors = dict(
        zip(GAUSSIAN_LABELS, sns.color_palette("colorblind", len(GAUSSIAN_LABELS)), strict=True)
    )
    for ax, kind, xlabel in panels:
        d = gaussian[gaussian.kind == kind]
        ax.axhspan(2 - tol, 2 + tol, color="grey", alpha=0.15, lw=0)
        for name, g in d.groupby("estimator", sort=False):
            means = g.groupby("size")["alpha_hat"].agg(["mean", "min", "max"])
            shown = means["mean"].clip(upper=y_max * 0.98)
            ax.plot(means.index, shown, marker="o", color=colors[name], label=GAUSSIAN_LABELS[name])
            if (means["mean"] > y_max).any():
                ax.text(
                    means.index[-1],
                    y_max * 0.9,
                    f"{means['mean'].iloc[-1]:.1f}",
                    ha="right",
                    fontsize=7,
                    color=colors[name],
                )
        if kind in configured.index:
            ax.axvline(
                configured[kind],
                color="k",
                ls=":",
                lw=0.9,
                label=f"configured minimum ({int(configured[kind]):,})",
            )
        ax.set_xscale("log")
        ax.set_ylim(0, y_max)
        ax.set_xlabel(xlabel)
        ax.set_title(f"Gaussian data, band 2 ± {tol:g}", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")


def _pitfall_panel(ax: plt.Axes, pit: pd.DataFrame, y_max: float) -> None:
    cases = [c for c in PITFALL_LABELS if c in set(pit.case)]
    cases += sorted(set(pit.case) - set(cases))
    names = [e for e in VALIDATION_ESTIMATORS if e in set(pit.estimator)]
    colors = dict(zip(names, sns.color_palette("colorblind", len(names)), strict=True))
    width = 0.8 / len(names)
    for i, case in enumerate(cases):
        for j, name in enumerate(names):
            d = pit[(pit.case == case) & (pit.estimator == name)]["alpha_hat"]
            if d.empty:
                continue
            x = i - 0.4 + width * (j + 0.5)
            mean, lo, hi = d.mean(), d.min(), d.max()
            if mean > y_max:
                ax.plot(x, y_max * 0.98, marker="^", color=colors[name])
                ax.annotate(
                    f"{mean:.1f}",
                    (x, y_max * 0.98),
                    textcoords="offset points",
                    xytext=(0, -12),
                    ha="center",
                    fontsize=7,
                    color=colors[name],
                )
                continue
            ax.errorbar(
                x, mean, yerr=[[mean - lo], [hi - mean]], fmt="o", color=colors[name], capsize=2
            )
    ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.8, ls="--")
    ax.grid(False, axis="x")
    for boundary in np.arange(0.5, len(cases) - 1):
        ax.axvline(boundary, color="lightgrey", lw=0.8)
    ax.set_xlim(-0.5, len(cases) - 0.5)
    ax.set_xticks(range(len(cases)), [PITFALL_LABELS.get(c, c) for c in cases])
    ax.set_ylim(0, y_max)
    ax.set_ylabel("estimated α̂ (true α = 2)")
    ax.legend(
        handles=[
            Line2D([], [], color=colors[n], marker="o", ls="", label=VALIDATION_ESTIMATORS[n])
            for n in names
        ],
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        title="estimator",
    )


# ----------------------------------------------------------------------------
# Figure 9: α and accuracy over training
# ----------------------------------------------------------------------------


def _status_note(s: pd.DataFrame) -> str:
    """`` — did not train: left out of every statistic`` for a run that is not usable, or ""."""
    status = s["status"].iloc[0] if "status" in s else "completed"
    if status not in EXCLUDED_STATUSES:
        return ""
    return f" — {EXCLUDED_STATUSES[status]}: left out of every statistic"


def _alpha_over_steps(ax: plt.Axes, s: pd.DataFrame, column: str) -> None:
    """α̂ in ``column`` against the step, one line per split; a split whose estimate saw too
    few samples at every checkpoint is named instead of drawn."""
    missing = []
    for split, d in s.groupby("split"):
        color = SPLIT_COLORS.get(split, "grey")
        if d[column].isna().all():
            missing.append(
                f"{split} set: too few samples (P = {int(d.n_minibatches.max())} "
                f"minibatches, K = {int(d.n_values.max()):,} values)"
            )
            continue
        ax.plot(d.step, d[column], color=color, marker="o")
        if column == "alpha_robust":
            ax.fill_between(
                d.step, d.alpha_robust_ci_low, d.alpha_robust_ci_high, color=color, alpha=0.2, lw=0
            )
    if missing:
        ax.text(
            0.02,
            0.04,
            "not drawn: " + "; ".join(missing),
            transform=ax.transAxes,
            fontsize=7,
            color="grey",
        )


def plot_alpha_and_accuracy_over_training(
    summary: pd.DataFrame,
    train_logs: Sequence[pd.DataFrame],
    showcase: Sequence[Mapping],
    pdf: str | Path,
    png: str | Path,
    smooth_steps: int = 10,
    ci_level: float = 0.95,
) -> plt.Figure:
    """α̂ of the train- and test-set noise and train/test accuracy against the SGD step.

    Columns: showcase runs; rows: the three estimators, then accuracy. The
    robust row shades the batch-means interval. Accuracy: at each checkpoint on
    the whole train and test sets (markers), and the training minibatch
    accuracy of every SGD step from ``train_log.csv`` (``smooth_steps``-step
    running mean). x: symmetric-log steps, so step 0 (initialisation) shows.
    """
    summary = gradient_rows(summary)  # the gradient noise, not a preconditioned one
    set_style()
    n_rows = len(ESTIMATOR_LABELS) + 1
    fig, axes = plt.subplots(
        n_rows,
        len(showcase),
        figsize=(4.8 * len(showcase) + 1.5, 2.1 * n_rows),
        sharex="col",
        squeeze=False,
    )
    for c, (run, log) in enumerate(zip(showcase, train_logs, strict=True)):
        s = select_run(summary, run).sort_values("step")
        if s.empty:
            raise ValueError(f"no measurements of showcase run {run_label(run)}")
        head = f"{run_label(run)}{_status_note(s)}\n{_minibatch_note(s)}"
        s = enough_samples(s)
        last = float(s.step.max())
        for r, (column, label) in enumerate(ESTIMATOR_LABELS.items()):
            ax = axes[r, c]
            _alpha_over_steps(ax, s, column)
            ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.8, ls="--")
            ax.set_title(label if r else f"{head}\n{label}", fontsize=9)
            ax.set_ylabel("tail index α̂" if c == 0 else "")
            _symlog_steps(ax, last)
        alpha_axes = axes[: len(ESTIMATOR_LABELS), c]
        low = min(a.get_ylim()[0] for a in alpha_axes)
        high = max(a.get_ylim()[1] for a in alpha_axes)
        for a in alpha_axes:
            a.set_ylim(low, high)
        ax = axes[-1, c]
        if not log.empty:
            running = log.sort_values("step").rolling(smooth_steps, min_periods=1)
            ax.plot(
                log.sort_values("step").step,
                100 * running["accuracy"].mean(),
                color="grey",
                lw=0.7,
                label=f"training minibatch ({smooth_steps}-step mean)",
            )
        per_step = s.drop_duplicates("step")
        for split in ("train", "test"):
            ax.plot(
                per_step.step,
                100 * per_step[f"{split}_accuracy"],
                marker="o",
                color=SPLIT_COLORS[split],
                label=f"{split} set (at checkpoints)",
            )
        ax.set_title("accuracy", fontsize=9)
        ax.set_ylabel("accuracy (%)" if c == 0 else "")
        ax.set_xlabel("SGD step (symmetric log scale: linear from 0 to 1)")
        _symlog_steps(ax, last)
    handles = [
        Line2D([], [], color=SPLIT_COLORS["train"], marker="o", label="training set"),
        Line2D([], [], color=SPLIT_COLORS["test"], marker="o", label="test set"),
        Line2D(
            [],
            [],
            color="grey",
            lw=0.7,
            label=f"training minibatch accuracy\n({smooth_steps}-step running mean)",
        ),
        Line2D([], [], color="grey", ls="--", lw=0.8, label="Gaussian, α = 2"),
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=SPLIT_COLORS["train"],
            alpha=0.2,
            label=f"{level_text(ci_level)} batch-means interval",
        ),
    ]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    suptitle(
        fig,
        "Tail index of the gradient noise (measured on the training and the test set) "
        "and accuracy during training",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


# ----------------------------------------------------------------------------
# Block-size sweep against synthetic data
# ----------------------------------------------------------------------------


def plot_alpha_vs_block_size(
    estimates: pd.DataFrame,
    synthetic: pd.DataFrame,
    showcase: Sequence[Mapping],
    pdf: str | Path,
    png: str | Path,
) -> plt.Figure:
    """Pooled α̂ against block size K1 for the showcase runs (last checkpoint, training set),
    natural and shuffled order, beside i.i.d. SαS and Gaussian sweeps. Legend: slopes
    d α̂ / d log10 K1 (0 for i.i.d. stable data)."""
    estimates = gradient_rows(estimates)  # the gradient noise, not a preconditioned one
    set_style()
    fig, axes = plt.subplots(
        1, len(showcase), figsize=(5.8 * len(showcase), 5.0), sharey=True, squeeze=False
    )
    greys = sns.color_palette("Greys", len(synthetic.true_alpha.unique()) + 2)[2:]
    for ax, run in zip(axes[0], showcase, strict=True):
        e = select_run(estimates, run)
        e = e[(e.split == "train") & (e.scope == "pooled")]
        if e.empty:
            raise ValueError(f"no pooled estimates of showcase run {run_label(run)}")
        e = e[e.step == e.step.max()]
        for (case, true), d in synthetic.groupby(["case", "true_alpha"]):
            d = d.sort_values("k1")
            slope = sweep_slope(d.k1, d.alpha_hat)
            if case == "gaussian":
                style = {"color": "k", "ls": ":", "label": f"i.i.d. Gaussian ({slope:+.3f})"}
            else:
                style = {
                    "color": greys[sorted(synthetic.true_alpha.unique()).index(true)],
                    "ls": "-",
                    "label": f"i.i.d. SαS α = {true:g} ({slope:+.3f})",
                }
            ax.plot(d.k1, d.alpha_hat, lw=1, **style)
        for order, ls, marker in (("natural", "-", "o"), ("shuffled", "--", "s")):
            d = e[(e.estimator == "block_sweep") & (e.order == order)].sort_values("k1")
            if d.empty:
                continue
            slope = sweep_slope(d.k1, d.alpha)
            ax.plot(
                d.k1,
                d.alpha,
                ls=ls,
                marker=marker,
                color="#c44e52",
                label=f"measured, {order} order ({slope:+.3f})",
            )
        ref = e[e.estimator == "mohammadi_reference"]
        if not ref.empty:
            ax.plot(
                ref.k1,
                ref.alpha,
                marker="*",
                ms=12,
                ls="",
                color="#4c72b0",
                label=f"reference α̂ = {ref.alpha.iloc[0]:.2f} at its K1",
            )
        rob = e[e.estimator == "mohammadi_robust"]
        if not rob.empty:
            r = rob.iloc[0]
            yerr = [[max(r.alpha - r.ci_low, 0)], [max(r.ci_high - r.alpha, 0)]]
            ax.errorbar(
                r.k1,
                r.alpha,
                yerr=yerr if np.isfinite(yerr).all() else None,
                marker="D",
                ms=9,
                mfc="none",
                mew=1.5,
                color="#2ca02c",
                capsize=3,
                ls="",
                zorder=5,
                label=f"robust α̂ = {r.alpha:.2f} (shown at K1 = {int(r.k1)})",
            )
        ax.axhline(GAUSSIAN_ALPHA, color="grey", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("block size K1 (values per block; log scale)")
        ax.set_title(
            f"{run_label(run)}\nstep {int(e.step.iloc[0])}, training set, "
            f"K = {int(e.n_values.max()):,} values",
            fontsize=9,
        )
        ax.legend(
            fontsize=7,
            title=f"slope of α̂ per decade of K1 in brackets; synthetic "
            f"samples: n = {int(synthetic['size'].max()):,}",
            title_fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=2,
            frameon=False,
        )
    axes[0, 0].set_ylabel("pooled α̂")
    suptitle(fig, "Pooled α̂ as a function of the estimator's block size")
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


# ----------------------------------------------------------------------------
# Runtime against the grid axes (benchmark files)
# ----------------------------------------------------------------------------


def read_benchmarks(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Benchmark TSVs of per-run jobs with the rule and grid axes parsed from their paths.

    Paths: ``benchmarks/<rule>/<run path>.tsv``, as the per-run jobs write them
    (:func:`sgdtail.io.write_job_usage`, in the column names of Snakemake's benchmark
    files). Columns: rule, the grid axes, and the numeric columns of the file (s, max_rss,
    cpu_time, ...; their mean if a file has several rows).
    """
    frames = []
    for path in paths:
        match = _BENCHMARK_PATH.search(str(path))
        if not match:
            raise ValueError(f"{path} is not benchmarks/<rule>/<run path>.tsv")
        df = pd.read_csv(path, sep="\t").select_dtypes("number").mean().to_frame().T
        df.insert(0, "rule", match["rule"])
        for axis, value in parse_run_path(match["run"]).items():
            df[axis] = value
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def plot_runtime_by_grid_axis(
    bench: pd.DataFrame, runs: pd.DataFrame, pdf: str | Path, png: str | Path
) -> plt.Figure:
    """Wall-clock seconds and peak memory of each job kind against width, depth and the
    number of parameters (one point per job; log scales)."""
    set_style()
    df = bench.merge(runs[[*RUN_KEYS, "n_parameters"]], on=RUN_KEYS, how="left")
    df = df.rename(columns={"rule": "job (rule)"})
    columns = [
        ("width", "width (FCN units / AlexNet filters ch)", 2),
        ("depth", "depth (weight layers)", None),
        ("n_parameters", "trainable parameters M", 10),
    ]
    rows = [("s", "wall-clock time (s)"), ("max_rss", "peak memory, max RSS (MB)")]
    scales = "log scales where the values span a decade or more"
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(12, 6.4), sharey="row", squeeze=False
    )
    jobs = sorted(df["job (rule)"].unique())
    for r, (y, ylabel) in enumerate(rows):
        for c, (x, xlabel, base) in enumerate(columns):
            ax = axes[r, c]
            sns.scatterplot(
                data=df,
                x=x,
                y=y,
                hue="job (rule)",
                hue_order=jobs,
                style="arch" if df["arch"].nunique() > 1 else None,
                ax=ax,
                legend=(r == 0 and c == len(columns) - 1),
                alpha=0.8,
            )
            if _decades(df[y]) >= 1:
                ax.set_yscale("log")
                _plain_log_ticks(ax.yaxis)
            if base == 2:
                plain_log_axis(ax, 2, df[x].unique())
            elif base and _decades(df[x]) >= 1:
                ax.set_xscale("log", base=base)
                _plain_log_ticks(ax.xaxis)
                ax.tick_params(axis="x", labelrotation=30)
            elif not base:
                ax.set_xticks(sorted(df[x].unique()))
            ax.tick_params(axis="both", which="both", labelsize=8)
            ax.set_xlabel(xlabel if r == len(rows) - 1 else "")
            ax.set_ylabel(ylabel if c == 0 else "")
    legend = axes[0, -1].get_legend()
    if legend is not None:
        legend.set_bbox_to_anchor((1.02, 1.0))
        legend.set_loc("upper left")
        legend.set_frame_on(False)
    total = df.groupby("job (rule)")["s"].sum()
    suptitle(
        fig,
        f"Cost of each job against the grid axes (the jobs' benchmarks/ files; one point per job; "
        f"{scales})\n"
        + "; ".join(f"{job}: {sec / 3600:.2f} h in all" for job, sec in total.items()),
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig


def _decades(values: pd.Series) -> float:
    """Decades spanned by positive ``values``."""
    v = values[values > 0]
    return float(np.log10(v.max() / v.min())) if len(v) else 0.0


# ----------------------------------------------------------------------------
# The tail index of the iterates against that of the gradient noise
# ----------------------------------------------------------------------------


def _widened(rows: pd.DataFrame, which: str) -> tuple[pd.Series, pd.Series]:
    """The batch-means interval of ``alpha_<which>`` widened by its K1 spread where known
    (pooled rows; ``iterates_vs_noise.csv``), the batch-means interval alone elsewhere."""
    down = rows.get(f"k1_down_{which}", pd.Series(0.0, index=rows.index)).fillna(0.0)
    up = rows.get(f"k1_up_{which}", pd.Series(0.0, index=rows.index)).fillna(0.0)
    return rows[f"ci_low_{which}"] - down, rows[f"ci_high_{which}"] + up


def _iterates_panel(ax: plt.Axes, rows: pd.DataFrame, groups: str | None) -> None:
    """One point per row at (noise α̂, iterates α̂) with both intervals, coloured by
    ``groups`` (a column) when given."""
    keys = sorted(rows[groups].unique()) if groups else [None]
    colors = dict(zip(keys, sns.color_palette("tab10", len(keys)), strict=True))
    for key in keys:
        sub = rows if key is None else rows[rows[groups] == key]
        ax.errorbar(
            sub.alpha_noise,
            sub.alpha_iterates,
            xerr=interval_bars(sub.alpha_noise, *_widened(sub, "noise")),
            yerr=interval_bars(sub.alpha_iterates, *_widened(sub, "iterates")),
            fmt="o",
            ms=4,
            lw=0.8,
            capsize=2,
            color=colors[key],
            label=key,
        )
    if groups:
        ax.legend(title="layer", fontsize=7, title_fontsize=8, frameon=False)
    ax.set_xlabel("α̂ of the gradient noise (last checkpoint)")


def plot_alpha_iterates_vs_alpha_noise(
    table: pd.DataFrame,
    runs: pd.DataFrame,
    pdf: str | Path,
    png: str | Path,
    ci_level: float = 0.95,
) -> plt.Figure:
    """The robust α̂ of the centred iterates over each run's last window against the robust
    α̂ of its gradient noise at its last checkpoint (``iterates_vs_noise.csv``), pooled
    (left) and per layer (right), with both batch-means intervals (the pooled ones widened by
    their K1 spread, :func:`_widened`) and the identity line.
    Runs that diverged or did not train, runs without a window and estimates from too few
    values are left out and counted in the title."""
    set_style()
    ok = table[usable(table.status)]
    no_window = ok[ok.alpha_iterates.isna() & ok.note.fillna("").ne("")]
    drawn = ok[ok.enough.astype(bool) & ok.alpha_iterates.notna() & ok.alpha_noise.notna()]
    pooled = drawn[drawn.scope == "pooled"]
    if pooled.empty:
        raise ValueError(
            "no run has a pooled α̂ of both its iterates and its noise from enough values; "
            "measure iterates (iterates.measure) on runs that train, with iterates.window × "
            "parameters ≥ estimators.min_pooled_values"
        )
    layers = drawn[drawn.scope != "pooled"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), squeeze=False)
    for ax, rows, groups, name in (
        (axes[0, 0], pooled, None, "pooled (all parameters)"),
        (axes[0, 1], layers, "scope", "per layer"),
    ):
        if not rows.empty:
            _iterates_panel(ax, rows, groups)
        ax.set_title(name)
        ax.set_ylabel("α̂ of the centred iterates (last window)")
    values = pd.concat([drawn.alpha_noise, drawn.alpha_iterates])
    low, high = float(values.min()) - 0.1, float(values.max()) + 0.1
    for ax in axes[0]:
        ax.plot([low, high], [low, high], ls="--", color="0.4", lw=1, label="_identity")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    few = ok[~ok.enough.astype(bool) & ok.alpha_iterates.notna()]
    window = table.window.dropna()
    window_text = f"window W = {int(window.iloc[0])} steps" if len(window) else "no window"
    note = excluded_runs_note(runs)
    note += f" {len(no_window)} run(s) without a window" if len(no_window) else ""
    note += f"; {len(few)} estimate(s) from too few values left out" if len(few) else ""
    suptitle(
        fig,
        "Robust α̂ of the centred iterates θ_k − θ̄ over the last window against the robust α̂ "
        f"of the gradient noise at the last checkpoint ({window_text}; bars: "
        f"{level_text(ci_level)} batch-means intervals, pooled ones widened by the K1 spread; "
        f"dashed: identity)\n{note}",
    )
    fig.tight_layout()
    save_figure(fig, pdf, png)
    return fig
