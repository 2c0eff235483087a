"""Training: determinism, bit-identical resumption after a kill (every optimizer, its state
included), divergence, schedules."""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import re
import signal
import time

import pandas as pd
import pytest
import torch

from conftest import make_prepared
from sgdtail import io
from sgdtail.grid import OPTIMIZERS, optimizer_settings
from sgdtail.train import Progress, TrainConfig, lr_at, train_sgd

CPU = torch.device("cpu")


def config(**overrides) -> TrainConfig:
    base = dict(
        dataset="synthetic",
        arch="fcn",
        width=16,
        depth=3,
        batch_size=20,
        lr=0.1,
        loss="cross_entropy",
        seed=0,
        iterations=200,
        checkpoints=(0, 10, 50, 200),
        eval_batch_size=128,
        resume_every=25,
    )
    base.update(overrides)
    return TrainConfig(**base)


def read_run(folder) -> dict:
    ckpt = io.load_torch(folder / "checkpoints.pt")
    return {
        "ckpt": ckpt,
        "metrics": pd.read_csv(folder / "checkpoint_metrics.csv"),
        "log": pd.read_csv(folder / "train_log.csv"),
        "info": json.loads((folder / "run.json").read_text()),
    }


def assert_same_tree(a, b, where: str = "") -> None:
    """Nested dicts and lists of tensors and plain values, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a, key=str) == sorted(b, key=str), where
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_same_run(a: dict, b: dict) -> None:
    """Same checkpoints (weights and the optimizer's state), metrics and log."""
    assert a["ckpt"]["steps"].tolist() == b["ckpt"]["steps"].tolist()
    assert_same_tree(
        {k: v for k, v in a["ckpt"].items() if k != "steps"},
        {k: v for k, v in b["ckpt"].items() if k != "steps"},
    )
    pd.testing.assert_frame_equal(a["metrics"], b["metrics"], check_exact=True)
    pd.testing.assert_frame_equal(a["log"], b["log"], check_exact=True)


def test_same_config_twice_is_identical(tmp_path, small_data):
    cfg = config()
    train_sgd(cfg, small_data, tmp_path / "a", CPU)
    train_sgd(cfg, small_data, tmp_path / "b", CPU)
    assert_same_run(read_run(tmp_path / "a"), read_run(tmp_path / "b"))


def test_run_learns_and_records_everything(tmp_path, small_data):
    info = train_sgd(config(), small_data, tmp_path, CPU)
    run = read_run(tmp_path)
    assert info["status"] == "completed" and info["steps_done"] == 200
    assert run["ckpt"]["steps"].tolist() == [0, 10, 50, 200]
    assert run["metrics"].train_accuracy.iloc[-1] > run["metrics"].train_accuracy.iloc[0] + 0.3
    assert len(run["log"]) == 200 and run["log"].step.tolist() == list(range(1, 201))
    assert info["n_parameters"] == 64 * 16 + 16 * 16 + 16 * 10
    assert info["config"]["seed"] == 0 and info["provenance"]["torch"] == torch.__version__
    assert not (tmp_path / "resume.pt").exists()


def _train_in_child(cfg, folder, slow: bool) -> None:
    data = make_prepared()
    if slow:  # give the parent time to kill us mid-run
        import sgdtail.train as train_mod

        original = train_mod.lr_at

        def slow_lr(step, c):
            time.sleep(0.005)
            return original(step, c)

        train_mod.lr_at = slow_lr
    train_sgd(cfg, data, folder, CPU)


OPTIMIZER_SETTINGS = {
    "momentum": 0.9,
    "nesterov_momentum": 0.9,
    "adam_betas": [0.9, 0.999],
    "adam_eps": 1e-8,
    "weight_decay": 0.001,
}


def optimizer_config(name: str, **overrides) -> TrainConfig:
    """config() with optimizer ``name`` and the tests' optimizer hyper-parameters."""
    settings = optimizer_settings(name, OPTIMIZER_SETTINGS)
    return config(optimizer=name, optimizer_settings=settings, **overrides)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_killed_run_resumes_bit_identical(tmp_path, optimizer):
    """SIGKILL mid-run, then a rerun from the last resume.pt: checkpoints (the optimizer's
    state at each included), metrics and log equal an uninterrupted run's, for every
    optimizer (its momentum buffers, or Adam's moments and step count, come back too)."""
    cfg = optimizer_config(
        optimizer,
        iterations=400,
        checkpoints=(0, 100, 400),
        resume_every=30,
        lr=0.01 if optimizer == "adam" else 0.05,
    )
    train_sgd(cfg, make_prepared(), tmp_path / "uninterrupted", CPU)

    killed = tmp_path / "killed"
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_train_in_child, args=(cfg, killed, True))
    child.start()
    deadline = time.time() + 60
    while not (killed / "resume.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert not (killed / "run.json").exists(), "the kill came too late to test resumption"
    partial = io.load_torch(killed / "resume.pt")
    assert 0 < partial["step"] < 400
    assert ("optimizer" in partial) == (optimizer != "sgd")

    info = train_sgd(cfg, make_prepared(), killed, CPU)
    assert info["resumed_from"] == partial["step"]
    assert_same_run(read_run(tmp_path / "uninterrupted"), read_run(killed))


def test_resume_file_of_other_config_is_ignored(tmp_path, small_data):
    cfg = config(iterations=60, checkpoints=(0, 30, 60))
    io.save_torch(tmp_path / "resume.pt", {"fingerprint": "other", "data": "x", "step": 30})
    info = train_sgd(cfg, small_data, tmp_path, CPU)
    assert info["resumed_from"] is None and info["steps_done"] == 60


def test_divergence_is_recorded_not_raised(tmp_path, small_data):
    info = train_sgd(config(lr=1e6, loss="cross_entropy"), small_data, tmp_path, CPU)
    assert info["status"] == "diverged"
    assert 1 <= info["diverged_at"] <= 200
    run = read_run(tmp_path)
    assert all(s < info["diverged_at"] for s in run["ckpt"]["steps"].tolist())
    assert run["log"].step.max() <= info["diverged_at"]


def test_stop_at_full_accuracy(tmp_path):
    easy = make_prepared(n_train=100, n_test=50)
    cfg = config(
        iterations=2000,
        checkpoints=(0, 50, 100, 1000, 2000),
        stop_at_train_accuracy=1.0,
        lr=0.5,
        width=64,
    )
    info = train_sgd(cfg, easy, tmp_path, CPU)
    assert info["status"] == "converged"
    assert info["steps_done"] < 2000
    metrics = pd.read_csv(tmp_path / "checkpoint_metrics.csv")
    assert metrics.train_accuracy.iloc[-1] == 1.0 and (metrics.train_accuracy.iloc[:-1] < 1).all()


def test_halving_schedule():
    cfg = config(iterations=300, lr_schedule="halve")
    assert [lr_at(s, cfg) for s in (0, 99, 100, 199, 200, 299)] == [
        0.1,
        0.1,
        0.05,
        0.05,
        0.025,
        0.025,
    ]
    assert lr_at(250, dataclasses.replace(cfg, lr_schedule="constant")) == 0.1


def test_batch_larger_than_data_is_clear(tmp_path):
    with pytest.raises(ValueError, match="batch_size 1000 is larger than the training set"):
        train_sgd(config(batch_size=1000), make_prepared(n_train=100), tmp_path, CPU)


@pytest.mark.parametrize("arch,width,depth,loss", [("alexnet", 4, 8, "hinge")])
def test_alexnet_and_hinge_train(tmp_path, arch, width, depth, loss):
    data = make_prepared(n_train=120, n_test=40, shape=(3, 32, 32))
    info = train_sgd(
        config(arch=arch, width=width, depth=depth, loss=loss, iterations=20, checkpoints=(0, 20)),
        data,
        tmp_path,
        CPU,
    )
    assert info["status"] == "completed"


def test_stop_at_a_training_accuracy_target(tmp_path):
    easy = make_prepared(n_train=100, n_test=50)
    ckpts = (0, 5, 10, 20, 50, 100, 1000, 2000)
    cfg = config(iterations=2000, checkpoints=ckpts, stop_at_train_accuracy=0.6, lr=0.5, width=64)
    info = train_sgd(cfg, easy, tmp_path, CPU)
    metrics = pd.read_csv(tmp_path / "checkpoint_metrics.csv")
    assert info["status"] == "converged" and info["steps_done"] == metrics.step.iloc[-1] < 2000
    assert metrics.train_accuracy.iloc[-1] >= 0.6 and (metrics.train_accuracy.iloc[:-1] < 0.6).all()


class Interrupted(Exception):
    """Stands for a kill: raised inside the training loop."""


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny convolutions run ~10× faster than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_interrupted_alexnet_resumes_bit_identical_dropout_included(
    tmp_path, monkeypatch, one_thread
):
    """AlexNet draws dropout masks from torch's global generator at every step: a run stopped
    after its step-4 checkpoint (the last resume file) and restarted must draw the same masks
    as one that ran through, and end with the same weights, metrics and log."""
    import sgdtail.train as train_mod
    from sgdtail.models import build_model

    data = make_prepared(n_train=60, n_test=20, shape=(1, 28, 28))  # AlexNet's smallest input
    cfg = config(
        arch="alexnet",
        width=2,
        depth=8,
        batch_size=10,
        iterations=12,
        checkpoints=(0, 4, 12),
        resume_every=1000,
    )
    model = build_model("alexnet", 2, 8, data.input_shape, data.num_classes)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    train_sgd(cfg, data, tmp_path / "uninterrupted", CPU)

    original = train_mod.lr_at

    def stop_at_7(step, c):
        if step == 7:
            raise Interrupted
        return original(step, c)

    folder = tmp_path / "interrupted"
    monkeypatch.setattr(train_mod, "lr_at", stop_at_7)
    with pytest.raises(Interrupted):
        train_sgd(cfg, data, folder, CPU)
    monkeypatch.setattr(train_mod, "lr_at", original)
    assert not (folder / "run.json").exists()
    assert io.load_torch(folder / "resume.pt")["step"] == 4
    torch.manual_seed(1234)  # whatever the process drew in between does not matter
    torch.rand(100)
    info = train_sgd(cfg, data, folder, CPU)
    assert info["resumed_from"] == 4 and info["steps_done"] == 12
    assert_same_run(read_run(tmp_path / "uninterrupted"), read_run(folder))


def test_progress_lines_at_the_configured_interval(tmp_path, small_data, caplog):
    """Every 25 steps (and never by time here): step / total, loss, accuracy, rate, ETA."""
    cfg = config(iterations=100, checkpoints=(0, 100))
    with caplog.at_level("INFO", logger="sgdtail.train"):
        train_sgd(cfg, small_data, tmp_path, CPU, progress=Progress(seconds=1e9, every=25))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert [int(line.split()[2].split("/")[0]) for line in lines] == [25, 50, 75, 100]
    assert all(line.split()[2].endswith("/100") for line in lines)
    log = pd.read_csv(tmp_path / "train_log.csv")
    loss_50 = float(log.loc[log["step"] == 50, "loss"].iloc[0])
    assert f"minibatch loss {loss_50:.4g}," in lines[1]
    assert all(re.search(r"accuracy [\d.]+, [\d.]+ steps/s, ETA \d+", ln) for ln in lines)
    # by time: an interval of 0 s reports every step
    with caplog.at_level("INFO", logger="sgdtail.train"):
        caplog.clear()
        train_sgd(
            config(iterations=30, checkpoints=(30,)),
            small_data,
            tmp_path / "t",
            CPU,
            progress=Progress(seconds=0.0),
        )
    assert sum(r.getMessage().startswith("progress:") for r in caplog.records) == 30


def _train_logged_in_child(cfg, folder) -> None:
    """Slowed-down training (5 ms a step) that logs to folder/train.log every 50 steps."""
    import sgdtail.train as train_mod
    from sgdtail.io import setup_logging

    folder.mkdir(parents=True, exist_ok=True)
    setup_logging(folder / "train.log")
    original = train_mod.lr_at

    def slow_lr(step, c):
        time.sleep(0.005)
        return original(step, c)

    train_mod.lr_at = slow_lr
    train_sgd(cfg, make_prepared(), folder, CPU, progress=Progress(seconds=1e9, every=50))


def _interrupt_mid_run(cfg, folder, signum) -> int:
    """Start training in a child, send ``signum`` after its first progress line; exit code."""
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_train_logged_in_child, args=(cfg, folder))
    child.start()
    log, deadline = folder / "train.log", time.time() + 60
    while time.time() < deadline and not (log.exists() and "progress: step" in log.read_text()):
        time.sleep(0.02)
    os.kill(child.pid, signum)
    child.join(60)
    return child.exitcode


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_saves_resume_state_at_the_current_step_and_resumes_bit_identical(tmp_path, signum):
    # no resume point before the end: the only resume.pt is the one written on the signal
    cfg = config(iterations=400, checkpoints=(0, 400), resume_every=10_000)
    train_sgd(cfg, make_prepared(), tmp_path / "uninterrupted", CPU)
    folder = tmp_path / "interrupted"
    assert _interrupt_mid_run(cfg, folder, signum) == 1  # non-zero, not killed by the signal
    text = (folder / "train.log").read_text()
    assert not (folder / "run.json").exists(), "the signal came too late to test resumption"
    partial = io.load_torch(folder / "resume.pt")
    assert 0 < partial["step"] < 400
    name = signal.Signals(signum).name
    assert f"interrupted by {name} at step {partial['step']}/400" in text
    assert f"resume from step {partial['step']}" in text
    info = train_sgd(cfg, make_prepared(), folder, CPU)
    assert info["resumed_from"] == partial["step"] and info["steps_done"] == 400
    assert_same_run(read_run(tmp_path / "uninterrupted"), read_run(folder))


