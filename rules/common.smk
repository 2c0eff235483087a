# Config validation, the grid, and input functions shared by every rule.
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from sgdtail.grid import (  # noqa: E402
    AXES,
    ConfigError,
    check_config,
    checkpoint_schedule,
    resolved_section,
)


validate(config, "../config.schema.yaml")
try:
    RUNS = check_config(config)
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None

TRAINING = resolved_section(config, "training")
NOISE = resolved_section(config, "noise")
VALIDATION = resolved_section(config, "validation")
CHECKPOINTS = checkpoint_schedule(TRAINING["checkpoints"], TRAINING["iterations"])
DATASETS = sorted({run.dataset for run in RUNS})
RUN_DIR = "results/runs/{dataset}/{arch}/w{width}_d{depth}/{loss}_b{batch_size}_lr{lr}_s{seed}"


wildcard_constraints:
    dataset="mnist|cifar10|cifar100",
    arch="fcn|alexnet",
    width=r"\d+",
    depth=r"\d+",
    loss="cross_entropy|hinge",
    batch_size=r"\d+",
    lr=r"[0-9.eE+-]+",
    seed=r"\d+",


def run_files(name):
    """One file per run of the selected grid, e.g. run_files('run.json')."""
    return [f"results/runs/{run.path}/{name}" for run in RUNS]


def run_metadata():
    """Grid axes of every run, in the order of run_files(), for the aggregation."""
    return [run.wildcards() for run in RUNS]


def all_targets():
    return [
        "results/tables/summary.csv",
        "results/validation/estimator_validation.csv",
        "figures/alpha_vs_width.pdf",
        "figures/alpha_vs_width.png",
    ]


def dataset_setting(key):
    """Params function: config['datasets'][<dataset wildcard>][key]."""

    def setting(wildcards):
        return config["datasets"][wildcards.dataset][key]

    return setting


def noise_mem_mb(wildcards, attempt):
    """Memory of a noise measurement: the budget plus the data and model, more on retries."""
    return (NOISE["memory_budget_mb"] + 1500) * attempt
