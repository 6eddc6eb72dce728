"""Container restart rules (KEP-5307) and ``RestartAllContainers`` (KEP-5532), live.

KEP-5307 (kubernetes/enhancements ``keps/sig-node/5307-container-restart-policy``) lets a
container carry its own ``restartPolicy`` and ``restartPolicyRules`` that restart it on chosen
exit codes; beta and on by default from 1.35 (``ContainerRestartRules`` in
``pkg/features/kube_features.go``). KEP-5532 (``keps/sig-node/5532-restart-all-containers-on-
container-exits``) adds the rule action ``RestartAllContainers``: the kubelet kills and removes
every container of the pod and starts the pod afresh in its sandbox, init containers first,
keeping the pod's UID and IP; beta and on from 1.36 (``RestartAllContainersOnContainerExits``).
Which exit does what: :func:`pytest_probes.timing.exit_action`; the windows:
:mod:`pytest_probes.timing.restart_rules`. Sources read at v1.37.2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from pytest_probes import (
    API_TIME_RESOLUTION,
    Cluster,
    ContainerTiming,
    Record,
    Timeline,
    Window,
    assert_condition_within,
    assert_no_restarts_for,
    assert_phase_within,
    assert_restarts_within,
    assert_terminated,
    restarts_of,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import exec_in_pod
from pytest_probes.timing import (
    CRI_RUNTIME_REQUEST_TIMEOUT,
    all_containers_restarting,
    exit_action,
    restart_all_containers,
)

pytestmark = pytest.mark.probes

POD = "rules"
RUN = 15.0
"""Seconds each instance of the exiting container runs before it exits. The restart's window
counts from the container's start, and the kubelet's part after the exit is about fixed (the
PLEG's relist, every second; the new container's start; stamps to the second): 1-2 s, which
with 4 s instances made returned / earliest 1.22-1.53 in ``make bench``. Runs of 15 s keep it
within 1.15 (``benchmarks/speed.py``'s target): (15 + 2) / 15 = 1.13."""
RESTART_CODE = 42
"""The exit code the rule restarts on."""
OTHER_CODE = 7
"""An exit code no rule lists: the container's own ``restartPolicy: Never`` applies."""

# The first instance exits RESTART_CODE, every later one OTHER_CODE; the count lives in an
# emptyDir, which outlives the container.
_COUNTED_EXIT = (
    "n=$(cat /state/runs 2>/dev/null || echo 0); echo $((n + 1)) > /state/runs; "
    f"sleep {RUN:g}; if [ \"$n\" = 0 ]; then exit {RESTART_CODE}; fi; exit {OTHER_CODE}"
)


def _rules_pod(pod_policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
        "spec": {
            "restartPolicy": pod_policy,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "job", "image": "probes-target",
                "command": ["sh", "-c", _COUNTED_EXIT],
                "restartPolicy": "Never",
                "restartPolicyRules": [{
                    "action": "Restart",
                    "exitCodes": {"operator": "In", "values": [RESTART_CODE]},
                }],
                "volumeMounts": [{"name": "state", "mountPath": "/state"}],
            }],
            "volumes": [{"name": "state", "emptyDir": {}}],
        },
    }


def _api_window(w: Window) -> Window:
    """``w`` for a duration between two API timestamps, each truncated to the second."""
    return Window(max(0.0, w.earliest - API_TIME_RESOLUTION), w.latest + API_TIME_RESOLUTION)


