"""What every figure of the workflow draws, read back from its matplotlib objects.

A file size does not tell an empty panel from a drawn one (an empty three-panel PDF is
13 KB), so each figure function is run on small synthetic tables shaped like the pipeline's
and its content is checked: the number of axes, per axes the lines / points / bars / error
bars drawn and their data (x = the swept values, y = the α̂ given), titles, axis labels and
legend entries. The figure functions return the Figure they saved (closed, still readable);
:func:`sgdtail.plots_dynamics.metastability_figure` builds figure 3 without saving it.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_claims import STEPS, SWEEP_K1, make_tables, run, widths

from sgdtail import dynamics as D
from sgdtail import plots as P
from sgdtail import plots_dynamics as PD
from sgdtail import sharpness as S
from sgdtail.validation import minimum_sample_table, sweep_slope, synthetic_block_sweep

ESTIMATOR_COLUMNS = list(P.ESTIMATOR_LABELS)  # reference, robust, per-coordinate median


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def out(tmp_path):
    """``out(name)``: the (pdf, png) paths of a figure in the test's temporary folder."""
    return lambda name: (str(tmp_path / f"{name}.pdf"), str(tmp_path / f"{name}.png"))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def xy(line) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def curves(ax, n: int) -> list:
    """Lines of ``ax`` with exactly ``n`` points (reference lines such as axhline have 2)."""
    return [line for line in ax.lines if len(line.get_xdata()) == n]


def curve_data(ax, n: int) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """(x, y) of the ``n``-point lines of ``ax``, rounded and sorted (order-free comparison)."""
    return sorted((tuple(np.round(x, 9)), tuple(np.round(y, 9))) for x, y in map(xy, curves(ax, n)))


def errorbar_points(ax) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x, y) of the data line of each error bar container of ``ax``."""
    return [xy(c.lines[0]) for c in ax.containers if hasattr(c, "has_yerr")]


def horizontal_at(ax, y: float) -> int:
    """Number of axhline-style lines of ``ax`` at height ``y``."""
    return sum(
        1
        for line in ax.lines
        if list(line.get_xdata()) == [0, 1] and np.allclose(line.get_ydata(), y)
    )


def legend_texts(legend) -> list[str]:
    assert legend is not None, "no legend"
    return [t.get_text() for t in legend.get_texts()]


def title(fig) -> str:
    return " ".join(fig._suptitle.get_text().split())  # unwrapped


# ----------------------------------------------------------------------------- α vs an axis


def test_alpha_vs_width_draws_every_estimator_s_alpha_per_depth_line(out):
    """Three rows (the estimators), one facet: per depth a line through the swept widths at
    the α̂ of that estimator; the robust row has one interval bar per point."""
    runs = widths(3) + [run(width=16 * 2**i, depth=3) for i in range(3)]
    offsets = {"reference": -0.3, "robust": 0.0, "per_coordinate": 0.3}

    def alpha(kind: str):
        return lambda r, s: 1.2 + offsets[kind] + r["width"] / 1000 + 0.05 * r["depth"]

    summary, _, runs_table = make_tables(
        runs,
        alpha=alpha("robust"),
        half_width=0.02,
        other={"reference": alpha("reference"), "per_coordinate": alpha("per_coordinate")},
    )
    fig = P.plot_alpha_vs_axis(
        summary, runs_table, "width", "depth", *out("w"), arch="fcn", axis_label="FCN width"
    )
    assert len(fig.axes) == 3
    for r, (kind, ax) in enumerate(zip(offsets, fig.axes, strict=True)):
        expected = sorted(
            (
                (16.0, 32.0, 64.0),
                tuple(round(1.2 + offsets[kind] + w / 1000 + 0.05 * d, 9) for w in (16, 32, 64)),
            )
            for d in (2, 3)
        )
        assert curve_data(ax, 3) == expected, (kind, curve_data(ax, 3))
        assert len(ax.collections) >= 2  # the seed bands, one per line
        assert horizontal_at(ax, 2.0) == 1  # the Gaussian reference
        label = P.ESTIMATOR_LABELS[ESTIMATOR_COLUMNS[r]]
        assert ax.get_title() == (f"MNIST, cross-entropy\n{label}" if r == 0 else label)
        assert ax.get_ylabel() == "tail index α̂"
        assert ax.get_xlabel() == ("FCN width" if r == 2 else "")
    bars = errorbar_points(fig.axes[1])
    assert len(bars) == 6 and not errorbar_points(fig.axes[0]) and not errorbar_points(fig.axes[2])
    assert sorted(float(x[0]) for x, _ in bars) == [16, 16, 32, 32, 64, 64]
    (legend,) = fig.legends
    assert legend_texts(legend) == ["2", "3", "Gaussian, α = 2"]
    assert legend.get_title().get_text() == "depth"
    assert "6 runs drawn (those in a sweep over width)" in title(fig)


def test_alpha_vs_batch_size_draws_one_line_per_network_with_the_seed_range(out):
    """Hue "network": one line per network through its batch sizes at the mean over seeds,
    and a band spanning the seeds' range; runs outside the batch sweep are not drawn."""
    batch = [run(width=64, batch_size=b) for b in (100, 250, 1000)]
    others = [run(width=16), run(width=64, depth=3)]  # in no batch-size sweep
    runs = [{**r, "seed": s} for r in batch + others for s in (0, 1)]
    summary, _, runs_table = make_tables(
        runs, alpha=lambda r, s: 1.3 + 0.1 * math.log10(r["batch_size"]) + 0.04 * r["seed"]
    )
    fig = P.plot_alpha_vs_axis(summary, runs_table, "batch_size", "network", *out("b"))
    assert len(fig.axes) == 3
    means = tuple(round(1.3 + 0.1 * math.log10(b) + 0.02, 9) for b in (100, 250, 1000))
    for ax in fig.axes:
        assert curve_data(ax, 3) == [((100.0, 250.0, 1000.0), means)]
        (band,) = [c for c in ax.collections if "FillBetween" in type(c).__name__]
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(1.5) and ys.max() == pytest.approx(1.6 + 0.04)
    assert legend_texts(fig.legends[0]) == ["FCN 64×2", "Gaussian, α = 2"]
    assert "6 runs drawn" in title(fig)


