"""Linters that CI enforces: ruff (lint and format) on the Python code, snakefmt and
`snakemake --lint` on the workflow. Each runs on the repository as it is and fails with the
linter's findings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", "-k", "10", "300", sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_ruff_check():
    # settings from pyproject.toml (line length 100, rules E F W I B UP NPY, and C901: no
    # function above cyclomatic complexity 15)
    res = run("ruff", "check", "--no-cache", "--output-format", "concise", str(REPO))
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]


def test_ruff_format_check():
    res = run("ruff", "format", "--check", "--no-cache", str(REPO))
    assert res.returncode == 0, (
        "ruff format would reformat (run `.venv/bin/ruff format .`):\n"
        + (res.stdout + res.stderr)[-6000:]
    )


def test_snakefmt_check():
    res = run("snakefmt", "--check", "--diff", "Snakefile", "rules/")
    assert res.returncode == 0, (
        "snakefmt would reformat (run `.venv/bin/snakefmt Snakefile rules/`):\n"
        + (res.stdout + res.stderr)[-6000:]
    )


def test_snakemake_lint(tmp_path):
    """Snakemake's own lints (exit code 1 when it has findings) with the default config."""
    res = run(
        "snakemake",
        "--lint",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(REPO / "config.yaml"),
        cwd=tmp_path,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "Congratulations, your workflow is in a good condition!" in out, out[-3000:]
