"""The hook in tests/conftest.py: with CI=true a skipped test fails unless it is allowed.

Each check runs pytest in a subprocess on a tiny test folder holding a copy of the repository's
conftest.py (the hook under test) and its own allowed_skips.txt, and reads the JUnit XML.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

DEMO = """
import pytest


@pytest.fixture
def missing_thing():
    pytest.skip("fixture cannot set up")


def test_passes():
    pass


def test_plain_skip():
    pytest.skip("plain skip")


@pytest.mark.skipif(True, reason="marker skip")
def test_marker_skip():
    pass


def test_importorskip():
    pytest.importorskip("no_such_module_sgdtail_demo")


def test_fixture_skip(missing_thing):
    pass


def test_allowed():
    pytest.skip("allowed skip")


@pytest.mark.parametrize("case", ["a", "b"])
def test_allowed_cases(case):
    pytest.skip(f"allowed case {case}")


@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    raise AssertionError
"""

MODULE_SKIP = """
import pytest

pytest.importorskip("no_such_module_sgdtail_demo")


def test_never_collected():
    pass
"""

ALLOWED = """# comment lines and blank lines are ignored

test_demo.py::test_allowed  # the demo's allowed skip
test_demo.py::test_allowed_cases  # every case of a parametrized test
"""


def run_demo(tmp_path: Path, ci: str | None, allowed: str = ALLOWED, module_skip: bool = False):
    """pytest on the demo folder; (exit code, output, {test id: outcome})."""
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "allowed_skips.txt").write_text(allowed)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_demo.py").write_text(DEMO)
    if module_skip:
        (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(REPO / "scripts")
    if ci is not None:
        env["CI"] = ci
    junit = tmp_path / "junit.xml"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rA",
            "--rootdir",
            str(tmp_path),
            f"--junitxml={junit}",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
            outcomes[name] = kinds[0] if kinds else "passed"
    return res.returncode, res.stdout + res.stderr, outcomes


def test_without_ci_skips_stay_skips(tmp_path):
    code, out, outcomes = run_demo(tmp_path, ci=None, module_skip=True)
    assert code == 0, out[-3000:]
    assert outcomes["test_demo::test_passes"] == "passed"
    for name in (
        "test_plain_skip",
        "test_marker_skip",
        "test_importorskip",
        "test_fixture_skip",
        "test_allowed",
        "test_allowed_cases[a]",
    ):
        assert outcomes[f"test_demo::{name}"] == "skipped", (name, outcomes)
    # 7 skips in test_demo.py and the module that skips itself
    assert "1 passed, 8 skipped, 1 xfailed in" in out, out[-3000:]


def test_in_ci_every_skip_fails_unless_allowed(tmp_path):
    code, out, outcomes = run_demo(tmp_path, ci="true")
    assert code == 1, out[-3000:]
    assert outcomes["test_demo::test_passes"] == "passed"
    # a skip while the test runs: FAILED; in a fixture or a skipif marker (setup): ERROR
    assert outcomes["test_demo::test_plain_skip"] == "failure"
    assert outcomes["test_demo::test_importorskip"] == "failure"
    assert outcomes["test_demo::test_marker_skip"] == "error"
    assert outcomes["test_demo::test_fixture_skip"] == "error"
    # the allowed ones (by id, and every case of a parametrized test) still skip
    assert outcomes["test_demo::test_allowed"] == "skipped"
    assert outcomes["test_demo::test_allowed_cases[a]"] == "skipped"
    assert outcomes["test_demo::test_allowed_cases[b]"] == "skipped"
    # an expected failure is not a skip
    assert "1 xfailed" in out, out[-3000:]
    # the failure says why, and how to allow it
    assert "CI=true: this test may not skip (plain skip)" in out, out[-3000:]
    assert "allowed_skips.txt" in out
    assert "CI=true: skipped tests fail, except the 2 listed" in out  # the header
    assert "2 failed, 1 passed, 3 skipped, 1 xfailed, 2 errors in" in out, out[-1500:]


def test_in_ci_a_module_that_skips_itself_fails(tmp_path):
    code, out, _ = run_demo(tmp_path, ci="true", module_skip=True)
    assert code != 0, out[-3000:]
    assert "ERROR test_module_skip.py - CI=true: this test may not skip" in out, out[-3000:]
    assert "no_such_module_sgdtail_demo" in out


@pytest.mark.parametrize(
    ("value", "strict"),
    [("true", True), ("1", True), ("YES", True), ("false", False), ("", False), (None, False)],
)
def test_the_setting(monkeypatch, value, strict):
    from conftest import strict_skips

    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert strict_skips() is strict


def test_allowed_list_needs_a_reason(tmp_path):
    code, out, _ = run_demo(tmp_path, ci="true", allowed="test_demo.py::test_allowed\n")
    assert code != 0 and code != 1, out[-3000:]  # a usage error, before any test runs
    assert "allowed_skips.txt:1: write `<test id>  # <why it may skip in CI>`" in out, out


def test_ci_script_turns_the_setting_on():
    script = (REPO / ".ci" / "run").read_text()
    export = script.index("export CI=true")
    assert export < script.index("-m pytest"), "CI=true must be set before the tests run"


def test_the_repository_allows_no_skips():
    """The real list: empty (see its comments); a reason for any entry added later."""
    from conftest import read_allowed_skips

    assert read_allowed_skips(REPO / "tests" / "allowed_skips.txt") == {}
