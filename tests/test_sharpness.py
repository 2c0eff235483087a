"""Tests of sgdtail.sharpness: Hessian power iteration, random-direction sharpness, C6."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sgdtail import sharpness as S


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


def test_top_eigenvalue_of_quadratic_loss():
    a = _spd([5.0, 2.0, 1.0, 0.5, 0.1])
    model = Quadratic(torch.ones(5, dtype=torch.float64)).train()
    lam = S.top_hessian_eigenvalue(model, quad_loss, torch.zeros(1), a, iters=200, tol=1e-10)
    assert lam == pytest.approx(5.0, rel=1e-6)
    assert model.training  # mode restored


def test_top_eigenvalue_of_linear_regression():
    torch.manual_seed(0)
    x = torch.randn(200, 6, dtype=torch.float64) * torch.tensor([3.0, 1, 1, 1, 1, 0.5],
                                                                 dtype=torch.float64)
    y = torch.randn(200, 1, dtype=torch.float64)
    model = nn.Linear(6, 1, bias=False).double()
    mse = nn.MSELoss()
    lam = S.top_hessian_eigenvalue(model, mse, x, y, iters=300, tol=1e-10)
    expected = np.linalg.eigvalsh((2 * x.T @ x / 200).numpy()).max()  # Hessian of mean sq. err.
    assert lam == pytest.approx(expected, rel=1e-5)


def test_top_eigenvalue_rejects_non_scalar_loss():
    model = Quadratic(torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="scalar"):
        S.top_hessian_eigenvalue(model, lambda out, _y: out * 2, torch.zeros(1), None)


def test_random_direction_sharpness_exact_for_quadratic():
    a = _spd([4.0, 1.0, 0.25], seed=1)
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    model = Quadratic(w0).train()
    r, seed, n = 0.1, 3, 4
    got = S.random_direction_sharpness(model, quad_loss, torch.zeros(1), a, n_dirs=n,
                                       radius=r, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    want = []
    for _ in range(n):
        d = torch.randn(3, generator=gen, dtype=torch.float64)
        d = d * w0.norm() / d.norm()  # 1-D parameter: scaled to the parameter's norm
        want.append(0.5 * r**2 * float(d @ a @ d))  # two-sided average cancels the gradient
    assert got == pytest.approx(np.mean(want), rel=1e-9)
    assert torch.equal(model.w.detach(), w0) and model.training  # restored
    sharper = S.random_direction_sharpness(model, lambda o, m: quad_loss(o, 2 * m),
                                           torch.zeros(1), a, n_dirs=n, radius=r, seed=seed)
    assert sharper == pytest.approx(2 * got, rel=1e-9)


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


def test_spearman_with_ci():
    x = np.arange(20.0)
    r = S.spearman_with_ci(x, x**3)
    assert r["rho"] == pytest.approx(1.0) and r["n"] == 20
    rng = np.random.default_rng(0)
    r = S.spearman_with_ci(rng.standard_normal(40), rng.standard_normal(40), seed=1)
    assert r["ci_low"] < 0 < r["ci_high"]
    f = S.spearman_with_ci(x, x + rng.standard_normal(20) * 5, method="fisher")
    assert -1 < f["ci_low"] < f["rho"] < f["ci_high"] < 1
    with pytest.raises(ValueError, match="at least 3"):
        S.spearman_with_ci([1, 2], [2, 3])
    with pytest.raises(ValueError, match="same length"):
        S.spearman_with_ci([1, 2, 3], [2, 3])


T6 = dict(min_rho=0.3, min_runs=8)


@pytest.mark.parametrize("res, verdict", [
    (dict(rho=0.8, ci_low=0.5, ci_high=0.95, n=20), "supported"),
    (dict(rho=-0.6, ci_low=-0.85, ci_high=-0.2, n=20), "not supported"),
    (dict(rho=0.02, ci_low=-0.1, ci_high=0.15, n=200), "not supported"),
    (dict(rho=0.2, ci_low=-0.3, ci_high=0.6, n=20), "inconclusive"),
    (dict(rho=0.9, ci_low=0.6, ci_high=0.99, n=5), "inconclusive"),
    (dict(rho=float("nan"), ci_low=float("nan"), ci_high=float("nan"), n=20), "inconclusive"),
])
def test_c6_verdicts(res, verdict):
    v = S.claim_c6_verdict(res, T6)
    assert v["verdict"] == verdict, v
    assert set(v) == {"verdict", "statistic", "value", "detail"}


def test_c6_end_to_end_from_data():
    rng = np.random.default_rng(2)
    alpha = rng.uniform(1.1, 2.0, 30)
    sharp = np.exp(2 * alpha + rng.normal(0, 0.2, 30))
    v = S.claim_c6_verdict(S.spearman_with_ci(alpha, sharp), T6)
    assert v["verdict"] == "supported"
    v = S.claim_c6_verdict(S.spearman_with_ci(alpha, 1 / sharp), T6)
    assert v["verdict"] == "not supported"
    with pytest.raises(KeyError, match="min_runs"):
        S.claim_c6_verdict(dict(rho=0.1, ci_low=0, ci_high=0.2, n=10), {"min_rho": 0.3})
