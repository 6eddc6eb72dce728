"""Waiting until a reused kind cluster serves again after its node containers (re)started.

A kind cluster outlives the Docker engine that runs it: its node containers are created with the
restart policy ``on-failure:1``, and an engine that starts again starts them again. Right after
that ``kind get clusters`` lists the cluster while its API server is still starting (the
published port answers TLS with an EOF) and its kubelet has not yet come back. Reusing it then
fails every test; so a reused cluster is used only once

- every node container of the cluster is running,
- the API server answers ``/version``,
- every node reports Ready, and
- every node's Lease (the kubelet's heartbeat, ``kube-node-lease/<node>``) was renewed after its
  container started: a Ready condition alone may be the one posted before the restart, since
  the node controller marks it Unknown only after its grace period (40 s).

:func:`missing` is the pure decision over what was read; :func:`wait_until_serving` reads and
polls (tenacity, through :func:`pytest_probes._poll.poll`).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pytest_probes._poll import poll
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)

SERVING_TIMEOUT = 180.0
"""Seconds a reused cluster gets to serve again: ``kind create``'s own ``--wait`` is 120 s for a
new control plane; a restarted one measured here answered ``/version`` 16-20 s after its
container started and renewed its Lease at 38 s (two cores)."""

KIND_LABEL = "io.x-k8s.kind.cluster"
"""The label kind puts on each node container, valued with the cluster's name."""


@dataclass(frozen=True)
class NodeContainer:
    """One node container of a kind cluster as ``docker inspect`` shows it."""

    name: str
    running: bool
    started: datetime | None


@dataclass(frozen=True)
class ApiView:
    """What the cluster's API said: its version, and per node Ready and Lease renewal."""

    version: str
    ready: Mapping[str, bool]
    renewed: Mapping[str, datetime]


def missing(containers: list[NodeContainer], api: ApiView | None) -> str:
    """What keeps the cluster from serving, in words (``""`` when nothing does).

    Args:
        containers: The cluster's node containers.
        api: What the API server said, ``None`` when it did not answer.
    """
    if not containers:
        return "it has no node containers"
    stopped = [c.name for c in containers if not c.running]
    if stopped:
        return f"node container(s) {', '.join(stopped)} not running"
    if api is None or not api.version:
        return "its API server does not answer /version yet"
    for container in containers:
        if not api.ready.get(container.name, False):
            return f"node {container.name} is not Ready"
        renewed = api.renewed.get(container.name)
        if container.started is None or renewed is None or renewed <= container.started:
            return f"the kubelet of node {container.name} has not renewed its Lease since the " \
                   f"container started"
    return ""


def node_containers(docker: str, cluster: str) -> list[NodeContainer]:
    """The node containers of kind cluster ``cluster`` (``[]`` if docker cannot say)."""
    try:
        names = subprocess.run(
            [docker, "ps", "--all", "--filter", f"label={KIND_LABEL}={cluster}", "--format",
             "{{.Names}}"], capture_output=True, text=True, timeout=60, check=False)
        if names.returncode != 0 or not names.stdout.split():
            return []
        shown = subprocess.run(
            [docker, "inspect", "--format", "{{.Name}} {{.State.Running}} {{.State.StartedAt}}",
             *names.stdout.split()], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [parse_inspect_line(line) for line in shown.stdout.splitlines() if line.strip()]


def parse_inspect_line(line: str) -> NodeContainer:
    """One line of ``docker inspect --format '{{.Name}} {{.State.Running}} {{.State.StartedAt}}'``.

    Docker writes ``StartedAt`` in RFC 3339 with nanoseconds (``2026-12-07T06:17:50.919413842Z``);
    the fraction is cut to microseconds for :class:`datetime`.
    """
    name, running, started = [*line.split(), "", "", ""][:3]
    return NodeContainer(name=name.lstrip("/"), running=running == "true",
                         started=_docker_time(started))


def _docker_time(text: str) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = (rest + "000000")[:6] if rest else "000000"
    try:
        return datetime.fromisoformat(f"{head}.{fraction}+00:00")
    except ValueError:
        return None


def read_api(kubeconfig: Path) -> ApiView | None:
    """Ask the API server for its version, its nodes and their Leases (``None``: no answer)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False)
    configuration.retries = False  # the caller polls; one try per request
    api = client.ApiClient(configuration)
    try:
        version = client.VersionApi(api).get_code(_request_timeout=5).git_version or ""
        nodes = client.CoreV1Api(api).list_node(_request_timeout=5).items
        leases = client.CoordinationV1Api(api).list_namespaced_lease(
            "kube-node-lease", _request_timeout=5).items
    except Exception as err:  # refused, TLS EOF, timeouts, 5xx while it starts: not yet
        log.debug("kind API not serving yet: %s", err)
        return None
    finally:
        api.close()  # type: ignore[no-untyped-call]
    ready = {
        str(node.metadata.name): any(c.type == "Ready" and c.status == "True"
                                for c in (node.status.conditions or []))
        for node in nodes if node.metadata and node.status
    }
    renewed = {str(lease.metadata.name): lease.spec.renew_time for lease in leases
               if lease.metadata and lease.spec and isinstance(lease.spec.renew_time, datetime)}
    return ApiView(version=str(version), ready=ready, renewed=renewed)


def wait_until_serving(
    docker: str,
    cluster: str,
    kubeconfig: Path,
    progress: Progress,
    *,
    timeout: float = SERVING_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once the reused kind cluster serves (see the module docstring).

    Raises:
        ClusterError: It does not within ``timeout``; the message says what was still missing.
    """
    start = clock()
    said = False

    def read() -> str:
        nonlocal said
        gap = missing(node_containers(docker, cluster), read_api(kubeconfig))
        if gap and not said:
            progress(f"waiting for reused kind cluster {cluster} to serve: {gap}")
            said = True
        return gap

    gap = poll(read, until=lambda gap: not gap, timeout=timeout, clock=clock)
    if gap:
        raise ClusterError(
            f"kind cluster {cluster} exists but did not serve within {timeout:.0f} s: {gap}; "
            f"see `docker ps --all --filter label={KIND_LABEL}={cluster}`, start its containers "
            f"(`docker start`) or delete it (`kind delete cluster --name {cluster}`)",
            provider="kind",
        )
    if said:
        progress(f"kind cluster {cluster} serves again ({clock() - start:.1f} s)")
