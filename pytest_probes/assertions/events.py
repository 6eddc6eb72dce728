"""Events: asserting probe failures and Events of a given reason, in count and in time."""

from __future__ import annotations

import re
from collections.abc import Callable

from pytest_probes.assertions._checks import _count_within, _first_within
from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _anchor_deadline,
    _clock,
    _deadline,
    _first,
    _fmt_window,
    _measure,
    _reference,
    _window,
)
from pytest_probes.timeline import Record, Timeline

_PROBE_PREFIX = {"liveness": "Liveness", "readiness": "Readiness", "startup": "Startup"}


def probe_failures(
    tl: Timeline, pod: str, *, probe: str, since: Since = None, message: str | None = None
) -> dict[str, list[Record]]:
    """Probe failures per matching pod, one entry per failure (aggregated Events are expanded).

    A probe that errored ("Liveness probe errored and resulted in unknown state", a canceled
    exec say) is no failure: the prober throws its result away (``doProbe`` in
    ``pkg/kubelet/prober/worker.go``), so it counts towards no threshold and is not counted here.
    """
    if probe not in _PROBE_PREFIX:
        raise ValueError(f"unknown probe {probe!r}; choose one of {', '.join(_PROBE_PREFIX)}")
    prefix = f"{_PROBE_PREFIX[probe]} probe"
    errored = f"{prefix} errored"
    ref = _reference(tl, since) if since is not None else None
    out: dict[str, list[Record]] = {}
    for rec in tl.query(pod=pod, source="event", kind="Unhealthy"):
        if not rec.message.startswith(prefix) or rec.message.startswith(errored):
            continue
        if message is not None and message not in rec.message:
            continue
        if ref is not None and rec.time < ref:
            continue
        out.setdefault(rec.pod or "", []).extend([rec] * int(rec.data.get("count_delta", 1)))
    return out


def assert_probe_failures(
    tl: Timeline,
    pod: str,
    *,
    probe: str,
    count: int,
    within: WindowLike | None = None,
    message: str | None = None,
    since: Since = None,
) -> list[Record]:
    """Assert ``count`` failures of the ``probe`` (liveness/readiness/startup) probe.

    Failures are ``Unhealthy`` Events whose message starts with ``"<Probe> probe"`` (not those of
    a probe that errored: :func:`probe_failures`); an aggregated Event counts once per increment
    of its ``count``.

    Args:
        tl: The timeline.
        pod: Pod name or prefix.
        probe: ``liveness``, ``readiness`` or ``startup``.
        count: How many failures at least.
        within: The ``count``-th failure must come within this of ``since``; without it, a live
            wait lasts at most the timeline's ``default_timeout``.
        message: Only failures whose message contains this text.
        since: Count from here (the start of recording by default).

    Returns:
        The failure records of the pod that satisfied it.
    """
    __tracebackhide__ = True
    ref = _reference(tl, since)
    w = _window(tl, within) if within is not None else None

    what = f"≥{count} {probe} probe failure{'s' if count != 1 else ''}" + (
        f" containing {message!r}" if message else ""
    )
    recs = _count_within(
        tl, pod, lambda t: probe_failures(t, pod, probe=probe, since=ref, message=message), count,
        ref=ref, w=w, deadline=_deadline(ref, w) if w else _anchor_deadline(tl, ref),
        expected=what + (f" within {_fmt_window(w)} of {_clock(ref)}" if w else ""),
        counted="failures", late=lambda d, _last: f"failure {count} at +{d:.0f} s")
    if w is not None:
        _measure(tl, "assert_probe_failures", pod, since, w, recs[-1])
    return recs


def assert_event_within(
    tl: Timeline,
    pod: str,
    reason: str,
    *,
    within: WindowLike,
    since: Since = None,
    message: str | None = None,
    container: str | None = None,
) -> Record:
    """Assert an Event with ``reason`` for the pod within ``within`` of ``since``.

    Returns:
        The first such Event record at or after ``since``.
    """
    __tracebackhide__ = True
    return _record_within(
        tl, pod, lambda t: t.query(pod=pod, source="event", kind=reason, message=message,
                                   container=container),
        what=f"a {reason} event", seen=reason, helper="assert_event_within", within=within,
        since=since, container=container)


def assert_log_within(
    tl: Timeline,
    pod: str,
    pattern: str,
    *,
    within: WindowLike,
    since: Since = None,
    container: str | None = None,
) -> Record:
    """Assert a log line of the pod matching ``pattern`` (a regular expression) within ``within``.

    Log lines are recorded for pods that ask for it with the annotation
    ``pytest-probes.io/logs: "<container>,..."`` (or ``"*"``), or after
    ``Recorder.follow_logs``; each is dated by the container runtime when it was written.

    Returns:
        The first such ``LogLine`` record at or after ``since``.
    """
    __tracebackhide__ = True
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"pattern {pattern!r} is no regular expression: {err}") from err
    return _record_within(
        tl, pod, lambda t: t.query(pod=pod, source="log", container=container,
                                   where=lambda r: regex.search(r.message) is not None),
        what=f"a log line matching {pattern!r}", seen="the line", helper="assert_log_within",
        within=within, since=since, container=container)


def _record_within(
    tl: Timeline, pod: str, select: Callable[[Timeline], list[Record]], *, what: str, seen: str,
    helper: str, within: WindowLike, since: Since, container: str | None,
) -> Record:
    """Wait for the first record ``select`` gives at or after ``since``; check its window."""
    __tracebackhide__ = True
    return _first_within(tl, pod, lambda t, ref: _first(select(t), ref), helper=helper, what=what,
                         within=within, since=since, none="none",
                         late=lambda d, _hit: f"{seen} at +{d:.0f} s", container=container)
