"""Bring a local cluster up, report on it, and take it down.

A cluster is a directory, ``<cache_dir>/clusters/<name>/``, holding its state file
(``cluster.json``: name, version, ports, pod network, processes, creation time), its PKI, configs,
logs, data and the admin ``kubeconfig``. Its processes run detached, so a cluster outlives the
command that started it and the next run reuses it. A lock file beside the directory serialises
``up`` and ``down`` across processes (pytest-xdist workers, a second terminal).

``up`` is done when the node is Ready and the ``default`` ServiceAccount exists in ``default``. If
it fails, whatever it started is torn down again and the error names the component and quotes the
end of its log (the logs stay in place).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import build, controlplane, node, runtime, supervisor
from pytest_probes.providers.local.controlplane import Ports
from pytest_probes.providers.local.locks import file_lock
from pytest_probes.providers.local.node import PodNetwork

if TYPE_CHECKING:
    # Imported where used: it needs cryptography (the local extra), and the kind and existing
    # providers import this module too.
    from pytest_probes.providers.local import pki

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
COMPONENTS = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
)
"""Every process of a cluster, in start order."""

START_TIMEOUT = 90.0
"""Seconds each start-up stage (a component answering, the node turning Ready) may take."""

CNI_CONFIG_FILE = "10-pytest-probes.conflist"
"""The cluster's CNI network config, in ``<cluster>/etc/cni``."""

CLUSTER_PROGRAMS = frozenset({*COMPONENTS, "runc"})
"""Program names that belong to a cluster when their command line names its directory."""

STOP_ORDER = (
    ("kube-controller-manager", "kube-scheduler", "kube-apiserver", "containerd"),
    ("etcd",),
)
"""How ``down`` stops the daemons after the kubelet: each group together, group after group."""

VANISH_TIMEOUT = 15.0
"""Seconds ``down`` waits, after killing, until no process of the cluster is listed any more (not
even as a zombie the host's init has yet to reap)."""

STOP_TIMEOUT = 3.0
"""Seconds a component gets to exit after SIGTERM before it is killed (its data is thrown away
anyway, so there is nothing to shut down gracefully for)."""

CLUSTER_NICENESS: Mapping[str, int] = {
    "containerd": -10,
    "kubelet": -10,
    "etcd": -5,
    "kube-apiserver": -5,
    "kube-controller-manager": -5,
    "kube-scheduler": -5,
}
"""The niceness each process of the cluster runs at (containerd's shims inherit containerd's).

A real node reserves CPU for the kubelet and the runtime (``kubeReserved``/``systemReserved``)
and runs no control plane and no test run beside them. Here all share 2 cores, and what the
tests time is the node's work: probes, kills, container starts, the apps' answers. So the node
agents and the pods come first, the control plane next (a freshly started kube-apiserver
serving 16 workers' lists and watches took over half a core), and the test run's xdist workers
(3-5 s of CPU each while the suite starts) take what is left. At niceness 0 they delayed
container starts and the apps' first answers by up to 11 s on a 2-core machine, so timings
measured the harness rather than Kubernetes."""

PODS_NICENESS = -10
"""The pods' tier: their cgroup tree weighs as much as one process at this niceness.

The pods' own niceness counts only inside their cgroup. Against the kubelet, containerd, the
control plane and the test run, the scheduler weighs the tree as one task at its ``cpu.shares``,
by default that of niceness 0: 40 apps starting at once then shared the CPU of one worker, and
took a median 19 s from their container's start to their first answer (``benchmarks/burst.py``,
40 pods beside 8 busy processes); with the kubelet's weight, 1.5 s."""

REUSE_GRACE = 30.0
"""Seconds a cluster whose processes all live may take to answer before it counts as broken."""

LOCK_TIMEOUT = build.BUILD_TIMEOUT + 600.0
"""Seconds to wait for another ``up``/``down`` of the same cluster (it may be building)."""

REQUIRED_TOOLS: Mapping[str, str] = {
    "ip": "iproute2",
    "iptables": "iptables",
    "mount": "mount",
}
"""Host commands the local provider needs → the Debian package that provides each."""

POD_RESOLV_CONF = (
    "# pytest-probes: no cluster DNS. Lookups go to the pod's own loopback and fail at once;\n"
    "# with no nameserver here containerd would hand pods the host's resolv.conf.\n"
    "nameserver 127.0.0.1\n"
    "options ndots:1 timeout:1 attempts:1\n"
)
"""The resolv.conf pods get: no DNS traffic leaves the machine."""

