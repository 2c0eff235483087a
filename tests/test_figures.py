"""Tests of sgdtail.figures: the declaration of every figure, and what a grid needs to draw it."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sgdtail import plots as P
from sgdtail.figures import (
    FIGURES,
    OPTIMIZER_EXAMPLE,
    PLOT_RULE_FIGURES,
    RATIO_EXAMPLE,
    TORCHVISION_EXAMPLE,
    Figure,
    missing_runs,
)
from sgdtail.grid import expand_grid

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
OPTIMIZER_FIGURES = {"alpha_vs_optimizer", "alpha_per_layer"}
SWEEPS = {
    "alpha_vs_width",
    "alpha_vs_depth",
    "alpha_vs_filters",
    "alpha_vs_batch_size",
    "alpha_vs_learning_rate",
}
RATIO_FIGURES = {"alpha_vs_eta_over_b", "sharpness_vs_eta_over_b"}


def grid_points(grid: str) -> list[dict]:
    return [dataclasses.asdict(run) for run in expand_grid(CONFIG["grids"][grid]["runs"])]


def test_each_figure_has_a_caption_and_exactly_one_rule_that_draws_it():
    for figure in FIGURES.values():
        assert (REPO / "rules" / figure.caption).is_file(), figure.name
        assert (figure.script is None) != (figure.stage is None), figure.name
        assert (figure.pdf, figure.png) == (
            f"figures/{figure.name}.pdf",
            f"figures/{figure.name}.png",
        )
    for figure in PLOT_RULE_FIGURES:
        assert (REPO / "scripts" / f"{figure.script}.py").is_file(), figure.name
        assert figure.inputs, figure.name
    rules = "".join(path.read_text() for path in (REPO / "rules").glob("*.smk"))
    for stage in {f.stage for f in FIGURES.values() if f.stage}:
        assert f"rule {stage}:" in rules, stage
    # the stages' rules register their figures with the report through figure_png
    registered = re.findall(r'figure_png\("(\w+)"\)', rules)
    assert sorted(registered) == sorted(f.name for f in FIGURES.values() if f.stage)


def test_every_caption_belongs_to_a_figure_or_the_report():
    captions = {path.stem for path in (REPO / "rules/captions").glob("*.rst")}
    assert captions == set(FIGURES) | {"claims", "workflow"}


def test_the_docs_list_every_figure_once():
    table = (REPO / "docs/figures.md").read_text()
    listed = re.findall(r"^\| `(\w+)`", table, flags=re.M)
    assert sorted(listed) == sorted(FIGURES)


def test_sweep_arguments_are_those_of_plot_alpha_vs_axis():
    parameters = inspect.signature(P.plot_alpha_vs_axis).parameters
    sweeps = [f for f in FIGURES.values() if f.sweep]
    assert {f.name for f in sweeps} == SWEEPS
    for figure in sweeps:
        assert figure.script == "plot_alpha_vs_axis"
        assert set(figure.sweep.plot_arguments()) <= set(parameters), figure.name


def measures_iterates(grid: str) -> bool:
    return {**CONFIG["iterates"], **CONFIG["grids"][grid].get("iterates", {})}["measure"]


ITERATES_FIGURE = "alpha_iterates_vs_alpha_noise"


@pytest.mark.parametrize(
    ("grid", "missing"),
    [
        (
            "smoke",
            {"alpha_vs_filters", "alpha_vs_batch_size", "alpha_vs_learning_rate"}
            | RATIO_FIGURES
            | OPTIMIZER_FIGURES,
        ),
        (
            "smoke_sweeps",
            {"alpha_vs_width", "alpha_vs_depth", ITERATES_FIGURE} | OPTIMIZER_FIGURES,
        ),
        ("smoke_optimizers", SWEEPS | RATIO_FIGURES | {ITERATES_FIGURE}),
        ("optimizers_models", SWEEPS | RATIO_FIGURES | {ITERATES_FIGURE}),
        ("paper", {ITERATES_FIGURE} | OPTIMIZER_FIGURES),
    ],
)
def test_a_grid_without_a_sweep_misses_its_figure_and_is_told_what_to_add(grid, missing):
    points = grid_points(grid)
    iterates = measures_iterates(grid)
    found = {name: missing_runs(f, points, {}, grid, iterates) for name, f in FIGURES.items()}
    assert {name for name, text in found.items() if text} == missing
    for name in missing - {ITERATES_FIGURE}:
        text = found[name]
        assert text.startswith(f"figure {name} needs ") and "add a sub-grid such as {" in text
        assert text.endswith(f"to grids.{grid}.runs")
        if name != "alpha_per_layer":  # a torchvision model: no axis to hold fixed
            assert "with every other axis fixed" in text, name


def test_each_sweep_example_is_a_sub_grid_that_draws_its_figure():
    for figure in FIGURES.values():
        if figure.sweep is None:
            continue
        example = yaml.safe_load(figure.sweep.example)
        points = [dataclasses.asdict(run) for run in expand_grid([example])]
        assert missing_runs(figure, points, {}, "example") is None, figure.name
    ratio_figures = [f for f in FIGURES.values() if f.eta_over_b]
    assert len(ratio_figures) == 2
    points = [dataclasses.asdict(run) for run in expand_grid([yaml.safe_load(RATIO_EXAMPLE)])]
    for figure in ratio_figures:
        assert missing_runs(figure, points, {}, "example") is None, figure.name
    for figure, example in (
        (FIGURES["alpha_vs_optimizer"], OPTIMIZER_EXAMPLE),
        (FIGURES["alpha_per_layer"], TORCHVISION_EXAMPLE),
    ):
        points = [dataclasses.asdict(run) for run in expand_grid([yaml.safe_load(example)])]
        assert missing_runs(figure, points, {}, "example") is None, figure.name


def test_a_figure_over_training_needs_two_checkpoints_per_showcase_run():
    figure = FIGURES["alpha_and_accuracy_over_training"]
    path = "mnist/fcn/w16_d2/cross_entropy_b500_lr0.1_s0"
    assert missing_runs(figure, [], {path: [0, 20]}, "smoke") is None
    text = missing_runs(figure, [], {path: [20]}, "smoke")
    assert text == (
        f"figure alpha_and_accuracy_over_training needs two or more checkpoints, and showcase "
        f"run {path} of grid 'smoke' has [20]; set training.checkpoints (e.g. include_initial: "
        "true)"
    )
    plain = Figure("plain", "Runtime", script="plot_plain")  # no requirement
    assert missing_runs(plain, [], {path: [20]}, "smoke") is None


def test_the_iterates_figure_needs_a_grid_that_measures_iterates():
    figure = FIGURES[ITERATES_FIGURE]
    assert missing_runs(figure, grid_points("smoke"), {}, "smoke", True) is None
    assert missing_runs(figure, grid_points("smoke"), {}, "smoke") == (
        "figure alpha_iterates_vs_alpha_noise needs the tail index of the iterates, and grid "
        "'smoke' does not measure it; set grids.smoke.iterates: {measure: true} "
        "(iterates.window at most the runs' training.iterations)"
    )
    assert not any(f.iterates for name, f in FIGURES.items() if name != ITERATES_FIGURE)


def test_captions_state_the_configured_interval_levels():
    """Rendered as the report renders them (Jinja, with the job's config and params), the
    captions give the configured levels, never a fixed 95%."""
    from types import SimpleNamespace

    from jinja2 import Environment

    snakemake = SimpleNamespace(
        config={"estimators": {"ci_level": 0.9}}, params=SimpleNamespace(dynamics={"level": 0.8})
    )
    levels = Counter()
    for path in sorted((REPO / "rules/captions").glob("*.rst")):
        if path.stem == "workflow":  # the configuration dump, rendered with the whole config
            continue
        text = Environment().from_string(path.read_text()).render(snakemake=snakemake)
        text = " ".join(text.split())
        assert not re.search(r"95 ?%", text), path.name
        levels.update(re.findall(r"\b(90|80)% (?:batch-means )?interval", text))
    # the ten figures with batch-means intervals and the three dynamics figures with intervals
    assert levels == {"90": 10, "80": 3}, levels
