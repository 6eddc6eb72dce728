"""Restarts: counting a pod's restarts, and asserting they come in a window, or not at all."""

from __future__ import annotations

from pytest_probes.assertions._checks import _absent_for, _count_within, _span
from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _clock,
    _deadline,
    _fmt_window,
    _matching_pods,
    _measure,
    _offset,
    _reference,
    _Window,
    _window,
)
from pytest_probes.timeline import Record, Timeline


def restarts_of(
    tl: Timeline, pod: str, *, container: str | None = None, since: Since = None
) -> dict[str, list[Record]]:
    """The restarts of each matching pod at or after ``since``, one record per restart.

    Pod status (``ContainerRestarted`` with its ``restarts`` count) is used when the timeline has
    pod status for the pod; a recording that only has Events (such as seed 000's export) counts
    ``Started`` events after the first instead.

    When ``since`` is a container instance's ``ContainerStarted`` (or a ``ContainerRestarted``),
    the restarts that led to it (those of that container not raising ``restartCount`` above its
    count) are not counted, though the API stamps them with its whole second.
    """
    ref = _reference(tl, since) if since is not None else None
    out: dict[str, list[Record]] = {}
    for name in _matching_pods(tl, pod):
        has_status = bool(tl.query(pod=name, source="pod"))
        found: list[Record] = []
        if has_status:
            for rec in tl.query(pod=name, source="pod", kind="ContainerRestarted",
                                container=container):
                if (ref is None or rec.time >= ref) and not _led_to(rec, since):
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


def _led_to(restart: Record, since: Since) -> bool:
    """``restart`` made the container instance ``since`` names, or came before it."""
    if not (isinstance(since, Record) and since.source == "pod"
            and since.kind in ("ContainerStarted", "ContainerRestarted")
            and since.pod == restart.pod and since.container == restart.container):
        return False
    count = since.data.get("restartCount")
    return isinstance(count, int) and int(restart.data.get("restartCount", 0)) <= count


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
    expected = (
        f"≥{restarts} restart{'s' if restarts != 1 else ''} within {_fmt_window(w)} of "
        f"{_clock(ref)}"
    )
    return _count_within(
        tl, pod, lambda t: restarts_of(t, pod, container=container, since=since), restarts,
        ref=ref, w=w, deadline=_deadline(ref, w), expected=expected, counted="restarts",
        late=lambda d, last: f"restart {restarts} at +{d:.0f} s ({_clock(last.time)})",
        container=container)


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
    span = _span(tl, since, duration, "assert_no_restarts_for")
    ref = span.start

    def check(t: Timeline) -> list[Record] | None:
        for recs in restarts_of(t, pod, container=container, since=since).values():
            early = [r for r in recs if r.time <= span.end]
            if early:
                return early
        return None

    _absent_for(
        tl, pod, span, check,
        expected=f"no restart for {span.duration:g} s from {_clock(ref)}",
        observed=lambda hit: f"a restart at +{_offset(ref, hit[0]):.0f} s ({_clock(hit[0].time)})",
        nothing=f"pod running without restarts for {span.duration:g} s", container=container)