@pytest.mark.probes_cluster(min_version="1.35")  # ContainerRestartRules beta, on by default
@pytest.mark.parametrize("pod_policy", ["Never", "OnFailure"])
def test_a_restart_rule_restarts_on_its_exit_code_and_not_on_others(
    pod_policy: str, probes_cluster: Cluster, probes_deploy: Deployer,
    probes_timeline: Timeline, record_property: Callable[[str, object], None],
) -> None:
    """KEP-5307: ``restartPolicyRules`` restart on a listed exit code; others terminate.

    The container says ``restartPolicy: Never`` with one rule, ``Restart`` on exit code 42, in a
    pod whose own policy is ``Never`` or ``OnFailure`` (both allowed by the KEP; the
    container's policy wins over the pod's). Its first instance exits 42 and is restarted, as
    a crash is, at once (the back-off starts with the second exit); the second exits 7, which
    no rule lists, and stays terminated even under ``OnFailure``; the pod is then ``Failed``
    (``ContainerShouldRestart`` in ``pkg/api/v1/pod/util.go``; ``getPhase`` in
    ``pkg/kubelet/kubelet_pods.go``: every stopped container not restartable).
    """
    tl = probes_timeline
    doc = _rules_pod(pod_policy)
    assert exit_action(doc, "job", RESTART_CODE) == "Restart"
    assert exit_action(doc, "job", OTHER_CODE) == "Stop"
    (pod,) = probes_deploy([copy.deepcopy(doc)], wait="exist")
    timing = ContainerTiming.from_pod_spec(pod)
    run = Window(RUN, RUN + timing.allowance)
    # The schedule of a container that is restarted after each exit: what the rule orders for 42.
    schedule = replace(timing, restart_policy="Always").restart_schedule(
        2, crash=True, run_until_kill=run)
    started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=120)

    first = assert_terminated(tl, POD, since=started, exit_code=RESTART_CODE,
                              within=_api_window(run))
    assert_restarts_within(tl, POD, since=started, within=schedule[0])
    again = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=60,
                          where=lambda r: r.data.get("restartCount") == 1)
    # The first exit and this start may share a second: the second exit is told by its code.
    second = tl.wait_first(pod=POD, kind="ContainerTerminated", timeout=run.latest + 30,
                           where=lambda r: r.data.get("exitCode") == OTHER_CODE)
    ran = (second.time - again.time).total_seconds()
    assert _api_window(run).contains(ran), \
        f"the second instance ran {ran:.0f} s, not {run}:\n{tl.to_markdown()}"
    assert second.seq > first.seq
    # The phase turns Failed only once no container can run: mergePodStatus
    # (pkg/kubelet/status/status_manager.go) holds a terminal phase back while the pod worker may
    # have running containers, until it has stopped the sandbox (syncTerminatingPod, whose status
    # says PodReadyToStartContainers False) and seen the volumes unmounted (syncTerminatedPod).
    # How long the sandbox stop takes (the CNI teardown) is the runtime's, bounded only by the
    # CRI request timeout; the phase must then follow within a status sync and one allowance (in
    # CI at 24 workers: the exit at +10 s, the sandbox gone at +14, the phase at +17).
    sandbox_gone = assert_condition_within(
        tl, POD, "PodReadyToStartContainers", status="False", since=second,
        within=_api_window(Window(0.0, timing.status_lag + CRI_RUNTIME_REQUEST_TIMEOUT)))
    assert_phase_within(tl, POD, "Failed", since=sandbox_gone,
                        within=_api_window(Window(0.0, timing.status_lag + timing.allowance)))
    # Had a rule matched 7, the second restart would have come by schedule[1].
    assert_no_restarts_for(tl, POD, since=second,
                           duration=schedule[1].latest - schedule[0].earliest - run.earliest)
    # Not Failed before the second instance ended. By time, not by arrival: under load the
    # kubelet posts the exit and the phase in one status (seen at 24 workers), and the reducer
    # writes a status's phase before its containers.
    before = tl.query(pod=POD, kind="PodPhase", until=second.time - timedelta(seconds=1))
    assert all(r.data.get("phase") != "Failed" for r in before), tl.to_markdown()
    assert len(restarts_of(tl, POD)[POD]) == 1
    record_property("exit 42 (rule Restart) / exit 7", "restarted / stays terminated")


