"""Mutation testing of the science core with mutmut; not part of the default test run.

    .venv/bin/python tests/mutation/run.py [--modules estimators claims ...] [--fresh]

mutmut changes one thing at a time in the library (an operator, a constant, a call's
argument), runs the tests that cover the changed function, and records whether a test failed
("killed") or all passed ("survived"). The score of a module is killed / all mutants, where a
mutant that no selected test reaches counts as survived.

mutmut names a module by its file path and strips only a leading ``src.``, so the tracked files
are copied to a staging folder (``.mutation/`` by default, ignored by git) with
``scripts/sgdtail/`` moved to ``src/sgdtail/``; the tests then import ``sgdtail.*`` from the
mutated copy (the rule scripts stay in ``scripts/`` and import it too). A second run
reuses the staging folder's results for functions that did not change (``--fresh`` starts over).

The run fails (exit 1) when a module scores below ``--min-score`` or when a survivor is neither
killed nor listed, with the reason it is equivalent, in ``tests/mutation/equivalent.txt``.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.txt")

# module of scripts/sgdtail -> the fast test files that cover it
MODULES: dict[str, list[str]] = {
    "estimators": ["tests/test_estimators.py"],
    "noise": ["tests/test_noise.py", "tests/test_optimizers.py"],
    "claims": ["tests/test_claims.py"],
    "aggregate": ["tests/test_aggregate.py", "tests/test_claims.py"],
    "train": ["tests/test_train.py"],
    "dynamics": ["tests/test_dynamics.py"],
    "linear_sgd": ["tests/test_linear_sgd.py"],
    "eta_over_b": ["tests/test_eta_over_b.py", "tests/test_claims.py"],
    "dynamics_claims": ["tests/test_dynamics.py"],
    "verdicts": [
        "tests/test_verdicts.py",
        "tests/test_claims.py",
        "tests/test_dynamics.py",
        "tests/test_sharpness.py",
    ],
}
# what tests read besides the library and the tests (mutmut runs them in <folder>/mutants)
ALSO_COPY = [
    "config.yaml",
    "config.schema.yaml",
    "Snakefile",
    "rules",
    "profiles",
    "envs",
    "scripts",
]
# dynamics: only its statistics (the largest-step share, its median interval and AUC, the
# jump-share and calibration tables) are mutated, not the simulators and the theory (their own
# tests check them against exact results); the figures (plots_dynamics) are not mutated
NOT_STATISTICS = [
    "check_alpha",
    "sas_increments",
    "levy_right_tail_constant",
    "potential",
    "_check_well",
    "_drift_flow",
    "_validate_sim",
    "_simulate_batch",
    "simulate_exit_times",
    "mean_exit_time",
    "brownian_mean_exit_time",
    "relaxation_time",
    "kramers_mean_exit_time",
    "levy_mean_exit_time_asymptotic",
    "effective_noise",
    "small_noise_asymptote",
    "_sweep_chunk",
    "_sweep_configs",
    "_run_particles",
    "_config_steps",
    "_check_positive",
    "_check_sweep_args",
    "exit_time_sweep",
    "sample_paths",
    "noise_list",
    "draw_increments",
    "walk_paths",
]
# kill-and-resume tests of a subprocess (up to a minute each); the in-process resume tests of
# test_train and test_noise cover the same paths for the mutants
DESELECT = [
    "tests/test_train.py::test_killed_run_resumes_bit_identical",
    "tests/test_train.py::test_signal_saves_resume_state_at_the_current_step_and_resumes_bit_identical",
    "tests/test_noise.py::test_killed_noise_job_keeps_finished_parts_and_completes_identically",
]
# a mutant whose tests hang (timeout) or crash the test process (segfault, e.g. a loop that
# grows a list without end) is caught as surely as one that fails an assertion
KILLED = {"killed", "timeout", "segfault"}
SURVIVED = {"survived", "no tests"}
NOT_CHECKED = "not checked"
RESULT = re.compile(r"^\s*(sgdtail\.(\w+)\.\S+): (.+?)\s*$")


def tracked_files() -> list[str]:
    """The repository's files as git sees them (tracked, and untracked but not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def stage(folder: Path, modules: list[str], fresh: bool) -> None:
    """Copy the repository to ``folder`` (library in src/) with mutmut's config for ``modules``.

    When a library or test file, or the test selection, changed since the last run, mutmut's
    record of which tests call which function (``mutants/mutmut-stats.json``) is deleted, so
    that it is taken again: mutmut itself only adds the calls of new tests, and a function
    that a change created would otherwise count as covered by no test."""
    if fresh and folder.exists():
        shutil.rmtree(folder)
    before = _code_snapshot(folder)
    for name in tracked_files():
        target = folder / re.sub(r"^scripts/sgdtail/", "src/sgdtail/", name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != (REPO / name).read_bytes():
            shutil.copy2(REPO / name, target)
    tests = sorted({t for m in modules for t in MODULES[m]})
    selection = tests + ["-m", "not slow and not slurm"] + [f"--deselect={t}" for t in DESELECT]
    pyproject = (
        (REPO / "pyproject.toml")
        .read_text()
        .replace('pythonpath = ["scripts"]', 'pythonpath = ["src"]')
    )
    pyproject += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/sgdtail"]\n'
        f"also_copy = {ALSO_COPY}\n"
        # torch's thread pools do not survive a fork from a process that has used them
        'process_isolation = "forkserver"\n'
        f"only_mutate = {[f'src/sgdtail/{m}.py' for m in modules]}\n"
        f"pytest_add_cli_args_test_selection = {selection}\n"
    ).replace("'", '"')
    (folder / "pyproject.toml").write_text(pyproject)
    exclude_functions(folder / "src/sgdtail/dynamics.py", NOT_STATISTICS)
    if _code_snapshot(folder) != before:
        (folder / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)


