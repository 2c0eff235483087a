"""Expected time and memory of a run's jobs, from its grid point.

The workflow turns these into the SLURM requests of ``train_sgd``,
``measure_gradient_noise`` and ``measure_sharpness`` (``rules/common.smk``),
and :func:`grid_cost` adds them up over a grid (README, "The paper grid's
cost"). The rates below were calibrated on the ``paper_sample`` grid's runs at
full length (CPU time per SGD step and per noise measurement, README,
"The paper grid's cost"); the GPU rate is an assumption until measured.

Network sizes of the built-in networks come from :mod:`sgdtail.shapes`, which the models are
built from (the tests check them against the built models on every network of the ``paper``
grid), without importing torch; those of torchvision models are counted on the built model
(:func:`sgdtail.models.torchvision_size`: torch is imported then, and each network is counted
once per process).
"""

from __future__ import annotations

from collections.abc import Mapping

from sgdtail.archs import is_torchvision
from sgdtail.data import DATASETS
from sgdtail.grid import PRECONDITIONED_OPTIMIZERS, optimizer_name
from sgdtail.shapes import alexnet_size, fcn_size

DATA_SIZES: dict[str, tuple[tuple[int, int, int], int, int, int]] = {
    name: (spec.image_shape, spec.num_classes, spec.n_train, spec.n_test)
    for name, spec in DATASETS.items()
}
"""(channels, height, width), classes, train images, test images (the full data sets)."""

CPU_FLOPS_PER_THREAD = 70e9
"""Sustained float32 FLOP/s of one CPU thread in training (fitted on FCN 4×2 and 64×6)."""
GPU_FLOPS = 2e12
STEP_OVERHEAD_S = 1.5e-3
"""Python and autograd per SGD step or minibatch gradient (fitted with the rate above)."""
ESTIMATOR_S_PER_VALUE = 10e-9
"""A noise job's time per noise value beyond its gradients. The estimator suite alone measures
3.2-3.4 ns a value at b = 100 and 5.6-6.1 ns at b = 500 on an idle 2-core machine, ±10-20 %
loaded (docs/benchmarks.md, ``benchmark.py noise``); 10 ns, fitted with the rates above
on the ``paper_sample`` runs' noise jobs, predicts their time per checkpoint within 0.9-1.2×
(docs/cluster.md, "The paper grid's cost")."""
BASE_MEM_MB = 1000
"""Python, torch, pandas."""

OPTIMIZER_STATE_BUFFERS: dict[str, int] = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}
"""Parameter-sized tensors each optimizer keeps (a momentum buffer; Adam's two moments): held
while training, in ``resume.pt`` and once more per checkpoint in ``checkpoints.pt``."""
OPTIMIZER_S_PER_PARAMETER: dict[str, float] = {
    "sgd": 0.0,
    "momentum": 0.5e-9,
    "nesterov": 0.5e-9,
    "adam": 5e-9,
}
"""An optimizer's time per parameter per step beyond plain SGD's update: its ``torch.optim``
step over 0.67 M parameters on one CPU thread took 0.24 (momentum), 0.34 (Nesterov) and
2.9 ms (Adam) against plain SGD's 0.08 ms (a loaded 2-core machine)."""


#: Lanczos vectors ARPACK keeps in the sharpness job (eigsh's ncv; sgdtail.sharpness): each
#: restart costs this many Hessian-vector products less one, and the job holds this many
#: float64 copies of the weights
LANCZOS_VECTORS = 10


def net_size(dataset: str, arch: str, width: int, depth: int) -> tuple[int, int, int]:
    """(parameters, forward FLOPs, activations) per image of a network on ``dataset``."""
    (c, h, w), classes, _, _ = DATA_SIZES[dataset]
    if is_torchvision(arch):
        from sgdtail.models import torchvision_size

        return torchvision_size(arch, (c, h, w), classes)
    if arch == "fcn":
        return fcn_size(c * h * w, width, depth, classes)
    return alexnet_size((c, h, w), width, classes)


def optimizer_of(point: Mapping) -> str:
    """The optimizer of a grid point, whose ``optimizer`` may be its name or its wildcard text
    (``_adam``, empty for plain SGD); plain SGD when the point has none."""
    return optimizer_name(point.get("optimizer", ""))


def state_buffers(point: Mapping) -> int:
    """Parameter-sized tensors the point's optimizer keeps (:data:`OPTIMIZER_STATE_BUFFERS`)."""
    return OPTIMIZER_STATE_BUFFERS[optimizer_of(point)]


def noise_kinds(point: Mapping) -> int:
    """Noises a measurement streams through the estimators: the gradient noise, and for an
    adaptive optimizer also the preconditioned one (from the same minibatch gradients)."""
    return 2 if optimizer_of(point) in PRECONDITIONED_OPTIMIZERS else 1


