"""Seed 000, O0.1–O0.6: one replica of three fails liveness; what Events and endpoints show.

The write-up's setup, on a real kubelet: Deployment ``app-target`` (3 replicas behind a Service,
liveness period 5 s, failureThreshold 3, grace period 30 s, an app that ignores SIGTERM) and a
config service that names one pod, whose liveness endpoint then answers 500. Every window comes
from ``manifests/seed000-app-target.yaml`` through the timing math. The same observations are
checked offline on the write-up's own recording in ``tests/unit/test_seed000_replay.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest

from pytest_probes import (
    API_TIME_RESOLUTION,
    ContainerTiming,
    Record,
    Timeline,
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    assert_event_within,
    assert_no_restarts_for,
    assert_probe_failures,
    assert_restarts_within,
    probe_failures,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import before_next_probe, write_file
from pytest_probes.timing import Window, endpoints_follow
from tests.live.helpers import fault_failures

pytestmark = pytest.mark.probes

UNHEALTHY = "Liveness probe failed: HTTP probe failed with statuscode: 500"
KILLING = "Container app-target failed liveness probe, will be restarted"


@dataclass(frozen=True)
class Excluded:
    """The running scenario: which pod the config service excludes, and from when."""

    timing: ContainerTiming
    victim: str
    others: list[str]
    started: Record
    fault: datetime

    @property
    def fail_from(self) -> float:
        return (self.fault - self.started.time).total_seconds()

    def kill_after_fault(self) -> Window:
        """The first Killing's window, counted from the fault."""
        return _kill(self).shifted(-self.fail_from)


def _exclude_one_pod(deploy: Deployer, tl: Timeline, api: Any) -> Excluded:
    (config,) = deploy.pods(deploy("seed000-app-config.yaml", wait="ready"))
    url = f"http://{config['status']['podIP']}:8080/config"
    objects = deploy("seed000-app-target.yaml", wait="ready", substitutions={"CONFIG_URL": url})
    timing = ContainerTiming.from_pod_spec(next(o for o in objects if o["kind"] == "Deployment"))
    victim, *others = sorted(p["metadata"]["name"] for p in deploy.pods(objects))
    started = tl.wait_first(pod=victim, kind="ContainerStarted", timeout=30)
    spec = timing.liveness
    assert spec is not None
    # Listed just before one of the victim's liveness probes, which then fails.
    at = before_next_probe(api, tl.namespace, victim, "/livez", spec.period)
    fault = write_file(api, tl.namespace, "app-config", "/etc/app-config/live-exclude",
                       f"{victim}\n", at=at)
    return Excluded(timing, victim, others, started, fault)


def _kill(x: Excluded) -> Window:
    return x.timing.first_liveness_kill(fail_from=x.fail_from)


def _first_kill_and_restart(tl: Timeline, x: Excluded) -> tuple[Record, Window, Record]:
    """The first Killing, the window of the restart after it, and the restart."""
    killing = assert_event_within(tl, x.victim, "Killing", since=x.started, within=_kill(x))
    after_kill = x.timing.restart_after_kill(exits_on_sigterm_after=None)
    restart = assert_restarts_within(tl, x.victim, since=killing, within=after_kill)[0]
    return killing, after_kill, restart