GO_ENV: Mapping[str, Mapping[str, str]] = {
    "etcd": {"GOGC": "50"},
    "kube-apiserver": {"GOGC": "50"},
    "kube-controller-manager": {"GOGC": "50"},
    "kube-scheduler": {"GOGC": "50"},
    "kubelet": {"GOGC": "50"},
}
"""Extra environment per component: a lower GOGC trades a little CPU for less resident memory."""


def clusters_dir(cache_dir: Path) -> Path:
    """Return the directory holding every local cluster of a cache directory."""
    return cache_dir / "clusters"


@dataclass(frozen=True)
class ClusterPaths:
    """Where the files of one local cluster live."""

    root: Path

    @property
    def state_file(self) -> Path:
        """The state file (``cluster.json``)."""
        return self.root / STATE_FILE

    @property
    def lock_file(self) -> Path:
        """The lock serialising up/down (beside the directory, so removing it is safe)."""
        return self.root.with_name(f".{self.root.name}.lock")

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig."""
        return self.root / "kubeconfig"

    @property
    def pki(self) -> pki.PkiPaths:
        """The PKI files."""
        from pytest_probes.providers.local import pki

        return pki.PkiPaths(self.root / "pki")

    @property
    def etc(self) -> Path:
        """Generated configuration files."""
        return self.root / "etc"

    @property
    def logs(self) -> Path:
        """Component logs."""
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files and sockets."""
        return self.root / "run"

    @property
    def data(self) -> Path:
        """Persistent data: etcd, containerd root, kubelet root, pod logs."""
        return self.root / "data"

    @property
    def containerd_state(self) -> Path:
        """Containerd's state directory (tasks, rootfs mounts, network namespaces)."""
        return self.root / "state" / "containerd"

    @property
    def socket(self) -> Path:
        """Containerd's socket (under ``/run`` if the cluster directory's path is too long)."""
        path = self.run / "containerd.sock"
        if len(str(path)) + len(".ttrpc") < 100:
            return path
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/run/pytest-probes") / f"{self.root.name[:20]}-{digest}" / "c.sock"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's ``--root-dir``."""
        return self.data / "kubelet"

    @property
    def pod_logs(self) -> Path:
        """Where container logs go."""
        return self.data / "pod-logs"

    def log(self, component: str) -> Path:
        """Return the log file of a component."""
        return self.logs / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        """Return the pid file of a component."""
        return self.run / f"{component}.pid"

    def component_kubeconfig(self, component: str) -> Path:
        """Return the kubeconfig of a component."""
        return self.etc / f"{component}.kubeconfig"


