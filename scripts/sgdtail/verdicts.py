"""The verdict vocabulary every claim is judged in (C1-C7 and C5 on SGD).

A claim's verdict is one of :data:`VERDICTS`. An inconclusive verdict has a
reason; in the claim dicts the dynamics and sharpness stages write, the two
travel as one string, ``"inconclusive (reason)"`` (:func:`with_reason`, read
back by :func:`parse_verdict`).

A claim with several conditions judges each one as a *state*, :data:`PASS`,
:data:`FAIL` or :data:`UNCLEAR` (:func:`three_way`; an interval against a
range: :func:`interval_state`), and :func:`combine` turns the states into the
verdict. The inputs of a verdict are checked with :func:`need_keys` and
:func:`need_columns`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
VERDICTS: tuple[str, ...] = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
"""The three verdicts; ``inconclusive`` always comes with a reason."""

PASS = "pass"
FAIL = "fail"
UNCLEAR = "unclear"


def three_way(passes: bool, fails: bool) -> str:
    """:data:`PASS` if ``passes``, else :data:`FAIL` if ``fails``, else :data:`UNCLEAR`."""
    return PASS if passes else (FAIL if fails else UNCLEAR)


def state_verdict(state: str) -> str:
    """The verdict of one condition's state: pass → supported, fail → not supported, else
    inconclusive."""
    return {PASS: SUPPORTED, FAIL: NOT_SUPPORTED}.get(state, INCONCLUSIVE)


def combine(states: Sequence[str]) -> str:
    """Verdict of a claim from its conditions' states: any fail → not supported, all pass →
    supported, otherwise inconclusive (any state but pass and fail counts as unclear)."""
    if FAIL in states:
        return NOT_SUPPORTED
    if all(s == PASS for s in states):
        return SUPPORTED
    return INCONCLUSIVE


def interval_state(lo: float, hi: float, inside: tuple[float, float]) -> str:
    """pass if ``[lo, hi]`` lies inside ``inside``, fail if disjoint from it, else unclear
    (also when an end is not finite)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return UNCLEAR
    a, b = inside
    return three_way(a <= lo and hi <= b, hi < a or lo > b)


def interval_verdict(value: float, low: float, high: float, threshold: float) -> tuple[str, str]:
    """(verdict, reason) of "value < threshold" from an interval: the whole interval below
    (supported), at or above (not supported), or straddling it (inconclusive)."""
    if not math.isfinite(value):
        return INCONCLUSIVE, "not measurable"
    verdict = state_verdict(three_way(high < threshold, low >= threshold))
    if verdict != INCONCLUSIVE:
        return verdict, ""
    return verdict, f"too much spread (interval [{low:.2f}, {high:.2f}] contains {threshold})"


def with_reason(verdict: str, reason: str) -> str:
    """``inconclusive (reason)`` for an inconclusive verdict, the verdict alone otherwise."""
    return f"{verdict} ({reason})" if verdict == INCONCLUSIVE else verdict


def parse_verdict(text: str) -> tuple[str, str]:
    """(verdict, reason) of a :func:`with_reason` string; the verdict part may be any text,
    the caller checks it against :data:`VERDICTS`."""
    verdict, _, reason = str(text).partition(" (")
    return verdict, reason.rstrip(")")


def json_number(x: float | None) -> float | None:
    """``x`` as a float, or None (JSON null) when it is not finite."""
    return float(x) if x is not None and math.isfinite(x) else None


def need_keys(mapping: Mapping[str, object], keys: Sequence[str], what: str) -> None:
    """KeyError naming the ``keys`` that ``mapping`` (``what``, e.g. "C4 thresholds") lacks."""
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise KeyError(f"{what} lack {missing}; give all of {list(keys)}")


def need_columns(columns: Iterable[str], need: Iterable[str], what: str) -> None:
    """ValueError naming the columns of ``need`` missing from ``columns`` (table ``what``)."""
    missing = set(need) - set(columns)
    if missing:
        raise ValueError(f"{what} lacks columns {sorted(missing)}")
