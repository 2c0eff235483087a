"""The optimizer figures: which runs they compare (sgdtail.optimizer_families), what a grid
needs to draw them, and what they draw, read back from their matplotlib objects on small
synthetic tables (as tests/test_figure_content.py does for the other figures)."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from test_claims import make_tables, run
from test_figure_content import legend_texts, title

from sgdtail.figures import FIGURES, OPTIMIZER_EXAMPLE, TORCHVISION_EXAMPLE, missing_runs
from sgdtail.grid import AXES, expand_grid
from sgdtail.optimizer_families import (
    OPTIMIZER_FAMILY_AXES,
    has_optimizer_family,
    has_torchvision_run,
    optimizer_families,
)
from sgdtail.plots import ESTIMATOR_LABELS
from sgdtail.plots_optimizers import plot_alpha_per_layer, plot_alpha_vs_optimizer


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def out(tmp_path):
    return lambda name: (str(tmp_path / f"{name}.pdf"), str(tmp_path / f"{name}.png"))


def points(*runs: dict) -> list[dict]:
    return [run(**r) for r in runs]


# ----------------------------------------------------------------------------- families


def test_a_family_is_one_network_whatever_its_optimizers_learning_rates_and_seeds():
    assert OPTIMIZER_FAMILY_AXES == ("dataset", "arch", "width", "depth", "batch_size", "loss")
    grid = points(
        {"optimizer": "sgd", "lr": 0.1, "seed": 0},
        {"optimizer": "adam", "lr": 0.001, "seed": 1},
        {"optimizer": "sgd", "width": 64},  # another network: a family of one optimizer
    )
    families = optimizer_families(grid)
    assert sorted(map(sorted, families.values())) == [["adam", "sgd"], ["sgd"]]
    assert has_optimizer_family(grid)
    assert not has_optimizer_family(grid[:1] + grid[2:])
    # two optimizers of different batch sizes or data sets are no family
    assert not has_optimizer_family(points({"optimizer": "adam", "batch_size": 100}, {}))
    assert not has_optimizer_family(points({"optimizer": "adam", "dataset": "cifar10"}, {}))
    # a grid point without an optimizer (written before the axis) is plain SGD
    legacy = {k: v for k, v in run().items() if k != "optimizer"}
    assert has_optimizer_family([legacy, run(optimizer="momentum")])


def test_only_torchvision_models_count_for_the_per_layer_figure():
    assert not has_torchvision_run(points({"arch": "fcn"}, {"arch": "alexnet", "depth": 8}))
    assert has_torchvision_run(points({"arch": "fcn"}, {"arch": "resnet18", "width": 0}))


# ----------------------------------------------------------------------------- missing runs


def test_a_grid_without_the_runs_is_told_which_sub_grid_to_add():
    fcn_sgd = points({})
    why = missing_runs(FIGURES["alpha_vs_optimizer"], fcn_sgd, {}, "g")
    assert why == (
        "figure alpha_vs_optimizer needs runs of one network at two or more optimizers with "
        "every other axis fixed (learning rate and seed aside), and grid 'g' has none; add a "
        f"sub-grid such as {OPTIMIZER_EXAMPLE} to grids.g.runs"
    )
    why = missing_runs(FIGURES["alpha_per_layer"], fcn_sgd, {}, "g")
    assert why == (
        "figure alpha_per_layer needs runs of a torchvision model (its per-layer α̂, by module), "
        f"and grid 'g' has none; add a sub-grid such as {TORCHVISION_EXAMPLE} to grids.g.runs"
    )
    # the examples are sub-grids that draw their figures
    for name, example in (
        ("alpha_vs_optimizer", OPTIMIZER_EXAMPLE),
        ("alpha_per_layer", TORCHVISION_EXAMPLE),
    ):
        grid = [dataclasses.asdict(p) for p in expand_grid([yaml.safe_load(example)])]
        assert missing_runs(FIGURES[name], grid, {}, "example") is None, name
    assert missing_runs(FIGURES["alpha_vs_optimizer"], fcn_sgd, {}, "g") is not None


def test_the_optimizer_grids_draw_both_figures():
    config = yaml.safe_load(open("config.yaml"))
    for grid in ("optimizers_models", "smoke_optimizers"):
        grid_points = [dataclasses.asdict(p) for p in expand_grid(config["grids"][grid]["runs"])]
        for name in ("alpha_vs_optimizer", "alpha_per_layer"):
            assert missing_runs(FIGURES[name], grid_points, {}, grid) is None, (grid, name)


# ----------------------------------------------------------------------------- α̂ per optimizer

LRS = {"sgd": 0.1, "momentum": 0.01, "adam": 0.001}
SHIFT = {"sgd": 0.0, "momentum": 0.1, "adam": 0.3}
PRECONDITIONED = 0.5  # Adam's preconditioned α̂ above its gradient α̂


def optimizer_runs() -> list[dict]:
    """FCN 16×2: three optimizers × 2 seeds; ResNet-18: SGD and Adam × 2 seeds; FCN 64×2 by SGD
    alone (in no family)."""
    fcn = [run(optimizer=o, lr=lr, seed=s) for o, lr in LRS.items() for s in (0, 1)]
    resnet = [
        run(arch="resnet18", width=0, depth=0, dataset="cifar10", optimizer=o, lr=LRS[o], seed=s)
        for o in ("sgd", "adam")
        for s in (0, 1)
    ]
    return fcn + resnet + [run(width=64)]


def alpha_of(r: dict, step: int) -> float:
    return 1.2 + SHIFT[r["optimizer"]] + 0.02 * r["seed"] + (0.05 if r["arch"] != "fcn" else 0)


def optimizer_tables(status=None, flags=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary, _, runs = make_tables(
        optimizer_runs(), alpha=alpha_of, steps=(0, 20), status=status, flags=flags
    )
    summary = summary.assign(noise="gradient")
    adam = summary[summary.optimizer == "adam"]
    shifted = adam.assign(
        noise="preconditioned",
        **{
            c: adam[c] + PRECONDITIONED
            for c in ("alpha_robust", "alpha_robust_ci_low", "alpha_robust_ci_high")
        },
    )
    return pd.concat([summary, shifted], ignore_index=True), runs


def point_lines(ax) -> list:
    """The point sets of ``ax``: one per optimizer, learning rate and noise (their ``gid``)."""
    return [line for line in ax.lines if line.get_gid() in ("gradient", "preconditioned")]


def test_alpha_vs_optimizer_draws_a_point_per_seed_and_noise_in_each_family(out):
    summary, runs = optimizer_tables(status={3: "not_trained"})  # momentum, seed 1
    fig = plot_alpha_vs_optimizer(summary, runs, *out("o"))
    axes = np.array(fig.axes).reshape(3, 2)  # estimators × families (CIFAR10 first)
    for r, column in enumerate(ESTIMATOR_LABELS):
        resnet, fcn = axes[r]
        assert [t.get_text() for t in fcn.get_xticklabels()] == [
            "SGD\nη = 0.1",
            "momentum\nη = 0.01",
            "Adam\nη = 0.001",
        ]
        assert [t.get_text() for t in resnet.get_xticklabels()] == [
            "SGD\nη = 0.1",
            "Adam\nη = 0.001",
        ]
        for ax, arch_shift, optimizers in ((fcn, 0.0, LRS), (resnet, 0.05, ("sgd", "adam"))):
            lines = point_lines(ax)
            assert len(lines) == len(optimizers) + 1  # and Adam's preconditioned noise
            # per line: its seeds' α̂ (momentum's seed 1 did not train)
            drawn = sorted(tuple(np.round(line.get_ydata(), 9)) for line in lines)
            expected = []
            for optimizer in optimizers:
                seeds = (0,) if optimizer == "momentum" else (0, 1)
                base = [1.2 + SHIFT[optimizer] + 0.02 * s + arch_shift for s in seeds]
                expected.append(tuple(np.round(base, 9)))
                if optimizer == "adam":
                    shift = PRECONDITIONED if column == "alpha_robust" else 0.0
                    expected.append(tuple(np.round([a + shift for a in base], 9)))
            assert drawn == sorted(expected), (column, drawn)
            # the preconditioned noise: hollow diamonds to the right of Adam's gradient points
            diamonds = [line for line in lines if line.get_marker() == "D"]
            assert len(diamonds) == 1 and diamonds[0].get_markerfacecolor() == "none"
            adam_x = len(optimizers) - 1
            assert np.all(np.asarray(diamonds[0].get_xdata()) > adam_x + 0.1)
            bars = [c for c in ax.containers if hasattr(c, "has_yerr")]
            assert len(bars) == (len(lines) if column == "alpha_robust" else 0)
            # a mean over seeds wherever two seeds are drawn
            means = [c for c in ax.collections if c.get_gid() == "mean"]
            assert len(means) == sum(len(line.get_xdata()) > 1 for line in lines)
        assert resnet.get_ylabel() == "tail index α̂" and fcn.get_ylabel() == ""
        assert fcn.get_xlabel() == ("optimizer, learning rate η" if r == 2 else "")
        label = ESTIMATOR_LABELS[column]
        top = "MNIST, FCN 16×2, cross-entropy, b = 500\n"
        assert fcn.get_title() == (top + label if r == 0 else label)
        top = "CIFAR10, resnet18, cross-entropy, b = 500\n"
        assert resnet.get_title() == (top + label if r == 0 else label)
    (legend,) = fig.legends
    assert legend_texts(legend) == [
        "SGD",
        "momentum",
        "Adam",
        "gradient noise",
        "Adam: preconditioned",
        "mean over seeds",
        "Gaussian, α = 2",
    ]
    text = title(fig)
    assert "9 runs drawn (those of a network trained by two or more optimizers)" in text
    assert "11 runs in the grid; 1 excluded from every statistic: 1 did not train" in text


def test_alpha_vs_optimizer_leaves_out_estimates_from_too_few_samples_and_says_so(out):
    def flags(r, step):  # the ResNet's per-coordinate α̂ from too few minibatches
        return {"pooled_enough": True, "per_coordinate_enough": r["arch"] == "fcn"}

    summary, runs = optimizer_tables(flags=flags)
    fig = plot_alpha_vs_optimizer(summary, runs, *out("few"))
    axes = np.array(fig.axes).reshape(3, 2)  # CIFAR10's ResNet-18, MNIST's FCN
    assert point_lines(axes[2, 0]) == [] and len(point_lines(axes[2, 1])) == 4
    assert [t.get_text() for t in axes[2, 0].texts] == ["no estimate from enough samples"]
    assert len(point_lines(axes[1, 0])) == 3
    assert "per-coordinate α̂ left out of 6 measurement(s) (too few minibatches" in title(fig)


def test_alpha_vs_optimizer_refuses_a_grid_of_one_optimizer_per_network(out):
    summary, runs = optimizer_tables()
    only_sgd = summary[summary.optimizer == "sgd"]
    with pytest.raises(ValueError, match="no network trained by two or more optimizers"):
        plot_alpha_vs_optimizer(only_sgd, runs, *out("none"))
    # nor one whose second optimizer did not train
    status = {i: "not_trained" for i, r in enumerate(optimizer_runs()) if r["optimizer"] != "sgd"}
    summary, runs = optimizer_tables(status=status)
    with pytest.raises(ValueError, match="no network trained by two or more optimizers"):
        plot_alpha_vs_optimizer(summary[summary.optimizer != "sgd"], runs, *out("gate"))


# ----------------------------------------------------------------------------- per layer

# parameter order of a network, not alphabetical: the figure keeps it
LAYERS = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "fc.weight", "fc.bias"]
LAYER_SHIFT = {name: 0.1 * i for i, name in enumerate(LAYERS)}
SMALL = 500  # fc.bias's noise values: too few


def layer_alpha(r: dict, layer: str) -> float:
    return 1.3 + LAYER_SHIFT[layer] + SHIFT[r["optimizer"]] + 0.04 * r["seed"]


def layer_tables(status=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """estimates.parquet-shaped rows: per run, step (0, 20), split, noise and estimator, the
    pooled and per-layer rows; runs.csv with each run's status."""
    resnet = [
        run(arch="resnet18", width=0, depth=0, dataset="cifar10", optimizer=o, lr=LRS[o], seed=s)
        for o in ("sgd", "adam")
        for s in (0, 1)
    ]
    runs = resnet + [run(optimizer="sgd"), run(optimizer="adam", lr=0.001)]  # FCNs: not drawn
    rows = []
    for r in runs:
        for step in (0, 20):
            for split in ("train", "test"):
                noises = (
                    ("gradient", "preconditioned") if r["optimizer"] == "adam" else ("gradient",)
                )
                for noise in noises:
                    for estimator in ("mohammadi_robust", "hill"):
                        for scope in ["pooled", *LAYERS]:
                            a = layer_alpha(r, scope) if scope != "pooled" else 1.5
                            # anything but the drawn rows is far off
                            off = (step, split, noise, estimator) != (
                                20,
                                "train",
                                "gradient",
                                "mohammadi_robust",
                            )
                            a = a + 5 * off
                            rows.append({
                                **r, "step": step, "split": split, "noise": noise,
                                "estimator": estimator, "scope": scope, "order": "natural",
                                "k1": 10, "alpha": a, "ci_low": a - 0.03, "ci_high": a + 0.05,
                                "n_values": SMALL if scope == "fc.bias" else 10**6,
                            })  # fmt: skip
    status = status or {}
    table = pd.DataFrame(
        [{**r, "status": status.get(i, "completed"), "diverged_at": np.nan,
          "final_train_accuracy": 0.12 if status.get(i) else 0.9} for i, r in enumerate(runs)]
    )  # fmt: skip
    return pd.DataFrame(rows), table


