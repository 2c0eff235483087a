"""One declaration per figure: the tables it reads, what draws it, what the grid must have.

:data:`FIGURES` lists every figure of the workflow in report order. rules/common.smk and
rules/figures.smk build from it the plot rules (one per figure, ``plot_<name>``, writing
``figures/<name>.pdf`` and ``.png``), the ``all`` target (the figures the selected grid can
draw), the report entries (category, caption ``rules/captions/<name>.rst``, label
``figure: <name>``) and the error naming the runs to add when a grid cannot draw a figure
(:func:`missing_runs`).

Adding a figure: one entry here, its drawing function (e.g. in :mod:`sgdtail.plots`), the
rule script that reads its tables and calls that function (``scripts/<script>.py``), and its
caption. An α-against-one-axis figure needs no new function or script: a :class:`Sweep`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sgdtail.optimizer_families import has_optimizer_family, has_torchvision_run


@dataclass(frozen=True)
class Sweep:
    """α̂ against one grid axis, drawn by :func:`sgdtail.plots.plot_alpha_vs_axis`.

    The grid must hold runs at two or more values of ``axis`` with every other axis fixed
    (:func:`sgdtail.claims.axis_sweeps`), among ``arch`` runs when ``arch`` is set. ``needs``
    says what that is and ``example`` gives a sub-grid that has it, for the error of
    :func:`missing_runs`.
    """

    axis: str
    hue: str
    arch: str | None
    log_base: float | None
    axis_label: str
    hue_label: str
    needs: str
    example: str

    def plot_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`sgdtail.plots.plot_alpha_vs_axis` for this sweep."""
        return {
            "axis": self.axis,
            "hue": self.hue,
            "arch": self.arch,
            "log_base": self.log_base,
            "axis_label": self.axis_label,
            "hue_label": self.hue_label,
        }


@dataclass(frozen=True)
class Figure:
    """A figure of the workflow: ``figures/<name>.pdf`` and ``figures/<name>.png``.

    ``inputs``: the files its rule reads, by the name its script uses; a path with
    ``{showcase}`` stands for one file per showcase run (figures.showcase), with ``{run}``
    for one file per run of the grid. ``script``: the rule script (``scripts/<script>.py``)
    that reads them and calls the drawing function, in rule ``plot_<name>``
    (rules/figures.smk); None for a figure drawn by its stage's rule beside the tables that
    stage computes (``stage``, in rules/dynamics.smk or rules/sharpness.smk). ``params``:
    what the script gets besides its inputs: ``showcase`` (the showcase run paths) or keys of
    the ``figures`` config section, or ``<section>.<key>`` for a key of another top-level
    section (given to the script as ``<key>``). ``side``: needs nothing from the training
    runs, so it is scheduled with the side jobs. ``sweep``: an α-against-one-axis figure.
    ``over_training``: draws each showcase run over its checkpoints, which must be two or
    more. ``eta_over_b``: needs runs of one network at two or more η/b
    (:func:`sgdtail.eta_over_b.has_ratio_family`).
    ``iterates``: draws the tail index of the iterates, which the grid must measure
    (``iterates.measure``). ``optimizers``: needs runs of one network at two or more optimizers
    with every other axis fixed, learning rate and seed aside
    (:func:`sgdtail.optimizer_families.has_optimizer_family`). ``torchvision``: needs a run of
    a torchvision model (:func:`sgdtail.optimizer_families.has_torchvision_run`).
    """

    name: str
    category: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    script: str | None = None
    stage: str | None = None
    params: tuple[str, ...] = ()
    side: bool = False
    sweep: Sweep | None = None
    over_training: bool = False
    eta_over_b: bool = False
    iterates: bool = False
    optimizers: bool = False
    torchvision: bool = False

    @property
    def caption(self) -> str:
        """Its caption, relative to rules/."""
        return f"captions/{self.name}.rst"

    @property
    def pdf(self) -> str:
        return f"figures/{self.name}.pdf"

    @property
    def png(self) -> str:
        """The file registered with the report (the PDF is not)."""
        return f"figures/{self.name}.png"


NETWORK_SIZE = "Tail index vs network size"
BATCH_AND_RATE = "Tail index vs batch size and learning rate"
NOISE_AND_ESTIMATORS = "Noise and estimators"
DYNAMICS = "Lévy vs Brownian dynamics"
STEP_OVER_BATCH = "Step size over batch size"
OPTIMIZERS_AND_LAYERS = "Optimizers and layers"

