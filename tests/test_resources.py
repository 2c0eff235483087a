"""The resource model of rules/common.smk without SLURM: Snakemake dry runs, no jobs.

What tests/test_slurm.py checks on a real cluster, checked here on the resources that a dry run
prints for every job (``resources: ... mem_mb=..., runtime=...``, ``threads: N``) and on its
job groups (``Group job small_runs ...``):

* memory, runtime and threads follow the grid point (a small FCN on MNIST, a large FCN on
  CIFAR10, AlexNet on CIFAR100, with the paper grid's training settings);
* a retry (``--attempt 2``) doubles the memory and runtime of every job and nothing else;
* GPU requests follow ``training.device`` (and ``auto`` where the machine shows GPUs); a local
  run never runs more GPU jobs at once than the machine has GPUs (a fake count, slow test);
* the noise job's gradient budget and its mem_mb agree (slow test: a lowered mem_mb lowers
  the budget the job logs);
* the job groups: a small run's train and noise jobs share ``small_runs``, its sharpness job is
  in ``small_sharpness``, a large run is in no group; with the SLURM profile's
  ``group-components`` the smoke grid's 4 small runs become one group job of each kind.

Every dry run uses a temporary working folder and a config file written there (nested
``--config`` values would parse as text).
"""

from __future__ import annotations

import os
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
    return dict(
        dataset=[dataset],
        arch=[arch],
        width=[int(width)],
        depth=[int(depth)],
        batch_size=[int(batch)],
        lr=[float(lr)],
        loss=[loss],
        seed=[int(seed)],
    )


def write_config(folder: Path, device: str = "auto", budget_mb: int | None = None) -> Path:
    """A grid of three runs with the paper grid's training settings (from config.yaml);
    ``budget_mb`` sets noise.memory_budget_mb (default: config.yaml's, auto)."""
    paper = yaml.safe_load((REPO / "config.yaml").read_text())["grids"]["paper"]
    config = {
        "grid": "resources_test",
        "training": {"device": device},
        **({"noise": {"memory_budget_mb": budget_mb}} if budget_mb else {}),
        "grids": {
            "resources_test": {
                "training": paper["training"],
                "runs": [point(SMALL), point(LARGE), point(ALEXNET)],
            }
        },
    }
    path = folder / f"resources_{device}_{budget_mb}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_env(gpus: int) -> dict[str, str]:
    """The environment with a fake count of local GPUs (sgdtail.cost.visible_gpus)."""
    return dict(os.environ, SGDTAIL_GPUS=str(gpus), PYTHONHASHSEED="0")


