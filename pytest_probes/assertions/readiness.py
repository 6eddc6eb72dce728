"""Readiness: asserting a pod turns Ready, loses Ready, or never is Ready, in time."""

from __future__ import annotations

from datetime import datetime, timedelta

from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _clock,
    _conclusive,
    _deadline,
    _duration,
    _entered_or_still,
    _fail,
    _fmt_window,
    _in_window,
    _matching_pods,
    _measure,
    _offset,
    _ready_transitions,
    _reference,
    _window,
)
from pytest_probes.assertions.waiting import _wait
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


def _assert_ready_state(
    tl: Timeline, pod: str, want: str, within: WindowLike, since: Since, words: str, helper: str
) -> Record:
    ref = _reference(tl, since)
    w = _window(tl, within)
    hit = _wait(tl, pod, lambda t: _first_state(t, pod, ref, want), deadline=_deadline(ref, w))
    expected = f"{words} within {_fmt_window(w)} of {_clock(ref)}"
    if hit is None:
        raise _fail(tl, pod, expected=expected, observed="no such transition", window=w)
    d = max(0.0, _offset(ref, hit))
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected,
                    observed=f"{hit.kind} at +{d:.0f} s ({_clock(hit.time)})", window=w)
    _measure(tl, helper, pod, since, w, hit)
    return hit


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
    ref = _reference(tl, since)
    duration = _duration(duration, "assert_never_ready_for")
    end = ref + timedelta(seconds=duration)

    def check(t: Timeline) -> Record | None:
        for name in _matching_pods(t, pod):
            trans = _ready_transitions(t, name)
            before = [r for r in trans if r.time < ref]
            if before and before[-1].kind == "PodReady":
                return before[-1]
            for r in trans:
                if ref <= r.time <= end and r.kind == "PodReady":
                    return r
        return None

    hit = _wait(tl, pod, check, deadline=end, passes_at_deadline=True)
    if hit is not None:
        raise _fail(tl, pod, expected=f"never Ready for {duration:g} s from {_clock(ref)}",
                    observed=f"Ready at {_clock(hit.time)} ({hit.pod})")
    if not _matching_pods(tl, pod):
        raise _fail(tl, pod, expected=f"a pod that stays not Ready for {duration:g} s",
                    observed="nothing")
    _conclusive(tl, pod, expected=f"never Ready for {duration:g} s from {_clock(ref)}",
                start=ref, end=end, sources=("pod",))
