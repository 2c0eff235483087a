"""The cost model behind the SLURM requests and the grid totals (no timing: closed forms)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from sgdtail import cost
from sgdtail.grid import expand_grid
from sgdtail.models import build_model, count_parameters

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "dataset, arch, width, depth",
    [
        ("mnist", "fcn", 4, 2),
        ("mnist", "fcn", 128, 3),
        ("cifar10", "fcn", 64, 6),
        ("cifar10", "alexnet", 16, 8),
        ("cifar100", "alexnet", 32, 8),
    ],
)
def test_net_size_counts_the_models_parameters(dataset, arch, width, depth):
    (c, h, w), classes, _, _ = cost.DATA_SIZES[dataset]
    model = build_model(arch, width=width, depth=depth, input_shape=(c, h, w), num_classes=classes)
    params, flops, acts = cost.net_size(dataset, arch, width, depth)
    assert params == count_parameters(model)
    assert flops == 2 * params if arch == "fcn" else flops > 2 * params  # convs reuse weights
    # activations per image: the outputs of every layer (Flatten and Dropout copy none)
    sizes = {}
    copies = (torch.nn.Flatten, torch.nn.Dropout)
    for name, layer in model.named_modules():
        if not list(layer.children()) and not isinstance(layer, copies):
            layer.register_forward_hook(
                lambda _m, _i, out, name=name: sizes.__setitem__(name, out[0].numel())
            )
    model(torch.zeros(2, c, h, w))
    assert len(sizes) >= 2 * (depth - 1) + 1  # a linear and an activation per hidden layer
    assert acts == sum(sizes.values())


def paper_networks() -> list[tuple[str, str, int, int]]:
    """Every (dataset, arch, width, depth) of the ``paper`` grid in config.yaml, once."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    points = expand_grid(config["grids"]["paper"]["runs"], where="grids.paper")
    return sorted({(p.dataset, p.arch, p.width, p.depth) for p in points})


def test_net_size_counts_every_paper_network_as_built():
    """The resource model's parameter count is the built model's on every network of the paper
    grid (built on the meta device: shapes only, no memory or initialisation)."""
    networks = paper_networks()
    assert {arch for _, arch, _, _ in networks} == {"fcn", "alexnet"} and len(networks) > 150
    for dataset, arch, width, depth in networks:
        (c, h, w), classes, _, _ = cost.DATA_SIZES[dataset]
        with torch.device("meta"):
            model = build_model(arch, width, depth, input_shape=(c, h, w), num_classes=classes)
        params, _, _ = cost.net_size(dataset, arch, width, depth)
        assert params == count_parameters(model), (dataset, arch, width, depth)


def point(**axes):
    base = dict(
        dataset="mnist",
        arch="fcn",
        width=64,
        depth=3,
        batch_size=500,
        lr=0.1,
        loss="cross_entropy",
        seed=0,
    )
    return {**base, **axes}


def test_costs_grow_with_steps_size_and_checkpoints():
    small, large = point(width=4), point(width=1024, depth=10)
    assert cost.train_seconds(large, 1000, 5) > 10 * cost.train_seconds(small, 1000, 5)
    assert cost.train_seconds(small, 2000, 5) > 1.9 * cost.train_seconds(small, 1000, 5)
    assert cost.noise_seconds(small, ["train", "test"], 10) == pytest.approx(
        2 * cost.noise_seconds(small, ["train", "test"], 5)
    )
    assert cost.noise_seconds(small, ["train"], 5) < cost.noise_seconds(small, ["train", "test"], 5)
    assert cost.run_threads(small) == 1 and cost.run_threads(large) == 2  # 17 MFLOP an image
    assert cost.run_threads(point(dataset="cifar100", arch="alexnet", width=256, depth=8)) == 4
    assert cost.run_threads(large, gpu=True) == 2
    assert cost.train_seconds(large, 1000, 5, gpu=True) < cost.train_seconds(large, 1000, 5)


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (None, (1, 2, 4, 2)),
        (2, (1, 1, 1, 1)),
        (3, (1, 1, 1, 1)),
        (4, (1, 2, 2, 2)),
        (8, (1, 2, 4, 2)),
        (1, (1, 1, 1, 1)),
    ],
)
def test_a_local_run_gives_each_job_at_most_half_its_cores(cores, expected):
    """Locally two jobs always fit side by side; on a cluster (cores None) the network decides."""
    alexnet = point(dataset="cifar100", arch="alexnet", width=256, depth=8)
    got = (
        cost.run_threads(point(width=4), cores=cores),
        cost.run_threads(point(width=1024, depth=10), cores=cores),
        cost.run_threads(alexnet, cores=cores),
        cost.run_threads(alexnet, gpu=True, cores=cores),
    )
    assert got == expected
    assert cost.local_threads(2, cores) == expected[3]  # simulate_exit_times: 2 worker processes


