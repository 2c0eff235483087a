"""The mutation-testing runner's staging (tests/mutation/run.py); mutmut itself is not run here."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("mutation") / "run.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("mutation_run", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_staged_copy_has_the_library_under_src_and_mutmuts_config(runner, tmp_path):
    folder = tmp_path / "stage"
    runner.stage(folder, ["claims", "dynamics"], fresh=True)
    assert (folder / "src/sgdtail/claims.py").read_text() == (
        runner.REPO / "scripts/sgdtail/claims.py"
    ).read_text()
    assert not (folder / "scripts/sgdtail").exists()
    assert (folder / "scripts/aggregate_results.py").is_file()  # rule scripts stay in place
    config = tomllib.loads((folder / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["pythonpath"] == ["src"]
    mutmut = config["tool"]["mutmut"]
    assert mutmut["only_mutate"] == ["src/sgdtail/claims.py", "src/sgdtail/dynamics.py"]
    selection = mutmut["pytest_add_cli_args_test_selection"]
    assert {"tests/test_claims.py", "tests/test_dynamics.py"} <= set(selection)
    assert "tests/test_estimators.py" not in selection
    assert mutmut["process_isolation"] == "forkserver"


def test_restaging_a_changed_library_drops_mutmuts_test_map(runner, tmp_path):
    """mutmut maps tests to the functions they call only once; after a change to the library
    (new functions) the map must be taken again, and an unchanged restage keeps it."""
    folder = tmp_path / "stage"
    runner.stage(folder, ["noise"], fresh=True)
    stats = folder / "mutants" / "mutmut-stats.json"
    stats.parent.mkdir()
    stats.write_text("{}")
    runner.stage(folder, ["noise"], fresh=False)
    assert stats.exists()
    staged = folder / "src/sgdtail/noise.py"
    staged.write_text(staged.read_text() + "\n# changed\n")  # the repository's differs now
    runner.stage(folder, ["noise"], fresh=False)
    assert not stats.exists()
    assert staged.read_bytes() == (runner.REPO / "scripts/sgdtail/noise.py").read_bytes()


def test_only_the_named_functions_are_fenced_off(runner, tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "def keep(x):\n    return x + 1\n\n\n@decorator\ndef plot_a(x):\n"
        "    return x - 1\n\n\ndef sim(x):\n    return x * 2\n"
    )
    runner.exclude_functions(path, ["sim", r"plot_\w+"])
    text = path.read_text()
    ast.parse(text)
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln == "# pragma: no mutate start"]
    ends = [i for i, ln in enumerate(lines) if ln == "# pragma: no mutate end"]
    assert len(starts) == len(ends) == 2
    fenced = {ln for s, e in zip(starts, ends, strict=True) for ln in lines[s:e]}
    assert "@decorator" in fenced and "def plot_a(x):" in fenced and "def sim(x):" in fenced
    assert "def keep(x):" not in fenced and "    return x + 1" not in fenced


def test_report_scores_each_module_and_names_unlisted_survivors(runner, capsys, monkeypatch):
    monkeypatch.setattr(runner, "listed_equivalent", lambda: {"sgdtail.noise.x_f__mutmut_2": "r"})
    status = {f"sgdtail.noise.x_f__mutmut_{i}": "killed" for i in range(3, 20)}
    status |= {"sgdtail.noise.x_f__mutmut_1": "survived", "sgdtail.noise.x_f__mutmut_2": "survived"}
    assert not runner.report(status, ["noise"], 0.85)  # 17 of 19 = 89 %, but one unlisted
    out = capsys.readouterr().out
    assert "score 89.5%" in out and "unlisted 1" in out and "x_f__mutmut_1: survived" in out
    status["sgdtail.noise.x_f__mutmut_1"] = "timeout"
    assert runner.report(status, ["noise"], 0.85)
    assert not runner.report(status, ["noise"], 0.95)
    status["sgdtail.noise.x_f__mutmut_3"] = "segfault"  # the tests crashed: caught too
    assert runner.report(status, ["noise"], 0.85)
    assert "{'killed': 18, 'survived': 1}" in capsys.readouterr().out.splitlines()[-1]
    status["sgdtail.noise.x_f__mutmut_20"] = "not checked"  # a run stopped before the end
    assert not runner.report(status, ["noise"], 0.85)
    assert "19 checked" in capsys.readouterr().out
