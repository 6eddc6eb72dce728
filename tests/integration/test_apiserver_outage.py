"""Faults the recorder survives, on a real cluster: a kube-apiserver outage and a ``410 Gone``.

Seed 004's pod with restartPolicy Always is killed by its liveness probe again and again. Right
after the first restart the local cluster's kube-apiserver is killed, etcd's history is compacted
(so every resourceVersion the watches held is too old: resuming from one gets ``410 Gone``), and
five seconds later the apiserver is started again. The recording must come out whole: its
restarts are exactly the pod's final ``restartCount`` (each counted once, none merged, none
repeated), and the assertion helpers pass with windows from the probe spec. What it cannot know
it says: the re-list after the ``410 Gone`` leaves a ``WatchGap`` record over the outage, and a
helper that would pass on the absence of records there (a quiet second pod's "no restarts")
is inconclusive instead, while the same helper after the gap passes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from pytest_probes import (
    Cluster,
    ContainerTiming,
    InconclusiveError,
    Recorder,
    Timeline,
    assert_no_restarts_for,
    assert_restarts_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import set_flag
from pytest_probes.namespaces import create_namespace, delete_namespace, namespace_name
from pytest_probes.providers.local.lifecycle import LocalCluster
from pytest_probes.timeline import gap_span
from tests.live.helpers import own_local_cluster

# Not marked probes: these start clusters of their own and would disturb the timing of the
# scenarios that run concurrently under `pytest -m probes`; they run in the integration phase.

POD = "test"
FLAG_DIR = "/var/run/probes"  # the manifest's emptyDir
OUTAGE = 5.0  # seconds the apiserver stays down, on top of its own start-up time
RESTARTS = 3




def _signature(tl: Timeline) -> Counter[tuple[object, ...]]:
    return Counter((r.source, r.kind, r.pod, r.container, r.time, r.message,
                    json.dumps(r.data, sort_keys=True, default=str)) for r in tl.records)


def test_recording_survives_an_apiserver_outage_and_410_gone_without_lost_or_double_restarts(
    probes_cluster: Cluster,
) -> None:
    # Killing kube-apiserver disturbs every test that uses the cluster: a cluster of its own.
    with own_local_cluster(probes_cluster, "outage", "stopping kube-apiserver") \
            as (local, cluster, image), cluster.api_client() as api:
        namespace = namespace_name("apiserver-outage")
        create_namespace(api, namespace, run_id="apiserver-outage")
        try:
            _outage_scenario(local, api, namespace, image)
        finally:
            delete_namespace(api, namespace)


def _outage_scenario(local: LocalCluster, api: Any, namespace: str, image: str) -> None:
    tl = Timeline(namespace, live=True)
    main = Recorder(api, namespace, tl)
    main.start()
    # A second recorder of the same namespace, to read its reconnect and re-list counters.
    recorder = Recorder(api, namespace)
    own = recorder.start()
    deploy = Deployer(api, namespace, target_image=image)
    try:
        deploy({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quiet"},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": "probes-target"}]}},
               wait="running")
        objects = deploy("seed004-restartpolicy-always.yaml", wait="running")
        timing = ContainerTiming.from_pod_spec(next(o for o in objects if o["kind"] == "Pod"))
        started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=30)
        # Set well before initialDelaySeconds, so every instance fails from its start.
        set_flag(api, namespace, POD, "fail-liveness", flag_dir=FLAG_DIR)
        schedule = timing.restart_schedule(
            RESTARTS, fail_from=0, kill_duration=timing.kill_duration(exits_on_sigterm_after=0.0)
        )
        assert_restarts_within(tl, POD, restarts=1, since=started, within=schedule[0])
        lists_before = recorder.relists

        down, down_wall = time.monotonic(), time.time()
        with local.component_stopped("kube-apiserver", kill=True):
            local.compact_etcd()
            time.sleep(OUTAGE)
        outage = time.monotonic() - down
        print(f"kube-apiserver unavailable for {outage:.1f} s")

        restarts = assert_restarts_within(
            tl, POD, restarts=RESTARTS, since=started, within=schedule[RESTARTS - 1]
        )
        core = client.CoreV1Api(api)
        final = core.read_namespaced_pod(POD, namespace).status.container_statuses[0]
        count = int(final.restart_count)
        # Wait until both recordings have caught up with the status just read.
        for timeline in (tl, own):
            timeline.wait_first(pod=POD, kind="ContainerRestarted", timeout=30,
                                where=lambda r: r.data.get("restartCount") == count)
    finally:
        recorder.stop()
        main.stop()
        deploy.close()

    print(f"recorder: {recorder.reconnects} reconnects, {recorder.gone} x 410 Gone, "
          f"{recorder.relists} lists; final restartCount {count}")
    assert recorder.reconnects >= 1, "the outage did not break the watches"
    assert recorder.gone >= 1 and recorder.relists > lists_before, "no 410 Gone and re-list"
    for timeline in (tl, own):
        counts = [r.data["restartCount"]
                  for r in timeline.query(pod=POD, kind="ContainerRestarted")]
        # Each restart once, in order, none merged into another (that would be a lost one).
        assert counts[:count] == list(range(1, count + 1)), counts
        # Every instance started once (the newest may still wait out its back-off) and every
        # one but the newest terminated once.
        starts = [r.data["restartCount"] for r in timeline.query(pod=POD, kind="ContainerStarted")]
        assert starts in (list(range(count)), list(range(count + 1))), starts
        exits = timeline.query(pod=POD, kind="ContainerTerminated")
        assert len(exits) in (count, count + 1), timeline.to_markdown(
            timeline.query(pod=POD, source="pod"))
        duplicates = {k: n for k, n in _signature(timeline).items() if n > 1}
        assert not duplicates, duplicates
    assert len(restarts) == RESTARTS

    # The re-list after the 410 shows only the net change: the timeline says where.
    gaps = tl.gaps(sources=("pod",))
    assert len(gaps) >= 1, tl.to_markdown()
    begin, end = gap_span(gaps[0])
    print(f"pod watch gap {begin:%H:%M:%S.%f}–{end:%H:%M:%S.%f}")
    assert begin <= tl.server_time_at(down_wall) < end
    assert (end - begin).total_seconds() >= OUTAGE
    assert "WatchGap" in tl.to_markdown()
    quiet_start = tl.first(pod="quiet", kind="ContainerStarted")
    assert quiet_start is not None
    across = (end - quiet_start.time).total_seconds() + 1
    with pytest.raises(InconclusiveError, match="inconclusive"):
        assert_no_restarts_for(tl, "quiet", duration=across, since=quiet_start)
    # From the first whole second after the last gap (a reference is taken to its second, as
    # the API stamps records): the same helper decides on records again, and passes.
    resumed = max(gap_span(g)[1] for g in tl.gaps()).replace(microsecond=0) + timedelta(seconds=1)
    after = (tl.records[-1].time - resumed).total_seconds()
    assert after > 0, tl.to_markdown()  # the restarts after the outage were recorded
    assert_no_restarts_for(tl, "quiet", duration=after, since=resumed)
