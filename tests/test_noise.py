"""Noise measurement: minibatch gradients against autograd, the full gradient, the remainder
rule, one pass (gradients held) against two passes (streamed) giving the same estimates, and a
killed job that keeps its finished checkpoint × split parts."""

from __future__ import annotations

import math
import time

import pytest
import torch

from conftest import make_prepared
from sgdtail import noise, torch_kernels
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
        expected = autograd_gradient(
            model, loss_fn, data.x_train[p * b : (p + 1) * b], data.y_train[p * b : (p + 1) * b]
        )
        torch.testing.assert_close(rows[p], expected, rtol=1e-5, atol=1e-7)


def test_full_gradient_is_mean_of_equal_minibatches(model_and_data):
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train[:200], data.y_train[:200]
    rows = torch.cat(list(minibatch_gradients(model, loss_fn, x, y, 40, 10)))
    torch.testing.assert_close(
        full_gradient(model, loss_fn, x, y, chunk=64), rows.mean(0), rtol=1e-5, atol=1e-7
    )
    torch.testing.assert_close(
        full_gradient(model, loss_fn, x, y, chunk=200),
        autograd_gradient(model, loss_fn, x, y),
        rtol=1e-5,
        atol=1e-7,
    )


def _pooled(rows, estimator="mohammadi_robust", scope="pooled", order="natural"):
    (row,) = [
        r
        for r in rows
        if r["estimator"] == estimator
        and r["scope"] == scope
        and r["order"] == order
        and (estimator != "block_sweep")
    ]
    return row


@pytest.mark.parametrize("budget_mb,passes", [(0.01, 2), (0.15, 2), (64, 1)])
def test_streaming_and_holding_agree(model_and_data, budget_mb, passes):
    """P·M·4 bytes ≈ 206 kB here: small budgets stream (1 or 2 rows a chunk, two passes)."""
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    reference = measure_noise(model, loss_fn, data.x_train, data.y_train, 5, memory_budget_mb=1024)
    res = measure_noise(model, loss_fn, data.x_train, data.y_train, 5, memory_budget_mb=budget_mb)
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


# ------------------------------------------- chunk size, float64 sums, reused buffers


def test_groups_per_chunk_uses_an_eighth_of_the_budget():
    """Per minibatch: a float32 gradient row and a float32 noise row (8 bytes a parameter);
    a chunk gets budget / 8, and at least one minibatch."""
    assert noise.groups_per_chunk(100, 64_000) == 10  # 8000 B / 800 B
    assert noise.groups_per_chunk(100, 64_000 + 8 * 799) == 10  # floors
    assert noise.groups_per_chunk(100, 64_000 + 8 * 800) == 11
    assert noise.groups_per_chunk(1000, 8 * 8000) == 1
    assert noise.groups_per_chunk(1000, 100) == 1  # budget below one row: still one


def test_column_sums_are_float64_and_exact_where_float32_is_not(one_thread):
    """33 rows of 2**19 and one of 1: every partial sum of a few rows is exact in float32,
    the total 33·2**19 + 1 (above 2**24) is not, so it must be added up in float64."""
    g = torch.full((34, 3), 2.0**19)
    g[33] = torch.tensor([1.0, 0.0, 2.0])
    total = noise._column_sums(g)
    assert total.dtype == torch.float64
    assert total.tolist() == [33 * 2**19 + 1, 33 * 2**19, 33 * 2**19 + 2]
    assert float(g.sum(0)[0]) != 33 * 2**19 + 1  # the float32 sum loses the 1
    assert noise._column_sums(torch.ones(40, 2)).tolist() == [40.0, 40.0]
    assert noise._column_sums(g.to("meta")).device.type == "meta"  # on the data's device


def test_workspace_is_one_buffer_per_device_reused_and_grown():
    cpu, meta = torch.device("cpu"), torch.device("meta")
    noise.release_workspaces()
    try:
        a = noise._workspace(4, 3, cpu)
        assert a.shape == (4, 3) and a.dtype == torch.float32 and a.device == cpu
        same = noise._workspace(2, 6, cpu)  # exactly the size held: the same memory
        assert same.shape == (2, 6) and same.data_ptr() == a.data_ptr()
        other = noise._workspace(4, 3, meta)  # another device: its own buffer
        assert other.device == meta and other.shape == (4, 3)
        smaller = noise._workspace(2, 5, cpu)  # still the cpu buffer, not the meta one
        assert smaller.device == cpu and smaller.data_ptr() == a.data_ptr()
        grown = noise._workspace(5, 3, cpu)  # too small: replaced by a larger one
        assert grown.shape == (5, 3) and grown.device == cpu
        grown.fill_(7.0)
        assert noise._workspace(3, 5, cpu).data_ptr() == grown.data_ptr()
        assert noise._workspace(1, 2, meta).device == meta
        noise.release_workspaces()
        assert noise._workspace(5, 3, cpu).data_ptr() != 0
    finally:
        noise.release_workspaces()


