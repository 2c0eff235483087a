"""The timing helpers of scripts/benchmark.py on tiny inputs (what they return, not how fast)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import benchmark
import check_cuda
import pytest
import torch


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """benchmark.main sets torch's thread count for the process; later tests (resumption in a
    spawned child compared with the parent) need the default back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_time_streaming_small() -> None:
    out = benchmark.time_streaming(n_rows=20, n_cols=300, chunk_rows=3)
    assert out["values"] == 6000 and out["values_per_second"] > 0


def test_estimators_benchmark_prints_ns_per_value(capsys) -> None:
    benchmark.main(["estimators", "--width", "4", "--depth", "2", "--batch", "6000"])
    out = capsys.readouterr().out
    assert "10 x 3,176 values" in out and "estimator_ns_per_value" in out


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_train_loops_of_each_optimizer(optimizer) -> None:
    """``train --optimizer``: the bare loop steps the torch.optim optimizer of that name with
    the benchmark's hyper-parameters, and both loops return a rate."""
    from conftest import make_prepared

    model = torch.nn.Linear(3, 2)
    opt = benchmark.bare_optimizer(optimizer, model.parameters(), lr=0.1)
    group = opt.param_groups[0]
    expected = {"sgd": 0.0, "momentum": 0.9, "nesterov": 0.9}
    if optimizer == "adam":
        assert isinstance(opt, torch.optim.Adam) and group["betas"] == (0.9, 0.999)
    else:
        assert isinstance(opt, torch.optim.SGD) and group["momentum"] == expected[optimizer]
        assert group["nesterov"] == (optimizer == "nesterov")
    data = make_prepared(n_train=200, n_test=50)
    cpu = torch.device("cpu")
    assert benchmark.bare_loop(data, 8, 2, 20, 5, cpu, optimizer) > 0
    assert benchmark.pipeline_loop(data, 8, 2, 20, 5, cpu, optimizer) > 0


def test_bare_evaluation_is_the_checkpoint_evaluation(monkeypatch) -> None:
    """The like-for-like bare loop evaluates the final weights as train_sgd's checkpoint does:
    the same loss and accuracy, in chunks, in eval mode (dropout off), and the model back in
    train mode."""
    from conftest import make_prepared
    from sgdtail.losses import get_loss
    from sgdtail.train import evaluate

    data = make_prepared(n_train=300, n_test=50)
    monkeypatch.setattr(benchmark, "EVAL_BATCH", 64)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.Dropout(0.5), torch.nn.Linear(32, 10)
    )
    sizes = []
    model[1].register_forward_hook(lambda m, inputs, out: sizes.append(len(inputs[0])))
    model.train()
    loss, acc = benchmark.bare_evaluate(model, data.x_train, data.y_train)
    assert model.training and sizes == [64, 64, 64, 64, 44]
    ref_loss, ref_acc = evaluate(model, get_loss("cross_entropy"), data.x_train, data.y_train, 64)
    assert loss == pytest.approx(ref_loss, rel=1e-6) and acc == ref_acc


def test_train_benchmark_prints_paired_ratios(capsys, monkeypatch) -> None:
    """``train`` prints the ratio to the bare loop with and without its final evaluation, each
    with its range over the rounds; only the like-for-like bare loop evaluates (both splits,
    once per round)."""
    calls = []
    original = benchmark.bare_evaluate
    monkeypatch.setattr(
        benchmark, "bare_evaluate", lambda *a: calls.append(len(a[1])) or original(*a)
    )
    benchmark.main(["train", "--width", "4", "--depth", "2", "--steps", "3", "--repeats", "3"])
    out = dict(
        line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines() if line.strip()
    )
    assert "3 rounds" in out["case"]
    for key in ("ratio_pipeline_over_bare", "ratio_pipeline_over_bare_without_evaluation"):
        low, high = (float(v) for v in out[f"{key}_range"].split("-"))
        assert 0 < low <= float(out[key]) <= high
    assert calls == [60_000, 10_000] * 3


