"""Helpers shared by the live tests."""

from __future__ import annotations

from typing import Any

from pytest_probes.target.logline import parse_health_line

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
