"""Assertion helpers: what a timeline must show, within windows derived from the probe spec.

Every helper takes the timeline first, the pod (a name, or a prefix such as a Deployment's name)
second, and everything else by keyword. On a live timeline it waits, woken by each new record from
the watch, until the condition is decided or its deadline passes; on a recorded timeline it decides
at once. A failure raises :class:`~pytest_probes.errors.ProbeAssertionError` (an
``AssertionError``) whose message says what was expected, what was observed, and shows the
timeline rows that matter. Helpers return the records that satisfied them, so a test can chain
(``since=record``).

Windows: ``within`` is a number of seconds (an upper bound) or a window with ``earliest`` and
``latest`` (a :class:`pytest_probes.timing.Window`, or a ``(earliest, latest)`` tuple), measured
from ``since`` — a timestamp, a record, or by default the start of recording. Server timestamps
have whole-second resolution (:data:`API_TIME_RESOLUTION`), so both ends of a window are widened by
that much: the true times can be up to one second apart from the stamped ones. The timeline's
``tolerance`` (the ``--probes-timeout-scale`` option) stretches the upper end of every window.

When a prefix matches several pods, a helper that expects something to happen passes if it happens
to any of them, and a helper that expects something *not* to happen requires it of all of them.

A helper that expects something *not* to happen (``assert_never_ready_for``,
``assert_endpoint_kept_for``, ``assert_no_restarts_for``) rests on the absence of records, which
a gap in the recording (a ``WatchGap`` record: the watch was lost and the list that resumed it
shows only the net change) cannot prove: where a gap of the source it reads overlaps its window
and nothing else decided it, it raises :class:`~pytest_probes.errors.InconclusiveError`, naming
the gap, instead of passing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pytest_probes.errors import DiagnosedFailure, InconclusiveError, ProbeAssertionError
from pytest_probes.timeline import (
    EVENT_WRITER_RETRY_SPAN,
    GAP_KIND,
    Record,
    Timeline,
    as_time,
    describe,
    parse_time,
    pod_matches,
)
from pytest_probes.timing import (
    API_TIME_RESOLUTION,
    CRASHLOOP_INITIAL_BACKOFF,
    CRASHLOOP_MAX_BACKOFF,
    POD_CREATION_ALLOWANCE,
    STATUS_SYNC_PERIOD,
    RestartSchedule,
    Window,
    endpoints_follow,
)

OBSERVATION_GRACE = 3.0
"""Local seconds a live wait that passes at its deadline (nothing happened: ``assert_*_for``) keeps
listening past it for records stamped before the deadline that are still on their way (watch
latency). It does not widen any window: pass or fail is decided on server timestamps."""

LATE_RECORD_GRACE = STATUS_SYNC_PERIOD
"""Local seconds a live wait for something to happen keeps listening past its deadline before it
fails. Under a full suite on 2 cores the kubelet's status updates can fall seconds behind (seen: a
restart stamped 2 s inside the window was not in the API 3 s after the window closed); the status
manager's full batch every :data:`~pytest_probes.timing.STATUS_SYNC_PERIOD` sends what is missing.
It only delays reporting a failure, and widens no window."""

FATAL_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
"""Container waiting reasons after which a wait cannot succeed without a fix."""

ROW_LIMIT = 40

T = TypeVar("T")


class _HasWindow(Protocol):
    @property
    def earliest(self) -> float: ...

    @property
    def latest(self) -> float: ...


WindowLike = float | int | tuple[float, float] | _HasWindow
Since = datetime | Record | str | float | None
"""Where a helper measures from: any of :data:`pytest_probes.timeline.TIME_TYPES`, or ``None``
for the start of recording."""


@dataclass(frozen=True)
class _Window:
    earliest: float
    latest: float


def _window(tl: Timeline, within: WindowLike) -> _Window:
    scale = float(getattr(tl, "tolerance", 1.0) or 1.0)
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
    tl.measure(helper, pod, _exact_reference(tl, since), w.earliest, w.latest, rec)


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


def is_hopeless(rec: Record) -> bool:
    """Whether ``rec`` says its pod cannot make progress.

    That is a container waiting for a reason no retry fixes (:data:`FATAL_WAITING_REASONS`) or a
    ``FailedScheduling`` Event.
    """
    if rec.source == "event":
        return rec.kind == "FailedScheduling"
    return rec.kind == "ContainerWaiting" and rec.data.get("reason") in FATAL_WAITING_REASONS


def diagnose(tl: Timeline, pod: str, *, service: str | None = None) -> DiagnosedFailure | None:
    """Return a diagnosis if a matching pod can no longer make progress, else ``None``.

    Looks at the latest waiting reason of every matching container (image pull failures, config
    errors) and at ``FailedScheduling`` events; with ``service``, also at whether that Service
    lists the pod once it is Ready (see :func:`missing_service`). Used by every live wait so that
    it ends at once instead of running out its timeout.
    """
    latest: dict[tuple[str, str], Record] = {}
    for rec in tl.records:
        if not pod_matches(rec.pod, pod) or rec.pod is None:
            continue
        if rec.source == "pod" and rec.container and rec.kind in (
            "ContainerWaiting",
            "ContainerStarted",
            "ContainerTerminated",
        ):
            latest[(rec.pod, rec.container)] = rec
        if rec.source == "event" and rec.kind == "FailedScheduling":
            latest[(rec.pod, "")] = rec
    for (name, container), rec in latest.items():
        if not is_hopeless(rec):
            continue
        if rec.kind == "ContainerWaiting":
            observed = f"container {container} is waiting: {rec.message}"
            return _diagnosed(tl, pod, name, observed, _fix_for(str(rec.data["reason"])))
        observed = f"the pod cannot be scheduled: {rec.message}"
        return _diagnosed(
            tl, pod, name, observed,
            "check the pod's nodeSelector, affinity and resource requests against the "
            "node's labels, taints and free capacity (kubectl describe node)",
        )
    if service is not None:
        return missing_service(tl, pod, service)
    return _no_such_pod(tl, pod) if not latest else None


def _no_such_pod(tl: Timeline, pod: str) -> DiagnosedFailure | None:
    """On a live timeline, diagnose a pod name that matches none of the pods that did appear."""
    if not tl.live or _matching_pods(tl, pod) or "/" in pod:  # Kind/name: a custom resource
        return None
    added = tl.query(source="pod", kind="PodAdded")
    if not added:
        return None
    newest = max(r.time for r in added)
    if (tl.server_now() - newest).total_seconds() < POD_CREATION_ALLOWANCE * tl.tolerance:
        return None
    observed = (
        f"no pod matching {pod!r} appeared in namespace {tl.namespace}; the pods there are "
        f"{', '.join(tl.pods())} (the newest created at {_clock(newest)})"
    )
    fix = (
        "check the pod name (a pod's name, or the name of the Deployment/ReplicaSet/StatefulSet "
        "as a prefix) and that the manifest was deployed into this namespace"
    )
    return _diagnosed(tl, pod, pod, observed, fix)


def missing_service(tl: Timeline, pod: str, service: str) -> DiagnosedFailure | None:
    """Diagnose a Service that never lists a Ready pod: it does not exist, or does not select it.

    The EndpointSlice controller adds a Ready pod to every Service that selects it within
    :func:`~pytest_probes.timing.endpoints_follow` of the ``Ready`` change; once that window has
    passed (stretched by the timeline's tolerance) with no endpoint of ``service`` at all, waiting
    longer cannot help.
    """
    if any(r.data.get("service") == service for r in tl.query(source="endpoints")):
        return None
    ready = tl.first(pod=pod, kind="PodReady")
    if ready is None or ready.pod is None:
        return None
    grace = endpoints_follow(Window(0.0, 0.0)).latest * tl.tolerance + API_TIME_RESOLUTION
    now = tl.server_now() if tl.live else max(r.time for r in tl.records)
    if (now - ready.time).total_seconds() < grace:
        return None
    others = sorted({str(r.data.get("service")) for r in tl.query(source="endpoints")})
    observed = (
        f"the pod has been Ready since {_clock(ready.time)}, but Service {service!r} has no "
        f"endpoints at all (Services with endpoints here: {', '.join(others) or 'none'})"
    )
    fix = (
        f"Service {tl.namespace}/{service} does not exist or its selector does not match the "
        "pod's labels: deploy the Service, fix its selector, or pass the right service= name"
    )
    return _diagnosed(tl, pod, ready.pod, observed, fix)


def _fix_for(reason: str) -> str:
    if reason in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"):
        return (
            "check the image reference; on a cluster without a registry load the image with "
            "probes_cluster.load_image() and use imagePullPolicy IfNotPresent"
        )
    if reason == "CreateContainerConfigError":
        return (
            "create the ConfigMap, Secret or key it names (deploy it with the pod), or fix the "
            "reference in the manifest"
        )
    return "check the container's configuration (ConfigMaps, Secrets, command) in the manifest"


def _diagnosed(tl: Timeline, pod: str, name: str, observed: str, fix: str) -> DiagnosedFailure:
    rows = _rows(tl, pod)
    message = (
        f"pod {tl.namespace}/{name}: stopped waiting early: {observed}; {fix}.\n"
        f"Timeline:\n{rows}"
    )
    return DiagnosedFailure(
        message, namespace=tl.namespace, pod=name, expected="", observed=observed, rows=rows
    )


def _wait(
    tl: Timeline,
    pod: str,
    check: Callable[[Timeline], T | None],
    *,
    deadline: datetime,
    service: str | None = None,
    passes_at_deadline: bool = False,
) -> T | None:
    """Wait for ``check``; past the deadline, listen for records still on their way.

    A wait for something to happen fails only after :data:`LATE_RECORD_GRACE`, and longer while
    the kubelet's Events are behind its pod status (up to the event writer's retry span). A wait
    that passes at its deadline (``assert_*_for``) keeps :data:`OBSERVATION_GRACE` only.
    """
    if not tl.live:
        grace = catch_up = 0.0
    elif passes_at_deadline:
        grace, catch_up = OBSERVATION_GRACE, 0.0
    else:
        grace, catch_up = LATE_RECORD_GRACE, EVENT_WRITER_RETRY_SPAN
    return tl.wait_for(check, deadline=deadline, grace=grace, catch_up=catch_up,
                       giveup=lambda t: diagnose(t, pod, service=service))


def _matching_pods(tl: Timeline, pod: str) -> list[str]:
    return [p for p in tl.pods() if pod_matches(p, pod)]


# --------------------------------------------------------------------------- restarts


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


# --------------------------------------------------------------------------- readiness


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


def _state_within(
    tl: Timeline, pod: str, records: Callable[[Timeline, str], list[Record]],
    wanted: Callable[[Record], bool], ref: datetime, w: _Window,
) -> Record | None:
    """Wait until a matching pod enters (or is in) a wanted state; its record, or ``None``."""

    def check(t: Timeline) -> Record | None:
        for name in _matching_pods(t, pod):
            hit = _entered_or_still(records(t, name), ref, wanted)
            if hit is not None:
                return hit
        return None

    return _wait(tl, pod, check, deadline=_deadline(ref, w))


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


# --------------------------------------------------------------------------- endpoints


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


# --------------------------------------------------------------------------- events


_PROBE_PREFIX = {"liveness": "Liveness", "readiness": "Readiness", "startup": "Startup"}


def probe_failures(
    tl: Timeline, pod: str, *, probe: str, since: Since = None, message: str | None = None
) -> dict[str, list[Record]]:
    """Probe failures per matching pod, one entry per failure (aggregated Events are expanded)."""
    if probe not in _PROBE_PREFIX:
        raise ValueError(f"unknown probe {probe!r}; choose one of {', '.join(_PROBE_PREFIX)}")
    prefix = f"{_PROBE_PREFIX[probe]} probe"
    ref = _reference(tl, since) if since is not None else None
    out: dict[str, list[Record]] = {}
    for rec in tl.query(pod=pod, source="event", kind="Unhealthy"):
        if not rec.message.startswith(prefix):
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

    Failures are ``Unhealthy`` Events whose message starts with ``"<Probe> probe"``; an aggregated
    Event counts once per increment of its ``count``.

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

    def check(t: Timeline) -> tuple[str, list[Record]] | None:
        for name, recs in probe_failures(t, pod, probe=probe, since=ref, message=message).items():
            if len(recs) >= count:
                return name, recs[:count]
        return None

    deadline = (
        _deadline(ref, w) if w else ref + timedelta(seconds=tl.default_timeout * tl.tolerance)
    )
    hit = _wait(tl, pod, check, deadline=deadline)
    what = f"≥{count} {probe} probe failure{'s' if count != 1 else ''}" + (
        f" containing {message!r}" if message else ""
    )
    expected = what + (f" within {_fmt_window(w)} of {_clock(ref)}" if w else "")
    if hit is None:
        seen = probe_failures(tl, pod, probe=probe, since=ref, message=message)
        observed = ", ".join(f"{n}: {len(r)}" for n, r in seen.items()) or "0"
        raise _fail(tl, pod, expected=expected, observed=f"failures {observed}", window=w)
    name, recs = hit
    if w is not None:
        d = _offset(ref, recs[-1])
        if not _in_window(d, w):
            raise _fail(tl, name, expected=expected,
                        observed=f"failure {count} at +{d:.0f} s", window=w)
        _measure(tl, "assert_probe_failures", pod, since, w, recs[-1])
    return list(recs)


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
    ref = _reference(tl, since)
    w = _window(tl, within)

    def check(t: Timeline) -> Record | None:
        recs = [r for r in select(t) if r.time >= ref]
        return recs[0] if recs else None

    hit = _wait(tl, pod, check, deadline=_deadline(ref, w))
    expected = f"{what} within {_fmt_window(w)} of {_clock(ref)}"
    if hit is None:
        raise _fail(tl, pod, expected=expected, observed="none", window=w, container=container)
    d = _offset(ref, hit)
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected, observed=f"{seen} at +{d:.0f} s", window=w,
                    container=container)
    _measure(tl, helper, pod, since, w, hit)
    return hit


# --------------------------------------------------------------------------- container ends


def assert_terminated(
    tl: Timeline,
    pod: str,
    *,
    within: WindowLike,
    reason: str | None = None,
    exit_code: int | None = None,
    container: str | None = None,
    since: Since = None,
) -> Record:
    """Assert a container of the pod terminates within ``within`` of ``since``.

    Checks the recorded termination's ``reason`` (``Completed``, ``Error``, ``OOMKilled`` ...) and
    ``exit_code`` when given (seed 004: a liveness kill of a process that exits cleanly on SIGTERM
    is recorded as Completed, exit code 0).

    Returns:
        The first ``ContainerTerminated`` record at or after ``since``.
    """
    __tracebackhide__ = True
    ref = _reference(tl, since)
    w = _window(tl, within)

    def check(t: Timeline) -> Record | None:
        recs = [r for r in t.query(pod=pod, source="pod", kind="ContainerTerminated",
                                   container=container) if r.time >= ref]
        return recs[0] if recs else None

    hit = _wait(tl, pod, check, deadline=_deadline(ref, w))
    want = " ".join(
        x for x in (reason and f"reason {reason}", exit_code is not None and
                    f"exit code {exit_code}") if x
    )
    expected = f"termination{' with ' + want if want else ''} within {_fmt_window(w)}"
    if hit is None:
        raise _fail(tl, pod, expected=expected, observed="no termination", window=w,
                    container=container)
    d = _offset(ref, hit)
    got = f"{hit.data.get('reason')}, exit code {hit.data.get('exitCode')} at +{d:.0f} s"
    if (
        not _in_window(d, w)
        or (reason is not None and hit.data.get("reason") != reason)
        or (exit_code is not None and hit.data.get("exitCode") != exit_code)
    ):
        raise _fail(tl, pod, expected=expected, observed=got, window=w, container=container)
    _measure(tl, "assert_terminated", pod, since, w, hit)
    return hit


def assert_phase_within(
    tl: Timeline, pod: str, phase: str, *, within: WindowLike, since: Since = None
) -> Record:
    """Assert the pod reaches ``phase`` (``Running``, ``Succeeded``, ``Failed``) in time.

    Returns:
        The ``PodPhase`` record (which may predate ``since`` if the pod was already there).
    """
    __tracebackhide__ = True
    ref = _reference(tl, since)
    w = _window(tl, within)

    hit = _state_within(tl, pod, lambda t, name: t.query(pod=name, source="pod", kind="PodPhase"),
                        lambda r: r.data.get("phase") == phase, ref, w)
    expected = f"phase {phase} within {_fmt_window(w)} of {_clock(ref)}"
    if hit is None:
        phases = [r.data.get("phase") for r in tl.query(pod=pod, kind="PodPhase")]
        raise _fail(tl, pod, expected=expected,
                    observed=f"phases {' → '.join(map(str, phases)) or 'none'}", window=w)
    d = max(0.0, _offset(ref, hit))
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected, observed=f"{phase} at +{d:.0f} s", window=w)
    _measure(tl, "assert_phase_within", pod, since, w, hit)
    return hit


def assert_condition_within(
    tl: Timeline, pod: str, condition: str, *, status: str = "True", within: WindowLike,
    since: Since = None,
) -> Record:
    """Assert the pod's condition ``condition`` has ``status`` within ``within`` of ``since``.

    Any pod condition by name: ``PodScheduled``, ``Initialized``, ``ContainersReady``,
    ``PodReadyToStartContainers``, a readiness gate's, or ``Ready`` (its ``PodReady`` /
    ``PodNotReady`` records). A pod already there at ``since`` counts at 0 s. For a custom
    resource's ``status.conditions`` give ``Kind/name`` (e.g. ``"Widget/w1"``) after
    ``tl.watch(group, version, plural)``.

    Returns:
        The record of the condition's change (a ``PodCondition``, or ``PodReady`` /
        ``PodNotReady`` for ``Ready``).
    """
    __tracebackhide__ = True
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"status={status!r}: a condition's status is True, False or Unknown")
    ref = _reference(tl, since)
    w = _window(tl, within)

    def records(t: Timeline, name: str) -> list[Record]:
        if "/" in name:  # a custom resource, Kind/name
            return t.query(pod=name, source="custom", kind="Condition",
                           where=lambda r: r.data.get("type") == condition)
        if condition == "Ready":
            return _ready_transitions(t, name)
        return t.query(pod=name, source="pod", kind="PodCondition",
                       where=lambda r: r.data.get("type") == condition)

    def wanted(r: Record) -> bool:
        if r.kind in ("PodReady", "PodNotReady"):
            return (r.kind == "PodReady") == (status == "True")
        return r.data.get("status") == status

    hit = _state_within(tl, pod, records, wanted, ref, w)
    expected = f"condition {condition}={status} within {_fmt_window(w)} of {_clock(ref)}"
    if hit is None:
        seen = [r.message for name in _matching_pods(tl, pod) for r in records(tl, name)]
        raise _fail(tl, pod, expected=expected,
                    observed=f"{condition}: {' → '.join(seen) or 'never reported'}", window=w)
    d = max(0.0, _offset(ref, hit))
    if not _in_window(d, w):
        raise _fail(tl, pod, expected=expected,
                    observed=f"{condition}={status} at +{d:.0f} s", window=w)
    _measure(tl, "assert_condition_within", pod, since, w, hit)
    return hit


# --------------------------------------------------------------------------- back-off


@dataclass(frozen=True)
class RestartGap:
    """How long a container stayed down before a restart.

    Attributes:
        restart: The restart record.
        down_since: When the instance before it finished (server time).
        gap: Seconds from ``down_since`` to the restart.
        backed_off: Whether a CrashLoopBackOff wait was recorded in between.
        backoff: The back-off the kubelet announced for that wait, in seconds (``back-off 40s``
            in the waiting message), if it was recorded.
    """

    restart: Record
    down_since: datetime
    gap: float
    backed_off: bool
    backoff: float | None = None


_BACKOFF_RE = re.compile(r"back-off ((?:\d+h)?(?:\d+m)?(?:\d+(?:\.\d+)?s)?)\b")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def _announced_backoff(message: str) -> float | None:
    """The back-off of a CrashLoopBackOff message, which prints a Go duration (``1m20s``)."""
    m = _BACKOFF_RE.search(message)
    if m is None or not m.group(1):
        return None
    unit = {"h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(n) * unit[u] for n, u in _DURATION_PART_RE.findall(m.group(1)))


def restart_gaps(tl: Timeline, name: str, *, container: str | None = None) -> list[RestartGap]:
    """The down time before each restart of one pod, from its termination and waiting records."""
    out: list[RestartGap] = []
    for rec in tl.query(pod=name, source="pod", kind="ContainerRestarted", container=container):
        finished = parse_time(rec.data.get("previous", {}).get("finishedAt"))
        if finished is None:
            terms = [t for t in tl.query(pod=name, source="pod", kind="ContainerTerminated",
                                         container=rec.container) if t.time <= rec.time]
            if not terms:
                continue
            finished = terms[-1].time
        waits = [
            r
            for r in tl.query(pod=name, source="pod", kind="ContainerWaiting",
                              container=rec.container)
            if finished <= r.time <= rec.time and r.data.get("reason") == "CrashLoopBackOff"
        ]
        announced = [b for b in (_announced_backoff(r.message or "") for r in waits)
                     if b is not None]
        out.append(RestartGap(rec, finished, (rec.time - finished).total_seconds(), bool(waits),
                              announced[-1] if announced else None))
    return out


SKIPPED_BACKOFF_HINT = (
    "a restart that did not wait where the back-off says it must is what a kubelet does after "
    "its container GC removed the container's only exited instance, which it can while the next "
    "one is being started if it keeps one dead instance per container (the default; the local "
    "provider's kubelet keeps more: pytest_probes.providers.local.node.DEAD_INSTANCES_KEPT)"
)
"""Appended to :func:`assert_crashloop_backoff`'s failure when a restart came too early."""


