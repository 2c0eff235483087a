# Config validation, the grid, and input functions shared by every rule.
import math
import sys
from dataclasses import asdict
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from sgdtail.grid import (  # noqa: E402
    AXIS_REGEX,
    RUN_PATTERN,
    ConfigError,
    check_config,
    checkpoint_schedule,
    describe_schema_error,
    resolved_section,
    run_path,
    run_training,
    typed_axes,
)
from sgdtail.cost import (  # noqa: E402
    BASE_MEM_MB,
    DATA_SIZES,
    ESTIMATOR_S_PER_VALUE,
    LANCZOS_VECTORS,
    local_threads,
    noise_kinds,
    noise_seconds,
    sharpness_seconds,
    state_buffers,
    train_seconds,
    visible_gpus,
)
from sgdtail.cost import net_size as _net_size  # noqa: E402
from sgdtail.cost import run_threads as _run_threads  # noqa: E402
from sgdtail.figures import FIGURES, PLOT_RULE_FIGURES, missing_runs  # noqa: E402

# Schema (types, enums, ranges, unknown keys), then the checks a schema cannot make; either
# fails here, before any job or folder exists, with one line naming the key and allowed values.
try:
    validate(config, "../config.schema.yaml")
except WorkflowError as err:
    raise WorkflowError(
        "Invalid config: "
        + describe_schema_error(err, Path(workflow.basedir) / "config.schema.yaml")
    ) from None
try:
    RUNS = check_config(config)
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None

TRAINING = resolved_section(config, "training")
NOISE = resolved_section(config, "noise")
ITERATES = resolved_section(config, "iterates")
VALIDATION = resolved_section(config, "validation")
DYNAMICS = resolved_section(config, "dynamics")
SHARPNESS = resolved_section(config, "sharpness")
LINEAR_SGD = resolved_section(config, "linear_sgd")
# training keys may differ between sub-grids (e.g. more steps for AlexNet): per run
RUN_TRAINING = run_training(config, RUNS)
RUN_CHECKPOINTS = {
    path: checkpoint_schedule(t["checkpoints"], t["iterations"])
    for path, t in RUN_TRAINING.items()
}
DATASETS = sorted({run.dataset for run in RUNS})
# logs/ and benchmarks/ mirror the run path per rule
RUN_DIR = f"results/runs/{RUN_PATTERN}"


wildcard_constraints:
    dataset="mnist|cifar10|cifar100",
    arch=AXIS_REGEX["arch"],
    width=r"\d+",
    depth=r"\d+",
    loss="cross_entropy|hinge",
    batch_size=r"\d+",
    lr=r"[0-9.eE+-]+",
    seed=r"\d+",
    # empty for plain SGD, _<name> for the other optimizers (sgdtail.grid.optimizer_text)
    optimizer=AXIS_REGEX["optimizer"],


def run_training_of(wildcards):
    """Params function: the resolved training section of the job's run."""
    return RUN_TRAINING[run_path(wildcards)]


def run_checkpoints_of(wildcards):
    """Params function: the checkpoint steps of the job's run."""
    return RUN_CHECKPOINTS[run_path(wildcards)]


def iterates_snapshot_output():
    """train_sgd's extra output when iterates are measured: the state W steps before the end."""
    if not ITERATES["measure"]:
        return {}
    return {"iterates_start": f"{RUN_DIR}/iterates_start.pt"}


def iterates_params():
    """train_sgd's extra param when iterates are measured (none otherwise, so that grids
    without them keep their params and are not rerun)."""
    return {"iterates": ITERATES} if ITERATES["measure"] else {}


def run_files(name):
    """One file per run of the selected grid, e.g. run_files('run.json')."""
    return [f"results/runs/{run.path}/{name}" for run in RUNS]


def run_metadata():
    """Grid axes of every run, in the order of run_files(), for the aggregation."""
    return [run.wildcards() for run in RUNS]


def all_targets():
    return [
        "results/tables/summary.csv",
        *iterates_table(),
        "results/validation/estimator_validation.csv",
        *figure_targets(),
    ]


def dataset_setting(key):
    """Params function: config['datasets'][<dataset wildcard>][key]."""

    def setting(wildcards):
        return config["datasets"][wildcards.dataset][key]

    return setting


