"""Unit tests for pytest_probes.timing: hand-worked windows and the seed sequences.

Arithmetic in the comments uses the module's constants: PLEG relist 1 s, the per-hop allowance A
(set explicitly in most tests), probe timeout T (API default 1 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_probes.errors import DeployError, ProbesError
from pytest_probes.timing import (
    API_TIME_RESOLUTION,
    BACKOFF_REQUEUE,
    CRI_RUNTIME_REQUEST_TIMEOUT,
    DEFAULT_CRASHLOOP_BACKOFF,
    ContainerTiming,
    CrashLoopBackOff,
    ProbeSpec,
    RestartSchedule,
    TimingError,
    Window,
    backoff_delays,
    backoff_requeue_late,
    delay_from,
    endpoints_follow,
    exec_response,
)

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [container], **spec}}


def http(**fields: Any) -> dict[str, Any]:
    return {"httpGet": {"path": "/healthz", "port": 8080}, **fields}


def timing(container: dict[str, Any], allowance: float = 1.0, **spec: Any) -> ContainerTiming:
    return ContainerTiming.from_pod_spec(pod(container, **spec), allowance=allowance)


def approx(w: Window, earliest: float, latest: float) -> None:
    assert w.earliest == pytest.approx(earliest), f"{w} earliest, want {earliest}"
    assert w.latest == pytest.approx(latest), f"{w} latest, want {latest}"


# ---------------------------------------------------------------------------- Window


def test_window_basics() -> None:
    w = Window(15, 25)
    assert str(w) == "15\u201325 s"
    assert str(Window(2.5, 2.5)) == "2.5 s"
    assert w.contains(15) and w.contains(25) and not w.contains(25.5)
    assert w.contains(25.5, slack=API_TIME_RESOLUTION)
    assert w.shifted(5) == Window(20, 30)
    assert w + Window(1, 2) == Window(16, 27)
    assert 1 + w == Window(16, 26)
    assert w.hull(Window(30, 31)) == Window(15, 31)
    assert w.width == 10
    with pytest.raises(TimingError, match="ends before it starts"):
        Window(3, 2)
    assert issubclass(TimingError, ProbesError)


# ---------------------------------------------------------------------------- specs


def test_probe_defaults_are_the_api_defaults() -> None:
    p = ProbeSpec.from_k8s(http())
    assert (p.initial_delay, p.period, p.timeout) == (0, 10, 1)
    assert (p.success_threshold, p.failure_threshold) == (1, 3)
    assert p.termination_grace_period is None
    assert p.handler == "httpGet"
    # SetDefaults_Probe treats 0 as unset.
    assert ProbeSpec.from_k8s(http(periodSeconds=0, failureThreshold=0)).period == 10


@pytest.mark.parametrize(
    "fields",
    [{"periodSeconds": "5"}, {"timeoutSeconds": -1}, {"initialDelaySeconds": 1.5},
     {"terminationGracePeriodSeconds": 0}, {"failureThreshold": True}],
)
def test_probe_rejects_invalid_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(DeployError):
        ProbeSpec.from_k8s(http(**fields))


def test_from_pod_spec_finds_the_pod_spec_everywhere() -> None:
    c = {"name": "app", "livenessProbe": http(periodSeconds=5)}
    spec = {"containers": [c]}
    deployment = {"kind": "Deployment", "spec": {"template": {"spec": spec}}}
    job_pod = {**spec, "restartPolicy": "Never"}
    job = {"template": {"spec": job_pod}}
    cronjob = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": job}}}
    for manifest in (spec, pod(c), deployment, cronjob):
        t = ContainerTiming.from_pod_spec(manifest)
        assert t.name == "app" and t.liveness is not None and t.liveness.period == 5
        assert t.pod_grace == 30  # API default
    assert ContainerTiming.from_pod_spec(cronjob).restart_policy == "Never"
    assert ContainerTiming.from_pod_spec(spec).restart_policy == "Always"
    with pytest.raises(DeployError, match="no pod spec"):
        ContainerTiming.from_pod_spec({"kind": "Service", "spec": {"ports": []}})


def test_from_pod_spec_container_choice() -> None:
    manifest = pod({"name": "app"}, restartPolicy="OnFailure",
                   initContainers=[{"name": "proxy", "restartPolicy": "Always"}])
    manifest["spec"]["containers"].append({"name": "sleep"})
    with pytest.raises(DeployError, match="pass container="):
        ContainerTiming.from_pod_spec(manifest)
    with pytest.raises(DeployError, match="no container 'nope'"):
        ContainerTiming.from_pod_spec(manifest, "nope")
    assert ContainerTiming.from_pod_spec(manifest, "sleep").restart_policy == "OnFailure"
    # A native sidecar restarts under Always whatever the pod policy says.
    assert ContainerTiming.from_pod_spec(manifest, "proxy").restart_policy == "Always"


def test_liveness_success_threshold_must_be_one() -> None:
    with pytest.raises(DeployError, match="successThreshold must be 1"):
        timing({"name": "a", "livenessProbe": http(successThreshold=2)})


# ---------------------------------------------------------------------------- liveness


def test_initial_delay_counts_from_the_start_second_the_api_shows() -> None:
    # worker.go doProbe compares int32(time.Since(StartedAt).Seconds()) with the delay, on the
    # status manager's copy truncated to the second: the API's startedAt.
    assert delay_from(5) == 5 and delay_from(5, start="api") == 5
    # From the runtime's precise start it can pass up to a second early.
    assert delay_from(5, start="runtime") == 4
    assert delay_from(0.5, start="runtime") == 0 and delay_from(0) == 0


def test_first_liveness_kill_hand_worked() -> None:
    t = timing({"name": "a", "livenessProbe": http(initialDelaySeconds=5, periodSeconds=5)},
               allowance=0.0)
    # Failing from 10 s; probes skip before 5 s. The first counted tick lies in [10, 15) (phase
    # unknown), or up to the timeout (1 s) before it, its request reaching the app after 10 s;
    # the 3rd 2 periods later in [19, 25). Latest: + timeout 1 + PLEG relist 1 = 27.
    approx(t.first_liveness_kill(fail_from=10), 19, 27)
    # Its first failure is reported no earlier than the failure itself.
    assert t.first_liveness_failure(fail_from=10).earliest == 10
    # Failing from the start: ticks count from the initial delay, which the kubelet measures from
    # the start truncated to the second, the API's startedAt these windows count from
    # (delay_from: 5), [5, 10) -> kill 15..22.
    approx(t.first_liveness_kill(fail_from=0), 15, 22)
    # An endpoint that answers 500 at once: the result comes with the tick -> 15.1..21.1.
    approx(t.first_liveness_kill(fail_from=0, probe_response=0.1), 15.1, 21.1)
    # A previous instance that crashed after 2 failures leaves resultRun at 2: one more kills.
    approx(t.first_liveness_kill(fail_from=10, prior_failures=2), 10, 17)
    # The allowance (A = 1) is added twice: to the status lag (not binding here) and the reaction.
    t1 = timing({"name": "a", "livenessProbe": http(initialDelaySeconds=5, periodSeconds=5)})
    approx(t1.first_liveness_kill(fail_from=10), 19, 28)
    # A probe answered 0.1 s after its tick: the first counted tick from 9.9 s, the third's
    # result 10.1 s later.
    approx(t1.first_liveness_kill(fail_from=10, probe_response=0.1), 20, 27.1)


def test_liveness_with_small_delay_waits_for_the_status_lag() -> None:
    t = timing({"name": "a", "livenessProbe": http(periodSeconds=5, failureThreshold=1)},
               allowance=0.5)
    # No initial delay, failing at once: a probe may run right at the start (earliest 0), but the
    # worker may only see the container after PLEG relist 1 + A 0.5 = 1.5 s; next tick < 6.5;
    # + timeout 1 + reaction 1.5 -> 9.
    approx(t.first_liveness_kill(), 0, 9)


def test_containers_started_after_it_in_the_pod_delay_when_its_probes_begin() -> None:
    # Five containers in one pod, readiness every second (the redirect case of
    # tests/live/test_documented_probe_behaviours.py). One sync starts them in order, and the
    # probe workers see the first only at the sync after all five: four more starts of two CRI
    # calls (A = 1 each), then PLEG relist 1 + A 1.
    spec = {"containers": [{"name": f"c{i}", "readinessProbe": http(periodSeconds=1)}
                           for i in range(5)]}
    first, last = (ContainerTiming.from_pod_spec(spec, name) for name in ("c0", "c4"))
    assert (first.later_starts, last.later_starts) == (4, 0)
    assert last.probe_lag == last.status_lag == 2
    assert first.probe_lag == 2 + 4 * 2
    # App serving 2.66 s after its start (as measured in the run below): first success in
    # [2.66, max(2.66, lag) + period) + timeout, + A.
    approx(last.readiness_gain(ready_from=2.66), 2.66, 2.66 + 1 + 1 + 1)
    approx(first.readiness_gain(ready_from=2.66), 2.66, 10 + 1 + 1 + 1)
    # What a kind node under four workers showed for the first one: Ready 7.0 s after its start,
    # against the 2.66-5.66 s the pod's last container has.
    assert first.readiness_gain(ready_from=2.66).contains(7.0)
    assert not last.readiness_gain(ready_from=2.66).contains(7.0, slack=1)
    # A native sidecar starts in its own sync, before the containers: no later starts.
    sidecar = {"initContainers": [{"name": "s", "restartPolicy": "Always"}], **spec}
    assert ContainerTiming.from_pod_spec(sidecar, "s").later_starts == 0
    with pytest.raises(TimingError, match="later_starts"):
        ContainerTiming(name="x", later_starts=-1)


def test_probe_slower_than_its_period_spaces_failures_by_the_timeout() -> None:
    t = timing({"name": "a", "livenessProbe": http(periodSeconds=2, timeoutSeconds=5)},
               allowance=0.0)
    # Ticks can be dropped while a probe hangs: consecutive probes start at most
    # max(period, timeout) = 5 apart. Earliest 0 + 2 x 2 = 4; latest 1 (lag) + 2 + 2 x 5 + 5 + 1.
    approx(t.first_liveness_kill(), 4, 19)


def test_liveness_cannot_kill_before_startup_succeeds() -> None:
    c = {"name": "a",
         "startupProbe": http(periodSeconds=10, failureThreshold=30),
         "livenessProbe": http(periodSeconds=5)}
    t = timing(c, allowance=1.0)
    # Without the startup probe a liveness failing from 0 kills after 2 periods: earliest 10.
    no_startup = timing({"name": "a", "livenessProbe": http(periodSeconds=5)}, allowance=1.0)
    assert no_startup.first_liveness_kill().earliest == 10
    # The app starts at 20 s: started in [20, 20 + 10 + 1 + 1 = 32]; liveness counts from there:
    # earliest 20 + 2 x 5 = 30 (never before startup), latest 32 + 5 + 10 + 1 + 2 = 50.
    approx(t.startup_success(started_from=20), 20, 32)
    approx(t.first_liveness_kill(startup_from=20), 30, 50)
    assert t.first_liveness_kill(startup_from=20).earliest > t.startup_success(
        started_from=20).earliest


def test_startup_give_up() -> None:
    t = timing({"name": "a", "startupProbe": http(initialDelaySeconds=3, periodSeconds=10,
                                                  failureThreshold=30)}, allowance=1.0)
    # 30th failing tick: first tick in [3, 13) (from the API's startedAt the 3 s delay passes at
    # 3 s exactly, delay_from), + 29 x 10 -> [293, 303); latest + timeout 1 + reaction (PLEG 1 +
    # A 1) = 306. I.e. initialDelay + failureThreshold x period, plus slack.
    approx(t.startup_give_up(), 293, 306)
    with pytest.raises(TimingError, match="gives up"):
        t.startup_success(started_from=400)
    with pytest.raises(TimingError, match="no liveness probe"):
        t.first_liveness_kill()


# ---------------------------------------------------------------------------- readiness


def test_readiness_gain_and_loss_seed_001_o11() -> None:
    # O1.1: readiness initialDelay 5, period 5; health fails from 10 s. Seed: READY 1/1 at ~5 s,
    # 0/1 at ~25 s.
    t = timing({"name": "a", "readinessProbe": http(initialDelaySeconds=5, periodSeconds=5)},
               allowance=1.0)
    gain = t.readiness_gain()
    # First probe at/after 5 s (delay_from): [5, 10); + timeout 1 + status write A 1 -> 12.
    approx(gain, 5, 12)
    loss = t.readiness_loss(fail_from=10)
    # Ticks in [10, 15) (or from 9, a request reaching the app after 10 s), 3rd failure 10 s
    # later: [19, 25); + 1 + 1 -> 27.
    approx(loss, 19, 27)
    assert gain.contains(5) and loss.contains(25 - 1, slack=API_TIME_RESOLUTION)


def test_readiness_success_threshold() -> None:
    t = timing({"name": "a", "readinessProbe": http(periodSeconds=10, successThreshold=3)},
               allowance=1.0)
    # Three successes. Probes come at most a period apart: latest = lag 2 + 10 + 2 x 10 + 1 + 1.
    # Earliest: first success at 0; while not ready, a pod resync (>= 60 s apart, so one in this
    # 20 s span) may inject one manual run right after it -> the 3rd success one period later.
    approx(t.readiness_gain(), 10, 34)
    # successThreshold 2: the injected run can be the 2nd success -> earliest = first success.
    t2 = timing({"name": "a", "readinessProbe": http(periodSeconds=10, successThreshold=2)})
    assert t2.readiness_gain(ready_from=4).earliest == 4
    # A success streak carried over from the previous instance (resultRun survives the new
    # container ID): 2 carried -> one success suffices.
    assert t.readiness_gain(prior_successes=2).earliest == 0
    approx(t.readiness_gain(prior_successes=2), 0, 14)
    # A sync known at 35 s: no resync before 95 s, so a streak from 50 s to 70 s has no help
    # (its first probe from 49 s, its request reaching the app within the 1 s timeout).
    assert t.readiness_gain(ready_from=50, synced_at=35).earliest == 69
    # Known at 5 s: a resync may come from 65 s on, inside the streak.
    assert t.readiness_gain(ready_from=50, synced_at=5).earliest == 59


def test_readiness_after_restart_and_endpoints() -> None:
    t = timing({"name": "a", "readinessProbe": http()}, allowance=0.5)
    approx(t.readiness_loss_on_restart(), 0, 1.5)
    approx(endpoints_follow(Window(5, 12)), 5, 13)


# ---------------------------------------------------------------------------- kills, restarts


def test_probe_level_grace_period_overrides_the_pod_for_probe_kills() -> None:
    c = {"name": "a", "livenessProbe": http(terminationGracePeriodSeconds=5)}
    t = timing(c, allowance=0.5)
    assert t.grace_period("liveness") == 5
    assert t.grace_period("other") == 30
    approx(t.kill_duration(exits_on_sigterm_after=None), 5, 5.5)
    approx(t.kill_duration(exits_on_sigterm_after=None, reason="other"), 30, 30.5)
    approx(t.kill_duration(exits_on_sigterm_after=0.2), 0.2, 0.7)
    # The kubelet never gives less than 2 s (minimumGracePeriodInSeconds).
    t1 = timing({"name": "a", "livenessProbe": http(terminationGracePeriodSeconds=1)},
                allowance=0.0)
    approx(t1.kill_duration(exits_on_sigterm_after=None), 2, 2)
    # A preStop hook may use the grace period, after which SIGTERM still gets 2 s.
    t2 = timing({"name": "a", "lifecycle": {"preStop": {"sleep": {"seconds": 3}}}},
                allowance=0.0, terminationGracePeriodSeconds=10)
    approx(t2.kill_duration(exits_on_sigterm_after=None), 10, 12)


def test_restart_after_kill_seed_000_o02() -> None:
    # O0.2: the container ignores SIGTERM; Started comes 30 s after Killing.
    manifest = next(yaml.safe_load_all((MANIFESTS / "seed000-app-target.yaml").read_text()))
    t = ContainerTiming.from_pod_spec(manifest, allowance=1.0)
    w = t.restart_after_kill(exits_on_sigterm_after=None)
    # Grace 30, + A 1 to the exit (the kill), + A 1 for StopContainer to return (the task
    # deleted), + create A 1 + start A 1.
    approx(w, 30, 34)
    assert w.contains(30)
    # Under a 40 s back-off: exit + 40 .. exit + 40 + requeue late 20 + tick 1 + A, then the
    # create and the start.
    approx(t.restart_after_kill(exits_on_sigterm_after=None, backoff=40), 70,
           31 + 40 + 20 + 1 + 1 + 2 * 1)
    # A 10 s back-off: 1.33/1.34's 10-15 s requeue is the later bound.
    approx(t.restart_after_kill(exits_on_sigterm_after=None, backoff=10), 40,
           31 + 10 + BACKOFF_REQUEUE.latest + 1 + 1 + 2 * 1)


def test_restart_after_kill_waits_for_the_runtime_to_delete_the_exited_task() -> None:
    # An app that exits at once on SIGTERM: the exit within A of Killing; StopContainer returns
    # once the runtime has deleted the task (A); then create and start (2 A). The gRPC liveness
    # test in a kind node under four workers saw Started 5 s after Killing (whole seconds):
    # within 4 + the API's 1 s resolution, past the 3 s it had without the delete.
    t = timing({"name": "a", "livenessProbe": http()}, allowance=1.0)
    assert t.stop_return == 1
    approx(t.restart_after_kill(exits_on_sigterm_after=0), 0, 1 + 1 + 2)
    assert t.restart_after_kill(exits_on_sigterm_after=0).contains(5, slack=API_TIME_RESOLUTION)
    # After a back-off the start comes at a later sync, when the delete is long done.
    approx(t.restart_after_kill(exits_on_sigterm_after=0, backoff=10), 10,
           1 + 10 + BACKOFF_REQUEUE.latest + 1 + 1 + 2)


def test_backoff_requeue_late_spans_both_requeue_rules() -> None:
    # 1.33/1.34: a requeue every 10-15 s, whatever the back-off.
    assert backoff_requeue_late(10) == backoff_requeue_late(20) == BACKOFF_REQUEUE.latest
    # 1.35+: the time left (capped at syncFrequency) jittered by up to half of it.
    assert backoff_requeue_late(40) == 20
    assert backoff_requeue_late(80) == backoff_requeue_late(300) == 30


def test_backoff_delays() -> None:
    assert backoff_delays(7) == [10, 20, 40, 80, 160, 300, 300]
    assert backoff_delays(3, initial=1, cap=3) == [1, 2, 3]


# ---------------------------------------------------------------------------- schedules


def seed001_liveness(allowance: float) -> ContainerTiming:
    manifest = yaml.safe_load((MANIFESTS / "seed001-liveness.yaml").read_text())
    return ContainerTiming.from_pod_spec(manifest, allowance=allowance)


# Seed 001, O1.2, pod ages from `kubectl get pod -w` (restart k shown at AGE with "(Ns ago)" =
# AGE - finishedAt of the killed instance) and `describe` (Start Time 21:07:09; the instance of
# restart 6 started 21:11:53 = 284 s and finished 21:12:14 = 305 s; restart 7 started 21:14:58 =
# 469 s).
SEED_001_RESTART_AGES = {1: 27, 2: 51, 3: 76, 4: 101, 5: 176, 6: 284, 7: 469}
SEED_001_KILL_AGES = {1: 25, 2: 50, 3: 75, 4: 100, 5: 125, 6: 200, 7: 305}


def seen(window: Window, age: float) -> bool:
    """Whether a pod-age observation fits a container-relative window.

    The first container started c0 = 0..3 s after the pod; a watch line shows up to 2 s after the
    change; ages are whole seconds. So the true time is in [age - 5 - 1, age + 1].
    """
    return window.earliest <= age + API_TIME_RESOLUTION and window.latest >= age - 6


def test_seed_001_o12_restart_schedule() -> None:
    t = seed001_liveness(allowance=0.5)
    kill = t.kill_duration(exits_on_sigterm_after=0.1)  # quick exit on SIGTERM (exit code 2)
    # The server answers 503 at once: probe results come with the tick.
    schedule = t.restart_schedule(7, fail_from=10, kill_duration=kill, exit_code=2,
                                  probe_response=Window(0, 0.1))
    assert isinstance(schedule, RestartSchedule) and len(schedule) == 7
    r = schedule.restarts
    # Kill 1: no exited instance in the pre-kill status -> immediate, back-off untouched.
    # Kill 2: none recorded yet -> Next() = 10 s, immediate. Kill 3/4: 25 s since the previous
    # exit >= 10 / 20 -> Next() = 20 / 40, immediate.
    assert [x.backed_off for x in r[:4]] == [False] * 4
    # The ticker keeps its phase and each instance starts just after the killing tick, so failures
    # start on the 3rd tick: exactly 5 periods per cycle.
    for k in range(1, 4):
        approx(r[k].started, r[0].started.earliest + 25 * k, r[0].started.latest + 25 * k)
    # Kill 5: 25 s < 40 s -> CrashLoopBackOff; restart 5 waits 40 s from the exit.
    assert r[4].backed_off is True and r[4].backoff == Window.at(40)
    # Kill 6 lands 65-80 s after the previous exit vs 80 s: in back-off unless the requeue jitter
    # was at its worst -- the model reports both.
    assert r[5].backed_off is None and r[5].backoff == Window.at(80)
    assert r[6].backed_off is True and r[6].backoff == Window.at(160)
    for k, age in SEED_001_RESTART_AGES.items():
        assert seen(schedule[k - 1], age), f"restart {k}: {schedule[k - 1]} vs age {age}"
    for k, age in SEED_001_KILL_AGES.items():
        assert seen(r[k - 1].killed, age), f"kill {k}: {r[k - 1].killed} vs age {age}"
    # The CrashLoopBackOff at 2m05 is kill 5 (the instance started by restart 4).
    assert seen(r[4].killed, 125) and not seen(r[3].killed, 125)
    # The instance of restart 6 ran 284 -> 305 = 21 s: within a first-kill window (+ exit).
    run = t.first_liveness_kill(fail_from=10, probe_response=Window(0, 0.1)) + kill
    assert run.contains(21, slack=API_TIME_RESOLUTION)
    assert schedule.continues and not schedule.stops


def test_seed_001_o12_first_failing_tick_can_precede_the_failure() -> None:
    # The kind CI, 2026-12-07: the app's clock started 0.627 s after the first startedAt and
    # failed from 10 s; restarts came 25 s apart on the ticks, the 4th 94 s after that startedAt
    # (whole seconds). So the first failing probe was ticked before the failure began, its
    # request reaching the app after it (docs/timing-rules.md, "Probe workers").
    t = seed001_liveness(allowance=1.0)
    schedule = t.restart_schedule(5, fail_from=10, kill_duration=t.kill_duration(
        exits_on_sigterm_after=0), exit_code=2).shifted(0.627)
    assert schedule[3].contains(94, slack=API_TIME_RESOLUTION)
    # No earlier than the timeout (1 s) allows: without it the window began at 95.627.
    assert schedule[3].earliest == pytest.approx(94.627)
    # A later instance is still taken to fail on its third tick: cycles stay 25 s.
    r = schedule.restarts
    cycles = [x.started.earliest - r[0].started.earliest for x in r[1:4]]
    assert cycles == pytest.approx([25, 50, 75])


def test_seed_001_o12_default_allowance_is_looser_but_still_fits() -> None:
    t = seed001_liveness(allowance=1.0)
    schedule = t.restart_schedule(7, fail_from=10, kill_duration=t.kill_duration(
        exits_on_sigterm_after=0.1), exit_code=2)
    for k, age in SEED_001_RESTART_AGES.items():
        assert seen(schedule[k - 1], age)
    tight = seed001_liveness(allowance=0.5).restart_schedule(
        7, fail_from=10, kill_duration=Window(0.1, 0.6), exit_code=2,
        probe_response=Window(0, 0.1))
    for loose, narrow in zip(schedule, tight, strict=True):
        assert loose.earliest <= narrow.earliest and loose.latest >= narrow.latest


def test_seed_000_cycle_is_50_s() -> None:
    # O0.1-O0.3: liveness delay 5, period 5, threshold 3, failing at once, SIGTERM ignored (30 s):
    # Killing every 50 s, Started 30 s after each Killing (events 01:51:56, 01:52:46, 01:53:36).
    manifest = next(yaml.safe_load_all((MANIFESTS / "seed000-app-target.yaml").read_text()))
    t = ContainerTiming.from_pod_spec(manifest, allowance=1.0)
    schedule = t.restart_schedule(3, fail_from=0, kill_duration=t.kill_duration(
        exits_on_sigterm_after=None))
    kills = [r.killed for r in schedule.restarts]
    # 50 s in the write-up; 45 s is possible when the new container starts within the second of
    # the tick before its grace period ran out (delay_from): its first tick 5 s later counts.
    assert kills[1].earliest - kills[0].earliest == 45
    assert kills[2].earliest - kills[1].earliest == 45
    assert all(w.latest - 50 > 0 for w in (kills[1], kills[2]))
    assert all(r.backed_off is False for r in schedule.restarts)


def seed004(policy: str, allowance: float = 0.3) -> ContainerTiming:
    manifest = yaml.safe_load((MANIFESTS / "seed004-restartpolicy-onfailure.yaml").read_text())
    manifest["spec"]["restartPolicy"] = policy
    return ContainerTiming.from_pod_spec(manifest, allowance=allowance)


def seed002_o23() -> tuple[ContainerTiming, RestartSchedule]:
    # O2.3: liveness delay 5, period 1, threshold 3; seed 1755 fails from the 8th request (11 s
    # after start at the earliest, see delay_from), so every instance is killed ~14 s after it
    # starts and exits 0 on SIGTERM.
    manifest = yaml.safe_load_all((MANIFESTS / "seed002-degrading-liveness.yaml").read_text())
    t = ContainerTiming.from_pod_spec(next(manifest))
    return t, t.restart_schedule(5, fail_from=11, exit_code=0, probe_response=Window(0, 1),
                                 kill_duration=t.kill_duration(exits_on_sigterm_after=0))


def test_seed_002_o23_schedule_keeps_one_window_per_history() -> None:
    _, s = seed002_o23()
    r = s.restarts
    # Kills 1-3 restart at once (the entry goes to 10, 20, 40 s); only then can a kill land in
    # back-off.
    assert all(x.paths is not None and set(x.paths) == {(False,) * x.number} for x in r[:3])
    at_once, waited = s.given([False] * 4), s.given([False] * 3 + [True])
    assert at_once is not None and waited is not None
    # After a waited restart the requeue jitter decides kill 5: both histories are kept.
    short = s.given([False] * 3 + [True, False])
    long = s.given([False] * 3 + [True, True])
    assert short is not None and long is not None
    paths = r[4].paths
    assert paths is not None and set(paths) == {(False,) * 3 + (True, False),
                                                 (False,) * 3 + (True, True),
                                                 (False,) * 4 + (True,)}
    hull = short
    for w in paths.values():
        hull = hull.hull(w)
    assert s[4] == hull
    # Restart 5 at once means kill 5 came >= 40 s after exit 4 (itself after kill 4).
    assert short.earliest >= r[3].killed.earliest + 40
    # Restart 5 after the 40 s back-off: restart 4, an instance's life, then the 40 s.
    assert long.earliest >= waited.earliest + r[0].started.earliest + 40
    assert long.earliest > short.earliest
    # The hull is looser than either history: what the history-aware check gains.
    assert s[4].latest > short.latest and s[4].earliest < long.earliest
    # A restart at once after one that did not wait is in back-off (14 s < 40 s): impossible.
    assert s.given([False] * 5) is None
    assert s.given([True]) is None  # the first kill never waits
    with pytest.raises(IndexError):
        s.given([])
    with pytest.raises(IndexError):
        s.given([False] * 6)


def test_schedule_shift_moves_every_history() -> None:
    _, s = seed002_o23()
    moved = s.shifted(Window(2, 3))
    history = [False] * 3 + [True, True]
    base, after = s.given(history), moved.given(history)
    assert base is not None and after is not None
    approx(after, base.earliest + 2, base.latest + 3)
    assert moved[0] == s[0] + Window(2, 3)
    assert moved.restarts[2].killed == s.restarts[2].killed + Window(2, 3)


def test_schedule_histories_fall_back_to_the_hull(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_probes.timing.backoff as timing_module

    monkeypatch.setattr(timing_module, "_MAX_CLASSES", 4)
    _, s = seed002_o23()
    # Too many classes: histories are merged; any history gets the hull, as before.
    assert s.restarts[-1].paths is None
    assert s.given([False] * 5) == s[4]


def test_seed_004_o43_onfailure_exit_0_stops_once_backoff_applies() -> None:
    # Liveness delay 5, period 5, failureThreshold 1; nginx-like exit 0 on SIGTERM. The fault is
    # set again ~11 s after each start (the seed's author deleted index.html after each restart),
    # so each cycle is 15 s: kill 2 -> Next() = 10, kill 3: 15 s >= 10 -> 20, kill 4: 15 s < 20
    # -> in back-off, and under OnFailure an exited-0 container is not started again.
    t = seed004("OnFailure")
    kill = t.kill_duration(exits_on_sigterm_after=0.05)
    schedule = t.restart_schedule(6, fail_from=11, kill_duration=kill, exit_code=0,
                                  probe_response=Window(0, 0.1))
    assert len(schedule) == 3  # RESTARTS 3, as in the seed
    assert all(r.certain and r.backed_off is False for r in schedule.restarts)
    assert schedule.stop_counts == {3}
    assert schedule.always_stops
    assert "OnFailure" in schedule.stops[0].reason
    # Same kills with a non-zero exit code keep restarting, into CrashLoopBackOff.
    failing = t.restart_schedule(6, fail_from=11, kill_duration=kill, exit_code=137,
                                 probe_response=Window(0, 0.1))
    assert len(failing) == 6 and failing.restarts[3].backed_off is True
    # restartPolicy Always ignores the exit code; Never never restarts (O4.2).
    always = seed004("Always").restart_schedule(6, fail_from=11, kill_duration=kill,
                                                probe_response=Window(0, 0.1))
    assert len(always) == 6 and not always.stops
    never = seed004("Never").restart_schedule(6, fail_from=11, kill_duration=kill,
                                              probe_response=Window(0, 0.1))
    assert len(never) == 0 and never.stop_counts == {0}


def test_seed_004_ambiguous_cycle_is_reported() -> None:
    # Faults set right after each start: 10 s cycles, equal to the 10 s back-off at kill 3; the
    # comparison can go either way, so the container may stop at 2 or 3 restarts.
    t = seed004("OnFailure")
    schedule = t.restart_schedule(6, fail_from=0, kill_duration=Window(0.05, 0.35),
                                  probe_response=Window(0, 0.1))
    assert schedule.stop_counts == {2, 3}
    assert [r.certain for r in schedule.restarts] == [True, True, False]


def test_crash_loop_backs_off_from_the_second_crash() -> None:
    # A container that exits by itself 2-3 s after each start: the first crash restarts at once
    # (no back-off entry; Next() = 10), the second waits 10 s, then 20, 40 (issue #133472).
    t = timing({"name": "a"}, allowance=0.5)
    s = t.restart_schedule(4, crash=True, run_until_kill=Window(2, 3), exit_code=1)
    assert [r.backed_off for r in s.restarts] == [False, True, True, True]
    assert [r.backoff for r in s.restarts[1:]] == [Window.at(10), Window.at(20), Window.at(40)]
    # Restart 1: exit 2-3, seen by the next relist (<= 1.5 s), create and start (<= 2 x 0.5 s).
    approx(s[0], 2, 5.5)
    # Restart 2: restart 1 + run 2-3 + 10 s back-off, then up to requeue 15 + tick 1 + A later.
    approx(s[1], 14, 5.5 + 3 + 10 + 16.5 + 2 * 0.5)
    # OnFailure with exit code 0 never restarts a crashed container.
    done = timing({"name": "a"}, restartPolicy="OnFailure").restart_schedule(
        3, crash=True, run_until_kill=5)
    assert len(done) == 0 and done.stop_counts == {0}


def test_a_capped_back_off_restarts_a_crash_loop_every_cap() -> None:
    # maxContainerRestartPeriod 10s (KubeletCrashLoopBackOffMax): initial 10, cap 10, so every
    # restart after the first waits 10 s (kubelet.go newCrashLoopBackOff; backoff.go Next).
    t = ContainerTiming.from_pod_spec(pod({"name": "a"}), allowance=0.5,
                                      backoff=CrashLoopBackOff(10, 10))
    s = t.restart_schedule(6, crash=True, run_until_kill=Window(2, 3), exit_code=1)
    assert [r.backed_off for r in s.restarts] == [False, True, True, True, True, True]
    assert [r.backoff for r in s.restarts[1:]] == [Window.at(10)] * 5
    assert s.backoff == CrashLoopBackOff(10, 10)
    default = timing({"name": "a"}, allowance=0.5).restart_schedule(
        6, crash=True, run_until_kill=Window(2, 3), exit_code=1)
    assert default.backoff == DEFAULT_CRASHLOOP_BACKOFF
    assert [r.backoff for r in default.restarts[1:]] == [
        Window.at(10), Window.at(20), Window.at(40), Window.at(80), Window.at(160)]
    # Each step: run 2-3 s, back-off 10 s, then up to requeue 15 + tick 1 + A 0.5 + create and
    # start 2 x 0.5 later: the sixth restart is 5 steps after the first (2-5.5 s), not
    # 10+20+40+80+160.
    approx(s[5], 2 + 5 * (2 + 10), 5.5 + 5 * (3 + 10 + 15 + 1 + 0.5 + 2 * 0.5))


def test_the_reduced_decay_starts_at_one_second_and_doubles_to_its_cap() -> None:
    # ReduceDefaultCrashLoopBackOffDecay on 1.33: 1 s doubling to 60 s (kubelet.go
    # reducedInitialCrashLoopBackOff, reducedMaxCrashLoopBackOff).
    t = ContainerTiming.from_pod_spec(pod({"name": "a"}), allowance=0.5,
                                      backoff=CrashLoopBackOff(1, 60))
    s = t.restart_schedule(9, crash=True, run_until_kill=Window(2, 3), exit_code=1)
    assert [r.backoff.earliest for r in s.restarts[1:] if r.backoff is not None] == [
        1, 2, 4, 8, 16, 32, 60, 60]
    # Each wait may end up to the pod worker's requeue later (15 s on 1.33/1.34), never before;
    # a 1 s back-off can also be over by the relist that sees the crash (then it did not wait).
    approx(s[1], 2 + 2 + 1, 5.5 + 3 + 1 + 15 + 1 + 0.5 + 2 * 0.5)
    assert s.restarts[1].backed_off is None and s.restarts[2].backed_off is True
    assert CrashLoopBackOff(1, 60).delays(8) == [1, 2, 4, 8, 16, 32, 60, 60]
    assert str(CrashLoopBackOff(1, 60)) == "1 s doubling to 60 s"
    with pytest.raises(TimingError, match="0 < initial <= cap"):
        CrashLoopBackOff(20, 10)


def test_back_off_resets_after_ten_minutes_of_running() -> None:
    # Each instance runs 650 s (> 600 s since the last Next(), the kubelet's HasExpiredFunc): the
    # entry is garbage collected / expired, so every crash restarts at once.
    t = timing({"name": "a"}, allowance=0.5)
    s = t.restart_schedule(4, crash=True, run_until_kill=650, exit_code=1)
    assert all(r.backed_off is False for r in s.restarts)
    short = t.restart_schedule(4, crash=True, run_until_kill=500, exit_code=1)
    assert [r.backed_off for r in short.restarts] == [False, True, True, True]
    # The same 600 s whatever the cap: a 10 s cap does not reset after 20 s of running.
    capped = ContainerTiming.from_pod_spec(pod({"name": "a"}), allowance=0.5,
                                           backoff=CrashLoopBackOff(10, 10))
    assert [r.backed_off for r in capped.restart_schedule(
        4, crash=True, run_until_kill=30, exit_code=1).restarts] == [False, True, True, True]


def test_schedule_is_a_sequence_of_windows() -> None:
    t = seed001_liveness(allowance=0.5)
    s = t.restart_schedule(3, fail_from=10, kill_duration=0.1, exit_code=2)
    assert list(s) == [r.started for r in s.restarts]
    assert s[-1] == s.restarts[2].started
    assert list(s[:2]) == [s[0], s[1]]
    assert "restart 1:" in str(s)


def test_schedule_argument_errors() -> None:
    t = seed001_liveness(allowance=0.5)
    with pytest.raises(TimingError, match="kill_duration"):
        t.restart_schedule(2, fail_from=10)
    with pytest.raises(TimingError, match="fail_from"):
        t.restart_schedule(2, kill_duration=0.1)
    with pytest.raises(TimingError, match="run_until_kill"):
        t.restart_schedule(2, crash=True)
    with pytest.raises(TimingError, match="no startup probe"):
        t.restart_schedule(2, killer="startup", kill_duration=0.1)
    with pytest.raises(TimingError, match="probe_response"):
        t.first_liveness_kill(probe_response=Window(0, 3))


def test_startup_killer_schedule() -> None:
    # A startup probe that never succeeds: delay 0, period 10, threshold 3 -> kills every
    # 3 periods after the restart tick (30 s per cycle, the 3rd tick after the start).
    t = timing({"name": "a", "startupProbe": http(periodSeconds=10)}, allowance=0.5)
    s = t.restart_schedule(3, killer="startup", kill_duration=0.1, exit_code=137)
    first = t.startup_give_up()
    assert s.restarts[0].killed.earliest == first.earliest == 20
    assert s.restarts[1].killed.earliest - s.restarts[0].killed.earliest == 30


def test_an_exec_probe_answers_when_a_child_lets_go_of_its_output() -> None:
    # Upstream's `sh -c "sleep 10"` with timeoutSeconds 1: killed at 1 s, answered when the
    # forked `sleep` closes the pipe at 10 s (containerd drains the exec's output first).
    assert exec_response(1, held_for=10) == Window(1, 10)
    assert exec_response(5, held_for=2) == Window(5, 5)
    # No later than the CRI request timeout past the probe's timeout.
    assert exec_response(1, held_for=500).latest == 1 + CRI_RUNTIME_REQUEST_TIMEOUT
    # containerd's default drain has no limit: the answer comes when the child lets go, exactly;
    # with a limit, no later than it past the kill.
    assert exec_response(1, held_for=10, drain_limit=0) == Window(10, 10)
    assert exec_response(5, held_for=2, drain_limit=0) == Window(5, 5)
    assert exec_response(1, held_for=10, drain_limit=3) == Window(4, 4)
    assert exec_response(1, held_for=500, drain_limit=0) == Window.at(
        1 + CRI_RUNTIME_REQUEST_TIMEOUT)
    probe = {"exec": {"command": ["sh", "-c", "sleep 10"]}, "initialDelaySeconds": 15,
             "failureThreshold": 1}
    t = timing({"name": "a", "livenessProbe": probe}, allowance=0.0)
    plain = t.first_liveness_kill(probe_response=1)
    held = t.first_liveness_kill(probe_response=exec_response(1, held_for=10))
    # The same tick, answered 9 s later at most.
    approx(held, plain.earliest, plain.latest + 9)
    # Only an exec probe's answer may come after timeoutSeconds.
    t_http = timing({"name": "a", "livenessProbe": http(initialDelaySeconds=15)})
    with pytest.raises(TimingError, match="timeoutSeconds"):
        t_http.first_liveness_kill(probe_response=exec_response(1, held_for=10))
