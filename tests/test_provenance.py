"""run.json's provenance: the versions of every package a result depends on, and on a GPU the
CUDA and cuDNN versions and the GPU model (the CUDA path is checked with a stand-in device, so
the test runs on CPU-only machines), and the time and memory record of the per-run jobs."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import numpy
import pandas as pd
import pytest
import torch

from sgdtail import io
from sgdtail.train import TrainConfig, train_sgd

#: What run.json must name, whatever else it records.
REQUIRED = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "snakemake",
    "matplotlib",
    "seaborn",
)


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_provenance_names_every_package_with_its_installed_version():
    prov = io.provenance()
    assert set(REQUIRED) <= set(io.PROVENANCE_PACKAGES) <= set(prov)
    assert prov["torch"] == torch.__version__ and prov["numpy"] == numpy.__version__
    for name in io.PROVENANCE_PACKAGES:
        if name not in ("torch", "numpy"):
            assert prov[name] == installed(name), name
    # the tests run where the workflow runs: every package it needs is installed
    for name in ("torchvision", "scipy", "pandas", "matplotlib", "seaborn", "snakemake"):
        assert prov[name], name
    assert prov["python"] == sys.version.split()[0]
    assert prov["code_version"]  # a commit, or "unknown" outside a git checkout
    assert prov["cuda"] is None  # no CUDA device given
    assert io.package_version("surely-not-an-installed-package") is None


def test_provenance_on_a_cuda_device_records_cuda_cudnn_and_the_gpu(monkeypatch):
    props = SimpleNamespace(major=9, minor=0, total_memory=143771 * 2**20)
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90501)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    prov = io.provenance(torch.device("cuda", 0))
    assert prov["cuda"] == {
        "cuda": "12.6",
        "cudnn": 90501,
        "gpu": "NVIDIA H200",
        "capability": "9.0",
        "memory_mib": 143771,
        "device_count": 1,
    }
    assert io.provenance("cuda")["cuda"]["gpu"] == "NVIDIA H200"  # a device name works too
    assert io.provenance(torch.device("cpu"))["cuda"] is None
    json.dumps(prov)  # stored as JSON


def test_run_json_records_versions_device_and_data_hash(tmp_path, small_data):
    cfg = TrainConfig(
        dataset="synthetic",
        arch="fcn",
        width=8,
        depth=2,
        batch_size=20,
        lr=0.1,
        loss="cross_entropy",
        seed=0,
        iterations=10,
        checkpoints=(0, 10),
        eval_batch_size=128,
    )
    train_sgd(cfg, small_data, tmp_path, torch.device("cpu"))
    info = json.loads((tmp_path / "run.json").read_text())
    prov = info["provenance"]
    for name in REQUIRED:
        assert name in prov, name
    assert prov["scipy"] == installed("scipy") and prov["pandas"] == installed("pandas")
    assert prov["cuda"] is None and info["device"] == "cpu"
    assert info["data_hash"] == small_data.content_hash  # the prepared data's content hash


def test_job_usage_records_the_whole_process_in_benchmark_columns(tmp_path):
    """A process that sleeps 0.3 s, then holds 300 MB and spins 0.6 s of CPU, writes a record
    that counts its start-up and sleep in s, its busy time in cpu_time and the 300 MB in
    max_rss, in the columns figure runtime_by_grid_axis reads."""
    out = tmp_path / "benchmarks" / "train_sgd" / "usage.tsv"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); time.sleep(0.3)\n"
        "import numpy as np; from sgdtail.io import write_job_usage\n"
        "x = np.ones(300 * 2**20 // 8); t = time.process_time()\n"
        "while time.process_time() - t < 0.6: x[:1000] += 1\n"
        "write_job_usage(sys.argv[1])\n"
    )
    scripts = Path(io.__file__).parents[1]
    subprocess.run([sys.executable, "-c", code, str(out), str(scripts)], check=True)
    usage = pd.read_csv(out, sep="\t")
    assert tuple(usage.columns) == io.USAGE_COLUMNS and len(usage) == 1
    row = usage.iloc[0]
    assert row["s"] >= 0.9 and 0.6 <= row["cpu_time"] < row["s"]
    assert row["max_rss"] >= 300
    assert row["mean_load"] == pytest.approx(100 * row["cpu_time"] / row["s"], rel=0.02)
    assert row["h:m:s"] == str(datetime.timedelta(seconds=round(row["s"])))
