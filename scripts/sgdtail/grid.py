"""The experiment grid: expansion, run paths, checkpoint schedules and config checks.

The JSON Schema (``config.schema.yaml``) checks types, ranges and allowed
values, and :func:`describe_schema_error` turns its verdict into one line that
names the key and the allowed values; :func:`check_config` adds the checks a
schema cannot express (a batch larger than the data set, checkpoints beyond the
run, an iterates window longer than a run, duplicate grid values, missing data
files, normalisation vectors that do not match the images' channels, an ``arch``
that names no network, a ``width`` or ``depth`` its architecture cannot have).
Both run before Snakemake schedules any job.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgdtail.archs import NO_SIZE, allowed_archs, arch_error, is_torchvision
from sgdtail.data import DATASETS
from sgdtail.shapes import ALEXNET_DEPTH

AXES: tuple[str, ...] = (
    "dataset",
    "arch",
    "width",
    "depth",
    "batch_size",
    "lr",
    "loss",
    "seed",
    "optimizer",
)
"""Grid axes, in the order they appear in run paths and tables."""

AXIS_TYPES: dict[str, type] = {
    "width": int,
    "depth": int,
    "batch_size": int,
    "lr": float,
    "seed": int,
}
"""Types of the numeric axes; the other axes are strings."""

INTEGER_AXES = tuple(axis for axis, kind in AXIS_TYPES.items() if kind is int)
"""Axes whose values are integers (``8.0`` in YAML is taken as ``8``)."""

SIZE_AXES = ("width", "depth")
"""Axes a sub-grid of torchvision models leaves out: they are then ``[0]``
(:data:`sgdtail.archs.NO_SIZE`; run path ``w0_d0``)."""


DEFAULT_OPTIMIZER = "sgd"
"""Plain SGD, the papers' optimizer: the ``optimizer`` of a sub-grid that names none."""

OPTIMIZERS: dict[str, tuple[str, ...]] = {
    DEFAULT_OPTIMIZER: (),
    "momentum": ("momentum", "weight_decay"),
    "nesterov": ("nesterov_momentum", "weight_decay"),
    "adam": ("adam_betas", "adam_eps", "weight_decay"),
}
"""Values of the ``optimizer`` axis and the ``training`` keys (hyper-parameters) each uses."""

OPTIMIZER_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(k for keys in OPTIMIZERS.values() for k in keys)
)
"""Every ``training`` key that belongs to an optimizer."""

PRECONDITIONED_OPTIMIZERS: tuple[str, ...] = ("adam",)
"""Adaptive optimizers: their noise is also measured as preconditioned by their state."""

NOISE_KINDS: tuple[str, ...] = ("gradient", "preconditioned")
"""Values of the ``noise`` column of the tail-index tables: the gradient noise (every run) and
the noise preconditioned by the optimizer's state (runs of :data:`PRECONDITIONED_OPTIMIZERS`)."""

GRADIENT_NOISE, PRECONDITIONED_NOISE = NOISE_KINDS

AXIS_DEFAULTS: dict[str, list[Any]] = {"optimizer": [DEFAULT_OPTIMIZER]}
"""Axes a sub-grid may leave out, and the values it then has."""


def optimizer_text(name: str) -> str:
    """The ``optimizer`` axis as run-path text: empty for plain SGD (so its run paths are
    those of the grids before the axis existed), ``_<name>`` for the others."""
    return "" if name == DEFAULT_OPTIMIZER else f"_{name}"


def optimizer_name(text: str) -> str:
    """The optimizer of run-path text ``text`` (the inverse of :func:`optimizer_text`)."""
    return text.removeprefix("_") or DEFAULT_OPTIMIZER


AXIS_FROM_TEXT: dict[str, Any] = {**AXIS_TYPES, "optimizer": optimizer_name}
"""How each non-string axis is read back from its wildcard text."""