def test_a_signal_during_the_converging_checkpoint_ends_the_run_converged(tmp_path, monkeypatch):
    """A stop signal that arrives while the accuracy target is reached does not interrupt:
    the run ends converged at that step, as without the signal (no resume past convergence)."""
    from sgdtail import train as T

    cfg = dataclasses.replace(
        config(iterations=2000, checkpoints=(0, 5, 10, 20, 50, 100, 1000, 2000)),
        width=64,
        depth=3,
        batch_size=20,
        lr=0.5,
        resume_every=25,
        stop_at_train_accuracy=0.6,
    )
    easy = make_prepared(n_train=100, n_test=50)
    ref = train_sgd(cfg, easy, tmp_path / "ref", CPU)
    assert ref["status"] == "converged" and ref["steps_done"] < 2000
    original = T.checkpoint

    def checkpoint_then_signal(run, state):
        reached = original(run, state)
        if reached:
            os.kill(os.getpid(), signal.SIGTERM)
        return reached

    monkeypatch.setattr(T, "checkpoint", checkpoint_then_signal)
    info = train_sgd(cfg, easy, tmp_path / "signalled", CPU)
    assert (info["status"], info["steps_done"]) == (ref["status"], ref["steps_done"])
    assert not (tmp_path / "signalled" / "resume.pt").exists()


