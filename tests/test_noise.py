"""Noise measurement: minibatch gradients against autograd, the full gradient, the remainder
rule, and one pass (gradients held) against two passes (streamed) giving the same estimates."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_prepared
from sgdtail import noise
from sgdtail.losses import get_loss
from sgdtail.models import build_model
from sgdtail.noise import full_gradient, measure_noise, minibatch_gradients


@pytest.fixture
def model_and_data():
    data = make_prepared(n_train=250, n_test=60)
    torch.manual_seed(0)
    model = build_model("fcn", 12, 3, data.input_shape, data.num_classes).eval()
    return model, data


def autograd_gradient(model, loss_fn, x, y) -> torch.Tensor:
    model.zero_grad()
    loss_fn(model(x), y).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
def test_minibatch_gradients_match_autograd(model_and_data, loss):
    model, data = model_and_data
    loss_fn = get_loss(loss)
    b = 40
    rows = torch.cat(list(minibatch_gradients(model, loss_fn, data.x_train, data.y_train, b, 2)))
    assert rows.shape == (250 // b, sum(p.numel() for p in model.parameters()))
    for p in range(len(rows)):
        expected = autograd_gradient(model, loss_fn, data.x_train[p * b : (p + 1) * b],
                                     data.y_train[p * b : (p + 1) * b])
        torch.testing.assert_close(rows[p], expected, rtol=1e-5, atol=1e-7)


def test_full_gradient_is_mean_of_equal_minibatches(model_and_data):
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train[:200], data.y_train[:200]
    rows = torch.cat(list(minibatch_gradients(model, loss_fn, x, y, 40, 10)))
    torch.testing.assert_close(full_gradient(model, loss_fn, x, y, chunk=64), rows.mean(0),
                               rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(full_gradient(model, loss_fn, x, y, chunk=200),
                               autograd_gradient(model, loss_fn, x, y), rtol=1e-5, atol=1e-7)


def _pooled(rows, estimator="mohammadi_robust", scope="pooled", order="natural"):
    (row,) = [r for r in rows if r["estimator"] == estimator and r["scope"] == scope
              and r["order"] == order and (estimator != "block_sweep")]
    return row


@pytest.mark.parametrize("budget_mb,passes", [(0.01, 2), (0.15, 2), (64, 1)])
def test_streaming_and_holding_agree(model_and_data, budget_mb, passes):
    """P·M·4 bytes ≈ 206 kB here: small budgets stream (1 or 2 rows a chunk, two passes)."""
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    reference = measure_noise(model, loss_fn, data.x_train, data.y_train, 5,
                              memory_budget_mb=1024)
    res = measure_noise(model, loss_fn, data.x_train, data.y_train, 5,
                        memory_budget_mb=budget_mb)
    assert reference.passes == 1 and res.passes == passes
    torch.testing.assert_close(res.norms, reference.norms, rtol=1e-4, atol=1e-7)
    for est in ("mohammadi_robust", "mohammadi_reference", "per_coordinate", "hill"):
        a, b = _pooled(reference.rows, est), _pooled(res.rows, est)
        assert math.isclose(a["alpha"], b["alpha"], rel_tol=1e-3), est


def test_remainder_rules(model_and_data):
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train[:230], data.y_train[:230]  # b = 50: 4 full minibatches, 30 left over
    drop = measure_noise(model, loss_fn, x, y, 50, remainder="drop")
    weight = measure_noise(model, loss_fn, x, y, 50, remainder="weight")
    assert drop.n_minibatches == weight.n_minibatches == 4
    g_drop = full_gradient(model, loss_fn, x[:200], y[:200], chunk=200)
    g_all = full_gradient(model, loss_fn, x, y, chunk=230)
    assert math.isclose(drop.gradient_norm, float(g_drop.double().norm()), rel_tol=1e-5)
    assert math.isclose(weight.gradient_norm, float(g_all.double().norm()), rel_tol=1e-5)
    with pytest.raises(ValueError, match="noise.remainder"):
        measure_noise(model, loss_fn, x, y, 50, remainder="keep")


def test_too_few_minibatches_is_clear(model_and_data):
    model, data = model_and_data
    with pytest.raises(ValueError, match="at least two"):
        measure_noise(model, get_loss("hinge"), data.x_test[:60], data.y_test[:60], 50)


# ------------------------------------------- blocked (bmm) minibatch gradients


def _biased_mlp() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 9), torch.nn.Tanh(), torch.nn.Linear(9, 10)
    ).eval()


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("chunk", [1, 2, 5])
@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("forward_images", [4096, 80])
def test_blocked_gradients_equal_loop_and_autograd(
    model_and_data, monkeypatch, loss, chunk, biases, forward_images
):
    """One forward+backward per chunk (or per 2 minibatches of 40 images with
    FORWARD_IMAGES = 80) and a bmm per layer give every minibatch gradient."""
    monkeypatch.setattr(noise, "FORWARD_IMAGES", forward_images)
    model, data = model_and_data
    if biases:
        model = _biased_mlp()
    loss_fn = get_loss(loss)
    x, y, b = data.x_train, data.y_train, 40
    blocked = torch.cat(list(minibatch_gradients(model, loss_fn, x, y, b, chunk, method="blocked")))
    loop = torch.cat(list(minibatch_gradients(model, loss_fn, x, y, b, chunk, method="loop")))
    assert blocked.shape == loop.shape == (250 // b, sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(blocked, loop, rtol=1e-5, atol=1e-7)
    for p in range(len(blocked)):
        expected = autograd_gradient(model, loss_fn, x[p * b : (p + 1) * b], y[p * b : (p + 1) * b])
        torch.testing.assert_close(blocked[p], expected, rtol=1e-5, atol=1e-7)


def test_auto_uses_the_loop_for_conv_and_shared_layers(model_and_data):
    _, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    torch.manual_seed(2)
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 10)
    ).eval()
    x, y = data.x_train[:120], data.y_train[:120]
    auto = torch.cat(list(minibatch_gradients(conv, loss_fn, x, y, 30, 2)))
    for p in range(4):
        sl = slice(p * 30, (p + 1) * 30)
        expected = autograd_gradient(conv, loss_fn, x[sl], y[sl])
        torch.testing.assert_close(auto[p], expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="nn.Linear"):
        next(minibatch_gradients(conv, loss_fn, x, y, 30, 2, method="blocked"))
    with pytest.raises(ValueError, match="allowed: auto, blocked, loop"):
        next(minibatch_gradients(conv, loss_fn, x, y, 30, 2, method="vmap"))

    class Twice(torch.nn.Module):  # one Linear applied twice: its gradient is not one bmm
        def __init__(self):
            super().__init__()
            self.flat = torch.nn.Flatten()
            self.a, self.b = torch.nn.Linear(64, 64), torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.b(torch.relu(self.a(torch.relu(self.a(self.flat(x))))))

    twice = Twice().eval()
    with pytest.raises(ValueError, match="called once per forward pass"):
        next(minibatch_gradients(twice, loss_fn, x, y, 30, 2, method="blocked"))
    auto = torch.cat(list(minibatch_gradients(twice, loss_fn, x, y, 30, 2)))  # falls back
    for p in range(4):
        sl = slice(p * 30, (p + 1) * 30)
        expected = autograd_gradient(twice, loss_fn, x[sl], y[sl])
        torch.testing.assert_close(auto[p], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["blocked", "loop"])
def test_gradients_written_into_the_given_buffer(model_and_data, method):
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train, data.y_train  # 6 minibatches of 40
    m = sum(p.numel() for p in model.parameters())
    expected = torch.cat(list(minibatch_gradients(model, loss_fn, x, y, 40, 4, method=method)))
    full = torch.full((6, m), float("nan"))
    chunks = list(minibatch_gradients(model, loss_fn, x, y, 40, 4, method=method, out=full))
    assert [c.data_ptr() for c in chunks] == [full.data_ptr(), full[4].data_ptr()]
    torch.testing.assert_close(full, expected, rtol=0, atol=0)
    ring = torch.empty(4, m)
    gen = minibatch_gradients(model, loss_fn, x, y, 40, 4, method=method, out=ring)
    seen = [c.clone() for c in gen]
    torch.testing.assert_close(torch.cat(seen), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="R >= 4"):
        next(minibatch_gradients(model, loss_fn, x, y, 40, 4, out=torch.empty(3, m)))


def test_a_class_sorted_split_is_measured_in_a_fixed_shuffled_order():
    """In the stored order a class-sorted split makes every minibatch one class: each
    coordinate's noise keeps its sign over consecutive minibatches and the per-coordinate
    estimator reads α̂ ≈ 1 by construction; the fixed permutation removes that."""
    from sgdtail.noise import minibatch_order

    data = make_prepared(n_train=2000, n_test=100, shape=(1, 6, 6))
    order = torch.argsort(data.y_train, stable=True)
    x, y = data.x_train[order], data.y_train[order]
    torch.manual_seed(0)
    model = build_model("fcn", 16, 2, (1, 6, 6), 10)
    loss = torch.nn.CrossEntropyLoss()
    per_coord = {}
    for kind in ("given", "shuffled"):
        xs, ys = minibatch_order(x, y, kind, seed=0)
        result = measure_noise(model, loss, xs, ys, 20)  # P = 100, K1 = 10
        rows = [r for r in result.rows if r["estimator"] == "per_coordinate"]
        per_coord[kind] = rows[0]["alpha"]
    assert per_coord["given"] < 1.3 < 1.7 < per_coord["shuffled"], per_coord
    xs, ys = minibatch_order(x, y, "shuffled", seed=0)
    again = minibatch_order(x, y, "shuffled", seed=0)
    assert torch.equal(xs, again[0]) and torch.equal(ys, again[1])  # a fixed permutation
    assert sorted(ys.tolist()) == sorted(y.tolist())
    with pytest.raises(ValueError, match="noise.order is 'random'; allowed: given, shuffled"):
        minibatch_order(x, y, "random")


# ------------------------------------------- eval mode (dropout off) during the measurement


def _dropout_mlp() -> torch.nn.Module:
    """All-Linear (blocked gradients) with dropout between the layers, in train mode."""
    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 10),
    ).train()


def _tiny_alexnet() -> torch.nn.Module:
    """AlexNet (conv layers: the autograd loop) with its two dropout layers, in train mode."""
    torch.manual_seed(4)
    return build_model("alexnet", 2, 8, (1, 28, 28), 10).train()


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny convolutions run ~10× faster than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("make_model, shape", [(_dropout_mlp, (1, 8, 8)),
                                               (_tiny_alexnet, (1, 28, 28))])
def test_noise_is_measured_in_eval_mode_and_the_mode_restored(make_model, shape, one_thread):
    """A model handed over in train mode is measured with dropout off: the noise norms and
    ‖ḡ‖ equal those of autograd gradients in eval mode, and the model is back in train mode
    afterwards (its dropout layers included)."""
    data = make_prepared(n_train=120, n_test=20, shape=shape)
    x, y, b = data.x_train, data.y_train, 20
    model = make_model()
    loss_fn = get_loss("cross_entropy")
    res = measure_noise(model, loss_fn, x, y, b)
    assert model.training and all(m.training for m in model.modules())

    model.eval()
    grads = torch.stack([autograd_gradient(model, loss_fn, x[p * b : (p + 1) * b],
                                           y[p * b : (p + 1) * b]) for p in range(len(x) // b)])
    model.train()
    gbar = grads.double().mean(0)
    want = torch.linalg.vector_norm(grads.double() - gbar, dim=1)
    torch.testing.assert_close(res.norms, want, rtol=1e-4, atol=1e-7)
    assert res.gradient_norm == pytest.approx(float(gbar.norm()), rel=1e-5)
    # with dropout on, the same minibatches give other gradients: the check can tell
    model.zero_grad()
    loss_fn(model(x[:b]), y[:b]).backward()
    on = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert not torch.allclose(on, grads[0], rtol=1e-3, atol=1e-5)
