"""Tests for sgdtail.losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sgdtail import losses


def test_hinge_hand_example():
    out = torch.tensor([[2.0, -0.5, 0.3], [0.1, 0.4, -2.0]])
    target = torch.tensor([0, 1])
    # t = [[+1, -1, -1], [-1, +1, -1]]
    # row 0: max(0, 1-2) = 0;   max(0, 1-0.5) = 0.5; max(0, 1+0.3) = 1.3
    # row 1: max(0, 1+0.1) = 1.1; max(0, 1-0.4) = 0.6; max(0, 1-2.0) = 0
    # mean over 2*3 = 6 entries: (0 + 0.5 + 1.3 + 1.1 + 0.6 + 0) / 6 = 3.5 / 6
    loss = losses.multiclass_hinge(out, target)
    assert loss.item() == pytest.approx(3.5 / 6)


def test_hinge_gradient_hand_example():
    out = torch.tensor([[2.0, -0.5, 0.3], [0.1, 0.4, -2.0]], requires_grad=True)
    losses.multiclass_hinge(out, torch.tensor([0, 1])).backward()
    # d/d out = -t/6 where the hinge is active, 0 where it is not
    expected = torch.tensor([[0.0, 1.0, 1.0], [1.0, -1.0, 0.0]]) / 6
    assert torch.allclose(out.grad, expected)


def test_hinge_zero_when_margins_met():
    out = torch.tensor([[1.5, -1.0, -3.0], [-1.0, -2.0, 1.0]])
    assert losses.multiclass_hinge(out, torch.tensor([0, 2])).item() == 0.0


def test_hinge_matches_loop():
    torch.manual_seed(0)
    out = torch.randn(7, 5)
    target = torch.randint(0, 5, (7,))
    total = 0.0
    for i in range(7):
        for c in range(5):
            t = 1.0 if c == target[i] else -1.0
            total += max(0.0, 1.0 - t * out[i, c].item())
    assert losses.multiclass_hinge(out, target).item() == pytest.approx(total / 35, rel=1e-6)


def test_hinge_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        losses.multiclass_hinge(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        losses.multiclass_hinge(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))


def test_cross_entropy_of_the_study_by_hand():
    """The loss the config's ``cross_entropy`` names: softmax cross-entropy of the logits,
    averaged (not summed) over the batch, as the gradient-noise definition assumes."""
    ce = losses.get_loss("cross_entropy")
    # row 0: logits [0, log 3], target 1 -> p = 3/4 -> -log(3/4)
    # row 1: logits [log 4, 0], target 1 -> p = 1/5 -> -log(1/5) = log 5
    out = torch.tensor([[0.0, math.log(3.0)], [math.log(4.0), 0.0]])
    target = torch.tensor([1, 1])
    assert ce(out, target).item() == pytest.approx((-math.log(0.75) + math.log(5.0)) / 2)
    # uniform logits over C classes: log C whatever the batch size and labels
    assert ce(torch.zeros(4, 10), torch.tensor([0, 3, 5, 9])).item() == pytest.approx(math.log(10))


@pytest.mark.parametrize("name", ["cross_entropy", "hinge"])
def test_loss_is_the_mean_of_per_example_losses(name):
    """Both losses return the batch mean: the loss of a batch is the mean of its examples'."""
    torch.manual_seed(1)
    out, target = torch.randn(6, 4), torch.randint(0, 4, (6,))
    fn = losses.get_loss(name)
    each = torch.stack([fn(out[i : i + 1], target[i : i + 1]) for i in range(6)])
    assert fn(out, target).item() == pytest.approx(each.mean().item(), rel=1e-6)


def test_get_loss():
    assert losses.get_loss("cross_entropy") is losses.cross_entropy
    assert losses.get_loss("hinge") is losses.multiclass_hinge
    assert list(losses.LOSSES) == ["cross_entropy", "hinge"]
    with pytest.raises(ValueError, match="'cross_entropy', 'hinge'"):
        losses.get_loss("mse")


@pytest.mark.parametrize("name", ["cross_entropy", "hinge"])
def test_gradcheck_logits(name):
    torch.manual_seed(0)
    out = torch.randn(4, 3, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 2])
    t = F.one_hot(target, 3).double() * 2 - 1
    assert (1 - t * out).abs().min() > 1e-3  # away from the hinge kink
    out.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: losses.get_loss(name)(z, target), (out,))