SUMMARY = "results/tables/summary.csv"
RUNS = "results/tables/runs.csv"
SWEEP_INPUTS = {"summary": SUMMARY, "runs": RUNS}

_FCN_EXAMPLE = (
    "{{dataset: [mnist], arch: [fcn], width: [{width}], depth: [{depth}], "
    "batch_size: [{batch}], lr: [{lr}], loss: [cross_entropy], seed: [0]}}"
)
_FCN = {"width": "128", "depth": "3", "batch": "500", "lr": "0.1"}


def _fcn_example(**values: str) -> str:
    """An FCN sub-grid on MNIST, one value per axis except those in ``values``."""
    return _FCN_EXAMPLE.format(**{**_FCN, **values})


RATIO_EXAMPLE = _fcn_example(batch="250, 500, 1000", lr="0.05, 0.1, 0.2")
"""A sub-grid with several η/b, three of them held by two or three (η, b) pairs."""

OPTIMIZER_EXAMPLE = _fcn_example(lr="0.01")[:-1] + ", optimizer: [sgd, momentum, adam]}"
"""A sub-grid of one network trained by three optimizers. One learning rate for all three keeps
it one sub-grid: 0.01 is plain SGD's slow end, momentum's effective 0.1 (μ = 0.9) and Adam's
fast end; a grid gives each optimizer a sub-grid at its own, as ``optimizers_models`` does."""

TORCHVISION_EXAMPLE = (
    "{dataset: [cifar10], arch: [resnet18], batch_size: [100], lr: [0.1], "
    "loss: [cross_entropy], seed: [0]}"
)
"""A sub-grid of a torchvision model (no width or depth)."""


CI_LEVEL = "estimators.ci_level"
"""The level of the batch-means intervals the noise stage computed: a param of every figure
that draws them and says their level."""


def _sweep_figure(name: str, category: str, sweep: Sweep) -> Figure:
    return Figure(
        name,
        category,
        inputs=SWEEP_INPUTS,
        script="plot_alpha_vs_axis",
        params=(CI_LEVEL,),
        sweep=sweep,
    )


