"""The crash-loop back-off: a container's down times, checked against the kubelet's back-off.

:func:`assert_crashloop_backoff` checks that restart gaps grow as the kubelet's back-off does and,
given a :class:`~pytest_probes.timing.RestartSchedule`, that each restart falls into the window of
the history observed up to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _clock,
    _fail,
    _fmt_window,
    _in_window,
    _measure,
    _offset,
    _reference,
    _Window,
    _window,
)
from pytest_probes.assertions.restarts import _restarts_within
from pytest_probes.timeline import Record, Timeline, parse_time
from pytest_probes.timing import (
    API_TIME_RESOLUTION,
    DEFAULT_CRASHLOOP_BACKOFF,
    SYNC_LOOP_TICK,
    CrashLoopBackOff,
    RestartSchedule,
    backoff_requeue_late,
)


@dataclass(frozen=True)
class RestartGap:
    """How long a container stayed down before a restart.

    Attributes:
        restart: The restart record.
        down_since: When the instance before it finished (server time).
        gap: Seconds from ``down_since`` to the restart.
        backed_off: Whether the restart waited for the back-off: a CrashLoopBackOff wait or a
            ``BackOff`` Event of the container was recorded in between (see
            :func:`restart_gaps`).
        backoff: The back-off the kubelet announced for that wait, in seconds (``back-off 40s``
            in the waiting message), if it was recorded (the Event does not say it).
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


BACKOFF_EVENT = "BackOff"
"""The Event reason ``doBackOff`` posts on each sync that finds the container in back-off
(``events.BackOffStartContainer``, "Back-off restarting failed container ...",
``pkg/kubelet/kuberuntime/kuberuntime_manager.go``)."""


def _in_backoff(rec: Record) -> bool:
    """Whether ``rec`` says its container is waiting in the crash-loop back-off.

    That is a ``CrashLoopBackOff`` waiting state or a ``BackOff`` Event.
    """
    if rec.source == "pod":
        return rec.kind == "ContainerWaiting" and rec.data.get("reason") == "CrashLoopBackOff"
    return rec.source == "event" and rec.kind == BACKOFF_EVENT