def test_measure_noise_two_minibatches_and_the_budget_boundary(model_and_data, one_thread):
    """Two minibatches are enough (U = ±(g₁ − g₂)/2); the gradients are held (one pass) when
    P·M float32 values fit in the budget exactly, and streamed (two passes) one byte below."""
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train[:100], data.y_train[:100]
    need = 4 * sum(p.numel() for p in model.parameters()) * 2
    at = measure_noise(model, loss_fn, x, y, 50, memory_budget_mb=need / 2**20)
    below = measure_noise(model, loss_fn, x, y, 50, memory_budget_mb=(need - 1) / 2**20)
    assert (at.passes, below.passes) == (1, 2)
    assert at.n_minibatches == below.n_minibatches == 2
    g1, g2 = (
        autograd_gradient(model, loss_fn, x[s : s + 50], y[s : s + 50]).double() for s in (0, 50)
    )
    half = float((g1 - g2).norm() / 2)
    for res in (at, below):
        torch.testing.assert_close(
            res.norms, torch.tensor([half, half], dtype=torch.float64), rtol=1e-5, atol=0
        )
        assert res.gradient_norm == pytest.approx(float(((g1 + g2) / 2).norm()), rel=1e-5)
    with pytest.raises(
        ValueError,
        match=r"^the split has 99 images, fewer than two minibatches "
        r"of 50; the noise needs at least two: lower batch_size or use a larger "
        r"split$",
    ):
        measure_noise(model, loss_fn, x[:99], y[:99], 50)


def test_measure_noise_writes_the_gradients_into_the_kept_workspace(model_and_data, one_thread):
    """The P × M gradients go into the device's buffer kept between measurements (no fresh
    P·M allocation per checkpoint and split), where they become the noise g_p − ḡ in place."""
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train, data.y_train  # 5 minibatches of 50
    m = sum(p.numel() for p in model.parameters())
    noise.release_workspaces()
    try:
        kept = noise._workspace(5, m, x.device)
        kept.fill_(float("nan"))
        measure_noise(model, loss_fn, x, y, 50, memory_budget_mb=64)
        grads = torch.stack(
            [
                autograd_gradient(model, loss_fn, x[s : s + 50], y[s : s + 50])
                for s in range(0, 250, 50)
            ]
        )
        want = grads - grads.double().mean(0).float()
        torch.testing.assert_close(kept, want, rtol=1e-4, atol=1e-6)
        # streamed (one minibatch a chunk): every chunk reuses row 0, the last one stays
        kept.fill_(float("nan"))
        res = measure_noise(model, loss_fn, x, y, 50, memory_budget_mb=4 * m / 2**20)
        assert res.passes == 2
        torch.testing.assert_close(kept[0], want[4], rtol=1e-4, atol=1e-6)
        assert torch.isnan(kept[1:]).all()
    finally:
        noise.release_workspaces()


def _count_images(model: torch.nn.Module) -> list[int]:
    """Images through ``model``'s forward passes (appended to the returned list)."""
    seen: list[int] = []
    model.register_forward_hook(lambda m, inputs, _: seen.append(len(inputs[0])))
    return seen


@pytest.mark.parametrize(
    "n, remainder, budget_mb, images, split",
    [
        (230, "drop", 64, 1 + 200, 200),  # held: one pass over the P full minibatches
        (230, "drop", 0.001, 1 + 200 + 200, 200),  # streamed: ḡ pass, then the g_p again
        (230, "weight", 64, 1 + 200 + 230, 230),  # ḡ over all N images
        (230, "weight", 0.001, 1 + 200 + 230, 230),
        (201, "weight", 64, 1 + 200 + 201, 201),  # one image left over still counts
        (200, "weight", 64, 1 + 200, 200),  # nothing left over: weight is drop, one pass
    ],
)
def test_measure_noise_passes_and_the_remainder(
    model_and_data, one_thread, n, remainder, budget_mb, images, split
):
    """Images the model sees (1 = the probe that checks for all-Linear layers) and ḡ: the
    mean gradient over the first P·b images (drop), over all N (weight)."""
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train[:n], data.y_train[:n]
    seen = _count_images(model)
    res = measure_noise(model, loss_fn, x, y, 50, remainder=remainder, memory_budget_mb=budget_mb)
    assert sum(seen) == images
    assert res.passes == (1 if budget_mb == 64 else 2) and res.n_minibatches == 4
    assert res.n_parameters == sum(p.numel() for p in model.parameters())
    want = autograd_gradient(model, loss_fn, x[:split], y[:split]).double().norm()
    assert res.gradient_norm == pytest.approx(float(want), rel=1e-5)
    if n == 200:  # and exactly the same numbers as drop
        drop = measure_noise(model, loss_fn, x, y, 50, remainder="drop", memory_budget_mb=64)
        assert res.gradient_norm == drop.gradient_norm
        assert torch.equal(res.norms, drop.norms)


