"""The verdict vocabulary (sgdtail.verdicts) every claim is judged in."""

from __future__ import annotations

import math

import pytest

from sgdtail import verdicts as V


def test_three_way_states_and_their_verdicts():
    assert V.three_way(True, True) == V.PASS == "pass"  # passing wins
    assert V.three_way(False, True) == V.FAIL == "fail"
    assert V.three_way(False, False) == V.UNCLEAR == "unclear"
    assert [V.state_verdict(s) for s in (V.PASS, V.FAIL, V.UNCLEAR, "other")] == [
        "supported",
        "not supported",
        "inconclusive",
        "inconclusive",
    ]
    assert V.VERDICTS == ("supported", "not supported", "inconclusive")


def test_combine_any_fail_all_pass_otherwise_inconclusive():
    assert V.combine([V.PASS, V.PASS]) == V.SUPPORTED
    assert V.combine([V.PASS, V.FAIL, V.UNCLEAR]) == V.NOT_SUPPORTED
    assert V.combine([V.PASS, V.UNCLEAR]) == V.INCONCLUSIVE
    assert V.combine([V.PASS, "something else"]) == V.INCONCLUSIVE
    assert V.combine([]) == V.SUPPORTED


def test_interval_state_inside_disjoint_overlapping_and_undefined():
    assert V.interval_state(1.0, 2.0, (1.0, 2.0)) == V.PASS  # ends included
    assert V.interval_state(2.5, 3.0, (1.0, 2.0)) == V.FAIL
    assert V.interval_state(-1.0, 0.5, (1.0, 2.0)) == V.FAIL
    assert V.interval_state(1.5, 2.5, (1.0, 2.0)) == V.UNCLEAR
    assert V.interval_state(1.0, 2.0, (1.0, math.inf)) == V.PASS
    assert V.interval_state(math.nan, 2.0, (1.0, 2.0)) == V.UNCLEAR
    assert V.interval_state(1.0, math.inf, (-math.inf, math.inf)) == V.UNCLEAR


def test_interval_verdict_of_value_below_threshold():
    assert V.interval_verdict(0.5, 0.2, 0.9, 1.0) == ("supported", "")
    assert V.interval_verdict(1.5, 1.0, 2.0, 1.0) == ("not supported", "")  # low at threshold
    assert V.interval_verdict(0.9, 0.5, 1.0, 1.0) == (
        "inconclusive",
        "too much spread (interval [0.50, 1.00] contains 1.0)",
    )
    assert V.interval_verdict(math.inf, 1.0, 2.0, 1.0) == ("inconclusive", "not measurable")
    assert V.interval_verdict(math.nan, 0.1, 0.2, 1.0) == ("inconclusive", "not measurable")


def test_reason_travels_with_an_inconclusive_verdict_only():
    assert V.with_reason(V.INCONCLUSIVE, "too few runs") == "inconclusive (too few runs)"
    assert V.with_reason(V.SUPPORTED, "CI above") == "supported"
    assert V.parse_verdict("inconclusive (too few runs (3 < 5))") == (
        "inconclusive",
        "too few runs (3 < 5",
    )
    assert V.parse_verdict(V.with_reason(V.INCONCLUSIVE, "x")) == ("inconclusive", "x")
    assert V.parse_verdict("not supported") == ("not supported", "")


def test_json_number_and_missing_inputs():
    assert V.json_number(1) == 1.0 and isinstance(V.json_number(1), float)
    assert V.json_number(math.nan) is None and V.json_number(None) is None
    assert V.json_number(-math.inf) is None
    V.need_keys({"a": 1, "b": 2}, ["a", "b"], "C9 thresholds")
    with pytest.raises(KeyError, match=r"C9 thresholds lack \['b', 'c'\]; give all of \['a', "):
        V.need_keys({"a": 1}, ["a", "b", "c"], "C9 thresholds")
    V.need_columns(["x", "y"], {"x"}, "table")
    with pytest.raises(ValueError, match=r"^table lacks columns \['y', 'z'\]$"):
        V.need_columns(["x"], {"z", "y", "x"}, "table")