FIGURES: dict[str, Figure] = {
    figure.name: figure
    for figure in [
        Figure(
            "noise_norm_histogram",
            NOISE_AND_ESTIMATORS,
            inputs={"norms": "results/tables/noise_norms.parquet", "summary": SUMMARY},
            script="plot_noise_norm_histogram",
            params=("showcase", "seed", "max_synthetic_values"),
        ),
        Figure(
            "estimator_validation",
            NOISE_AND_ESTIMATORS,
            inputs={
                "table": "results/validation/estimator_validation.csv",
                "gaussian": "results/validation/gaussian_readings.csv",
                "minimums": "results/validation/min_samples.csv",
            },
            script="plot_estimator_validation",
            side=True,
        ),
        _sweep_figure(
            "alpha_vs_width",
            NETWORK_SIZE,
            Sweep(
                axis="width",
                hue="depth",
                arch="fcn",
                log_base=2,
                axis_label="width (units per hidden layer)",
                hue_label="depth (linear layers)",
                needs="FCN runs at two or more widths",
                example=_fcn_example(width="16, 32, 64, 128"),
            ),
        ),
        _sweep_figure(
            "alpha_vs_depth",
            NETWORK_SIZE,
            Sweep(
                axis="depth",
                hue="width",
                arch="fcn",
                log_base=None,
                axis_label="depth (linear layers)",
                hue_label="width (units per hidden layer)",
                needs="FCN runs at two or more depths",
                example=_fcn_example(depth="2, 3, 4"),
            ),
        ),
        _sweep_figure(
            "alpha_vs_filters",
            NETWORK_SIZE,
            Sweep(
                axis="width",
                hue="batch_size",
                arch="alexnet",
                log_base=2,
                axis_label="AlexNet filters ch",
                hue_label="batch size b",
                needs="AlexNet runs at two or more filter counts ch (width)",
                example=(
                    "{dataset: [cifar10, cifar100], arch: [alexnet], width: [16, 32, 64, 128], "
                    "depth: [8], batch_size: [500], lr: [0.1], loss: [cross_entropy], seed: [0]}"
                ),
            ),
        ),
        _sweep_figure(
            "alpha_vs_batch_size",
            BATCH_AND_RATE,
            Sweep(
                axis="batch_size",
                hue="network",
                arch=None,
                log_base=2,
                axis_label="batch size b",
                hue_label="network (width × depth)",
                needs="runs at two or more batch sizes",
                example=_fcn_example(batch="50, 100, 250, 500, 1000"),
            ),
        ),
        _sweep_figure(
            "alpha_vs_learning_rate",
            BATCH_AND_RATE,
            Sweep(
                axis="lr",
                hue="network",
                arch=None,
                log_base=10,
                axis_label="learning rate η",
                hue_label="network (width × depth)",
                needs="runs at two or more learning rates",
                example=_fcn_example(lr="0.01, 0.05, 0.1, 0.2"),
            ),
        ),
        Figure(
            "alpha_and_accuracy_over_training",
            "Training dynamics",
            inputs={"summary": SUMMARY, "train_logs": "results/runs/{showcase}/train_log.csv"},
            script="plot_alpha_and_accuracy_over_training",
            params=("showcase", CI_LEVEL),
            over_training=True,
        ),
        Figure(
            "alpha_vs_block_size",
            NOISE_AND_ESTIMATORS,
            inputs={
                "estimates": "results/tables/estimates.parquet",
                "synthetic": "results/validation/synthetic_block_sweep.csv",
            },
            script="plot_alpha_vs_block_size",
            params=("showcase",),
        ),
        Figure(
            "runtime_by_grid_axis",
            "Runtime",
            inputs={
                "train": "benchmarks/train_sgd/{run}.tsv",
                "noise": "benchmarks/measure_gradient_noise/{run}.tsv",
                "runs": RUNS,
            },
            script="plot_runtime_by_grid_axis",
        ),
        Figure(
            "alpha_iterates_vs_alpha_noise",
            "Tail index of the iterates",
            inputs={"table": "results/tables/iterates_vs_noise.csv", "runs": RUNS},
            script="plot_alpha_iterates_vs_alpha_noise",
            params=(CI_LEVEL,),
            iterates=True,
        ),
        Figure("exit_time_vs_height", DYNAMICS, stage="plot_dynamics"),
        Figure("exit_time_vs_width", DYNAMICS, stage="plot_dynamics"),
        Figure("levy_vs_brownian_paths", DYNAMICS, stage="plot_dynamics"),
        Figure("stable_densities", DYNAMICS, stage="plot_dynamics"),
        Figure("metastability", DYNAMICS, stage="plot_dynamics"),
        Figure("sharpness_vs_alpha", "Width of the minima", stage="plot_sharpness_vs_alpha"),
        Figure(
            "alpha_vs_eta_over_b",
            STEP_OVER_BATCH,
            inputs=SWEEP_INPUTS,
            script="plot_alpha_vs_eta_over_b",
            eta_over_b=True,
        ),
        Figure(
            "sharpness_vs_eta_over_b",
            STEP_OVER_BATCH,
            inputs={"sharpness": "results/tables/sharpness.csv"},
            script="plot_sharpness_vs_eta_over_b",
            eta_over_b=True,
        ),
        Figure(
            "alpha_vs_eta_over_b_linear",
            STEP_OVER_BATCH,
            inputs={
                "simulation": "results/linear_sgd/simulation.csv",
                "theory": "results/linear_sgd/theory.csv",
            },
            script="plot_linear_sgd",
            side=True,
        ),
        Figure(
            "alpha_vs_optimizer",
            OPTIMIZERS_AND_LAYERS,
            inputs=SWEEP_INPUTS,
            script="plot_alpha_vs_optimizer",
            params=(CI_LEVEL,),
            optimizers=True,
        ),
        Figure(
            "alpha_per_layer",
            OPTIMIZERS_AND_LAYERS,
            inputs={"estimates": "results/tables/estimates.parquet", "runs": RUNS},
            script="plot_alpha_per_layer",
            params=("estimators.min_pooled_values", CI_LEVEL),
            torchvision=True,
        ),
    ]
}
"""Every figure of the workflow, by name, in report order."""

PLOT_RULE_FIGURES = [figure for figure in FIGURES.values() if figure.script]
"""The figures drawn by a rule of their own (rules/figures.smk)."""


