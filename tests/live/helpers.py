"""Helpers shared by the live tests."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pytest_probes.faults import before_probe, exec_in_pod, wait_serving
from pytest_probes.target.logline import parse_health_line
from pytest_probes.timeline import Record, Timeline

TIMEOUT = 120.0
"""The timeout a wait that must fail fast is given; it must end within a small part of it."""

FAST = TIMEOUT / 4
"""What "at once" means on a shared 2-core machine: the kubelet's first pull attempt (or its
first attempt to start the container) or the scheduler's first pass, plus the watch, take a few
seconds; running out the timeout takes 120."""


def health_log(api: Any, namespace: str, pod: str, container: str | None = None) -> list[Any]:
    """The health requests the target app logged in ``pod`` (its ``container``), in order."""
    from kubernetes import client

    text = client.CoreV1Api(api).read_namespaced_pod_log(pod, namespace, container=container)
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
