"""The shared core of the assertion helpers: windows, references, record selection, failures.

``within=`` becomes a window stretched by the context's tolerance (:func:`_window`), ``since=``
becomes the moment it is measured from (:func:`_reference`), the records of the matching pods are
picked (:func:`_matching_pods`, :func:`_ready_transitions`, :func:`_entered_or_still`), and a
failure becomes a :class:`~pytest_probes.errors.ProbeAssertionError` whose message says what was
expected, what was observed, and shows the rows that matter (:func:`_fail`). The rules these follow
are in :mod:`pytest_probes.assertions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pytest_probes.assertions.context import context_of
from pytest_probes.errors import InconclusiveError, ProbeAssertionError
from pytest_probes.timeline import GAP_KIND, Record, Timeline, as_time, describe, pod_matches
from pytest_probes.timing import API_TIME_RESOLUTION

ROW_LIMIT = 40


class _HasWindow(Protocol):
    @property
    def earliest(self) -> float: ...

    @property
    def latest(self) -> float: ...


WindowLike = float | int | tuple[float, float] | _HasWindow
Since = datetime | Record | str | float | None
"""Where a helper measures from: any of :data:`pytest_probes.records.TIME_TYPES`, or ``None``
for the start of recording."""


@dataclass(frozen=True)
class _Window:
    earliest: float
    latest: float


def _window(tl: Timeline, within: WindowLike) -> _Window:
    scale = float(context_of(tl).tolerance or 1.0)
    try:
        if isinstance(within, int | float) and not isinstance(within, bool):
            lo, hi = 0.0, float(within)
        elif isinstance(within, tuple) and len(within) == 2:
            lo, hi = float(within[0]), float(within[1])
        else:
            lo, hi = float(within.earliest), float(within.latest)  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        raise TypeError(f"within= takes seconds (a number), an (earliest, latest) pair or a "
                        f"Window; got {within!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"within={within!r}: a window needs finite ends")
    if hi <= 0:
        raise ValueError(f"within={within!r} ends at {hi:g} s: nothing can happen within it "
                         "after since=; pass a window that ends after 0")
    if hi < lo:
        raise ValueError(f"window ends before it starts: {lo:g}–{hi:g} s")
    return _Window(lo, hi * scale)


def _duration(value: object, helper: str) -> float:
    """A ``duration=`` in seconds: finite and above zero (a check over no time proves nothing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{helper}(duration=...) takes seconds (a number); got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{helper}(duration={value!r}): a duration must be a finite number of "
                         "seconds above 0; a check over no time would pass without evidence")
    return float(value)


def _reference(tl: Timeline, since: Since) -> datetime:
    # A precise local moment (an injected fault) is rounded down to its second: records of the
    # same second are stamped with that whole second (API_TIME_RESOLUTION) and must still count.
    return _floor(_exact_reference(tl, since))


def _measure(tl: Timeline, helper: str, pod: str, since: Since, w: _Window, rec: Record) -> None:
    context_of(tl).measure(tl, helper, pod, _exact_reference(tl, since), w.earliest, w.latest, rec)


def _anchor_deadline(tl: Timeline, ref: datetime) -> datetime:
    """How long a helper waits for what has no window of its own (what it measures from)."""
    return ref + timedelta(seconds=tl.default_timeout * context_of(tl).tolerance)