RUN_PATTERN = "{dataset}/{arch}/w{width}_d{depth}/{loss}_b{batch_size}_lr{lr}_s{seed}{optimizer}"
"""Relative path of one run; every axis is encoded, nothing else is (:func:`run_path`
formats it, :func:`parse_run_path` reads it back). The optimizer's text is empty for plain
SGD (:func:`optimizer_text`): ``..._lr0.1_s0`` is plain SGD, ``..._lr0.1_s0_adam`` Adam."""

AXIS_REGEX: dict[str, str] = {
    "dataset": "[a-z0-9]+",
    "arch": "[a-z][a-z0-9_]*",
    "width": r"\d+",
    "depth": r"\d+",
    "batch_size": r"\d+",
    "lr": "[0-9.eE+-]+",
    "loss": "[a-z_]+",
    "seed": r"\d+",
    "optimizer": "|".join(re.escape(optimizer_text(name)) for name in OPTIMIZERS),
}
"""What each axis's text may look like inside a run path (the optimizer's may be empty)."""

RUN_PATH_REGEX = "".join(
    re.escape(literal) + (f"(?P<{axis}>{AXIS_REGEX[axis]})" if axis else "")
    for literal, axis, _, _ in string.Formatter().parse(RUN_PATTERN)
)
"""Regular expression of :data:`RUN_PATTERN`, one named group per axis (unanchored)."""

DATASET_SIZES: dict[str, tuple[int, int]] = {
    name: (spec.n_train, spec.n_test) for name, spec in DATASETS.items()
}
"""(train, test) sizes of the full data sets, for checks before any data is read."""

DATASET_CHANNELS: dict[str, int] = {name: spec.channels for name, spec in DATASETS.items()}
"""Image channels of each data set: the length of its ``mean`` and ``std``."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to change."""


def format_lr(lr: float) -> str:
    """Canonical text of a learning rate in paths (``0.1`` → ``"0.1"``, ``1e-3`` → ``"0.001"``)."""
    return f"{float(lr):.10g}"


def run_path(wildcards: Mapping[str, Any]) -> str:
    """Relative run path (:data:`RUN_PATTERN`) of the axis values as wildcard text."""
    return RUN_PATTERN.format(**{axis: wildcards[axis] for axis in AXES})


def _axis_text(wildcards: Mapping[str, str], axis: str) -> str:
    """The wildcard text of ``axis``; plain SGD's (empty) for an optimizer that
    ``wildcards`` lacks (as a sub-grid that leaves it out)."""
    try:
        return wildcards[axis]
    except KeyError:
        if axis != "optimizer":
            raise
        return optimizer_text(DEFAULT_OPTIMIZER)


def typed_axes(wildcards: Mapping[str, str]) -> dict[str, Any]:
    """Grid-axis values from their wildcard text: numeric types restored
    (:data:`AXIS_TYPES`), the optimizer named (:func:`optimizer_name`; plain SGD where
    ``wildcards`` has no optimizer)."""
    return {axis: AXIS_FROM_TEXT.get(axis, str)(_axis_text(wildcards, axis)) for axis in AXES}


def parse_run_path(path: str) -> dict[str, Any]:
    """Grid axes (typed) of a run path: the inverse of :func:`run_path`."""
    match = re.fullmatch(RUN_PATH_REGEX, path.strip("/"))
    if not match:
        raise ValueError(
            f"{path!r} is not a run path; expected "
            + RUN_PATTERN.replace("{", "<").replace("}", ">")
            + ", e.g. mnist/fcn/w16_d2/cross_entropy_b500_lr0.1_s0"
        )
    return typed_axes(match.groupdict())


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
    optimizer: str = DEFAULT_OPTIMIZER

    @property
    def path(self) -> str:
        """Relative run path (see :func:`run_path`)."""
        return run_path(self.wildcards())

    def wildcards(self) -> dict[str, str]:
        """The axis values as the strings Snakemake wildcards carry."""
        values = {axis: str(getattr(self, axis)) for axis in AXES}
        values["lr"] = format_lr(self.lr)
        values["optimizer"] = optimizer_text(self.optimizer)
        return values


