"""Pod phases and conditions, and container terminations: asserting a pod gets there in time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pytest_probes.assertions._checks import _first_within
from pytest_probes.assertions._core import (
    Since,
    WindowLike,
    _deadline,
    _entered_or_still,
    _fail,
    _first,
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


def _state_within(
    records: Callable[[Timeline, str], list[Record]], wanted: Callable[[Record], bool], pod: str,
) -> Callable[[Timeline, datetime], Record | None]:
    """What a matching pod entered (or is in) of a wanted state, from a reference moment."""

    def find(t: Timeline, ref: datetime) -> Record | None:
        for name in _matching_pods(t, pod):
            hit = _entered_or_still(records(t, name), ref, wanted)
            if hit is not None:
                return hit
        return None

    return find


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

    hit = _wait(tl, pod, lambda t: _first(t.query(pod=pod, source="pod", kind="ContainerTerminated",
                                                  container=container), ref),
                deadline=_deadline(ref, w))
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

    def observed(t: Timeline) -> str:
        phases = [r.data.get("phase") for r in t.query(pod=pod, kind="PodPhase")]
        return f"phases {' → '.join(map(str, phases)) or 'none'}"

    find = _state_within(lambda t, name: t.query(pod=name, source="pod", kind="PodPhase"),
                         lambda r: r.data.get("phase") == phase, pod)
    return _first_within(tl, pod, find, helper="assert_phase_within", what=f"phase {phase}",
                         within=within, since=since, none=observed, already=True,
                         late=lambda d, _hit: f"{phase} at +{d:.0f} s")


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

    def observed(t: Timeline) -> str:
        seen = [r.message for name in _matching_pods(t, pod) for r in records(t, name)]
        return f"{condition}: {' → '.join(seen) or 'never reported'}"

    return _first_within(tl, pod, _state_within(records, wanted, pod),
                         helper="assert_condition_within", what=f"condition {condition}={status}",
                         within=within, since=since, none=observed, already=True,
                         late=lambda d, _hit: f"{condition}={status} at +{d:.0f} s")