@pytest.mark.parametrize(("optimizer", "stop"), [*((name, 45) for name in OPTIMIZERS), ("sgd", 30)])
def test_signal_in_process_saves_the_optimizer_state_and_resumes_bit_identical(
    tmp_path, optimizer, stop, caplog
):
    """SIGUSR1 to this very process after step ``stop`` (45: between resume points; 30: right
    after a checkpoint): train_sgd saves the state at that step (the optimizer's included)
    and raises TrainingInterrupted; the rerun resumes there and ends as the uninterrupted
    run, checkpoints and optimizer states included."""
    from sgdtail.train import TrainingInterrupted

    cfg = optimizer_config(
        optimizer,
        iterations=80,
        checkpoints=(0, 30, 80),
        resume_every=10_000,
        lr=0.01 if optimizer == "adam" else 0.05,
    )
    train_sgd(cfg, make_prepared(), tmp_path / "uninterrupted", CPU)

    def stop_there(run, state) -> None:
        if state.step == stop:
            os.kill(os.getpid(), signal.SIGUSR1)

    folder = tmp_path / "interrupted"
    with (
        caplog.at_level("ERROR", logger="sgdtail.train"),
        pytest.raises(TrainingInterrupted, match=f"interrupted by SIGUSR1 at step {stop};"),
    ):
        train_sgd(cfg, make_prepared(), folder, CPU, hook=stop_there)
    assert caplog.records[-1].getMessage() == (
        f"interrupted by SIGUSR1 at step {stop}/80: resume state saved to "
        f"{folder / 'resume.pt'}; rerun to resume from step {stop}"
    )
    saved = io.load_torch(folder / "resume.pt")
    assert saved["step"] == stop and not (folder / "run.json").exists()
    if optimizer == "sgd":
        assert "optimizer" not in saved and "optimizer_states" not in saved
    else:
        assert len(saved["optimizer"]["state"]) == len(saved["model"])  # one per tensor
        assert sorted(saved["optimizer_states"]) == ["0", "30"]
    info = train_sgd(cfg, make_prepared(), folder, CPU)
    assert info["resumed_from"] == stop and info["steps_done"] == 80
    assert_same_run(read_run(tmp_path / "uninterrupted"), read_run(folder))