def test_alpha_per_layer_draws_one_line_per_optimizer_in_the_network_s_layer_order(out):
    estimates, runs = layer_tables()
    fig = plot_alpha_per_layer(estimates, runs, *out("l"), min_pooled_values=10_000)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == LAYERS
    assert all(t.get_rotation() == 90 for t in ax.get_xticklabels())
    lines = [c for c in ax.containers if hasattr(c, "has_yerr")]
    assert len(lines) == 2  # SGD and Adam (the FCNs are not torchvision models)
    for container, optimizer in zip(lines, ("sgd", "adam"), strict=True):
        x, y = (np.asarray(v, float) for v in container.lines[0].get_data())
        assert len(x) == len(LAYERS)
        np.testing.assert_allclose(np.round(x), np.arange(len(LAYERS)))
        mean = [np.mean([layer_alpha(run(optimizer=optimizer), name) + 0.04 * s for s in (0, 1)])
                for name in LAYERS[:-1]]  # fmt: skip
        np.testing.assert_allclose(y[:-1], mean)
        assert np.isnan(y[-1])  # fc.bias: too few values
        assert container.has_yerr
    assert len(ax.collections) >= 2  # the seed bands
    assert ax.get_xlabel() == "layer (parameter tensor, in the network's order)"
    assert ax.get_ylabel() == "robust tail index α̂"
    assert ax.get_title() == "CIFAR10, resnet18, cross-entropy, b = 500"
    assert legend_texts(ax.get_legend()) == ["SGD, η = 0.1", "Adam, η = 0.001"]
    text = title(fig)
    assert "4 runs drawn" in text and "6 runs in the grid; none excluded" in text
    assert (
        "4 layer estimate(s) left out (too few noise values: K = 500 < "
        "estimators.min_pooled_values = 10,000)" in text
    )


