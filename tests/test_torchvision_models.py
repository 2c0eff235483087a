"""torchvision models in the study: built for small images (stem, VGG head), their
minibatch gradients, noise and sharpness measured in eval mode with batch norm's running
statistics left unchanged, and those statistics saved at checkpoints and on resumption."""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from test_train import CPU, Interrupted, assert_same_run, config, read_run
from torch import nn
from torch.func import functional_call, grad, vmap

from conftest import make_prepared
from sgdtail import cost, io, models
from sgdtail.archs import BUILTIN_ARCHS, FAMILIES, family_of
from sgdtail.losses import get_loss
from sgdtail.noise import measure_noise, minibatch_gradients
from sgdtail.sharpness import gradient_to_noise, random_direction_sharpness, top_hessian_eigenvalue

SHAPES = {"mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100)}
"""(C, H, W) and classes of each data set."""

ARCHS = ("resnet18", "vgg11_bn", "mobilenet_v3_small")

PARAMETERS = {
    # torchvision's resnet18 (3 channels, 1000 classes) has 11,689,512; its 7×7 stem (9,408)
    # becomes 3×3 (64·3·9 = 1,728) and fc 512·1000 + 1000 becomes 512·10 + 10 = 5,130:
    # 11,689,512 − 7,680 − 513,000 + 5,130 = 11,173,962 (the CIFAR ResNet-18's count)
    ("resnet18", "cifar10"): 11_173_962,
    ("resnet18", "mnist"): 11_173_962 - 64 * 2 * 9,  # stem from 1 channel: 576, not 1,728
    ("resnet18", "cifar100"): 11_173_962 + 90 * 513,  # 90 more classes of 512 + 1
    # vgg11_bn: convs 1,792 + 73,856 + 295,168 + 590,080 + 1,180,160 + 3 · 2,359,808
    # = 9,220,480; batch norm 2 · (64 + 128 + 2·256 + 4·512) = 5,504; classifier 512 → 512
    # → 512 → 10: 2 · 262,656 + 5,130 = 530,442; total 9,756,426
    ("vgg11_bn", "cifar10"): 9_756_426,
    ("vgg11_bn", "mnist"): 9_756_426 - 64 * 2 * 9,
    ("vgg11_bn", "cifar100"): 9_756_426 + 90 * 513,
    # mobilenet_v3_small: torchvision's 2,542,856 with the last layer 1024·1000 + 1000 as
    # 1024·10 + 10 (its 3×3 stem keeps its size): 2,542,856 − 1,025,000 + 10,250
    ("mobilenet_v3_small", "cifar10"): 1_528_106,
    ("mobilenet_v3_small", "mnist"): 1_528_106 - 16 * 2 * 9,
    ("mobilenet_v3_small", "cifar100"): 1_528_106 + 90 * 1025,
}


@pytest.fixture
def one_thread():
    """Torch on one thread: small convolutions run much faster than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _built(arch: str, dataset: str) -> nn.Module:
    shape, classes = SHAPES[dataset]
    torch.manual_seed(0)
    return models.build_model(arch, 0, 0, shape, classes)


def built(arch: str, dataset: str) -> nn.Module:
    """A fresh copy of the model (seed 0) of ``arch`` for ``dataset`` (built once per arch)."""
    return copy.deepcopy(_built(arch, dataset))


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_buffers()}


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------ building
@pytest.mark.parametrize("dataset", list(SHAPES))
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shape_and_parameter_count(arch, dataset, one_thread):
    shape, classes = SHAPES[dataset]
    model = built(arch, dataset).eval()
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, classes) and torch.isfinite(out).all()
    assert models.count_parameters(model) == PARAMETERS[arch, dataset]
    assert cost.net_size(dataset, arch, 0, 0)[0] == PARAMETERS[arch, dataset]


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
@pytest.mark.parametrize("arch", ARCHS)
def test_small_image_stem(arch, dataset):
    """The stem is a 3×3, stride-1 convolution from the data's channels, initialised as the
    family's convolutions (kaiming normal, fan out: std √(2 / (out·9))); ResNet's max-pool is
    gone, VGG pools round up into a 512-wide classifier, no torch Hardsigmoid is left."""
    model = built(arch, dataset)
    family = family_of(arch)
    stem = model.get_submodule(family.stem)
    channels = SHAPES[dataset][0][0]
    assert (stem.in_channels, stem.kernel_size, stem.stride, stem.padding) == (
        channels,
        (3, 3),
        (1, 1),
        (1, 1),
    )
    std = math.sqrt(2 / (stem.out_channels * 9))
    assert float(stem.weight.detach().std()) == pytest.approx(std, rel=0.15)
    if family.stem_pool is not None:
        assert isinstance(model.get_submodule(family.stem_pool), nn.Identity)
    if family.name == "vgg":
        pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
        assert len(pools) == 5 and all(m.ceil_mode for m in pools)
        linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [
            (512, 512),
            (512, 512),
            (512, 10),
        ]
    assert not any(type(m) is nn.Hardsigmoid for m in model.modules())


def test_every_torchvision_model_builds_or_is_refused_in_one_line():
    """Every classification model of torchvision belongs to a supported family, whose small
    -image adaptation builds it (on the meta device) for 28×28 and 32×32 images, or is
    refused with a message that names the supported families."""
    import torchvision.models

    names = torchvision.models.list_models(module=torchvision.models)
    supported = [n for n in names if family_of(n) is not None]
    assert {family_of(n).name for n in supported} == {f.name for f in FAMILIES}
    for name in names:
        if family_of(name) is None and name not in BUILTIN_ARCHS:  # alexnet: the built-in one
            with pytest.raises(ValueError, match="allowed: fcn, alexnet, or a torchvision"):
                models.build_model(name, 0, 0, (3, 32, 32), 10)
    for name in ("resnext50_32x4d", "wide_resnet50_2", "vgg19_bn", "mobilenet_v2"):
        for shape in ((1, 28, 28), (3, 32, 32)):
            assert models.torchvision_size(name, shape, 10)[0] > 0
    for name in ("densenet121", "efficientnet_b0", "efficientnet_v2_s", "shufflenet_v2_x0_5"):
        assert models.torchvision_size(name, (1, 28, 28), 10)[0] > 0
    assert models.torchvision_size("mnasnet0_5", (3, 32, 32), 10)[0] > 0
    with pytest.raises(ValueError, match="no width or depth"):
        models.build_model("resnet18", 16, 0, (3, 32, 32), 10)


# --------------------------------------------------------------------- minibatch gradients
def per_sample_gradients(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor):
    """(N, M) gradients of each image's loss (torch.func), in parameters_to_vector order."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def one(p, xi, yi):
        return loss_fn(functional_call(model, (p, buffers), (xi[None],)), yi[None])

    g = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[n].reshape(len(x), -1) for n in params], 1)