@pytest.mark.parametrize(
    "method, forward_images, b, sizes",
    [
        ("loop", 4096, 40, [40] * 6),  # one pass per minibatch, no probe
        ("blocked", 80, 40, [1, 80, 80, 40, 40]),  # probe, then ≤ 80 images a pass, per chunk
        ("blocked", 80, 50, [1] + [50] * 5),  # 80 // 50 = 1 minibatch a pass
        ("blocked", 80, 100, [1, 100, 100]),  # one minibatch even when above 80
        ("blocked", 4096, 40, [1, 200, 40]),  # one pass per chunk of 5
    ],
)
def test_forward_passes_of_the_minibatch_gradients(
    model_and_data, monkeypatch, one_thread, method, forward_images, b, sizes
):
    """Images per forward pass: the blocked gradients cover about FORWARD_IMAGES images
    (whole minibatches, at least one) per pass, within a chunk of 5 minibatches."""
    monkeypatch.setattr(noise, "FORWARD_IMAGES", forward_images)
    model, data = model_and_data
    x, y = data.x_train, data.y_train  # 250 images
    seen = _count_images(model)
    rows = list(minibatch_gradients(model, get_loss("cross_entropy"), x, y, b, 5, method=method))
    assert seen == sizes
    assert sum(len(r) for r in rows) == len(x) // b


