"""The two shapes most helpers take: a record within a window, and nothing for a while.

:func:`_first_within` waits for the first record that satisfies a helper, checks it against the
window and notes the measurement; :func:`_absent_for` waits out a duration in which nothing may
happen, then makes sure the pod was there and no watch gap hides what it rests on. The helpers
say only what they look for and how to put it in words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _clock,
    _conclusive,
    _deadline,
    _duration,
    _fail,
    _fmt_window,
    _in_window,
    _matching_pods,
    _measure,
    _offset,
    _reference,
    _Window,
    _window,
)
from pytest_probes.assertions.waiting import _wait
from pytest_probes.timeline import Record, Timeline

T = TypeVar("T")


def _first_within(
    tl: Timeline,
    pod: str,
    find: Callable[[Timeline, datetime], Record | None],
    *,
    helper: str,
    what: str,
    within: WindowLike,
    since: Since,
    none: str | Callable[[Timeline], str],
    late: Callable[[float, Record], str],
    already: bool = False,
    container: str | None = None,
    service: str | None = None,
) -> Record:
    """Wait for ``find(timeline, reference)``'s record; fail unless it came within the window.

    The failure says ``what`` was expected within the window, and as observed ``none`` (words, or
    words made from the timeline) when no record came, or ``late(offset, record)`` when it came
    outside the window. With ``already``, a record from before the reference (the pod was already
    there) counts at 0 s. The record is returned after noting the measurement as ``helper``'s.
    """
    __tracebackhide__ = True
    ref = _reference(tl, since)
    w = _window(tl, within)
    hit = _wait(tl, pod, lambda t: find(t, ref), deadline=_deadline(ref, w), service=service)
    expected = f"{what} within {_fmt_window(w)} of {_clock(ref)}"
    if hit is None:
        observed = none if isinstance(none, str) else none(tl)
        raise _fail(tl, pod, expected=expected, observed=observed, window=w, container=container)
    d = _offset(ref, hit)
    if already:
        d = max(0.0, d)
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected, observed=late(d, hit), window=w,
                    container=container)
    _measure(tl, helper, pod, since, w, hit)
    return hit


def _count_within(
    tl: Timeline,
    pod: str,
    per_pod: Callable[[Timeline], dict[str, list[Record]]],
    count: int,
    *,
    ref: datetime,
    w: _Window | None,
    deadline: datetime,
    expected: str,
    counted: str,
    late: Callable[[float, Record], str],
    container: str | None = None,
) -> list[Record]:
    """Wait until one matching pod has ``count`` of ``per_pod``'s records; the first ``count``.

    Fails saying ``expected`` and, as observed, ``counted`` with each pod's count when no pod got
    there, or ``late(offset, record)`` when the ``count``-th came outside the window ``w``.
    """
    __tracebackhide__ = True

    def check(t: Timeline) -> tuple[str, list[Record]] | None:
        for name, recs in per_pod(t).items():
            if len(recs) >= count:
                return name, recs[:count]
        return None

    hit = _wait(tl, pod, check, deadline=deadline)
    if hit is None:
        seen = ", ".join(f"{n}: {len(r)}" for n, r in per_pod(tl).items()) or "0"
        raise _fail(tl, pod, expected=expected, observed=f"{counted} {seen}", window=w,
                    container=container)
    name, recs = hit
    if w is not None:
        d = _offset(ref, recs[-1])
        if not _in_window(d, w):
            raise _fail(tl, name, expected=expected, observed=late(d, recs[-1]), window=w,
                        container=container)
    return list(recs)


@dataclass(frozen=True)
class _Span:
    """The time a helper that rests on absence watches: ``duration`` seconds from ``start``."""

    start: datetime
    duration: float
    end: datetime


def _span(tl: Timeline, since: Since, duration: object, helper: str) -> _Span:
    """The checked ``duration=`` from ``since=``, for :func:`_absent_for`."""
    start = _reference(tl, since)
    seconds = _duration(duration, helper)
    return _Span(start, seconds, start + timedelta(seconds=seconds))


def _absent_for(
    tl: Timeline,
    pod: str,
    span: _Span,
    find: Callable[[Timeline], T | None],
    *,
    expected: str,
    observed: Callable[[T], str],
    nothing: str,
    nothing_seen: str = "nothing",
    present: Callable[[Timeline], bool] | None = None,
    sources: tuple[str, ...] = ("pod",),
    container: str | None = None,
    service: str | None = None,
) -> None:
    """Fail if ``find`` finds what must not happen in ``span``; or if nothing was watched; or a gap.

    The failure says ``expected`` and, as observed, ``observed(found)``; when ``present`` says what
    the helper watches (by default a matching pod; an endpoint, say) never was there, it says
    ``nothing`` was expected and ``nothing_seen`` observed. A watch gap of ``sources`` (by default
    pod status) in the span leaves it inconclusive.
    """
    __tracebackhide__ = True
    hit = _wait(tl, pod, find, deadline=span.end, service=service, passes_at_deadline=True)
    if hit is not None:
        raise _fail(tl, pod, expected=expected, observed=observed(hit), container=container)
    if not (present(tl) if present is not None else _matching_pods(tl, pod)):
        raise _fail(tl, pod, expected=nothing, observed=nothing_seen)
    _conclusive(tl, pod, expected=expected, start=span.start, end=span.end, sources=sources,
                container=container)