# --- figures


def figure_settings():
    """The `figures` config section with the selected grid's overrides merged in."""
    return resolved_section(config, "figures")


def showcase_runs():
    """Run paths drawn by the per-run figures: figures.showcase, or the grid's first run."""
    paths = figure_settings()["showcase"] or [RUNS[0].path]
    known = {run.path for run in RUNS}
    unknown = [path for path in paths if path not in known]
    if unknown:
        raise WorkflowError(
            f"Invalid config: figures.showcase lists {unknown}, which are not runs of grid "
            f"{config['grid']!r}; use run paths of that grid (as under results/runs/), "
            f"e.g. {RUNS[0].path!r}, or [] for the first run"
        )
    return paths


def missing_figure_runs(name):
    """Why the selected grid cannot draw figure `name` and which runs to add, or None."""
    figure = FIGURES[name]
    checkpoints = (
        {path: RUN_CHECKPOINTS[path] for path in showcase_runs()}
        if figure.over_training
        else {}
    )
    points = [asdict(run) for run in RUNS]
    return missing_runs(
        figure, points, checkpoints, config["grid"], ITERATES["measure"]
    )


def figure_targets():
    """The figures the selected grid can draw (PDF and PNG), the claims table, the results page."""
    drawable = [name for name in FIGURES if missing_figure_runs(name) is None]
    return [
        *(path for name in drawable for path in (FIGURES[name].pdf, FIGURES[name].png)),
        "figures/claims.md",
        "figures/claims.csv",
        "figures/claims.html",
        "figures/results.md",
    ]


def figure_png(name):
    """figures/<name>.png, registered with the report: category, caption and figure label."""
    figure = FIGURES[name]
    return report(
        figure.png,
        category=figure.category,
        caption=figure.caption,
        labels={"figure": name},
    )


def _figure_files(path):
    """A declared input path: one file, or one per showcase run ({showcase}) or run ({run})."""
    if "{showcase}" in path:
        return [path.format(showcase=showcase) for showcase in showcase_runs()]
    if "{run}" in path:
        return [path.format(run=run.path) for run in RUNS]
    return path


def figure_input(figure):
    """Input function of plot_<name>: its declared inputs, or a WorkflowError naming the
    runs to add."""

    def inputs(wildcards):
        missing = missing_figure_runs(figure.name)
        if missing:
            raise WorkflowError(missing)
        return {key: _figure_files(path) for key, path in figure.inputs.items()}

    return inputs


def figure_params(figure):
    """Params of plot_<name>: its script's name, the showcase runs, figures settings and
    <section>.<key> settings of other sections it declares (the latter as <key>), and a
    sweep's plotting arguments (`sweep`)."""
    params = {"script": figure.script}
    for key in figure.params:
        section, _, name = key.rpartition(".")
        if key == "showcase":
            params[key] = showcase_runs()
        elif section:
            params[name] = resolved_section(config, section)[name]
        else:
            params[key] = figure_settings()[key]
    if figure.sweep:
        params["sweep"] = figure.sweep.plot_arguments()
    return params


def iterates_table():
    """The iterates' α̂ beside the noise's, when the grid measures the iterates (else none)."""
    return ["results/tables/iterates_vs_noise.csv"] if ITERATES["measure"] else []


def extra_claim_files():
    """JSON verdicts of the dynamics (C4, C5, C5 on SGD noise), sharpness (C6) and linear
    regression (C7a, C7b) stages."""
    return [
        "results/dynamics/claim_C4.json",
        "results/dynamics/claim_C5.json",
        "results/dynamics/claim_C5_sgd.json",
        "results/sharpness/claim_C6.json",
        "results/linear_sgd/claim_C7a.json",
        "results/linear_sgd/claim_C7b.json",
    ]


