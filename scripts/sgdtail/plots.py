"""Figures drawn with seaborn from the tidy tables (see sgdtail.aggregate)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sgdtail.io import atomic_path  # noqa: E402

ESTIMATOR_LABELS = {
    "alpha_reference": "pooled, reference (2019 code)",
    "alpha_robust": "pooled, robust (median over K1)",
    "alpha_per_coordinate_median": "per coordinate across minibatches (median)",
}
"""The α columns of the summary table shown side by side, so no figure hides the estimator."""

LOSS_LABELS = {"cross_entropy": "cross-entropy", "hinge": "hinge"}


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig: plt.Figure, pdf: str | Path, png: str | Path) -> None:
    """Save ``fig`` as PDF and PNG (150 dpi), atomically, and close it."""
    for path, kwargs in ((pdf, {}), (png, {"dpi": 150})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix[1:], bbox_inches="tight", **kwargs)
    plt.close(fig)


def final_checkpoints(summary: pd.DataFrame, split: str = "train") -> pd.DataFrame:
    """Rows of each run's last measured checkpoint on ``split``, runs that diverged left out."""
    ok = summary[(summary.split == split) & (summary.status != "diverged")]
    run_keys = ["dataset", "arch", "width", "depth", "batch_size", "lr", "loss", "seed"]
    last = ok.groupby(run_keys)["step"].transform("max")
    return ok[ok.step == last]


def excluded_note(runs: pd.DataFrame) -> str:
    """A sentence naming how many runs are left out of α statistics and why."""
    diverged = runs[runs.status == "diverged"]
    if diverged.empty:
        return f"{len(runs)} runs, none excluded"
    return (
        f"{len(runs)} runs; {len(diverged)} excluded (diverged: loss not finite, "
        f"at steps {sorted(int(s) for s in diverged.diverged_at)})"
    )


def long_alpha(df: pd.DataFrame) -> pd.DataFrame:
    """Melt the α columns of ``df`` into (estimator, alpha) rows with readable labels."""
    id_vars = [c for c in df.columns if c not in ESTIMATOR_LABELS]
    long = df.melt(id_vars=id_vars, value_vars=list(ESTIMATOR_LABELS), var_name="estimator",
                   value_name="alpha")
    long["estimator"] = long["estimator"].map(ESTIMATOR_LABELS)
    long["setting"] = long["dataset"].str.upper() + ", " + long["loss"].map(LOSS_LABELS)
    return long


def plot_alpha_vs_axis(
    summary: pd.DataFrame, runs: pd.DataFrame, axis: str, hue: str, pdf: str | Path,
    png: str | Path, arch: str = "fcn", log_x: bool = True, axis_label: str | None = None,
) -> None:
    """α at the end of training against ``axis``, one line per ``hue``, bands over seeds.

    Rows of the grid: estimators; columns: data set × loss. Train-split noise.
    """
    set_style()
    df = final_checkpoints(summary)
    df = df[df.arch == arch]
    if df.empty:
        raise ValueError(
            f"no {arch} runs with a measured checkpoint in the summary table; "
            f"add {arch} runs to the selected grid to draw this figure"
        )
    long = long_alpha(df)
    grid = sns.relplot(
        data=long, x=axis, y="alpha", hue=hue, row="estimator", col="setting", kind="line",
        marker="o", errorbar=("pi", 100), palette="viridis", height=2.6, aspect=1.4,
        facet_kws={"sharey": False, "margin_titles": True},
    )
    for ax in grid.axes.flat:
        if log_x:
            ax.set_xscale("log", base=2)
        ax.axhline(2.0, color="grey", lw=0.8, ls="--")
    grid.set_axis_labels(axis_label or axis, "tail index α̂")
    grid.set_titles(row_template="{row_name}", col_template="{col_name}")
    grid.figure.suptitle(
        f"α̂ of the training-set gradient noise at the last checkpoint "
        f"(dashed: Gaussian, α = 2)\n{excluded_note(runs)}", y=1.02,
    )
    save_figure(grid.figure, pdf, png)