def test_fingerprint_separates_configurations_and_keeps_plain_sgd_as_before() -> None:
    """The hash changes with any field; plain SGD without settings hashes as before the
    optimizer fields existed, while plain SGD with settings and any other optimizer hash
    them; a 16-hex-digit text."""
    import hashlib

    base = config()
    fields = dataclasses.asdict(base)
    del fields["optimizer"], fields["optimizer_settings"]
    old = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    assert base.fingerprint() == old and re.fullmatch(r"[0-9a-f]{16}", old)
    settings = optimizer_settings("momentum", OPTIMIZER_SETTINGS)
    with_settings = dataclasses.replace(base, optimizer_settings=settings)
    momentum = dataclasses.replace(with_settings, optimizer="momentum")
    bare_momentum = dataclasses.replace(base, optimizer="momentum")
    prints = [c.fingerprint() for c in (base, with_settings, momentum, bare_momentum)]
    assert len(set(prints)) == 4
    assert dataclasses.replace(base, seed=1).fingerprint() != old


def test_sampler_uses_every_image_of_an_epoch_then_draws_a_new_order() -> None:
    """Batches of b cut one seeded permutation in order; an epoch whose last batch would be
    short starts a new permutation from the same generator (reproducible from the seed)."""
    from sgdtail.train import MinibatchSampler

    sampler = MinibatchSampler(10, 5, seed=3, device=CPU)
    epoch = torch.cat([sampler.next(), sampler.next()])
    assert sorted(epoch.tolist()) == list(range(10))
    gen = torch.Generator().manual_seed(3)
    first = torch.randperm(10, generator=gen)
    second = torch.randperm(10, generator=gen)
    assert epoch.tolist() == first.tolist()
    assert torch.cat([sampler.next(), sampler.next()]).tolist() == second.tolist()
    uneven = MinibatchSampler(10, 4, seed=3, device=CPU)
    got = [uneven.next().tolist() for _ in range(3)]
    assert got[:2] == [first[:4].tolist(), first[4:8].tolist()]
    assert got[2] == second[:4].tolist()  # images 8 and 9 of the first order are not used


