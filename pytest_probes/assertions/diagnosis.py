"""Fail-fast diagnosis: whether a pod can still make progress, and what to fix if not.

Every live wait asks :func:`diagnose` after each record, so a wait that cannot succeed (an image
that cannot be pulled, a missing ConfigMap, an unschedulable pod, a name that matches no pod, a
Service that never lists the pod) ends at once with a
:class:`~pytest_probes.errors.DiagnosedFailure` naming the cause and the fix, instead of running
out its timeout.
"""

from __future__ import annotations

from pytest_probes.assertions._core import _clock, _matching_pods, _rows
from pytest_probes.assertions.context import context_of
from pytest_probes.errors import DiagnosedFailure
from pytest_probes.podstate import HOPELESS_WAITING, HOPELESS_WAITING_REASONS, UNSCHEDULABLE_FIX
from pytest_probes.timeline import Record, Timeline, pod_matches
from pytest_probes.timing import (
    API_TIME_RESOLUTION,
    POD_CREATION_ALLOWANCE,
    Window,
    endpoints_follow,
)

FATAL_WAITING_REASONS = HOPELESS_WAITING_REASONS
"""Container waiting reasons after which a wait cannot succeed without a fix (the reasons of
:data:`pytest_probes.podstate.HOPELESS_WAITING`, with the fix for each)."""


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
            return _diagnosed(tl, pod, name, observed, HOPELESS_WAITING[str(rec.data["reason"])])
        observed = f"the pod cannot be scheduled: {rec.message}"
        return _diagnosed(tl, pod, name, observed, UNSCHEDULABLE_FIX)
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
    allowance = POD_CREATION_ALLOWANCE * context_of(tl).tolerance
    if (tl.server_now() - newest).total_seconds() < allowance:
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
    passed (stretched by the context's tolerance) with no endpoint of ``service`` at all, waiting
    longer cannot help.
    """
    if any(r.data.get("service") == service for r in tl.query(source="endpoints")):
        return None
    ready = tl.first(pod=pod, kind="PodReady")
    if ready is None or ready.pod is None:
        return None
    tolerance = context_of(tl).tolerance
    grace = endpoints_follow(Window(0.0, 0.0)).latest * tolerance + API_TIME_RESOLUTION
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


def _diagnosed(tl: Timeline, pod: str, name: str, observed: str, fix: str) -> DiagnosedFailure:
    rows = _rows(tl, pod)
    message = (
        f"pod {tl.namespace}/{name}: stopped waiting early: {observed}; {fix}.\n"
        f"Timeline:\n{rows}"
    )
    return DiagnosedFailure(
        message, namespace=tl.namespace, pod=name, expected="", observed=observed, rows=rows
    )
