"""Endpoints: asserting a pod's address joins, leaves or stays in a Service's ready endpoints."""

from __future__ import annotations

from datetime import datetime, timedelta

from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _clock,
    _conclusive,
    _deadline,
    _duration,
    _fail,
    _floor,
    _fmt_window,
    _in_window,
    _measure,
    _offset,
    _reference,
    _window,
)
from pytest_probes.assertions.waiting import _wait
from pytest_probes.timeline import Record, Timeline, as_time


def _endpoint_records(
    tl: Timeline, pod: str, kind: str, service: str | None
) -> list[Record]:
    return [
        r
        for r in tl.query(pod=pod, source="endpoints", kind=kind)
        if service is None or r.data.get("service") == service
    ]


def _resolve_after(
    tl: Timeline, pod: str, after: str | datetime | Record, since: datetime
) -> Record | datetime | None:
    if isinstance(after, Record):
        return after
    if not isinstance(after, str):
        return _floor(as_time(after, argument="after"))
    try:
        return _floor(as_time(after, argument="after"))
    except ValueError:
        pass  # an event reason or transition name
    recs = [r for r in tl.query(pod=pod, kind=after) if r.time >= since]
    return recs[0] if recs else None


def assert_endpoint_removed_after(
    tl: Timeline,
    pod: str,
    *,
    after: str | datetime | Record,
    within: WindowLike,
    service: str | None = None,
    since: Since = None,
) -> Record:
    """Assert the pod's address leaves the Service's ready endpoints after ``after``, not before.

    Args:
        tl: The timeline.
        pod: Pod name or prefix.
        after: An event reason or transition of the pod (``"Started"``, ``"Killing"``; its first
            occurrence at or after ``since``), a timestamp, or a record.
        within: How soon after ``after`` the removal must come.
        service: Only this Service's endpoints; any Service by default.
        since: Where to start looking for ``after`` and for early removals.

    Returns:
        The ``EndpointRemoved`` record.
    """
    __tracebackhide__ = True
    ref = _reference(tl, since)
    w = _window(tl, within)
    def find_anchor(t: Timeline) -> datetime | None:
        found = _resolve_after(t, pod, after, ref)
        return found.time if isinstance(found, Record) else found

    anchor = _wait(tl, pod, find_anchor,
                   deadline=ref + timedelta(seconds=tl.default_timeout * tl.tolerance),
                   service=service)
    if anchor is None:
        raise _fail(tl, pod, expected=f"a {after!r} for the pod (to measure from)",
                    observed="none after " + _clock(ref))
    at = anchor
    label = f"{after}" if isinstance(after, str) else _clock(at)
    early = [r for r in _endpoint_records(tl, pod, "EndpointRemoved", service)
             if ref <= r.time < at]
    if early:
        raise _fail(tl, pod, expected=f"address kept until {label} at {_clock(at)}",
                    observed=f"removed before it, at {_clock(early[0].time)}")

    def check(t: Timeline) -> Record | None:
        recs = [r for r in _endpoint_records(t, pod, "EndpointRemoved", service) if r.time >= at]
        return recs[0] if recs else None

    hit = _wait(tl, pod, check, deadline=_deadline(at, w), service=service)
    expected = (
        f"address removed from endpoints within {_fmt_window(w)} after {label} ({_clock(at)})"
    )
    if hit is None:
        raise _fail(tl, pod, expected=expected, observed="not removed", window=w)
    d = _offset(at, hit)
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected, observed=f"removed at +{d:.0f} s", window=w)
    _measure(tl, "assert_endpoint_removed_after", pod,
             after if isinstance(after, datetime) else at, w, hit)
    return hit


def assert_endpoint_added_within(
    tl: Timeline,
    pod: str,
    *,
    within: WindowLike,
    since: Since = None,
    service: str | None = None,
) -> Record:
    """Assert the pod's address joins the Service's ready endpoints within ``within`` of ``since``.

    Returns:
        The ``EndpointAdded`` record.
    """
    __tracebackhide__ = True
    ref = _reference(tl, since)
    w = _window(tl, within)

    def check(t: Timeline) -> Record | None:
        recs = [r for r in _endpoint_records(t, pod, "EndpointAdded", service) if r.time >= ref]
        return recs[0] if recs else None

    hit = _wait(tl, pod, check, deadline=_deadline(ref, w), service=service)
    expected = f"address added to endpoints within {_fmt_window(w)} of {_clock(ref)}"
    if hit is None:
        raise _fail(tl, pod, expected=expected, observed="not added", window=w)
    d = _offset(ref, hit)
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected, observed=f"added at +{d:.0f} s", window=w)
    _measure(tl, "assert_endpoint_added_within", pod, since, w, hit)
    return hit


def ready_addresses(
    tl: Timeline, service: str, *, at: datetime | Record | None = None
) -> list[str]:
    """The Service's ready addresses as of ``at`` (the end of the timeline by default)."""
    limit = _reference(tl, at) if at is not None else None
    current: list[str] = []
    for rec in tl.query(source="endpoints"):
        if limit is not None and rec.time > limit:
            break
        if rec.data.get("service") == service:
            current = list(rec.data.get("ready_addresses", []))
    return current


def assert_endpoint_kept_for(
    tl: Timeline,
    pod: str,
    *,
    duration: float,
    since: Since = None,
    service: str | None = None,
) -> None:
    """Assert no matching pod's address leaves the ready endpoints for ``duration`` seconds."""
    __tracebackhide__ = True
    ref = _reference(tl, since)
    duration = _duration(duration, "assert_endpoint_kept_for")
    end = ref + timedelta(seconds=duration)

    def check(t: Timeline) -> Record | None:
        recs = [r for r in _endpoint_records(t, pod, "EndpointRemoved", service)
                if ref <= r.time <= end]
        return recs[0] if recs else None

    hit = _wait(tl, pod, check, deadline=end, service=service, passes_at_deadline=True)
    if hit is not None:
        raise _fail(tl, pod, expected=f"address kept in endpoints for {duration:g} s",
                    observed=f"{hit.data.get('address')} removed at {_clock(hit.time)} "
                    f"({hit.pod})")
    if not tl.query(pod=pod, source="endpoints", where=lambda r: r.time <= end):
        raise _fail(tl, pod, expected=f"address kept in endpoints for {duration:g} s",
                    observed="the pod never had an endpoint")
    _conclusive(tl, pod, expected=f"address kept in endpoints for {duration:g} s",
                start=ref, end=end, sources=("endpoints",))