def test_eta_and_rate_in_the_progress_line(monkeypatch, caplog) -> None:
    """The progress line's numbers: percent done, steps per second since this process started
    training, and the time left at that rate, as h/m/s."""
    from types import SimpleNamespace

    import sgdtail.train as train_mod

    assert train_mod._format_seconds(7265.4) == "2h01m05s"
    assert train_mod._format_seconds(125) == "2m05s"
    assert train_mod._format_seconds(59.4) == "59s"
    assert train_mod._format_seconds(float("inf")) == "?"
    losses, accs = torch.full((1000,), 9.0), torch.full((1000,), 0.5)
    losses[199], accs[199] = 0.25, 0.75  # step 200's minibatch
    run = SimpleNamespace(cfg=config(iterations=1000), losses_dev=losses, accs_dev=accs)
    state = SimpleNamespace(step=200, clock_start=100.0)
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: 110.0)
    with caplog.at_level("INFO", logger="sgdtail.train"):
        train_mod._report(run, state, 150)  # 50 steps in 10 s; 800 left
    assert caplog.records[-1].getMessage() == (
        "progress: step 200/1000 (20.0%), minibatch loss 0.25, accuracy 0.750, 5.0 steps/s, "
        "ETA 2m40s"
    )


def test_resume_state_keeps_the_cuda_generator_of_a_gpu_run(tmp_path, monkeypatch) -> None:
    """On a CUDA device resume.pt also holds the device's random-number state (dropout masks
    drawn on the GPU) and a resumed run restores it; a CPU run's file has none. torch.cuda's
    two calls are stood in for, so this runs without a GPU."""
    from sgdtail.train import _build_run, _RunState, load_resume, save_resume

    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda d: torch.tensor([7, d.index or 0]))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, d: calls.append((s.tolist(), d)))
    cfg = config(iterations=10, checkpoints=(10,))
    run = _build_run(cfg, make_prepared(), tmp_path, CPU)
    save_resume(run, _RunState.fresh(10))
    assert "cuda_rng" not in io.load_torch(run.resume_path)
    gpu = torch.device("cuda", 1)
    save_resume(dataclasses.replace(run, device=gpu), _RunState.fresh(10))
    assert io.load_torch(run.resume_path)["cuda_rng"].tolist() == [7, 1]
    load_resume(dataclasses.replace(run, device=gpu), _RunState.fresh(10))
    assert calls == [([7, 1], gpu)]