def _schedule_problems(
    tl: Timeline, ref: datetime, recs: Sequence[Record], found: Sequence[RestartGap | None],
    schedule: Sequence[WindowLike],
) -> tuple[list[str], _Window | None]:
    """Check restarts against their windows (see :func:`assert_crashloop_backoff`).

    Returns:
        The problems, and the window the last of ``recs`` met (``None`` if it met none or the
        schedule is shorter).
    """
    histories = schedule if isinstance(schedule, RestartSchedule) else None
    problems: list[str] = []
    met = None
    early = False
    for i, (rec, win) in enumerate(zip(recs, schedule, strict=False)):
        met = None
        ww = _window(tl, win)
        gap = found[i]
        if histories is not None and all(g is not None for g in found[:i + 1]):
            waited = [g.backed_off for g in found[:i + 1] if g is not None]
            branch = histories.given(waited)
            if branch is None:
                shown = ", ".join("waited" if x else "at once" for x in waited)
                problems.append(f"restarts 1–{i + 1} came {shown}: the kubelet's back-off "
                                "rules allow no such history for this spec")
                early = early or not waited[-1]
                continue
            ww = _window(tl, branch)
        d = _offset(ref, rec)
        if _in_window(d, ww):
            met = ww
        else:
            problems.append(f"restart {i + 1} at +{d:.0f} s, outside {_fmt_window(ww)}")
            early = early or d < ww.earliest
        spec = histories.restarts[i].backoff if histories is not None else None
        if (gap is not None and gap.backoff is not None and spec is not None
                and not spec.contains(gap.backoff, slack=API_TIME_RESOLUTION)):
            problems.append(f"restart {i + 1} waited a back-off of {gap.backoff:g} s; the "
                            f"schedule's is {spec}")
    if early:
        problems.append(SKIPPED_BACKOFF_HINT)
    return problems, met if len(recs) <= len(schedule) else None


