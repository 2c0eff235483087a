"""Grid expansion, run paths, checkpoint schedules and config checks."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import jsonschema
import pytest
import yaml

from sgdtail.grid import (
    AXIS_REGEX,
    OPTIMIZERS,
    RUN_PATH_REGEX,
    ConfigError,
    RunPoint,
    check_config,
    checkpoint_schedule,
    describe_schema_error,
    expand_grid,
    format_lr,
    optimizer_settings,
    parse_run_path,
    run_path,
    run_training,
    typed_axes,
)

SUB = dict(
    dataset=["mnist"],
    arch=["fcn"],
    width=[4, 8],
    depth=[2, 3],
    batch_size=[50],
    lr=[0.1],
    loss=["cross_entropy"],
    seed=[0],
)


def test_expand_is_product_and_union_without_repeats():
    sweep = dict(SUB, width=[8], depth=[3], batch_size=[50, 100])
    points = expand_grid([SUB, sweep])
    assert len(points) == 4 + 1  # (8, 3, 50) is shared
    assert points[0] == RunPoint("mnist", "fcn", 4, 2, 50, 0.1, "cross_entropy", 0)


def test_repeated_value_and_empty_grid_fail():
    with pytest.raises(ConfigError, match=r"runs\[0\]\.width lists a value twice"):
        expand_grid([dict(SUB, width=[4, 4])])
    with pytest.raises(ConfigError, match="runs is empty"):
        expand_grid([])


def test_run_path_encodes_every_axis():
    point = RunPoint("cifar10", "alexnet", 64, 8, 500, 0.001, "hinge", 2)
    assert point.path == "cifar10/alexnet/w64_d8/hinge_b500_lr0.001_s2"
    assert format_lr(1e-1) == "0.1" and format_lr(0.05) == "0.05"


@pytest.mark.parametrize(
    "point",
    [
        RunPoint("cifar10", "alexnet", 64, 8, 100, 0.05, "hinge", 2),
        RunPoint("mnist", "fcn", 4, 2, 50, 1e-3, "cross_entropy", 0),
        RunPoint("cifar100", "alexnet", 1024, 8, 2000, 2.5e-05, "cross_entropy", 123),
        RunPoint("mnist", "fcn", 128, 10, 500, 1.0, "hinge", 7),
        RunPoint("cifar100", "mobilenet_v3_small", 0, 0, 128, 0.05, "cross_entropy", 1),
        RunPoint("mnist", "vgg11_bn", 0, 0, 50, 0.1, "hinge", 0),
        *(
            RunPoint("mnist", "fcn", 16, 2, 50, 0.1, "cross_entropy", 3, name)
            for name in OPTIMIZERS
        ),
        RunPoint("cifar10", "alexnet", 64, 8, 100, 2.5e-05, "hinge", 12, "adam"),
    ],
)
def test_parse_run_path_inverts_the_run_path(point):
    """Every axis comes back with its type (str, int, float), from the path and its wildcards."""
    axes = parse_run_path(point.path)
    assert axes == dataclasses.asdict(point)
    assert [type(v) for v in axes.values()] == [str, str, int, int, int, float, str, int, str]
    assert run_path(point.wildcards()) == point.path
    assert parse_run_path(f"/{point.path}/") == axes
    assert RunPoint(**axes).path == point.path


def test_plain_sgd_keeps_its_run_path_and_the_others_end_in_their_name():
    """Plain SGD's run paths are those of the grids before the optimizer axis; a sub-grid that
    names no optimizer is plain SGD; each other optimizer gets its own folder."""
    sgd = RunPoint("mnist", "fcn", 16, 2, 50, 0.1, "cross_entropy", 3)
    assert sgd.optimizer == "sgd" and sgd.path == "mnist/fcn/w16_d2/cross_entropy_b50_lr0.1_s3"
    assert expand_grid([SUB])[0].optimizer == "sgd"
    paths = {
        name: dataclasses.replace(sgd, optimizer=name).path
        for name in ("momentum", "nesterov", "adam")
    }
    assert paths == {
        "momentum": "mnist/fcn/w16_d2/cross_entropy_b50_lr0.1_s3_momentum",
        "nesterov": "mnist/fcn/w16_d2/cross_entropy_b50_lr0.1_s3_nesterov",
        "adam": "mnist/fcn/w16_d2/cross_entropy_b50_lr0.1_s3_adam",
    }
    points = expand_grid([dict(SUB, optimizer=list(OPTIMIZERS))])
    assert len(points) == 4 * len(OPTIMIZERS) and len({p.path for p in points}) == len(points)
    # wildcards without an optimizer (metadata of a plain-SGD grid) read as plain SGD
    wildcards = sgd.wildcards()
    del wildcards["optimizer"]
    assert typed_axes(wildcards)["optimizer"] == "sgd"


@pytest.mark.parametrize("optimizer", ["", "_momentum", "_nesterov", "_adam"])
def test_snakemake_wildcard_constraints_match_every_optimizer(optimizer):
    """rules/common.smk constrains the wildcards with the same regular expressions: a run
    path with any optimizer matches, with its optimizer's text as the wildcard."""
    import re

    text = Path("rules/common.smk").read_text()
    assert 'optimizer=AXIS_REGEX["optimizer"]' in text
    path = f"mnist/fcn/w16_d2/cross_entropy_b50_lr0.1_s3{optimizer}"
    match = re.fullmatch(RUN_PATH_REGEX, path)
    assert match and match["optimizer"] == optimizer and match["seed"] == "3"


