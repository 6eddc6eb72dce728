"""The reducer and the kubelet-restart timing on pod streams recorded around a kubelet restart.

``kubelet-restart-1.33.jsonl`` was recorded by ``tests/live/test_kubelet_restart.py`` (its
recorder's ``raw_path``) on the local provider, Kubernetes v1.33.13: a pod with a startup probe
and a readiness probe (period 2 s, successThreshold 3), Ready, then its kubelet restarted at
16:40:10. The restarted kubelet reset the container's status: not ready and not started at
16:40:12 (the same container instance), started at 16:40:13, ready at 16:40:14 (KEP-4781: from
1.35 none of that happens).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_probes import Reducer
from pytest_probes.importers import replay_raw
from pytest_probes.kubelet_versions import kubelet_restart_resets_probe_status
from pytest_probes.timing import ContainerTiming, ready_again_after_kubelet_restart
from tests.live.test_kubelet_restart import MANIFEST

STREAM = Path(__file__).resolve().parents[1] / "data" / "streams" / "kubelet-restart-1.33.jsonl"


def _kinds(since: str) -> list[tuple[str, str | None]]:
    tl = replay_raw(STREAM)
    cut = datetime.fromisoformat(since)
    return [(r.kind, r.container) for r in tl.query(pod="steady", source="pod", since=cut)]


def test_a_reset_by_the_restarted_kubelet_is_recorded_on_the_same_instance() -> None:
    assert kubelet_restart_resets_probe_status("v1.33.13")
    assert _kinds("2026-12-05T16:40:10+00:00") == [
        ("PodCondition", None),              # ContainersReady=False
        ("ContainerNotReady", "app"),
        ("PodNotReady", None),
        ("ContainerNotStarted", "app"),      # started true -> false, same container ID
        ("ContainerStartupPassed", "app"),
        ("PodCondition", None),              # ContainersReady=True
        ("ContainerReady", "app"),
        ("PodReady", None),
    ]
    tl = replay_raw(STREAM)
    starts = tl.query(pod="steady", kind="ContainerStarted")
    assert len(starts) == 1  # no new instance: the reset is of the running container
    (lost,) = tl.query(pod="steady", kind="PodNotReady")
    (ready_again,) = tl.query(pod="steady", kind="PodReady", since=lost)
    took = (ready_again.time - lost.time).total_seconds()
    assert ready_again_after_kubelet_restart(ContainerTiming.from_pod_spec(MANIFEST)).contains(took)


def _raw_pods() -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in STREAM.read_text().splitlines() if line.strip()]
    return [ev["object"] for ev in lines if ev["source"] == "pod"]


def test_started_turning_false_on_exit_or_on_a_new_instance_is_no_reset() -> None:
    ready = next(p for p in _raw_pods() if p["status"].get("containerStatuses")
                 and p["status"]["containerStatuses"][0].get("started"))
    reducer = Reducer("ns")
    reducer.feed("pod", "ADDED", ready, received=0.0, received_wall=0.0)
    exited = copy.deepcopy(ready)
    status = exited["status"]["containerStatuses"][0]
    status["started"] = False
    status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                      "startedAt": "2026-12-05T16:39:59Z",
                                      "finishedAt": "2026-12-05T16:41:00Z"}}
    out = reducer.feed("pod", "MODIFIED", exited, received=1.0, received_wall=1.0)
    assert "ContainerNotStarted" not in [r.kind for r in out]

    reducer = Reducer("ns")
    reducer.feed("pod", "ADDED", ready, received=0.0, received_wall=0.0)
    replaced = copy.deepcopy(ready)
    status = replaced["status"]["containerStatuses"][0]
    status["started"] = False
    status["containerID"] = "containerd://another"
    status["restartCount"] = 1
    out = reducer.feed("pod", "MODIFIED", replaced, received=1.0, received_wall=1.0)
    assert "ContainerNotStarted" not in [r.kind for r in out]


def test_from_1_35_the_restart_leaves_no_record() -> None:
    # kubelet-restart-1.37.jsonl: the same test on v1.37.2; the kubelet was restarted after the
    # pod turned Ready (16:37:47) and nothing of the pod changed until the test ended.
    assert not kubelet_restart_resets_probe_status("v1.37.2")
    tl = replay_raw(STREAM.with_name("kubelet-restart-1.37.jsonl"))
    records = tl.query(pod="steady", source="pod")
    assert records[-1].kind == "PodReady"
    assert not tl.query(pod="steady", kind=("PodNotReady", "ContainerNotReady",
                                            "ContainerNotStarted"))