def test_device_auto_cpu_and_cuda_without_a_gpu(monkeypatch) -> None:
    """``auto`` takes CUDA when visible, else the CPU; ``cuda`` without a GPU is a one-line
    error naming the setting; on CUDA, TF32 is switched off for matrix products and
    convolutions (float32 arithmetic on every device)."""
    from sgdtail.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU and resolve_device("cpu") == CPU
    with pytest.raises(RuntimeError) as no_gpu:
        resolve_device("cuda")
    assert str(no_gpu.value) == (
        "training.device is 'cuda' but no CUDA device is visible; set training.device: auto"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        assert resolve_device("auto") == torch.device("cuda")
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
    finally:  # torch's flag objects do not take monkeypatch's undo
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_checkpoint_records_the_weights_optimizer_state_and_metrics_of_its_step(tmp_path, caplog):
    """Each checkpoint holds the weights and the optimizer's state as they were after that
    step (read by a hook during training), and its metrics row is the learning rate and the
    evaluation of those weights on both splits."""
    from sgdtail.losses import get_loss
    from sgdtail.models import build_model
    from sgdtail.optim import cpu_state
    from sgdtail.train import evaluate

    data = make_prepared()
    cfg = optimizer_config(
        "momentum",
        iterations=40,
        checkpoints=(0, 30, 40),
        lr_schedule="halve",
    )
    seen = {}

    def keep(run, state) -> None:
        if state.step in (0, 30):
            weights = {k: v.clone() for k, v in run.model.state_dict().items()}
            seen[state.step] = (weights, cpu_state(run.optimizer))

    with caplog.at_level("INFO", logger="sgdtail.train"):
        train_sgd(cfg, data, tmp_path, CPU, hook=keep)
    run = read_run(tmp_path)
    metrics = run["metrics"].set_index("step")
    m30 = metrics.loc[30]
    assert f"step 30: train acc {m30.train_accuracy:.4f}, test acc {m30.test_accuracy:.4f}" in [
        r.getMessage() for r in caplog.records
    ]
    for step in (0, 30):
        weights, opt_state = seen[step]
        assert_same_tree(run["ckpt"]["state_dicts"][str(step)], weights, f"weights {step}")
        assert_same_tree(run["ckpt"]["optimizer_states"][str(step)], opt_state, f"opt {step}")
        model = build_model("fcn", 16, 3, data.input_shape, data.num_classes)
        model.load_state_dict(weights)
        splits = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
        for split, (x, y) in splits.items():
            loss, acc = evaluate(model, get_loss("cross_entropy"), x, y, cfg.eval_batch_size)
            assert metrics.loc[step, f"{split}_loss"] == loss
            assert metrics.loc[step, f"{split}_accuracy"] == acc
        assert metrics.loc[step, "lr"] == lr_at(step, cfg)
    assert metrics.loc[30, "lr"] == 0.025  # halved after a third and two thirds of the run


def test_divergence_ends_the_log_at_the_first_non_finite_loss(tmp_path, small_data):
    """diverged_at is the step whose minibatch loss first is not finite: the log's last row,
    every earlier loss finite."""
    info = train_sgd(config(lr=1e6, loss="cross_entropy"), small_data, tmp_path, CPU)
    log = read_run(tmp_path)["log"]
    assert info["status"] == "diverged" and log["step"].iloc[-1] == info["diverged_at"]
    assert not math.isfinite(log["loss"].iloc[-1])
    assert log["loss"].iloc[:-1].map(math.isfinite).all()


def test_progress_is_due_every_n_items_or_after_the_interval(monkeypatch) -> None:
    """Due at every multiple of ``every`` (every = 1: each item), or once ``seconds`` have
    passed since the last report (not before), which restarts the clock."""
    import sgdtail.train as train_mod

    clock = [100.0]
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: clock[0])
    each = Progress(seconds=1e9, every=1)
    assert each.due(1) and each.due(2)
    timed = Progress(seconds=30.0)
    clock[0] = 129.9
    assert not timed.due(1)
    clock[0] = 130.0
    assert timed.due(2)
    clock[0] = 159.0
    assert not timed.due(3)  # the clock restarted at 130


def test_resume_points_and_divergence_checks_fall_on_their_steps(tmp_path, small_data):
    """resume.pt is rewritten at every multiple of resume_every; a diverged run is noticed at
    the first divergence check (every divergence_check_every steps) after the loss stopped
    being finite, before that step's checkpoint, and training stops there."""
    seen = []

    def watch(run, state) -> None:
        if state.step and state.step % 25 == 0:
            seen.append((state.step, int(io.load_torch(run.resume_path)["step"])))

    cfg = config(iterations=60, checkpoints=(0, 60))
    train_sgd(cfg, small_data, tmp_path / "a", CPU, hook=watch)
    assert seen == [(25, 25), (50, 50)]

    for check_every, name in ((10, "checked"), (1000, "at_checkpoint")):
        last = []
        cfg = config(
            lr=1e6, iterations=200, checkpoints=(0, 15, 200), resume_every=10**6,
            divergence_check_every=check_every,
        )  # fmt: skip
        hook = lambda r, s, seen=last: seen.append(s.step)  # noqa: E731
        info = train_sgd(cfg, small_data, tmp_path / name, CPU, hook=hook)
        assert info["status"] == "diverged" and info["diverged_at"] < 10
        # noticed at the first check after the divergence (step 10), else at the checkpoint
        # (step 15), whose weights are then not kept; training stops there
        assert last[-1] == (10 if check_every == 10 else 15)
        assert read_run(tmp_path / name)["ckpt"]["steps"].tolist() == [0]