def assert_crashloop_backoff(
    tl: Timeline,
    pod: str,
    *,
    restarts: int,
    within: WindowLike | None = None,
    container: str | None = None,
    since: Since = None,
    schedule: Sequence[WindowLike] | None = None,
) -> list[RestartGap]:
    """Assert the pod enters CrashLoopBackOff and its restart gaps grow as the kubelet's back-off.

    The kubelet's back-off starts at 10 s and doubles up to 300 s (``kuberuntime_manager.go``:
    ``doBackOff``; ``flowcontrol.Backoff``); every restart that did not wait still advances it
    (liveness-kill loops restart at once a few times before the first wait, which is then already
    40 s). So the k-th restart that followed a CrashLoopBackOff wait was down for at least
    ``10 s × 2^k`` — a floor, not the exact step — and the down times must not shrink.

    Unless the kubelet skips a step: on a liveness kill it takes the back-off from the newest
    *exited* instance, and its container GC, which by default keeps one dead instance per
    container and counts one being started as dead, can remove that instance while the next is
    being started. The next kill then restarts at once and does not advance the back-off. The
    local provider's kubelet keeps two dead instances, which closes that window
    (:data:`pytest_probes.providers.local.node.DEAD_INSTANCES_KEPT`); on other clusters a
    restart that came too early says so in the failure.

    With ``schedule`` (restart start windows relative to ``since``), each restart must also fall
    into its window. A :class:`~pytest_probes.timing.RestartSchedule` from
    :meth:`~pytest_probes.timing.ContainerTiming.restart_schedule` does more: after a restart
    that waited, the kubelet's requeue jitter decides whether the next kill lands in back-off,
    so the schedule holds one history per way that can go. Each restart must fall into the
    window of the history observed up to it (whether each restart waited:
    :attr:`RestartGap.backed_off`), the history must be one the schedule allows, and the time
    the helper returned is measured against that window.

    Args:
        tl: The timeline.
        pod: The pod's name (or a name prefix matching one pod of a Deployment).
        restarts: How many restarts to wait for.
        within: Window of the last of them, relative to ``since``; by default
            ``schedule[restarts - 1]``.
        container: The container, if the pod has several.
        since: Reference moment of the windows (see the module docstring).
        schedule: See above.

    Returns:
        The gaps before each of the first ``restarts`` restarts.
    """
    __tracebackhide__ = True
    if within is None:
        if schedule is None or len(schedule) < restarts:
            raise ValueError(f"pass within= or a schedule of at least {restarts} restarts")
        within = schedule[restarts - 1]
    w = _window(tl, within)
    recs = _restarts_within(tl, pod, restarts, w, container, since)
    ref = _reference(tl, since)
    name = recs[-1].pod or pod
    by_record = {id(g.restart): g for g in restart_gaps(tl, name, container=container)}
    found = [by_record.get(id(rec)) for rec in recs]
    gaps = list({id(g): g for g in found if g is not None}.values())
    waits = tl.query(pod=name, source="pod", kind="ContainerWaiting",
                     where=lambda r: r.data.get("reason") == "CrashLoopBackOff")
    problems: list[str] = []
    measured = w
    if schedule is not None:
        problems, last = _schedule_problems(tl, ref, recs, found, schedule)
        measured = last or w
    _measure(tl, "assert_crashloop_backoff", pod, since, measured, recs[-1])
    if not waits:
        raise _fail(tl, name, expected="a CrashLoopBackOff wait between restarts",
                    observed="none recorded", container=container)
    backed = [g for g in gaps if g.backed_off]
    for k, g in enumerate(backed):
        floor = min(CRASHLOOP_INITIAL_BACKOFF * 2**k, CRASHLOOP_MAX_BACKOFF)
        if g.gap < floor - API_TIME_RESOLUTION:
            problems.append(f"restart at {_clock(g.restart.time)} came {g.gap:.0f} s after the "
                            f"previous exit; back-off step {k + 1} is at least {floor:.0f} s")
        if k and g.gap < backed[k - 1].gap - API_TIME_RESOLUTION:
            problems.append(f"down time shrank from {backed[k - 1].gap:.0f} s to {g.gap:.0f} s")
    if problems:
        raise _fail(tl, name, expected="restart gaps growing with the kubelet's back-off",
                    observed="; ".join(problems), container=container,
                    details={"gaps": [g.gap for g in gaps]})
    return gaps