def _code_snapshot(folder: Path) -> dict[str, bytes]:
    """The staged library, tests and mutmut config (with its test selection), file by file:
    what the test map depends on."""
    files = [*folder.glob("src/sgdtail/*.py"), *folder.glob("tests/**/*.py")]
    files += [f for f in [folder / "pyproject.toml"] if f.exists()]
    return {str(f.relative_to(folder)): f.read_bytes() for f in files}


def exclude_functions(path: Path, names: list[str]) -> None:
    """Put the module-level functions called ``names`` (regexes) of the staged file between
    mutmut's ``# pragma: no mutate start`` / ``end`` comments (the repository's file is not
    changed; a ``pass`` after each ``end`` gives the comment a statement to belong to)."""
    source = path.read_text()
    pattern = re.compile("|".join(names))
    spans = [
        (min([f.lineno] + [d.lineno for d in f.decorator_list]), f.end_lineno)
        for f in ast.parse(source).body
        if isinstance(f, ast.FunctionDef) and pattern.fullmatch(f.name)
    ]
    lines = source.splitlines(keepends=True)
    for first, last in sorted(spans, reverse=True):
        lines.insert(last, "# pragma: no mutate end\npass\n")
        lines.insert(first - 1, "# pragma: no mutate start\n")
    path.write_text("".join(lines))


def results(folder: Path) -> dict[str, str]:
    """mutant name -> mutmut's status, for every mutant of the last run."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {m.group(1): m.group(3) for m in map(RESULT.match, out.splitlines()) if m}


def listed_equivalent() -> dict[str, str]:
    """mutant name -> reason, from equivalent.txt (``name: reason`` lines, ``#`` comments)."""
    if not EQUIVALENT.exists():
        return {}
    lines = [ln.split("#", 1)[0].strip() for ln in EQUIVALENT.read_text().splitlines()]
    return dict(ln.split(":", 1) for ln in lines if ln)


def report(status: dict[str, str], modules: list[str], min_score: float) -> bool:
    """Print each module's counts by status, its score and its unlisted survivors; True when
    every module scores at least ``min_score``, has no unlisted survivor and none unchecked."""
    equivalent = listed_equivalent()
    ok = True
    for module in modules:
        mine = {k: v for k, v in status.items() if k.startswith(f"sgdtail.{module}.")}
        counts = Counter("killed" if v in KILLED else v for v in mine.values())
        checked = len(mine) - counts[NOT_CHECKED]
        score = counts["killed"] / max(len(mine), 1)
        alive = {k: v for k, v in mine.items() if v not in KILLED and v != NOT_CHECKED}
        unlisted = sorted(k for k in alive if k not in equivalent)
        print(
            f"{module:11s} {len(mine):5d} mutants, {checked:5d} checked: {dict(counts)}; "
            f"score {score:.1%} of all ({counts['killed'] / max(checked, 1):.1%} of checked); "
            f"listed equivalent {len(alive) - len(unlisted)}, unlisted {len(unlisted)}"
        )
        for name in unlisted:
            print(f"    {name}: {mine[name]}")
        ok &= score >= min_score and not unlisted and not counts[NOT_CHECKED]
    return ok


def mutmut_run(folder: Path, max_children: int, names: list[str]) -> None:
    """``mutmut run`` in ``folder`` (only ``names`` when given), torch on one thread per worker."""
    one_thread = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names]
    subprocess.run(cmd, cwd=folder, check=True, env=one_thread, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", nargs="+", choices=sorted(MODULES), default=list(MODULES))
    ap.add_argument("--folder", type=Path, default=REPO / ".mutation")
    ap.add_argument("--fresh", action="store_true", help="forget earlier results")
    ap.add_argument("--min-score", type=float, default=0.85)
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="print the last run's results")
    ap.add_argument(
        "--survivors", action="store_true", help="test again only the last run's survivors"
    )
    args = ap.parse_args(argv)
    if not args.report_only:
        names = []
        if args.survivors:
            names = [k for k, v in results(args.folder).items() if v in SURVIVED]
            names = [k for k in names if k.split(".")[1] in args.modules]
        stage(args.folder, args.modules, args.fresh)
        mutmut_run(args.folder, args.max_children, names)
    return 0 if report(results(args.folder), args.modules, args.min_score) else 1


if __name__ == "__main__":
    sys.exit(main())