def test_the_schema_accepts_every_optimizers_run_path_as_a_showcase():
    """figures.showcase's pattern in config.schema.yaml takes the run path of every optimizer
    and, like parse_run_path, not a plain-SGD path that names its optimizer."""
    import re

    schema = yaml.safe_load(Path("config.schema.yaml").read_text())
    pattern = schema["$defs"]["figures"]["properties"]["showcase"]["items"]["pattern"]
    sgd = RunPoint("mnist", "fcn", 16, 2, 50, 0.1, "cross_entropy", 3)
    for name in OPTIMIZERS:
        assert re.search(pattern, dataclasses.replace(sgd, optimizer=name).path), name
    assert not re.search(pattern, sgd.path + "_sgd")


def test_parse_run_path_rejects_what_is_not_a_run_path():
    for bad in (
        "mnist/fcn/w16/cross_entropy",
        "mnist/fcn/w16_d2/cross_entropy_b500_lr0.1_s0/extra",
        "mnist/fcn/wX_d2/cross_entropy_b500_lr0.1_s0",
        "mnist/fcn/w16_d2/cross_entropy_b500_lr0.1_s0_sgd",
        "mnist/fcn/w16_d2/cross_entropy_b500_lr0.1_s0_rmsprop",
        "mnist/fcn/w16_d2/cross_entropy_b500_lr0.1_adam_s0",
    ):
        with pytest.raises(ValueError, match="not a run path.*<dataset>/<arch>/w<width>_d<depth>"):
            parse_run_path(bad)


def test_checkpoint_schedules():
    assert checkpoint_schedule({"schedule": "log", "count": 4, "include_initial": True}, 1000) == [
        0,
        1,
        10,
        100,
        1000,
    ]
    assert checkpoint_schedule(
        {"schedule": "every", "every": 250, "include_initial": False}, 1000
    ) == [250, 500, 750, 1000]
    assert checkpoint_schedule({"schedule": "list", "at": [5], "include_initial": False}, 20) == [
        5,
        20,
    ]
    with pytest.raises(ConfigError, match=r"outside 0\.\.20"):
        checkpoint_schedule({"schedule": "list", "at": [30]}, 20)


@pytest.fixture
def config():
    with open("config.yaml") as fh:
        return yaml.safe_load(fh)


def test_shipped_grids_pass_the_checks(config):
    sizes = {}
    for name in config["grids"]:
        cfg = copy.deepcopy(config)
        cfg["grid"] = name
        points = check_config(cfg)
        assert points == expand_grid(config["grids"][name]["runs"]), name
        sizes[name] = len(points)
    assert set(sizes) >= {"smoke", "smoke_sweeps", "default", "paper"}
    # smoke: widths {4, 8} x depths {2, 3}; smoke_sweeps: 2 AlexNets, 2 batch sizes and
    # 2 learning rates at w4_d2, one run (b50, lr 0.1) shared by the last two, and (b25, lr 0.05)
    assert (sizes["smoke"], sizes["smoke_sweeps"]) == (4, 6)
    # 3 optimizers x (FCN, ResNet-18); the full grid with 2 seeds
    assert (sizes["smoke_optimizers"], sizes["optimizers_models"]) == (6, 12)
    assert sizes["paper"] > 1000


