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
from pytest_probes.timing.kubelet import DEFAULT_ALLOWANCE, PLEG_RELIST_PERIOD
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
    *, init_run: Window | float = 0.0, allowance: float = DEFAULT_ALLOWANCE
) -> Window:
    """From the exit that triggers ``RestartAllContainers`` to the regular containers' new start.

    The sync that sets ``AllContainersRestarting`` passes it to the runtime's ``SyncPod``, which
    kills every container without a grace period and removes it, the trigger last
    (``computePodActions``: ``ContainersToReset``; ``SyncPod``: ``gracePeriod = 0``). Having
    removed containers, ``Kubelet.SyncPod`` queues the pod again at once, and that sync starts the
    pod afresh in its sandbox: the init containers one after the other, then the regular
    containers, each start after the PLEG relist that saw the previous init container exit.

    Args:
        init_run: How long the init containers run, together (start to exit of each, summed).
        allowance: Seconds per kubelet hop (:data:`DEFAULT_ALLOWANCE`).

    Returns:
        The window of the regular containers' ``startedAt``, relative to the trigger's
        ``finishedAt``.
    """
    run = _as_window(init_run)
    detect = PLEG_RELIST_PERIOD + allowance        # the exit, seen and synced
    reset = allowance                              # kill (no grace) and remove, requeue, sync
    init_exit = PLEG_RELIST_PERIOD + allowance if run.latest > 0 else 0.0
    start = allowance
    return Window(run.earliest, detect + reset + run.latest + init_exit + start)
