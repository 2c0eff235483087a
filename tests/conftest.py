"""Shared fixtures: small in-memory data sets (no network, no data from outside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sgdtail.data import PreparedData


def make_prepared(
    n_train: int = 600, n_test: int = 200, shape=(1, 8, 8), classes: int = 10, seed: int = 0
) -> PreparedData:
    """Random but learnable images: each class has its own mean pattern plus noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, *shape, generator=g)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=g)
        return centres[y] + 0.7 * torch.randn(n, *shape, generator=g), y

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return PreparedData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=classes,
        input_shape=tuple(shape),
        content_hash=f"synthetic-{seed}",
        dataset="synthetic",
        mean=(0.0,) * shape[0],
        std=(1.0,) * shape[0],
    )


@pytest.fixture
def small_data() -> PreparedData:
    return make_prepared()


# --------------------------------------------------------------------------- no silent skips
#: The one setting that makes skips fail: CI=true (also 1 or yes). .ci/run exports it, and so
#: do the usual CI services. Then every skipped test, and every skipped test module, fails
#: unless tests/allowed_skips.txt lists it with a reason.
STRICT_SKIPS_VARIABLE = "CI"
ALLOWED_SKIPS_FILE = Path(__file__).with_name("allowed_skips.txt")


def strict_skips() -> bool:
    """True where skips must fail (CI=true)."""
    return os.environ.get(STRICT_SKIPS_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def read_allowed_skips(path: Path = ALLOWED_SKIPS_FILE) -> dict[str, str]:
    """Test id (or a prefix ending at ``::`` / ``[``) -> reason, from ``id  # reason`` lines."""
    allowed = {}
    if not path.is_file():
        return allowed
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, reason = line.partition("#")
        if not test_id.strip() or not reason.strip():
            raise pytest.UsageError(
                f"{path}:{number}: write `<test id>  # <why it may skip in CI>`, got {raw!r}"
            )
        allowed[test_id.strip()] = reason.strip()
    return allowed


def _allowed(nodeid: str, allowed: dict[str, str]) -> bool:
    return any(
        nodeid == entry or nodeid.startswith((f"{entry}::", f"{entry}[")) for entry in allowed
    )


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report, config) -> None:
    """Turn a skipped report into a failure that says why (strict mode, not allowed)."""
    if not strict_skips() or not report.skipped or hasattr(report, "wasxfail"):
        return
    if _allowed(report.nodeid, config.stash[_ALLOWED_KEY]):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{STRICT_SKIPS_VARIABLE}=true: this test may not skip ({_skip_reason(report)}); "
        f"make it run here, or list it with a reason in tests/{ALLOWED_SKIPS_FILE.name}"
    )


_ALLOWED_KEY = pytest.StashKey[dict]()


def pytest_configure(config):
    config.stash[_ALLOWED_KEY] = read_allowed_skips()


def pytest_report_header(config):
    if strict_skips():
        allowed = config.stash[_ALLOWED_KEY]
        return (
            f"{STRICT_SKIPS_VARIABLE}=true: skipped tests fail, except the "
            f"{len(allowed)} listed in tests/{ALLOWED_SKIPS_FILE.name}"
        )
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), item.config)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result(), collector.config)
