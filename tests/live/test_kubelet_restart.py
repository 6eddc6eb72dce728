"""A kubelet restart and the probe status of running containers (KEP-4781), per version.

KEP-4781 (kubernetes/enhancements ``keps/sig-node/4781-fix-kubelet-restart-container-status``):
up to 1.34 a restarted kubelet has no probe results, so every running container counts as not
ready (and, with a startup probe, not started) until its probes pass again, and the pod leaves
its Services meanwhile; from 1.35 the gate ``ChangeContainerStatusOnKubeletRestart`` is off and
a container that started over ten seconds before the kubelet keeps its status until a probe
says otherwise. :func:`pytest_probes.kubelet_versions.kubelet_restart_resets_probe_status`
holds the rule with its sources; this test asserts the running version's side of it.

Restarting the kubelet disturbs every pod of its node, so the test brings up a local cluster of
its own (``NAME-kubelet``, the shared cluster's version) and takes it down at the end. On the
other providers it is skipped, saying so: only the local provider restarts a kubelet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_probes import (
    API_TIME_RESOLUTION,
    Cluster,
    ContainerTiming,
    Record,
    Recorder,
    Timeline,
    Window,
    assert_no_restarts_for,
    assert_not_ready_within,
    assert_ready_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.kubelet_versions import kubelet_restart_resets_probe_status
from pytest_probes.namespaces import create_namespace, delete_namespace, namespace_name
from pytest_probes.timing import (
    first_probe_after_kubelet_start,
    ready_again_after_kubelet_restart,
)
from tests.live.helpers import health_log, own_local_cluster

pytestmark = pytest.mark.probes

POD = "steady"
STARTED_BEFORE = 10.0
"""A container that started this long before the kubelet counts as running from before the
restart (``kubeletRestartGracePeriod`` in ``pkg/kubelet/prober/prober_manager.go``, v1.37.2)."""

MANIFEST: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
    "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "app", "image": "probes-target", "ports": [{"containerPort": 8080}],
            "startupProbe": {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 2,
                             "failureThreshold": 30},
            # Three successes in a row: after a reset, Ready stays False for two periods at least.
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 2,
                               "successThreshold": 3, "failureThreshold": 1},
        }],
    },
}

_FLIPS = ("PodNotReady", "ContainerNotReady", "ContainerNotStarted")


def test_a_kubelet_restart_resets_started_and_ready_only_before_1_35(
    probes_cluster: Cluster, tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    """KEP-4781: before 1.35 a kubelet restart turns Ready False until readiness passes again;
    from 1.35 Started and Ready stay as they were.

    Before 1.35 the new readiness worker seeds its result with Failure at its first run
    (``worker.go`` ``doProbe``: ``initialValue``), which comes within a period of its making
    (:func:`~pytest_probes.timing.first_probe_after_kubelet_start`), and Ready returns after
    ``successThreshold`` successes
    (:func:`~pytest_probes.timing.ready_again_after_kubelet_restart`).
    With a startup probe the container may also show not started for a moment (recorded as
    ``ContainerNotStarted``); that status lives only between two results of the same probe
    run, so it is not asserted. From 1.35 the worker
    does not seed a result for a container that ran before the restart and the status keeps
    Ready until a result exists (``setReadyStateOnKubeletRestart``), so no record of the pod
    turns not ready or not started while its probes run again. Either way the restart restarts
    no container.
    """
    if probes_cluster.provider != "local":
        pytest.skip("restarting the kubelet is a method of the local provider's cluster "
                    f"(running on {probes_cluster.provider})")
    with own_local_cluster(probes_cluster, "kubelet", "restarting the kubelet") \
            as (local, cluster, image), cluster.api_client() as api:
        namespace = namespace_name("kubelet-restart")
        create_namespace(api, namespace, run_id="kubelet-restart")
        tl = Timeline(namespace, live=True)
        recorder = Recorder(api, namespace, tl, raw_path=tmp_path / "raw.jsonl")
        recorder.start()
        deploy = Deployer(api, namespace, target_image=image)
        try:
            seen = _scenario(local, cluster.k8s_version, api, tl, deploy)
            record_property("Started/Ready after a kubelet restart", seen)  # make matrix
        finally:
            recorder.stop()
            deploy.close()
            delete_namespace(api, namespace)


def _scenario(local: Any, version: str, api: Any, tl: Timeline, deploy: Deployer) -> str:
    """Restart the kubelet beside a ready pod; return what its status did."""
    (pod,) = deploy([MANIFEST], wait="ready")
    timing = ContainerTiming.from_pod_spec(pod)
    assert timing.readiness is not None and timing.startup is not None
    started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=30)
    # The container must count as running from before the restart (its startedAt is truncated
    # to the second, so one more).
    ripe = started.time + timedelta(seconds=STARTED_BEFORE + API_TIME_RESOLUTION + 1.0)
    time.sleep(max(0.0, (ripe - datetime.now(UTC)).total_seconds()))

    restart = local.restart_kubelet()
    up = (restart.reporting - restart.started).total_seconds()
    print(f"kubelet {version}: stopped {restart.stopped:%H:%M:%S.%f}, reporting {up:.1f} s "
          "after its start")
    # The workers are made at the pod's first sync once the kubelet runs; each first probes
    # within a period, and the status follows within the status lag.
    first_run = first_probe_after_kubelet_start(max(timing.readiness.period,
                                                    timing.startup.period))
    reset_by = Window(0.0, up + first_run.latest + timing.status_lag + API_TIME_RESOLUTION)
    healed = ready_again_after_kubelet_restart(timing)
    assert_no_restarts_for(tl, POD, since=restart.started,
                           duration=reset_by.latest + healed.latest)

    if kubelet_restart_resets_probe_status(version):
        lost = assert_not_ready_within(tl, POD, since=restart.started, within=reset_by)
        assert_ready_within(tl, POD, since=lost, within=healed)
        return "Ready flips to False, back after successThreshold"

    end = restart.started + timedelta(seconds=reset_by.latest + healed.latest)

    def flip(t: Timeline) -> Record | None:
        return next(iter(t.query(pod=POD, kind=_FLIPS, since=restart.stopped)), None)

    seen = tl.wait_for(flip, deadline=end)
    assert seen is None, f"kubelet {version} reset the pod's status at {seen.time:%H:%M:%S} " \
        f"({seen.kind}); from 1.35 it keeps it (KEP-4781):\n{tl.to_markdown()}"
    # The new kubelet did probe the container meanwhile: the status held through real probes.
    probed = [h for h in health_log(api, tl.namespace, POD)
              if h.path == "/readyz" and h.time > restart.reporting]
    assert len(probed) >= timing.readiness.success_threshold, probed
    return "stay True"