# --- resources (cluster)
# threads, mem_mb, runtime (minutes) and GPU requests of every rule, from the grid point: the
# SLURM profile turns them into sbatch options (--cpus-per-task, --mem, -t, --gpus); locally
# only threads count. Time comes from sgdtail.cost (calibrated on measured runs; requests are
# 1.5x the estimate + 2 min, at least 5), memory is about 1.5x the estimate below;
# every retry (attempt 2, 3, ...) multiplies memory and runtime, and --set-resources /
# --set-threads override any of them without editing the workflow (README, "SLURM").
# Runs expected to finish within SMALL_RUN_MINUTES put their jobs in the job groups
# "small_runs" (train_sgd -> measure_gradient_noise) and "small_sharpness"; profiles/slurm
# (group-components) packs N such runs into one SLURM job. Grouped jobs take one
# `group_slot`; the profile gives each group job one (a local-scope resource), which tells
# Snakemake that a group job runs its jobs one after the other (as the plugin's slurm-jobstep
# does), so that it asks for the sum of their runtimes and the CPUs of the largest one.

SMALL_RUN_MINUTES = 30


# GPUs. A run's jobs ask for one `gpu` when they will use CUDA: training.device cuda, or auto
# on a machine that runs the jobs itself and shows GPUs. Local runs (no --jobs, i.e. not a
# cluster executor) are limited to as many concurrent `gpu` jobs as this machine shows GPUs
# (sgdtail.cost.visible_gpus; SGDTAIL_GPUS fakes a count), unless --resources gpu=N says
# otherwise, so --cores N never stacks several runs on one GPU. On SLURM each job gets its own.
LOCAL_RUN = workflow.global_resources["_nodes"].value is None
LOCAL_GPUS = visible_gpus() if LOCAL_RUN else 0
# CPUs of a local run (--cores), of which a job with several threads takes at most half
# (sgdtail.cost.local_threads), so that two jobs always run side by side; None on a cluster,
# where each job gets its own CPUs, and inside a cluster job (the Snakemake that runs it there
# sees --cores all of its allocation and must not halve the threads it asked for)
LOCAL_CORES = (
    workflow.global_resources["_cores"].value
    if LOCAL_RUN and not (workflow.remote_exec or workflow.subprocess_exec)
    else None
)
if LOCAL_RUN and LOCAL_GPUS > 0 and "gpu" not in workflow.global_resources:
    workflow.global_resources["gpu"] = LOCAL_GPUS


def _on_gpu():
    """Whether a run's jobs use CUDA: device cuda, or auto where local GPUs are visible."""
    device = TRAINING["device"]
    return device == "cuda" or (device == "auto" and LOCAL_GPUS > 0)


def _point(wildcards):
    """The run's grid axes, typed (the optimizer by its name, not its run-path text)."""
    return typed_axes(wildcards)


def net_size(wildcards):
    """(parameters, forward FLOPs, activations) per image of the run's network."""
    return _net_size(
        wildcards.dataset, wildcards.arch, int(wildcards.width), int(wildcards.depth)
    )


# Scheduling order (Snakemake starts ready jobs of higher priority first; on a cluster this
# only orders the submissions). Serial steps that everything after them waits for (download and prepare a data set,
# aggregate the runs) go first; then jobs that unlock others (training runs unlock their
# noise and sharpness jobs, the sharpness figure unlocks the claims table); then the jobs that
# need nothing from the study's chain (estimator validation, the dynamics simulations and
# their figure), which fill cores the chain leaves idle instead of forming a serial tail at
# the end; noise, sharpness and figures (priority 0) take the rest. Measured on the smoke
# grid (scripts/benchmark.py cores, 2 CPUs): --cores 2 ran 1.78x as fast as --cores 1 (jobs
# alone 1.87x), against 1.55x before (no priorities, and torch imported by every job).
PRIORITY_SERIAL = 3
PRIORITY_UNLOCKS = 2
PRIORITY_SIDE = 1


def run_threads(wildcards):
    """CPU threads of a run's jobs (train, noise, sharpness): more for the large networks,
    at most half of a local run's --cores."""
    return _run_threads(_point(wildcards), _on_gpu(), LOCAL_CORES)


def run_gpus(wildcards):
    """GPUs of a run's jobs (train, noise, sharpness): 1 when they will use CUDA (_on_gpu)."""
    return 1 if _on_gpu() else 0


def _train_seconds(wildcards):
    training = run_training_of(wildcards)
    n_checkpoints = len(run_checkpoints_of(wildcards))
    return train_seconds(
        _point(wildcards), training["iterations"], n_checkpoints, _on_gpu()
    )