def run_threads(point: Mapping, gpu: bool = False, cores: int | None = None) -> int:
    """CPU threads of a run's jobs: more for the large networks (2 beside a GPU), and at most
    half of ``cores`` (at least 1) when the jobs share a machine of that many CPUs, so that
    at least two jobs run side by side: a job's second thread adds less than a second job
    does (docs/benchmarks.md, "Threads per job")."""
    if gpu:
        need = 2
    else:
        _, flops, _ = net_size(
            point["dataset"], point["arch"], int(point["width"]), int(point["depth"])
        )
        need = 1 if flops < 2e6 else 2 if flops < 2e7 else 4
    return local_threads(need, cores)


def local_threads(need: int, cores: int | None) -> int:
    """``need`` threads, at most half of a local run's ``cores`` (at least 1); ``need`` when
    ``cores`` is None (a cluster, where each job gets its own CPUs)."""
    return need if cores is None else max(1, min(need, cores // 2))


def _speed(point: Mapping, gpu: bool) -> float:
    return GPU_FLOPS if gpu else CPU_FLOPS_PER_THREAD * run_threads(point, gpu)


def train_seconds(point: Mapping, iterations: int, n_checkpoints: int, gpu: bool = False) -> float:
    """Optimizer steps (forward + backward: 3 × forward FLOPs per image, and the optimizer's
    update beyond plain SGD's) and the evaluations of the whole train and test sets at each
    checkpoint."""
    params, flops, _ = net_size(
        point["dataset"], point["arch"], int(point["width"]), int(point["depth"])
    )
    _, _, n_train, n_test = DATA_SIZES[point["dataset"]]
    speed = _speed(point, gpu)
    update = params * OPTIMIZER_S_PER_PARAMETER[optimizer_of(point)]
    sgd = iterations * (STEP_OVERHEAD_S + 3 * int(point["batch_size"]) * flops / speed + update)
    return sgd + n_checkpoints * (n_train + n_test) * flops / speed


def noise_seconds(
    point: Mapping, splits: list[str], n_checkpoints: int, gpu: bool = False
) -> float:
    """Per checkpoint: every minibatch gradient of each split (about one forward + backward
    epoch) and the estimator suite over the P·M noise values of each noise
    (:func:`noise_kinds`)."""
    params, flops, _ = net_size(
        point["dataset"], point["arch"], int(point["width"]), int(point["depth"])
    )
    _, _, n_train, n_test = DATA_SIZES[point["dataset"]]
    n = sum({"train": n_train, "test": n_test}[s] for s in splits)
    minibatches = n // int(point["batch_size"])
    per_checkpoint = (
        minibatches * STEP_OVERHEAD_S
        + 3 * n * flops / _speed(point, gpu)
        + noise_kinds(point) * minibatches * params * ESTIMATOR_S_PER_VALUE
    )
    return n_checkpoints * per_checkpoint


def sharpness_seconds(point: Mapping, sharpness: Mapping, gpu: bool = False) -> float:
    """At most ``max_hessian_products`` Hessian-vector products of the Lanczos solve (~4 passes
    each) and the random directions (2 passes each) on the ``train_subset`` images."""
    _, flops, _ = net_size(
        point["dataset"], point["arch"], int(point["width"]), int(point["depth"])
    )
    images = sharpness.get("train_subset", 2000)
    passes = 4 * sharpness.get("max_hessian_products", 20) + 2 * sharpness.get("directions", 5)
    return passes * 3 * images * flops / _speed(point, gpu) + passes * 0.05


def grid_cost(
    points: list[Mapping],
    training: Mapping[str, Mapping],
    n_checkpoints: Mapping[str, int],
    splits: list[str],
    sharpness: Mapping,
    gpu: bool = False,
) -> dict[str, float]:
    """Expected CPU-hours (threads × seconds / 3600) of every run of a grid, by job kind;
    with ``gpu``, GPU-hours (one GPU per job).

    ``training`` and ``n_checkpoints`` map each run path (``point["path"]``) to its
    training section and checkpoint count. Runs that stop early cost less.
    """
    out = {"train": 0.0, "noise": 0.0, "sharpness": 0.0}
    for p in points:
        threads = 1 if gpu else run_threads(p, gpu)
        k = n_checkpoints[p["path"]]
        out["train"] += threads * train_seconds(p, training[p["path"]]["iterations"], k, gpu)
        out["noise"] += threads * noise_seconds(p, splits, k, gpu)
        out["sharpness"] += threads * sharpness_seconds(p, sharpness, gpu)
    return {key: value / 3600 for key, value in out.items()}


def visible_gpus(env: Mapping[str, str] | None = None) -> int:
    """How many CUDA GPUs this machine shows jobs, without importing torch.

    ``SGDTAIL_GPUS`` (a count; the tests fake one with it) wins; else ``CUDA_VISIBLE_DEVICES``
    when set (its comma-separated entries; empty or ``-1``: none); else the ``GPU n:`` lines
    of ``nvidia-smi -L`` (0 without nvidia-smi or when it fails).
    """
    import os
    import subprocess

    env = os.environ if env is None else env
    if env.get("SGDTAIL_GPUS", "").strip():
        return max(0, int(env["SGDTAIL_GPUS"]))
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [v for v in visible.split(",") if v.strip()]
        return 0 if not entries or entries[0].strip() == "-1" else len(entries)
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if out.returncode != 0:
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())