def test_noise_benchmark_prints_paired_ratios(capsys) -> None:
    """``noise`` on random images: each batch size's ratio is its median round's measurement
    over that round's epoch, within the printed range; its two stages add up to it; the child
    processes get the options given to main, wherever the subcommand stands among them (a
    4-wide net measures 3,176 parameters)."""
    opts = ["--width", "4", "--depth", "2", "--train-steps", "0", "--repeats", "3"]
    opts += ["--without", "per_coordinate"]
    benchmark.main([*opts[:2], "noise", *opts[2:], "--batch", "12000", "--also-batch", "20000"])
    out = dict(
        line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines() if line.strip()
    )
    assert "median of 3 paired rounds" in out["case"]
    assert out["case"].endswith("estimators: all but the per_coordinate")
    assert float(out["model_mb"]) == pytest.approx(4 * 3176 / 2**20, rel=1e-3)
    for tag, rows in (("b12000", 5), ("b20000", 3)):
        assert int(out[f"{tag}_values_per_measurement"]) == rows * 3176
        ratio = float(out[f"{tag}_ratio_measurement_over_epoch"])
        seconds, epoch = (float(out[f"{tag}_{k}_seconds"]) for k in ("measurement", "epoch"))
        assert ratio == pytest.approx(seconds / epoch, rel=1e-3)
        low, high = (float(v) for v in out[f"{tag}_ratio_measurement_over_epoch_range"].split("-"))
        assert 0 < low <= ratio <= high
        stages = (f"{tag}_ratio_{k}_over_epoch" for k in ("gradient_stage", "noise_and_estimators"))
        assert sum(float(out[k]) for k in stages) == pytest.approx(ratio, rel=1e-2)


def test_noise_rounds_alternate_and_report_the_median_round(monkeypatch) -> None:
    """One warm-up measurement and epoch, then rounds of epoch-then-measurement and
    measurement-then-epoch in turn; the round whose ratio is the median is reported whole
    (its measurement, estimator time and epoch), with the range of the rounds' ratios.
    Scripted durations on a stand-in clock: rounds of ratio 2, 3 and 1. ``--without``
    reaches every measurement as the estimator options that leave that part out."""
    clock, calls, options = [0.0], [], []
    durations = {"E": iter([10.0, 1.0, 1.0, 2.0]), "M": iter([10.0, 2.0, 3.0, 2.0])}

    def run(kind):
        calls.append(kind)
        clock[0] += (d := next(durations[kind]))
        return SimpleNamespace(passes=1, estimator_seconds=d / 4, rows=[{"zero_fraction": 0.0}])

    data = SimpleNamespace(x_train=torch.zeros(600, 4), y_train=torch.zeros(600))
    monkeypatch.setattr(benchmark, "trained_model", lambda *a: (data, torch.nn.Linear(4, 2), None))
    monkeypatch.setattr(benchmark, "full_gradient", lambda *a, **k: run("E"))
    monkeypatch.setattr(benchmark, "measure_noise", lambda *a, **k: options.append(k) or run("M"))
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])
    args = SimpleNamespace(
        device="cpu", repeats=3, epoch_batch=100, batch=100, budget_mb=64, without="sweeps"
    )
    out = benchmark.measure_once(args, "noise")
    assert calls == ["M", "E", "E", "M", "M", "E", "E", "M"]
    assert (out["seconds"], out["epoch_seconds"], out["estimator_seconds"]) == (2.0, 1.0, 0.5)
    assert out["ratio_range"] == "1-3" and out["n_parameters"] == 10 and out["n_train"] == 600
    assert [k["estimator_options"] for k in options] == [{"sweep_k1": []}] * 4


def test_check_cuda_compares_every_estimate_and_counts_a_lone_nan() -> None:
    """The CPU-vs-GPU comparison of the same weights: the largest relative gap over every
    row, infinite where one side alone is NaN (wherever that row is), none where both are."""

    def row(k1, alpha, ci_low=1.0):
        return {"estimator": "hill", "scope": "pooled", "order": "natural", "k1": k1,
                "alpha": alpha, "ci_low": ci_low}  # fmt: skip

    a = [row(1, 1.5), row(2, math.nan), row(3, 2.0, ci_low=4.0)]
    b = [row(1, 1.5003), row(2, math.nan), row(3, 2.0, ci_low=4.4)]
    gap, where = check_cuda.largest_difference(a, b)
    assert gap == pytest.approx(2e-4) and where == "hill pooled natural 1 alpha"
    assert check_cuda.largest_difference(a, b, ("ci_low",))[0] == pytest.approx(0.1)
    b[0]["alpha"] = math.nan  # the NaN comes first: later equal rows must not hide it
    assert check_cuda.largest_difference(a, b) == (math.inf, "hill pooled natural 1 alpha")