def selected_grid(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The grid named by ``config['grid']``, or a ConfigError listing the names defined."""
    name = config["grid"]
    grids = config.get("grids", {})
    if name not in grids:
        raise ConfigError(
            f"config key 'grid' is {name!r}, but 'grids' defines only {sorted(grids)}; "
            f"allowed: one of {', '.join(sorted(grids))} (e.g. --config grid=smoke)"
        )
    return grids[name]


def resolved_section(config: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A top-level section (``training``, ``noise``) with the selected grid's overrides applied."""
    merged = dict(config.get(section, {}))
    merged.update(selected_grid(config).get(section, {}) or {})
    return merged


def subgrid_training(config: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The training section of sub-grid ``index`` of the selected grid: the top level's keys,
    then the grid's ``training`` block, then the sub-grid's own ``training`` block."""
    merged = resolved_section(config, "training")
    merged.update(selected_grid(config)["runs"][index].get("training") or {})
    return merged


def optimizer_settings(name: str, training: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of optimizer ``name``: its keys (:data:`OPTIMIZERS`) of the
    resolved training section ``training``."""
    return {key: training[key] for key in OPTIMIZERS[name]}


def point_training(training: Mapping[str, Any], optimizer: str) -> dict[str, Any]:
    """A run's training section: ``training`` without the optimizer keys that its optimizer
    does not use (a plain-SGD run's section is the one it had before optimizers had keys)."""
    unused = set(OPTIMIZER_KEYS) - set(OPTIMIZERS[optimizer])
    return {key: value for key, value in training.items() if key not in unused}


def run_training(config: Mapping[str, Any], points: list[RunPoint]) -> dict[str, dict[str, Any]]:
    """Run path → resolved training section (:func:`point_training`), for every point of
    the selected grid.

    A point reached by two sub-grids must get the same training settings from
    both (else a ConfigError naming the two sub-grids).
    """
    name = config["grid"]
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, sub in enumerate(selected_grid(config)["runs"]):
        section = subgrid_training(config, i)
        for point in expand_grid([sub], where=f"grids.{name}.runs[{i}]"):
            training = point_training(section, point.optimizer)
            j, other = found.setdefault(point.path, (i, training))
            if other != training:
                raise ConfigError(
                    f"grids.{name}.runs[{j}] and runs[{i}] both hold run {point.path} but give "
                    "it different training settings; allowed: the same training keys in both "
                    "sub-grids (or remove the run from one of them)"
                )
    return {path: training for path, (_, training) in found.items()}


def _as_integer(value: Any) -> Any:
    """``8.0`` → ``8`` (YAML and JSON Schema accept both as integers); anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def subgrid_values(sub: Mapping[str, Any], axis: str) -> list[Any]:
    """The values a sub-grid lists for ``axis``; ``[0]`` for a size axis it leaves out
    (:data:`SIZE_AXES`), the :data:`AXIS_DEFAULTS` for another axis it leaves out."""
    if axis in SIZE_AXES and axis not in sub:
        return [NO_SIZE]
    return list(sub[axis] if axis in sub else AXIS_DEFAULTS[axis])


def expand_grid(subgrids: list[Mapping[str, Any]], where: str = "grid") -> list[RunPoint]:
    """Union of the Cartesian products of each sub-grid, in a stable order, without repeats.

    Each sub-grid maps every axis in :data:`AXES` to a list of values (``width`` and
    ``depth`` may be left out, and so may an axis of :data:`AXIS_DEFAULTS`:
    :func:`subgrid_values`). A value
    repeated inside one list is an error (it is almost always a typo); the same
    point reached by two sub-grids (a batch-size sweep crossing the main grid)
    is kept once. Two points that would share a run folder (learning rates equal
    to 10 significant digits) are an error too.
    """
    if not subgrids:
        raise ConfigError(f"{where}.runs is empty: list at least one sub-grid")
    points: dict[RunPoint, None] = {}
    for i, sub in enumerate(subgrids):
        axes = {}
        for axis in AXES:
            values = subgrid_values(sub, axis)
            if axis in INTEGER_AXES:
                values = [_as_integer(v) for v in values]
            if not values:
                raise ConfigError(f"{where}.runs[{i}].{axis} is empty; list at least one value")
            if len(set(values)) != len(values):
                raise ConfigError(
                    f"{where}.runs[{i}].{axis} lists a value twice ({values}); allowed: distinct "
                    "values (remove the repeat)"
                )
            axes[axis] = values
        for combo in itertools.product(*(axes[axis] for axis in AXES)):
            point = RunPoint(**dict(zip(AXES, combo, strict=True)))
            points.setdefault(point, None)
    folders: dict[str, RunPoint] = {}
    for point in points:
        other = folders.setdefault(point.path, point)
        if other != point:
            raise ConfigError(
                f"{where}.runs: lr {other.lr!r} and {point.lr!r} would share the run folder "
                f"{point.path}; allowed: learning rates that differ within 10 significant "
                "digits (remove one of them)"
            )
    return list(points)


def checkpoint_schedule(
    spec: Mapping[str, Any], iterations: int, key: str = "training.checkpoints"
) -> list[int]:
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
                f"{key}.at has iterations {beyond} outside 0..{iterations} "
                f"(training.iterations); allowed: steps 0..{iterations} (remove them or raise "
                "training.iterations)"
            )
    else:  # the schema rules this out; kept for direct library use
        raise ConfigError(f"{key}.schedule is {kind!r}; allowed: log, every, list")
    its.add(iterations)
    if spec.get("include_initial", True):
        its.add(0)
    return sorted(its)


def check_config(config: Mapping[str, Any], workdir: str | Path = ".") -> list[RunPoint]:
    """Checks a schema cannot make; returns the expanded grid of the selected grid.

    Run after the schema (which guarantees the keys and types used here).
    Every :class:`ConfigError` names the key and the values it allows.
    """
    name = config["grid"]
    grid = selected_grid(config)
    where = f"grids.{name}"
    points = expand_grid(grid["runs"], where=where)
    for i, sub in enumerate(grid["runs"]):
        _check_subgrid_training(config, i, sub)
        _check_iterates_window(config, i)
        _check_optimizer_settings(config, i)
    run_training(config, points)
    splits = resolved_section(config, "noise")["splits"]
    for i, sub in enumerate(grid["runs"]):
        key = f"{where}.runs[{i}]"
        _check_learning_rates(key, sub)
        _check_batch_sizes(config, key, sub, splits)
        _check_architectures(key, sub)
    for dataset in sorted({p.dataset for p in points}):
        ds = config["datasets"][dataset]
        _check_normalisation(dataset, ds)
        _check_data_path(dataset, ds, workdir)
    return points


def _check_learning_rates(key: str, sub: Mapping[str, Any]) -> None:
    """Every learning rate of sub-grid ``key`` is finite."""
    for lr in sub["lr"]:
        if not math.isfinite(lr):
            raise ConfigError(f"{key}.lr holds {lr!r}; allowed: finite numbers > 0")


def _check_batch_sizes(
    config: Mapping[str, Any], key: str, sub: Mapping[str, Any], splits: list[str]
) -> None:
    """No batch of sub-grid ``key`` is larger than the smallest split it is trained or
    measured on (an .npz source is checked when it is read: it may hold any number)."""
    for dataset in sub["dataset"]:
        n_train, n_test = DATASET_SIZES[dataset]
        if config["datasets"][dataset]["source"] == "npz":
            continue
        if "test" in splits and n_test < n_train:
            smallest, split = n_test, "test"
        else:
            smallest, split = n_train, "train"
        for batch_size in sub["batch_size"]:
            if _as_integer(batch_size) > smallest:
                raise ConfigError(
                    f"{key}.batch_size: batch_size {batch_size} is larger than the "
                    f"{dataset} {split} split it is trained or measured on ({smallest} "
                    f"images); allowed: 1..{smallest}"
                )


def _check_architectures(key: str, sub: Mapping[str, Any]) -> None:
    """Every ``arch`` of sub-grid ``key`` names a network, with the width and depth it can
    have: torchvision models none (0), the built-in ones their own."""
    for arch in sub["arch"]:
        why = arch_error(arch)
        if why is not None:
            raise ConfigError(f"{key}.arch: {why}; allowed: {allowed_archs()}")
    widths, depths = ([_as_integer(v) for v in subgrid_values(sub, a)] for a in SIZE_AXES)
    torchvision = [arch for arch in sub["arch"] if is_torchvision(arch)]
    if torchvision and (widths, depths) != ([NO_SIZE], [NO_SIZE]):
        raise ConfigError(
            f"{key}: arch {torchvision[0]} is a torchvision model, which has no width or "
            f"depth, but the sub-grid gives width {widths} and depth {depths}; allowed: "
            f"width and depth left out (or [{NO_SIZE}]); put torchvision models in a sub-grid "
            "of their own"
        )
    if "fcn" in sub["arch"]:
        _check_at_least(key, "fcn", sub, "width", 1, "hidden units per layer")
        _check_at_least(key, "fcn", sub, "depth", 2, "linear layers")
    if "alexnet" in sub["arch"]:
        _check_at_least(key, "alexnet", sub, "width", 1, "filters ch")
        _check_alexnet_depth(key, depths)


def _check_at_least(
    key: str, arch: str, sub: Mapping[str, Any], axis: str, least: int, meaning: str
) -> None:
    """Every ``axis`` value of built-in ``arch`` in sub-grid ``key`` is at least ``least``."""
    values = [_as_integer(v) for v in subgrid_values(sub, axis)]
    if min(values) < least:
        given = f"got {values}" if axis in sub else f"{axis} is left out (so {values})"
        raise ConfigError(
            f"{key}.{axis}: arch {arch} needs {axis} ≥ {least} ({meaning}), {given}; "
            f"allowed: integers ≥ {least} ({axis} {NO_SIZE} or left out only for torchvision "
            "models)"
        )


def _check_alexnet_depth(key: str, depths: list[int]) -> None:
    """A sub-grid ``key`` with AlexNet has the one depth AlexNet has."""
    if depths != [ALEXNET_DEPTH]:
        raise ConfigError(
            f"{key}.depth: arch alexnet has a fixed depth of {ALEXNET_DEPTH} weight "
            f"layers (5 conv + 3 linear), got depth {depths}; allowed: "
            f"[{ALEXNET_DEPTH}] (put alexnet in its own sub-grid; its width is the "
            "number of filters ch)"
        )


def _check_normalisation(dataset: str, ds: Mapping[str, Any]) -> None:
    """``mean`` and ``std`` hold one finite number per image channel."""
    channels = DATASET_CHANNELS[dataset]
    for stat in ("mean", "std"):
        values = ds[stat]
        if len(values) != channels:
            raise ConfigError(
                f"datasets.{dataset}.{stat} has {len(values)} value(s) {values}, but "
                f"{dataset} images have {channels} channel(s); allowed: a list of "
                f"{channels} number(s)"
            )
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"datasets.{dataset}.{stat} is {values}; allowed: finite numbers")


def _training_key(config: Mapping[str, Any], index: int, key: str) -> str:
    """Where sub-grid ``index`` gets training key ``key`` from, as a dotted config key: its own
    ``training`` block, its grid's, or the top level's."""
    where = f"grids.{config['grid']}"
    if key in (selected_grid(config)["runs"][index].get("training") or {}):
        return f"{where}.runs[{index}].training.{key}"
    if key in (selected_grid(config).get("training") or {}):
        return f"{where}.training.{key}"
    return f"training.{key}"


def _check_optimizer_settings(config: Mapping[str, Any], index: int) -> None:
    """The optimizer hyper-parameters of sub-grid ``index`` are finite numbers (the schema
    checks their types and ranges, which infinity can pass)."""
    training = subgrid_training(config, index)
    for key in OPTIMIZER_KEYS:
        values = training[key] if isinstance(training[key], list) else [training[key]]
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(
                f"{_training_key(config, index, key)} is {training[key]!r}; allowed: finite "
                "numbers (config.yaml documents each optimizer key's range)"
            )


def _check_subgrid_training(config: Mapping[str, Any], index: int, sub: Mapping[str, Any]) -> None:
    """Sub-grid ``index`` sets no device of its own, and its checkpoints fall inside its runs."""
    name = config["grid"]
    where = f"grids.{name}"
    if "device" in (sub.get("training") or {}):
        raise ConfigError(
            f"{where}.runs[{index}].training.device is set, but the device is chosen for the "
            f"whole grid; allowed: training.device or {where}.training.device (remove it "
            "from the sub-grid)"
        )
    training = subgrid_training(config, index)
    iterations = training["iterations"]
    spec = training["checkpoints"]
    ckpt_key = _training_key(config, index, "checkpoints")
    checkpoint_schedule(spec, iterations, key=ckpt_key)
    if spec["schedule"] == "every" and int(spec["every"]) > iterations:
        raise ConfigError(
            f"{ckpt_key}.every is {spec['every']}, more than training.iterations "
            f"({iterations}) of grid {name!r}: no checkpoint would fall inside the run; "
            f"allowed: 1..{iterations}"
        )


def _check_iterates_window(config: Mapping[str, Any], index: int) -> None:
    """When iterates are measured, the window fits in the runs of sub-grid ``index``."""
    iterates = resolved_section(config, "iterates")
    if not iterates.get("measure"):
        return
    name = config["grid"]
    iterations = subgrid_training(config, index)["iterations"]
    window = iterates["window"]
    if window > iterations:
        overridden = "window" in (selected_grid(config).get("iterates") or {})
        key = f"grids.{name}.iterates.window" if overridden else "iterates.window"
        raise ConfigError(
            f"{key} is {window}, more than the {iterations} training.iterations of "
            f"grids.{name}.runs[{index}]: the window must lie inside every run; allowed: "
            f"2..{iterations} (or set iterates.measure: false)"
        )


def _check_data_path(dataset: str, ds: Mapping[str, Any], workdir: str | Path) -> None:
    """A folder / .npz source must exist and be of the right kind; a download target a folder."""
    path = Path(workdir, ds["path"]).expanduser()
    source = ds["source"]
    key = f"datasets.{dataset}.path"
    what = {"folder": "torchvision data folder", "npz": ".npz file"}.get(source)
    if what and not path.exists():
        raise ConfigError(
            f"{key} is {ds['path']!r} (source {source}), which does not exist; allowed: an "
            f"existing {what}: point it there, or set datasets.{dataset}.source: download"
        )
    if source in ("folder", "download") and path.exists() and not path.is_dir():
        raise ConfigError(
            f"{key} is {ds['path']!r}, a file, but source {source} needs a folder; allowed: "
            f"a folder (or set datasets.{dataset}.source: npz if it is an .npz file)"
        )
    if source == "npz" and path.is_dir():
        raise ConfigError(
            f"{key} is {ds['path']!r}, a folder, but source npz needs an .npz file; allowed: "
            f"a file with x_train, y_train, x_test, y_test (or set "
            f"datasets.{dataset}.source: folder for torchvision's layout)"
        )


# --------------------------------------------------------------------------- schema errors
_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _resolve(schema: Any, root: Mapping[str, Any] | None) -> Any:
    """Follow a local ``$ref`` (``#/$defs/name``) and merge ``allOf`` members into one dict."""
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    if "$ref" in schema and root is not None:
        node: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        out.update(_resolve(node, root))
    for member in schema.get("allOf", []):
        for k, v in _resolve(member, root).items():
            if k == "properties" and "properties" in out:
                out["properties"] = {**out["properties"], **v}
            elif k == "required" and "required" in out:
                out["required"] = [*out["required"], *v]
            else:
                out.setdefault(k, v)
    out.update({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
    return out


def _schema_chain(root: Mapping[str, Any] | None, path: list) -> list[Mapping[str, Any]]:
    """The (resolved) sub-schemas along an instance path, from the root down."""
    if root is None:
        return []
    node = _resolve(root, root)
    chain = [node]
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            extra = node.get("additionalProperties", {})
            node = extra if isinstance(extra, Mapping) else {}
        node = _resolve(node, root)
        chain.append(node)
    return chain


def _bounds(schema: Mapping[str, Any]) -> str:
    parts = []
    for word, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if word in schema:
            parts.append(f"{sign} {schema[word]}")
    return " and ".join(parts)


def allowed_values(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> str:
    """What a (sub-)schema accepts, in words: ``one of fcn, alexnet``, ``an integer ≥ 1``."""
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping):
        return ""
    alternatives = schema.get("oneOf", schema.get("anyOf"))
    if alternatives:  # e.g. an integer ≥ 16 or auto
        return " or ".join(filter(None, (allowed_values(s, root) for s in alternatives)))
    if "const" in schema:
        return str(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return _list_words(schema, root)
    if kind == "object" or "properties" in schema:
        return _mapping_words(schema, root)
    if isinstance(kind, list):  # e.g. [number, "null"]: each type in words, "or" between
        return " or ".join(allowed_values({**schema, "type": k}, root) for k in kind)
    return _scalar_words(schema)


def _list_words(schema: Mapping[str, Any], root: Mapping[str, Any] | None) -> str:
    """``a list of at least 1 item(s), no repeats, each …``."""
    limits = []
    if "minItems" in schema:
        limits.append(f"at least {schema['minItems']}")
    if "maxItems" in schema:
        limits.append(f"at most {schema['maxItems']}")
    size = f" of {' and '.join(limits)} item(s)" if limits else ""
    unique = ", no repeats" if schema.get("uniqueItems") else ""
    items = allowed_values(schema.get("items", {}), root)
    return f"a list{size}{unique}, each {items}" if items else f"a list{size}{unique}"


def _mapping_words(schema: Mapping[str, Any], root: Mapping[str, Any] | None) -> str:
    """``a mapping with keys …``, ``a mapping of names to …`` or ``a mapping``."""
    keys = sorted(schema.get("properties", {}))
    if keys:
        return "a mapping with keys " + ", ".join(keys)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        return "a mapping of names to " + allowed_values(extra, root)
    return "a mapping"


def _scalar_words(schema: Mapping[str, Any]) -> str:
    """A single JSON type in words with its bounds (``an integer ≥ 1``); "" for no type."""
    kind = schema.get("type")
    if kind not in _TYPE_NAMES:
        return ""
    text = _TYPE_NAMES[kind]
    if kind == "null":
        return text
    if kind == "string" and schema.get("minLength"):
        text = "a non-empty string"
    bounds = _bounds(schema)
    return f"{text} {bounds}" if bounds else text


def _dotted(path: list) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the config"


def _validation_error(error: Any) -> Any:
    """The ``ValidationError`` itself, or the one up to 10 causes/contexts down; else None."""
    err, seen = error, 0
    while err is not None and not hasattr(err, "validator") and seen < 10:
        err, seen = (err.__cause__ or err.__context__), seen + 1
    return err if err is not None and hasattr(err, "validator") else None


def _own_description(chain: list[Mapping[str, Any]], path: list) -> str | None:
    """The description of the key at the end of ``chain``, or for a list item that of its
    list (the item's own wins when both have one); None without one or without a schema."""
    if not chain:
        return None
    own = [chain[-1]] + ([chain[-2]] if path and isinstance(path[-1], int) else [])
    descriptions = [s["description"] for s in reversed(own) if "description" in s]
    return descriptions[-1] if descriptions else None


def _unknown_keys(err: Any, path: list) -> tuple[str, str]:
    """``additionalProperties``: the unknown keys, and the known ones as the allowed."""
    known = sorted(err.schema.get("properties", {}))
    unknown = sorted(str(k) for k in err.instance if k not in known)
    text = f"{_dotted(path)} has unknown key(s) {', '.join(map(repr, unknown))}"
    return text, "keys " + ", ".join(known)


def _missing_key(
    err: Any, path: list, schema: Mapping[str, Any] | None
) -> tuple[str, str, str | None]:
    """``required``: the first missing key, what it allows and its description."""
    missing = [k for k in err.validator_value if k not in err.instance]
    sub = _schema_chain(schema, path + missing[:1])
    text = f"{_dotted(path + missing[:1])} is missing ({err.message})"
    allowed = allowed_values(sub[-1], schema) if sub else ""
    description = sub[-1].get("description") if sub else None
    return text, allowed, description


def _wrong_value(
    err: Any, path: list, schema: Mapping[str, Any] | None, chain: list[Mapping[str, Any]]
) -> tuple[str, str]:
    """Any other validator: the value and the message, and what the key allows."""
    text = f"{_dotted(path)} is {err.instance!r} ({err.message})" if path else err.message
    allowed = allowed_values(err.schema, schema)
    if chain and (not allowed or err.validator in ("minItems", "maxItems", "uniqueItems")):
        allowed = allowed_values(chain[-1], schema) or allowed
    return text, allowed


def _number_as_text_hint(err: Any) -> str:
    """For a number that YAML read as text (``1e-3``), how to write it; else ""."""
    if err.validator != "type" or not isinstance(err.instance, str):
        return ""
    try:
        float(err.instance)
    except ValueError:
        return ""
    return (
        f"; {err.instance!r} is text (YAML reads numbers such as 1e-3 as text: "
        "write 0.001 or 1.0e-3)"
    )


def describe_schema_error(error: Any, schema: Mapping[str, Any] | str | Path | None = None) -> str:
    """One line for a JSON Schema ``ValidationError``: the key, what is wrong, what is allowed.

    ``error`` may also be the ``WorkflowError`` that ``snakemake.utils.validate`` raises
    (the ``ValidationError`` is its ``__context__``); ``schema`` (the schema or its file)
    adds the key's description, and the allowed values where a key is missing. E.g.
    ``grids.smoke.runs[0].loss[0] is 'mse' ('mse' is not one of ['cross_entropy', 'hinge']);
    allowed: one of cross_entropy, hinge (cross_entropy or hinge (linear multi-class hinge))
    [config['grids']['smoke']['runs'][0]['loss'][0]]``.
    """
    err = _validation_error(error)
    if err is None:
        return " ".join(str(error).split())
    if isinstance(schema, (str, Path)):
        import yaml  # only where Snakemake runs (PyYAML is one of its dependencies)

        schema = yaml.safe_load(Path(schema).read_text())
    path = list(err.absolute_path)
    chain = _schema_chain(schema, path)
    if err.validator == "additionalProperties":
        text, allowed = _unknown_keys(err, path)
        description = _own_description(chain, path) if path else None
    elif err.validator == "required":
        text, allowed, description = _missing_key(err, path, schema)
    else:
        text, allowed = _wrong_value(err, path, schema, chain)
        description = _own_description(chain, path)
    text += f"; allowed: {allowed}" if allowed else ""
    text += f" ({description})" if description is not None else ""
    text += _number_as_text_hint(err)
    where = "".join(f"[{p!r}]" for p in path)
    text += f" [config{where}]" if where else ""
    return " ".join(text.split())
