"""Restarts: counting a pod's restarts, and asserting they come in a window, or not at all."""

from __future__ import annotations

from datetime import timedelta

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


def restarts_of(
    tl: Timeline, pod: str, *, container: str | None = None, since: Since = None
) -> dict[str, list[Record]]:
    """The restarts of each matching pod at or after ``since``, one record per restart.

    Pod status (``ContainerRestarted`` with its ``restarts`` count) is used when the timeline has
    pod status for the pod; a recording that only has Events (such as seed 000's export) counts
    ``Started`` events after the first instead.
    """
    ref = _reference(tl, since) if since is not None else None
    out: dict[str, list[Record]] = {}
    for name in _matching_pods(tl, pod):
        has_status = bool(tl.query(pod=name, source="pod"))
        found: list[Record] = []
        if has_status:
            for rec in tl.query(pod=name, source="pod", kind="ContainerRestarted",
                                container=container):
                if ref is None or rec.time >= ref:
                    found.extend([rec] * max(1, int(rec.data.get("restarts", 1))))
        else:
            for rec in tl.query(pod=name, source="event", kind="Started", container=container):
                count = int(rec.data.get("count", 1))
                delta = int(rec.data.get("count_delta", 1))
                restarts = min(delta, count - 1)
                if restarts > 0 and (ref is None or rec.time >= ref):
                    found.extend([rec] * restarts)
        out[name] = found
    return out


def assert_restarts_within(
    tl: Timeline,
    pod: str,
    *,
    restarts: int = 1,
    within: WindowLike,
    container: str | None = None,
    since: Since = None,
) -> list[Record]:
    """Assert that the pod's container restarts ``restarts`` times within ``within`` of ``since``.

    Returns:
        The restart records of the pod that satisfied it (the last is the ``restarts``-th).
    """
    __tracebackhide__ = True
    w = _window(tl, within)
    recs = _restarts_within(tl, pod, restarts, w, container, since)
    _measure(tl, "assert_restarts_within", pod, since, w, recs[-1])
    return recs


def _restarts_within(tl: Timeline, pod: str, restarts: int, w: _Window, container: str | None,
                     since: Since) -> list[Record]:
    """:func:`assert_restarts_within` without noting the measurement."""
    __tracebackhide__ = True
    ref = _reference(tl, since)

    def check(t: Timeline) -> tuple[str, list[Record]] | None:
        for name, recs in restarts_of(t, pod, container=container, since=ref).items():
            if len(recs) >= restarts:
                return name, recs[:restarts]
        return None

    hit = _wait(tl, pod, check, deadline=_deadline(ref, w))
    expected = (
        f"≥{restarts} restart{'s' if restarts != 1 else ''} within {_fmt_window(w)} of "
        f"{_clock(ref)}"
    )
    if hit is None:
        counts = {n: len(r) for n, r in restarts_of(tl, pod, container=container,
                                                     since=ref).items()}
        observed = ", ".join(f"{n}: {c}" for n, c in counts.items()) or "0"
        raise _fail(tl, pod, expected=expected, observed=f"restarts {observed}", window=w,
                    container=container)
    name, recs = hit
    d = _offset(ref, recs[-1])
    if not _in_window(d, w):
        raise _fail(tl, name, expected=expected,
                    observed=f"restart {restarts} at +{d:.0f} s ({_clock(recs[-1].time)})",
                    window=w, container=container)
    return list(recs)


def assert_no_restarts_for(
    tl: Timeline,
    pod: str,
    *,
    duration: float,
    container: str | None = None,
    since: Since = None,
) -> None:
    """Assert that no matching pod restarts for ``duration`` seconds from ``since``."""
    __tracebackhide__ = True
    ref = _reference(tl, since)
    duration = _duration(duration, "assert_no_restarts_for")
    end = ref + timedelta(seconds=duration)

    def check(t: Timeline) -> list[Record] | None:
        for recs in restarts_of(t, pod, container=container, since=ref).values():
            early = [r for r in recs if r.time <= end]
            if early:
                return early
        return None

    hit = _wait(tl, pod, check, deadline=end, passes_at_deadline=True)
    if hit:
        d = _offset(ref, hit[0])
        raise _fail(tl, pod, expected=f"no restart for {duration:g} s from {_clock(ref)}",
                    observed=f"a restart at +{d:.0f} s ({_clock(hit[0].time)})",
                    container=container)
    if not _matching_pods(tl, pod):
        raise _fail(tl, pod, expected=f"pod running without restarts for {duration:g} s",
                    observed="nothing")
    _conclusive(tl, pod, expected=f"no restart for {duration:g} s from {_clock(ref)}",
                start=ref, end=end, sources=("pod",), container=container)