@pytest.mark.parametrize("method", ["loop", "blocked"])
def test_minibatch_gradients_on_the_data_device_and_their_errors(model_and_data, method):
    """Fresh chunk buffers are made on the data's device (meta tensors here); a given buffer
    of the wrong width is refused; the blocked method's refusal says what it needs."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).to("meta")
    x = torch.zeros(6, 1, 2, 2, device="meta")
    y = torch.zeros(6, dtype=torch.long, device="meta")
    chunks = list(minibatch_gradients(model, get_loss("cross_entropy"), x, y, 2, 2, method=method))
    assert [(c.device.type, tuple(c.shape)) for c in chunks] == [
        ("meta", (2, 15)),
        ("meta", (1, 15)),
    ]
    model, data = model_and_data
    m = sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match=r"out must be a float32 \(R, \d+\) tensor with R >= 2"):
        next(
            minibatch_gradients(
                model,
                get_loss("cross_entropy"),
                data.x_train,
                data.y_train,
                50,
                2,
                method=method,
                out=torch.empty(5, m + 1),
            )
        )
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 10)
    )
    with pytest.raises(
        ValueError,
        match=r"^method='blocked' needs a model whose trainable "
        r"parameters all belong to nn\.Linear layers, each called once per "
        r"forward pass on \(batch, features\) inputs; use method='loop' or "
        r"'auto'$",
    ):
        next(
            minibatch_gradients(
                conv, get_loss("cross_entropy"), data.x_train, data.y_train, 50, 2, method="blocked"
            )
        )


def test_measure_noise_hands_the_estimator_options_over(model_and_data, one_thread):
    model, data = model_and_data
    res = measure_noise(
        model,
        get_loss("cross_entropy"),
        data.x_train,
        data.y_train,
        25,
        estimator_options={"hill_k": 7, "sweep_k1": [], "per_coordinate": False},
    )
    assert {r["estimator"] for r in res.rows} == {
        "mohammadi_reference",
        "mohammadi_robust",
        "mohammadi_order",
        "hill",
    }
    default = measure_noise(model, get_loss("cross_entropy"), data.x_train, data.y_train, 25)
    assert "per_coordinate" in {r["estimator"] for r in default.rows}
    assert _pooled(res.rows, "hill")["alpha"] != _pooled(default.rows, "hill")["alpha"]  # k = 7


def test_measure_noise_streams_batches_above_1024_images(one_thread):
    data = make_prepared(n_train=2200, n_test=10)
    torch.manual_seed(0)
    model = build_model("fcn", 4, 2, data.input_shape, data.num_classes)
    loss_fn = get_loss("cross_entropy")
    x, y = data.x_train, data.y_train
    res = measure_noise(model, loss_fn, x, y, 1100, memory_budget_mb=0.001)
    assert res.passes == 2 and res.n_minibatches == 2
    want = autograd_gradient(model, loss_fn, x, y).double().norm()
    assert res.gradient_norm == pytest.approx(float(want), rel=1e-5)


def test_measure_noise_times_the_whole_and_the_estimators(model_and_data, monkeypatch, one_thread):
    """estimator_seconds adds up the time in the estimators (here ≥ 4 updates × 20 ms +
    50 ms finalize) and is part of seconds, the wall time of the whole measurement."""
    from sgdtail.estimators import StreamingTailStats

    class Slow(StreamingTailStats):
        def update(self, *args, **kwargs):
            time.sleep(0.02)
            return super().update(*args, **kwargs)

        def finalize(self):
            time.sleep(0.05)
            return super().finalize()

    monkeypatch.setattr(noise, "StreamingTailStats", Slow)
    model, data = model_and_data
    start = time.perf_counter()
    res = measure_noise(
        model,
        get_loss("cross_entropy"),
        data.x_train[:200],
        data.y_train[:200],
        50,
        memory_budget_mb=0.001,
    )  # 4 chunks of one
    wall = time.perf_counter() - start
    assert 4 * 0.02 + 0.05 <= res.estimator_seconds <= res.seconds <= wall


def test_shuffled_order_indexes_on_the_data_device():
    """The permutation is moved to the data's device before indexing (a CUDA tensor rejects
    a CPU index): checked on meta tensors whose index_select records both devices."""
    from sgdtail.noise import minibatch_order

    seen = []

    class Recording(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func is torch.Tensor.index_select:
                seen.append((args[0].device.type, args[2].device.type))
            return super().__torch_function__(func, types, args, kwargs or {})

    x = torch.zeros(6, 2, device="meta").as_subclass(Recording)
    y = torch.zeros(6, device="meta").as_subclass(Recording)
    xs, ys = minibatch_order(x, y, "shuffled", seed=3)
    assert seen == [("meta", "meta"), ("meta", "meta")]
    assert xs.device.type == ys.device.type == "meta" and xs.shape == (6, 2)


# ------------------------------------------- measure_checkpoints


def _checkpoint_rows(model, loss_fn, x, y, options, base) -> tuple[list, list]:
    """What measure_checkpoints should write for one finite checkpoint and split (``base``:
    step, split, noise), from measure_noise with the same settings: estimate rows, norms."""
    res = measure_noise(
        model, loss_fn, x, y, 20, remainder="weight", memory_budget_mb=0.01,
        estimator_options=options,
    )  # fmt: skip
    assert res.passes == 2
    extra = {
        "n_minibatches": res.n_minibatches,
        "n_parameters": res.n_parameters,
        "gradient_norm": res.gradient_norm,
        "note": "",
    }
    rows = [{**base, **row, **extra} for row in res.rows]
    where = {"step": base["step"], "split": base["split"]}
    return rows, [{**where, "minibatch": p, "norm": float(v)} for p, v in enumerate(res.norms)]


def test_measure_checkpoints_rows_equal_measure_noise_and_skip_non_finite_weights(
    model_and_data, one_thread
):
    """Each checkpoint × split gives measure_noise's rows (with the remainder, budget and
    estimator options handed over) plus step, split, sizes, ‖ḡ‖ and an empty note; a
    checkpoint with a NaN weight gives one 'weights not finite' row per split and no norms."""
    import pandas as pd

    from sgdtail.noise import measure_checkpoints

    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    states = {}
    for step in (0, 5, 10):
        torch.manual_seed(10 + step)
        states[str(step)] = build_model("fcn", 12, 3, data.input_shape, 10).state_dict()
    first = next(iter(states["5"]))
    states["5"][first][0, 0] = float("nan")
    checkpoints = {"steps": torch.tensor([0, 5, 10]), "state_dicts": states}
    splits = {
        "train": (data.x_train[:230], data.y_train[:230]),  # 11 minibatches, 10 left
        "test": (data.x_test, data.y_test),
    }  # 3 minibatches
    options = {"hill_k": 7, "ci_groups": 3, "sweep_k1": [2, 4], "shuffled_sweep": False}

    def build():
        torch.manual_seed(99)
        return build_model("fcn", 12, 3, data.input_shape, 10)

    estimates, norms = measure_checkpoints(
        checkpoints,
        build,
        loss_fn,
        splits,
        20,
        remainder="weight",
        memory_budget_mb=0.01,
        estimator_options=options,
    )

    want_est, want_norms = [], []
    for step in (0, 5, 10):
        for split, (x, y) in splits.items():
            base = {"step": step, "split": split, "noise": "gradient"}
            if step == 5:
                want_est.append({**base, "estimator": "none", "note": "weights not finite"})
                continue
            model.load_state_dict(states[str(step)])
            rows, step_norms = _checkpoint_rows(model, loss_fn, x, y, options, base)
            want_est.extend(rows)
            want_norms.extend(step_norms)
    got = pd.DataFrame(estimates)
    assert got["seconds"].notna().sum() == len(got) - 2  # wall time: not compared
    want = pd.DataFrame(want_est)
    pd.testing.assert_frame_equal(
        got.drop(columns="seconds")[list(want.columns)], want, check_exact=True
    )
    assert list(got.columns) == list(want.columns[:-1]) + ["seconds", "note"]
    assert [r for r in estimates if r["step"] == 5] == [
        {
            "step": 5,
            "split": s,
            "noise": "gradient",
            "estimator": "none",
            "note": "weights not finite",
        }
        for s in ("train", "test")
    ]
    assert norms == want_norms
    assert [(r["step"], r["split"]) for r in norms].count((0, "train")) == 11
    assert [(r["step"], r["split"]) for r in norms].count((10, "test")) == 3
    assert {r["step"] for r in norms} == {0, 10}
    # the settings matter on this fixture (else the comparison could not tell them apart)
    model.load_state_dict(states["0"])
    x, y = splits["train"]
    dropped = measure_noise(
        model, loss_fn, x, y, 20, remainder="drop", memory_budget_mb=0.01, estimator_options=options
    )
    assert dropped.gradient_norm != pytest.approx(want_est[0]["gradient_norm"], rel=1e-3)
    default = measure_noise(model, loss_fn, x, y, 20, remainder="weight", memory_budget_mb=0.01)
    assert len(default.rows) != len(
        [r for r in want_est if (r["step"], r["split"]) == (0, "train")]
    )


# ------------------------------------------- blocked (bmm) minibatch gradients


def _biased_mlp() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 9), torch.nn.Tanh(), torch.nn.Linear(9, 10)
    ).eval()


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 5])  # 3: two forward passes a chunk
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
        torch.nn.Flatten(),
        torch.nn.Linear(64, 16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
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


@pytest.mark.parametrize(
    "make_model, shape", [(_dropout_mlp, (1, 8, 8)), (_tiny_alexnet, (1, 28, 28))]
)
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
    grads = torch.stack(
        [
            autograd_gradient(model, loss_fn, x[p * b : (p + 1) * b], y[p * b : (p + 1) * b])
            for p in range(len(x) // b)
        ]
    )
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


# --------------------------------------------------------------------------- restartable job
NOISE_OPTIONS = dict(
    remainder="drop", memory_budget_mb=64, estimator_options={"ci_groups": 4, "shuffle_seed": 0}
)


def _checkpoints_file(path) -> None:
    """checkpoints.pt of a small FCN: three different weight states (steps 0, 10, 20)."""
    from sgdtail import io

    states = {}
    for step in (0, 10, 20):
        torch.manual_seed(step)
        states[str(step)] = build_model("fcn", 8, 2, (1, 8, 8), 10).state_dict()
    io.save_torch(path, {"steps": torch.tensor([0, 10, 20]), "state_dicts": states})


def _measure_file(path, parts_dir, delay: float = 0.0):
    """measure_checkpoints on the checkpoints in ``path``, each measurement ``delay`` s slower."""
    from sgdtail import io

    if delay:
        original = noise.measure_noise

        def slow(*args, **kwargs):
            time.sleep(delay)
            return original(*args, **kwargs)

        noise.measure_noise = slow
    data = make_prepared(n_train=200, n_test=100)
    splits = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    return noise.measure_checkpoints(
        io.load_torch(path),
        lambda: build_model("fcn", 8, 2, (1, 8, 8), 10),
        get_loss("cross_entropy"),
        splits,
        20,
        parts_dir=parts_dir,
        **NOISE_OPTIONS,
    )


def test_killed_noise_job_keeps_finished_parts_and_completes_identically(
    tmp_path, monkeypatch, caplog
):
    import multiprocessing as mp
    import os
    import signal

    import pandas as pd

    ckpt = tmp_path / "checkpoints.pt"
    _checkpoints_file(ckpt)
    want_est, want_norms = _measure_file(ckpt, None)
    parts = tmp_path / "noise_parts"
    child = mp.get_context("spawn").Process(target=_measure_file, args=(ckpt, parts, 0.5))
    child.start()
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.pt"))) < 2:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    kept = len(list(parts.glob("*.pt")))
    assert 2 <= kept < 6, "the kill came too late (or too early) to test the restart"

    calls = []
    original = noise.measure_noise
    monkeypatch.setattr(
        noise, "measure_noise", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    with caplog.at_level("INFO", logger="sgdtail.noise"):
        got_est, got_norms = _measure_file(ckpt, parts)
    assert len(calls) == 6 - kept  # only what was missing is measured
    got, want = pd.DataFrame(got_est), pd.DataFrame(want_est)
    assert "seconds" in got and "seconds" in want  # wall time: the one column that may differ
    pd.testing.assert_frame_equal(
        got.drop(columns="seconds"), want.drop(columns="seconds"), check_exact=True
    )
    pd.testing.assert_frame_equal(
        pd.DataFrame(got_norms), pd.DataFrame(want_norms), check_exact=True
    )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert len(lines) == 6 and sum("kept from an earlier attempt" in ln for ln in lines) == kept
    assert lines[-1].startswith("progress: 6/6 checkpoint step 20, split test: ")
    assert "pooled alpha reference" in lines[0] and "zero fraction" in lines[0]
    # parts of other weights are not taken: a changed checkpoint is measured again
    from sgdtail import io

    calls.clear()
    other = tmp_path / "other.pt"
    content = io.load_torch(ckpt)
    content["state_dicts"]["0"] = {k: v + 1 for k, v in content["state_dicts"]["0"].items()}
    io.save_torch(other, content)
    _measure_file(other, parts)
    assert len(calls) == 2  # step 0 on both splits


def test_auto_budget_keeps_within_half_the_available_memory(monkeypatch) -> None:
    """noise.memory_budget_mb: auto takes what the job's mem_mb leaves, at most half the
    memory available when the job starts (a local machine may have less), at least 16 MB."""
    monkeypatch.setattr(noise, "available_memory_mb", lambda: 8000.0)
    assert noise.auto_budget_mb(1530) == 1530
    assert noise.auto_budget_mb(6000) == 4000
    monkeypatch.setattr(noise, "available_memory_mb", lambda: 10.0)
    assert noise.auto_budget_mb(1530) == 16
    monkeypatch.undo()
    assert 0 < noise.available_memory_mb() < float("inf")


def test_noise_parts_are_taken_only_for_the_same_data_code_and_settings(tmp_path, monkeypatch):
    """A part is reused for the same weights, split data, code and estimator settings, whatever
    the gradient budget (a retry doubles it); other data, other code or an unreadable part
    (cut short by a kill) are measured again."""
    ckpt = tmp_path / "checkpoints.pt"
    _checkpoints_file(ckpt)
    parts = tmp_path / "noise_parts"
    _measure_file(ckpt, parts)
    calls = []
    original = noise.measure_noise
    monkeypatch.setattr(
        noise, "measure_noise", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    # a budget that needs two passes leaves the parts' key alone: they are reused
    monkeypatch.setitem(NOISE_OPTIONS, "memory_budget_mb", 1)
    _measure_file(ckpt, parts)
    assert calls == []
    monkeypatch.setattr(noise, "_code_digest", lambda: "other code")
    _measure_file(ckpt, parts)
    assert len(calls) == 6
    calls.clear()
    first = sorted(parts.glob("*.pt"))[0]
    first.write_bytes(first.read_bytes()[:100])  # a file cut short
    _measure_file(ckpt, parts)
    assert len(calls) == 1
    calls.clear()
    data = make_prepared(n_train=200, n_test=100)
    shifted = {"train": (data.x_train + 1, data.y_train), "test": (data.x_test, data.y_test)}
    from sgdtail import io

    noise.measure_checkpoints(
        io.load_torch(ckpt),
        lambda: build_model("fcn", 8, 2, (1, 8, 8), 10),
        get_loss("cross_entropy"),
        shifted,
        20,
        parts_dir=parts,
        **NOISE_OPTIONS,
    )
    assert len(calls) == 3  # the training split's three checkpoints


def _progress_rows() -> list[dict]:
    """Estimate rows as a measurement returns them, a layer's before the pooled ones."""
    return [
        {"estimator": "mohammadi_robust", "scope": "fc1.weight", "order": "natural",
         "alpha": 1.9, "zero_fraction": 0.5},
        {"estimator": "mohammadi_reference", "scope": "pooled", "order": "natural",
         "alpha": 1.25, "zero_fraction": 0.125},
        {"estimator": "block_sweep", "scope": "pooled", "order": "shuffled", "alpha": 0.75},
        {"estimator": "mohammadi_robust", "scope": "pooled", "order": "natural",
         "alpha": 1.5, "zero_fraction": 0.125},
    ]  # fmt: skip


