"""Bring a local cluster up, report on it, inject component faults, and take it down.

The cluster's files and state are :mod:`.config`'s, its processes :mod:`.components`', the waits
for them :mod:`.readiness`' and its questions to the API server and etcd (through the Kubernetes
client) :mod:`.api`'s; :class:`LocalCluster` puts them together. Its processes run detached, so a
cluster outlives the command that started it and the next run reuses it. A lock file beside the
directory serialises ``up`` and ``down`` across processes (pytest-xdist workers, a second
terminal).

``up`` is done when the node is Ready and the ``default`` ServiceAccount exists in ``default``. If
it fails, whatever it started is torn down again and the error names the component and quotes the
end of its log (the logs stay in place).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tenacity import wait_fixed

from pytest_probes._locks import file_lock
from pytest_probes._poll import poll
from pytest_probes.binaries import k8s, runtime
from pytest_probes.cluster import Progress
from pytest_probes.cluster_settings import ClusterSettings
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import node, supervisor
from pytest_probes.providers.local.api import ClusterApi
from pytest_probes.providers.local.components import STOP_TIMEOUT, ClusterProcesses
from pytest_probes.providers.local.config import (
    COMPONENTS,
    STATE_FILE,
    ClusterPaths,
    ClusterState,
    clusters_dir,
    prepare,
    read_state,
)
from pytest_probes.providers.local.readiness import START_TIMEOUT, Stopwatch

log = logging.getLogger(__name__)

REUSE_GRACE = 30.0
"""Seconds a cluster whose processes all live may take to answer before it counts as broken."""

LOCK_TIMEOUT = k8s.BUILD_TIMEOUT + 600.0
"""Seconds to wait for another ``up``/``down`` of the same cluster (it may be building)."""

REQUIRED_TOOLS: Mapping[str, str] = {
    "ip": "iproute2",
    "iptables": "iptables",
    "mount": "mount",
}
"""Host commands the local provider needs → the Debian package that provides each."""


@dataclass(frozen=True)
class KubeletRestart:
    """The moments of a :meth:`LocalCluster.restart_kubelet`, as aware UTC wall times.

    Attributes:
        stopped: The old kubelet was gone.
        started: The new kubelet's process was started.
        reporting: The new kubelet's first Lease renewal was seen.
    """

    stopped: datetime
    started: datetime
    reporting: datetime


@dataclass(frozen=True)
class ComponentStatus:
    """One process of a cluster as ``status`` sees it."""

    name: str
    pid: int | None
    alive: bool
    log: Path
    rss_bytes: int = 0


@dataclass(frozen=True)
class ClusterStatus:
    """What runs of a cluster.

    Attributes:
        name: The cluster name.
        directory: The cluster directory.
        exists: Whether a state file exists.
        version: The version recorded in the state file ('' if none).
        components: Each process with pid, liveness and log file.
        server_version: The API server's ``gitVersion`` ('' if it did not answer).
        node_ready: Whether the node reports Ready.
        kubeconfig: The admin kubeconfig.
        shims: The pids of the containerd shims (one per pod) of the cluster's containerd.
        shims_rss_bytes: Their resident memory, summed.
        runtime: The container runtime's versions (``containerd 2.3.7, runc 1.4.4``).
    """

    name: str
    directory: Path
    exists: bool
    version: str
    components: tuple[ComponentStatus, ...]
    server_version: str
    node_ready: bool
    kubeconfig: Path
    shims: tuple[int, ...] = ()
    shims_rss_bytes: int = 0
    runtime: str = ""

    @property
    def rss_bytes(self) -> int:
        """Resident memory of the cluster's own processes (components; pods not counted)."""
        return sum(component.rss_bytes for component in self.components)

    @property
    def running(self) -> bool:
        """Whether every component is alive, the API server answers and the node is Ready."""
        return (
            self.exists
            and len(self.components) == len(COMPONENTS)
            and all(component.alive for component in self.components)
            and bool(self.server_version)
            and self.node_ready
        )

    def render(self) -> str:
        """Return a human-readable report."""
        if not self.exists:
            return f"cluster {self.name}: not created ({self.directory} has no {STATE_FILE})"
        state = "running" if self.running else "NOT healthy"
        lines = [
            f"cluster {self.name}: {state}, Kubernetes {self.server_version or 'v' + self.version}"
            f"{'' if self.server_version else ' (API server not answering)'}, "
            f"node {'Ready' if self.node_ready else 'not Ready'}",
            f"  runtime: {self.runtime or 'unknown (started by an older pytest-probes)'}",
            f"  kubeconfig: {self.kubeconfig}",
        ]
        for component in self.components:
            pid = component.pid if component.pid is not None else "-"
            alive = "alive" if component.alive else "DEAD"
            rss = f"{component.rss_bytes / 2**20:.0f} MiB" if component.alive else "-"
            lines.append(
                f"  {component.name:<24} pid {pid!s:<8} {alive:<5} rss {rss:<8} log {component.log}"
            )
        lines.append(
            f"  {'containerd shims':<24} {len(self.shims)} (one per pod), "
            f"rss {self.shims_rss_bytes / 2**20:.0f} MiB"
        )
        lines.append(
            f"  total resident memory: {self.rss_bytes / 2**20:.0f} MiB "
            f"(+ {self.shims_rss_bytes / 2**20:.0f} MiB shims, pods not counted)"
        )
        return "\n".join(lines)