# ----------------------------------------------------------------------------- noise norms


def norms_table(showcase: list[dict], n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    **r,
                    "step": 1000,
                    "split": split,
                    "minibatch": np.arange(n),
                    "norm": rng.lognormal(0, 0.3, n),
                }
            )
            for r in showcase
            for split in ("train", "test")
        ],
        ignore_index=True,
    )


def test_noise_norm_histogram_bars_count_the_measured_norms(out):
    """Rows measured / Gaussian / SαS, one column per showcase run: every panel has its bars
    (percentages summing to 100) and the median line; the measured bars count the norms."""
    showcase = [run(width=16), run(width=32)]
    summary, _, _ = make_tables(showcase, alpha=1.4)
    norms = norms_table(showcase)
    fig = P.plot_noise_norm_histogram(
        norms, summary, showcase, *out("n"), max_synthetic_values=30_000
    )
    axes = np.array(fig.axes).reshape(3, 2)
    for c, r in enumerate(showcase):
        measured = P.select_run(norms, r).query("split == 'train'")["norm"].to_numpy()
        for row in range(3):
            ax = axes[row, c]
            assert len(ax.patches) == 15, (row, c)  # 2√60 bins, clipped to [15, 60]
            assert sum(p.get_height() for p in ax.patches) == pytest.approx(100)
            (median,) = [line for line in ax.lines if list(line.get_ydata()) == [0, 1]]
            assert xy(median)[0] == pytest.approx(np.median(measured))
            assert ax.get_ylabel() == ("% of vectors" if c == 0 else "")
        for p in axes[0, c].patches:  # bar heights: % of the measured norms in the bar
            inside = (measured >= p.get_x()) & (measured < p.get_x() + p.get_width())
            assert p.get_height() == pytest.approx(100 * inside.mean(), abs=1e-6)
        heads = [axes[row, c].get_title() for row in range(3)]
        assert heads[0].startswith(P.run_label(r)) and "M = 1,000 parameters" in heads[0]
        assert "measured noise ‖U_p‖ of the minibatches\n60 vectors" in heads[0]
        assert heads[1].startswith("Gaussian, σ = ") and "\n60 vectors" in heads[1]
        assert heads[2].startswith("SαS, α = 1.40 (robust α̂)") and "\n30 vectors" in heads[2]
        assert axes[2, c].get_xlabel() == "Euclidean norm (gradient units; log scale)"


# ----------------------------------------------------------------------------- estimators


