"""Container restart rules (KEP-5307) and ``RestartAllContainers`` (KEP-5532): what an exit does.

A container may carry its own ``restartPolicy`` and ``restartPolicyRules`` (beta and on by
default from 1.35, gate ``ContainerRestartRules``); a rule may order ``RestartAllContainers``
(beta and on from 1.36, gate ``RestartAllContainersOnContainerExits``). Which exit restarts what
is decided by the kubelet's ``ContainerShouldRestart`` and ``FindMatchingContainerRestartRule``
(``pkg/api/v1/pod/util.go``); :func:`exit_action` follows them. How long the in-place restart of
a whole pod takes follows ``Kubelet.SyncPod`` (``pkg/kubelet/kubelet.go``) and
``kubeGenericRuntimeManager.SyncPod`` (``pkg/kubelet/kuberuntime/kuberuntime_manager.go``);
:func:`restart_all_containers` bounds it. Sources read at v1.37.2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pytest_probes.errors import DeployError
from pytest_probes.timing.kubelet import (
    CONTAINER_START_CALLS,
    DEFAULT_ALLOWANCE,
    MINIMUM_GRACE_PERIOD,
    PLEG_RELIST_PERIOD,
)
from pytest_probes.timing.spec import _pod_spec_of
from pytest_probes.timing.window import Window, _as_window

ExitAction = Literal["Restart", "RestartAllContainers", "Stop"]
"""What the kubelet does when a container exits: restart it, restart the whole pod's containers
in place, or leave it terminated."""


def _container(spec: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping) and c.get("name") == name:
                return c
    names = [c.get("name") for key in ("initContainers", "containers")
             for c in spec.get(key) or [] if isinstance(c, Mapping)]
    raise DeployError(f"no container {name!r} in the pod; it has {names}", name=name)


def exit_action(pod_spec: Mapping[str, Any], container: str, exit_code: int) -> ExitAction:
    """What the kubelet does when ``container`` exits with ``exit_code`` (a regular container).

    The first of the container's ``restartPolicyRules`` whose ``exitCodes`` match decides
    (operator ``In``: the code is listed; ``NotIn``: it is not). No rule matching, the
    container's own ``restartPolicy`` decides, and without one the pod's (``Always`` when unset):
    ``Always`` restarts, ``OnFailure`` restarts a non-zero exit, ``Never`` does not
    (``ContainerShouldRestart``, ``FindMatchingContainerRestartRule`` in
    ``pkg/api/v1/pod/util.go``). A kubelet without ``RestartAllContainersOnContainerExits``
    treats a ``RestartAllContainers`` rule as no rule.

    Args:
        pod_spec: A pod spec, a Pod, or a workload manifest holding one.
        container: The container's name.
        exit_code: The code it exits with.

    Raises:
        DeployError: No pod spec, or no such container.
    """
    spec = _pod_spec_of(pod_spec)
    chosen = _container(spec, container)
    own = chosen.get("restartPolicy")
    if own is not None:
        for rule in chosen.get("restartPolicyRules") or []:
            codes = rule.get("exitCodes") or {}
            listed = exit_code in (codes.get("values") or [])
            operator = codes.get("operator")
            if (operator == "In" and listed) or (operator == "NotIn" and not listed):
                action = rule.get("action")
                if action == "Restart":
                    return "Restart"
                if action == "RestartAllContainers":
                    return "RestartAllContainers"
        policy = str(own)
    else:
        policy = str(spec.get("restartPolicy") or "Always")
    if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
        return "Restart"
    return "Stop"


def all_containers_restarting(*, allowance: float = DEFAULT_ALLOWANCE) -> Window:
    """From the exit that triggers ``RestartAllContainers`` to ``AllContainersRestarting=True``.

    The PLEG relist notices the exit (at most :data:`PLEG_RELIST_PERIOD`); the pod sync it
    triggers generates the status with the condition (``GenerateAllContainersRestartingCondition``
    in ``pkg/kubelet/status/generate.go``, called from ``generateAPIPodStatus``) and the status
    manager writes it at once.
    """
    return Window(0.0, PLEG_RELIST_PERIOD + allowance)


def restart_all_containers(
    pod_spec: Mapping[str, Any],
    container: str,
    *,
    trigger: str,
    init_run: Window | float = 0.0,
    exits_on_sigterm_after: float = MINIMUM_GRACE_PERIOD,
    allowance: float = DEFAULT_ALLOWANCE,
) -> Window:
    """From the exit that triggers ``RestartAllContainers`` to ``container``'s new start.

    The PLEG relist sees the trigger's exit, and the sync it causes sets
    ``AllContainersRestarting`` and passes it to the runtime's ``SyncPod``. That kills each running
    container in turn and removes every container, one CRI call each (``ContainersToReset`` in
    ``kubeGenericRuntimeManager.SyncPod``, ``pkg/kubelet/kuberuntime/kuberuntime_manager.go``).
    The kill asks for no grace period, but ``killContainer`` raises it to
    :data:`MINIMUM_GRACE_PERIOD` (``kuberuntime_container.go``): a process that ignores SIGTERM
    runs that long. Having removed containers, ``Kubelet.SyncPod`` queues the pod again at once
    (``pkg/kubelet/kubelet.go``), and that sync starts the pod afresh in its sandbox: each init
    container in turn, the next after the PLEG relist that saw the previous one exit (a sidecar:
    start), then the regular containers in spec order, one start each.

    Args:
        pod_spec: A pod spec, a Pod, or a workload manifest holding one.
        container: The regular container whose new start is bounded.
        trigger: The container whose exit ordered the restart (it is not running; not killed).
        init_run: How long the init containers run, together (start to exit of each, summed).
        exits_on_sigterm_after: Seconds a running container takes to exit on SIGTERM; the
            kubelet's minimum grace period caps it.
        allowance: Seconds per kubelet hop, here per CRI call (:data:`DEFAULT_ALLOWANCE`).

    Returns:
        The window of ``container``'s ``startedAt``, relative to the trigger's ``finishedAt``.

    Raises:
        DeployError: No pod spec, or ``container`` is not a regular container of it, or no
            ``trigger``.
    """
    spec = _pod_spec_of(pod_spec)
    _container(spec, trigger)
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, Mapping)]
    regular = [c.get("name") for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    if container not in regular:
        raise DeployError(f"no regular container {container!r} in the pod; it has {regular}",
                          name=container)
    running = (sum(1 for name in regular if name != trigger)
               + sum(1 for c in inits if c.get("restartPolicy") == "Always"))
    stop = min(max(exits_on_sigterm_after, 0.0), MINIMUM_GRACE_PERIOD)
    run = _as_window(init_run)
    detect = PLEG_RELIST_PERIOD + allowance                     # the exit, seen and synced
    # A kill: the signal, the exit, and the runtime deleting the exited task before
    # StopContainer returns (ContainerTiming.stop_return); then a removal per container.
    reset = running * (allowance + stop + allowance) + (len(inits) + len(regular)) * allowance
    starting = CONTAINER_START_CALLS * allowance                # create, start
    inits_done = len(inits) * (starting + PLEG_RELIST_PERIOD + allowance)  # start; exit seen
    start = (regular.index(container) + 1) * starting
    return Window(run.earliest, detect + reset + inits_done + run.latest + start)