def test_log_holds_each_minibatchs_loss_and_accuracy(tmp_path) -> None:
    """train_log.csv: step s has the loss and accuracy of the minibatch that step s drew from
    the sampler (checked at learning rate 0, where the weights never change, so each row can
    be recomputed)."""
    from sgdtail.losses import get_loss
    from sgdtail.models import build_model
    from sgdtail.train import MinibatchSampler

    data = make_prepared()
    cfg = config(lr=0.0, iterations=12, checkpoints=(12,))
    train_sgd(cfg, data, tmp_path, CPU)
    log = read_run(tmp_path)["log"]
    torch.manual_seed(cfg.seed)
    model = build_model("fcn", 16, 3, data.input_shape, data.num_classes)
    sampler = MinibatchSampler(len(data.x_train), cfg.batch_size, cfg.seed, CPU)
    with torch.no_grad():
        for step in range(1, 13):
            idx = sampler.next()
            logits = model(data.x_train[idx])
            row = log.loc[log["step"] == step].iloc[0]
            loss = get_loss("cross_entropy")(logits, data.y_train[idx])
            assert row["loss"] == pytest.approx(float(loss), rel=1e-6)
            acc = (logits.argmax(1) == data.y_train[idx]).float().mean()
            assert row["accuracy"] == pytest.approx(float(acc), abs=1e-7) and row["lr"] == 0.0
    assert log["accuracy"].nunique() > 1  # the minibatches differ, so a mix-up shows


def test_run_records_its_wall_time(tmp_path, small_data):
    """run.json's seconds: the time train_sgd took (within the call), and steps per second."""
    t0 = time.perf_counter()
    info = train_sgd(config(iterations=50, checkpoints=(50,)), small_data, tmp_path, CPU)
    took = time.perf_counter() - t0
    assert 0 < info["seconds"] <= took
    assert info["steps_per_second"] == pytest.approx(50 / info["seconds"])


def test_default_progress_reports_by_time_only(tmp_path, small_data, caplog) -> None:
    """Without a Progress, train_sgd reports every 30 s of wall time and not by step count:
    a run of a second writes no progress line."""
    with caplog.at_level("INFO", logger="sgdtail.train"):
        train_sgd(config(iterations=60, checkpoints=(60,)), small_data, tmp_path, CPU)
    assert not [r for r in caplog.records if r.getMessage().startswith("progress:")]
    default = Progress()
    assert (default.seconds, default.every) == (30.0, 0)


def test_run_folder_records_what_was_trained(tmp_path) -> None:
    """run.json on disk is train_sgd's return value: status, steps done, the checkpoints, the
    data's hash, device, threads, parameters and steps per second; checkpoints.pt names the
    optimizer and holds int64 steps; the folder's parents are made as needed."""
    data = make_prepared()
    cfg = optimizer_config(
        "momentum",
        iterations=40,
        checkpoints=(0, 20, 40),
    )
    folder = tmp_path / "results" / "runs" / "one"
    info = train_sgd(cfg, data, folder, CPU)
    on_disk = json.loads((folder / "run.json").read_text())
    assert on_disk == json.loads(json.dumps(info))
    assert (on_disk["status"], on_disk["steps_done"], on_disk["checkpoints_saved"]) == (
        "completed",
        40,
        [0, 20, 40],
    )
    assert on_disk["data_hash"] == data.content_hash and on_disk["device"] == "cpu"
    assert on_disk["threads"] == torch.get_num_threads()
    assert on_disk["n_parameters"] == 64 * 16 + 16 * 16 + 16 * 10
    assert on_disk["steps_per_second"] == pytest.approx(40 / on_disk["seconds"])
    ckpt = io.load_torch(folder / "checkpoints.pt")
    assert ckpt["optimizer"] == "momentum" and ckpt["steps"].dtype == torch.int64


def test_diverged_and_converged_runs_record_how_far_they_got(tmp_path, small_data) -> None:
    """A diverged run's steps_done is the last step with a finite loss (a run that diverged
    before its first checkpoint still writes int64 steps, none of them); a run whose first
    checkpoint already meets the accuracy target ends there, converged, after no step."""
    info = train_sgd(config(lr=1e6), small_data, tmp_path / "diverged", CPU)
    assert info["status"] == "diverged" and info["steps_done"] == info["diverged_at"] - 1
    early = config(lr=1e6, checkpoints=(50, 200))
    assert train_sgd(early, small_data, tmp_path / "early", CPU)["diverged_at"] < 50
    steps = io.load_torch(tmp_path / "early" / "checkpoints.pt")["steps"]
    assert steps.dtype == torch.int64 and steps.numel() == 0
    cfg = config(iterations=50, checkpoints=(0, 50), stop_at_train_accuracy=0.0)
    info = train_sgd(cfg, small_data, tmp_path / "converged", CPU)
    assert (info["status"], info["steps_done"]) == ("converged", 0)
    assert math.isnan(info["steps_per_second"])


