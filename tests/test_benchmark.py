"""The timing helpers of scripts/benchmark.py on tiny inputs (what they return, not how fast)."""

from __future__ import annotations

import benchmark
import pytest
import torch


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """benchmark.main sets torch's thread count for the process; later tests (resumption in a
    spawned child compared with the parent) need the default back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_time_streaming_small() -> None:
    out = benchmark.time_streaming(n_rows=20, n_cols=300, chunk_rows=3)
    assert out["values"] == 6000 and out["values_per_second"] > 0


def test_estimators_benchmark_prints_ns_per_value(capsys) -> None:
    benchmark.main(["estimators", "--width", "4", "--depth", "2", "--batch", "6000"])
    out = capsys.readouterr().out
    assert "10 x 3,176 values" in out and "estimator_ns_per_value" in out