APP_LIVENESS = {"httpGet": {"path": "/livez", "port": 8080}, "initialDelaySeconds": 3,
                "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1}
APP_READINESS = {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1,
                 "timeoutSeconds": 1, "failureThreshold": 1}
TRIGGER_AFTER = 12.0
"""Seconds the trigger container's first instance runs before it exits 42 (the app is Ready
by then)."""

_TRIGGER = (
    "n=$(cat /state/runs 2>/dev/null || echo 0); echo $((n + 1)) > /state/runs; "
    f"if [ \"$n\" = 0 ]; then sleep {TRIGGER_AFTER:g}; exit {RESTART_CODE}; fi; "
    "exec sleep infinity"
)


def _restart_all_pod() -> dict[str, Any]:
    state = [{"name": "state", "mountPath": "/state"}]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "initContainers": [{
                "name": "init", "image": "probes-target",
                "command": ["sh", "-c", "date -u +%s >> /state/inits"],
                "volumeMounts": state,
            }],
            "containers": [
                {"name": "app", "image": "probes-target",
                 "ports": [{"containerPort": 8080}],
                 "livenessProbe": APP_LIVENESS, "readinessProbe": APP_READINESS,
                 "volumeMounts": state},
                {"name": "trigger", "image": "probes-target",
                 "command": ["sh", "-c", _TRIGGER],
                 "restartPolicy": "Never",
                 "restartPolicyRules": [{
                     "action": "RestartAllContainers",
                     "exitCodes": {"operator": "In", "values": [RESTART_CODE]},
                 }],
                 "volumeMounts": state},
            ],
            "volumes": [{"name": "state", "emptyDir": {}}],
        },
    }