def test_progress_line_names_the_pooled_estimates_and_the_zero_fraction(caplog) -> None:
    """One line per checkpoint × split: its place, seconds (or kept), the pooled natural-order
    reference and robust α̂ and the pooled zero fraction, whatever the rows' order."""
    with caplog.at_level("INFO", logger="sgdtail.noise"):
        noise._report(2, 6, 40, "test", _progress_rows(), 1.234, False)
        noise._report(3, 6, 40, "train", _progress_rows()[:1], 0.0, True)
    first, second = (r.getMessage() for r in caplog.records)
    assert first == (
        "progress: 2/6 checkpoint step 40, split test: 1.23 s; pooled alpha reference 1.25, "
        "robust 1.5; zero fraction 0.125"
    )
    assert second == (
        "progress: 3/6 checkpoint step 40, split train: kept from an earlier attempt; "
        "pooled alpha reference nan, robust nan; zero fraction nan"
    )


def test_available_memory_from_psutil_then_proc_meminfo_then_unknown(monkeypatch) -> None:
    """MB available: psutil's figure; without psutil, MemAvailable of /proc/meminfo (kB);
    when neither can be read, inf (no limit known)."""
    import builtins
    import io
    import sys
    from types import SimpleNamespace

    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=3 * 2**20))
    assert noise.available_memory_mb() == 3.0
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    real_open = builtins.open
    meminfo = "MemTotal:       8192 kB\nMemFree:   1024 kB\nMemAvailable:    2048 kB\n"

    def fake_open(path, *args, **kwargs):
        if path == "/proc/meminfo":
            return io.StringIO(meminfo)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert noise.available_memory_mb() == 2.0

    def no_proc(path, *args, **kwargs):
        if path == "/proc/meminfo":
            raise OSError("no /proc here")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert noise.available_memory_mb() == float("inf")


