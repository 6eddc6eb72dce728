"""Endpoints: asserting a pod's address joins, leaves or stays in a Service's ready endpoints."""

from __future__ import annotations

from datetime import datetime

from pytest_probes.assertions._checks import _absent_for, _first_within, _span
from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _anchor_deadline,
    _clock,
    _deadline,
    _fail,
    _first,
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
    return _first(tl.query(pod=pod, kind=after), since)


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
                   deadline=_anchor_deadline(tl, ref),
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

    removed = "EndpointRemoved"
    hit = _wait(tl, pod, lambda t: _first(_endpoint_records(t, pod, removed, service), at),
                deadline=_deadline(at, w), service=service)
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

    return _first_within(tl, pod,
                         lambda t, ref: _first(_endpoint_records(t, pod, "EndpointAdded", service),
                                               ref),
                         helper="assert_endpoint_added_within",
                         what="address added to endpoints", within=within, since=since,
                         none="not added", late=lambda d, _hit: f"added at +{d:.0f} s",
                         service=service)


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
    span = _span(tl, since, duration, "assert_endpoint_kept_for")
    expected = f"address kept in endpoints for {span.duration:g} s"

    _absent_for(
        tl, pod, span,
        lambda t: _first(_endpoint_records(t, pod, "EndpointRemoved", service), span.start,
                         span.end),
        expected=expected,
        observed=lambda hit: f"{hit.data.get('address')} removed at {_clock(hit.time)} "
        f"({hit.pod})",
        present=lambda t: bool(t.query(pod=pod, source="endpoints",
                                       where=lambda r: r.time <= span.end)),
        nothing=expected, nothing_seen="the pod never had an endpoint", sources=("endpoints",),
        service=service)