def test_sampler_and_schedule_errors_name_the_setting() -> None:
    """A batch as large as the training set is allowed (one batch per epoch); a larger one,
    or an unknown schedule, is a one-line error naming what to change."""
    from sgdtail.train import MinibatchSampler

    whole = MinibatchSampler(10, 10, seed=0, device=CPU)
    assert sorted(whole.next().tolist()) == list(range(10))
    with pytest.raises(ValueError) as too_large:
        MinibatchSampler(10, 11, seed=0, device=CPU)
    assert str(too_large.value) == (
        "batch_size 11 is larger than the training set (10 images); lower batch_size in the grid"
    )
    with pytest.raises(ValueError) as unknown:
        lr_at(0, config(lr_schedule="cosine"))
    assert str(unknown.value) == "training.lr_schedule 'cosine': allowed constant, halve"


def test_resume_decisions_are_logged_and_need_the_same_data(tmp_path, small_data, caplog):
    """A resume file of this configuration but other data is ignored like one of another
    configuration, with a warning naming it; a matching one is taken, with an info line
    naming its step and path. A divergence is logged with its step."""
    from sgdtail.train import _build_run, _RunState, load_resume, save_resume

    cfg = config(iterations=60, checkpoints=(0, 60), resume_every=30)
    run = _build_run(cfg, small_data, tmp_path, CPU)
    state = _RunState.fresh(60)
    state.step = 30
    save_resume(run, state)
    other_data = dataclasses.replace(run, data=dataclasses.replace(small_data, content_hash="x"))
    with caplog.at_level("INFO", logger="sgdtail.train"):
        fresh = _RunState.fresh(60)
        load_resume(other_data, fresh)
        assert fresh.resumed_from is None
        load_resume(run, fresh)
        assert fresh.resumed_from == 30
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring {run.resume_path}: written by a different configuration or data",
        f"resuming from step 30 ({run.resume_path})",
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="sgdtail.train"):
        info = train_sgd(config(lr=1e6), small_data, tmp_path / "diverged", CPU)
    assert caplog.records[-1].getMessage() == (
        f"loss is not finite at step {info['diverged_at']}: run diverged"
    )


def test_a_cpu_run_ignores_a_saved_cuda_generator_and_plain_sgd_saves_no_optimizer(
    tmp_path, monkeypatch, small_data
):
    """A resume file that holds a CUDA generator state restores it only on a CUDA device;
    plain SGD's checkpoints.pt has no optimizer entries (as before the optimizer axis)."""
    from sgdtail.train import _build_run, _RunState, load_resume, save_resume

    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda d: torch.tensor([7]))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, d: calls.append(d))
    run = _build_run(config(iterations=10, checkpoints=(10,)), small_data, tmp_path, CPU)
    save_resume(dataclasses.replace(run, device=torch.device("cuda")), _RunState.fresh(10))
    state = _RunState.fresh(10)
    load_resume(run, state)
    assert state.resumed_from == 0 and calls == []  # the file was taken, its CUDA state not
    train_sgd(config(iterations=10, checkpoints=(10,)), small_data, tmp_path / "sgd", CPU)
    assert set(io.load_torch(tmp_path / "sgd" / "checkpoints.pt")) == {"steps", "state_dicts"}


def test_progress_rate_below_one_second_and_at_zero(monkeypatch, caplog) -> None:
    """Half a second after the start, 50 steps read 100 steps/s; a rate of 0.5 steps/s still
    gives an ETA; no step yet gives an unknown ETA."""
    from types import SimpleNamespace

    import sgdtail.train as train_mod

    assert train_mod._format_seconds(7199.6) == "2h00m00s"
    losses, accs = torch.zeros(1000), torch.zeros(1000)
    run = SimpleNamespace(cfg=config(iterations=1000), losses_dev=losses, accs_dev=accs)
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: 100.5)
    with caplog.at_level("INFO", logger="sgdtail.train"):
        train_mod._report(run, SimpleNamespace(step=50, clock_start=100.0), 0)
        train_mod._report(run, SimpleNamespace(step=998, clock_start=96.5), 996)
        train_mod._report(run, SimpleNamespace(step=10, clock_start=100.0), 10)
    tails = [r.getMessage().split("accuracy 0.000, ")[1] for r in caplog.records]
    assert tails == ["100.0 steps/s, ETA 10s", "0.5 steps/s, ETA 4s", "0.0 steps/s, ETA ?"]