def test_semantic_errors_name_the_key(config):
    bad = copy.deepcopy(config)
    bad["grid"] = "nope"
    with pytest.raises(ConfigError, match="'grid' is 'nope'"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["grids"]["smoke"]["runs"][0]["batch_size"] = [20000]
    bad["grid"] = "smoke"
    with pytest.raises(ConfigError, match="batch_size 20000 is larger"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["grid"] = "smoke"
    bad["grids"]["smoke"]["runs"][0].update(arch=["alexnet"], depth=[3])
    with pytest.raises(ConfigError, match="fixed depth of 8"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["grid"] = "smoke"
    bad["datasets"]["mnist"].update(source="folder", path="/no/such/folder")
    with pytest.raises(ConfigError, match=r"datasets\.mnist\.path"):
        check_config(bad)


def test_a_subgrid_may_set_its_own_training(config):
    cfg = copy.deepcopy(config)
    cfg["grid"] = "smoke"
    runs = cfg["grids"]["smoke"]["runs"]
    runs.append(
        dict(
            SUB,
            width=[16],
            training={
                "iterations": 40,
                "checkpoints": {"schedule": "list", "at": [10, 30], "include_initial": False},
            },
        )
    )
    points = check_config(cfg)
    training = run_training(cfg, points)
    own = "mnist/fcn/w16_d2/cross_entropy_b50_lr0.1_s0"
    other = "mnist/fcn/w4_d2/cross_entropy_b50_lr0.1_s0"
    assert training[own]["iterations"] == 40 and training[other]["iterations"] == 20
    # keys the sub-grid does not set come from the grid, then the top level
    assert training[own]["eval_batch_size"] == training[other]["eval_batch_size"] == 1000
    assert training[own]["lr_schedule"] == cfg["training"]["lr_schedule"]
    assert checkpoint_schedule(training[own]["checkpoints"], 40) == [10, 30, 40]


def test_a_run_gets_only_its_optimizers_keys(config):
    """A run's training section holds the hyper-parameters of its own optimizer only: plain
    SGD's is the section it had before optimizers had keys, and two sub-grids that differ
    only in another optimizer's keys give a run the same settings."""
    cfg = copy.deepcopy(config)
    cfg["grid"] = "smoke"
    cfg["grids"]["smoke"]["runs"] = [
        dict(SUB, optimizer=["sgd", "adam"]),
        dict(SUB, width=[4], depth=[2], optimizer=["sgd", "momentum"], training={"momentum": 0.5}),
    ]
    training = run_training(cfg, check_config(cfg))
    base = "mnist/fcn/w4_d2/cross_entropy_b50_lr0.1_s0"
    assert not set(training[base]) & {"momentum", "adam_eps", "weight_decay", "adam_betas"}
    assert optimizer_settings("adam", training[base + "_adam"]) == {
        "adam_betas": cfg["training"]["adam_betas"],
        "adam_eps": cfg["training"]["adam_eps"],
        "weight_decay": cfg["training"]["weight_decay"],
    }
    assert training[base + "_momentum"]["momentum"] == 0.5
    assert "momentum" not in training[base + "_adam"]


def test_one_run_with_two_training_settings_fails(config):
    cfg = copy.deepcopy(config)
    cfg["grid"] = "smoke"
    cfg["grids"]["smoke"]["runs"].append(
        dict(SUB, width=[8], depth=[2], training={"iterations": 40})
    )
    with pytest.raises(
        ConfigError,
        match=r"runs\[0\] and runs\[1\] both hold run "
        r"mnist/fcn/w8_d2/\S+ but give it different training settings",
    ):
        check_config(cfg)
    cfg["grids"]["smoke"]["runs"][1]["training"] = {
        "iterations": 10,
        "checkpoints": {"schedule": "list", "at": [15]},
    }
    with pytest.raises(
        ConfigError,
        match=r"grids\.smoke\.runs\[1\]\.training\.checkpoints\.at "
        r"has iterations \[15\] outside 0\.\.10",
    ):
        check_config(cfg)


def test_schema_error_without_the_schema_names_key_and_allowed_values():
    schema = {"type": "object", "properties": {"width": {"type": "integer", "minimum": 1}}}
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate({"width": "8"}, schema)
    assert describe_schema_error(info.value) == (
        "width is '8' ('8' is not of type 'integer'); allowed: an integer ≥ 1; '8' is text "
        "(YAML reads numbers such as 1e-3 as text: write 0.001 or 1.0e-3) [config['width']]"
    )


TORCHVISION_SUB = dict(
    dataset=["cifar10"],
    arch=["resnet18", "mobilenet_v3_small"],
    batch_size=[100],
    lr=[0.1],
    loss=["cross_entropy"],
    seed=[0],
)
"""A sub-grid of torchvision models: no width, no depth."""


def test_a_torchvision_subgrid_leaves_width_and_depth_out(config):
    """Its runs get width and depth 0 (run path w0_d0); the schema and check_config accept it
    beside the shipped sub-grids, whose run paths do not change."""
    cfg = copy.deepcopy(config)
    cfg["grid"] = "smoke"
    before = [p.path for p in check_config(cfg)]
    cfg["grids"]["smoke"]["runs"].append(copy.deepcopy(TORCHVISION_SUB))
    schema = yaml.safe_load(open("config.schema.yaml").read())
    jsonschema.validate(cfg, schema)
    points = check_config(cfg)
    assert [p.path for p in points[: len(before)]] == before
    assert [p.path for p in points[len(before) :]] == [
        "cifar10/resnet18/w0_d0/cross_entropy_b100_lr0.1_s0",
        "cifar10/mobilenet_v3_small/w0_d0/cross_entropy_b100_lr0.1_s0",
    ]
    explicit = dict(TORCHVISION_SUB, width=[0], depth=[0])
    assert expand_grid([explicit]) == expand_grid([TORCHVISION_SUB])


def test_the_schema_allows_the_arch_names_a_run_path_can_hold():
    """The schema's pattern for ``arch`` is the run path's (grid.AXIS_REGEX)."""
    schema = yaml.safe_load(open("config.schema.yaml").read())
    pattern = schema["$defs"]["subgrid"]["properties"]["arch"]["items"]["pattern"]
    assert pattern == f"^{AXIS_REGEX['arch']}$"
