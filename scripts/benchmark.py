"""Speed and memory benchmarks: each prints ratios measured in one run on this machine.

    python scripts/benchmark.py train   # train_sgd's loop vs a minimal hand-written loop
    python scripts/benchmark.py noise   # one noise measurement vs a plain forward+backward epoch

Targets (issues 3 and 4): the training loop within 10% of the bare loop (ratio ≥ 0.90) and a
measurement ≤ 1.5 plain epochs, for an FCN of width 128 and depth 3 on MNIST-shaped data
(batch 100), on the CPU. ``--data resources/datasets/mnist.pt`` uses a prepared real data set;
without it the benchmark draws random MNIST-shaped images (the timings do not depend on
pixel values). Peak memory is measured in a fresh subprocess per case (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sgdtail.data import PreparedData, load_prepared  # noqa: E402
from sgdtail.losses import get_loss  # noqa: E402
from sgdtail.models import build_model, count_parameters  # noqa: E402
from sgdtail.noise import full_gradient, measure_noise  # noqa: E402
from sgdtail.train import TrainConfig, train_sgd  # noqa: E402


def load_data(path: str | None, device: torch.device) -> PreparedData:
    if path:
        return load_prepared(path, device=device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(70_000, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (70_000,), generator=g)
    return PreparedData(
        x_train=x[:60_000].to(device),
        y_train=y[:60_000].to(device),
        x_test=x[60_000:].to(device),
        y_test=y[60_000:].to(device),
        num_classes=10,
        input_shape=(1, 28, 28),
        content_hash="random",
        dataset="random-mnist-shaped",
        mean=(0.0,),
        std=(1.0,),
    )


def bare_loop(
    data: PreparedData, width: int, depth: int, batch: int, steps: int, device: torch.device
) -> float:
    """Steps per second of the minimal loop: randperm epochs, torch.optim.SGD, cross-entropy."""
    torch.manual_seed(0)
    model = build_model("fcn", width, depth, data.input_shape, data.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
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
    sync(device)
    return steps / (time.perf_counter() - t0)


def pipeline_loop(
    data: PreparedData, width: int, depth: int, batch: int, steps: int, device: torch.device
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
        resume_every=10**9,
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
    device = torch.device(args.device)
    data = load_data(args.data, device)
    bare, pipe = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        bare.append(bare_loop(data, args.width, args.depth, args.batch, args.steps, device))
        pipe.append(pipeline_loop(data, args.width, args.depth, args.batch, args.steps, device))
    result = {
        "case": f"FCN w{args.width} d{args.depth}, batch {args.batch}, {args.steps} steps, "
        f"{device}, {torch.get_num_threads()} threads",
        "bare_steps_per_s": statistics.median(bare),
        "pipeline_steps_per_s": statistics.median(pipe),
    }
    result["ratio_pipeline_over_bare"] = result["pipeline_steps_per_s"] / result["bare_steps_per_s"]
    return result


def measure_once(args: argparse.Namespace, what: str) -> dict:
    """Run one case (``epoch`` or ``noise``) in this process; report time and peak RSS."""
    device = torch.device(args.device)
    data = load_data(args.data, device)
    torch.manual_seed(0)
    model = build_model("fcn", args.width, args.depth, data.input_shape, data.num_classes)
    model = model.to(device).eval()
    loss_fn = get_loss("cross_entropy")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(args.repeats):
        sync(device)
        t0 = time.perf_counter()
        if what == "epoch":
            full_gradient(model, loss_fn, data.x_train, data.y_train, chunk=args.epoch_batch)
            passes = 1
        else:
            res = measure_noise(
                model,
                loss_fn,
                data.x_train,
                data.y_train,
                args.batch,
                memory_budget_mb=args.budget_mb,
            )
            passes = res.passes
        sync(device)
        times.append(time.perf_counter() - t0)
    return {
        "seconds": statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before,
        "passes": passes,
        "n_parameters": count_parameters(model),
    }


def bench_noise(args: argparse.Namespace) -> dict:
    def child(what: str) -> dict:
        cmd = [sys.executable, __file__, "_child", what, *sys.argv[2:]]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    epoch, noise = child("epoch"), child("noise")
    model_mb = 4 * noise["n_parameters"] / 2**20
    return {
        "case": f"FCN w{args.width} d{args.depth}, batch {args.batch}, {args.device}, "
        f"budget {args.budget_mb} MB, plain epoch at batch {args.epoch_batch}",
        "epoch_seconds": epoch["seconds"],
        "measurement_seconds": noise["seconds"],
        "ratio_measurement_over_epoch": noise["seconds"] / epoch["seconds"],
        "measurement_passes": noise["passes"],
        "model_mb": model_mb,
        "noise_peak_rss_mb": noise["peak_rss_mb"],
        "noise_extra_rss_mb": noise["peak_rss_mb"] - noise["rss_before_mb"],
        "epoch_extra_rss_mb": epoch["peak_rss_mb"] - epoch["rss_before_mb"],
        "values_per_measurement": noise["n_parameters"] * (60_000 // args.batch),
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["train", "noise", "_child"])
    parser.add_argument("child_what", nargs="?", choices=["epoch", "noise"])
    parser.add_argument("--data", help="prepared data set (.pt); default: random MNIST-shaped")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-mb", type=int, default=512)
    parser.add_argument("--epoch-batch", type=int, default=10_000)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.what == "_child":
        print(json.dumps(measure_once(args, args.child_what)))
        return
    result = bench_train(args) if args.what == "train" else bench_noise(args)
    for key, value in result.items():
        print(f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}")


if __name__ == "__main__":
    main()