def missing_runs(
    figure: Figure,
    points: Iterable[Mapping[str, Any]],
    showcase_checkpoints: Mapping[str, list[int]],
    grid: str,
    measures_iterates: bool = False,
) -> str | None:
    """Why grid ``grid`` cannot draw ``figure``, naming what to add, or None when it can.

    ``points``: the grid axes of every run (e.g. ``dataclasses.asdict(run)``);
    ``showcase_checkpoints``: the checkpoint steps of each showcase run (read only for a
    figure drawn over training); ``measures_iterates``: the grid's ``iterates.measure``.
    """
    points = list(points)
    if figure.iterates and not measures_iterates:
        return (
            f"figure {figure.name} needs the tail index of the iterates, and grid {grid!r} does "
            f"not measure it; set grids.{grid}.iterates: {{measure: true}} (iterates.window at "
            "most the runs' training.iterations)"
        )
    if figure.over_training:
        return _missing_checkpoints(figure, showcase_checkpoints, grid)
    if figure.eta_over_b:
        return _missing_ratio_family(figure, points, grid)
    if figure.optimizers:
        return _missing_optimizer_family(figure, points, grid)
    if figure.torchvision:
        return _missing_torchvision_run(figure, points, grid)
    if figure.sweep is not None:
        return _missing_sweep(figure, points, grid)
    return None


def _missing_checkpoints(
    figure: Figure, showcase_checkpoints: Mapping[str, list[int]], grid: str
) -> str | None:
    """Why ``grid`` cannot draw a figure over training (a showcase run with fewer than two
    checkpoints), or None."""
    few = {p: s for p, s in showcase_checkpoints.items() if len(s) < 2}
    if not few:
        return None
    path, steps = next(iter(few.items()))
    return (
        f"figure {figure.name} needs two or more checkpoints, and showcase run {path} of "
        f"grid {grid!r} has {steps}; set training.checkpoints (e.g. include_initial: "
        "true)"
    )


def _missing_sweep(figure: Figure, points: list[Mapping[str, Any]], grid: str) -> str | None:
    """Why ``grid`` cannot draw an α-against-one-axis figure (no sweep over its axis), or None."""
    from sgdtail.claims import axis_sweeps  # numpy: only when a sweep figure is checked

    sweep = figure.sweep
    if axis_sweeps([p for p in points if sweep.arch in (None, p["arch"])], sweep.axis):
        return None
    return (
        f"figure {figure.name} needs {sweep.needs} with every other axis fixed, and grid "
        f"{grid!r} has none; add a sub-grid such as {sweep.example} to grids.{grid}.runs"
    )


def _missing_ratio_family(
    figure: Figure, points: Iterable[Mapping[str, Any]], grid: str
) -> str | None:
    """Why ``grid`` cannot draw an η/b figure (no network at two or more η/b), or None."""
    from sgdtail.eta_over_b import has_ratio_family  # pandas: only when such a figure is checked

    if has_ratio_family(points):
        return None
    return (
        f"figure {figure.name} needs runs of one network at two or more values of lr / "
        f"batch_size with every other axis fixed (seed aside), and grid {grid!r} has none; add "
        "a sub-grid such as " + RATIO_EXAMPLE + f" to grids.{grid}.runs"
    )


def _missing_optimizer_family(
    figure: Figure, points: Iterable[Mapping[str, Any]], grid: str
) -> str | None:
    """Why ``grid`` cannot draw a figure that compares optimizers (no network trained by two
    or more), or None."""
    if has_optimizer_family(points):
        return None
    return (
        f"figure {figure.name} needs runs of one network at two or more optimizers with every "
        f"other axis fixed (learning rate and seed aside), and grid {grid!r} has none; add a "
        f"sub-grid such as {OPTIMIZER_EXAMPLE} to grids.{grid}.runs"
    )


def _missing_torchvision_run(
    figure: Figure, points: Iterable[Mapping[str, Any]], grid: str
) -> str | None:
    """Why ``grid`` cannot draw a figure of a torchvision model's layers (it trains none), or
    None."""
    if has_torchvision_run(points):
        return None
    return (
        f"figure {figure.name} needs runs of a torchvision model (its per-layer α̂, by module), "
        f"and grid {grid!r} has none; add a sub-grid such as {TORCHVISION_EXAMPLE} to "
        f"grids.{grid}.runs"
    )
