"""The kubelet's crash-loop back-off as configured: KEP-4603 and its split-out KEP-5593.

Each test runs on a cluster configured by its ``probes_cluster`` marker (one per configuration,
brought up once for the run) and takes the back-off that cluster's kubelet uses from
``probes_cluster.crashloop_backoff`` (``kubelet.go`` ``newCrashLoopBackOff``:
:func:`pytest_probes.kubelet_versions.crashloop_backoff`). The windows come from the timing
math's simulation of the back-off with those settings; each is far from the default back-off's,
so a kubelet that ignored the setting fails.

- ``KubeletCrashLoopBackOffMax`` (alpha 1.32, beta and on from 1.35): the KubeletConfiguration's
  ``crashLoopBackOff.maxContainerRestartPeriod`` caps the back-off. A kubelet before 1.35 refuses
  the field while the gate is off, so that test needs 1.35 and is skipped on older versions.
- ``ReduceDefaultCrashLoopBackOffDecay`` (alpha from 1.33): 1 s doubling to 60 s; from 1.35 the
  cap is ``maxContainerRestartPeriod``, which defaults to 300 s.

Each instance runs 10 s before it exits. The restart after a back-off comes at the pod worker's
requeue, which from 1.35 is the back-off's time left jittered by up to half of it
(``pod_workers.go`` ``completeWork``: ``wait.Jitter(backoff, workerBackOffPeriodJitterFactor)``,
factor 0.5): a quarter of every back-off late on average, by the kubelet's design, while the
earliest the spec allows takes no jitter. With 2 s runs and the 10 s cap that alone made
returned / earliest about 1.25 (measured 1.18-1.35); with 10 s runs, the 5 s cap and five
restarts the jitter is a smaller share (about 1.10 expected), and the test takes as long.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_probes import (
    Cluster,
    ContainerTiming,
    Timeline,
    Window,
    assert_crashloop_backoff,
)
from pytest_probes.deploy import Deployer
from pytest_probes.timing import DEFAULT_ALLOWANCE, DEFAULT_CRASHLOOP_BACKOFF, CrashLoopBackOff

pytestmark = pytest.mark.probes

RUN_S = 10
"""Each instance exits (code 1) this long after it starts (by default)."""

RESTARTS = 5
"""The fewest that tell each configured back-off from the default one (checked in the test)."""


def _crashing_pod(name: str, run_s: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": "probes-target",
                                     "command": ["sh", "-c", f"sleep {run_s}; exit 1"]}]}}


def _check_schedule(tl: Timeline, deploy: Deployer, cluster: Cluster, name: str,
                    expected: CrashLoopBackOff, record_property: Any, run_s: int = RUN_S) -> None:
    """Deploy the crashing pod and check its restarts against the cluster's back-off."""
    backoff = cluster.crashloop_backoff
    assert backoff == expected, f"{cluster.name} ({cluster.k8s_version}): {backoff}"
    pod = _crashing_pod(name, run_s)
    timing = ContainerTiming.from_pod_spec(pod, backoff=backoff)
    deploy([pod], wait="running")
    started = tl.wait_first(pod=name, kind="ContainerStarted", timeout=60)
    # sh starts and sleeps: the exit comes run_s after startedAt, plus at most one scheduling
    # allowance for the shell itself.
    schedule = timing.restart_schedule(RESTARTS, crash=True,
                                       run_until_kill=Window(run_s, run_s + DEFAULT_ALLOWANCE),
                                       exit_code=1)
    # What the default back-off (10 s doubling to 300 s) would allow at the earliest: the
    # configured schedule must end before it, or the test could not tell them apart.
    default = ContainerTiming.from_pod_spec(pod).restart_schedule(
        RESTARTS, crash=True, run_until_kill=Window(run_s, run_s + DEFAULT_ALLOWANCE),
        exit_code=1)
    assert schedule.backoff == backoff != DEFAULT_CRASHLOOP_BACKOFF
    assert schedule[-1].latest < default[-1].earliest, (schedule, default)
    gaps = assert_crashloop_backoff(tl, name, restarts=RESTARTS, since=started,
                                    schedule=schedule)
    if run_s == RUN_S:  # one row of make matrix's behaviour table per configuration
        down = ", ".join(f"{g.gap:.0f}" for g in gaps)
        record_property("crash-loop back-off", f"{backoff}: down {down} s")


@pytest.mark.probes_cluster(
    kubelet_config={"crashLoopBackOff": {"maxContainerRestartPeriod": "5s"}},
    min_version="1.35")
@pytest.mark.parametrize("run_s", [RUN_S, RUN_S + 2])
def test_max_container_restart_period_caps_the_back_off(
    probes_cluster: Cluster, probes_deploy: Deployer, probes_timeline: Timeline,
    record_property: Any, run_s: int,
) -> None:
    """``maxContainerRestartPeriod: 5s``: every restart after the first waits 5 s, not 10, 20, 40,
    80 (KEP-4603; ``kubelet.go`` ``newCrashLoopBackOff``: the first value, 10 s by default, is
    lowered to the cap). Two run times, one configuration: under pytest-xdist two workers share
    the one cluster. (A liveness-killed container whose kill cycle is longer than
    the cap never waits at all: the back-off counts from the previous instance's exit.)"""
    _check_schedule(probes_timeline, probes_deploy, probes_cluster, "capped",
                    CrashLoopBackOff(initial=5, cap=5), record_property, run_s)


@pytest.mark.probes_cluster(feature_gates={"ReduceDefaultCrashLoopBackOffDecay": True})
def test_reduced_decay_starts_at_one_second(
    probes_cluster: Cluster, probes_deploy: Deployer, probes_timeline: Timeline,
    record_property: Any,
) -> None:
    """``ReduceDefaultCrashLoopBackOffDecay``: 1 s, 2, 4, 8 before the fifth restart, not 10, 20,
    40, 80 (KEP-5593). The cap is 60 s on 1.33 and 1.34, 300 s from 1.35, where
    ``maxContainerRestartPeriod`` defaults to 300 s and overrides it."""
    minor = tuple(int(p) for p in probes_cluster.k8s_version.lstrip("v").split(".")[:2])
    cap = 300.0 if minor >= (1, 35) else 60.0
    _check_schedule(probes_timeline, probes_deploy, probes_cluster, "reduced",
                    CrashLoopBackOff(initial=1, cap=cap), record_property)
