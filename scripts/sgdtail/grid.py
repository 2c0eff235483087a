"""The experiment grid: expansion, run paths, checkpoint schedules and config checks.

The JSON Schema (``config.schema.yaml``) checks types, ranges and allowed
values; :func:`check_config` adds the checks a schema cannot express (a batch
larger than the data set, checkpoints beyond the run, duplicate grid values,
missing data files). Both run before Snakemake schedules any job.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AXES: tuple[str, ...] = ("dataset", "arch", "width", "depth", "batch_size", "lr", "loss", "seed")
"""Grid axes, in the order they appear in run paths and tables."""

RUN_PATTERN = "{dataset}/{arch}/w{width}_d{depth}/{loss}_b{batch_size}_lr{lr}_s{seed}"
"""Relative path of one run; every axis is encoded, nothing else is."""

DATASET_SIZES: dict[str, tuple[int, int]] = {
    "mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
}
"""(train, test) sizes of the full data sets, for checks before any data is read."""

ALEXNET_DEPTH = 8
"""AlexNet has 5 conv + 3 linear weight layers; its ``depth`` axis must be 8."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to change."""


def format_lr(lr: float) -> str:
    """Canonical text of a learning rate in paths (``0.1`` → ``"0.1"``, ``1e-3`` → ``"0.001"``)."""
    return f"{float(lr):.10g}"


@dataclass(frozen=True)
class RunPoint:
    """One grid point: the values of every axis."""

    dataset: str
    arch: str
    width: int
    depth: int
    batch_size: int
    lr: float
    loss: str
    seed: int

    @property
    def path(self) -> str:
        """Relative run path (see :data:`RUN_PATTERN`)."""
        return RUN_PATTERN.format(**self.wildcards())

    def wildcards(self) -> dict[str, str]:
        """The axis values as the strings Snakemake wildcards carry."""
        values = {axis: str(getattr(self, axis)) for axis in AXES}
        values["lr"] = format_lr(self.lr)
        return values


def selected_grid(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The grid named by ``config['grid']``, or a ConfigError listing the names defined."""
    name = config["grid"]
    grids = config.get("grids", {})
    if name not in grids:
        raise ConfigError(
            f"config key 'grid' is {name!r}, but 'grids' defines only {sorted(grids)}; "
            "set grid to one of those (e.g. --config grid=smoke)"
        )
    return grids[name]


def resolved_section(config: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A top-level section (``training``, ``noise``) with the selected grid's overrides merged in."""
    merged = dict(config.get(section, {}))
    merged.update(selected_grid(config).get(section, {}) or {})
    return merged


def expand_grid(subgrids: list[Mapping[str, Any]], where: str = "grid") -> list[RunPoint]:
    """Union of the Cartesian products of each sub-grid, in a stable order, without repeats.

    Each sub-grid maps every axis in :data:`AXES` to a list of values. A value
    repeated inside one list is an error (it is almost always a typo); the same
    point reached by two sub-grids (a batch-size sweep crossing the main grid)
    is kept once.
    """
    if not subgrids:
        raise ConfigError(f"{where}.runs is empty: list at least one sub-grid")
    points: dict[RunPoint, None] = {}
    for i, sub in enumerate(subgrids):
        for axis in AXES:
            values = sub[axis]
            if len(set(values)) != len(values):
                raise ConfigError(
                    f"{where}.runs[{i}].{axis} lists a value twice ({values}); remove the repeat"
                )
        for combo in itertools.product(*(sub[axis] for axis in AXES)):
            point = RunPoint(**dict(zip(AXES, combo, strict=True)))
            points.setdefault(point, None)
    return list(points)


def checkpoint_schedule(spec: Mapping[str, Any], iterations: int) -> list[int]:
    """Iterations at which weights are saved and noise is measured, sorted, unique.

    ``spec['schedule']``: ``log`` (``count`` points log-spaced from 1 to
    ``iterations``, dense early), ``every`` (each ``every`` iterations) or
    ``list`` (the iterations in ``at``). Iteration 0 (the initialisation) is
    added when ``include_initial`` is true. The last iteration is always included.
    """
    kind = spec["schedule"]
    if kind == "log":
        count = int(spec["count"])
        raw = [round(10 ** (math.log10(iterations) * i / max(count - 1, 1))) for i in range(count)]
        its = set(raw)
    elif kind == "every":
        its = set(range(int(spec["every"]), iterations + 1, int(spec["every"])))
    elif kind == "list":
        its = {int(i) for i in spec["at"]}
        beyond = sorted(i for i in its if i > iterations or i < 0)
        if beyond:
            raise ConfigError(
                f"training.checkpoints.at has iterations {beyond} outside 0..{iterations} "
                "(training.iterations); remove them or raise training.iterations"
            )
    else:  # the schema rules this out; kept for direct library use
        raise ConfigError(
            f"training.checkpoints.schedule is {kind!r}; allowed: log, every, list"
        )
    its.add(iterations)
    if spec.get("include_initial", True):
        its.add(0)
    return sorted(its)


def check_config(config: Mapping[str, Any], workdir: str | Path = ".") -> list[RunPoint]:
    """Checks a schema cannot make; returns the expanded grid of the selected grid."""
    name = config["grid"]
    grid = selected_grid(config)
    points = expand_grid(grid["runs"], where=f"grids.{name}")
    training = resolved_section(config, "training")
    checkpoint_schedule(training["checkpoints"], training["iterations"])
    noise = resolved_section(config, "noise")
    for point in points:
        n_train, n_test = DATASET_SIZES[point.dataset]
        source = config["datasets"][point.dataset]["source"]
        smallest = min(n_train, n_test) if "test" in noise["splits"] else n_train
        if source != "npz" and point.batch_size > smallest:
            raise ConfigError(
                f"grids.{name}: batch_size {point.batch_size} is larger than the "
                f"{point.dataset} split it is measured on ({smallest} images); lower batch_size"
            )
        if point.arch == "alexnet" and point.depth != ALEXNET_DEPTH:
            raise ConfigError(
                f"grids.{name}: arch alexnet has a fixed depth of {ALEXNET_DEPTH} weight layers "
                f"(5 conv + 3 linear), got depth {point.depth}; set depth: [{ALEXNET_DEPTH}] "
                "in the alexnet sub-grid (its width is the number of filters ch)"
            )
    for dataset in sorted({p.dataset for p in points}):
        ds = config["datasets"][dataset]
        if ds["source"] in ("folder", "npz"):
            path = Path(workdir, ds["path"])
            if not path.exists():
                raise ConfigError(
                    f"datasets.{dataset}.path is {ds['path']!r} (source {ds['source']}), "
                    f"which does not exist; point it at the "
                    f"{'torchvision data folder' if ds['source'] == 'folder' else '.npz file'}"
                    f" or set datasets.{dataset}.source: download"
                )
    return points