def test_alpha_per_layer_leaves_out_runs_below_the_trained_gate(out):
    estimates, runs = layer_tables(status={2: "not_trained", 3: "not_trained"})  # Adam's
    fig = plot_alpha_per_layer(estimates, runs, *out("gate"))
    (ax,) = fig.axes
    assert legend_texts(ax.get_legend()) == ["SGD, η = 0.1"]
    text = title(fig)
    assert "2 runs drawn" in text and "2 excluded from every statistic: 2 did not train" in text
    assert "left out (too few" not in text  # min_pooled_values 0: every layer drawn
    gated = {i: "not_trained" for i in range(4)}
    estimates, runs = layer_tables(status=gated)
    with pytest.raises(ValueError, match="no per-layer α̂ of a torchvision model that trained"):
        plot_alpha_per_layer(estimates, runs, *out("none"))


def test_alpha_per_layer_keeps_the_layer_order_of_the_estimates_table(out):
    estimates, runs = layer_tables()
    assert set(AXES) <= set(estimates.columns)
    fig = plot_alpha_per_layer(estimates, runs, *out("order"))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == LAYERS
    assert sorted(LAYERS) != LAYERS


@pytest.mark.parametrize("level, text", [(0.95, "95%"), (0.9, "90%")])
def test_optimizer_figures_print_the_configured_interval_level(out, level, text):
    summary, runs = optimizer_tables()
    fig = plot_alpha_vs_optimizer(summary, runs, *out("o"), ci_level=level)
    assert f"bars: {text} batch-means interval" in title(fig)
    estimates, runs = layer_tables()
    fig = plot_alpha_per_layer(estimates, runs, *out("l"), ci_level=level)
    assert f"bars: {text} batch-means interval" in title(fig)