def validation_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(table, gaussian readings, minimums) with known values: estimator e reads
    ``0.9 α + shift[e] + n/10⁵ + 0.02·repeat`` on SαS data; Hill reads 5 on the pitfalls."""
    shift = {"mohammadi_reference": -0.1, "mohammadi_robust": 0.0, "hill": 0.1}
    rows = []
    for case, trues in (
        ("sas", [1.0, 1.5, 2.0]),
        ("gauss_zeros_1pct", [2.0]),
        ("gauss_lognormal_scales", [2.0]),
    ):
        for est, ta, n, rep in (
            (e, t, n, r) for e in shift for t in trues for n in (2000, 5000) for r in (0, 1)
        ):
            a = 0.9 * ta + shift[est] + n / 1e5 + 0.02 * rep
            if case != "sas":
                a = 5.0 if est == "hill" else 1.8 + shift[est]
            rows.append(
                dict(case=case, true_alpha=ta, size=n, repeat=rep, estimator=est, alpha_hat=a)
            )
    kinds = {
        "mohammadi_reference": "pooled",
        "mohammadi_robust": "pooled",
        "hill": "pooled",
        "per_coordinate_median": "per_coordinate",
    }
    gaussian = pd.DataFrame(
        [
            dict(estimator=e, kind=k, size=n, repeat=r, alpha_hat=2.0 - 10 / n)
            for e, k in kinds.items()
            for n in (100, 1000, 10000)
            for r in (0, 1)
        ]
    )
    return pd.DataFrame(rows), gaussian, minimum_sample_table(gaussian, 1000, 100)


def test_estimator_validation_draws_each_estimator_s_means_per_size(out):
    """Top: one panel per estimator, a line per sample size through the true α values at the
    mean α̂; bottom: the pitfall panel (bars, ▲ for off-scale Hill) and two Gaussian panels."""
    table, gaussian, minimums = validation_tables()
    fig = P.plot_estimator_validation(table, *out("v"), gaussian=gaussian, minimums=minimums)
    assert len(fig.axes) == 3 + 3
    top, (pit, pooled, coord) = fig.axes[:3], fig.axes[3:]
    shift = (-0.1, 0.0, 0.1)
    for ax, name, s in zip(
        top, ("mohammadi_reference", "mohammadi_robust", "hill"), shift, strict=True
    ):
        expected = sorted(
            (
                (1.0, 1.5, 2.0),
                tuple(round(0.9 * t + s + n / 1e5 + 0.01, 9) for t in (1.0, 1.5, 2.0)),
            )
            for n in (2000, 5000)
        )
        assert curve_data(ax, 3) == expected, name
        assert curve_data(ax, 2) == [((0.0, 2.6), (0.0, 2.6))]  # α̂ = α
        assert ax.get_title() == P.VALIDATION_ESTIMATORS[name]
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("true α", "estimated α̂")
    (legend,) = fig.subfigs[0].legends
    assert legend_texts(legend) == ["n = 2,000", "n = 5,000", "α̂ = α"]
    bars = errorbar_points(pit)  # 2 cases × (reference, robust); Hill (5.0) is off scale
    assert sorted(round(float(y[0]), 9) for _, y in bars) == [1.7, 1.7, 1.8, 1.8]
    assert len([line for line in pit.lines if line.get_marker() == "^"]) == 2
    assert [t.get_text() for t in pit.get_xticklabels()] == [
        P.PITFALL_LABELS["gauss_zeros_1pct"],
        P.PITFALL_LABELS["gauss_lognormal_scales"],
    ]
    assert legend_texts(pit.get_legend()) == [
        P.VALIDATION_ESTIMATORS[n] for n in ("mohammadi_reference", "mohammadi_robust", "hill")
    ]
    readings = ((100.0, 1000.0, 10000.0), (1.9, 1.99, 1.999))
    assert curve_data(pooled, 3) == [readings] * 3 and curve_data(coord, 3) == [readings]
    assert legend_texts(pooled.get_legend()) == [
        "reference",
        "robust",
        "Hill (▲ capped)",
        "configured minimum (1,000)",
    ]
    assert legend_texts(coord.get_legend()) == ["per-coordinate median", "configured minimum (100)"]
    assert pooled.get_xlabel() == "values n (pooled)"
    assert coord.get_xlabel() == "minibatches P (per coordinate)"


# ----------------------------------------------------------------------------- over training


def test_alpha_and_accuracy_over_training_draws_both_splits_and_the_accuracies(out):
    """Rows: the three estimators (a line per split through the checkpoints at the α̂ given,
    the robust row with interval bands), then accuracy (minibatch running mean and the
    train / test accuracy at the checkpoints)."""
    showcase = [run()]
    summary, _, _ = make_tables(showcase, alpha=lambda r, s: 1.8 - 0.1 * np.log1p(s))
    test = summary.split == "test"
    summary.loc[test, ESTIMATOR_COLUMNS] += 0.05
    summary.loc[test, ["alpha_robust_ci_low", "alpha_robust_ci_high"]] += 0.05
    summary["train_accuracy"] = np.where(summary.step <= 1, 0.1, 0.95)
    log = pd.DataFrame(
        {
            "step": np.arange(1, 1001),
            "lr": 0.1,
            "loss": 1.0,
            "accuracy": np.linspace(0.1, 0.95, 1000),
        }
    )
    fig = P.plot_alpha_and_accuracy_over_training(summary, [log], showcase, *out("t"))
    assert len(fig.axes) == 4
    steps = tuple(float(s) for s in STEPS)
    train = tuple(round(1.8 - 0.1 * np.log1p(s), 9) for s in STEPS)
    test_alpha = tuple(round(a + 0.05, 9) for a in train)
    for r, ax in enumerate(fig.axes[:3]):
        assert curve_data(ax, len(STEPS)) == sorted([(steps, train), (steps, test_alpha)])
        assert horizontal_at(ax, 2.0) == 1
        assert len(ax.collections) == (2 if r == 1 else 0)  # interval bands: robust row
        assert ax.get_title().endswith(P.ESTIMATOR_LABELS[ESTIMATOR_COLUMNS[r]])
    assert fig.axes[0].get_title().startswith(P.run_label(run()))
    assert "noise from P = 20 training / 20 test minibatches" in fig.axes[0].get_title()
    acc = fig.axes[3]
    lines = {line.get_label(): xy(line) for line in acc.lines}
    assert set(lines) == {
        "training minibatch (10-step mean)",
        "train set (at checkpoints)",
        "test set (at checkpoints)",
    }
    x, y = lines["training minibatch (10-step mean)"]
    assert len(x) == 1000 and y[0] == pytest.approx(10) and y[-1] == pytest.approx(94.617, 1e-3)
    assert lines["train set (at checkpoints)"][1] == pytest.approx([10, 10, 95, 95, 95, 95, 95])
    assert lines["test set (at checkpoints)"][1] == pytest.approx([10, 10, 90, 90, 90, 90, 90])
    assert (acc.get_title(), acc.get_ylabel()) == ("accuracy", "accuracy (%)")
    assert legend_texts(fig.legends[0]) == [
        "training set",
        "test set",
        "training minibatch accuracy\n(10-step running mean)",
        "Gaussian, α = 2",
        "95% batch-means interval",
    ]


# ----------------------------------------------------------------------------- block size


def test_alpha_vs_block_size_draws_measured_and_synthetic_sweeps(out):
    """One panel per showcase run: the synthetic SαS and Gaussian sweeps, the measured sweep
    in both orders (x = K1, y = the α̂ given), the reference ★ and the robust ◇ with its bar."""
    showcase = [run()]
    summary, estimates, _ = make_tables(
        showcase, sweep=lambda r, s, k1: 1.1 + 0.1 * np.log10(k1) + (0.05 if s == 1000 else 0)
    )
    estimates["n_values"] = 100_000
    extra = pd.DataFrame(
        [
            {
                **run(),
                "step": 1000,
                "split": "train",
                "estimator": "mohammadi_reference",
                "scope": "pooled",
                "order": "natural",
                "k1": 250,
                "alpha": 1.31,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "n_values": 100_000,
            },
            {
                **run(),
                "step": 1000,
                "split": "train",
                "estimator": "mohammadi_robust",
                "scope": "pooled",
                "order": "natural",
                "k1": 316,
                "alpha": 1.3,
                "ci_low": 1.25,
                "ci_high": 1.36,
                "n_values": 100_000,
            },
        ]
    )
    estimates = pd.concat([estimates, extra], ignore_index=True)
    synthetic = synthetic_block_sweep(20_000, 1.5, [10, 30, 100, 300, 1000])
    fig = P.plot_alpha_vs_block_size(estimates, synthetic, showcase, *out("k"))
    (ax,) = fig.axes
    lines = {line.get_label(): xy(line) for line in ax.lines}
    measured = tuple(float(k) for k in SWEEP_K1), [1.25, 1.35, 1.45]  # the last checkpoint
    for order in ("natural", "shuffled"):
        x, y = lines[f"measured, {order} order (+0.100)"]
        assert tuple(x) == measured[0] and y == pytest.approx(measured[1])
    for case, label in (("gaussian", "i.i.d. Gaussian"), ("sas", "i.i.d. SαS α = 1.5")):
        d = synthetic[synthetic.case == case].sort_values("k1")
        x, y = lines[f"{label} ({sweep_slope(d.k1, d.alpha_hat):+.3f})"]
        assert list(x) == list(d.k1) and list(y) == pytest.approx(list(d.alpha_hat))
    x, y = lines["reference α̂ = 1.31 at its K1"]
    assert (list(x), list(y)) == ([250.0], [1.31])
    ((x, y),) = errorbar_points(ax)
    assert (list(x), list(y)) == ([316.0], [1.3])
    assert horizontal_at(ax, 2.0) == 1
    assert len(legend_texts(ax.get_legend())) == 6
    assert legend_texts(ax.get_legend())[-1] == "robust α̂ = 1.30 (shown at K1 = 316)"
    assert ax.get_title().startswith(P.run_label(run()) + "\nstep 1000, training set")
    assert ax.get_ylabel() == "pooled α̂" and ax.get_xscale() == "log"


# ----------------------------------------------------------------------------- runtime


def test_runtime_by_grid_axis_draws_one_point_per_job_in_every_panel(out):
    """Rows seconds / peak memory, columns width / depth / parameters: every panel has one
    point per job at (its axis value, its measurement); the legend names the rules."""
    runs = widths(3) + [run(width=16, depth=3)]
    _, _, runs_table = make_tables(runs)
    runs_table["n_parameters"] = [1000, 4000, 16000, 2000]
    rules = (("train_sgd", 10.0), ("measure_gradient_noise", 30.0))
    bench = pd.DataFrame(
        [
            {
                "rule": rule,
                **r,
                "s": sec * r["width"] / 16 * r["depth"],
                "max_rss": 800.0 + r["width"],
                "cpu_time": 9.0,
            }
            for rule, sec in rules
            for r in runs
        ]
    )
    fig = P.plot_runtime_by_grid_axis(bench, runs_table, *out("r"))
    assert len(fig.axes) == 6
    jobs = bench.merge(runs_table[[*P.RUN_KEYS, "n_parameters"]], on=P.RUN_KEYS)
    for i, ax in enumerate(fig.axes):
        y_col = ("s", "max_rss")[i // 3]
        x_col = ("width", "depth", "n_parameters")[i % 3]
        (points,) = ax.collections
        got = sorted(map(tuple, np.round(np.asarray(points.get_offsets(), float), 6)))
        assert got == sorted(
            zip(jobs[x_col].astype(float), jobs[y_col].astype(float), strict=True)
        ), (x_col, y_col)
    assert [ax.get_xlabel() for ax in fig.axes[3:]] == [
        "width (FCN units / AlexNet filters ch)",
        "depth (weight layers)",
        "trainable parameters M",
    ]
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == [
        "wall-clock time (s)",
        "peak memory, max RSS (MB)",
    ]
    legend = fig.axes[2].get_legend()
    assert legend_texts(legend) == ["measure_gradient_noise", "train_sgd"]
    hours = bench[bench.rule == "train_sgd"].s.sum() / 3600
    assert f"train_sgd: {hours:.2f} h in all" in title(fig)


# ----------------------------------------------------------------------------- sharpness


def sharpness_runs() -> pd.DataFrame:
    """Two families of 5 admitted end points with known values and two excluded ones."""
    rows = [
        dict(
            family=fam,
            alpha_robust=lo + 0.1 * i,
            random_direction_sharpness=scale * (i + 1),
            top_hessian_eigenvalue=100 * scale * (i + 1),
            excluded="",
        )
        for fam, lo, scale in (
            ("mnist/fcn/cross_entropy/lr0.1", 1.0, 1.0),
            ("cifar10/alexnet/cross_entropy/lr0.1", 1.5, 0.1),
        )
        for i in range(5)
    ]
    rows += [
        dict(
            family="mnist/fcn/cross_entropy/lr0.1",
            alpha_robust=1.9,
            random_direction_sharpness=0.5,
            top_hessian_eigenvalue=7.0,
            excluded="not a minimum",
        ),
        dict(
            family="mnist/fcn/cross_entropy/lr0.1",
            alpha_robust=1.8,
            random_direction_sharpness=np.nan,
            top_hessian_eigenvalue=np.nan,
            excluded="not trained (status diverged)",
        ),
    ]
    return pd.DataFrame(rows)


def test_sharpness_vs_alpha_draws_each_family_s_points_in_both_panels(out):
    """One panel per sharpness measure: a point per admitted end point at (α̂, measure) in its
    family's colour, excluded end points as grey crosses; the legend counts them."""
    df = sharpness_runs()
    _, results = S.claim_c6(
        df, dict(min_rho=0.0, min_runs=8, min_family_runs=3, max_gradient_to_noise=1.0), n_boot=200
    )
    fig = S.plot_sharpness_vs_alpha(df, results, *out("s"))
    assert len(fig.axes) == len(S.MEASURES) == 2
    fams = sorted(set(df.family))
    for i, (ax, (col, label)) in enumerate(zip(fig.axes, S.MEASURES, strict=True)):
        *admitted, excluded = ax.collections
        assert len(admitted) == len(fams)
        for fam, points in zip(fams, admitted, strict=True):
            d = df[(df.family == fam) & (df.excluded == "")]
            assert np.asarray(points.get_offsets(), float) == pytest.approx(
                d[["alpha_robust", col]].to_numpy(float)
            )
        crosses = np.asarray(excluded.get_offsets(), float)
        assert len(crosses) == 2 and crosses[0] == pytest.approx([1.9, df[col].iloc[10]])
        assert ax.get_ylabel() == label
        assert ax.get_xlabel() == "final tail index α̂ (pooled, robust; train noise)"
        role = "primary (the C6 verdict)" if i == 0 else "reported beside it"
        assert ax.get_title().startswith(f"{role}: within-family ρ = {results[col]['rho']:.2f}")
    texts = legend_texts(fig.axes[-1].get_legend())
    assert len(texts) == 3 and texts[-1] == "excluded: n = 2"
    assert texts[0].startswith(f"{fams[0]}: n = 5, ρ (sharpness / λ_max) = ")
    assert "2 of 12 end points excluded" in title(fig)