def test_grid_cost_adds_threads_times_seconds_per_kind():
    runs = [{**point(width=w), "path": f"r{w}"} for w in (4, 1024)]
    training = {r["path"]: {"iterations": 100} for r in runs}
    checkpoints = {r["path"]: 3 for r in runs}
    sharp = {"train_subset": 100, "max_hessian_products": 5, "directions": 2}
    hours = cost.grid_cost(runs, training, checkpoints, ["train"], sharp)
    expected = sum(cost.run_threads(r) * cost.train_seconds(r, 100, 3) for r in runs) / 3600
    assert hours["train"] == pytest.approx(expected)
    gpu = cost.grid_cost(runs, training, checkpoints, ["train"], sharp, gpu=True)
    assert gpu["train"] == pytest.approx(
        sum(cost.train_seconds(r, 100, 3, gpu=True) for r in runs) / 3600
    )


@pytest.mark.parametrize(
    "dataset, arch",
    [("cifar10", "resnet18"), ("mnist", "vgg11_bn"), ("cifar100", "mobilenet_v3_small")],
)
def test_net_size_counts_torchvision_models_as_built(dataset, arch):
    """A torchvision model's parameter count in the resource model is the built model's."""
    (c, h, w), classes, _, _ = cost.DATA_SIZES[dataset]
    torch.manual_seed(0)
    model = build_model(arch, 0, 0, input_shape=(c, h, w), num_classes=classes)
    params, flops, acts = cost.net_size(dataset, arch, 0, 0)
    assert params == count_parameters(model)
    assert flops > 2 * params and acts > 0


def test_net_size_of_resnet18_by_hand():
    """CIFAR ResNet-18 on 32×32 images, multiply-adds per image: stem 32²·64·27 = 1,769,472;
    layer1 4 · 32²·64·64·9 = 150,994,944; layers 2-4 each 134,217,728 (a stride-2 3×3 conv,
    three 3×3 convs and a 1×1 downsample at 16², 8², 4²); fc 5,120: 555,422,720 in all, 2 FLOPs
    each. Activations: stem conv, bn, relu 3 · 65,536; layer1 2 blocks · 6 · 65,536; layer2
    (8 + 6) · 32,768; layer3 (8 + 6) · 16,384; layer4 (8 + 6) · 8,192; pool 512; fc 10
    (the max-pool is gone). Each network is counted once per process."""
    from sgdtail.models import torchvision_size

    assert cost.net_size("cifar10", "resnet18", 0, 0) == (11_173_962, 1_110_845_440, 1_786_378)
    hits = torchvision_size.cache_info().hits
    cost.net_size("cifar10", "resnet18", 0, 0)
    assert torchvision_size.cache_info().hits == hits + 1
    run = point(dataset="cifar10", arch="resnet18", width=0, depth=0, batch_size=128)
    assert cost.run_threads(run) == 4
    assert cost.train_seconds(run, 1000, 5) > cost.train_seconds(
        point(width=1024, depth=10), 1000, 5
    )
