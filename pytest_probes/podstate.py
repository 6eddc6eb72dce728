"""Pod state facts: conditions, container states, and the waiting reasons no retry gets past.

Pure functions over pods as the API server returns them (dicts in API JSON form, camelCase). Three
readers share them, so each fact is written once: the reducer (:mod:`pytest_probes.reducer`), which
turns pod updates into timeline records; the deploy waits (:mod:`pytest_probes.deploy.pods`),
which end early on a pod that cannot get where they wait for; and the fail-fast diagnosis of the
assertion helpers (:mod:`pytest_probes.assertions.diagnosis`), which does the same from the
recorded timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from pytest_probes.apitime import parse_time

ContainerStateKind = Literal["running", "waiting", "terminated", ""]
"""Which state a container is in; ``""`` while the kubelet has reported none."""

_IMAGE_PULL_FIX = (
    "the node cannot pull this image: check the image reference; on a cluster without a "
    "registry, load the image into the node first (Cluster.load_image, probes_cluster.load_image() "
    "in a test) and use the exact reference it reports, with imagePullPolicy IfNotPresent"
)

HOPELESS_WAITING: Mapping[str, str] = MappingProxyType(
    {
        "ErrImagePull": _IMAGE_PULL_FIX,
        "ImagePullBackOff": _IMAGE_PULL_FIX,
        "ErrImageNeverPull": "the imagePullPolicy is Never and the image is not on the node; "
        "load it into the node first (Cluster.load_image)",
        "InvalidImageName": "the image reference is malformed; fix the container's image field",
        "CreateContainerConfigError": "the container refers to something that does not exist "
        "(a ConfigMap, Secret or key, or a runAsNonRoot image running as root); create it or "
        "fix the reference",
        "CreateContainerError": "check the container's configuration (ConfigMaps, Secrets, "
        "command) in the manifest",
    }
)
"""Container waiting reasons after which a container will not start without someone changing
something, each with what to change: a clause, which a message joins to its own sentence."""

HOPELESS_WAITING_REASONS = frozenset(HOPELESS_WAITING)
"""The reasons of :data:`HOPELESS_WAITING`."""

UNSCHEDULABLE_FIX = (
    "check the pod's nodeSelector, affinity and resource requests against the node's labels, "
    "taints and free capacity (kubectl describe node)"
)
"""What to change when a pod cannot be scheduled (a clause, like :data:`HOPELESS_WAITING`)."""

_STATES: tuple[ContainerStateKind, ...] = ("running", "terminated", "waiting")

_NEVER_STARTED = datetime.fromtimestamp(0, UTC)


def _status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    status = pod.get("status")
    return status if isinstance(status, Mapping) else {}


def condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The pod's condition of type ``kind`` (``Ready``, ``PodScheduled`` ...), or ``None``."""
    for cond in _status(pod).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statuses of the pod's init containers (native sidecars among them), then the others."""
    status = _status(pod)
    return [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]


def container_state(status: Mapping[str, Any]) -> tuple[ContainerStateKind, Mapping[str, Any]]:
    """Which state a container status shows, and that state's fields.

    The API sets one of ``running``, ``terminated`` and ``waiting`` in ``state``; a key present
    with a null value (as a client's ``to_dict()`` writes the others) does not count.

    Args:
        status: One entry of ``containerStatuses`` (or ``initContainerStatuses``).

    Returns:
        ``("running", {"startedAt": ...})``, ``("waiting", {"reason": ..., "message": ...})``,
        ``("terminated", {"exitCode": ..., ...})``, or ``("", {})`` when no state is reported.
    """
    state = status.get("state")
    if isinstance(state, Mapping):
        for kind in _STATES:
            fields = state.get(kind)
            if fields is not None:
                return kind, fields if isinstance(fields, Mapping) else {}
    return "", {}


def container_started_at(state: Mapping[str, Any] | None) -> str:
    """A container state's ``startedAt``, or ``""`` when the runtime never started it.

    The kubelet reports the CRI's start time as ``time.Unix(0, status.StartedAt)``
    (``pkg/kubelet/kuberuntime/kuberuntime_container.go``), so a container whose start failed (a
    StartError) shows ``1970-01-01T00:00:00Z``: not a time, and never placed on the timeline.
    """
    value = str((state or {}).get("startedAt") or "")
    return "" if value and parse_time(value) == _NEVER_STARTED else value
