"""Seed 001, O1.2–O1.5: liveness restarts and back-off, startup gating, a wrong readiness port,
and liveness running independently of readiness. (O1.1 is in ``test_seed001_readiness.py``.)

Every window comes from the manifests' probe specs through the timing math.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pytest_probes import (
    ContainerTiming,
    Timeline,
    Window,
    assert_crashloop_backoff,
    assert_event_within,
    assert_never_ready_for,
    assert_no_restarts_for,
    assert_probe_failures,
    assert_ready_within,
    assert_restarts_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import app_start_lag, before_next_probe, set_flag
from tests.live.helpers import health_log, serving_instance

pytestmark = pytest.mark.probes


def _timing(objects: list[dict[str, Any]], container: str | None = None) -> ContainerTiming:
    owner = next(o for o in objects if o["kind"] in ("Pod", "Deployment"))
    return ContainerTiming.from_pod_spec(owner, container)


def test_o1_2_failing_liveness_restarts_the_container_then_backs_off_in_crashloop(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O1.2: a failing liveness probe restarts the container, then backs off in CrashLoopBackOff.

    Restarts at ~27/51/76/101 s, then CrashLoopBackOff with growing gaps (restart 5 at
    ~2m56s in the write-up); the phase stays Running, which is why ``kubectl get pod`` alone
    hides the failures.

    Upstream: Probing container should be restarted with a /healthz http liveness probe
    [Conformance].
    Upstream: Probing container should have monotonically increasing restart count
    [Conformance]."""
    tl = probes_timeline
    pod = "httpserver-liveness"
    timing = _timing(probes_deploy("seed001-liveness.yaml", wait="running"))
    started = tl.wait_first(pod=pod, kind="ContainerStarted", timeout=30)
    # FAIL_AFTER 10 in the manifest counts from the app's process creation, a moment before the
    # container's startedAt whatever the interpreter's start-up takes. startedAt is stamped in
    # whole seconds, so the first instance's clock is measured from its log against that stamp.
    late = app_start_lag(_probes_api, tl.namespace, pod, started.time, origin="clock")
    fail_from = 10 + late
    # The app exits 2 on SIGTERM (a Go server's exit code).
    schedule = timing.restart_schedule(
        5, fail_from=10, kill_duration=timing.kill_duration(exits_on_sigterm_after=0),
        exit_code=2).shifted(late)
    gaps = assert_crashloop_backoff(tl, pod, restarts=5, since=started, schedule=schedule)
    assert any(g.backed_off for g in gaps)
    for restart in tl.query(pod=pod, kind="ContainerRestarted"):
        assert restart.data["previous"]["reason"] == "Error"
        assert restart.data["previous"]["exitCode"] == 2
    first_kill = timing.first_liveness_kill(fail_from=fail_from)
    assert_probe_failures(tl, pod, probe="liveness", count=3, since=started, within=first_kill,
                          message="HTTP probe failed with statuscode: 503")
    # Events undercount: the kubelet's event recorder rate-limits each pod's events (a burst of
    # 25, then one per 5 minutes), so after a few cycles Killing events go missing while
    # restartCount keeps counting (the write-up: Killing x3 for 6 restarts).
    killings = tl.query(pod=pod, kind="Killing")
    assert 1 <= len(killings) <= 5
    assert {r.data["phase"] for r in tl.query(pod=pod, kind="PodPhase")} == {"Pending", "Running"}