def dry_run(workdir: Path, *args: str, gpus: int = 0) -> str:
    """`snakemake -n` in workdir (the default workflow profile unless args name another), on a
    machine that shows ``gpus`` GPUs."""
    cmd = [
        "timeout",
        "-k",
        "10",
        "300",
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "8",  # the most threads a rule asks for: keeps them uncapped on a small host
        *args,
    ]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=snakemake_env(gpus))
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
        info = {
            "threads": int(threads[1]) if threads else 1,
            "group": (group, group_no) if group else None,
        }
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
    fixed = write_config(work, "auto", 512)
    base = ("--configfile", str(REPO / "config.yaml"))
    return {
        "cpu": jobs(dry_run(work, *base, str(cpu))),
        "fixed_budget": jobs(dry_run(work, *base, str(fixed))),
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


def test_noise_memory_under_auto_holds_every_gradient(dry_runs):
    """noise.memory_budget_mb: auto (the default) asks for what holds the larger split's
    float32 P × M gradients besides the rest (one pass over the data); a number asks for
    that number instead, the rest unchanged."""
    sys.path.insert(0, str(REPO / "scripts"))
    from sgdtail.cost import DATA_SIZES, net_size

    for run in (SMALL, LARGE, ALEXNET):
        p = {k: v[0] for k, v in point(run).items()}
        params = net_size(p["dataset"], p["arch"], p["width"], p["depth"])[0]
        rows = max(DATA_SIZES[p["dataset"]][2:]) // p["batch_size"]
        need = max(16, -(-4 * params * rows // 2**20))
        auto = of_run(dry_runs["cpu"], "measure_gradient_noise", run)["mem_mb"]
        fixed = of_run(dry_runs["fixed_budget"], "measure_gradient_noise", run)["mem_mb"]
        assert auto - fixed == need - 512, run


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
    assert (
        of_run(dry_runs["cuda"], "train_sgd", LARGE)["runtime"]
        < of_run(dry_runs["cpu"], "train_sgd", LARGE)["runtime"]
    )


def test_device_auto_asks_for_a_gpu_where_the_machine_shows_one(work):
    cpu = write_config(work, "auto")
    base = ("--configfile", str(REPO / "config.yaml"), str(cpu))
    local = jobs(dry_run(work, *base, gpus=2))
    for rule in PER_RUN:
        for run in (SMALL, LARGE, ALEXNET):
            info = of_run(local, rule, run)
            assert info["gpu"] == 1 and info["threads"] == 2, (rule, run, info)
    # on SLURM the submitting host's GPUs say nothing about the nodes: auto asks for none
    slurm = jobs(
        dry_run(work, "--workflow-profile", str(REPO / "profiles" / "slurm"), *base, gpus=2)
    )
    assert {of_run(slurm, rule, SMALL)["gpu"] for rule in PER_RUN} == {0}


def test_visible_gpus_reads_the_fake_count_cuda_visible_devices_and_nvidia_smi():
    from sgdtail.cost import visible_gpus

    assert visible_gpus({"SGDTAIL_GPUS": "3", "CUDA_VISIBLE_DEVICES": "0"}) == 3
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == 0
    assert visible_gpus({"PATH": ""}) == 0  # no nvidia-smi to ask


def events(output: str) -> list[tuple[str, str, str]]:
    """("start" | "end", rule, job id) in the order Snakemake printed them."""
    found, rule = [], None
    for line in output.splitlines():
        started = re.match(r"\s*(?:local)?rule (\w+):", line)
        if started:
            rule = started[1]
        jobid = re.match(r"\s+jobid: (\d+)", line)
        if jobid and rule:
            found.append(("start", rule, jobid[1]))
            rule = None
        done = re.search(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)
        if done:
            found.append(("end", done[2], done[1]))
    return found


def most_at_once(output: str, rules: set[str]) -> int:
    """The most jobs of ``rules`` running at the same time, from Snakemake's output."""
    running: set[str] = set()
    most = 0
    for kind, rule, jobid in events(output):
        if rule in rules:
            (running.add if kind == "start" else running.discard)(jobid)
            most = max(most, len(running))
    return most


def run_smoke(work: Path, data: Path, gpus: int, targets: list[str], *args: str) -> str:
    """Make ``targets`` of the smoke grid's workflow in ``work`` (local MNIST digits,
    --cores 4) on a machine that shows ``gpus`` GPUs."""
    cmd = [
        "timeout",
        "-k",
        "10",
        "900",
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(REPO / "config.yaml"),
        "--cores",
        "4",
        *args,
        "--config",
        "grid=smoke",
        f"datasets={{mnist: {{source: folder, path: {data}}}}}",
    ]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=snakemake_env(gpus))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_local_gpu_jobs_never_share_a_gpu_and_noise_budget_follows_mem_mb(tmp_path):
    """With --cores 4, the smoke grid's 4 training runs run side by side on a machine without
    GPUs, one at a time (train and noise jobs alike) on one that shows 1 GPU (device: auto).
    The noise jobs get mem_mb lowered by 400 MB: their gradient budget drops from 512 to 112."""
    from formats import load_real_digits, write_mnist_folder

    data = tmp_path / "mnist_data"
    write_mnist_folder(data, *load_real_digits())
    runs = [
        f"results/runs/mnist/fcn/w{w}_d{d}/cross_entropy_b50_lr0.1_s0"
        for w in (4, 8)
        for d in (2, 3)
    ]
    gpu_rules = {"train_sgd", "measure_gradient_noise"}
    free = run_smoke(tmp_path, data, 0, [f"{r}/checkpoints.pt" for r in runs])
    assert most_at_once(free, {"train_sgd"}) >= 2  # nothing holds CPU jobs back
    fixed = tmp_path / "budget.yaml"  # a budget in MB (the default, auto, follows the network)
    fixed.write_text("noise: {memory_budget_mb: 512}\n")
    configs = ("--configfile", str(REPO / "config.yaml"), str(fixed))
    table = jobs(
        dry_run(
            tmp_path,
            f"{runs[0]}/tail_index.csv",
            *configs,
            "--config",
            "grid=smoke",
            f"datasets={{mnist: {{source: folder, path: {data}}}}}",
            gpus=1,
        )
    )
    mem = table[("measure_gradient_noise", f"{runs[0]}/tail_index.csv")]["mem_mb"]
    one_gpu = run_smoke(
        tmp_path,
        data,
        1,
        [f"{r}/tail_index.csv" for r in runs],
        *configs,
        "--forcerun",
        "train_sgd",
        "--set-resources",
        f"measure_gradient_noise:mem_mb={mem - 400}",
    )
    assert sum(kind == "start" and rule in gpu_rules for kind, rule, _ in events(one_gpu)) == 8
    assert most_at_once(one_gpu, gpu_rules) == 1
    run_path = runs[0].removeprefix("results/runs/")
    log = (tmp_path / "logs/measure_gradient_noise" / f"{run_path}.log").read_text()
    assert (
        f"gradient memory budget 112 MB (noise.memory_budget_mb 512, job mem_mb {mem - 400})" in log
    ), log


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
    table = jobs(
        dry_run(
            work,
            "--workflow-profile",
            str(REPO / "profiles" / "slurm"),
            "--configfile",
            str(REPO / "config.yaml"),
            "--config",
            "grid=smoke",
        )
    )
    groups: dict[tuple, list[str]] = {}
    for (rule, _), info in table.items():
        if info["group"]:
            groups.setdefault(info["group"], []).append(rule)
    by_name = sorted((name, sorted(rules)) for (name, _), rules in groups.items())
    assert by_name == [
        ("small_runs", sorted(["train_sgd", "measure_gradient_noise"] * 4)),
        ("small_sharpness", ["measure_sharpness"] * 4),
    ], by_name


RESNET = "cifar10/resnet18/w0_d0/cross_entropy_b500_lr0.1_s0"


def test_a_torchvision_run_asks_for_resources_from_its_size(work):
    """A ResNet-18 sub-grid leaves width and depth out (run path w0_d0); its jobs ask for
    threads, memory and time from its parameter count and FLOPs, as a built-in network's do."""
    paper = yaml.safe_load((REPO / "config.yaml").read_text())["grids"]["paper"]
    resnet = {k: v for k, v in point(RESNET).items() if k not in ("width", "depth")}
    config = {
        "grid": "torchvision_test",
        "grids": {
            "torchvision_test": {"training": paper["training"], "runs": [point(SMALL), resnet]}
        },
    }
    path = work / "resources_torchvision.yaml"
    path.write_text(yaml.safe_dump(config))
    table = jobs(dry_run(work, "--configfile", str(REPO / "config.yaml"), str(path)))
    for rule in PER_RUN:
        small, large = of_run(table, rule, SMALL), of_run(table, rule, RESNET)
        assert large["threads"] == 4 and small["threads"] == 1, rule
        assert large["mem_mb"] > small["mem_mb"] and large["runtime"] > small["runtime"], rule


def test_an_optimizers_state_and_preconditioned_noise_ask_for_more(work, tmp_path):
    """The large FCN with plain SGD, momentum and Adam: the optimizer's state (one buffer,
    two for Adam, in training, resume.pt and every checkpoint) raises train_sgd's and the
    noise job's memory, its update the training time, and Adam's preconditioned noise the
    noise job's time; plain SGD asks for what it asked before the optimizer axis."""
    config = yaml.safe_load(write_config(work, "auto").read_text())
    grid = config["grids"]["resources_test"]
    grid["runs"] = [{**point(LARGE), "optimizer": ["sgd", "momentum", "adam"]}]
    path = tmp_path / "optimizers.yaml"
    path.write_text(yaml.safe_dump(config))
    table = jobs(dry_run(tmp_path, "--configfile", str(REPO / "config.yaml"), str(path)))
    sgd, momentum, adam = (f"{LARGE}{suffix}" for suffix in ("", "_momentum", "_adam"))
    for rule in ("train_sgd", "measure_gradient_noise"):
        mem = [of_run(table, rule, run)["mem_mb"] for run in (sgd, momentum, adam)]
        assert mem[0] < mem[1] < mem[2], (rule, mem)
    runtime = [of_run(table, "train_sgd", run)["runtime"] for run in (sgd, momentum, adam)]
    assert runtime[0] <= runtime[1] < runtime[2], runtime
    noise = [of_run(table, "measure_gradient_noise", run)["runtime"] for run in (sgd, adam)]
    assert noise[0] < noise[1], noise
    before = jobs(dry_run(work, "--configfile", str(REPO / "config.yaml"), str(write_config(work))))
    for rule in PER_RUN:
        assert of_run(table, rule, sgd) == of_run(before, rule, LARGE), rule
