"""Readiness: asserting a pod turns Ready, loses Ready, or never is Ready, in time."""

from __future__ import annotations

from datetime import datetime

from pytest_probes.assertions._checks import _absent_for, _first_within, _span
from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _clock,
    _entered_or_still,
    _matching_pods,
    _ready_transitions,
)
from pytest_probes.timeline import Record, Timeline


def _first_state(tl: Timeline, pod: str, ref: datetime, want: str) -> Record | None:
    # The earliest transition of a matching pod into `want` at/after ref; but a pod that was
    # already there before ref and has not left since wins at once. (A pod that turns not ready
    # and ready again after a restart in the same second as the restart must not count as
    # "already ready".)
    best: Record | None = None
    for name in _matching_pods(tl, pod):
        hit = _entered_or_still(_ready_transitions(tl, name), ref, lambda r: r.kind == want)
        if hit is None:
            continue
        if hit.time < ref:
            return hit
        if best is None or hit.time < best.time:
            best = hit
    return best


def _ready_during(tl: Timeline, pod: str, start: datetime, end: datetime) -> Record | None:
    # A matching pod's Ready at start (its last transition before it), or its turning Ready in
    # start–end.
    for name in _matching_pods(tl, pod):
        trans = _ready_transitions(tl, name)
        before = [r for r in trans if r.time < start]
        if before and before[-1].kind == "PodReady":
            return before[-1]
        for r in trans:
            if start <= r.time <= end and r.kind == "PodReady":
                return r
    return None


def _assert_ready_state(
    tl: Timeline, pod: str, want: str, within: WindowLike, since: Since, words: str, helper: str
) -> Record:
    return _first_within(
        tl, pod, lambda t, ref: _first_state(t, pod, ref, want), helper=helper, what=words,
        within=within, since=since, none="no such transition", already=True,
        late=lambda d, hit: f"{hit.kind} at +{d:.0f} s ({_clock(hit.time)})")


def assert_ready_within(
    tl: Timeline, pod: str, *, within: WindowLike, since: Since = None
) -> Record:
    """Assert that the pod's Ready condition is True within ``within`` of ``since``.

    A pod already Ready at ``since`` counts as Ready at 0 s.

    Returns:
        The ``PodReady`` record.
    """
    __tracebackhide__ = True
    return _assert_ready_state(tl, pod, "PodReady", within, since, "Ready",
                               "assert_ready_within")


def assert_not_ready_within(
    tl: Timeline, pod: str, *, within: WindowLike, since: Since = None
) -> Record:
    """Assert that the pod loses its Ready condition within ``within`` of ``since``.

    A pod that had been Ready and was already not Ready at ``since`` counts at 0 s; a pod that was
    never Ready does not count (nothing was lost).

    Returns:
        The ``PodNotReady`` record.
    """
    __tracebackhide__ = True
    return _assert_ready_state(tl, pod, "PodNotReady", within, since, "Ready lost",
                               "assert_not_ready_within")


def assert_never_ready_for(
    tl: Timeline, pod: str, *, duration: float, since: Since = None
) -> None:
    """Assert that no matching pod is Ready at any moment for ``duration`` s from ``since``."""
    __tracebackhide__ = True
    span = _span(tl, since, duration, "assert_never_ready_for")
    _absent_for(
        tl, pod, span, lambda t: _ready_during(t, pod, span.start, span.end),
        expected=f"never Ready for {span.duration:g} s from {_clock(span.start)}",
        observed=lambda hit: f"Ready at {_clock(hit.time)} ({hit.pod})",
        nothing=f"a pod that stays not Ready for {span.duration:g} s")