def iterates_runtime(wildcards, attempt):
    """Two replays of the window's SGD steps and the estimators over its W·M values."""
    params, _, _ = net_size(wildcards)
    window = ITERATES["window"]
    seconds = train_seconds(_point(wildcards), 2 * window, 0, _on_gpu())
    return _minutes(seconds + window * params * ESTIMATOR_S_PER_VALUE, attempt)


def _noise_seconds(wildcards):
    n_checkpoints = len(run_checkpoints_of(wildcards))
    return noise_seconds(_point(wildcards), NOISE["splits"], n_checkpoints, _on_gpu())


def _minutes(seconds, attempt, floor=5):
    """Slurm walltime in minutes: 1.5 × the estimate + 2, at least `floor`, times the attempt
    (the estimate is calibrated on measured runs: sgdtail.cost)."""
    return int(max(floor, math.ceil(1.5 * seconds / 60) + 2) * attempt)


def train_runtime(wildcards, attempt):
    return _minutes(_train_seconds(wildcards), attempt)


def noise_runtime(wildcards, attempt):
    return _minutes(_noise_seconds(wildcards), attempt)


def _data_mb(dataset):
    """The prepared data set in memory: float32 images (and the uint8 file while loading)."""
    (c, h, w), _, n_train, n_test = DATA_SIZES[dataset]
    return 1.25 * 4 * c * h * w * (n_train + n_test) / 2**20


def train_mem_mb(wildcards, attempt):
    """Weights and optimizer state at every checkpoint, params/grads/resume copies, the
    optimizer's state and its resume copy, activations, the data."""
    params, _, acts = net_size(wildcards)
    batch = max(
        int(wildcards.batch_size), run_training_of(wildcards)["eval_batch_size"]
    )
    buffers = state_buffers(_point(wildcards))
    copies = (1 + buffers) * len(run_checkpoints_of(wildcards)) + 8 + 2 * buffers
    model_mb = 4 * params * copies / 2**20
    acts_mb = 2 * 4 * batch * acts / 2**20
    mb = BASE_MEM_MB + _data_mb(wildcards.dataset) + model_mb + acts_mb
    return int(1.5 * mb) * attempt


def noise_overhead_mb(wildcards):
    """Memory of a noise job besides its gradient budget: Python and torch with 500 MB of
    data, the rest of the data, the checkpoints, the estimators' state, activations."""
    params, _, acts = net_size(wildcards)
    point = _point(wildcards)
    extra_mb = (
        4
        * params
        * (1 + state_buffers(point))  # weights and optimizer state of each checkpoint
        * len(run_checkpoints_of(wildcards))  # checkpoints.pt, held in memory
        # gradient mean and the estimators' per-coordinate state, per noise measured
        + 128 * params * noise_kinds(point)
        + 2 * 4 * int(wildcards.batch_size) * acts  # activations of one minibatch
    ) / 2**20
    extra_mb += max(0.0, _data_mb(wildcards.dataset) - 500)  # 1500 below counts 500 MB
    return 1500 + int(1.5 * extra_mb)


def noise_gradients_mb(wildcards):
    """Memory that holds every minibatch gradient of the larger split at once (float32
    P × M, P = images // batch size of the full data set): what one pass needs."""
    params, _, _ = net_size(wildcards)
    _, _, n_train, n_test = DATA_SIZES[wildcards.dataset]
    rows = max(n_train, n_test) // int(wildcards.batch_size)
    return max(16, math.ceil(4 * params * rows / 2**20))


def _noise_budget_setting_mb(wildcards):
    """noise.memory_budget_mb, with auto read as noise_gradients_mb (one pass)."""
    budget = NOISE["memory_budget_mb"]
    return noise_gradients_mb(wildcards) if budget == "auto" else budget


def noise_run_mem_mb(wildcards, attempt):
    """mem_mb of a noise job: its gradient budget plus noise_overhead_mb, times the attempt."""
    return (
        _noise_budget_setting_mb(wildcards) + noise_overhead_mb(wildcards)
    ) * attempt


