"""The reducer on a watch stream recorded from a real kubelet (tests/data/streams).

``liveness-restart.jsonl`` was recorded by ``tests/data/streams/record.py`` on the local provider
(Kubernetes v1.34.4): two replicas of the target app behind a Service, a liveness failure injected
into one of them, recorded until the pod had restarted and rejoined the endpoints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_probes import Reducer, restarts_of
from pytest_probes.errors import ProbesError
from pytest_probes.importers import replay_raw

STREAM = Path(__file__).resolve().parents[1] / "data" / "streams" / "liveness-restart.jsonl"


def raw_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in STREAM.read_text().splitlines() if line.strip()]


def feed_all(reducer: Reducer, events: list[dict[str, Any]], *, as_type: str | None = None) -> list:
    out = []
    for ev in events:
        out += reducer.feed(ev["source"], as_type or ev["type"], ev["object"],
                            received=ev["received"], received_wall=ev["received_wall"])
    return out


def pods_of(events: list[dict[str, Any]]) -> tuple[str, str]:
    tl = replay_raw(STREAM)
    victim = next(r.pod for r in tl.query(kind="Killing"))
    assert victim is not None
    bystander = next(p for p in tl.pods() if p != victim)
    return victim, bystander


def test_replay_tells_the_liveness_story_of_the_victim() -> None:
    tl = replay_raw(STREAM)
    victim, bystander = pods_of(raw_events())
    story = [r.kind for r in tl.query(pod=victim)
             if r.kind in ("Unhealthy", "Killing", "ContainerTerminated", "ContainerRestarted",
                           "EndpointRemoved", "EndpointAdded")
             and not r.message.startswith("Readiness")]
    # The fault was injected as the pod became ready: its first endpoint and first failure share
    # a second, so only the order after that is fixed.
    assert story.index("EndpointAdded") < story.index("Killing")
    story.remove("EndpointAdded")
    assert story == ["Unhealthy", "Unhealthy", "Unhealthy", "Killing", "ContainerTerminated",
                     "ContainerRestarted", "EndpointRemoved", "EndpointAdded"]
    term = tl.first(pod=victim, kind="ContainerTerminated")
    assert term is not None and (term.data["reason"], term.data["exitCode"]) == ("Completed", 0)
    restarted = tl.first(pod=victim, kind="ContainerRestarted")
    assert restarted is not None and restarted.data["restartCount"] == 1
    assert [r.kind for r in tl.query(pod=bystander, source="endpoints")
            if r.kind != "EndpointChanged"] == ["EndpointAdded"]
    assert {n: len(r) for n, r in restarts_of(tl, "web").items()} == {victim: 1, bystander: 0}


def test_aggregated_event_counts_become_one_record_per_increment() -> None:
    tl = replay_raw(STREAM)
    victim, _ = pods_of(raw_events())
    liveness = [r for r in tl.query(pod=victim, kind="Unhealthy")
                if r.message.startswith("Liveness")]
    assert [(r.data["count"], r.data["count_delta"]) for r in liveness] == [(1, 1), (2, 1),
                                                                           (3, 1)]
    assert len({r.data.get("first_time") for r in liveness}) == 1


def latest_versions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:
        latest[(ev["source"], Reducer.key(ev["source"], ev["object"]))] = ev
    return list(latest.values())


def test_a_relist_of_what_was_seen_adds_nothing() -> None:
    # A re-list after a reconnect delivers the current version of every object again as ADDED.
    reducer = Reducer("ns")
    events = raw_events()
    assert feed_all(reducer, events)
    assert feed_all(reducer, latest_versions(events), as_type="ADDED") == []


def test_a_gap_in_the_stream_is_filled_by_the_relist_without_duplicates() -> None:
    events = raw_events()
    complete = [(r.kind, r.pod, r.container) for r in feed_all(Reducer("ns"), events)]
    # Lose every pod update in the middle of the stream (a dropped connection), then re-list:
    # the last version of each pod arrives as ADDED.
    pod_updates = [i for i, ev in enumerate(events) if ev["source"] == "pod"]
    lost = set(pod_updates[len(pod_updates) // 3: -2])
    reducer = Reducer("ns")
    partial = feed_all(reducer, [ev for i, ev in enumerate(events) if i not in lost])
    partial += feed_all(reducer, [ev for ev in latest_versions(events) if ev["source"] == "pod"],
                        as_type="ADDED")
    got = [(r.kind, r.pod, r.container) for r in partial]
    for kind in ("ContainerRestarted", "ContainerTerminated", "Killing"):
        assert got.count(next(c for c in complete if c[0] == kind)) == 1, kind
    restarted = [r for r in partial if r.kind == "ContainerRestarted"]
    assert sum(r.data["restarts"] for r in restarted) == 1


def test_deleted_objects_missed_while_disconnected_are_reported() -> None:
    reducer = Reducer("ns")
    feed_all(reducer, raw_events())
    gone = reducer.vanished("pod", present=set())
    assert len(gone) == 2
    records = [r for stub in gone for r in reducer.feed("pod", "DELETED", stub)]
    assert [r.kind for r in records] == ["PodDeleted", "PodDeleted"]
    slices = reducer.vanished("endpoints", present=set())
    removed = [r for stub in slices for r in reducer.feed("endpoints", "DELETED", stub)]
    assert {r.kind for r in removed} == {"EndpointRemoved"}
    assert removed[-1].data["ready_addresses"] == []


def test_bookmarks_are_ignored_and_unknown_sources_refused() -> None:
    reducer = Reducer("ns")
    assert reducer.feed("pod", "BOOKMARK", {"metadata": {"resourceVersion": "5"}}) == []
    with pytest.raises(ValueError, match="unknown source"):
        reducer.feed("nodes", "ADDED", {})


def test_a_bad_raw_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "raw.jsonl"
    bad.write_text(STREAM.read_text().splitlines()[0] + "\n{\"source\": \"pod\"}\n")
    with pytest.raises(ProbesError, match=r"raw\.jsonl:2: not a raw watch event"):
        replay_raw(bad)


ONFAILURE = STREAM.parent / "onfailure-liveness-stop.jsonl"


def test_each_termination_is_recorded_once_even_when_last_state_lingers() -> None:
    # Recorded on Kubernetes v1.36.3 (local provider) with manifests/seed004-restartpolicy-
    # onfailure.yaml and the liveness fault set in its emptyDir (Recorder(raw_path=...)): three
    # liveness kills, two restarts, then the pod completes (seed 004 O4.3 on a current kubelet).
    # The final status repeats the second instance as lastState next to the third's terminated
    # state; that must not count as a fourth termination.
    tl = replay_raw(ONFAILURE)
    ends = tl.query(pod="test", kind="ContainerTerminated")
    assert [(r.data["reason"], r.data["exitCode"]) for r in ends] == [("Completed", 0)] * 3
    assert len({r.data["containerID"] for r in ends}) == 3
    assert len(restarts_of(tl, "test")["test"]) == 2
    assert [r.data["phase"] for r in tl.query(pod="test", kind="PodPhase")][-1] == "Succeeded"
    # One aggregated Killing Event whose count went 1, 2, 3: a record per increment.
    assert [r.data["count"] for r in tl.query(pod="test", kind="Killing")] == [1, 2, 3]


def _two_container_pod(ready: dict[str, bool], *, updated: str) -> dict[str, Any]:
    # Pod Ready stays False (not every container is ready); its lastTransitionTime is old.
    return {
        "metadata": {"name": "p", "uid": "u1", "managedFields": [
            {"manager": "kubelet", "operation": "Update", "subresource": "status",
             "time": updated}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False",
                            "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "containerStatuses": [
                {"name": name, "ready": is_ready, "restartCount": 0, "started": True,
                 "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}}
                for name, is_ready in ready.items()],
        },
    }


def test_a_container_that_turns_ready_alone_is_dated_by_its_status_update() -> None:
    # Seen live: the pod's Ready condition said 00:00:01 (the pod's creation), two seconds before
    # the container even started; a container's own readiness has no timestamp in the API.
    reducer = Reducer("ns")
    reducer.feed("pod", "ADDED", _two_container_pod({"a": False, "b": False},
                                                    updated="2026-01-01T00:00:02Z"))
    out = reducer.feed("pod", "MODIFIED", _two_container_pod({"a": True, "b": False},
                                                             updated="2026-01-01T00:00:09Z"))
    (ready,) = [r for r in out if r.kind == "ContainerReady"]
    assert (ready.container, ready.time.second) == ("a", 9)


def test_an_instance_that_lived_and_died_unseen_gets_its_start_from_last_state() -> None:
    # During an API outage the kubelet cannot post status; afterwards only the newest arrives.
    # Drop every pod update that shows the second instance running: its start is then known only
    # from the next status's lastState, and must still be recorded (once, marked inferred).
    events = [json.loads(line) for line in ONFAILURE.read_text().splitlines() if line.strip()]
    complete = feed_all(Reducer("ns"), events)

    def running_id(ev: dict[str, Any]) -> str:
        statuses = (ev["object"].get("status") or {}).get("containerStatuses") or [{}]
        return str(statuses[0].get("containerID") or "") if "running" in (
            statuses[0].get("state") or {}) else ""

    second = sorted({running_id(ev) for ev in events if ev["source"] == "pod"} - {""})
    starts = [r for r in complete if r.kind == "ContainerStarted"]
    assert [r.data["restartCount"] for r in starts] == [0, 1, 2]
    hidden = starts[1].data["containerID"]
    assert hidden in second
    gappy = feed_all(Reducer("ns"), [ev for ev in events
                                     if ev["source"] != "pod" or running_id(ev) != hidden])
    got = [r for r in gappy if r.kind == "ContainerStarted"]
    assert [r.data["restartCount"] for r in got] == [0, 1, 2]
    assert [r.data.get("inferred", False) for r in got] == [False, True, False]
    assert got[1].time == starts[1].time and got[1].data["containerID"] == hidden
    # The first instance's end was in the dropped updates only (lastState holds one instance):
    # it is recorded too, no later than the next start, and marked inferred.
    ends = [r for r in gappy if r.kind == "ContainerTerminated"]
    assert [r.data["containerID"] for r in ends] == [r.data["containerID"] for r in starts]
    assert ends[0].data["inferred"] is True and ends[0].time == starts[1].time
    restarted = [r for r in gappy if r.kind == "ContainerRestarted"]
    assert [r.time for r in restarted] == [r.time for r in starts[1:]]
    assert [r.data["restartCount"] for r in restarted] == [1, 2]


def _httpserver(state: dict[str, Any], last: dict[str, Any] | None, restarts: int,
                updated: str, cid: str) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "httpserver", "ready": False, "restartCount": restarts,
                              "started": "running" in state, "state": state,
                              "containerID": f"containerd://{cid}"}
    if last is not None:
        status["lastState"] = {"terminated": last}
    return {"metadata": {"name": "p", "uid": "u1", "managedFields": [
                {"manager": "kubelet", "operation": "Update", "subresource": "status",
                 "time": updated}]},
            "status": {"phase": "Running", "containerStatuses": [status]}}


def test_a_termination_the_kubelet_only_inferred_is_recorded_once_dated_by_its_status() -> None:
    # Seen in CI: under load the kubelet never posted the exit that triggered
    # RestartAllContainers; the next status shows the removed container waiting, with a lastState
    # of neither ID nor time (kubelet_pods.go, convertToAPIContainerStatuses).
    removed = {"reason": "RestartingAllContainers", "exitCode": 137,
               "message": "The container is removed because RestartAllContainers in place"}
    waiting = {"waiting": {"reason": "RestartingAllContainers"}}
    reducer = Reducer("ns")
    reducer.feed("pod", "ADDED", _httpserver(
        {"running": {"startedAt": "2026-12-05T10:00:02Z"}}, None, 0, "2026-12-05T10:00:02Z", "c1"))
    out = reducer.feed("pod", "MODIFIED", _httpserver(waiting, removed, 1,
                                                      "2026-12-05T10:00:17Z", "c1"))
    (ended,) = [r for r in out if r.kind == "ContainerTerminated"]
    assert ended.data["exitCode"] == 137 and ended.data["inferred"] is True
    assert ended.message.startswith("RestartingAllContainers") and ended.time.second == 17
    assert [r.kind for r in out if r.kind == "ContainerRestarted"] == ["ContainerRestarted"]
    again = reducer.feed("pod", "MODIFIED", _httpserver(waiting, removed, 1,
                                                        "2026-12-05T10:00:18Z", "c1"))
    assert [r for r in again if r.kind == "ContainerTerminated"] == []


def test_a_container_that_never_started_is_not_placed_at_the_unix_epoch() -> None:
    # Seen in CI on kind (runc: "unable to freeze"): the restarted container failed to start, and
    # the kubelet posted its startedAt as 1970-01-01T00:00:00Z. That is no time: the records of it
    # carry none from it, and no start of it is invented.
    killed = {"reason": "Error", "exitCode": 2, "containerID": "containerd://c1",
              "startedAt": "2026-12-03T20:16:17Z", "finishedAt": "2026-12-03T20:16:40Z"}
    failed = {"reason": "StartError", "exitCode": 128, "containerID": "containerd://c2",
              "message": "failed to create containerd task: ... unable to freeze",
              "startedAt": "1970-01-01T00:00:00Z", "finishedAt": "2026-12-03T20:16:45Z"}
    reducer = Reducer("ns")
    out = reducer.feed("pod", "ADDED", _httpserver(
        {"running": {"startedAt": "2026-12-03T20:16:17Z"}}, None, 0, "2026-12-03T20:16:17Z", "c1"))
    out += reducer.feed("pod", "MODIFIED", _httpserver(
        {"terminated": failed}, killed, 1, "2026-12-03T20:16:45Z", "c2"))
    out += reducer.feed("pod", "MODIFIED", _httpserver(
        {"waiting": {"reason": "RunContainerError", "message": "unable to freeze"}}, failed, 1,
        "2026-12-03T20:16:48Z", "c2"))
    timed = [r for r in out if r.time is not None]
    assert timed and min(r.time.year for r in timed) == 2026
    starts = [r for r in out if r.kind == "ContainerStarted"]
    assert [r.data["containerID"] for r in starts] == ["containerd://c1"]
    ends = {r.data["containerID"]: r for r in out if r.kind == "ContainerTerminated"}
    assert ends["containerd://c2"].data["startedAt"] is None
    assert ends["containerd://c2"].time.second == 45
    (restart,) = [r for r in out if r.kind == "ContainerRestarted"]
    assert restart.time is not None and restart.time.year == 2026


@pytest.mark.parametrize("text", [
    # pkg/probe/grpc/grpc.go (v1.37.2): the texts of a failing gRPC probe, after prober.go's
    # "<Probe> probe failed: ".
    'service unhealthy (responded with "NOT_SERVING")',
    'timeout: failed to connect service "10.88.0.7:2333" within 5s: context deadline exceeded',
    "timeout: health rpc did not complete within 1s",
    "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): "
    "unknown service grpc.health.v1.Health",
])
def test_grpc_probe_failure_events_count_as_probe_failures(text: str) -> None:
    from pytest_probes import Timeline, probe_failures

    event = {"metadata": {"uid": "u1", "namespace": "ns"}, "reason": "Unhealthy",
             "type": "Warning", "message": f"Liveness probe failed: {text}",
             "involvedObject": {"kind": "Pod", "name": "grpc",
                                "fieldPath": "spec.containers{app}"},
             "count": 2, "lastTimestamp": "2026-12-05T17:00:00Z",
             "source": {"component": "kubelet"}}
    (rec,) = Reducer("ns").feed("event", "ADDED", event, received=0.0, received_wall=0.0)
    assert (rec.kind, rec.pod, rec.container, rec.message) == (
        "Unhealthy", "grpc", "app", f"Liveness probe failed: {text}")
    failures = probe_failures(Timeline("ns", [rec]), "grpc", probe="liveness", message=text)
    assert len(failures["grpc"]) == 2
