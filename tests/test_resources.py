"""The resource model of rules/common.smk without SLURM: Snakemake dry runs, no jobs.

What tests/test_slurm.py checks on a real cluster, checked here on the resources that a dry run
prints for every job (``resources: ... mem_mb=..., runtime=...``, ``threads: N``) and on its
job groups (``Group job small_runs ...``):

* memory, runtime and threads follow the grid point (a small FCN on MNIST, a large FCN on
  CIFAR10, AlexNet on CIFAR100, with the paper grid's training settings);
* a retry (``--attempt 2``) doubles the memory and runtime of every job and nothing else;
* GPU requests follow ``training.device``;
* the job groups: a small run's train and noise jobs share ``small_runs``, its sharpness job is
  in ``small_sharpness``, a large run is in no group; with the SLURM profile's
  ``group-components`` the smoke grid's 4 small runs become one group job of each kind.

Every dry run uses a temporary working folder and a config file written there (nested
``--config`` values would parse as text).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

SMALL = "mnist/fcn/w4_d2/cross_entropy_b500_lr0.1_s0"
LARGE = "cifar10/fcn/w1024_d10/cross_entropy_b500_lr0.1_s0"
ALEXNET = "cifar100/alexnet/w256_d8/cross_entropy_b500_lr0.1_s0"
PER_RUN = ("train_sgd", "measure_gradient_noise", "measure_sharpness")


def point(path: str) -> dict[str, list]:
    dataset, arch, wd, rest = path.split("/")
    width, depth = wd[1:].split("_d")
    loss, batch, lr, seed = re.fullmatch(r"(\w+?)_b(\d+)_lr([\d.]+)_s(\d+)", rest).groups()
    return dict(dataset=[dataset], arch=[arch], width=[int(width)], depth=[int(depth)],
                batch_size=[int(batch)], lr=[float(lr)], loss=[loss], seed=[int(seed)])


def write_config(folder: Path, device: str = "auto") -> Path:
    """A grid of three runs with the paper grid's training settings (from config.yaml)."""
    paper = yaml.safe_load((REPO / "config.yaml").read_text())["grids"]["paper"]
    config = {
        "grid": "resources_test",
        "training": {"device": device},
        "grids": {"resources_test": {
            "training": paper["training"],
            "runs": [point(SMALL), point(LARGE), point(ALEXNET)],
        }},
    }
    path = folder / f"resources_{device}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(workdir: Path, *args: str) -> str:
    """`snakemake -n` in workdir (the default workflow profile unless args name another)."""
    cmd = [
        "timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "-n",
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--cores", "8",  # the most threads a rule asks for: keeps them uncapped on a small host
        *args,
    ]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    return out


def jobs(output: str) -> dict[tuple[str, str], dict]:
    """(rule, first output) -> resources (ints where numeric), threads and job group.

    A job inside a group job is printed indented under ``Group job <name> ...``; a job on its
    own starts at the line's beginning, which also ends the group before it.
    """
    found = {}
    group, group_no = None, 0
    for block in re.split(r"\n(?=.*Group job \w+|\s*(?:local)?rule \w+:)", output):
        header = re.match(r".*Group job (\w+)", block)
        if header:
            group, group_no = header[1], group_no + 1
            continue
        rule = re.match(r"(\s*)(?:local)?rule (\w+):", block)
        if not rule:
            continue
        if not rule[1]:  # not indented: not part of a group job
            group = None
        outputs = re.search(r"^\s+output: ([^,\n]+)", block, re.M)
        resources = re.search(r"^\s+resources: (.*)", block, re.M)
        threads = re.search(r"^\s+threads: (\d+)", block, re.M)
        info = {"threads": int(threads[1]) if threads else 1,
                "group": (group, group_no) if group else None}
        for kv in resources[1].split(", ") if resources else ():
            key, value = kv.split("=", 1)
            info[key] = int(value) if value.isdigit() else value
        found[(rule[2], outputs[1] if outputs else "")] = info
    return found


