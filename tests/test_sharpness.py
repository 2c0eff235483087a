"""Tests of sgdtail.sharpness: the top Hessian eigenvalue by Lanczos, random-direction sharpness,
the gradient against the minibatch noise, the minimum filter and the within-family C6 verdict."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from sgdtail import sharpness as S
from sgdtail.claims import EXTERNAL_KEYS
from sgdtail.grid import AXES


class Quadratic(nn.Module):
    """A 'model' whose output is its parameter vector: loss 0.5 wᵀAw is quadratic in w."""

    def __init__(self, w0: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w0.clone())
        self.drop = nn.Dropout(0.5)  # must be inactive during the measurements

    def forward(self, x):  # x is unused on purpose
        return self.drop(self.w)


def quad_loss(out, a):
    return 0.5 * out @ a @ out


def _spd(eigs, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    return torch.tensor(q @ np.diag(eigs) @ q.T, dtype=torch.float64)


# --------------------------------------------------------------------------- measurements
def test_top_eigenvalue_of_quadratic_loss():
    a = _spd([5.0, 2.0, 1.0, 0.5, 0.1])
    model = Quadratic(torch.ones(5, dtype=torch.float64)).train()
    eig = S.top_hessian_eigenvalue(model, quad_loss, torch.zeros(1), a, max_products=200, tol=1e-8)
    assert eig["eigenvalue"] == pytest.approx(5.0, rel=1e-8)
    assert eig["converged"] and eig["products"] < 200 and eig["relative_residual"] <= 1e-8
    assert model.training  # mode restored


@pytest.mark.parametrize(
    "eigs",
    [
        [3.0, 1.0, 0.2, -0.5, -8.0, -7.5, -6.0],  # the most negative one dominates in magnitude
        [2.0, 0.1],  # two parameters: too few for ARPACK, solved densely
        [-4.0, -1.0, -0.5],  # a maximum: the top eigenvalue is negative
    ],
)
def test_top_eigenvalue_is_the_largest_not_the_largest_in_magnitude(eigs):
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((len(eigs), len(eigs))))
    a = torch.tensor(q @ np.diag(eigs) @ q.T, dtype=torch.float64)
    model = Quadratic(torch.ones(len(eigs), dtype=torch.float64))
    eig = S.top_hessian_eigenvalue(model, quad_loss, torch.zeros(1), a, tol=1e-8)
    assert eig["converged"] and eig["eigenvalue"] == pytest.approx(max(eigs), rel=1e-7)


def _dense_hessian(net, loss_fn, x, y):
    """The Hessian of the mean loss in the flattened parameters, by torch.autograd.functional."""
    from torch.func import functional_call

    named = [(n, p.shape) for n, p in net.named_parameters()]

    def loss_of(flat):
        params, i = {}, 0
        for name, shape in named:
            k = math.prod(shape)
            params[name] = flat[i : i + k].view(shape)
            i += k
        return loss_fn(functional_call(net, params, (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    return torch.autograd.functional.hessian(loss_of, flat).numpy()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_lanczos_agrees_with_a_dense_eigendecomposition_on_a_small_net(sign):
    # sign -1 (a loss to maximise): the most negative eigenvalue outweighs the largest one,
    # where power iteration would return the negative one
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x, y = torch.randn(30, 3, dtype=torch.float64), torch.randn(30, 2, dtype=torch.float64)

    def loss(out, target):
        return sign * nn.functional.mse_loss(out, target)

    evals = np.linalg.eigvalsh(_dense_hessian(net, loss, x, y))
    if sign < 0:
        assert -evals[0] > 2 * evals[-1] > 0
    eig = S.top_hessian_eigenvalue(net, loss, x, y, tol=1e-8)
    assert eig["converged"] and eig["eigenvalue"] == pytest.approx(evals[-1], rel=1e-7)
    assert 0 < eig["products"] <= 200 and eig["relative_residual"] <= 1e-8


def test_lanczos_convergence_flag_and_budget():
    # 300 evenly spaced eigenvalues in [1, 5]: the top one is poorly separated, so 50 products
    # cannot reach tol = 1e-6; the solve stops at the budget and says so, NaN for λ_max
    a = torch.diag(torch.linspace(1.0, 5.0, 300, dtype=torch.float64))
    model = Quadratic(torch.ones(300, dtype=torch.float64))
    short = S.top_hessian_eigenvalue(model, quad_loss, torch.zeros(1), a, max_products=50, tol=1e-6)
    assert not short["converged"] and short["products"] == 50
    assert math.isnan(short["eigenvalue"]) and math.isnan(short["relative_residual"])
    long = S.top_hessian_eigenvalue(
        model, quad_loss, torch.zeros(1), a, max_products=1000, tol=1e-6
    )
    assert long["converged"] and 50 < long["products"] < 1000
    assert abs(long["eigenvalue"] - 5.0) <= 1e-6 * 5.0
    again = S.top_hessian_eigenvalue(
        model, quad_loss, torch.zeros(1), a, max_products=1000, tol=1e-6
    )
    assert again == long  # the seeded start vector makes the solve reproducible
    with pytest.raises(ValueError, match="tol"):
        S.top_hessian_eigenvalue(model, quad_loss, torch.zeros(1), a, tol=0.0)
    with pytest.raises(ValueError, match="max_products"):
        S.top_hessian_eigenvalue(model, quad_loss, torch.zeros(1), a, max_products=0)


def test_top_eigenvalue_of_linear_regression():
    torch.manual_seed(0)
    x = torch.randn(200, 6, dtype=torch.float64) * torch.tensor(
        [3.0, 1, 1, 1, 1, 0.5], dtype=torch.float64
    )
    y = torch.randn(200, 1, dtype=torch.float64)
    model = nn.Linear(6, 1, bias=False).double()
    eig = S.top_hessian_eigenvalue(model, nn.MSELoss(), x, y, max_products=300, tol=1e-8)
    expected = np.linalg.eigvalsh((2 * x.T @ x / 200).numpy()).max()  # Hessian of mean sq. err.
    assert eig["converged"] and eig["eigenvalue"] == pytest.approx(expected, rel=1e-6)


def test_top_eigenvalue_rejects_non_scalar_loss():
    model = Quadratic(torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="scalar"):
        S.top_hessian_eigenvalue(model, lambda out, _y: out * 2, torch.zeros(1), None)


def test_random_direction_sharpness_exact_for_quadratic():
    a = _spd([4.0, 1.0, 0.25], seed=1)
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    model = Quadratic(w0).train()
    r, seed, n = 0.1, 3, 4
    got = S.random_direction_sharpness(
        model, quad_loss, torch.zeros(1), a, n_dirs=n, radius=r, seed=seed
    )
    gen = torch.Generator().manual_seed(seed)
    want = []
    for _ in range(n):
        d = torch.randn(3, generator=gen, dtype=torch.float64)
        d = d * w0.norm() / d.norm()  # 1-D parameter: scaled to the parameter's norm
        want.append(0.5 * r**2 * float(d @ a @ d))  # two-sided average cancels the gradient
    assert got == pytest.approx(np.mean(want), rel=1e-9)
    assert torch.equal(model.w.detach(), w0) and model.training  # restored
    sharper = S.random_direction_sharpness(
        model, lambda o, m: quad_loss(o, 2 * m), torch.zeros(1), a, n_dirs=n, radius=r, seed=seed
    )
    assert sharper == pytest.approx(2 * got, rel=1e-9)
    # a maximum (negative-definite Hessian) reads negative: not a minimum
    assert (
        S.random_direction_sharpness(
            model, lambda o, m: -quad_loss(o, m), torch.zeros(1), a, n_dirs=n, radius=r, seed=seed
        )
        < 0
    )


def test_random_direction_sharpness_filter_normalised_on_a_net():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    before = [p.detach().clone() for p in net.parameters()]
    s1 = S.random_direction_sharpness(net, nn.CrossEntropyLoss(), x, y, n_dirs=3, seed=0)
    # scaling a ReLU layer up and the next down leaves the function and the measure unchanged
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[0].bias.mul_(4.0)
        net[2].weight.div_(4.0)
    s2 = S.random_direction_sharpness(net, nn.CrossEntropyLoss(), x, y, n_dirs=3, seed=0)
    assert s1 == pytest.approx(s2, rel=1e-4)
    with torch.no_grad():
        net[0].weight.div_(4.0)
        net[0].bias.div_(4.0)
        net[2].weight.mul_(4.0)
    for p, q in zip(net.parameters(), before, strict=True):
        torch.testing.assert_close(p, q)


def _regression(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    y = y + 0.3 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    model = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    return model, x, y


def test_gradient_to_noise_against_hand_computed_minibatch_gradients():
    model, x, y = _regression()
    got = S.gradient_to_noise(model, nn.MSELoss(), x, y, batch_size=10)
    w = model.weight.detach().T
    gs = [
        (2 * xb.T @ (xb @ w - yb) / 10).ravel()
        for xb, yb in zip(x.split(10), y.split(10), strict=True)
    ]
    gs = torch.stack(gs).numpy()
    gbar = gs.mean(axis=0)
    noise = math.sqrt(((gs - gbar) ** 2).sum() / 3)
    assert got["minibatch"] == 10 and got["examples"] == 40
    assert got["gradient_norm"] == pytest.approx(np.linalg.norm(gbar), rel=1e-10)
    assert got["noise_norm"] == pytest.approx(noise, rel=1e-10)
    assert got["ratio"] == pytest.approx(np.linalg.norm(gbar) / noise, rel=1e-10)
    # a batch larger than half the subset: two minibatches of 20, noise scaled by √(20/80)
    big = S.gradient_to_noise(model, nn.MSELoss(), x, y, batch_size=80)
    halves = S.gradient_to_noise(model, nn.MSELoss(), x, y, batch_size=20)
    assert big["minibatch"] == 20
    assert big["noise_norm"] == pytest.approx(halves["noise_norm"] * 0.5, rel=1e-10)


def test_gradient_to_noise_small_at_the_minimum_large_far_from_it():
    model, x, y = _regression()
    far = S.gradient_to_noise(model, nn.MSELoss(), x, y, batch_size=10)
    assert far["ratio"] > 1  # weights at 0: the drift dominates the noise
    w_star = torch.linalg.lstsq(x, y).solution
    with torch.no_grad():
        model.weight.copy_(w_star.T)
    at_min = S.gradient_to_noise(model, nn.MSELoss(), x, y, batch_size=10)
    assert at_min["ratio"] < 1e-6 and at_min["noise_norm"] > 0


# --------------------------------------------------------------------------- minimum filter
GOOD = dict(
    status="completed",
    finite_weights=True,
    alpha_robust=1.5,
    hessian_converged=True,
    gradient_to_noise=0.4,
    random_direction_sharpness=1e-3,
    top_hessian_eigenvalue=5.0,
)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({}, ""),
        ({"status": "converged"}, ""),
        ({"status": "diverged"}, "not trained (status diverged)"),
        ({"status": "not_trained"}, "not trained (status not_trained)"),
        ({"status": float("nan")}, "not trained"),
        ({"finite_weights": False}, "non-finite weights"),
        ({"alpha_robust": float("nan")}, "no alpha estimate"),
        ({"hessian_converged": False}, "Lanczos (λ_max) not converged"),
        ({"hessian_converged": float("nan")}, "Lanczos (λ_max) not converged"),
        ({"gradient_to_noise": 1.5}, "gradient not small"),
        ({"gradient_to_noise": float("inf")}, "gradient not small"),
        ({"random_direction_sharpness": -0.0013}, "negative random-direction sharpness"),
        ({"top_hessian_eigenvalue": -2.0}, "non-positive top Hessian eigenvalue"),
        ({"top_hessian_eigenvalue": float("nan")}, "non-positive top Hessian eigenvalue"),
    ],
)
def test_minimum_filter(change, reason):
    got = S.exclusion_reason({**GOOD, **change}, max_gradient_to_noise=1.0)
    assert got.startswith(reason) and bool(got) == bool(reason)


def test_table_joins_status_alpha_and_family():
    axes = dict(
        dataset="mnist",
        arch="fcn",
        width=16,
        depth=2,
        batch_size=500,
        lr=0.1,
        loss="cross_entropy",
        seed=0,
        optimizer="sgd",
    )
    summary = pd.DataFrame(
        [
            {
                **axes,
                "step": s,
                "split": sp,
                "status": "diverged",
                "alpha_robust": a,
                "alpha_reference": a,
                "alpha_per_coordinate_median": a,
            }
            for s, sp, a in ((0, "train", 1.9), (400, "train", 1.4), (400, "test", 1.6))
        ]
    )
    df = S.sharpness_vs_alpha_table([{**axes, "step": 400, "finite_weights": True}], summary)
    row = df.iloc[0]
    assert row["family"] == "mnist/fcn/cross_entropy/lr0.1" and row["status"] == "diverged"
    assert row["alpha_robust"] == 1.4 and np.isnan(row["random_direction_sharpness"])
    assert S.exclusion_reasons(df, 1.0).iloc[0] == "not trained (status diverged)"


# --------------------------------------------------------------------------- statistic
def test_within_family_spearman_is_a_weighted_mean_of_family_rhos():
    rng = np.random.default_rng(0)
    sizes = {"a": 12, "b": 5, "c": 4, "tiny": 2}
    fam = np.concatenate([[f] * n for f, n in sizes.items()])
    x = rng.standard_normal(fam.size)
    y = x + rng.standard_normal(fam.size)
    res = S.within_family_spearman(x, y, fam, min_family_runs=3)
    rhos = {f: stats.spearmanr(x[fam == f], y[fam == f]).statistic for f in "abc"}
    w = {f: (sizes[f] ** 2 - 1) / sizes[f] for f in "abc"}
    want = sum(w[f] * rhos[f] for f in "abc") / sum(w.values())
    assert res["rho"] == pytest.approx(want, rel=1e-12)
    assert {f["family"]: f["rho"] for f in res["families"]} == pytest.approx(rhos)
    assert res["n"] == 21 and res["skipped"] == [dict(family="tiny", n=2)]
    assert res["ci_low"] < res["rho"] < res["ci_high"]
    one = S.within_family_spearman(x[:12], y[:12], fam[:12])
    assert one["rho"] == pytest.approx(rhos["a"], rel=1e-12)  # one family: Spearman's ρ


def test_pooling_gives_the_wrong_sign_within_families_the_right_one():
    # two families (say FCN/MNIST and AlexNet/CIFAR): within each, sharpness rises with α;
    # but the family with the larger α has much flatter end points, so the pooled ρ is negative
    rng = np.random.default_rng(1)
    a1, a2 = rng.uniform(1.0, 1.3, 12), rng.uniform(1.7, 2.0, 12)
    s1 = 10.0 * np.exp(2 * a1 + rng.normal(0, 0.05, 12))
    s2 = 0.1 * np.exp(2 * a2 + rng.normal(0, 0.05, 12))
    alpha, sharp = np.concatenate([a1, a2]), np.concatenate([s1, s2])
    fam = np.array(["fcn"] * 12 + ["alexnet"] * 12)
    assert stats.spearmanr(alpha, sharp).statistic < -0.5
    res = S.within_family_spearman(alpha, sharp, fam)
    assert res["ci_low"] > 0.5
    assert S.claim_c6_verdict(res, T6)["verdict"] == "supported"
    pooled = S.within_family_spearman(alpha, sharp, np.array(["all"] * 24))
    assert S.claim_c6_verdict(pooled, T6)["verdict"] == "not supported"


def test_within_family_spearman_without_usable_families():
    res = S.within_family_spearman([1.0, 2.0, np.nan], [1.0, 2.0, 3.0], ["a", "a", "a"])
    assert res["n"] == 0 and np.isnan(res["rho"]) and np.isnan(res["ci_low"])
    assert res["skipped"] == [dict(family="a", n=2)]
    with pytest.raises(ValueError, match="differ in length"):
        S.within_family_spearman([1, 2, 3], [1, 2, 3], ["a", "a"])


T6 = dict(min_rho=0.0, min_runs=8, min_family_runs=3, max_gradient_to_noise=1.0)


@pytest.mark.parametrize(
    "res, verdict",
    [
        (dict(rho=0.8, ci_low=0.5, ci_high=0.95, n=20), "supported"),
        (dict(rho=-0.6, ci_low=-0.85, ci_high=-0.2, n=20), "not supported"),
        (dict(rho=0.2, ci_low=-0.3, ci_high=0.6, n=20), "inconclusive (CI straddles"),
        (dict(rho=0.9, ci_low=0.6, ci_high=0.99, n=5), "inconclusive (fewer than 8"),
        (
            dict(rho=float("nan"), ci_low=float("nan"), ci_high=float("nan"), n=20),
            "inconclusive (correlation",
        ),
    ],
)
def test_c6_verdicts(res, verdict):
    v = S.claim_c6_verdict(res, T6)
    assert v["verdict"].startswith(verdict), v


def test_c6_verdict_too_weak_and_missing_thresholds():
    weak = S.claim_c6_verdict(
        dict(rho=0.02, ci_low=-0.1, ci_high=0.15, n=200), {**T6, "min_rho": 0.3}
    )
    assert weak["verdict"] == "not supported" and "too weak" in weak["reason"]
    with pytest.raises(KeyError, match="min_runs"):
        S.claim_c6_verdict(dict(rho=0.1, ci_low=0, ci_high=0.2, n=10), {"min_rho": 0.3})


def synthetic_runs(slope: float, seed: int = 0, noise: float = 0.1) -> pd.DataFrame:
    """Two families of 10 runs (sharpness ∝ exp(slope·α) within each, opposite family offsets),
    a family of 1 run, and end points that must be excluded."""
    rng = np.random.default_rng(seed)
    rows = []
    for fam, lo, scale, n in (
        ("mnist/fcn/cross_entropy/lr0.1", 1.0, 10.0, 10),
        ("cifar10/alexnet/cross_entropy/lr0.1", 1.6, 0.01, 10),
        ("mnist/fcn/cross_entropy/lr0.02", 1.3, 1.0, 1),
    ):
        for a in rng.uniform(lo, lo + 0.4, n):
            sharp = scale * math.exp(slope * a + rng.normal(0, noise))
            rows.append(
                dict(
                    family=fam,
                    alpha_robust=a,
                    random_direction_sharpness=sharp,
                    top_hessian_eigenvalue=1e3 * sharp,
                    excluded="",
                )
            )
    rows += [
        dict(
            family="cifar10/alexnet/cross_entropy/lr0.1",
            alpha_robust=1.2,
            random_direction_sharpness=-0.0013,
            top_hessian_eigenvalue=3.0,
            excluded="negative random-direction sharpness",
        ),
        dict(
            family="mnist/fcn/cross_entropy/lr0.1",
            alpha_robust=1.9,
            random_direction_sharpness=np.nan,
            top_hessian_eigenvalue=np.nan,
            excluded="not trained (status diverged)",
        ),
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "slope, noise, verdict",
    [
        (3.0, 0.1, "supported"),  # the claim is true: flatter end points with smaller α
        (-3.0, 0.1, "not supported"),  # false: sharper with smaller α
        (0.0, 1.0, "inconclusive (CI straddles"),  # no relation: undecidable at 20 runs
    ],
)
def test_claim_c6_end_to_end(slope, noise, verdict):
    claim, results = S.claim_c6(synthetic_runs(slope, noise=noise), T6)
    assert claim["verdict"].startswith(verdict), claim
    assert set(claim) == set(EXTERNAL_KEYS)  # the keys the claims table reads
    json.loads(json.dumps(claim))  # what the claims table reads
    primary = results["random_direction_sharpness"]
    assert claim["value"] == primary["rho"] and primary["n"] == 20
    assert claim["claim"] == "C6" and "smaller alpha" in claim["statistic"]
    d = claim["detail"]
    assert "2 of 23 runs excluded" in d and "1 negative random-direction sharpness" in d
    assert "1 not trained (status diverged)" in d and "mnist/fcn/cross_entropy/lr0.02 n = 1" in d
    assert "within-family centred ranks" in d and "top Hessian eigenvalue" in d
    assert "'faster than Brownian theory predicts' is not tested" in d


def test_plot_sharpness_vs_alpha(tmp_path):
    df = synthetic_runs(3.0)
    _, results = S.claim_c6(df, T6)
    pdf, png = str(tmp_path / "s.pdf"), str(tmp_path / "s.png")
    S.plot_sharpness_vs_alpha(df, results, pdf, png)
    for path in (pdf, png):
        with open(path, "rb") as fh:
            assert len(fh.read()) > 5000


def test_family_is_data_set_architecture_loss_learning_rate_and_optimizer():
    """Comparable runs (one C6 family) share data set, architecture, loss, learning rate and
    optimizer; width, depth, batch size and seed vary within a family. Plain SGD's family
    names are those before the optimizer axis (a record without an optimizer is plain SGD)."""
    assert S.C6_FAMILY_AXES == ("dataset", "arch", "loss", "lr", "optimizer")
    assert set(S.C6_FAMILY_AXES) <= set(AXES)
    base = dict(
        dataset="mnist",
        arch="fcn",
        width=16,
        depth=2,
        batch_size=500,
        lr=0.1,
        loss="cross_entropy",
        seed=0,
    )
    within = [
        dict(base, width=64),
        dict(base, depth=5),
        dict(base, batch_size=50),
        dict(base, seed=2),
    ]
    assert {S.family_name(r) for r in [base, *within]} == {"mnist/fcn/cross_entropy/lr0.1"}
    for axis, value in dict(
        dataset="cifar10", arch="alexnet", loss="hinge", lr=0.02, optimizer="adam"
    ).items():
        assert S.family_name({**base, axis: value}) != S.family_name(base), axis
    assert S.family_name({**base, "optimizer": "sgd"}) == "mnist/fcn/cross_entropy/lr0.1"
    assert (
        S.family_name({**base, "optimizer": "momentum"}) == "mnist/fcn/cross_entropy/lr0.1_momentum"
    )
