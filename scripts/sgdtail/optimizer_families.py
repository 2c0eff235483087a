"""Which runs the optimizer figures compare: families of one network trained by several
optimizers, and the runs of torchvision models whose per-layer α̂ is drawn.

An *optimizer family* is the runs equal in every grid axis but the optimizer, the learning rate
and the seed (:data:`OPTIMIZER_FAMILY_AXES`): one network, data set, loss and batch size,
trained by each optimizer at the learning rate that suits it (Adam trains at a learning rate
that would barely move plain SGD), with its seeds. Figure ``alpha_vs_optimizer`` needs a family
with two or more optimizers; figure ``alpha_per_layer`` needs a run of a torchvision model.

Plain Python (no numpy or pandas): the workflow checks these when it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sgdtail.archs import is_torchvision
from sgdtail.grid import AXES, DEFAULT_OPTIMIZER, OPTIMIZERS

FREE_AXES: tuple[str, ...] = ("optimizer", "lr", "seed")
"""The axes that vary within an optimizer family."""

OPTIMIZER_FAMILY_AXES: tuple[str, ...] = tuple(a for a in AXES if a not in FREE_AXES)
"""The axes an optimizer family shares: data set, network, batch size and loss."""

LAYER_AXES: tuple[str, ...] = ("dataset", "arch", "width", "depth", "batch_size", "loss")
"""The axes of one panel of ``alpha_per_layer``: one network on one data set, one batch size
and loss (its lines are the optimizers and learning rates, averaged over seeds)."""

OPTIMIZER_ORDER: tuple[str, ...] = tuple(OPTIMIZERS)
"""The order optimizers are drawn in: plain SGD, momentum, Nesterov, Adam."""

OPTIMIZER_LABELS: dict[str, str] = {
    "sgd": "SGD",
    "momentum": "momentum",
    "nesterov": "Nesterov",
    "adam": "Adam",
}
"""How the figures name each optimizer."""


def optimizer_families(points: Iterable[Mapping[str, Any]]) -> dict[tuple, set[str]]:
    """The optimizers of each family (:data:`OPTIMIZER_FAMILY_AXES` values) among the grid
    points."""
    found: dict[tuple, set[str]] = {}
    for point in points:
        key = tuple(point[axis] for axis in OPTIMIZER_FAMILY_AXES)
        found.setdefault(key, set()).add(point.get("optimizer", DEFAULT_OPTIMIZER))
    return found


def has_optimizer_family(points: Iterable[Mapping[str, Any]]) -> bool:
    """Whether some network of the grid is trained by two or more optimizers with every other
    axis fixed (learning rate and seed aside)."""
    return any(len(names) >= 2 for names in optimizer_families(points).values())


def has_torchvision_run(points: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the grid trains a torchvision model (whose per-layer rows name its modules)."""
    return any(is_torchvision(point["arch"]) for point in points)