def _floor(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _exact_reference(tl: Timeline, since: Since) -> datetime:
    if since is not None:
        return as_time(since, argument="since")
    if tl.started is not None:
        return tl.started
    recs = tl.records
    if not recs:
        raise ValueError("the timeline is empty and has no start time; pass since=")
    return recs[0].time


def _fmt_window(w: _Window) -> str:
    return f"{w.latest:g} s" if w.earliest <= 0 else f"{w.earliest:g}–{w.latest:g} s"


def _clock(t: datetime) -> str:
    return t.strftime("%H:%M:%S")


def _offset(ref: datetime, rec: Record) -> float:
    return (rec.time - ref).total_seconds()


def _in_window(d: float, w: _Window) -> bool:
    return w.earliest - API_TIME_RESOLUTION <= d <= w.latest + API_TIME_RESOLUTION


def _deadline(ref: datetime, w: _Window) -> datetime:
    return ref + timedelta(seconds=w.latest + API_TIME_RESOLUTION)


def _where(tl: Timeline, pod: str, container: str | None = None) -> str:
    pods = sorted({r.pod for r in tl.records if r.pod and pod_matches(r.pod, pod)})
    shown = pods[0] if len(pods) == 1 else (f"{pod}* ({len(pods)} pods)" if pods else pod)
    text = f"pod {tl.namespace}/{shown}"
    return text + (f" container {container}" if container else "")


def _rows(tl: Timeline, pod: str | None, extra: Iterable[Record] = ()) -> str:
    wanted = {id(r) for r in extra}
    recs = [
        r
        for r in tl.records
        if pod is None or pod_matches(r.pod, pod) or r.source == "endpoints" or id(r) in wanted
        or r.kind == GAP_KIND
    ]
    return tl.to_markdown(recs, limit=ROW_LIMIT)


def _fail(
    tl: Timeline,
    pod: str,
    *,
    expected: str,
    observed: str,
    window: _Window | None = None,
    container: str | None = None,
    details: dict[str, Any] | None = None,
) -> ProbeAssertionError:
    rows = _rows(tl, pod)
    pods_seen = [p for p in tl.pods() if pod_matches(p, pod)]
    if not pods_seen:
        observed += (
            f"; no pod matching {pod!r} appeared in namespace {tl.namespace} "
            f"(pods seen: {', '.join(tl.pods()) or 'none'}) — check the pod name and that the "
            "manifest was deployed into this namespace"
        )
    behind = tl.kubelet_events_behind() if tl.live else None
    if behind is not None:
        observed += (
            f"; the kubelet's Events were still behind its pod status when the wait gave up (no "
            f"Event from it since {behind.pod}/{behind.container} started at "
            f"{behind.time:%H:%M:%S}): its event writer is backed up or dropped them, so this "
            "says more about the node's load than about the probes"
        )
    message = (
        f"{_where(tl, pod, container)}: expected {expected}; observed {observed}.\n"
        f"Timeline ({'recorded' if not tl.live else 'live'}):\n{rows}"
    )
    return ProbeAssertionError(
        message,
        namespace=tl.namespace,
        pod=pod,
        expected=expected,
        observed=observed,
        window=(window.earliest, window.latest) if window else None,
        rows=rows,
        details=details,
    )


def _conclusive(
    tl: Timeline, pod: str, *, expected: str, start: datetime, end: datetime,
    sources: tuple[str, ...], container: str | None = None,
) -> None:
    """Raise :class:`InconclusiveError` if a watch gap of ``sources`` overlaps ``start``–``end``.

    Called by the helpers that pass on the absence of records, once nothing else decided them.
    """
    gaps = tl.gaps(sources=sources, start=start, end=end)
    if not gaps:
        return
    spans = "; ".join(describe(g) for g in gaps)
    observed = (f"nothing against it, but the recording had a gap in the window, so its absence "
                f"proves nothing ({spans}); inconclusive: run it again, or assert on the "
                "transitions the gap cannot hide")
    failure = _fail(tl, pod, expected=expected, observed=observed, container=container)
    raise InconclusiveError(str(failure), gaps=gaps, namespace=failure.namespace, pod=pod,
                            expected=expected, observed=observed, rows=failure.rows)


def _first(recs: Iterable[Record], start: datetime, end: datetime | None = None) -> Record | None:
    """The first of ``recs`` stamped at or after ``start`` (and at or before ``end``), if any."""
    return next((r for r in recs if r.time >= start and (end is None or r.time <= end)), None)


def _matching_pods(tl: Timeline, pod: str) -> list[str]:
    return [p for p in tl.pods() if pod_matches(p, pod)]


def _ready_transitions(tl: Timeline, name: str) -> list[Record]:
    return tl.query(pod=name, source="pod", kind=("PodReady", "PodNotReady"))


def _entered_or_still(
    recs: list[Record], ref: datetime, want: Callable[[Record], bool]
) -> Record | None:
    # The first of one pod's state records at/after ref that is in the wanted state; else, if
    # none comes at/after ref and the last one before it is wanted, that one (the pod was already
    # there and has not left since). A record stamped in ref's own second counts as after.
    after = [r for r in recs if r.time >= ref]
    entered = [r for r in after if want(r)]
    if entered:
        return entered[0]
    if recs and not after and want(recs[-1]):
        return recs[-1]
    return None
