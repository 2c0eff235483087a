"""Tests for sgdtail.models: parameter counts by hand, shapes, slices, gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector

from sgdtail import losses, models

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)


# --------------------------------------------------------------------------- FCN counts
@pytest.mark.parametrize(
    ("input_shape", "width", "depth", "expected"),
    [
        # MNIST, in = 1*28*28 = 784, 10 classes, no biases
        (MNIST, 128, 3, 118016),  # 784*128 + 128*128 + 128*10 = 100352 + 16384 + 1280
        (MNIST, 4, 2, 3176),  # 784*4 + 4*10 = 3136 + 40
        (MNIST, 32, 5, 28480),  # 784*32 + 3*32*32 + 32*10 = 25088 + 3072 + 320
        (MNIST, 1024, 10, 9201664),  # 784*1024 + 8*1024*1024 + 1024*10 = 802816+8388608+10240
        # CIFAR10, in = 3*32*32 = 3072, 10 classes
        (CIFAR, 8, 2, 24656),  # 3072*8 + 8*10 = 24576 + 80
        (CIFAR, 64, 4, 205440),  # 3072*64 + 2*64*64 + 64*10 = 196608 + 8192 + 640
        (CIFAR, 512, 6, 2626560),  # 3072*512 + 4*512*512 + 512*10 = 1572864+1048576+5120
    ],
)
def test_fcn_parameter_count(input_shape, width, depth, expected):
    c, h, w = input_shape
    model = models.build_model("fcn", width, depth, input_shape, 10)
    assert models.count_parameters(model) == expected
    assert models.expected_fcn_parameters(c * h * w, width, depth, 10) == expected


def test_fcn_structure_no_biases():
    model = models.build_model("fcn", 16, 4, CIFAR, 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4
    assert all(m.bias is None for m in linears)
    assert [(m.in_features, m.out_features) for m in linears] == [
        (3072, 16),
        (16, 16),
        (16, 16),
        (16, 10),
    ]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3  # between, not after
    assert all("bias" not in name for name, _ in model.named_parameters())


def test_fcn_invalid_depth():
    with pytest.raises(ValueError, match="depth"):
        models.FullyConnected(784, 8, 1, 10)
    with pytest.raises(ValueError, match="depth"):
        models.expected_fcn_parameters(784, 8, 1, 10)


# ----------------------------------------------------------------------- AlexNet counts
# 3x32x32: conv1 (4x4, s2, p2): (32+4-4)//2+1 = 17; pool 3/2: (17-3)//2+1 = 8;
# conv2 (5x5, p2): 8; pool: (8-3)//2+1 = 3; conv3..5 (3x3, p1): 3; pool: (3-3)//2+1 = 1.
# 1x28x28: conv1: (28+4-4)//2+1 = 15; pool: 7; conv2: 7; pool: 3; conv3..5: 3; pool: 1.
# So s = ch*1*1 = ch in both cases.
@pytest.mark.parametrize(
    ("input_shape", "ch", "classes", "s", "h", "expected"),
    [
        # ch=16: s=16, h = 16*floor(1+log2 16) = 16*5 = 80
        # conv1 16*3*4*4+16 = 784; conv2 16*16*5*5+16 = 6416; conv3..5 3*(16*16*3*3+16) = 6960
        # fc1 16*80+80 = 1360; fc2 80*80+80 = 6480; fc3 80*10+10 = 810
        # total 784+6416+6960+1360+6480+810 = 22810
        (CIFAR, 16, 10, 16, 80, 22810),
        # ch=64: s=64, h = 64*floor(1+6) = 448
        # conv1 64*3*16+64 = 3136; conv2 64*64*25+64 = 102464; conv3..5 3*(64*64*9+64) = 110784
        # fc1 64*448+448 = 29120; fc2 448*448+448 = 201152; fc3 448*10+10 = 4490
        # total 3136+102464+110784+29120+201152+4490 = 451146
        (CIFAR, 64, 10, 64, 448, 451146),
        # CIFAR100, ch=64: fc3 448*100+100 = 44900 -> 451146 - 4490 + 44900 = 491556
        (CIFAR, 64, 100, 64, 448, 491556),
        # MNIST, ch=16: conv1 16*1*16+16 = 272 -> 22810 - 784 + 272 = 22298
        (MNIST, 16, 10, 16, 80, 22298),
    ],
)
def test_alexnet_parameter_count(input_shape, ch, classes, s, h, expected):
    model = models.build_model("alexnet", ch, 8, input_shape, classes)
    assert model.feature_size == s
    assert model.hidden == h
    assert models.count_parameters(model) == expected


def test_alexnet_geometry():
    assert models.alexnet_feature_geometry(32) == [
        ("conv1", 17, 17),
        ("pool1", 8, 8),
        ("conv2", 8, 8),
        ("pool2", 3, 3),
        ("conv3", 3, 3),
        ("conv4", 3, 3),
        ("conv5", 3, 3),
        ("pool3", 1, 1),
    ]
    assert models.alexnet_feature_geometry(28)[-1] == ("pool3", 1, 1)
    # 27x27 is too small: conv1 14, pool1 6, pool2 2, and pool3 cannot pool a 2x2 map
    with pytest.raises(ValueError, match="too small"):
        models.alexnet_feature_geometry(27)
    with pytest.raises(ValueError, match="too small"):
        models.AlexNetCifar(3, 16, 8, 10)


def test_alexnet_geometry_matches_forward():
    for shape in (MNIST, CIFAR, (3, 40, 36)):
        model = models.build_model("alexnet", 4, 8, shape, 10)
        feats = model.features(torch.zeros(1, *shape))
        _, hh, ww = models.alexnet_feature_geometry(shape[1:])[-1]
        assert feats.shape == (1, 4, hh, ww)
        assert feats[0].numel() == model.feature_size


def test_alexnet_has_biases_and_dropout():
    model = models.build_model("alexnet", 8, 8, CIFAR, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 5 and len(linears) == 3
    assert all(m.bias is not None for m in convs + linears)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3


# -------------------------------------------------------------------------- build_model
def test_build_model_errors():
    with pytest.raises(ValueError, match="depth of 8"):
        models.build_model("alexnet", 16, 5, CIFAR, 10)
    with pytest.raises(ValueError, match="'resnet' is neither a built-in network nor a torch"):
        models.build_model("resnet", 16, 5, CIFAR, 10)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        models.build_model("fcn", 16, 3, (784,), 10)


@pytest.mark.parametrize("input_shape", [MNIST, CIFAR])
@pytest.mark.parametrize(("arch", "width", "depth"), [("fcn", 16, 3), ("alexnet", 8, 8)])
@pytest.mark.parametrize("classes", [10, 100])
def test_forward_shapes(arch, width, depth, input_shape, classes):
    torch.manual_seed(0)
    model = models.build_model(arch, width, depth, input_shape, classes)
    x = torch.randn(5, *input_shape)
    out = model(x)
    assert out.shape == (5, classes)
    assert torch.isfinite(out).all()


def test_seeding_reproducible():
    torch.manual_seed(3)
    a = parameters_to_vector(models.build_model("alexnet", 8, 8, CIFAR, 10).parameters())
    torch.manual_seed(3)
    b = parameters_to_vector(models.build_model("alexnet", 8, 8, CIFAR, 10).parameters())
    assert torch.equal(a, b)


# ------------------------------------------------------------------------- layer_slices
@pytest.mark.parametrize(
    ("arch", "width", "depth", "shape"),
    [("fcn", 8, 4, MNIST), ("fcn", 4, 2, CIFAR), ("alexnet", 8, 8, CIFAR)],
)
def test_layer_slices(arch, width, depth, shape):
    torch.manual_seed(1)
    model = models.build_model(arch, width, depth, shape, 10)
    slices = models.layer_slices(model)
    vec = parameters_to_vector(model.parameters())
    params = dict(model.named_parameters())
    assert [name for name, _, _ in slices] == list(params)
    assert slices[0][1] == 0
    assert slices[-1][2] == vec.numel() == models.count_parameters(model)
    for (_, _, stop), (_, start, _) in zip(slices[:-1], slices[1:], strict=True):
        assert stop == start
    for name, start, stop in slices:
        assert torch.equal(vec[start:stop], params[name].detach().reshape(-1))


def test_layer_slices_fcn_names():
    model = models.build_model("fcn", 8, 3, MNIST, 10)
    # 784*8 = 6272; 8*8 = 64; 8*10 = 80
    assert models.layer_slices(model) == [
        ("net.1.weight", 0, 6272),
        ("net.3.weight", 6272, 6336),
        ("net.5.weight", 6336, 6416),
    ]


def test_layer_slices_skips_frozen():
    model = models.build_model("fcn", 8, 3, MNIST, 10)
    model.net[3].weight.requires_grad_(False)
    # frozen net.3.weight (8*8) is skipped: 784*8 = 6272, then 8*10 = 80
    assert models.layer_slices(model) == [
        ("net.1.weight", 0, 6272),
        ("net.5.weight", 6272, 6352),
    ]
    assert models.count_parameters(model) == 6352
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert parameters_to_vector(trainable).numel() == 6352


# ---------------------------------------------------------------------------- gradcheck
def _min_preactivation(model: nn.Module, x: torch.Tensor) -> float:
    """Smallest |input| seen by any ReLU (distance to the ReLU kink)."""
    seen: list[float] = []
    hooks = [
        m.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].abs().min().item()))
        for m in model.modules()
        if isinstance(m, nn.ReLU)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return min(seen)


def _hinge_kink_distance(out: torch.Tensor, target: torch.Tensor) -> float:
    t = torch.nn.functional.one_hot(target, out.shape[1]).to(out.dtype) * 2 - 1
    return (1 - t * out).abs().min().item()


def _gradcheck_model(model: nn.Module, x: torch.Tensor, target: torch.Tensor, loss_name: str):
    loss_fn = losses.get_loss(loss_name)
    model = model.double().eval()
    x = x.double()
    with torch.no_grad():
        out = model(x)
    if loss_name == "hinge":
        assert _hinge_kink_distance(out, target) > 1e-3
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())

    def f_params(*ps):
        return loss_fn(functional_call(model, dict(zip(names, ps, strict=True)), (x,)), target)

    assert torch.autograd.gradcheck(f_params, params, eps=1e-6, atol=1e-6)
    # the gradient must not be trivially zero
    grads = torch.autograd.grad(f_params(*params), params)
    assert sum(g.abs().sum() for g in grads) > 0

    xi = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: loss_fn(model(z), target), (xi,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("loss_name", ["cross_entropy", "hinge"])
def test_gradcheck_fcn(loss_name):
    torch.manual_seed(0)
    model = models.FullyConnected(12, 6, 3, 4).double()
    x = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 1])
    assert _min_preactivation(model, x) > 1e-3
    _gradcheck_model(model, x, target, loss_name)


@pytest.mark.parametrize("loss_name", ["cross_entropy", "hinge"])
def test_gradcheck_alexnet(loss_name):
    torch.manual_seed(0)
    model = models.AlexNetCifar(1, 28, 3, 4).double().eval()
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    target = torch.tensor([1, 3])
    _gradcheck_model(model, x, target, loss_name)
