"""The optimizer axis: each optimizer's update against its formula written out by hand, its
state in the run folder, the fingerprint, the noise measured at its checkpoints (the
preconditioned noise of Adam against a hand computation), and its cost."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pandas as pd
import pytest
import torch

from conftest import make_prepared
from sgdtail import cost, io
from sgdtail.estimators import StreamingTailStats
from sgdtail.grid import OPTIMIZERS, PRECONDITIONED_OPTIMIZERS, RunPoint, optimizer_settings
from sgdtail.losses import get_loss
from sgdtail.models import build_model, layer_slices
from sgdtail.noise import measure_checkpoints, measure_noise
from sgdtail.optim import adam_preconditioner, build_optimizer
from sgdtail.train import MinibatchSampler, TrainConfig, train_sgd

CPU = torch.device("cpu")
SETTINGS = {
    "momentum": 0.8,
    "nesterov_momentum": 0.7,
    "adam_betas": [0.85, 0.99],
    "adam_eps": 1e-6,
    "weight_decay": 0.01,
}
"""Hyper-parameters away from PyTorch's defaults, so a formula that ignored one would differ."""
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01}
SUB = dict(
    dataset="mnist", arch="fcn", width=64, depth=3, batch_size=500, lr=0.1, loss="hinge", seed=0
)


def config(optimizer: str, **overrides) -> TrainConfig:
    base = dict(
        dataset="synthetic",
        arch="fcn",
        width=12,
        depth=3,
        batch_size=20,
        lr=LR[optimizer],
        loss="cross_entropy",
        seed=0,
        iterations=60,
        checkpoints=(0, 10, 60),
        eval_batch_size=128,
        resume_every=25,
        optimizer=optimizer,
        optimizer_settings=optimizer_settings(optimizer, SETTINGS),
    )
    base.update(overrides)
    return TrainConfig(**base)