def noise_budget_mb(wildcards, resources):
    """Params function: the gradient budget the noise job (and the iterates job, for its rows
    of centred iterates) uses, derived from its mem_mb, as
    {"mb": budget, "setting": noise.memory_budget_mb}.

    What mem_mb leaves after noise_overhead_mb, so the job never uses more than it asked
    for; a number in noise.memory_budget_mb caps it (auto: no cap, and the job itself
    also keeps it within half the memory available when it starts). A params function that
    reads resources does not enter Snakemake's params rerun trigger: the budget only decides
    one pass over the data or two, never the results.
    """
    left = int(resources.mem_mb) - noise_overhead_mb(wildcards)
    if left < 16:
        raise WorkflowError(
            f"mem_mb={resources.mem_mb} leaves {left} MB for the gradients (or "
            f"iterates) after {noise_overhead_mb(wildcards)} MB of data, model and estimator "
            f"state; ask for at least {noise_overhead_mb(wildcards) + 16} MB"
        )
    budget = NOISE["memory_budget_mb"]
    return {"mb": left if budget == "auto" else min(budget, left), "setting": budget}


# noise settings that decide the results (the budget, which does not, is passed apart)
NOISE_RESULTS = {
    key: value for key, value in NOISE.items() if key != "memory_budget_mb"
}


def _small_run(wildcards):
    seconds = _train_seconds(wildcards) + _noise_seconds(wildcards)
    return seconds + _sharpness_seconds(wildcards) <= SMALL_RUN_MINUTES * 60


def run_group(wildcards):
    """Group of a small run's train_sgd and measure_gradient_noise (None: a large run).

    Only a chain of jobs may share a run's group: inside a group job the plugin runs each
    run's jobs as one job step that asks for the threads of its jobs running side by side,
    which a group job sized for one job at a time (group_slot) does not have.
    """
    return "small_runs" if _small_run(wildcards) else None


def sharpness_group(wildcards):
    """Group of a small run's measure_sharpness (a sibling of its noise job, so its own)."""
    return "small_sharpness" if _small_run(wildcards) else None


def _sharpness_seconds(wildcards):
    return sharpness_seconds(_point(wildcards), SHARPNESS, _on_gpu())


def sharpness_runtime(wildcards, attempt):
    return _minutes(_sharpness_seconds(wildcards), attempt)


def sharpness_mem_mb(wildcards, attempt):
    """The data, every checkpoint, a few copies of the weights, the Lanczos vectors (float64),
    double-backward activations."""
    params, _, acts = net_size(wildcards)
    images = SHARPNESS.get("train_subset", 2000)
    mb = (
        BASE_MEM_MB
        + _data_mb(wildcards.dataset)
        + 4
        * params
        * (len(run_checkpoints_of(wildcards)) + 12 + 2 * LANCZOS_VECTORS)
        / 2**20
        + 4 * 4 * images * acts / 2**20
    )
    return int(1.5 * mb) * attempt


def runs_mem_mb(base_mb, per_run_mb):
    """Memory of a rule that reads every run of the grid (aggregation, figures)."""

    def mem_mb(wildcards, attempt):
        return int(base_mb + per_run_mb * len(RUNS)) * attempt

    return mem_mb


def runs_runtime(base_min, per_run_min):
    """Runtime (minutes) of a rule that reads every run of the grid."""

    def runtime(wildcards, attempt):
        return int(math.ceil(base_min + per_run_min * len(RUNS))) * attempt

    return runtime


def by_attempt(value):
    """A resource that grows with the attempt: value, 2·value, 3·value, ..."""

    def scaled(wildcards, attempt):
        return value * attempt

    return scaled


def check_slurm_status_query(workflow):
    """onstart: with the SLURM executor, make sure its job-status query can work before the
    first job is submitted (sgdtail.slurm): switch sacct to squeue on a cluster without job
    accounting, or stop with one line saying what to change."""
    settings = getattr(workflow, "executor_settings", None)
    if not hasattr(settings, "status_command"):
        return  # not the SLURM executor
    from snakemake.logging import logger

    from sgdtail.slurm import choose_status_command, read_slurm_config

    try:
        command, note = choose_status_command(
            settings.status_command,
            read_slurm_config(),
            getattr(settings, "init_seconds_before_status_checks", None),
        )
    except ValueError as err:
        raise WorkflowError(str(err)) from None
    if note:
        settings.status_command = command
        logger.info(note)