def test_noise_job_that_dies_midway_resumes_from_its_parts_in_process(
    tmp_path, monkeypatch, caplog
) -> None:
    """The fourth measurement fails (as a killed job would stop): the three finished parts
    are on disk, named by step and split; the rerun measures only the other three, says
    which parts it kept, and its tables equal an uninterrupted job's (bit for bit, apart from
    the wall time). Parts of other weights are not taken."""
    import pandas as pd

    from sgdtail import io

    ckpt = tmp_path / "checkpoints.pt"
    _checkpoints_file(ckpt)
    want_est, want_norms = _measure_file(ckpt, None)
    parts = tmp_path / "results" / "run" / "noise_parts"  # its parents made as needed
    original, calls = noise.measure_noise, []

    def dies_at_the_fourth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(noise, "measure_noise", dies_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        _measure_file(ckpt, parts)
    names = ["step0_test.pt", "step0_train.pt", "step10_train.pt"]
    assert sorted(p.name for p in parts.glob("*.pt")) == names
    calls.clear()
    counted = lambda *a, **k: calls.append(1) or original(*a, **k)  # noqa: E731
    monkeypatch.setattr(noise, "measure_noise", counted)
    with caplog.at_level("INFO", logger="sgdtail.noise"):
        got_est, got_norms = _measure_file(ckpt, parts)
    assert len(calls) == 3
    got, want = pd.DataFrame(got_est), pd.DataFrame(want_est)
    pd.testing.assert_frame_equal(
        got.drop(columns="seconds"), want.drop(columns="seconds"), check_exact=True
    )
    pd.testing.assert_frame_equal(pd.DataFrame(got_norms), pd.DataFrame(want_norms))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    kept = [ln.split(":")[1].strip() for ln in lines if "kept from an earlier attempt" in ln]
    assert kept == ["1/6 checkpoint step 0, split train", "2/6 checkpoint step 0, split test",
                    "3/6 checkpoint step 10, split train"]  # fmt: skip
    saved = io.load_torch(parts / "step10_train.pt")
    assert set(saved) == {"estimates", "norms", "seconds", "key"} and len(saved["key"]) > 64
    calls.clear()
    content = io.load_torch(ckpt)
    content["state_dicts"]["10"] = {k: v * 2 for k, v in content["state_dicts"]["10"].items()}
    other = tmp_path / "other.pt"
    io.save_torch(other, content)
    _measure_file(other, parts)
    assert len(calls) == 2  # step 10 on both splits: other weights


def test_estimator_options_come_from_the_estimators_section() -> None:
    """The estimators section's keys, renamed to StreamingTailStats's arguments (factors as a
    tuple); keys the streamed estimators do not take are left out."""
    from sgdtail.estimators import StreamingTailStats

    section = {
        "exclude_zeros": False,
        "robust_k1_factors": [0.5, 1.0, 2.0],
        "ci_groups": 10,
        "ci_level": 0.9,
        "shuffle_seed": 3,
        "min_pooled_values": 100,
    }
    options = noise.estimator_options(section)
    assert options == {
        "exclude_zeros": False,
        "robust_factors": (0.5, 1.0, 2.0),
        "ci_groups": 10,
        "ci_level": 0.9,
        "shuffle_seed": 3,
    }
    stats = StreamingTailStats(4, 50, [], **options)
    assert (stats.exclude_zeros, stats.factors, stats.ci_level) == (False, (0.5, 1.0, 2.0), 0.9)


def test_part_keys_follow_the_settings_not_their_order_and_the_labels_too(tmp_path, caplog):
    """A part's key: the same for settings that differ only in key order, different for other
    values (any JSON-unfriendly value written as text); a split's digest covers its labels;
    an unreadable part file is named in a warning and measured again."""
    from pathlib import Path

    state = {"w": torch.arange(6.0)}
    one = noise._state_key(state, {"a": 1, "b": {"c": 2, "d": 3}})
    assert one == noise._state_key(state, {"b": {"d": 3, "c": 2}, "a": 1})
    assert one != noise._state_key(state, {"a": 1, "b": {"c": 2, "d": 4}})
    assert noise._state_key(state, {"p": Path("x")}) != noise._state_key(state, {"p": Path("y")})
    x, y = torch.zeros(4, 3), torch.tensor([0, 1, 2, 3])
    parts = noise._Parts(tmp_path / "parts", {"train": (x, y)}, {})
    relabelled = noise._Parts(tmp_path / "parts", {"train": (x, y.flip(0))}, {})
    assert parts.keys(state)["train"] != relabelled.keys(state)["train"]
    bad = tmp_path / "parts" / "step5_train.pt"
    bad.write_bytes(b"not a torch file")
    with caplog.at_level("WARNING", logger="sgdtail.noise"):
        assert parts.load(5, "train", parts.keys(state)["train"]) is None
    assert caplog.records[-1].getMessage() == (
        f"noise part {bad} cannot be read: measuring it again"
    )


def _adam_checkpoints(bump: float = 1.0) -> dict:
    """checkpoints.pt content of an Adam run: the same FCN weights at steps 0 and 10, with
    no optimizer state at step 0 and one Adam step's state at step 10 (its second moments
    scaled by ``bump``); a NaN weight at step 20."""
    from sgdtail.optim import cpu_state

    torch.manual_seed(0)
    model = build_model("fcn", 8, 2, (1, 8, 8), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh = cpu_state(opt)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    state = cpu_state(opt)
    for moments in state["state"].values():
        moments["exp_avg_sq"] *= bump
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    broken = {k: v.clone() for k, v in weights.items()}
    next(iter(broken.values()))[0, 0] = float("nan")
    return {
        "steps": torch.tensor([0, 10, 20]),
        "state_dicts": {"0": weights, "10": weights, "20": broken},
        "optimizer": "adam",
        "optimizer_states": {"0": fresh, "10": state, "20": state},
    }


def test_adaptive_checkpoints_say_why_a_preconditioned_estimate_is_missing(
    tmp_path, monkeypatch, caplog
):
    """For an adaptive optimizer, a checkpoint before its first step (no second moments) and
    one whose weights are not finite each get one preconditioned row saying so (a skipped
    measurement is logged as taking no time); the parts' key covers the preconditioner, so
    the same weights with another optimizer state are measured again."""
    data = make_prepared(n_train=200, n_test=100)
    splits = {"train": (data.x_train, data.y_train)}

    def measure(checkpoints):
        return noise.measure_checkpoints(
            checkpoints,
            lambda: build_model("fcn", 8, 2, (1, 8, 8), 10),
            get_loss("cross_entropy"),
            splits,
            20,
            parts_dir=tmp_path / "parts",
            **NOISE_OPTIONS,
        )[0]

    with caplog.at_level("INFO", logger="sgdtail.noise"):
        rows = measure(_adam_checkpoints())
    skipped = [r.getMessage() for r in caplog.records if "checkpoint step 20," in r.getMessage()]
    assert [m.split(";")[0] for m in skipped] == [
        "progress: 3/3 checkpoint step 20, split train: 0.00 s"
    ]
    missing = [r for r in rows if r["estimator"] == "none"]
    base = {"split": "train", "estimator": "none"}
    assert missing == [
        {"step": 0, **base, "noise": "preconditioned",
         "note": "no optimizer state before the optimizer's first step"},
        {"step": 20, **base, "noise": "gradient", "note": "weights not finite"},
        {"step": 20, **base, "noise": "preconditioned", "note": "weights not finite"},
    ]  # fmt: skip
    step10 = [r for r in rows if r["step"] == 10 and r["noise"] == "preconditioned"]
    assert step10 and all(r["estimator"] != "none" for r in step10)
    calls, original = [], noise.measure_noise
    monkeypatch.setattr(
        noise, "measure_noise", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    measure(_adam_checkpoints())
    assert calls == []  # every part kept
    measure(_adam_checkpoints(bump=4.0))
    assert len(calls) == 1  # step 10: same weights, another preconditioner


@pytest.mark.parametrize("contiguous", [True, False])
def test_center_forms_the_noise_in_place_and_its_float64_norms(contiguous: bool, monkeypatch):
    """U_p = g_p − ḡ replaces each row in place, on the compiled path (a contiguous CPU
    chunk: it runs there) and the torch path (here a strided one) alike, and the norms are
    ‖U_p‖₂ with the squares added in float64: to 1e-12 of numpy's float64 norm of the same
    rows."""
    from sgdtail import kernels

    passes = []
    center_rows = kernels.center_rows
    monkeypatch.setattr(kernels, "center_rows", lambda *a: passes.append(1) or center_rows(*a))
    gen = torch.Generator().manual_seed(5)
    wide = torch.randn(6, 2 * 3001, generator=gen) * torch.logspace(-3, 3, 2 * 3001)
    g = wide[:, :3001].contiguous() if contiguous else wide[:, ::2]
    gbar = torch.randn(3001, generator=gen)
    want = (g - gbar).double()
    norms = torch.full((8,), -1.0, dtype=torch.float64)
    u = noise._center(g, gbar, norms[1:7])
    assert u.data_ptr() == g.data_ptr() and u.is_contiguous() == contiguous
    assert torch.equal(g.double(), want)
    torch.testing.assert_close(norms[1:7], want.norm(dim=1), rtol=1e-12, atol=0)
    assert norms[0] == -1.0 and norms[7] == -1.0  # only its own rows' slots are written
    assert passes == ([1] if contiguous else [])


def test_estimates_on_the_device_path_equal_the_host_engine(model_and_data, monkeypatch):
    """The estimators' torch path (what a GPU runs; here on the CPU) and the compiled host
    engine give the same rows for the same measurement, preconditioned noise included; data
    on the CPU are estimated on the host unless the options name a device."""
    model, data = model_and_data
    loss_fn = get_loss("cross_entropy")
    divisor = torch.rand(sum(p.numel() for p in model.parameters())) + 0.5
    args = (model, loss_fn, data.x_train, data.y_train, 5)
    scans = []
    scan = torch_kernels.scan
    monkeypatch.setattr(torch_kernels, "scan", lambda *a: scans.append(1) or scan(*a))
    host = measure_noise(*args, divisor=divisor)
    assert not scans
    device = measure_noise(*args, divisor=divisor, estimator_options={"device": "cpu"})
    assert scans
    for got, want in [
        (device.rows, host.rows),
        (device.preconditioned_rows, host.preconditioned_rows),
    ]:
        assert len(got) == len(want) > 20
        for a, b in zip(got, want, strict=True):
            assert {k: v for k, v in a.items() if not isinstance(v, float)} == {
                k: v for k, v in b.items() if not isinstance(v, float)
            }
            floats = [k for k, v in b.items() if isinstance(v, float)]
            assert [a[k] for k in floats] == pytest.approx(
                [b[k] for k in floats], rel=1e-9, nan_ok=True
            )


def test_center_refuses_shapes_that_do_not_match() -> None:
    """The compiled pass does not check bounds: a ḡ or norms of the wrong length is refused
    before it runs."""
    g = torch.zeros(4, 10)
    with pytest.raises(ValueError, match=r"need ḡ \(10,\) and norms \(4,\); got \(9,\) and \(4,\)"):
        noise._center(g, torch.zeros(9), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"got \(10,\) and \(3,\)"):
        noise._center(g, torch.zeros(10), torch.zeros(3, dtype=torch.float64))