@dataclass
class ClusterState:
    """What ``cluster.json`` records about a cluster."""

    name: str
    version: str
    created: str
    ports: Ports
    network: PodNetwork
    node_name: str
    snapshotter: str
    socket: str
    cache_dir: str
    processes: dict[str, supervisor.ProcessRecord] = field(default_factory=dict)
    runtime: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the state as a JSON-serialisable dict."""
        return {
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "ports": self.ports.as_dict(),
            "pod_subnet_octet": self.network.octet,
            "pod_subnet": self.network.subnet,
            "bridge": self.network.bridge,
            "node_name": self.node_name,
            "snapshotter": self.snapshotter,
            "socket": self.socket,
            "cache_dir": self.cache_dir,
            "processes": {name: rec.to_json() for name, rec in self.processes.items()},
            "runtime": self.runtime,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterState:
        """Read a state written by :meth:`to_json`.

        Raises:
            ValueError: The data is not a state file.
        """
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                created=str(data["created"]),
                ports=Ports(**{key: int(value) for key, value in data["ports"].items()}),
                network=PodNetwork(int(data["pod_subnet_octet"])),
                node_name=str(data["node_name"]),
                snapshotter=str(data["snapshotter"]),
                socket=str(data["socket"]),
                cache_dir=str(data["cache_dir"]),
                processes={
                    name: supervisor.ProcessRecord.from_json(rec)
                    for name, rec in dict(data.get("processes", {})).items()
                },
                runtime=str(data.get("runtime", "")),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a cluster state: {error}") from error


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


class _Stopwatch:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, what: str) -> None:
        self._progress(f"{what} ({self.elapsed():.1f}s)")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


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

    # ------------------------------------------------------------------ state

    @property
    def _sysctl_record(self) -> Path:
        """The host's kernel settings from before the first cluster's kubelet changed them."""
        return clusters_dir(self.cache_dir) / ".host-sysctl.json"

    def _other_kubelets_running(self) -> bool:
        for state_file in clusters_dir(self.cache_dir).glob(f"*/{STATE_FILE}"):
            if state_file.parent.name == self.name:
                continue
            try:
                record = json.loads(state_file.read_text())["processes"]["kubelet"]
                if supervisor.is_alive(supervisor.ProcessRecord.from_json(record)):
                    return True
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return False

    def read_state(self) -> ClusterState | None:
        """Return the recorded state, or ``None`` if there is none (or it is unreadable)."""
        try:
            return ClusterState.from_json(json.loads(self.paths.state_file.read_text()))
        except (OSError, ValueError):
            return None

    def _write_state(self, state: ClusterState) -> None:
        tmp = self.paths.state_file.with_name(f".{STATE_FILE}.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2))
        os.replace(tmp, self.paths.state_file)

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

    # ------------------------------------------------------------------ HTTP

    def _ssl_context(self) -> ssl.SSLContext:
        paths = self.paths.pki
        context = ssl.create_default_context(cafile=str(paths.ca_cert))
        context.load_cert_chain(str(paths.cert("admin")), str(paths.key("admin")))
        return context

    def _etcd_ssl_context(self) -> ssl.SSLContext:
        """TLS to etcd as the API server's etcd client (etcd's own CA, a client certificate)."""
        paths = self.paths.pki
        context = ssl.create_default_context(cafile=str(paths.etcd_ca_cert))
        context.load_cert_chain(str(paths.cert("etcd-apiserver-client")),
                                str(paths.key("etcd-apiserver-client")))
        return context

    def _etcd_healthy(self, state: ClusterState) -> bool:
        return _http_ok(f"{controlplane.etcd_url(state.ports)}/health", self._etcd_ssl_context())

    def api_get(
        self,
        state: ClusterState,
        path: str,
        *,
        timeout: float = 5.0,
        method: str = "GET",
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a request (GET by default) to the API server as admin; return the decoded JSON.

        Raises:
            OSError: The request failed (connection refused, TLS, HTTP error status).
        """
        url = f"https://127.0.0.1:{state.ports.apiserver}{path}"
        request = urllib.request.Request(
            url, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context()) as reply:
            body_bytes = reply.read()
        return json.loads(body_bytes) if body_bytes[:1] in (b"{", b"[") else body_bytes.decode()


    def server_version(self, state: ClusterState) -> str:
        """Return the API server's ``gitVersion`` ('' if it does not answer)."""
        try:
            return str(self.api_get(state, "/version", timeout=3.0).get("gitVersion", ""))
        except (OSError, ValueError, AttributeError):
            return ""

    def node_ready(self, state: ClusterState) -> bool:
        """Return whether the node reports the Ready condition True."""
        try:
            node_obj = self.api_get(state, f"/api/v1/nodes/{state.node_name}", timeout=3.0)
        except (OSError, ValueError):
            return False
        conditions = node_obj.get("status", {}).get("conditions", []) or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

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
    ) -> tuple[ClusterState, bool]:
        """Reuse the running cluster of this name, or create it.

        Args:
            requested_version: The Kubernetes version asked for (``None``: reuse whatever runs,
                create the default version).
            progress: Receives progress lines.
            timeout: Seconds each start-up stage may take.

        Returns:
            The cluster state and whether this call created the cluster.

        Raises:
            ClusterError: A different version runs under this name, the host lacks something,
                a build failed, or a component did not come up in time.
        """
        watch = _Stopwatch(progress)
        version = build.resolve_version(requested_version)
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
                    self._check_started_alike(state)
                    watch.say(f"reusing running cluster {self.name} (v{state.version})")
                    return state, False
                watch.say(f"cluster {self.name} is not healthy; removing its remains")
                self._teardown(state, progress, remove=True)
            elif self.paths.root.exists():
                self._teardown(None, progress, remove=True)
            _preflight()
            engine = runtime.ensure_runtime(self.cache_dir, progress)
            bins = build.ensure_binaries(version, self.cache_dir, progress)
            pause_ref = _ensure_pause_archive(self.cache_dir, progress)
            state = self._prepare(version, pause_ref[0], engine)
            try:
                self._start(state, bins, engine, pause_ref, watch, timeout)
            except BaseException as error:
                log.info("cluster %s failed to start; tearing it down", self.name)
                try:
                    self._teardown(self.read_state() or state, progress, remove=False)
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

    def _kubelet_command(self, state: ClusterState, kubelet: Path) -> list[str]:
        paths = self.paths
        return node.kubelet_command(
            kubelet,
            config=paths.etc / "kubelet.yaml",
            kubeconfig=paths.component_kubeconfig("kubelet"),
            root_dir=paths.kubelet_root,
            node_name=state.node_name,
            node_ip=state.network.gateway,
        )

    def _check_started_alike(self, state: ClusterState) -> None:
        """Refuse a running cluster that another pytest-probes version started.

        The kubelet's flags decide behaviour the tests time (:data:`node.DEAD_INSTANCES_KEPT`),
        and the runtime decides how probes run (containerd 1.6 cancelled exec probes of a
        terminating pod).

        Raises:
            ClusterError: The kubelet runs with other flags, or containerd is another build.
        """
        containerd = state.processes.get("containerd")
        wanted_containerd = runtime.runtime_bins(self.cache_dir).containerd
        if containerd is not None and Path(containerd.argv[0]) != wanted_containerd:
            raise ClusterError(
                f"cluster {self.name} was started by another version of pytest-probes: it runs "
                f"{containerd.argv[0]}, not {wanted_containerd} ({runtime.describe()}): run "
                f"`pytest-probes cluster down --name {self.name}` first, or pick another "
                "cluster name",
                provider="local",
            )
        commands: dict[str, Callable[[Path], list[str]]] = {
            "kubelet": lambda binary: self._kubelet_command(state, binary),
            # etcd's TLS and the API server's --anonymous-auth=false close a path to root.
            "etcd": lambda binary: controlplane.etcd_command(
                binary, data_dir=self.paths.data / "etcd", ports=state.ports,
                pki=self.paths.pki),
            "kube-apiserver": lambda binary: controlplane.apiserver_command(
                binary, pki=self.paths.pki, ports=state.ports,
                advertise_address=state.network.gateway),
        }
        for component, command in commands.items():
            recorded = state.processes.get(component)
            if recorded is None:
                continue
            wanted = command(Path(recorded.argv[0]))
            if list(recorded.argv) != wanted:
                differ = sorted(set(wanted).symmetric_difference(recorded.argv))
                raise ClusterError(
                    f"cluster {self.name} was started by another version of pytest-probes: its "
                    f"{component} runs with other flags ({' '.join(differ)}): run `pytest-probes "
                    f"cluster down --name {self.name}` first, or pick another cluster name",
                    provider="local",
                )

    def _settled_status(self, *, timeout: float) -> ClusterStatus:
        """Return the status; while every process lives but it is not healthy, wait a while.

        A loaded machine can delay the API server or the node's status for a moment; a cluster
        is only declared broken when a process is gone or it stays unhealthy for ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            current = self.status()
            everyone_alive = len(current.components) == len(COMPONENTS) and all(
                component.alive for component in current.components
            )
            if current.running or not everyone_alive or time.monotonic() >= deadline:
                return current
            time.sleep(1.0)

    def _prepare(
        self, version: str, pause_ref: str, engine: runtime.RuntimeBins
    ) -> ClusterState:
        from pytest_probes.providers.local import pki

        paths = self.paths
        if paths.root.exists():
            shutil.rmtree(paths.root)
        for directory in (paths.etc, paths.logs, paths.run, paths.data, paths.containerd_state):
            directory.mkdir(parents=True, exist_ok=True)
        paths.root.chmod(0o700)
        taken = _octets_of_other_clusters(clusters_dir(self.cache_dir), self.name)
        network = node.choose_pod_network(taken, node.used_networks())
        ports = Ports(*_free_ports(7))
        node_name = f"{self.name}-node"
        state = ClusterState(
            name=self.name,
            version=version,
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            ports=ports,
            network=network,
            node_name=node_name,
            snapshotter="overlayfs" if node.overlay_works(paths.data / "tmp") else "native",
            socket=str(paths.socket),
            cache_dir=str(self.cache_dir),
            runtime=runtime.installed_versions(engine),
        )
        self._write_state(state)
        server = f"https://127.0.0.1:{ports.apiserver}"
        certs = pki.generate(
            paths.pki.directory,
            node_name=node_name,
            node_ip=network.gateway,
            service_ip=controlplane.SERVICE_IP,
            cluster_name=self.name,
        )
        pki.write_kubeconfig(
            paths.kubeconfig, certs, "admin", server=server, cluster_name=f"probes-{self.name}"
        )
        for component in ("controller-manager", "scheduler", "kubelet"):
            pki.write_kubeconfig(
                paths.component_kubeconfig(component),
                certs,
                component,
                server=server,
                cluster_name=f"probes-{self.name}",
            )
        Path(state.socket).parent.mkdir(parents=True, exist_ok=True)
        cni_dir = paths.etc / "cni"
        cni_dir.mkdir(exist_ok=True)
        (cni_dir / CNI_CONFIG_FILE).write_text(
            json.dumps(
                node.render_cni_config(
                    network, name=node.cluster_network_name(self.name), ipam_dir=paths.data / "ipam"
                ),
                indent=2,
            )
        )
        (paths.etc / "containerd.toml").write_text(
            node.render_containerd_config(
                root=paths.data / "containerd",
                state=paths.containerd_state,
                socket=Path(state.socket),
                cni_conf_dir=cni_dir,
                sandbox_image=pause_ref,
                snapshotter=state.snapshotter,
                cni_bin_dir=engine.cni_dir,
                runc=engine.runc,
                shim_sockets=node.shim_socket_dir(paths.root),
            )
        )
        (paths.etc / "resolv.conf").write_text(POD_RESOLV_CONF)
        node.write_yaml(
            paths.etc / "kubelet.yaml",
            node.render_kubelet_config(
                address=network.gateway,
                port=ports.kubelet,
                healthz_port=ports.kubelet_healthz,
                ca_file=certs.ca_cert,
                tls_cert=certs.cert("kubelet-serving"),
                tls_key=certs.key("kubelet-serving"),
                runtime_socket=Path(state.socket),
                resolv_conf=paths.etc / "resolv.conf",
                cgroup_root=node.cgroup_root_name(self.name),
                pod_logs_dir=paths.pod_logs,
                volume_plugin_dir=paths.data / "volume-plugins",
            ),
        )
        return state

    def _start_process(
        self, state: ClusterState, name: str, argv: list[str], env_extra: Mapping[str, str] = {}
    ) -> supervisor.ProcessRecord:
        env = dict(os.environ)
        env.update(env_extra)
        record = supervisor.start(
            name,
            argv,
            log_path=self.paths.log(name),
            pid_path=self.paths.pid_file(name),
            env=env,
            cwd=self.paths.root,
            nice=CLUSTER_NICENESS.get(name, 0),
        )
        state.processes[name] = record
        self._write_state(state)
        return record

    def _start(
        self,
        state: ClusterState,
        bins: Path,
        engine: runtime.RuntimeBins,
        pause: tuple[str, Path],
        watch: _Stopwatch,
        timeout: float,
    ) -> None:
        paths = self.paths
        node.create_bridge(state.network)
        node.allow_pod_traffic(state.network, self.name)
        node.create_cgroup_root(node.cgroup_root_name(self.name), cpu_nice=PODS_NICENESS)
        watch.say("starting containerd and etcd")
        self._start_process(
            state,
            "containerd",
            node.containerd_command(str(engine.containerd), config=paths.etc / "containerd.toml"),
            # containerd starts its shim, and the shim runc, from PATH.
            {"PATH": os.pathsep.join([engine.search_path, os.environ.get("PATH", "")])},
        )
        self._start_process(
            state,
            "etcd",
            controlplane.etcd_command(
                bins / "etcd", data_dir=paths.data / "etcd", ports=state.ports, pki=paths.pki
            ),
            GO_ENV["etcd"],
        )
        self._wait(state, "containerd", lambda: _unix_socket_answers(Path(state.socket)), timeout)
        self._wait(state, "etcd", lambda: self._etcd_healthy(state), timeout)
        watch.say("starting kube-apiserver")
        self._start_process(
            state,
            "kube-apiserver",
            controlplane.apiserver_command(
                bins / "kube-apiserver",
                pki=paths.pki,
                ports=state.ports,
                advertise_address=state.network.gateway,
            ),
            GO_ENV["kube-apiserver"],
        )
        self._import_pause(state, pause, engine.ctr)
        node.save_host_sysctls(self._sysctl_record)
        self._start_process(state, "kubelet", self._kubelet_command(state, bins / "kubelet"),
                            GO_ENV["kubelet"])
        self._wait(state, "kube-apiserver", lambda: self._apiserver_ready(state), timeout)
        watch.say("kube-apiserver ready; starting controller manager and scheduler")
        self._start_process(
            state,
            "kube-controller-manager",
            controlplane.controller_manager_command(
                bins / "kube-controller-manager",
                pki=paths.pki,
                kubeconfig=paths.component_kubeconfig("controller-manager"),
                ports=state.ports,
                cluster_name=self.name,
            ),
            GO_ENV["kube-controller-manager"],
        )
        self._start_process(
            state,
            "kube-scheduler",
            controlplane.scheduler_command(
                bins / "kube-scheduler",
                kubeconfig=paths.component_kubeconfig("scheduler"),
                ports=state.ports,
            ),
            GO_ENV["kube-scheduler"],
        )
        self._wait(
            state,
            "kubelet",
            lambda: self.node_ready(state),
            timeout,
            what=f"node {state.node_name} to become Ready",
        )
        watch.say(f"node {state.node_name} Ready")
        self._wait(
            state,
            "kube-controller-manager",
            lambda: self._default_sa_exists(state),
            timeout,
            what="the default ServiceAccount in namespace default",
        )
        version = self.server_version(state)
        if version != f"v{state.version}":
            raise ClusterError(
                f"cluster {self.name}: expected the API server to report v{state.version}, "
                f"it reports {version!r}; rebuild with `rm -r {bins}`",
                provider="local",
            )

    def _import_pause(self, state: ClusterState, pause: tuple[str, Path], ctr: Path) -> None:
        from pytest_probes.providers.local import images

        ref, archive = pause
        if not images.image_present(ref, address=state.socket, namespace="k8s.io", ctr=str(ctr)):
            images.import_archive(
                archive, address=state.socket, namespace="k8s.io", snapshotter=state.snapshotter,
                ctr=str(ctr),
            )

    def _apiserver_ready(self, state: ClusterState) -> bool:
        try:
            return bool(self.api_get(state, "/readyz", timeout=2.0) == "ok")
        except (OSError, ValueError):
            return False

    def _default_sa_exists(self, state: ClusterState, namespace: str = "default") -> bool:
        try:
            self.api_get(state, f"/api/v1/namespaces/{namespace}/serviceaccounts/default",
                         timeout=2.0)
        except (OSError, ValueError):
            return False
        return True

    def _wait(
        self,
        state: ClusterState,
        component: str,
        condition: Callable[[], bool],
        timeout: float,
        *,
        what: str = "",
    ) -> None:
        """Poll ``condition`` until it holds.

        Fails at once when any started process exits (naming that one), and after ``timeout``
        naming ``component``, the one expected to make the condition true.
        """

        def attempt() -> bool:
            if condition():
                return True
            for name, record in state.processes.items():
                if not supervisor.is_alive(record):
                    raise self._component_error(name, "exited during start-up")
            return False

        # No watch exists before the API server answers, so this is a poll: tenacity retries
        # while the condition is false (an exception ends it at once), backing off 50 ms → 0.5 s.
        done = Retrying(
            retry=retry_if_result(lambda ok: ok is False),
            stop=stop_after_delay(timeout),
            wait=wait_exponential(multiplier=0.05, exp_base=1.5, max=0.5),
            retry_error_callback=lambda _state: False,
        )(attempt)
        if not done:
            goal = what or f"{component} to get ready"
            raise self._component_error(
                component, f"did not make it: waited {timeout:.0f} s for {goal}"
            )

    def _component_error(self, component: str, problem: str) -> ClusterError:
        log_path = self.paths.log(component)
        tail = supervisor.log_tail(log_path, 25)
        return ClusterError(
            f"local cluster {self.name}: {component} {problem}. Last lines of {log_path}:\n{tail}",
            provider="local",
            stderr_tail=tail,
        )

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
        _state, record = self._component(component)
        if not supervisor.is_alive(record):
            raise ClusterError(
                f"cluster {self.name}: {component} (pid {record.pid}) is not running; start it "
                f"with start_component({component!r}) or recreate the cluster",
                provider="local",
            )
        supervisor.stop(record, timeout=timeout, sig=signal.SIGKILL if kill else signal.SIGTERM)
        supervisor.wait_vanished([record], timeout=VANISH_TIMEOUT)
        log.info("cluster %s: %s stopped", self.name, component)

    def start_component(self, component: str, *, timeout: float = START_TIMEOUT) -> None:
        """Start a component :meth:`stop_component` stopped, with its recorded command line.

        Returns once it is running again; for ``kube-apiserver``, once it answers ``/readyz``.

        Args:
            component: One of :data:`COMPONENTS`.
            timeout: Seconds to wait for it to get ready.

        Raises:
            ClusterError: The component is already running, exits at once or does not get ready.
        """
        self._start_component(component, timeout)

    def _start_component(self, component: str, timeout: float) -> ClusterState:
        """Do :meth:`start_component`; return the cluster state, with the new process in it."""
        state, record = self._component(component)
        if supervisor.is_alive(record):
            raise ClusterError(
                f"cluster {self.name}: {component} already runs (pid {record.pid})",
                provider="local",
            )
        self._start_process(state, component, list(record.argv), GO_ENV.get(component, {}))
        ready: dict[str, Callable[[], bool]] = {
            "kube-apiserver": lambda: self._apiserver_ready(state),
            "etcd": lambda: self._etcd_healthy(state),
            "containerd": lambda: _unix_socket_answers(Path(state.socket)),
        }
        self._wait(state, component, ready.get(component, lambda: True), timeout)
        log.info("cluster %s: %s started again", self.name, component)
        return state

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
                state = self._start_component(component, START_TIMEOUT)
                # The controllers back off while the API is away; the next test needs them.
                self._wait(state, "kube-controller-manager",
                           lambda: self._controllers_work(state), START_TIMEOUT,
                           what="a new namespace to get its default ServiceAccount")

    def _controllers_work(self, state: ClusterState) -> bool:
        """Whether a fresh namespace gets its ``default`` ServiceAccount (then it is deleted)."""
        name = f"probes-health-{os.getpid()}"
        try:
            self.api_get(state, "/api/v1/namespaces", method="POST", timeout=3.0,
                         body={"metadata": {"name": name}})
        except urllib.error.HTTPError as error:
            if error.code != 409:  # 409: made by an earlier attempt
                return False
        except (OSError, ValueError):
            return False
        if not self._default_sa_exists(state, name):
            return False
        try:
            self.api_get(state, f"/api/v1/namespaces/{name}", method="DELETE", timeout=3.0)
        except (OSError, ValueError):
            log.debug("deleting namespace %s failed", name, exc_info=True)
        return True

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision and return that revision.

        Every resourceVersion older than it becomes too old to watch from: a client resuming
        from one gets ``410 Gone`` (at once from etcd, or from the API server's watch cache
        once it is rebuilt, e.g. after a restart) and has to list again.

        Raises:
            ClusterError: etcd does not answer.
        """
        state = self.read_state()
        if state is None:
            raise ClusterError(f"cluster {self.name} does not exist", provider="local")
        base = f"{controlplane.etcd_url(state.ports)}/v3/kv"
        context = self._etcd_ssl_context()
        try:
            header = _post_json(f"{base}/range", {"key": "AA==", "limit": 1}, context)["header"]
            revision = int(header["revision"])
            _post_json(f"{base}/compaction", {"revision": revision, "physical": True}, context)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ClusterError(
                f"cluster {self.name}: compacting etcd at {base} failed: {error}; is etcd "
                f"running? (pytest-probes cluster status --name {self.name})",
                provider="local",
            ) from error
        log.info("cluster %s: etcd compacted at revision %d", self.name, revision)
        return revision

    def _component(self, component: str) -> tuple[ClusterState, supervisor.ProcessRecord]:
        """Return the cluster state and the recorded process of ``component``."""
        if component not in COMPONENTS:
            raise ClusterError(
                f"unknown component {component!r}; choose one of {', '.join(COMPONENTS)}",
                provider="local",
            )
        state = self.read_state()
        record = state.processes.get(component) if state is not None else None
        if state is None or record is None:
            raise ClusterError(
                f"cluster {self.name} has no {component} process on record; is it up? "
                f"(pytest-probes cluster status --name {self.name})",
                provider="local",
            )
        return state, record

    # ------------------------------------------------------------------ down

    def down(self, progress: Progress) -> None:
        """Stop every process and remove every trace of the cluster, its directory included.

        Raises:
            ClusterError: Something could not be removed (each leftover is named).
        """
        watch = _Stopwatch(progress)
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
            self._teardown(state, progress, remove=True)
            log.info("local cluster %s down in %.1f s", self.name, watch.elapsed())
            watch.say(f"cluster {self.name} deleted")

    @staticmethod
    def _stop_group(group: list[supervisor.ProcessRecord]) -> None:
        """SIGTERM a group of processes together; SIGKILL what is left after STOP_TIMEOUT."""
        for record in group:
            if supervisor.is_alive(record):
                supervisor.signal_group(record.pid, signal.SIGTERM)
        if supervisor.wait_gone(group, timeout=STOP_TIMEOUT):
            return
        for record in group:
            if supervisor.is_alive(record):
                log.info(
                    "%s (pid %d) did not stop within %.0f s; killing it",
                    record.name,
                    record.pid,
                    STOP_TIMEOUT,
                )
                supervisor.signal_group(record.pid, signal.SIGKILL)
        supervisor.wait_gone(group, timeout=5.0)

    def _strays(self, socket_path: Path) -> list[int]:
        """Return cluster processes no pid file knows of (a component, a shim, runc).

        Only programs the cluster runs count: someone's ``tail -f`` of a log is left alone.
        """
        found = set(supervisor.processes_mentioning(str(self.paths.root)))
        found.update(supervisor.processes_mentioning(str(socket_path)))
        strays = []
        for pid in sorted(found):
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                continue
            name = Path(argv0).name
            if name in CLUSTER_PROGRAMS or name.startswith("containerd-shim"):
                strays.append(pid)
        return strays

    def _network_of_unreadable_state(self) -> node.PodNetwork | None:
        """The pod network of a cluster whose state file is old-format or unreadable.

        The state file's ``pod_subnet_octet`` if it still has one, else the bridge named in the
        cluster's own CNI config: either way the bridge and its FORWARD rule are this cluster's
        and go with it.
        """
        try:
            data = json.loads(self.paths.state_file.read_text())
            return node.PodNetwork(int(data["pod_subnet_octet"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            conflist = json.loads((self.paths.etc / "cni" / CNI_CONFIG_FILE).read_text())
            bridges = [p.get("bridge") for p in conflist["plugins"] if p.get("type") == "bridge"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        found = re.fullmatch(r"probes(\d+)", str(bridges[0])) if bridges else None
        return node.PodNetwork(int(found.group(1))) if found else None

    def _teardown(self, state: ClusterState | None, progress: Progress, *, remove: bool) -> None:
        paths = self.paths
        records: dict[str, supervisor.ProcessRecord] = {}
        for name in COMPONENTS:
            record = (state.processes.get(name) if state else None) or supervisor.read_pid_file(
                paths.pid_file(name)
            )
            if record is not None:
                records[name] = record
        started = time.monotonic()

        def phase(what: str) -> None:
            log.debug("teardown of %s: %s at %.2f s", self.name, what, time.monotonic() - started)

        # The kubelet first, so it does not restart the containers that are about to go.
        if "kubelet" in records:
            supervisor.stop(records["kubelet"], timeout=STOP_TIMEOUT)
        phase("kubelet stopped")
        socket_path = Path(state.socket) if state else paths.socket
        network = state.network if state else self._network_of_unreadable_state()
        cgroup = node.cgroup_root_name(self.name)
        killed = supervisor.kill_pids(sorted(node.cgroup_pids(cgroup)))
        phase("pod processes killed")
        # etcd last: its graceful stop waits for the API server's watches to end.
        for group in STOP_ORDER:
            self._stop_group([records[name] for name in group if name in records])
        phase("daemons stopped")
        killed += supervisor.kill_pids(self._strays(socket_path))
        problems = node.cleanup_node(
            cluster=self.name,
            cluster_dir=paths.root,
            state_dir=paths.containerd_state,
            socket=socket_path,
            network=network,
            pod_logs_dir=paths.pod_logs,
        )
        if not self._other_kubelets_running():
            problems += node.restore_host_sysctls(self._sysctl_record)
        phase("node cleaned up")
        if not socket_path.is_relative_to(paths.root):
            shutil.rmtree(socket_path.parent, ignore_errors=True)
        problems += [f"process {pid} still runs" for pid in self._strays(socket_path)]
        # `ps` must not list them any more when `down` returns, not even as zombies.
        listed = supervisor.wait_vanished([*records.values(), *killed], timeout=VANISH_TIMEOUT)
        if listed:
            log.warning("cluster %s: %s still listed (zombies) %.0f s after being stopped",
                        self.name, ", ".join(f"{r.name} {r.pid}" for r in listed),
                        VANISH_TIMEOUT)
        phase("every process gone")
        if problems:
            raise ClusterError(
                f"local cluster {self.name} could not be removed completely: "
                + "; ".join(problems),
                provider="local",
            )
        if remove:
            if node.mounts_under(paths.root):
                raise ClusterError(
                    f"refusing to delete {paths.root}: something is still mounted under it",
                    provider="local",
                )
            shutil.rmtree(paths.root, ignore_errors=True)
        else:
            for name in ("data", "state", "run"):
                shutil.rmtree(paths.root / name, ignore_errors=True)
            paths.state_file.unlink(missing_ok=True)


def _octets_of_other_clusters(directory: Path, own: str) -> set[int]:
    taken = set()
    if directory.is_dir():
        for state_file in directory.glob(f"*/{STATE_FILE}"):
            if state_file.parent.name == own:
                continue
            try:
                taken.add(int(json.loads(state_file.read_text())["pod_subnet_octet"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return taken


def _unix_socket_answers(path: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _post_json(url: str, body: Mapping[str, Any], context: ssl.SSLContext) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5.0, context=context) as reply:
        return json.loads(reply.read())


def _http_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0, context=context) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


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
    from pytest_probes.providers.local import images

    built = images.build_pause_image(cache_dir, progress)
    return built.ref, Path(built.archive)