def of_run(table: dict, rule: str, run: str) -> dict:
    hits = [info for (r, out), info in table.items() if r == rule and f"/{run}/" in out]
    assert len(hits) == 1, (rule, run, sorted(table))
    return hits[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("resources")


@pytest.fixture(scope="module")
def dry_runs(work):
    """Attempt 1 and attempt 2 of the three-run grid, and the same on GPUs."""
    cpu = write_config(work, "auto")
    cuda = write_config(work, "cuda")
    base = ("--configfile", str(REPO / "config.yaml"))
    return {
        "cpu": jobs(dry_run(work, *base, str(cpu))),
        "retry": jobs(dry_run(work, *base, str(cpu), "--attempt", "2")),
        "cuda": jobs(dry_run(work, *base, str(cuda))),
    }


def test_every_job_asks_for_memory_and_runtime(dry_runs):
    table = dry_runs["cpu"]
    rules = {rule for rule, _ in table}
    assert set(PER_RUN) | {"download_dataset", "prepare_dataset", "aggregate_results"} <= rules
    for (rule, out), info in table.items():
        if rule == "all":
            continue
        assert info.get("mem_mb", 0) >= 1000 and info.get("runtime", 0) >= 5, (rule, out, info)
    # one job per run and rule
    for rule in PER_RUN:
        assert sum(r == rule for r, _ in table) == 3, rule


def test_resources_follow_the_grid_point(dry_runs):
    table = dry_runs["cpu"]
    small = of_run(table, "train_sgd", SMALL)
    large = of_run(table, "train_sgd", LARGE)
    assert large["mem_mb"] > small["mem_mb"] and large["runtime"] > 10 * small["runtime"]
    assert small["threads"] == 1 and large["threads"] == 4  # sgdtail.cost.run_threads
    noise_fcn = of_run(table, "measure_gradient_noise", SMALL)
    noise_alexnet = of_run(table, "measure_gradient_noise", ALEXNET)
    assert noise_alexnet["mem_mb"] > noise_fcn["mem_mb"]
    assert noise_alexnet["runtime"] > noise_fcn["runtime"]
    sharp_fcn = of_run(table, "measure_sharpness", SMALL)
    sharp_alexnet = of_run(table, "measure_sharpness", ALEXNET)
    assert sharp_alexnet["mem_mb"] > sharp_fcn["mem_mb"]
    # a small run's requests stay near the floor: 5 minutes, under 4 GB
    assert small["runtime"] <= 10 and small["mem_mb"] < 4000, small


def test_a_retry_doubles_memory_and_runtime(dry_runs):
    first, second = dry_runs["cpu"], dry_runs["retry"]
    assert set(first) == set(second)
    for job, info in first.items():
        if job[0] == "all":
            continue
        again = second[job]
        assert again["mem_mb"] == 2 * info["mem_mb"], (job, info, again)
        assert again["runtime"] == 2 * info["runtime"], (job, info, again)
        assert again["threads"] == info["threads"] and again.get("gpu") == info.get("gpu"), job
        assert again["group"] == info["group"], job


def test_gpu_request_follows_training_device(dry_runs):
    for rule in PER_RUN:
        for run in (SMALL, LARGE, ALEXNET):
            assert of_run(dry_runs["cpu"], rule, run)["gpu"] == 0, (rule, run)  # device: auto
            on_gpu = of_run(dry_runs["cuda"], rule, run)
            assert on_gpu["gpu"] == 1 and on_gpu["threads"] == 2, (rule, run, on_gpu)
    for (rule, out), info in dry_runs["cuda"].items():
        if rule not in PER_RUN:
            assert "gpu" not in info, (rule, out, info)
    # a GPU is faster: the large run asks for less time than on CPUs
    assert (of_run(dry_runs["cuda"], "train_sgd", LARGE)["runtime"]
            < of_run(dry_runs["cpu"], "train_sgd", LARGE)["runtime"])


def test_small_runs_are_grouped_and_large_ones_are_not(dry_runs):
    table = dry_runs["cpu"]
    train, noise = of_run(table, "train_sgd", SMALL), of_run(table, "measure_gradient_noise", SMALL)
    assert train["group"] is not None and train["group"][0] == "small_runs"
    assert noise["group"] == train["group"]  # one group job: the run's train -> noise chain
    sharpness = of_run(table, "measure_sharpness", SMALL)
    assert sharpness["group"] is not None and sharpness["group"][0] == "small_sharpness"
    for rule in PER_RUN:
        assert of_run(table, rule, LARGE)["group"] is None, rule
        assert of_run(table, rule, ALEXNET)["group"] is None, rule
        # every grouped job takes the one group_slot of its group job (profiles/slurm)
        assert of_run(table, rule, SMALL)["group_slot"] == 1, rule
    grouped = {rule for (rule, _), info in table.items() if info["group"]}
    assert grouped == set(PER_RUN)


def test_slurm_profile_packs_small_runs_into_few_group_jobs(work):
    """profiles/slurm: group-components small_runs=20, small_sharpness=50 on the smoke grid."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.v8+.yaml").read_text())
    assert "group_slot=1" in profile["resources"]
    assert "group_slot=local" in profile["set-resource-scopes"]
    table = jobs(dry_run(
        work, "--workflow-profile", str(REPO / "profiles" / "slurm"),
        "--configfile", str(REPO / "config.yaml"), "--config", "grid=smoke",
    ))
    groups: dict[tuple, list[str]] = {}
    for (rule, _), info in table.items():
        if info["group"]:
            groups.setdefault(info["group"], []).append(rule)
    by_name = sorted((name, sorted(rules)) for (name, _), rules in groups.items())
    assert by_name == [
        ("small_runs", sorted(["train_sgd", "measure_gradient_noise"] * 4)),
        ("small_sharpness", ["measure_sharpness"] * 4),
    ], by_name
