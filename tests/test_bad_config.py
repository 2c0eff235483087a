"""Invalid configs fail before any job starts, naming the key and the allowed values.

Every case runs through the same two checks as ``rules/common.smk`` (the JSON Schema via
``snakemake.utils.validate``, its error turned into one line by
``sgdtail.grid.describe_schema_error``, then ``sgdtail.grid.check_config``) in-process, which
takes milliseconds; the cases marked ``CLI`` also run the real ``snakemake`` command line in an
empty folder and check that it exits non-zero before building the DAG, prints the same
message, and creates nothing (no ``results/``, no ``.snakemake/``). Those start a Snakemake
each (about 2 s), two at a time.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from sgdtail.grid import ConfigError, check_config, describe_schema_error

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config.schema.yaml"
DELETE = object()
"""Edit value that removes the key."""


@dataclass(frozen=True)
class Case:
    """One invalid config: edits applied to config.yaml (with grid: smoke) and the message."""

    name: str
    edits: dict[str, Any]
    expect: tuple[str, ...]
    cli: bool = False
    setup: Callable[[Path], None] | None = field(default=None, compare=False)


def path_parts(dotted: str) -> list[str | int]:
    """``grids.smoke.runs.0.width`` → ``['grids', 'smoke', 'runs', 0, 'width']``."""
    return [int(p) if p.isdigit() else p for p in dotted.split(".")]


def apply_edits(config: dict, edits: dict[str, Any], aux: Path) -> dict:
    cfg = copy.deepcopy(config)
    for dotted, value in edits.items():
        *parents, last = path_parts(dotted)
        node = cfg
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            if isinstance(value, str) and "@AUX" in value:
                value = value.replace("@AUX", str(aux))
            node[last] = value
    return cfg


RUN0 = "grids.smoke.runs.0"
SMOKE_CKPT = "grids.smoke.training.checkpoints"

CASES = [
    # ---- wrong types
    Case(
        "iterations-is-text",
        {"training.iterations": "many"},
        ("training.iterations", "'many'", "allowed: an integer ≥ 1"),
        cli=True,
    ),
    Case(
        "lr-written-1e-3",
        {f"{RUN0}.lr": ["1e-3"]},
        ("grids.smoke.runs[0].lr[0]", "allowed: a number > 0", "write 0.001 or 1.0e-3"),
        cli=True,
    ),
    Case(
        "flag-is-text",
        {"training.stop_at_train_accuracy": "yes"},
        ("training.stop_at_train_accuracy", "allowed: a number > 0 and ≤ 1 or null"),
    ),
    Case(
        "accuracy-target-above-1",
        {"training.stop_at_train_accuracy": 90},
        ("training.stop_at_train_accuracy is 90", "allowed: a number > 0 and ≤ 1 or null"),
    ),
    Case(
        "axis-not-a-list",
        {f"{RUN0}.width": 8},
        ("grids.smoke.runs[0].width", "allowed: a list of at least 1 item(s), each an integer ≥ 0"),
        cli=True,
    ),
    Case(
        "width-is-fractional",
        {f"{RUN0}.width": [4.5]},
        ("grids.smoke.runs[0].width[0]", "allowed: an integer ≥ 0"),
    ),
    Case("grid-name-not-text", {"grid": 5}, ("grid is 5", "allowed: a string")),
    # ---- unknown keys
    Case(
        "unknown-top-level-key",
        {"trainng": {"iterations": 10}},
        ("the config has unknown key(s) 'trainng'", "allowed: keys", "datasets", "training"),
        cli=True,
    ),
    Case(
        "unknown-training-key",
        {"training.learning_rate": 0.1},
        (
            "training has unknown key(s) 'learning_rate'",
            "allowed: keys adam_betas, adam_eps, checkpoints, device, eval_batch_size, iterations",
        ),
        cli=True,
    ),
    Case(
        "unknown-grid-axis",
        {f"{RUN0}.momentum": [0.9]},
        (
            "grids.smoke.runs[0] has unknown key(s) 'momentum'",
            "allowed: keys arch, batch_size, dataset, depth, loss, lr, optimizer, seed, "
            "training, width",
        ),
        cli=True,
    ),
    # ---- the optimizer axis and its hyper-parameters
    Case(
        "unknown-optimizer",
        {f"{RUN0}.optimizer": ["sgd", "rmsprop"]},
        (
            "grids.smoke.runs[0].optimizer[1] is 'rmsprop'",
            "allowed: one of sgd, momentum, nesterov, adam",
        ),
        cli=True,
    ),
    Case(
        "optimizer-not-a-list",
        {f"{RUN0}.optimizer": "adam"},
        ("grids.smoke.runs[0].optimizer is 'adam'", "allowed: a list of at least 1 item(s)"),
    ),
    Case(
        "optimizer-repeated",
        {f"{RUN0}.optimizer": ["adam", "adam"]},
        ("grids.smoke.runs[0].optimizer lists a value twice", "allowed: distinct values"),
    ),
    Case(
        "momentum-one",
        {"training.momentum": 1.0},
        ("training.momentum is 1.0", "allowed: a number ≥ 0 and < 1"),
        cli=True,
    ),
    Case(
        "nesterov-momentum-zero",
        {"grids.smoke.training.nesterov_momentum": 0},
        ("grids.smoke.training.nesterov_momentum is 0", "allowed: a number > 0 and < 1"),
    ),
    Case(
        "adam-one-beta",
        {"training.adam_betas": [0.9]},
        ("training.adam_betas is [0.9]", "allowed: a list of at least 2 and at most 2 item(s)"),
    ),
    Case(
        "adam-beta2-one",
        {"training.adam_betas": [0.9, 1.0]},
        ("training.adam_betas[1] is 1.0", "allowed: a number ≥ 0 and < 1"),
    ),
    Case(
        "adam-eps-zero",
        {"training.adam_eps": 0},
        ("training.adam_eps is 0", "allowed: a number > 0"),
    ),
    Case(
        "negative-weight-decay",
        {"training.weight_decay": -0.1},
        ("training.weight_decay is -0.1", "allowed: a number ≥ 0"),
    ),
    Case(
        "infinite-adam-eps",
        {"training.adam_eps": math.inf},
        ("training.adam_eps is inf", "allowed: finite numbers"),
        cli=True,
    ),
    Case(
        "infinite-weight-decay-in-a-subgrid",
        {f"{RUN0}.training": {"weight_decay": math.inf}},
        ("grids.smoke.runs[0].training.weight_decay is inf", "allowed: finite numbers"),
    ),
    Case(
        "device-per-subgrid",
        {f"{RUN0}.training": {"device": "cuda"}},
        (
            "grids.smoke.runs[0].training.device is set",
            "chosen for the whole grid",
            "allowed: training.device or grids.smoke.training.device",
        ),
        cli=True,
    ),
    Case(
        "unknown-grid-section",
        {"grids.smoke.optimiser": {"momentum": 0.9}},
        ("grids.smoke has unknown key(s) 'optimiser'", "allowed: keys", "runs", "training"),
    ),
    Case(
        "unknown-dataset-entry",
        {"datasets.svhn": {"source": "download", "path": "x", "mean": [0.5], "std": [0.5]}},
        ("datasets has unknown key(s) 'svhn'", "allowed: keys cifar10, cifar100, mnist"),
    ),
    # ---- unknown values of an enumeration
    Case(
        "unknown-dataset",
        {f"{RUN0}.dataset": ["imagenet"]},
        ("grids.smoke.runs[0].dataset[0]", "allowed: one of mnist, cifar10, cifar100"),
        cli=True,
    ),
    Case(
        "unknown-architecture",
        {f"{RUN0}.arch": ["resnet"]},
        (
            "grids.smoke.runs[0].arch: 'resnet' is neither a built-in network nor a torchvision "
            "classification model",
            "allowed: fcn, alexnet, or a torchvision classification model of the families resnet,",
            "list the names with python -c 'import torchvision.models as m; "
            "print(m.list_models(module=m))'",
        ),
        cli=True,
    ),
    Case(
        "unsupported-torchvision-family",
        {f"{RUN0}.arch": ["vit_b_16"], f"{RUN0}.width": DELETE, f"{RUN0}.depth": DELETE},
        (
            "grids.smoke.runs[0].arch: 'vit_b_16' is a torchvision model of a family not adapted",
            "allowed: fcn, alexnet, or a torchvision classification model",
        ),
    ),
    Case(
        "torchvision-model-with-a-width",
        {f"{RUN0}.arch": ["resnet18"], f"{RUN0}.depth": DELETE},
        (
            "grids.smoke.runs[0]: arch resnet18 is a torchvision model, which has no width or "
            "depth, but the sub-grid gives width [4, 8] and depth [0]",
            "allowed: width and depth left out (or [0])",
        ),
        cli=True,
    ),
    Case(
        "torchvision-model-beside-fcn",
        {f"{RUN0}.arch": ["fcn", "mobilenet_v3_small"]},
        ("arch mobilenet_v3_small is a torchvision model", "a sub-grid of their own"),
    ),
    Case(
        "fcn-without-width",
        {f"{RUN0}.width": DELETE},
        (
            "grids.smoke.runs[0].width: arch fcn needs width ≥ 1 (hidden units per layer), "
            "width is left out (so [0])",
            "allowed: integers ≥ 1",
        ),
    ),
    Case(
        "unknown-loss",
        {f"{RUN0}.loss": ["mse"]},
        ("grids.smoke.runs[0].loss[0]", "allowed: one of cross_entropy, hinge"),
        cli=True,
    ),
    Case(
        "unknown-lr-schedule",
        {"training.lr_schedule": "cosine"},
        ("training.lr_schedule", "allowed: one of constant, halve"),
    ),
    Case(
        "unknown-device",
        {"training.device": "tpu"},
        ("training.device", "allowed: one of auto, cpu, cuda"),
        cli=True,
    ),
    Case(
        "unknown-noise-split",
        {"noise.splits": ["validation"]},
        ("noise.splits[0]", "allowed: one of train, test"),
    ),
    Case(
        "unknown-remainder",
        {"noise.remainder": "keep"},
        ("noise.remainder", "allowed: one of drop, weight"),
    ),
    Case(
        "unknown-checkpoint-schedule",
        {f"{SMOKE_CKPT}.schedule": "linear"},
        ("grids.smoke.training.checkpoints.schedule", "allowed: one of log, every, list"),
        cli=True,
    ),
    Case(
        "unknown-data-source",
        {"datasets.mnist.source": "http"},
        ("datasets.mnist.source", "allowed: one of download, folder, npz"),
        cli=True,
    ),
    # ---- out of range
    Case(
        "zero-width",
        {f"{RUN0}.width": [0]},
        ("grids.smoke.runs[0].width: arch fcn needs width ≥ 1", "got [0]", "allowed: integers ≥ 1"),
        cli=True,
    ),
    Case(
        "negative-width",
        {f"{RUN0}.width": [8, -3]},
        (
            "grids.smoke.runs[0].width[1]",
            "-3 is less than the minimum of 0",
            "allowed: an integer ≥ 0",
        ),
    ),
    Case(
        "depth-below-2",
        {f"{RUN0}.depth": [1]},
        ("grids.smoke.runs[0].depth: arch fcn needs depth ≥ 2", "allowed: integers ≥ 2"),
        cli=True,
    ),
    Case(
        "zero-batch-size",
        {f"{RUN0}.batch_size": [0]},
        ("grids.smoke.runs[0].batch_size[0]", "allowed: an integer ≥ 1"),
    ),
    Case(
        "zero-learning-rate",
        {f"{RUN0}.lr": [0.0]},
        ("grids.smoke.runs[0].lr[0]", "allowed: a number > 0"),
        cli=True,
    ),
    Case(
        "negative-learning-rate",
        {f"{RUN0}.lr": [-0.1]},
        ("grids.smoke.runs[0].lr[0]", "allowed: a number > 0"),
    ),
    Case(
        "zero-iterations",
        {"training.iterations": 0},
        ("training.iterations", "allowed: an integer ≥ 1"),
    ),
    Case(
        "zero-iterations-in-grid-override",
        {"grids.smoke.training.iterations": 0},
        ("grids.smoke.training.iterations", "allowed: an integer ≥ 1"),
    ),
    Case(
        "iterates-window-longer-than-the-runs",
        {"grids.smoke.iterates.window": 21},
        ("grids.smoke.iterates.window is 21", "20 training.iterations", "allowed: 2..20"),
        cli=True,
    ),
    Case(
        "iterates-window-of-the-top-level-too-long",
        {"grids.smoke.iterates": {"measure": True}, "iterates.window": 50},
        ("iterates.window is 50", "grids.smoke.runs[0]", "allowed: 2..20"),
    ),
    Case(
        "iterates-window-of-one-step",
        {"grids.smoke.iterates.window": 1},
        ("grids.smoke.iterates.window", "allowed: an integer ≥ 2"),
    ),
    Case(
        "negative-seed",
        {f"{RUN0}.seed": [-1]},
        ("grids.smoke.runs[0].seed[0]", "allowed: an integer ≥ 0"),
    ),
    Case(
        "ci-level-above-1",
        {"estimators.ci_level": 1.5},
        ("estimators.ci_level", "allowed: a number > 0 and < 1"),
    ),
    Case(
        "zero-std",
        {"datasets.mnist.std": [0.0]},
        ("datasets.mnist.std[0]", "allowed: a number > 0"),
    ),
    Case(
        "four-channel-mean",
        {"datasets.mnist.mean": [0.1, 0.1, 0.1, 0.1]},
        ("datasets.mnist.mean", "allowed: a list of at least 1 and at most 3 item(s)"),
    ),
    Case(
        "tiny-memory-budget",
        {"noise.memory_budget_mb": 1},
        ("noise.memory_budget_mb", "allowed: an integer ≥ 16 or auto"),
    ),
    Case(
        "hessian-budget-below-one-krylov-space",
        {"sharpness.max_hessian_products": 10},
        ("sharpness.max_hessian_products", "allowed: an integer ≥ 11"),
    ),
    Case(
        "alpha-above-2",
        {"validation.alphas": [1.0, 2.5]},
        ("validation.alphas[1]", "allowed: a number > 0 and ≤ 2"),
    ),
    Case(
        "negative-checkpoint",
        {f"{SMOKE_CKPT}.at": [-5]},
        ("grids.smoke.training.checkpoints.at[0]", "allowed: an integer ≥ 0"),
    ),
    Case(
        "empty-data-path",
        {"datasets.mnist.path": ""},
        ("datasets.mnist.path", "allowed: a non-empty string"),
    ),
    # ---- empty or missing
    Case(
        "empty-grid",
        {"grids.smoke.runs": []},
        ("grids.smoke.runs", "should be non-empty", "allowed: a list of at least 1 item(s)"),
        cli=True,
    ),
    Case(
        "empty-axis",
        {f"{RUN0}.width": []},
        ("grids.smoke.runs[0].width", "allowed: a list of at least 1 item(s)"),
    ),
    Case(
        "no-grids-at-all",
        {"grids": {}},
        ("grids is {}", "allowed: a mapping of names to a mapping with keys"),
    ),
    Case(
        "missing-required-key",
        {"training.iterations": DELETE},
        ("training.iterations is missing", "allowed: an integer ≥ 1"),
        cli=True,
    ),
    Case(
        "missing-axis",
        {f"{RUN0}.seed": DELETE},
        ("grids.smoke.runs[0].seed is missing", "allowed: a list of at least 1 item(s)"),
    ),
    Case(
        "empty-noise-splits",
        {"noise.splits": []},
        ("noise.splits", "allowed: a list of at least 1 item(s), no repeats"),
    ),
    # ---- duplicates
    Case(
        "duplicate-grid-value",
        {f"{RUN0}.width": [4, 8, 4]},
        ("grids.smoke.runs[0].width lists a value twice", "allowed: distinct values"),
        cli=True,
    ),
    Case(
        "duplicate-int-and-float",
        {f"{RUN0}.width": [4, 4.0]},
        ("grids.smoke.runs[0].width lists a value twice",),
    ),
    Case(
        "duplicate-run-folder",
        {f"{RUN0}.lr": [0.1, 0.10000000001]},
        ("grids.smoke.runs", "would share the run folder", "allowed: learning rates that differ"),
    ),
    Case(
        "duplicate-checkpoints",
        {f"{SMOKE_CKPT}.at": [5, 5]},
        ("grids.smoke.training.checkpoints.at", "has non-unique elements", "no repeats"),
    ),
    Case(
        "duplicate-noise-split",
        {"noise.splits": ["train", "train"]},
        ("noise.splits", "no repeats"),
    ),
    # ---- what a schema cannot say (sgdtail.grid.check_config)
    Case(
        "unknown-grid",
        {"grid": "nope"},
        (
            "'grid' is 'nope'",
            "allowed: one of default, eta_over_b, optimizers_models, paper, paper_sample, smoke, "
            "smoke_optimizers, smoke_sweeps",
        ),
        cli=True,
    ),
    Case(
        "batch-larger-than-data",
        {f"{RUN0}.batch_size": [20000]},
        (
            "grids.smoke.runs[0].batch_size",
            "20000 is larger than the mnist test split",
            "allowed: 1..10000",
        ),
        cli=True,
    ),
    Case(
        "checkpoint-beyond-run",
        {f"{SMOKE_CKPT}.at": [5, 50]},
        ("grids.smoke.training.checkpoints.at", "[50] outside 0..20", "allowed: steps 0..20"),
        cli=True,
    ),
    Case(
        "checkpoint-every-beyond-run",
        {SMOKE_CKPT: {"schedule": "every", "every": 100, "include_initial": True}},
        ("grids.smoke.training.checkpoints.every is 100", "allowed: 1..20"),
    ),
    Case(
        "missing-data-folder",
        {"datasets.mnist.source": "folder", "datasets.mnist.path": "/no/such/folder"},
        (
            "datasets.mnist.path is '/no/such/folder'",
            "does not exist",
            "allowed: an existing torchvision data folder",
        ),
        cli=True,
    ),
    Case(
        "missing-npz-file",
        {"datasets.mnist.source": "npz", "datasets.mnist.path": "@AUX/missing.npz"},
        ("datasets.mnist.path", "missing.npz", "does not exist", "allowed: an existing .npz"),
    ),
    Case(
        "data-folder-is-a-file",
        {"datasets.mnist.source": "folder", "datasets.mnist.path": "@AUX/a_file.npz"},
        ("datasets.mnist.path", "a file, but source folder needs a folder"),
    ),
    Case(
        "npz-is-a-folder",
        {"datasets.mnist.source": "npz", "datasets.mnist.path": "@AUX/a_folder"},
        ("datasets.mnist.path", "a folder, but source npz needs an .npz file"),
    ),
    Case(
        "alexnet-depth",
        {f"{RUN0}.arch": ["alexnet"], f"{RUN0}.depth": [3]},
        ("grids.smoke.runs[0].depth", "fixed depth of 8", "allowed: [8]"),
        cli=True,
    ),
    Case(
        "mean-channels-mismatch",
        {"datasets.mnist.mean": [0.1, 0.2, 0.3]},
        ("datasets.mnist.mean has 3 value(s)", "1 channel(s)", "allowed: a list of 1 number(s)"),
        cli=True,
    ),
    Case(
        "infinite-learning-rate",
        {f"{RUN0}.lr": [math.inf]},
        ("grids.smoke.runs[0].lr", "allowed: finite numbers > 0"),
    ),
]
"""``unknown estimator`` has no case: the config has no key that selects estimators (every
estimator always runs); ``estimators.*`` keys are covered by the range cases above."""

CLI_CASES = [case for case in CASES if case.cli]


@pytest.fixture(scope="module")
def base_config() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["grid"] = "smoke"
    return config


@pytest.fixture(scope="module")
def aux(tmp_path_factory) -> Path:
    """Files that path cases point at, outside every Snakemake working folder."""
    root = tmp_path_factory.mktemp("aux")
    (root / "a_file.npz").write_bytes(b"not an npz")
    (root / "a_folder").mkdir()
    return root


def in_process_message(config: dict, workdir: Path) -> str:
    """The message common.smk would raise for ``config``, or '' when it passes."""
    config = copy.deepcopy(config)
    try:
        validate(config, str(SCHEMA))
    except WorkflowError as err:
        return "Invalid config: " + describe_schema_error(err, SCHEMA)
    try:
        check_config(config, workdir)
    except ConfigError as err:
        return f"Invalid config: {err}"
    return ""


def test_cases_are_many_and_distinct():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)
    assert len(CLI_CASES) >= 20


def test_shipped_config_passes(base_config, tmp_path):
    assert {"smoke", "smoke_sweeps", "default", "paper_sample", "paper"} <= set(
        base_config["grids"]
    )
    for grid in base_config["grids"]:
        assert in_process_message(dict(base_config, grid=grid), tmp_path) == "", grid


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_in_process(case, base_config, aux, tmp_path):
    message = in_process_message(apply_edits(base_config, case.edits, aux), tmp_path)
    assert message.startswith("Invalid config: "), f"{case.name} was accepted"
    assert "\n" not in message
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in: {message}"


# --------------------------------------------------------------------------- the command line
def run_cli(case: Case, config: dict, root: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """``snakemake -n`` on ``config`` in an empty working folder under ``root``."""
    work = root / case.name / "work"
    work.mkdir(parents=True)
    configfile = root / case.name / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--cores",
        "1",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(configfile),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    return res, work


@pytest.fixture(scope="module")
def cli_results(base_config, aux, tmp_path_factory) -> dict[str, tuple]:
    """Every CLI case through ``snakemake -n``, two at a time."""
    root = tmp_path_factory.mktemp("bad_config_cli")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            case.name: pool.submit(run_cli, case, apply_edits(base_config, case.edits, aux), root)
            for case in CLI_CASES
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_snakemake_refuses_before_any_job(case, cli_results):
    res, work = cli_results[case.name]
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "WorkflowError" in out and "Invalid config: " in out, out[-3000:]
    message = next(line for line in out.splitlines() if line.startswith("Invalid config: "))
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert "Building DAG of jobs" not in out  # failed while reading the config
    assert list(work.iterdir()) == [], "the working folder must stay empty"


@pytest.mark.slow
def test_valid_config_dry_run_passes(base_config, tmp_path):
    """The control: the same command line with the untouched config builds its DAG."""
    res, work = run_cli(Case("valid", {}, ()), base_config, tmp_path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert not (work / "results").exists()