def restart_gaps(tl: Timeline, name: str, *, container: str | None = None) -> list[RestartGap]:
    """The down time before each restart of one pod, from its termination and back-off records.

    A restart waited for the back-off if, between the exit and the restart, the container showed
    a ``CrashLoopBackOff`` waiting state or the kubelet posted a ``BackOff`` Event for it. Both
    come from the same sync (``doBackOff`` posts the Event and returns ``ErrCrashLoopBackOff``,
    which the reason cache turns into the waiting state), but the status does not always show
    it: ``convertToAPIContainerStatuses`` (``pkg/kubelet/kubelet_pods.go``, 1.33 to 1.37) skips
    an *init* container whose newest instance exited 0 ("If the init container is terminated
    with exit code 0, it won't be restarted"), restartable or not. A native sidecar that exits 0
    on SIGTERM therefore stays ``Terminated`` (``Completed``) through its back-off, and only
    the Event shows the wait. The Event passes the kubelet's spam filter (25 Warning Events per
    pod at once, then one per 5 minutes; client-go ``tools/record/events_cache.go``), which a
    short test stays within.
    """
    out: list[RestartGap] = []
    for rec in tl.query(pod=name, source="pod", kind="ContainerRestarted", container=container):
        finished = parse_time(rec.data.get("previous", {}).get("finishedAt"))
        if finished is None:
            terms = [t for t in tl.query(pod=name, source="pod", kind="ContainerTerminated",
                                         container=rec.container) if t.time <= rec.time]
            if not terms:
                continue
            finished = terms[-1].time
        between = [r for r in tl.query(pod=name, container=rec.container,
                                       kind=("ContainerWaiting", BACKOFF_EVENT))
                   if finished <= r.time <= rec.time and _in_backoff(r)]
        announced = [b for b in (_announced_backoff(r.message or "") for r in between
                                 if r.source == "pod") if b is not None]
        out.append(RestartGap(rec, finished, (rec.time - finished).total_seconds(),
                              bool(between), announced[-1] if announced else None))
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
    backoff: CrashLoopBackOff | None = None,
) -> list[RestartGap]:
    """Assert the pod enters CrashLoopBackOff and its restart gaps grow as the kubelet's back-off.

    A wait in back-off is a ``CrashLoopBackOff`` waiting state or a ``BackOff`` Event between the
    exit and the restart (:func:`restart_gaps`: a native sidecar that exited 0 shows only the
    Event).

    The kubelet's back-off starts at 10 s and doubles up to 300 s by default
    (``kuberuntime_manager.go``: ``doBackOff``; ``flowcontrol.Backoff``), or as the kubelet is
    configured (``backoff``: ``KubeletCrashLoopBackOffMax``'s ``maxContainerRestartPeriod``,
    ``ReduceDefaultCrashLoopBackOffDecay``; :class:`~pytest_probes.timing.CrashLoopBackOff`).
    Every restart that did not wait still advances it (liveness-kill loops restart at once a few
    times before the first wait, which is then already 40 s). So the k-th restart that followed a
    CrashLoopBackOff wait was down for at least ``initial × 2^(k-1)`` up to the cap — a floor, not
    the exact step — and a down time never falls below the one before it by more than the pod
    worker may add to a back-off (its requeue, :func:`~pytest_probes.timing.backoff_requeue_late`,
    and the 1 s sync tick): a back-off that short ends at the next requeue, 10–15 s after the
    previous sync on 1.33 and 1.34.

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
        since: Reference moment of the windows (see :mod:`pytest_probes.assertions`).
        schedule: See above.
        backoff: The kubelet's back-off settings; by default the schedule's (a
            :class:`~pytest_probes.timing.RestartSchedule` carries those it was computed with),
            else 10 s doubling to 300 s. A configured cluster's:
            :attr:`Cluster.crashloop_backoff <pytest_probes.cluster.Cluster.crashloop_backoff>`.

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
    waits = tl.query(pod=name, container=container, kind=("ContainerWaiting", BACKOFF_EVENT),
                     where=_in_backoff)
    problems: list[str] = []
    measured = w
    if schedule is not None:
        problems, last = _schedule_problems(tl, ref, recs, found, schedule)
        measured = last or w
    _measure(tl, "assert_crashloop_backoff", pod, since, measured, recs[-1])
    if not waits:
        raise _fail(tl, name, expected="a CrashLoopBackOff wait or BackOff Event between restarts",
                    observed="none recorded", container=container)
    if backoff is None:
        given = schedule.backoff if isinstance(schedule, RestartSchedule) else None
        backoff = given or DEFAULT_CRASHLOOP_BACKOFF
    backed = [g for g in gaps if g.backed_off]
    floors = backoff.delays(len(backed))
    for k, g in enumerate(backed):
        if g.gap < floors[k] - API_TIME_RESOLUTION:
            problems.append(f"restart at {_clock(g.restart.time)} came {g.gap:.0f} s after the "
                            f"previous exit; back-off step {k + 1} is at least {floors[k]:g} s "
                            f"({backoff})")
        # The previous back-off as announced (or its floor) bounds how late that restart came.
        before = (backed[k - 1].backoff or floors[k - 1]) if k else 0.0
        late = backoff_requeue_late(before) + SYNC_LOOP_TICK
        if k and g.gap < backed[k - 1].gap - late - API_TIME_RESOLUTION:
            problems.append(f"down time shrank from {backed[k - 1].gap:.0f} s to {g.gap:.0f} s")
    if problems:
        raise _fail(tl, name, expected="restart gaps growing with the kubelet's back-off",
                    observed="; ".join(problems), container=container,
                    details={"gaps": [g.gap for g in gaps]})
    return gaps