class LocalCluster:
    """One named local cluster in a cache directory.

    Args:
        name: The cluster name (letters, digits, ``-``; at most 40 characters).
        cache_dir: The pytest-probes cache directory.
    """

    def __init__(self, name: str, cache_dir: Path) -> None:
        if not name or len(name) > 40 or not all(c.isalnum() or c == "-" for c in name):
            raise ClusterError(
                f"invalid cluster name {name!r}: use letters, digits and '-', at most 40 "
                "characters",
                provider="local",
            )
        self.name = name
        self.cache_dir = cache_dir
        self.paths = ClusterPaths(clusters_dir(cache_dir) / name)
        self._api = ClusterApi(name, self.paths)
        self._processes = ClusterProcesses(name, cache_dir, self.paths, self._api)

    # ------------------------------------------------------------------ state

    def read_state(self) -> ClusterState | None:
        """Return the recorded state, or ``None`` if there is none (or it is unreadable)."""
        return read_state(self.paths)

    @contextmanager
    def _locked(self, progress: Progress) -> Iterator[None]:
        with file_lock(
            self.paths.lock_file,
            timeout=LOCK_TIMEOUT,
            progress=progress,
            waiting=lambda waited: f"waiting for another process working on cluster "
            f"{self.name} ({waited:.0f}s)",
            held_too_long=f"another process has held the lock of cluster {self.name} for over "
            f"{LOCK_TIMEOUT:.0f} s",
        ):
            yield

    def _other_kubelets_running(self) -> bool:
        return self._processes.other_kubelets_running()

    # ------------------------------------------------------------------ API

    def api_get(self, state: ClusterState, path: str, *, timeout: float = 5.0,
                method: str = "GET", body: Mapping[str, Any] | None = None) -> Any:
        """Send a request to the API server as admin (:meth:`.api.ClusterApi.request`)."""
        return self._api.request(state, path, timeout=timeout, method=method, body=body)

    def server_version(self, state: ClusterState) -> str:
        """Return the API server's ``gitVersion`` ('' if it does not answer)."""
        return self._api.server_version(state)

    def node_ready(self, state: ClusterState) -> bool:
        """Return whether the node reports the Ready condition True."""
        return self._api.node_ready(state)

    # ------------------------------------------------------------------ status

    def status(self) -> ClusterStatus:
        """Report which processes run and whether the cluster answers."""
        state = self.read_state()
        if state is None:
            return ClusterStatus(
                self.name, self.paths.root, False, "", (), "", False, self.paths.kubeconfig
            )
        components = []
        for name in COMPONENTS:
            record = state.processes.get(name) or supervisor.read_pid_file(
                self.paths.pid_file(name)
            )
            alive = record is not None and supervisor.is_alive(record)
            components.append(
                ComponentStatus(
                    name=name,
                    pid=record.pid if record else None,
                    alive=alive,
                    log=self.paths.log(name),
                    rss_bytes=supervisor.rss_bytes(record.pid) if record and alive else 0,
                )
            )
        version = self.server_version(state)
        shims = tuple(node.shim_pids(Path(state.socket)))
        return ClusterStatus(
            name=self.name,
            directory=self.paths.root,
            exists=True,
            version=state.version,
            components=tuple(components),
            server_version=version,
            node_ready=bool(version) and self.node_ready(state),
            kubeconfig=self.paths.kubeconfig,
            shims=shims,
            shims_rss_bytes=sum(supervisor.rss_bytes(pid) for pid in shims),
            runtime=state.runtime,
        )

    # ------------------------------------------------------------------ up

    def up(
        self,
        requested_version: str | None,
        progress: Progress,
        *,
        timeout: float = START_TIMEOUT,
        settings: ClusterSettings | None = None,
    ) -> tuple[ClusterState, bool]:
        """Reuse the running cluster of this name, or create it.

        Args:
            requested_version: The Kubernetes version asked for (``None``: reuse whatever runs,
                create the default version).
            progress: Receives progress lines.
            timeout: Seconds each start-up stage may take.
            settings: Feature gates and kubelet settings (a test's configured cluster); a
                running cluster is reused only if it was set up with the same.

        Returns:
            The cluster state and whether this call created the cluster.

        Raises:
            ClusterError: A different version runs under this name, the host lacks something,
                a build failed, or a component did not come up in time.
        """
        watch = Stopwatch(progress)
        version = k8s.resolve_version(requested_version)
        settings = settings or ClusterSettings()
        with self._locked(progress):
            state = self.read_state()
            if state is not None:
                current = self._settled_status(timeout=REUSE_GRACE)
                if current.running:
                    if requested_version is not None:
                        wanted = version
                        if wanted != state.version:
                            raise ClusterError(
                                f"cluster {self.name} runs Kubernetes v{state.version}, but "
                                f"v{wanted} was asked for: run `pytest-probes cluster down "
                                f"--name {self.name}` first, or pick another cluster name",
                                provider="local",
                            )
                    if state.settings != settings:
                        raise ClusterError(
                            f"cluster {self.name} runs with {state.settings.describe()}, but "
                            f"{settings.describe()} was asked for: run `pytest-probes cluster "
                            f"down --name {self.name}` first, or pick another cluster name",
                            provider="local",
                        )
                    self._processes.check_started_alike(state)
                    watch.say(f"reusing running cluster {self.name} (v{state.version})")
                    return state, False
                watch.say(f"cluster {self.name} is not healthy; removing its remains")
                self._processes.teardown(state, progress, remove=True)
            elif self.paths.root.exists():
                self._processes.teardown(None, progress, remove=True)
            _preflight()
            engine = runtime.ensure_runtime(self.cache_dir, progress)
            bins = k8s.ensure_binaries(version, self.cache_dir, progress)
            pause_ref = _ensure_pause_archive(self.cache_dir, progress)
            state = prepare(self.paths, self.name, self.cache_dir, version, pause_ref[0], engine,
                            settings)
            try:
                self._processes.start_all(state, bins, engine, pause_ref, watch, timeout)
            except BaseException as error:
                log.info("cluster %s failed to start; tearing it down", self.name)
                try:
                    self._processes.teardown(self.read_state() or state, progress, remove=False)
                except ClusterError as cleanup_error:
                    log.warning("cleanup after failed start: %s", cleanup_error)
                if isinstance(error, ClusterError):
                    raise
                if isinstance(error, Exception):
                    raise ClusterError(
                        f"starting cluster {self.name} failed: {error}; logs in {self.paths.logs}",
                        provider="local",
                    ) from error
                raise
            took = watch.elapsed()
            log.info("local cluster %s (v%s) up in %.1f s", self.name, version, took)
            watch.say(f"cluster {self.name} is up: node {state.node_name} Ready")
            return state, True

    def _settled_status(self, *, timeout: float) -> ClusterStatus:
        """Return the status; while every process lives but it is not healthy, wait a while.

        A loaded machine can delay the API server or the node's status for a moment; a cluster
        is only declared broken when a process is gone or it stays unhealthy for ``timeout``.
        """

        def settled(current: ClusterStatus) -> bool:
            everyone_alive = len(current.components) == len(COMPONENTS) and all(
                component.alive for component in current.components
            )
            return current.running or not everyone_alive

        return poll(self.status, until=settled, timeout=timeout, wait=wait_fixed(1.0))

    def _wait(self, state: ClusterState, component: str, condition: Callable[[], bool],
              timeout: float, *, what: str = "") -> None:
        self._processes.wait(state, component, condition, timeout, what=what)

    # ------------------------------------------------------------------ faults

    def stop_component(
        self, component: str, *, timeout: float = STOP_TIMEOUT, kill: bool = False
    ) -> None:
        """Stop one running component of the cluster, to inject a fault (e.g. an API outage).

        The cluster's state keeps the component's command line, so :meth:`start_component` can
        bring it back exactly as it was. Prefer :meth:`component_stopped`, which also keeps other
        runs from rebuilding the cluster meanwhile. Stopping ``etcd`` or ``containerd`` works too,
        but the components that depend on them keep failing until they return.

        Args:
            component: One of :data:`COMPONENTS`.
            timeout: Seconds it gets to exit after SIGTERM before it is killed.
            kill: Send SIGKILL at once (a crash) instead of SIGTERM (a graceful stop, which
                for kube-apiserver takes a few seconds).

        Raises:
            ClusterError: The cluster or the component is unknown or not running.
        """
        self._processes.stop(component, timeout=timeout, kill=kill)

    def start_component(self, component: str, *, timeout: float = START_TIMEOUT) -> None:
        """Start a component :meth:`stop_component` stopped, with its recorded command line.

        Returns once it is running again; for ``kube-apiserver``, once it answers ``/readyz``.

        Args:
            component: One of :data:`COMPONENTS`.
            timeout: Seconds to wait for it to get ready.

        Raises:
            ClusterError: The component is already running, exits at once or does not get ready.
        """
        self._processes.start(component, timeout)

    @contextmanager
    def component_stopped(
        self, component: str, *, kill: bool = False, progress: Progress = lambda line: None
    ) -> Iterator[None]:
        """Keep one component stopped for the duration of the ``with`` block, then restart it.

        Holds the cluster's lock meanwhile, so another run's ``up`` waits instead of taking the
        outage for a broken cluster and rebuilding it.

        Args:
            component: One of :data:`COMPONENTS`.
            kill: Stop it with SIGKILL (a crash) instead of SIGTERM.
            progress: Receives progress lines while waiting for the lock.
        """
        with self._locked(progress):
            self.stop_component(component, kill=kill)
            try:
                yield
            finally:
                state = self._processes.start(component, START_TIMEOUT)
                # The controllers back off while the API is away; the next test needs them.
                self._wait(state, "kube-controller-manager",
                           lambda: self._api.controllers_work(state), START_TIMEOUT,
                           what="a new namespace to get its default ServiceAccount")

    def restart_kubelet(
        self, *, timeout: float = START_TIMEOUT, progress: Progress = lambda line: None
    ) -> KubeletRestart:
        """Restart the node's kubelet cleanly, as a node upgrade or a config change does.

        The kubelet gets SIGTERM and exits (its containers keep running under containerd); it is
        started again with its recorded command line, and this returns once it has renewed the
        node's Lease (its heartbeat) after the old one was gone. Holds the
        cluster's lock meanwhile, so another run's ``up`` waits instead of rebuilding the
        cluster. What a restart does to running pods differs by version
        (:func:`pytest_probes.kubelet_versions.kubelet_restart_resets_probe_status`).

        Args:
            timeout: Seconds the new kubelet may take to renew the node's Lease.
            progress: Receives progress lines while waiting for the lock.

        Returns:
            When the old kubelet was gone, the new one started, and its first Lease renewal was
            seen.

        Raises:
            ClusterError: The cluster has no running kubelet, or the new one exits or does not
                report in time.
        """
        with self._locked(progress):
            self.stop_component("kubelet")
            stopped = datetime.now(UTC)
            state = self._processes.start("kubelet", timeout)
            started = datetime.now(UTC)

            def reported() -> bool:
                # Not the node status's lastHeartbeatTime: whole seconds, so a first status in
                # the second the old kubelet stopped looks old, and the next comes minutes later.
                renewed = self._api.node_lease_renewed(state)
                return renewed is not None and renewed > stopped

            self._wait(state, "kubelet", reported, timeout,
                       what=f"node {state.node_name} to renew its Lease after the restart")
            serving = datetime.now(UTC)
        log.info("cluster %s: kubelet restarted, reporting %.1f s after it stopped", self.name,
                 (serving - stopped).total_seconds())
        return KubeletRestart(stopped=stopped, started=started, reporting=serving)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision and return that revision.

        Every resourceVersion older than it becomes too old to watch from: a client resuming
        from one gets ``410 Gone`` (at once from etcd, or from the API server's watch cache
        once it is rebuilt, e.g. after a restart) and has to list again.

        Raises:
            ClusterError: etcd does not answer.
        """
        return self._api.compact_etcd(self.read_state())

    # ------------------------------------------------------------------ down

    def down(self, progress: Progress) -> None:
        """Stop every process and remove every trace of the cluster, its directory included.

        Raises:
            ClusterError: Something could not be removed (each leftover is named).
        """
        watch = Stopwatch(progress)
        if not self.paths.root.exists() and not self.paths.lock_file.exists():
            # Nothing to lock against: no run has worked on this cluster (and none leaves a lock
            # file behind for a name that was never used).
            watch.say(f"cluster {self.name} does not exist; nothing to do")
            return
        with self._locked(progress):
            state = self.read_state()
            if state is None and not self.paths.root.exists():
                watch.say(f"cluster {self.name} does not exist; nothing to do")
                return
            self._processes.teardown(state, progress, remove=True)
            log.info("local cluster %s down in %.1f s", self.name, watch.elapsed())
            watch.say(f"cluster {self.name} deleted")


def _preflight() -> None:
    """Check the host can run a local cluster; fail naming what to install."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise ClusterError(
            "the local provider runs Kubernetes as host processes and needs root on Linux; "
            "run as root, or use --probes-provider kind or existing",
            provider="local",
        )
    missing = sorted(
        {
            f"{tool} (apt-get install {pkg})"
            for tool, pkg in REQUIRED_TOOLS.items()
            if shutil.which(tool) is None
        }
    )
    if missing:
        raise ClusterError(
            "the local provider needs these on the host: " + "; ".join(missing),
            provider="local",
        )


def _ensure_pause_archive(cache_dir: Path, progress: Progress) -> tuple[str, Path]:
    from pytest_probes import images

    built = images.build_pause_image(cache_dir, progress)
    return built.ref, Path(built.archive)