@pytest.mark.parametrize("dataset", list(SHAPES))
@pytest.mark.parametrize("arch", ARCHS)
def test_minibatch_gradients_equal_per_sample_autograd(arch, dataset, one_thread):
    """In eval mode batch norm treats every image alone, so a minibatch's gradient is the mean
    of its images' gradients: the noise code's two minibatches of 2 against torch.func."""
    shape, classes = SHAPES[dataset]
    model = built(arch, dataset).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, *shape, generator=g), torch.randint(0, classes, (4,), generator=g)
    loss_fn = get_loss("cross_entropy")
    rows = torch.cat(list(minibatch_gradients(model, loss_fn, x, y, 2, 2)))
    want = per_sample_gradients(model, loss_fn, x, y).view(2, 2, -1).mean(1)
    assert rows.shape == (2, PARAMETERS[arch, dataset])
    torch.testing.assert_close(rows, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def test_per_layer_names_are_module_names():
    """Per-layer rows are named by parameter: the module's name and weight or bias."""
    names = [name for name, _, _ in models.layer_slices(built("resnet18", "cifar10"))]
    assert names[:4] == ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight"]
    assert "layer2.0.downsample.0.weight" in names
    assert names[-2:] == ["fc.weight", "fc.bias"] and len(names) == 62


# ------------------------------------------------------------------ noise and sharpness
def test_noise_in_eval_mode_keeps_the_running_statistics_and_streams(one_thread):
    """MobileNetV3 handed over in train mode: the noise is that of eval-mode gradients, its
    batch-norm statistics do not move, train mode comes back, each parameter has its per-layer
    rows, and a budget too small for the gradients streams (two passes) to the same numbers."""
    data = make_prepared(n_train=8, n_test=2, shape=(1, 28, 28))
    x, y, b = data.x_train, data.y_train, 2
    model = built("mobilenet_v3_small", "mnist").train()
    before = _buffers(model)
    loss_fn = get_loss("cross_entropy")
    held = measure_noise(model, loss_fn, x, y, b, memory_budget_mb=64)
    streamed = measure_noise(model, loss_fn, x, y, b, memory_budget_mb=0.01)
    assert (held.passes, streamed.passes) == (1, 2)
    assert model.training and all(m.training for m in model.modules())
    assert_same_tensors(_buffers(model), before)

    model.eval()
    grads = per_sample_gradients(model, loss_fn, x, y).double().view(4, 2, -1).mean(1)
    want = torch.linalg.vector_norm(grads - grads.mean(0), dim=1)
    for res in (held, streamed):
        torch.testing.assert_close(res.norms, want, rtol=1e-4, atol=1e-7)
        scopes = {r["scope"] for r in res.rows} - {"pooled"}
        assert scopes == {name for name, _ in model.named_parameters()}
    assert [(r["estimator"], r["scope"]) for r in held.rows] == [
        (r["estimator"], r["scope"]) for r in streamed.rows
    ]
    for a, s in zip(held.rows, streamed.rows, strict=True):
        if a["scope"] == "pooled" and a["estimator"] in ("mohammadi_robust", "mohammadi_reference"):
            assert a["alpha"] == pytest.approx(s["alpha"], rel=1e-3), a["estimator"]


def test_sharpness_in_eval_mode_keeps_the_running_statistics(one_thread):
    """MobileNetV3 (batch norm, hard-swish, squeeze-excitation) handed over in train mode:
    λ_max by Lanczos converges (Hessian-vector products through the whole network: the stem
    and the last layer are trained), the random-direction sharpness and the gradient/noise
    ratio are finite, and weights, running statistics and train mode come back unchanged."""
    model = built("mobilenet_v3_small", "mnist").train()
    trained = ("features.0.0.weight", "classifier.3.weight", "classifier.3.bias")
    for name, p in model.named_parameters():
        p.requires_grad_(name in trained)
    data = make_prepared(n_train=4, n_test=2, shape=(1, 28, 28))
    x, y = data.x_train, data.y_train
    loss_fn = get_loss("cross_entropy")
    state = copy.deepcopy(model.state_dict())
    eig = top_hessian_eigenvalue(model, loss_fn, x, y, max_products=40)
    assert eig["converged"] and eig["eigenvalue"] > 0
    assert math.isfinite(random_direction_sharpness(model, loss_fn, x, y, n_dirs=2))
    assert math.isfinite(gradient_to_noise(model, loss_fn, x, y, 2)["ratio"])
    assert model.training and all(m.training for m in model.modules())
    assert_same_tensors(model.state_dict(), state)


# ------------------------------------------------------------------- training and resume
def test_checkpoints_and_resume_keep_the_batch_norm_statistics(tmp_path, monkeypatch, one_thread):
    """The running statistics are part of every checkpoint and of resume.pt: a MobileNetV3 run
    stopped after its step-4 checkpoint and restarted ends bit-identical to one that ran
    through, batch-norm statistics and dropout masks included."""
    import sgdtail.train as train_mod
    from sgdtail.train import train_sgd

    data = make_prepared(n_train=40, n_test=10, shape=(1, 28, 28))
    cfg = config(
        arch="mobilenet_v3_small",
        width=0,
        depth=0,
        batch_size=10,
        iterations=8,
        checkpoints=(0, 4, 8),
        resume_every=1000,
    )
    train_sgd(cfg, data, tmp_path / "uninterrupted", CPU)
    original = train_mod.lr_at

    def stop_at_6(step, c):
        if step == 6:
            raise Interrupted
        return original(step, c)

    folder = tmp_path / "interrupted"
    monkeypatch.setattr(train_mod, "lr_at", stop_at_6)
    with pytest.raises(Interrupted):
        train_sgd(cfg, data, folder, CPU)
    monkeypatch.setattr(train_mod, "lr_at", original)
    resume = io.load_torch(folder / "resume.pt")
    key = "features.0.1.running_mean"
    assert resume["step"] == 4 and key in resume["model"]
    info = train_sgd(cfg, data, folder, CPU)
    assert (
        info["resumed_from"] == 4
        and info["n_parameters"] == PARAMETERS["mobilenet_v3_small", "mnist"]
    )
    run = read_run(folder)
    assert_same_run(read_run(tmp_path / "uninterrupted"), run)
    states = run["ckpt"]["state_dicts"]
    assert not torch.equal(states["0"][key], states["8"][key])  # the statistics moved
    assert int(states["8"]["features.0.1.num_batches_tracked"]) == 8