def test_o1_3_startup_probe_gives_a_slow_app_time_and_holds_back_liveness_and_readiness(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O1.3: a startup probe gives a slow app time and holds back liveness and readiness.

    failureThreshold 30 × periodSeconds 10 gives the app up to 300 s; this one needs up to
    20 s (503 until then, which liveness would punish within 15 s if it ran). The test lets it
    start just before the last startup probe within those 20 s (flag ``start-now``), so that
    the probe sees it at once.

    Upstream: Probing container should be ready immediately after startupProbe succeeds."""
    tl = probes_timeline
    pod = "httpserver-startup"
    timing = _timing(probes_deploy("seed001-startup.yaml", wait="running"))
    assert timing.startup is not None
    period = timing.startup.period
    assert timing.startup_give_up().earliest >= 300 - period
    started = tl.wait_first(pod=pod, kind="ContainerStarted", timeout=30)
    # The manifest's START_DELAY, counted from the app's process creation (see O1.2).
    own_start = started.time + timedelta(seconds=20.0 + app_start_lag(
        _probes_api, tl.namespace, pod, started.time, origin="clock"))
    at = before_next_probe(_probes_api, tl.namespace, pod, "/startupz", period)
    while at + timedelta(seconds=period) < own_start:
        at += timedelta(seconds=period)
    assert at < own_start, f"no startup probe left before the app starts by itself ({at})"
    start_delay = (set_flag(_probes_api, tl.namespace, pod, "start-now", at=at)
                   - started.time).total_seconds()
    passed = tl.wait_first(pod=pod, kind="ContainerStartupPassed",
                           timeout=timing.startup_success(started_from=start_delay).latest * 2)
    after = (passed.time - started.time).total_seconds()
    assert timing.startup_success(started_from=start_delay).contains(after, slack=1), after
    ready = assert_ready_within(
        tl, pod, since=started,
        within=timing.readiness_gain(startup_from=start_delay))
    # Not before startup passed, in the order the watch saw them (the two times come from
    # different whole-second stamps: the Ready condition's and the status update's).
    assert ready.received >= passed.received
    assert_no_restarts_for(tl, pod, since=started,
                           duration=(ready.time - started.time).total_seconds())
    # The app's log: no liveness or readiness request before the first successful startup probe.
    health = health_log(_probes_api, tl.namespace, pod)
    first_ok = next(h for h in health if h.path == "/startupz" and h.outcome == "ok")
    early = [h for h in health if h.path in ("/livez", "/readyz") and h.time < first_ok.time]
    assert not early, early
    assert any(h.path == "/startupz" and h.outcome != "ok" for h in health)


WRONG_PORT = "8081: connect: connection refused"
FAILURE_STREAK = 5
"""O1.4 counts this many readiness failures a period apart, from the one that set the phase."""


def test_o1_4_readiness_probe_on_the_wrong_port_keeps_pods_1_of_2_ready_until_fixed(
    probes_deploy: Deployer, probes_timeline: Timeline
) -> None:
    """O1.4: a readiness probe on the wrong port keeps the pods 1/2 ready until it is fixed.

    Upstream: Probing container with readiness probe that fails should never be ready and never
    restart [Conformance]."""
    tl = probes_timeline
    objects = probes_deploy("seed001-wrong-readiness-port.yaml", wait="running")
    timing = _timing(objects, "hello-server")
    assert timing.readiness is not None
    pods = [p["metadata"]["name"] for p in probes_deploy.pods(objects)]
    # Long past when a working probe would have made them Ready: still not Ready, not restarted.
    # Counted per pod from its app container's start (seen: one pod's container created 14 s
    # after the other's while the whole suite started).
    spec = timing.readiness
    enough = timing.readiness_gain().latest + 2 * spec.period
    # The failures go on once a period (the write-up counted 65 in 9 minutes). The ticker of a
    # container that is not ready restarts at a pod sync, which also runs the probe at once:
    # sometimes one comes right after the first failure (two failures in a second), and then
    # the ticker's phase is that second run's. No other sync comes for a minute (the pod worker's
    # resync). Each result lands up to timeoutSeconds after its tick.
    later = (FAILURE_STREAK - 1) * spec.period
    streak = Window(later - spec.timeout, later + spec.timeout)
    for pod in pods:
        started = tl.wait_first(pod=pod, kind="ContainerStarted", container="hello-server",
                                timeout=30)
        first, second = assert_probe_failures(
            tl, pod, probe="readiness", count=2, since=started, message=WRONG_PORT,
            within=timing.readiness_gain().latest + spec.period)
        resynced = (second.time - first.time).total_seconds() < spec.period / 2
        anchor = second if resynced else first
        # Failures are counted from the anchor's whole second, which may hold the first too.
        counted_before = int(resynced and first.time >= second.time)
        assert_probe_failures(tl, pod, probe="readiness", count=FAILURE_STREAK + counted_before,
                              since=anchor, message=WRONG_PORT, within=streak)
        assert_never_ready_for(tl, pod, since=started, duration=enough)
        assert_no_restarts_for(tl, pod, since=started, duration=enough)
    # 1/2: the sidecar is ready, the app container is not.
    for pod in pods:
        ready = {r.container for r in tl.query(pod=pod, kind="ContainerReady")}
        assert ready == {"busybox"}, (pod, ready)
    # After fixing the port (a new ReplicaSet), every new pod becomes 2/2 Ready.
    fixed = probes_deploy("seed001-fixed-readiness-port.yaml", wait="running")
    for pod in [p["metadata"]["name"] for p in probes_deploy.pods(fixed)]:
        assert pod not in pods
        started = tl.wait_first(pod=pod, kind="ContainerStarted", container="hello-server",
                                timeout=30)
        assert_ready_within(tl, pod, since=started, within=timing.readiness_gain())


def test_o1_5_liveness_runs_without_waiting_for_readiness(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O1.5: liveness runs without waiting for readiness.

    Readiness starts after 45 s here; liveness kills the container long before that."""
    tl = probes_timeline
    pod = "httpserver-independent"
    timing = _timing(probes_deploy("seed001-liveness-readiness-independent.yaml",
                                   wait="running"))
    assert timing.readiness is not None
    # Liveness fails after 9 × 2 s here: an app slower to listen is killed for its start-up, and
    # the instance under test is its successor.
    assert timing.liveness is not None
    started = serving_instance(tl, _probes_api, pod, period=timing.liveness.period)
    at = before_next_probe(_probes_api, tl.namespace, pod, "/livez", timing.liveness.period)
    fault = set_flag(_probes_api, tl.namespace, pod, "fail-liveness", at=at)
    fail_from = (fault - started.time).total_seconds()
    kill = timing.first_liveness_kill(fail_from=fail_from)
    assert kill.latest < timing.readiness.initial_delay
    killing = assert_event_within(tl, pod, "Killing", since=fault,
                                  within=kill.shifted(-fail_from))
    assert_never_ready_for(tl, pod, since=started,
                           duration=(killing.time - started.time).total_seconds())
    assert_restarts_within(tl, pod, since=killing,
                           within=timing.restart_after_kill(exits_on_sigterm_after=0))
    assert not tl.query(pod=pod, kind="Unhealthy", message="Readiness")