def hand_step(name: str, w: torch.Tensor, g: torch.Tensor, state: dict, lr: float) -> None:
    """One update of optimizer ``name`` on one tensor, as docs/science.md writes it."""
    d = g if name == "sgd" else g + SETTINGS["weight_decay"] * w
    if name == "sgd":
        w.add_(d, alpha=-lr)  # w − η g, rounded once (as the training loop's _foreach_add_)
    elif name in ("momentum", "nesterov"):
        mu = SETTINGS["momentum" if name == "momentum" else "nesterov_momentum"]
        state["b"] = d.clone() if "b" not in state else mu * state["b"] + d
        w -= lr * (state["b"] if name == "momentum" else d + mu * state["b"])
    else:
        beta1, beta2 = SETTINGS["adam_betas"]
        state["t"] = t = state.get("t", 0) + 1
        state["m"] = beta1 * state.get("m", torch.zeros_like(w)) + (1 - beta1) * d
        state["v"] = beta2 * state.get("v", torch.zeros_like(w)) + (1 - beta2) * d * d
        m_hat, v_hat = state["m"] / (1 - beta1**t), state["v"] / (1 - beta2**t)
        w -= lr * m_hat / (v_hat.sqrt() + SETTINGS["adam_eps"])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_steps_as_its_formula(tmp_path, name):
    """30 steps of train_sgd end at the weights of the update formulas written out by hand
    on the same minibatches (plain SGD bit for bit)."""
    data = make_prepared()
    cfg = config(name, iterations=30, checkpoints=(30,))
    train_sgd(cfg, data, tmp_path, CPU)
    got = io.load_torch(tmp_path / "checkpoints.pt")["state_dicts"]["30"]

    torch.manual_seed(cfg.seed)
    model = build_model("fcn", 12, 3, data.input_shape, data.num_classes).train()
    sampler = MinibatchSampler(len(data.x_train), cfg.batch_size, cfg.seed, CPU)
    loss_fn = get_loss("cross_entropy")
    states = {key: {} for key, _ in model.named_parameters()}
    for _ in range(30):
        idx = sampler.next()
        model.zero_grad()
        loss_fn(model(data.x_train[idx]), data.y_train[idx]).backward()
        with torch.no_grad():
            for key, p in model.named_parameters():
                hand_step(name, p.data, p.grad, states[key], cfg.lr)
    for key, p in model.named_parameters():
        if name == "sgd":
            assert torch.equal(got[key], p.detach()), key
        else:
            torch.testing.assert_close(got[key], p.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_trains_keeps_its_state_and_is_measured(tmp_path, name):
    """A run learns; checkpoints.pt holds the optimizer's state at each checkpoint (none for
    plain SGD, whose file keeps its two keys); the noise job measures the gradient noise at
    every checkpoint as for plain SGD, and for Adam also the preconditioned noise."""
    data = make_prepared()
    info = train_sgd(config(name), data, tmp_path, CPU)
    metrics = pd.read_csv(tmp_path / "checkpoint_metrics.csv")
    assert info["status"] == "completed" and info["config"]["optimizer"] == name
    assert metrics.train_accuracy.iloc[-1] > metrics.train_accuracy.iloc[0] + 0.3
    ckpt = io.load_torch(tmp_path / "checkpoints.pt")
    if name == "sgd":
        assert sorted(ckpt) == ["state_dicts", "steps"]
    else:
        assert ckpt["optimizer"] == name and sorted(ckpt["optimizer_states"]) == ["0", "10", "60"]
        assert ckpt["optimizer_states"]["0"]["state"] == {}  # no step taken yet
        n_tensors = len(list(build_model("fcn", 12, 3, data.input_shape, 10).parameters()))
        assert len(ckpt["optimizer_states"]["10"]["state"]) == n_tensors  # one state each

    def build():
        return build_model("fcn", 12, 3, data.input_shape, data.num_classes)

    splits = {"train": (data.x_train[:400], data.y_train[:400])}
    options = {"ci_groups": 4, "sweep_k1": [2, 4], "shuffled_sweep": False}
    est, _ = measure_checkpoints(
        ckpt,
        build,
        get_loss("cross_entropy"),
        splits,
        20,
        remainder="drop",
        memory_budget_mb=16,
        estimator_options=options,
    )
    est = pd.DataFrame(est)
    gradient = est[est.noise == "gradient"]
    model = build()
    model.load_state_dict(ckpt["state_dicts"]["60"])
    plain = measure_noise(
        model, get_loss("cross_entropy"), *splits["train"], 20, estimator_options=options
    )
    last = gradient[gradient.step == 60].drop(columns=["step", "split", "noise", "seconds"])
    want = pd.DataFrame(plain.rows)
    pd.testing.assert_frame_equal(
        last[list(want.columns)].reset_index(drop=True), want, check_exact=True, check_dtype=False
    )
    pre = est[est.noise == "preconditioned"]
    if name not in PRECONDITIONED_OPTIMIZERS:
        assert pre.empty
        return
    assert pre[pre.step == 0].to_dict("records")[0]["note"].startswith("no optimizer state")
    assert len(pre[pre.step == 60]) == len(last)


def test_preconditioned_noise_equals_a_hand_computation(tmp_path):
    """At an Adam checkpoint: each minibatch gradient g_p by autograd, the full gradient ḡ,
    v̂ = v / (1 − β2^t) from the saved second moment, U_p = g_p / (√v̂ + ε) − ḡ / (√v̂ + ε),
    through the same estimators, gives the preconditioned rows; the gradient rows are the
    estimators on g_p − ḡ; the two differ."""
    data = make_prepared(n_train=200, n_test=60)
    cfg = config("adam", width=6, depth=2, iterations=7, checkpoints=(0, 7))
    train_sgd(cfg, data, tmp_path, CPU)
    ckpt = io.load_torch(tmp_path / "checkpoints.pt")
    model = build_model("fcn", 6, 2, data.input_shape, data.num_classes).eval()
    model.load_state_dict(ckpt["state_dicts"]["7"])
    params = list(model.parameters())
    state = ckpt["optimizer_states"]["7"]

    beta2, eps = SETTINGS["adam_betas"][1], SETTINGS["adam_eps"]
    divisor = []
    for i in range(len(params)):
        t = int(state["state"][i]["step"])
        assert t == 7
        v_hat = state["state"][i]["exp_avg_sq"] / (1 - beta2**t)
        divisor.append((v_hat.sqrt() + eps).reshape(-1))
    divisor = torch.cat(divisor)
    torch.testing.assert_close(adam_preconditioner(state, len(params)), divisor)

    loss_fn, b = get_loss("cross_entropy"), 20
    x, y = data.x_train, data.y_train
    grads = []
    for p in range(len(x) // b):
        model.zero_grad()
        loss_fn(model(x[p * b : (p + 1) * b]), y[p * b : (p + 1) * b]).backward()
        grads.append(torch.cat([q.grad.reshape(-1) for q in params]))
    g = torch.stack(grads)
    gbar = g.mean(0)
    u_pre = g / divisor - gbar / divisor
    options = {"ci_groups": 5, "sweep_k1": [2, 4, 8], "shuffled_sweep": False}

    def hand_rows(u: torch.Tensor) -> pd.DataFrame:
        stats = StreamingTailStats(len(u), u.shape[1], layer_slices(model), **options)
        stats.update(u)
        return pd.DataFrame(stats.finalize())

    est, _ = measure_checkpoints(
        ckpt,
        lambda: build_model("fcn", 6, 2, data.input_shape, data.num_classes),
        loss_fn,
        {"train": (x, y)},
        b,
        remainder="drop",
        memory_budget_mb=16,
        estimator_options=options,
    )
    est = pd.DataFrame(est)
    at7 = est[est.step == 7]
    for noise, u in (("preconditioned", u_pre), ("gradient", g - gbar)):
        got = at7[at7.noise == noise].reset_index(drop=True)
        want = hand_rows(u)
        assert len(got) == len(want) > 10
        for column in ("alpha", "n_values", "zero_fraction"):
            pd.testing.assert_series_equal(
                got[column], want[column], check_dtype=False, rtol=1e-4, atol=1e-6
            )
    pre = at7[at7.noise == "preconditioned"]
    assert pre.gradient_norm.iloc[0] == pytest.approx(float((gbar / divisor).norm()), rel=1e-5)
    robust = at7[(at7.estimator == "mohammadi_robust") & (at7.scope == "pooled")]
    assert abs(robust.alpha.iloc[0] - robust.alpha.iloc[1]) > 0.05  # preconditioning shows


def test_plain_sgd_fingerprint_is_the_one_before_the_optimizer_axis():
    """A plain-SGD run hashes its fields without the optimizer's (so resume.pt files written
    before the axis existed stay valid); every other optimizer, and each hyper-parameter,
    gives its own fingerprint."""
    sgd = config("sgd")
    fields = dataclasses.asdict(sgd)
    del fields["optimizer"], fields["optimizer_settings"]
    text = json.dumps(fields, sort_keys=True)
    assert sgd.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]
    others = {config(name).fingerprint() for name in OPTIMIZERS}
    assert len(others) == len(OPTIMIZERS)
    changed = dataclasses.replace(
        config("adam"), optimizer_settings={**config("adam").optimizer_settings, "adam_eps": 1e-8}
    )
    assert changed.fingerprint() != config("adam").fingerprint()


def test_resume_file_of_another_optimizer_is_ignored(tmp_path):
    """A resume.pt left by a momentum run is not continued by an Adam run in the same
    folder: the Adam run starts from step 0 and ends as one that never saw it."""
    data = make_prepared()
    momentum = config("momentum", iterations=60, checkpoints=(0, 60), resume_every=20)
    folder = tmp_path / "run"
    train_sgd(dataclasses.replace(momentum, iterations=30, checkpoints=(0, 30)), data, folder, CPU)
    saved = io.load_torch(tmp_path / "run" / "checkpoints.pt")
    io.save_torch(
        folder / "resume.pt",
        {"fingerprint": momentum.fingerprint(), "data": data.content_hash, "step": 30, **saved},
    )
    adam = config("adam", iterations=30, checkpoints=(0, 30))
    info = train_sgd(adam, data, folder, CPU)
    assert info["resumed_from"] is None and info["steps_done"] == 30
    train_sgd(adam, data, tmp_path / "clean", CPU)
    a = io.load_torch(folder / "checkpoints.pt")["state_dicts"]["30"]
    b = io.load_torch(tmp_path / "clean" / "checkpoints.pt")["state_dicts"]["30"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_cost_model_counts_the_optimizers_state(name):
    """OPTIMIZER_STATE_BUFFERS is the number of parameter-sized tensors torch.optim keeps;
    Adam's noise job streams two noises; a point without an optimizer is plain SGD."""
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    opt = build_optimizer(name, params, SETTINGS)
    kept = 0
    if opt is not None:
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        kept = sum(
            1
            for t in opt.state[params[0]].values()
            if isinstance(t, torch.Tensor) and t.shape == params[0].shape
        )
    assert cost.OPTIMIZER_STATE_BUFFERS[name] == kept
    point = dict(dataset="mnist", arch="fcn", width=64, depth=3, batch_size=500, optimizer=name)
    plain = {k: v for k, v in point.items() if k != "optimizer"}
    assert cost.noise_kinds(point) == (2 if name == "adam" else 1)
    text = RunPoint(**{**SUB, "optimizer": name}).wildcards()["optimizer"]
    as_text = {**point, "optimizer": text}
    assert cost.state_buffers(as_text) == cost.state_buffers(point)  # grid_cost's wildcards
    more = cost.train_seconds(point, 1000, 5) - cost.train_seconds(plain, 1000, 5)
    assert (more > 0) == (name != "sgd")
    noise_more = cost.noise_seconds(point, ["train"], 5) > cost.noise_seconds(plain, ["train"], 5)
    assert noise_more == (name == "adam")