@pytest.mark.probes_cluster(min_version="1.36")  # RestartAllContainersOnContainerExits beta
def test_restart_all_containers_restarts_the_pod_in_place(
    probes_cluster: Cluster, probes_deploy: Deployer, probes_timeline: Timeline,
    _probes_api: Any, record_property: Callable[[str, object], None],
) -> None:
    """KEP-5532: ``RestartAllContainers`` restarts every container in place, init first.

    The trigger container exits 42, which its rule maps to ``RestartAllContainers``. The kubelet
    sets the pod condition ``AllContainersRestarting`` (reason ``RestartAllContainersStarted``,
    ``GenerateAllContainersRestartingCondition`` in ``pkg/kubelet/status/generate.go``), kills
    the app (the minimum grace period; the target app exits on SIGTERM at once) and removes every
    container (``computePodActions``: ``ContainersToReset``; ``SyncPod`` in
    ``pkg/kubelet/kuberuntime/kuberuntime_manager.go``),
    queues the pod again at once (``Kubelet.SyncPod`` in ``pkg/kubelet/kubelet.go``), and
    starts it afresh in the same sandbox: the same UID and IP, the init container runs again,
    then each container restarts once (its ``restartCount`` carried over and raised,
    ``kubelet_pods.go``). The condition turns False again. The app's liveness probe (period 1,
    threshold 1) probes a container that is being removed meanwhile; the prober lets that
    failure through only as "will restart anyway" (``worker.go`` ``doProbe``), so it causes
    no second restart.
    """
    tl = probes_timeline
    doc = _restart_all_pod()
    assert exit_action(doc, "trigger", RESTART_CODE) == "RestartAllContainers"
    (pod,) = probes_deploy([copy.deepcopy(doc)], wait="ready")
    core = client.CoreV1Api(_probes_api)
    before = core.read_namespaced_pod(POD, tl.namespace)
    timing = ContainerTiming.from_pod_spec(pod, "app")
    started = tl.wait_first(pod=POD, kind="ContainerStarted", container="trigger", timeout=30)
    trigger_run = Window(TRIGGER_AFTER, TRIGGER_AFTER + timing.allowance)

    # Under load the kubelet's status manager can post only the newest status: the trigger's
    # exit and AllContainersRestarting=True then never reach the API, and the removed containers
    # show a lastState the kubelet inferred, reason RestartingAllContainers, exit code 137, no
    # time (convertToAPIContainerStatuses, kubelet_pods.go). Then the exit is known only from the
    # spec: the windows below count from the trigger's start, wider by its run's width.
    ended = tl.wait_first(pod=POD, kind="ContainerTerminated", container="trigger",
                          since=started.time, timeout=trigger_run.latest + 30)
    unseen = bool(ended.data.get("inferred"))
    if unseen:
        assert ended.data.get("reason") == "RestartingAllContainers", ended
        ref, run = started, _api_window(trigger_run)
    else:
        ref = assert_terminated(tl, POD, container="trigger", since=started,
                                exit_code=RESTART_CODE, within=_api_window(trigger_run))
        run = Window(0.0, 0.0)
    posted = tl.query(pod=POD, kind="PodCondition",
                      where=lambda r: r.data.get("type") == "AllContainersRestarting"
                      and r.data.get("status") == "True")
    if posted or not unseen:
        restarting = assert_condition_within(
            tl, POD, "AllContainersRestarting", since=ref,
            within=run + _api_window(all_containers_restarting(allowance=timing.allowance)))
        assert restarting.data.get("reason") == "RestartAllContainersStarted", restarting
    # The init container writes one line: its run is the start of a process, within allowance.
    # The target app exits on SIGTERM at once (its default ON_SIGTERM).
    def again_of(container: str) -> Window:
        return run + _api_window(restart_all_containers(
            doc, container, trigger="trigger", init_run=Window(0.0, timing.allowance),
            exits_on_sigterm_after=0.0, allowance=timing.allowance))

    if posted or not unseen:
        # The condition clears at the sync that starts the init container, before the app starts.
        assert_condition_within(tl, POD, "AllContainersRestarting", status="False", since=ref,
                                within=again_of("app"))
    # Else True never reached the API: the False from before the restart is all the timeline
    # has, so there is no clearing to time (seen at 16 workers); the end state is checked below.
    # The kubelet raises each restartCount when it removes the container (the status shows it
    # waiting, reason RestartingAllContainers); the new instance starts after the init container.
    quiet = (timing.first_liveness_kill(fail_from=0.0).latest
             + timing.restart_after_kill(exits_on_sigterm_after=0.0).latest)
    news: dict[str, Record] = {}
    for container in ("init", "app", "trigger"):
        # The kubelet raises the init container's count at its removal, before the app starts.
        again = again_of("app" if container == "init" else container)
        assert_restarts_within(tl, POD, container=container, since=ref, within=again)
        if container == "init":
            continue
        new = tl.wait_first(pod=POD, kind="ContainerStarted", container=container,
                            where=lambda r: r.data.get("restartCount", 0) >= 1,
                            timeout=again.latest + 30)
        took = (new.time - ref.time).total_seconds()
        assert again.contains(took), f"{container} started again {took:.0f} s after the " \
            f"trigger's {'start' if unseen else 'exit'}, not within {again}:\n" \
            f"{tl.to_markdown()}"
        news[container] = new
    # Had a failing probe restarted one once more, it would have by the first liveness kill of
    # an instance failing from its start, and its restart. Checked after every restart is (the
    # quiet spans overlap, and each restart is timed when it comes, not after another's span).
    for container, new in news.items():
        assert_no_restarts_for(tl, POD, container=container, since=new, duration=quiet)
    after = core.read_namespaced_pod(POD, tl.namespace)
    conditions = {c.type: c.status for c in after.status.conditions or []}
    assert conditions.get("AllContainersRestarting") == "False", conditions
    assert after.metadata.uid == before.metadata.uid
    assert after.status.pod_ip == before.status.pod_ip
    counts = {s.name: s.restart_count for s in (*after.status.init_container_statuses,
                                                *after.status.container_statuses)}
    assert counts == {"init": 1, "app": 1, "trigger": 1}, counts
    inits = exec_in_pod(_probes_api, tl.namespace, POD, ["cat", "/state/inits"],
                        container="app").split()
    assert len(inits) == 2, inits  # the init container ran again
    assert tl.query(pod=POD, kind="PodDeleted") == []
    record_property("RestartAllContainers", "in place: same UID and IP, init runs again")