def test_o0_1_three_unhealthy_events_a_period_apart_then_killing_at_the_third(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O0.1: three Unhealthy Events a period apart, then Killing at the third."""
    tl = probes_timeline
    x = _exclude_one_pod(probes_deploy, tl, _probes_api)
    spec = x.timing.liveness
    assert spec is not None
    # Every failure the kubelet counts, as it counts them: a probe that timed out under load
    # (fault_failures) counts as well.
    failures = assert_probe_failures(tl, x.victim, probe="liveness",
                                     count=spec.failure_threshold,
                                     since=x.fault, within=x.kill_after_fault())
    reported = fault_failures(failures, UNHEALTHY)
    assert reported
    # A period apart on the probe's ticker; a timed-out probe reports up to its timeout later.
    gaps = [(b.time - a.time).total_seconds() for a, b in pairwise(failures)]
    late = spec.timeout if len(reported) < len(failures) else 0.0
    assert all(abs(g - spec.period) <= API_TIME_RESOLUTION + late for g in gaps), gaps
    killing = assert_event_within(tl, x.victim, "Killing", since=failures[-1],
                                  within=(0, x.timing.kill_reaction))
    assert killing.message == KILLING


def test_o0_2_a_container_that_ignores_sigterm_restarts_when_the_grace_period_ends(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O0.2: a container that ignores SIGTERM restarts when the grace period ends."""
    tl = probes_timeline
    x = _exclude_one_pod(probes_deploy, tl, _probes_api)
    killing, window, restart = _first_kill_and_restart(tl, x)
    assert window.earliest == x.timing.pod_grace == 30  # SIGKILL only when the grace period ends
    assert restart.data["previous"]["exitCode"] == 137  # SIGKILLed
    for reason in ("Pulled", "Created", "Started"):
        event = assert_event_within(tl, x.victim, reason, since=killing, within=window)
        assert event.time >= killing.time


def test_o0_3_first_failure_after_restart_comes_after_the_initial_delay_and_cycles_repeat(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O0.3: the first failure after a restart comes after the initial delay; cycles repeat."""
    tl = probes_timeline
    x = _exclude_one_pod(probes_deploy, tl, _probes_api)
    killing, after_kill, restart = _first_kill_and_restart(tl, x)
    # The new container is excluded from its start: its first failure after the initial delay.
    assert_probe_failures(tl, x.victim, probe="liveness", count=1, since=restart,
                          within=x.timing.first_liveness_failure(), message=UNHEALTHY)
    # A whole cycle, Killing to Killing: the first kill of an always-failing container plus
    # the restart after a kill that waits out the grace period (about 50 s in the write-up).
    cycle = after_kill + x.timing.first_liveness_kill()
    second = assert_event_within(tl, x.victim, "Killing", since=restart,
                                 within=x.timing.first_liveness_kill(), message=KILLING)
    assert cycle.contains((second.time - killing.time).total_seconds(),
                          slack=API_TIME_RESOLUTION)


def test_o0_4_endpoint_kept_through_the_grace_period_removed_after_started_then_added(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O0.4: the endpoint stays through the grace period, is removed after Started, then added."""
    tl = probes_timeline
    x = _exclude_one_pod(probes_deploy, tl, _probes_api)
    killing, _after_kill, restart = _first_kill_and_restart(tl, x)
    # Readiness keeps passing on the dying container, so the address stays while the grace
    # period runs, however long that is...
    assert_endpoint_kept_for(tl, x.victim, since=killing,
                             duration=(restart.time - killing.time).total_seconds()
                             - API_TIME_RESOLUTION)
    # ...and leaves only once the new container (not ready yet) has started,
    removed = assert_endpoint_removed_after(
        tl, x.victim, after=restart, since=killing,
        within=endpoints_follow(x.timing.readiness_loss_on_restart()),
    )
    # then comes back when the new container passes readiness.
    assert_endpoint_added_within(tl, x.victim, since=restart,
                                 within=endpoints_follow(x.timing.readiness_gain()))
    assert len(removed.data["ready_addresses"]) == len(x.others)


def test_o0_5_only_the_excluded_pod_restarts_and_the_others_keep_their_endpoints(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O0.5: only the excluded pod restarts; the others keep their endpoints."""
    tl = probes_timeline
    x = _exclude_one_pod(probes_deploy, tl, _probes_api)
    killing = assert_event_within(tl, x.victim, "Killing", since=x.started, within=_kill(x))
    after_kill = x.timing.restart_after_kill(exits_on_sigterm_after=None)
    two = assert_restarts_within(tl, x.victim, restarts=2, since=killing,
                                 within=after_kill + x.timing.first_liveness_kill() + after_kill)
    assert two[-1].data["restartCount"] == 2
    duration = (two[-1].time - x.fault).total_seconds()
    for pod in x.others:
        assert_no_restarts_for(tl, pod, since=x.fault, duration=duration)
        assert_endpoint_kept_for(tl, pod, since=x.fault, duration=duration)


def test_o0_6_repeated_unhealthy_results_update_one_event_whose_count_grows(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O0.6: repeated Unhealthy results update one Event, whose count grows.

    The write-up's exporter missed the first Unhealthy (count 1) of a cycle: the kubelet's
    event recorder aggregates repeats into one Event object and only raises its ``count``, so a
    consumer that sees only updates never sees count 1. The watch sees every count."""
    tl = probes_timeline
    x = _exclude_one_pod(probes_deploy, tl, _probes_api)
    spec = x.timing.liveness
    assert spec is not None
    assert_event_within(tl, x.victim, "Killing", since=x.fault, within=x.kill_after_fault())
    failures = probe_failures(tl, x.victim, probe="liveness", since=x.started)[x.victim]
    assert len(failures) == spec.failure_threshold
    assert len({f.data["uid"] for f in failures}) == 1  # one Event object...
    assert [f.data["count"] for f in failures] == [1, 2, 3]  # ...counted up
    assert len({f.data["first_time"] for f in failures}) == 1
