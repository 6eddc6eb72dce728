"""Seed 000 replayed: its raw event export and endpoints watch, asserted with the live helpers.

The recording comes from the write-up's raw lines (``tests/data/seed000``), not its summary table,
which has a typo (01:52:17/01:52:21 for what the watch shows as 01:53:17/01:53:21). Every window
comes from the probe spec of ``manifests/seed000-app-target.yaml`` through the timing math.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from pytest_probes import (
    API_TIME_RESOLUTION,
    ProbeAssertionError,
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    assert_event_within,
    assert_no_restarts_for,
    assert_probe_failures,
    assert_restarts_within,
    probe_failures,
)
from pytest_probes.deploy import load_manifests
from pytest_probes.timeline import Timeline
from pytest_probes.timing import ContainerTiming, ProbeSpec, Window, endpoints_follow
from tests.helpers import seed000_timeline

DATA = Path(__file__).resolve().parents[1] / "data" / "seed000"
EXCLUDED = "app-target-68b8b88575-86gg8"
OTHERS = ("app-target-68b8b88575-psd9m", "app-target-68b8b88575-qkdrh")


@pytest.fixture(scope="module")
def tl() -> Timeline:
    return seed000_timeline(DATA)


@pytest.fixture(scope="module")
def timing() -> ContainerTiming:
    deployment = next(o.doc for o in load_manifests("seed000-app-target.yaml")
                      if o.kind == "Deployment")
    return ContainerTiming.from_pod_spec(deployment, "app-target")


def liveness(timing: ContainerTiming) -> ProbeSpec:
    assert timing.liveness is not None
    return timing.liveness


def test_o0_1_three_failures_a_period_apart_then_killing(
    tl: Timeline, timing: ContainerTiming
) -> None:
    spec = liveness(timing)
    for started in tl.query(pod=EXCLUDED, kind="Started"):
        failures = assert_probe_failures(
            tl, EXCLUDED, probe="liveness", count=spec.failure_threshold, since=started,
            message="HTTP probe failed with statuscode: 500",
            within=timing.first_liveness_kill(),
        )
        gaps = [(b.time - a.time).total_seconds() for a, b in pairwise(failures)]
        assert all(abs(g - spec.period) <= API_TIME_RESOLUTION for g in gaps), gaps
        killing = assert_event_within(tl, EXCLUDED, "Killing", since=failures[-1],
                                      within=(0, timing.kill_reaction))
        assert killing.message == "Container app-target failed liveness probe, will be restarted"


def test_o0_2_restart_waits_out_the_grace_period_after_killing(
    tl: Timeline, timing: ContainerTiming
) -> None:
    window = timing.restart_after_kill(exits_on_sigterm_after=None)
    assert window.earliest >= timing.pod_grace  # the container ignores SIGTERM
    for killing in tl.query(pod=EXCLUDED, kind="Killing")[:2]:
        assert_restarts_within(tl, EXCLUDED, since=killing, within=window)


def test_o0_3_first_failure_after_restart_and_cycle_length(
    tl: Timeline, timing: ContainerTiming
) -> None:
    spec = liveness(timing)
    first_probe = Window(spec.initial_delay, spec.initial_delay + spec.period + spec.timeout)
    kills = tl.query(pod=EXCLUDED, kind="Killing")
    for started in tl.query(pod=EXCLUDED, kind="Started"):
        assert_probe_failures(tl, EXCLUDED, probe="liveness", count=1, since=started,
                              within=first_probe)
    cycle = timing.restart_after_kill(exits_on_sigterm_after=None) + timing.first_liveness_kill()
    for a, b in pairwise(kills):
        assert cycle.contains((b.time - a.time).total_seconds(), slack=API_TIME_RESOLUTION)


def test_o0_4_endpoint_kept_through_grace_removed_after_started_then_added(
    tl: Timeline, timing: ContainerTiming
) -> None:
    for killing in tl.query(pod=EXCLUDED, kind="Killing")[:2]:
        removed = assert_endpoint_removed_after(
            tl, EXCLUDED, after="Started", since=killing,
            within=endpoints_follow(timing.readiness_loss_on_restart()),
        )
        started = tl.query(pod=EXCLUDED, kind="Started", since=killing)[0]
        assert_endpoint_added_within(tl, EXCLUDED, since=started,
                                     within=endpoints_follow(timing.readiness_gain()))
        assert removed.data["ready_addresses"] == ["10.1.1.222", "10.1.1.223"]


def test_o0_4_removal_at_killing_would_be_caught(tl: Timeline, timing: ContainerTiming) -> None:
    # The same assertion measured from Killing instead of Started must fail: the address stays
    # for the whole grace period, far longer than a readiness change takes to reach endpoints.
    with pytest.raises(ProbeAssertionError, match="address removed from endpoints within"):
        assert_endpoint_removed_after(
            tl, EXCLUDED, after="Killing",
            within=endpoints_follow(timing.readiness_loss_on_restart()),
        )


def test_o0_5_only_the_excluded_pod_restarts(tl: Timeline, timing: ContainerTiming) -> None:
    cycle = timing.restart_after_kill(exits_on_sigterm_after=None) + timing.first_liveness_kill()
    first_kill = tl.query(pod=EXCLUDED, kind="Killing")[0]
    assert_restarts_within(tl, EXCLUDED, restarts=2, since=first_kill,
                           within=timing.restart_after_kill(exits_on_sigterm_after=None) + cycle)
    recorded = (tl.records[-1].time - tl.records[0].time).total_seconds()
    for pod in OTHERS:
        assert_no_restarts_for(tl, pod, duration=recorded)
        assert_endpoint_kept_for(tl, pod, duration=recorded)
    with pytest.raises(ProbeAssertionError, match="expected no restart"):
        assert_no_restarts_for(tl, "app-target", duration=recorded)


def test_o0_6_export_lacks_the_first_unhealthy_but_its_count_says_so(tl: Timeline) -> None:
    first = tl.first(kind="Unhealthy")
    assert first is not None and first.data["count"] == 2
    # The aggregated count still accounts for the failure whose Event line is missing.
    failures = probe_failures(tl, EXCLUDED, probe="liveness")[EXCLUDED]
    assert failures[:2] == [first, first] and failures[2] != first
    assert len(failures) == 9
