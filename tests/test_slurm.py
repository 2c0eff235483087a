"""The workflow on a real SLURM cluster: one node on 127.0.0.1, daemons started by .ci/slurm.sh.

The module starts munged, slurmctld and slurmd once (``.ci/slurm.sh up``, which installs
them with apt-get when missing) and, when the module ends, passed or not, stops by pid the
daemons it started (``.ci/slurm.sh release``; a test session running at the same time keeps
them until it ends too). Without root or apt-get, or when ``slurm.sh up`` fails, it skips,
saying why; with ``CI=true`` (which .ci/run exports) tests/conftest.py turns that skip into a
failure, so CI always runs it. The resource model itself (memory, runtime, attempt scaling, GPU
requests, job groups) is also checked without SLURM, by dry runs, in tests/test_resources.py.

What it checks, with ``--workflow-profile profiles/slurm`` and ``--executor slurm``:

* the smoke grid end to end on the real MNIST digits: every output exists, every non-local
  job went through sbatch (job ids, SLURM logs, ``squeue`` states COMPLETED), the 4 small runs
  became 2 group jobs (``--group-components small_runs=2``) that ask for the CPUs and memory
  of one job and the sum of the runtimes (their jobs run one after the other), and
  download_dataset ran on the submitting host (a local rule);
* a job that fails at run time (the data files corrupted after download_dataset checked them,
  so the config passes validation) is reported as failed, the workflow exits non-zero, and
  the retry asked SLURM for twice the memory and runtime;
* resources follow the grid point (paper grid dry run) and GPU requests follow
  ``training.device``.

Finished jobs stay visible to ``squeue`` because .ci/slurm.sh sets MinJobAge=600; there is
no accounting database, and the commands carry no ``--slurm-status-command``: the workflow's
start check (sgdtail.slurm) switches the plugin from sacct to squeue, as it would for a user.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from formats import load_real_digits, write_mnist_folder

REPO = Path(__file__).resolve().parents[1]
SLURM_SH = REPO / ".ci" / "slurm.sh"
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
DAEMONS = ("slurmd", "slurmctld", "munged")
STATE_DIR = Path(os.environ.get("SLURM_CI_DIR", "/run/sgdtail-slurm"))  # as in slurm.sh
USERS_DIR = STATE_DIR / "users"

pytestmark = pytest.mark.slurm


def cannot_run(reason: str):
    """Skip, saying why; where CI=true the hook in tests/conftest.py makes it a failure."""
    pytest.skip(f"SLURM cannot be set up here: {reason}")


def stop_daemons(state_dir: Path) -> list[str]:
    """Fallback of `slurm.sh release`: stop the daemons whose pids it recorded, by pid."""
    stopped = []
    for name in DAEMONS:
        pid_file = state_dir / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm")
        if comm.exists() and comm.read_text().strip() == name:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while comm.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if comm.exists():
                os.kill(pid, signal.SIGKILL)
            stopped.append(f"{name}:{pid}")
        pid_file.unlink()
    return stopped


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running one-node SLURM cluster for the whole module.

    `slurm.sh up PID` starts the daemons that are not running and registers this process as
    a user; `slurm.sh release PID` stops (by pid) the daemons it started once no other test
    session that uses them is left, so sessions running side by side do not cut each other off.
    """
    if os.geteuid() != 0:
        cannot_run("needs root to install and start munged, slurmctld and slurmd (.ci/slurm.sh)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        cannot_run("SLURM is not installed and apt-get is not available to install it")
    me = str(os.getpid())
    try:
        res = subprocess.run(
            ["timeout", "-k", "10", "600", str(SLURM_SH), "up", me],
            capture_output=True,
            text=True,
        )
        print(res.stderr.strip())
        if res.returncode != 0:
            cannot_run(f".ci/slurm.sh up failed (exit {res.returncode}): {res.stderr[-2000:]}")
        yield
    finally:
        res = subprocess.run(
            ["timeout", "-k", "10", "120", str(SLURM_SH), "release", me],
            capture_output=True,
            text=True,
        )
        print(res.stderr.strip())
        users = [u.name for u in USERS_DIR.glob("*") if Path(f"/proc/{u.name}").exists()]
        if res.returncode != 0 and not set(users) - {me}:
            print("slurm.sh release failed; stopped by pid:", stop_daemons(STATE_DIR))


def run_snakemake(workdir: Path, *args: str, targets=(), timeout: int = 600):
    """Snakemake with the SLURM profile in workdir; targets first (not after --config)."""
    cmd = [
        "timeout",
        "-k",
        "15",
        str(timeout),
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        # no accounting database here, and no --slurm-status-command: the workflow's start
        # check switches the plugin from sacct to squeue itself (MinJobAge=600)
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--cores",
        "2",  # the node has 2 CPUs: no job or group job may ask for more
        "--latency-wait",
        "10",
        *args,
        "--configfile",
        str(REPO / "config.yaml"),
    ]
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    return res, time.perf_counter() - t0


def smoke_config(data_root: Path) -> list[str]:
    return ["--config", "grid=smoke", f"datasets={{mnist: {{source: folder, path: {data_root}}}}}"]


def submissions(output: str) -> dict[str, tuple[str, Path]]:
    """SLURM job id -> (Snakemake job, its SLURM log) from Snakemake's output."""
    return {m[2]: (m[1], Path(m[3])) for m in SUBMITTED.finditer(output)}


def squeue(job_ids) -> dict[str, dict[str, str]]:
    """State, CPUs, memory, time limit and comment (rule) of finished or running jobs."""
    res = subprocess.run(
        [
            "timeout",
            "-k",
            "5",
            "30",
            "squeue",
            "--states=all",
            "--noheader",
            "--jobs",
            ",".join(job_ids),
            "--format=%i|%T|%C|%m|%l|%k",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = (line.split("|") for line in res.stdout.splitlines() if line.strip())
    keys = ("state", "cpus", "mem", "time", "comment")
    return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}


def slurm_minutes(limit: str) -> int:
    """squeue's time limit ([days-]hours:minutes:seconds or minutes:seconds) in minutes."""
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    seconds = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    return (int(days or 0) * 86400 + seconds) // 60


@pytest.fixture(scope="module")
def smoke_run(slurm_cluster, tmp_path_factory):
    """The smoke grid end to end through SLURM, once; the tests below inspect it."""
    work = tmp_path_factory.mktemp("slurm_smoke")
    data_root = work / "mnist_data"
    write_mnist_folder(data_root, *load_real_digits())
    res, seconds = run_snakemake(
        work,
        "--group-components",
        "small_runs=2",
        "small_sharpness=4",
        "--retries",
        "0",
        *smoke_config(data_root),
    )
    out = res.stdout + res.stderr
    print(f"smoke grid through SLURM: {seconds:.0f} s")
    assert res.returncode == 0, out[-6000:]
    assert "job states are read with squeue instead of sacct" in out  # the start check
    return work, data_root, out


def test_smoke_grid_outputs_exist(smoke_run):
    work, data_root, _ = smoke_run
    runs = pd.read_csv(work / "results/tables/runs.csv")
    assert len(runs) == 4 and set(runs.status) == {"completed"}
    summary = pd.read_csv(work / "results/tables/summary.csv")
    assert len(summary) == 4 * 3 * 2  # 4 runs × checkpoints {0, 5, 20} × {train, test}
    assert (work / "figures/alpha_vs_width.pdf").stat().st_size > 1000
    for name in ("train_sgd", "measure_gradient_noise"):
        assert len(list((work / "logs" / name).rglob("*.log"))) == 4, name
    # every target of `all` is there and up to date (a local dry run, default profile)
    res = subprocess.run(
        [
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
            str(work),
            "--cores",
            "1",
            *smoke_config(data_root),
            "--configfile",
            str(REPO / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr


def test_every_job_went_through_slurm(smoke_run):
    work, _, out = smoke_run
    jobs = submissions(out)
    assert jobs, "no 'submitted with SLURM jobid' line: nothing went through sbatch\n" + out[-3000:]
    states = squeue(jobs)
    assert set(states) == set(jobs), f"squeue does not know jobs {set(jobs) - set(states)}"
    for job_id, info in states.items():
        assert info["state"] == "COMPLETED", (job_id, info)
        log = jobs[job_id][1]
        assert log.is_file() and log.name == f"{job_id}.log", log  # kept by the profile
    rules = sorted(info["comment"] for info in states.values())
    print("SLURM jobs:", rules)
    # the local rule ran on this host, not through sbatch
    assert not any("download_dataset" in rule for rule in rules)
    assert (work / "resources/datasets/mnist.manifest.json").is_file()
    assert "localrule download_dataset" in out
    for rule in ("prepare_dataset", "aggregate_results", "plot_alpha_vs_width"):
        assert any(rule in comment for comment in rules), rule
    # the per-run jobs of small runs only inside group jobs, never on their own
    per_run = ("rule_train_sgd", "rule_measure_gradient_noise", "rule_measure_sharpness")
    assert not any(comment.startswith(per_run) for comment in rules), rules


def test_small_runs_are_grouped_into_few_slurm_jobs(smoke_run):
    _, _, out = smoke_run
    jobs = submissions(out)
    states = squeue(jobs)
    groups = {i: s for i, s in states.items() if "small_runs" in s["comment"]}
    # 4 small runs (train, noise, ... each), 2 runs per group job: 2 SLURM jobs
    assert len(groups) == 2, states
    for job_id, info in groups.items():
        # the group job's SLURM log: its jobs run one after the other, as job steps (srun)
        log = jobs[job_id][1].read_text()
        members = re.findall(r"^localrule (\w+):\n(?:.*\n)*?\s+resources: (.*)", log, re.M)
        rules = [rule for rule, _ in members]
        # every job of 2 runs: train and noise (and whatever else runs per run), twice each
        assert {"train_sgd", "measure_gradient_noise"} <= set(rules), log[-3000:]
        assert all(rules.count(rule) == 2 for rule in rules), rules
        resources = [dict(kv.split("=", 1) for kv in res.split(", ")) for _, res in members]
        # one job at a time (group_slot): the CPUs and memory of the largest job, the sum of
        # the runtimes
        assert int(info["cpus"]) == max(int(r.get("threads", 1)) for r in resources), info
        assert int(info["mem"].rstrip("M")) == max(int(r["mem_mb"]) for r in resources), info
        assert slurm_minutes(info["time"]) == sum(int(r["runtime"]) for r in resources), info


def test_failing_job_is_reported_and_the_workflow_fails(slurm_cluster, tmp_path):
    data_root = tmp_path / "mnist_data"
    raw = write_mnist_folder(data_root, *load_real_digits())
    # 1. download_dataset (a local rule) checks the folder and records every file's SHA-256
    res, _ = run_snakemake(
        tmp_path, *smoke_config(data_root), targets=["resources/datasets/mnist.manifest.json"]
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert not submissions(res.stdout + res.stderr)  # nothing was sent to SLURM
    # 2. corrupt the images in place (same size, valid header): only prepare_dataset notices
    images = raw / "train-images-idx3-ubyte"
    blob = bytearray(images.read_bytes())
    blob[16:4016] = bytes(255 - b for b in blob[16:4016])
    images.write_bytes(bytes(blob))
    # 3. prepare_dataset runs on SLURM, fails, is retried once with more memory, fails again
    res, seconds = run_snakemake(
        tmp_path,
        "--retries",
        "1",
        *smoke_config(data_root),
        targets=["resources/datasets/mnist.pt"],
    )
    out = res.stdout + res.stderr
    print(f"failing job through SLURM: {seconds:.0f} s")
    assert res.returncode != 0, out[-4000:]
    assert "Error in rule prepare_dataset" in out, out[-4000:]
    jobs = submissions(out)
    assert len(jobs) == 2, jobs  # attempt 1 and its retry
    states = squeue(jobs)
    attempts = [states[i] for i in sorted(jobs, key=int)]
    assert [a["state"] for a in attempts] == ["FAILED", "FAILED"], attempts
    assert all("prepare_dataset" in a["comment"] for a in attempts), attempts
    for job_id in jobs:
        assert f"SLURM-job '{job_id}' failed" in out
    # retries scale memory and runtime with the attempt
    mem = [int(a["mem"].rstrip("M")) for a in attempts]
    assert mem[1] == 2 * mem[0], attempts
    minutes = [slurm_minutes(a["time"]) for a in attempts]
    assert minutes[1] == 2 * minutes[0], attempts
    assert not (tmp_path / "resources/datasets/mnist.pt").exists()
    for _, slurm_log in jobs.values():  # failed jobs keep their SLURM log, with the reason
        assert "SourceChangedError" in slurm_log.read_text(), slurm_log


# ------------------------------------------------------------------ dry runs (no jobs)
def dry_run(workdir: Path, *args: str) -> str:
    res, _ = run_snakemake(workdir, "-n", *args)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return res.stdout + res.stderr


def job_resources(output: str, rule: str) -> dict[str, dict[str, str]]:
    """Output path -> resources of every `rule` job printed by a dry run."""
    found = {}
    for block in re.split(r"\n(?=\s*rule \w+:)", output):
        if not re.match(rf"\s*rule {rule}:", block):
            continue
        outputs = re.search(r"output: ([^,\n]+)", block)
        res = re.search(r"resources: (.*)", block)
        if outputs and res:
            found[outputs[1]] = dict(kv.split("=", 1) for kv in res[1].split(", "))
    return found


def test_resources_follow_the_grid_point(slurm_cluster, tmp_path):
    out = dry_run(tmp_path, "--config", "grid=paper")
    train = job_resources(out, "train_sgd")
    noise = job_resources(out, "measure_gradient_noise")

    def pick(table, run):
        keys = [k for k in table if f"/{run}/" in k]
        assert keys, run
        return {k: int(v) for k, v in table[keys[0]].items() if v.isdigit()}

    small = pick(train, "mnist/fcn/w4_d2/cross_entropy_b500_lr0.1_s0")
    large = pick(train, "cifar10/fcn/w1024_d10/cross_entropy_b500_lr0.1_s0")
    assert large["mem_mb"] > small["mem_mb"] and large["runtime"] > 10 * small["runtime"]
    noise_fcn = pick(noise, "mnist/fcn/w4_d2/cross_entropy_b500_lr0.1_s0")
    noise_alexnet = pick(noise, "cifar100/alexnet/w256_d8/cross_entropy_b500_lr0.1_s0")
    assert noise_alexnet["mem_mb"] > noise_fcn["mem_mb"]
    assert noise_alexnet["runtime"] > noise_fcn["runtime"]
    assert small.get("gpu", 0) == 0  # training.device: auto asks for no GPU
    # with the profile's group-components, small runs are grouped; large ones are not
    assert out.count("Group job small_runs") >= 10
    print(f"paper grid: {len(train)} runs; w4_d2 {small}, w1024_d10 {large}")


def test_gpu_request_follows_training_device(slurm_cluster, tmp_path):
    out = dry_run(tmp_path, "--config", "grid=smoke", "training={device: cuda}")
    for rule in ("train_sgd", "measure_gradient_noise"):
        table = job_resources(out, rule)
        assert table and all(r.get("gpu") == "1" for r in table.values()), (rule, table)
    assert all("gpu" not in r for r in job_resources(out, "prepare_dataset").values())