# ----------------------------------------------------------------------------- dynamics


def exit_table() -> pd.DataFrame:
    """An exit-time table (columns of :func:`sgdtail.dynamics.exit_time_sweep`) with known
    values: mean 10·H·W·α, interval ±20 %, σ = 0.1·H·W, ρ = 1 + σ."""
    rows = []
    for a, sweep, heights, half_widths in (
        (1.5, "height", [2.0, 4.0, 8.0], [1.0]),
        (1.5, "width", [4.0], [0.5, 1.0, 2.0]),
        (2.0, "height", [2.0, 3.0, 4.0], [1.0]),
    ):
        for h in heights:
            for w in half_widths:
                m, sigma = 10 * h * w * a, 0.1 * h * w
                rows.append(
                    dict(
                        alpha=a,
                        height=h,
                        width=w,
                        eps=1.0,
                        mean=m,
                        ci_low=0.8 * m,
                        ci_high=1.2 * m,
                        sweep=sweep,
                        level=0.95,
                        sigma=sigma,
                        rho=1 + sigma,
                        rho_ci_low=0.9 + sigma,
                        rho_ci_high=1.1 + sigma,
                    )
                )
    return pd.DataFrame(rows)


def test_exit_time_vs_height_draws_means_asymptotes_and_ratios(tmp_path):
    """Left: per α the mean exit time at each height (error bars) and its dashed ε → 0
    asymptote, plus the exact Brownian mean; right: mean/asymptote against σ for every row."""
    df = exit_table()
    fig = PD.plot_exit_time_vs_height(df, tmp_path / "h.pdf", tmp_path / "h.png")
    left, right = fig.axes
    bars = sorted((tuple(x), tuple(y)) for x, y in errorbar_points(left))
    assert bars == [((2.0, 3.0, 4.0), (40.0, 60.0, 80.0)), ((2.0, 4.0, 8.0), (30.0, 60.0, 120.0))]
    dashed = [xy(line) for line in curves(left, 60) if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    for x, y in dashed:
        a = 1.5 if x[-1] == 8.0 else 2.0
        assert y == pytest.approx([D.small_noise_asymptote(a, h, 1.0, 1.0) for h in x])
    (exact,) = [line for line in left.lines if line.get_label().startswith("α = 2: exact")]
    x, y = xy(exact)
    assert y[[0, -1]] == pytest.approx([D.brownian_mean_exit_time(h, 1.0, 1.0) for h in (2, 4)])
    assert legend_texts(left.get_legend()) == [
        "α = 2: exact mean (quadrature)",
        "α = 1.5",
        "α = 2 (Brownian)",
    ]
    ratios = errorbar_points(right)  # one set of points per α: every row of the table
    assert [sorted(x) for x, _ in ratios] == [sorted(df[df.alpha == a].sigma) for a in (1.5, 2)]
    assert all(y == pytest.approx(1 + x) for x, y in ratios)
    assert horizontal_at(right, 1.0) == 1
    assert left.get_xlabel() == "barrier height H (energy units, log scale)"
    assert right.get_ylabel() == "mean / ε → 0 asymptote (log scale)"
    assert (left.get_xscale(), left.get_yscale()) == ("log", "log")


def test_exit_time_vs_width_draws_the_width_sweep_and_its_power_law(tmp_path):
    fig = PD.plot_exit_time_vs_width(exit_table(), tmp_path / "w.pdf", tmp_path / "w.png")
    (ax,) = fig.axes
    ((x, y),) = errorbar_points(ax)
    assert list(x) == [0.5, 1.0, 2.0] and list(y) == pytest.approx([30.0, 60.0, 120.0])
    (asymptote,) = curves(ax, 40)
    x, y = xy(asymptote)
    assert y == pytest.approx([D.levy_mean_exit_time_asymptotic(1.5, w, 1.0) for w in x])
    assert legend_texts(ax.get_legend()) == ["α = 1.5"]
    assert ax.get_title().startswith("H = 4, ε = 1")
    assert ax.get_xlabel() == "basin half-width W (position units, log scale)"


def test_levy_vs_brownian_paths_draws_every_walk_its_zoom_and_the_shares(tmp_path):
    """Per noise: the whole walk and its first ``zoom`` steps (y = the path given); right:
    the median share against the window for every noise, with its interval."""
    labels = [n["noise"] for n in D.noise_list([1.5, 2.0], 3.0)]
    walks = np.cumsum(np.random.default_rng(0).standard_normal((3, 501)), axis=1)
    shares = pd.DataFrame(
        [
            dict(
                noise=lab,
                window=w,
                share=(i + 1) / np.log(w),
                share_ci_low=0.8 * (i + 1) / np.log(w),
                share_ci_high=1.2 * (i + 1) / np.log(w),
            )
            for i, lab in enumerate(labels)
            for w in (4, 64, 256)
        ]
    )
    fig = PD.plot_levy_vs_brownian_paths(
        walks, labels, shares, tmp_path / "p.pdf", tmp_path / "p.png", zoom_steps=50
    )
    assert len(fig.axes) == 2 * len(labels) + 1
    for i, lab in enumerate(labels):
        whole, zoom = fig.axes[2 * i], fig.axes[2 * i + 1]
        (line,) = whole.lines
        assert list(xy(line)[0]) == list(range(501)) and list(xy(line)[1]) == list(walks[i])
        (line,) = zoom.lines
        assert list(xy(line)[1]) == list(walks[i, :51])
        assert whole.get_ylabel() == f"{lab}\nX_k"
    assert fig.axes[0].get_title() == "whole walk, 500 steps"
    assert fig.axes[1].get_title() == "first 50 steps, same y-scale"
    right = fig.axes[-1]
    for i, (x, y) in enumerate(errorbar_points(right)):
        assert list(x) == [4, 64, 256] and y == pytest.approx((i + 1) / np.log(x))
    assert len(right.containers) == 3
    assert legend_texts(right.get_legend()) == labels


def test_stable_densities_draws_each_alpha_and_the_gaussian(tmp_path):
    fig = PD.plot_stable_densities([1.5], tmp_path / "d.pdf", tmp_path / "d.png")
    lin, tail = fig.axes
    for ax in (lin, tail):
        assert [line.get_label() for line in ax.lines] == ["α = 1.5", "α = 2 (Gaussian)"]
    assert legend_texts(lin.get_legend()) == ["α = 1.5", "α = 2 (Gaussian)"]
    x, y = xy(lin.lines[1])
    assert len(x) == 241 and y == pytest.approx(stats.norm(scale=math.sqrt(2)).pdf(x))
    x, y = xy(lin.lines[0])
    assert y[120] == pytest.approx(stats.levy_stable(1.5, 0.0).pdf(0.0), rel=1e-6)
    x, y = xy(tail.lines[0])  # the power-law tail: log-log slope → −1 − α
    assert np.polyfit(np.log(x[-10:]), np.log(y[-10:]), 1)[0] == pytest.approx(-2.5, abs=0.05)
    assert (tail.get_xscale(), tail.get_yscale()) == ("log", "log")
    assert lin.get_title() == "SαS(1) densities"


def test_metastability_draws_the_potential_both_paths_and_the_fractions():
    fig, info = PD.metastability_figure(n_steps=4000, n_candidates=16)
    assert len(fig.axes) == 4
    potential, levy, brown, bars = fig.axes
    (u,) = curves(potential, 400)
    x, y = xy(u)
    assert y == pytest.approx(D.potential(x, 1.0, 0.5, 2.0))
    for ax, label in ((levy, "Lévy, α = 1.2"), (brown, "Brownian, α = 2")):
        (path,) = curves(ax, 4001)
        assert xy(path)[1][0] == pytest.approx(-0.5)  # starts at the narrow minimum
        assert ax.get_ylabel() == f"{label}\nposition X(t)"
    assert info["jump_time"] is not None  # seed 0 has a jump; it is marked where it happens
    assert any(xy(line)[0][-1] == pytest.approx(info["jump_time"]) for line in levy.lines)
    assert [t.get_text() for t in levy.texts] == ["escape from the narrow basin in one jump"]
    assert [p.get_height() for p in bars.patches] == pytest.approx(
        list(info["frac_time_wide"].values())
    )
    assert [t.get_text() for t in bars.get_xticklabels()] == ["α = 1.2", "α = 2"]
    assert fig._suptitle.get_text().startswith("Metastability: H = 1, W = 0.5 vs 2")


def test_alpha_vs_eta_over_b_linear_draws_theory_lines_and_simulated_points(out):
    """One panel per dimension; per batch size, the theory's curve and the simulated settings
    (only those simulated) with their intervals; α = 2 marked."""
    theory = pd.DataFrame(
        [{"d": d, "b": b, "eta_over_b": r, "alpha": 10 * r / b}
         for d in (5, 10) for b in (1, 2) for r in (0.1, 0.2, 0.3)]
    )  # fmt: skip
    sim = pd.DataFrame(
        [{"d": d, "b": b, "eta_over_b": r, "alpha_theory": 3.0, "simulated": r != 0.3,
          "alpha_hat": 2.0 + r + d / 100, "ci_low": 1.5, "ci_high": 2.5}
         for d in (5, 10) for b in (1, 2) for r in (0.1, 0.2, 0.3)]
    )  # fmt: skip
    fig = PD.plot_alpha_vs_eta_over_b_linear(sim, theory, *out("lin"))
    assert [ax.get_title() for ax in fig.axes] == ["d = 5", "d = 10"]
    for ax, d in zip(fig.axes, (5, 10), strict=True):
        assert curve_data(ax, 3) == [
            ((0.1, 0.2, 0.3), (0.5, 1.0, 1.5)),
            ((0.1, 0.2, 0.3), (1.0, 2.0, 3.0)),
        ]
        points = sorted((tuple(x), tuple(np.round(y, 9))) for x, y in errorbar_points(ax))
        want = ((0.1, 0.2), tuple(np.round([2.1 + d / 100, 2.2 + d / 100], 9)))
        assert points == [want] * 2
        assert horizontal_at(ax, 2.0) == 1 and ax.get_xscale() == "log"
        assert ax.get_xlabel() == "η / b"
    assert fig.axes[0].get_ylabel() == "tail index α of the iterates"
    assert legend_texts(fig.axes[0].get_legend()) == ["b = 1", "b = 2"]


def iterates_pairs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """iterates_vs_noise.csv for three runs (seeds 0-2) and their runs.csv: seed 2 did not
    train; per run a pooled row and two layers, of which layer ``b`` has too few values for
    seed 0; seed 1 also has a run without a window (seed 3)."""
    rows, runs = [], []
    for seed in range(4):
        axes = run(width=64, depth=3, seed=seed)
        runs.append({**axes, "status": "not_trained" if seed == 2 else "completed",
                     "diverged_at": np.nan, "final_train_accuracy": 0.9})  # fmt: skip
        if seed == 3:
            rows.append({**axes, "scope": "pooled", "status": "completed", "enough": False,
                         "alpha_iterates": np.nan, "alpha_noise": 1.3,
                         "note": "run ended"})  # fmt: skip
            continue
        for scope, shift in (("pooled", 0.0), ("a", 0.1), ("b", 0.2)):
            rows.append({**axes, "scope": scope, "status": runs[-1]["status"], "window": 10,
                         "alpha_iterates": 1.5 + shift + seed / 100, "ci_low_iterates": 1.4,
                         "ci_high_iterates": 1.9, "alpha_noise": 1.2 + shift,
                         "ci_low_noise": 1.1, "ci_high_noise": 1.5, "note": np.nan,
                         "enough": not (scope == "b" and seed == 0)})  # fmt: skip
            if scope == "pooled":  # the K1 spread is known for pooled estimates only
                rows[-1].update(k1_down_iterates=0.05, k1_up_iterates=0.1, k1_down_noise=0.0,
                                k1_up_noise=0.2)  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(runs)


def bar_ends(ax, axis: int) -> list[tuple[float, float]]:
    """(low, high) of every error bar along ``axis`` (0: x, 1: y) of ``ax``'s containers."""
    return sorted(
        (round(float(seg[:, axis].min()), 9), round(float(seg[:, axis].max()), 9))
        for c in ax.containers
        for cols in c.lines[2]
        for seg in cols.get_segments()
        if np.ptp(seg[:, axis]) > 0
    )


def test_alpha_iterates_vs_alpha_noise_draws_a_point_per_run_and_layer_and_the_identity(out):
    table, runs = iterates_pairs()
    fig = P.plot_alpha_iterates_vs_alpha_noise(table, runs, *out("iterates"))
    pooled, layers = fig.axes[0], fig.axes[1]
    assert [ax.get_title() for ax in (pooled, layers)] == ["pooled (all parameters)", "per layer"]
    points = sorted((tuple(x), tuple(np.round(y, 9))) for x, y in errorbar_points(pooled))
    assert points == [((1.2, 1.2), (1.5, 1.51))]  # seeds 0 and 1: trained, with a window
    by_layer = sorted((tuple(x), tuple(np.round(y, 9))) for x, y in errorbar_points(layers))
    assert by_layer == [((1.3, 1.3), (1.6, 1.61)), ((1.4,), (1.71,))]  # b of seed 0: too few
    assert legend_texts(layers.get_legend()) == ["a", "b"]
    # pooled bars: the batch-means interval widened by the K1 spread; per layer: batch means
    assert bar_ends(pooled, 1) == [(1.35, 2.0)] * 2 and bar_ends(pooled, 0) == [(1.1, 1.7)] * 2
    assert bar_ends(layers, 1) == [(1.4, 1.9)] * 3
    for ax in (pooled, layers):
        identity = [xy(line) for line in ax.lines if line.get_label() == "_identity"]
        assert len(identity) == 1 and np.array_equal(identity[0][0], identity[0][1])
        assert ax.get_xlabel() == "α̂ of the gradient noise (last checkpoint)"
        assert ax.get_ylabel() == "α̂ of the centred iterates (last window)"
    text = title(fig)
    assert "window W = 10 steps" in text and "1 did not train" in text
    assert "1 run(s) without a window" in text and "1 estimate(s) from too few values" in text


def test_alpha_iterates_vs_alpha_noise_refuses_a_table_without_a_pooled_pair(out):
    table, runs = iterates_pairs()
    with pytest.raises(ValueError, match="measure iterates"):
        P.plot_alpha_iterates_vs_alpha_noise(table[table.scope != "pooled"], runs, *out("x"))


def test_plain_log_axis_ticks_the_values_and_stands_crowded_labels_upright():
    fig, (spread, crowded) = plt.subplots(1, 2)
    P.plain_log_axis(spread, 2, [100, 250, 500, 1000, 250])
    P.plain_log_axis(crowded, 10, [4e-5, 5e-5, 1e-4, 8e-4, 1e-3])
    fig.canvas.draw()
    assert list(spread.get_xticks()) == [100, 250, 500, 1000]
    assert [t.get_text() for t in spread.get_xticklabels()] == ["100", "250", "500", "1000"]
    assert {t.get_rotation() for t in spread.get_xticklabels()} == {0}
    assert [t.get_text() for t in crowded.get_xticklabels()][:2] == ["4e-05", "5e-05"]
    assert {t.get_rotation() for t in crowded.get_xticklabels()} == {90}


@pytest.mark.parametrize("level, text", [(0.95, "95%"), (0.9, "90%"), (0.975, "97.5%")])
def test_figures_print_the_configured_interval_level(out, level, text):
    """The batch-means intervals' level is estimators.ci_level, not a fixed 95%."""
    summary, _, runs_table = make_tables(widths(3), alpha=1.5, half_width=0.02)
    fig = P.plot_alpha_vs_axis(summary, runs_table, "width", "depth", *out("w"), ci_level=level)
    assert f"bars: {text} batch-means interval of the robust" in title(fig)
    log = pd.DataFrame({"step": [1, 2], "lr": 0.1, "loss": 1.0, "accuracy": [0.1, 0.2]})
    fig = P.plot_alpha_and_accuracy_over_training(
        summary[summary.width == 16], [log], [widths(3)[0]], *out("t"), ci_level=level
    )
    assert legend_texts(fig.legends[0])[-1] == f"{text} batch-means interval"
    fig = P.plot_alpha_iterates_vs_alpha_noise(*iterates_pairs(), *out("i"), ci_level=level)
    assert f"bars: {text} batch-means intervals" in title(fig)
