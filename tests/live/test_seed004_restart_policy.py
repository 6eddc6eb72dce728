"""Seed 004, O4.1 and O4.2: what a liveness kill leaves behind depends on restartPolicy.

The container exits 0 on SIGTERM (as nginx did in the write-up), so the kill is recorded as
Terminated, Reason Completed, Exit Code 0 (O4.1). With restartPolicy Never the pod then stays
terminated and completes (phase Succeeded, RESTARTS 0); with Always it is restarted (O4.2). The
fault lives in an emptyDir, so it survives restarts like the write-up's repeated deletion of
index.html. Windows come from the manifests' probe spec.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from pytest_probes import (
    API_TIME_RESOLUTION,
    ContainerTiming,
    Record,
    Timeline,
    Window,
    assert_event_within,
    assert_no_restarts_for,
    assert_phase_within,
    assert_restarts_within,
    assert_terminated,
    restarts_of,
)
from pytest_probes.deploy import Deployer, load_manifests
from pytest_probes.faults import set_flag, wait_serving

pytestmark = pytest.mark.probes

POD = "test"
FLAG_DIR = "/var/run/probes"  # the manifests' emptyDir


def _fail_liveness(
    deploy: Deployer, tl: Timeline, manifest: str, api: object
) -> tuple[ContainerTiming, Record, Window]:
    objects = deploy(manifest, wait="running")
    timing = ContainerTiming.from_pod_spec(next(o for o in objects if o["kind"] == "Pod"))
    started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=30)
    # The app must serve before the fault, else its start-up failures count towards the kill.
    wait_serving(api, tl.namespace, POD)
    assert not restarts_of(tl, POD)[POD], "the app took longer than initialDelaySeconds to serve"
    fault = set_flag(api, tl.namespace, POD, "fail-liveness", flag_dir=FLAG_DIR)
    fail_from = (fault - started.time).total_seconds()
    kill = timing.first_liveness_kill(fail_from=fail_from) + timing.kill_duration(
        exits_on_sigterm_after=0.0)
    return timing, started, kill


def test_o4_1_o4_2_never_liveness_kill_is_completed_exit_0_and_not_restarted(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: object
) -> None:
    tl = probes_timeline
    _timing, started, kill = _fail_liveness(probes_deploy, tl,
                                            "seed004-restartpolicy-never.yaml", _probes_api)
    ended = assert_terminated(tl, POD, since=started, within=kill, reason="Completed",
                              exit_code=0)
    assert_phase_within(tl, POD, "Succeeded", since=ended, within=kill.latest)
    assert_no_restarts_for(tl, POD, since=started,
                           duration=(ended.time - started.time).total_seconds() + kill.latest)


def test_o4_2_always_liveness_kill_is_completed_exit_0_and_restarted(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: object
) -> None:
    tl = probes_timeline
    timing, started, kill = _fail_liveness(probes_deploy, tl,
                                           "seed004-restartpolicy-always.yaml", _probes_api)
    assert_terminated(tl, POD, since=started, within=kill, reason="Completed", exit_code=0)
    killing = assert_event_within(tl, POD, "Killing", since=started, within=kill)
    restarts = assert_restarts_within(
        tl, POD, since=killing, within=timing.restart_after_kill(exits_on_sigterm_after=0.0))
    assert restarts[0].data["previous"]["exitCode"] == 0
    assert [r.data["phase"] for r in tl.query(pod=POD, kind="PodPhase")][-1] == "Running"


def test_o4_3_onfailure_restarts_a_clean_exit_until_a_kill_lands_in_back_off_then_completes(
    probes_deploy: Deployer, probes_timeline: Timeline,
    record_property: Callable[[str, object], None],
) -> None:
    """What changed since Kubernetes 1.10: nothing. The write-up's pod ended Completed with
    RESTARTS 3 and its author suspected a bug; today's kubelet still does it. With
    ``OnFailure`` a liveness-killed container is restarted even though it exits 0, until a kill
    comes while the restart back-off is in force: then exit code 0 counts as success and the
    pod completes (phase Succeeded). How many restarts come first depends on how the cycle
    compares with the back-off; the timing math gives the possible counts (2 or 3 for this
    spec) and the test asserts the run ended on one of them, at the times the schedule allows.

    Here the liveness endpoint fails from the start of every instance (FAIL_AFTER 0), so every
    instance lives about one probe period: no fault injection, and the schedule is exact.
    """
    tl = probes_timeline
    (pod,) = load_manifests("seed004-restartpolicy-onfailure.yaml")
    doc = copy.deepcopy(pod.doc)
    doc["spec"]["containers"][0]["env"].append({"name": "FAIL_AFTER", "value": "0"})
    objects = probes_deploy([doc], wait="exist")
    timing = ContainerTiming.from_pod_spec(objects[0])
    schedule = timing.restart_schedule(
        4, fail_from=0, kill_duration=timing.kill_duration(exits_on_sigterm_after=0.0),
        exit_code=0)
    assert schedule.always_stops and schedule.stop_counts
    started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=60)
    last_exit = max(s.exited.latest for s in schedule.stops)
    done = assert_phase_within(tl, POD, "Succeeded", since=started,
                               within=(min(s.exited.earliest for s in schedule.stops),
                                       last_exit + timing.status_lag))
    restarts = restarts_of(tl, POD, since=started)[POD]
    record_property("restarts", len(restarts))  # the version matrix shows it
    assert len(restarts) in schedule.stop_counts, (len(restarts), schedule)
    for rec, window in zip(restarts, schedule, strict=False):
        offset = (rec.time - started.time).total_seconds()
        assert window.contains(offset, slack=API_TIME_RESOLUTION), (offset, window)
    final = tl.query(pod=POD, kind="ContainerTerminated")[-1]
    assert (final.data["reason"], final.data["exitCode"]) == ("Completed", 0)
    assert final.time <= done.time
