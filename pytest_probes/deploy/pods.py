"""How far the pods of applied objects have got, and why a pod can never get there (pure).

Functions over pods and workloads as the API server returns them (dicts in API JSON form): which
pods belong to an object and whether they reached a wait state (:func:`workload_state`,
:func:`pod_reached`), why a pod cannot get there without someone intervening
(:func:`pod_problem`), and a pod in one line (:func:`describe_pod`). The waits of
:class:`~pytest_probes.deploy.deployer.Deployer` judge what they see with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pytest_probes.podstate import (
    HOPELESS_WAITING,
    UNSCHEDULABLE_FIX,
    condition,
    container_state,
    container_statuses,
)

WaitFor = Literal["none", "exist", "running", "ready"]
WAIT_CHOICES: tuple[str, ...] = get_args(WaitFor)

_REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


# --------------------------------------------------------------------------------------------
# Pod state (pure functions over pod dicts as the API server returns them)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_meta(pod).get("deletionTimestamp"))


def pod_reached(pod: Mapping[str, Any], until: WaitFor) -> bool:
    """Return whether a pod has reached a wait state.

    ``exist`` holds once the pod exists. ``running`` holds when the phase is ``Running`` (the
    kubelet reports it once every container has started at least once) or ``Succeeded``.
    ``ready`` holds when the phase is ``Running`` and the ``Ready`` condition is ``True``.
    """
    phase = _status(pod).get("phase")
    if until in ("none", "exist"):
        return True
    if until == "running":
        return phase in ("Running", "Succeeded")
    return phase == "Running" and (condition(pod, "Ready") or {}).get("status") == "True"


def pod_problem(pod: Mapping[str, Any], until: WaitFor) -> str | None:
    """Return why a pod cannot reach ``until`` without someone intervening, or ``None``.

    Recognised: a container waiting for a reason of
    :data:`~pytest_probes.podstate.HOPELESS_WAITING` (ImagePullBackOff, ErrImagePull,
    ErrImageNeverPull, InvalidImageName, CreateContainerConfigError, CreateContainerError); an
    Unschedulable pod; a pod that has finished (Failed, or Succeeded while waiting for ``ready``).
    """
    ref = f"pod {_meta(pod).get('namespace', '?')}/{_meta(pod).get('name', '?')}"
    scheduled = condition(pod, "PodScheduled") or {}
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return (
            f"{ref} cannot be scheduled (Unschedulable): {scheduled.get('message', '')}. "
            f"{_sentence(UNSCHEDULABLE_FIX)}"
        )
    for cs in container_statuses(pod):
        kind, waiting = container_state(cs)
        reason = str(waiting.get("reason") or "") if kind == "waiting" else ""
        if reason in HOPELESS_WAITING:
            image = cs.get("image", "")
            return (
                f"{ref} container {cs.get('name')} (image {image}): {reason}: "
                f"{waiting.get('message', '')}. {_sentence(HOPELESS_WAITING[reason])}"
            )
    phase = _status(pod).get("phase")
    if until == "exist":
        return None
    if phase == "Failed" or (phase == "Succeeded" and until == "ready"):
        return (
            f"{ref} has finished (phase {phase}) and will not become {until}: "
            f"{_containers_summary(pod)}. Check its logs (kubectl logs --previous) and its "
            "restartPolicy"
        )
    return None


def _sentence(clause: str) -> str:
    """A fix clause of :mod:`pytest_probes.podstate` as a sentence of its own."""
    return clause[:1].upper() + clause[1:]


def _container_state(cs: Mapping[str, Any]) -> str:
    kind, fields = container_state(cs)
    if kind == "running":
        text = "running, " + ("ready" if cs.get("ready") else "not ready")
    elif kind == "waiting":
        text = f"waiting {fields.get('reason', '')}".rstrip()
    elif kind == "terminated":
        text = f"terminated {fields.get('reason', '')} exit {fields.get('exitCode')}"
    else:
        text = "unknown"
    last = (cs.get("lastState") or {}).get("terminated")
    if last:
        text += f", last exit {last.get('exitCode')} ({last.get('reason', '')})"
    return text


def _containers_summary(pod: Mapping[str, Any]) -> str:
    parts = [f"{cs.get('name')} {_container_state(cs)}" for cs in container_statuses(pod)]
    return "; ".join(parts) or "no container status yet"


def describe_pod(pod: Mapping[str, Any]) -> str:
    """Summarise a pod in one line: name, phase, ready containers, restarts, container states."""
    statuses = _status(pod).get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    phase = _status(pod).get("phase", "Unknown")
    if _is_terminating(pod):
        phase += " (terminating)"
    total = len(_spec(pod).get("containers") or statuses)
    return (
        f"{_meta(pod).get('name')}: {phase}, ready {ready}/{total}, restarts {restarts} "
        f"({_containers_summary(pod)})"
    )


# --------------------------------------------------------------------------------------------
# Which pods belong to which object (pure)


def _controlled_by(pod: Mapping[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in _meta(pod).get("ownerReferences") or []
    )


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int((_meta(obj).get("annotations") or {}).get(_REVISION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


@dataclass
class WorkloadState:
    """How far one applied object's pods have got.

    Attributes:
        label: ``<Kind> <name>``.
        pods: Its current pods (not terminating; for a Deployment, those of its newest ReplicaSet).
        expected: How many pods it should have, or ``None`` while that is not known yet.
        done: Whether every expected pod has reached the wait state.
        note: Why it is not done yet, when that is not visible from the pods.
    """

    label: str
    pods: list[dict[str, Any]] = field(default_factory=list)
    expected: int | None = None
    done: bool = False
    note: str = ""

    def seen(self) -> str:
        """Describe what was seen, for a timeout message."""
        expected = "?" if self.expected is None else str(self.expected)
        head = f"{self.label}: {len(self.pods)}/{expected} pods"
        if self.note:
            head += f" ({self.note})"
        return "; ".join([head, *(describe_pod(p) for p in self.pods)])


def workload_state(
    obj: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    replica_sets: Iterable[Mapping[str, Any]],
    until: WaitFor,
) -> WorkloadState:
    """Work out which pods belong to an applied object and whether they reached ``until``.

    Args:
        obj: The live object (with ``metadata.uid``, ``metadata.generation`` and ``status``).
        pods: Every pod in the namespace.
        replica_sets: Every ReplicaSet in the namespace (used for Deployments).
        until: The state to reach.

    Returns:
        The object's state.
    """
    kind, name = str(obj.get("kind")), str(_meta(obj).get("name"))
    state = WorkloadState(label=f"{kind} {name}")
    live = [p for p in pods if not _is_terminating(p)]
    uid = _meta(obj).get("uid")
    status, spec = _status(obj), _spec(obj)
    generation = _meta(obj).get("generation")
    observed = status.get("observedGeneration")
    caught_up = kind == "Pod" or generation is None or (observed or 0) >= generation
    if kind == "Pod":
        state.pods = [dict(p) for p in live if _meta(p).get("name") == name]
        state.expected = 1
    elif not caught_up:
        state.note = f"controller has not yet seen generation {generation}"
        return state
    elif kind == "Deployment":
        owned = [rs for rs in replica_sets if uid and _controlled_by(rs, uid)]
        if not owned:
            state.note = "no ReplicaSet yet"
            return state
        newest = max(owned, key=_revision)
        rs_uid = _meta(newest).get("uid", "")
        state.pods = [dict(p) for p in live if _controlled_by(p, rs_uid)]
        state.expected = int(spec.get("replicas", 1))
    else:
        state.pods = [dict(p) for p in live if uid and _controlled_by(p, uid)]
        if kind == "DaemonSet":
            state.expected = int(status.get("desiredNumberScheduled") or 0)
        elif kind == "Job":
            state.expected = 1
            # A finished Job's pods may already be gone; count it as done for exist/running.
            if until != "ready" and int(status.get("succeeded") or 0) >= 1:
                state.done = True
                return state
        else:
            state.expected = int(spec.get("replicas", 1))
        if kind == "StatefulSet" and status.get("updateRevision"):
            revision = status["updateRevision"]
            state.pods = [
                p
                for p in state.pods
                if (_meta(p).get("labels") or {}).get("controller-revision-hash") == revision
            ]
    state.done = len(state.pods) >= state.expected and all(
        pod_reached(p, until) for p in state.pods
    )
    return state
