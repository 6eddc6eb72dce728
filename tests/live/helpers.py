"""Helpers shared by the live tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_probes import Cluster
from pytest_probes.assertions import OBSERVATION_GRACE, is_hopeless
from pytest_probes.cluster import ClusterConfig
from pytest_probes.faults import before_probe, exec_in_pod, wait_serving
from pytest_probes.target.logline import parse_health_line
from pytest_probes.timeline import Record, Timeline
from pytest_probes.timing import API_TIME_RESOLUTION

TIMEOUT = 120.0
"""The timeout a wait that must fail fast is given; it must end within a small part of it."""

FAST = TIMEOUT / 4
"""What "at once" means for an answer that needs nothing from the kubelet or the scheduler (bad
YAML, an unknown kind, a missing Service): well inside the timeout."""

REACTION = OBSERVATION_GRACE + API_TIME_RESOLUTION
"""How soon a wait must end once the cluster shows why it cannot succeed: the time the library
allows a record on its way through the watch, plus the part of a second its server stamp lost.
How long the kubelet or the scheduler takes to get there is theirs: a few seconds on a quiet
node, over 30 while a whole suite starts beside it; running out the timeout takes 120."""


def reaction(tl: Timeline, pod: str, answered: float) -> float:
    """Seconds from the first record that makes ``pod`` hopeless to ``answered`` (a wall time).

    That record is one ``is_hopeless`` picks, as ``diagnose`` does: a container waiting for a
    reason no retry fixes (an image that cannot be pulled or parsed, a missing ConfigMap) or a
    ``FailedScheduling`` Event. ``probes_deploy`` watches on its own, so the timeline may get the
    record a moment after the answer: it is given until the answer plus :data:`REACTION`.
    """
    deadline = datetime.fromtimestamp(answered + REACTION, UTC)
    cause = tl.wait_for(lambda t: next(iter(t.query(pod=pod, where=is_hopeless)), None),
                        deadline=deadline)
    assert cause is not None, (
        f"no record in the timeline says why {pod} cannot start:\n{tl.to_markdown()}")
    return answered - cause.time.timestamp()


def health_log(api: Any, namespace: str, pod: str, container: str | None = None, *,
               previous: bool = False) -> list[Any]:
    """The health requests the target app logged in ``pod`` (its ``container``), in order.

    ``previous``: of the container's instance before the current one (the one a liveness kill
    ended), as ``kubectl logs --previous``.
    """
    from kubernetes import client

    text = client.CoreV1Api(api).read_namespaced_pod_log(pod, namespace, container=container,
                                                          previous=previous)
    return [h for h in map(parse_health_line, text.splitlines()) if h is not None]


def serving_instance(
    tl: Timeline, api: Any, pod: str, *, period: float, timeout: float = 60.0
) -> Record:
    """The ``ContainerStarted`` record of the instance a fault is injected into.

    That is the instance that serves and has outlived one probe period since: from then on its
    start-up failures (connection refused) no longer count towards ``failureThreshold``. Usually
    the first; but an app slower to listen than liveness allows is killed for its start-up, and
    then it is its successor.
    """
    started = tl.wait_first(pod=pod, kind="ContainerStarted", timeout=timeout)
    while True:
        wait_serving(api, tl.namespace, pod, timeout=timeout)
        time.sleep(period)
        if not tl.query(pod=pod, kind="Killing", since=started,
                        where=lambda r, after=started.seq: r.seq > after):
            return started
        count = started.data.get("restartCount", 0)
        started = tl.wait_first(pod=pod, kind="ContainerStarted", timeout=timeout,
                                where=lambda r, n=count: r.data.get("restartCount", 0) > n)


def before_next_exec_probe(
    api: Any, namespace: str, pod: str, ticks_file: str, period: float, *, timeout: float = 60.0
) -> datetime:
    """:func:`pytest_probes.faults.before_next_probe` for an exec probe whose command appends
    ``date -u +%Y-%m-%dT%H:%M:%S.%3NZ`` to ``ticks_file`` each time it runs."""
    deadline = time.monotonic() + timeout
    while True:
        text = exec_in_pod(api, namespace, pod, ["sh", "-c", f"cat {ticks_file} || true"])
        ticks = [datetime.fromisoformat(line) for line in text.split() if line[:1].isdigit()]
        if ticks:
            break
        if time.monotonic() >= deadline:
            raise AssertionError(f"no exec probe noted in {ticks_file} within {timeout:g} s")
        time.sleep(min(period, 1.0))
    return before_probe(ticks, period)


@contextmanager
def own_local_cluster(shared: Cluster, suffix: str, why: str) -> Iterator[tuple[Any, Cluster, str]]:
    """A local cluster of the shared one's version for one test alone, named ``NAME-suffix``.

    For a test that disturbs its cluster (stops kube-apiserver, restarts the kubelet), which
    must not hit the shared cluster the other scenarios run on at the same time. Deleted at the
    end if this call created it.

    Args:
        shared: The session's cluster (``probes_cluster``); must be the local provider's.
        suffix: Appended to its name.
        why: What the test does to its cluster, for the failure on another provider.

    Yields:
        The :class:`~pytest_probes.providers.local.LocalCluster`, its ``Cluster`` handle and the
        target image loaded into it.
    """
    from pytest_probes.providers.local import LocalCluster, LocalProvider

    if shared.provider != "local":
        pytest.fail(f"{why} drives the local provider's processes; run this test with "
                    "--probes-provider local")
    cache_dir = shared.kubeconfig.parent.parent.parent  # <cache_dir>/clusters/<name>/kubeconfig
    name = f"{shared.name}-{suffix}"[:40]
    provider = LocalProvider()
    config = ClusterConfig(name=name, k8s_version=shared.k8s_version.lstrip("v"),
                           cache_dir=cache_dir)
    cluster = provider.up(config, print)
    try:
        image = provider.ensure_target_image(cluster, print)
        yield LocalCluster(name, cache_dir), cluster, image
    finally:
        if cluster.created:
            provider.down(cluster, print)


PROBE_TIMED_OUT = ("context deadline exceeded", "timeout: health rpc did not complete within")
"""What a probe's failure says when no answer came within ``timeoutSeconds``: an HTTP probe's (Go's
``http.Client`` timeout: "Get ...: context deadline exceeded (Client.Timeout exceeded while
awaiting headers)") and a gRPC probe's (``pkg/probe/grpc/grpc.go``, ``codes.DeadlineExceeded``)."""


def fault_failures(failures: list[Record], fault_message: str) -> list[Record]:
    """The failures that report the injected fault, once every one is that fault or a timeout.

    A fault's probes all fail with its message on a quiet node. Under load a probe can time out
    instead (an app or node stalled past ``timeoutSeconds``, seen in the kind CI at 11 % host
    steal): the kubelet counts that towards ``failureThreshold`` as well, so a test counting
    failures counts it too, and checks that nothing else failed.
    """
    other = [f.message for f in failures if fault_message not in f.message
             and not any(timed_out in f.message for timed_out in PROBE_TIMED_OUT)]
    assert not other, f"failures neither the fault's ({fault_message!r}) nor timeouts: {other}"
    return [f for f in failures if fault_message in f.message]
