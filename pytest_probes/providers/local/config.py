"""A local cluster's directory: where its files live, its state file, and its configs.

A cluster is a directory, ``<cache_dir>/clusters/<name>/``, holding its state file
(``cluster.json``: name, version, ports, pod network, processes, creation time), its PKI, configs,
logs, data and the admin ``kubeconfig``. :func:`prepare` writes all of it before the first
process starts.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import random
import re
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_probes._locks import file_lock
from pytest_probes.binaries import runtime
from pytest_probes.cluster_settings import ClusterSettings, merge_config
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import controlplane, node, supervisor
from pytest_probes.providers.local.controlplane import Ports
from pytest_probes.providers.local.node import PodNetwork

if TYPE_CHECKING:
    # Imported where used: it needs cryptography (the local extra), and the kind and existing
    # providers import the local provider's package too.
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

CNI_CONFIG_FILE = "10-pytest-probes.conflist"
"""The cluster's CNI network config, in ``<cluster>/etc/cni``."""

POD_RESOLV_CONF = (
    "# pytest-probes: no cluster DNS. Lookups go to the pod's own loopback and fail at once;\n"
    "# with no nameserver here containerd would hand pods the host's resolv.conf.\n"
    "nameserver 127.0.0.1\n"
    "options ndots:1 timeout:1 attempts:1\n"
)
"""The resolv.conf pods get: no DNS traffic leaves the machine."""


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
    settings: ClusterSettings = field(default_factory=ClusterSettings)

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
            "settings": self.settings.to_json(),
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
                settings=ClusterSettings.from_json(data.get("settings")),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a cluster state: {error}") from error


def read_state(paths: ClusterPaths) -> ClusterState | None:
    """Return the recorded state, or ``None`` if there is none (or it is unreadable)."""
    try:
        return ClusterState.from_json(json.loads(paths.state_file.read_text()))
    except (OSError, ValueError):
        return None


def write_state(paths: ClusterPaths, state: ClusterState) -> None:
    """Write the state file (atomically: a reader sees the old or the new one)."""
    tmp = paths.state_file.with_name(f".{STATE_FILE}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    os.replace(tmp, paths.state_file)


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
"""The kernel's range of local ports for outgoing connections (ip-sysctl.rst)."""

LINUX_EPHEMERAL_RANGE = (32768, 60999)
"""The kernel's default of :data:`EPHEMERAL_RANGE_FILE`, where it cannot be read."""

LISTEN_PORTS = (20000, 32767)
"""Where a cluster's listening ports are chosen while the ephemeral range is the default."""


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range, lowest and highest."""
    try:
        low, high = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return LINUX_EPHEMERAL_RANGE
    return low, high


def free_ports(count: int, *, exclude: set[int] | frozenset[int] = frozenset(),
               ephemeral: tuple[int, int] | None = None) -> list[int]:
    """Return ``count`` TCP ports on 127.0.0.1 that nothing listens on now, none in ``exclude``.

    Outside the kernel's ephemeral range: a port taken from it (``bind`` to port 0) can become the
    local port of any outgoing connection before the component binds it, and an etcd failed so
    ("bind: address already in use") while the suite's other clusters were busy. Chosen at
    random among :data:`LISTEN_PORTS` below the range (above it if the range leaves no room below).

    Raises:
        ClusterError: Fewer than ``count`` such ports can be bound.
    """
    low, high = ephemeral or ephemeral_range()
    pool = [p for p in range(LISTEN_PORTS[0], min(LISTEN_PORTS[1] + 1, low)) if p not in exclude]
    if len(pool) < count:
        pool = [p for p in range(max(high + 1, LISTEN_PORTS[0]), 65536) if p not in exclude]
    chosen: list[int] = []
    for port in random.sample(pool, len(pool)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise ClusterError(f"fewer than {count} free TCP ports on 127.0.0.1 outside the ephemeral "
                       f"range {low}-{high} ({EPHEMERAL_RANGE_FILE}); stop what listens there")


def ports_of_other_clusters(directory: Path, own: str) -> set[int]:
    """Return the ports the clusters in ``directory`` other than ``own`` have recorded."""
    taken: set[int] = set()
    if directory.is_dir():
        for state_file in directory.glob(f"*/{STATE_FILE}"):
            if state_file.parent.name == own:
                continue
            try:
                taken.update(int(p) for p in json.loads(state_file.read_text())["ports"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
    return taken


def octets_of_other_clusters(directory: Path, own: str) -> set[int]:
    """Return the pod network octets of the clusters in ``directory`` other than ``own``."""
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


def prepare(
    paths: ClusterPaths,
    name: str,
    cache_dir: Path,
    version: str,
    pause_ref: str,
    engine: runtime.RuntimeBins,
    settings: ClusterSettings | None = None,
) -> ClusterState:
    """Write a new cluster's directory: state file, PKI, kubeconfigs and component configs.

    Whatever was in the directory before is removed; the ports are free ones, the pod network
    one that no other cluster and no host route uses. ``settings`` (a test's configured cluster)
    are recorded in the state file, their kubelet settings merged into ``kubelet.yaml`` and their
    feature gates set as its ``featureGates`` (:func:`kubelet_config`).
    """
    settings = settings or ClusterSettings()
    if paths.root.exists():
        shutil.rmtree(paths.root)
    for directory in (paths.etc, paths.logs, paths.run, paths.data, paths.containerd_state):
        directory.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    node_name = f"{name}-node"
    # Two clusters prepared at once (a run's configured clusters under xdist) would each see the
    # other's network and ports as free: choosing and recording them is one step for all.
    with _choosing(cache_dir):
        state = _new_state(paths, name, cache_dir, version, engine, settings, node_name)
    from pytest_probes.providers.local import pki
    ports, network = state.ports, state.network

    server = f"https://127.0.0.1:{ports.apiserver}"
    certs = pki.generate(
        paths.pki.directory,
        node_name=node_name,
        node_ip=network.gateway,
        service_ip=controlplane.SERVICE_IP,
        cluster_name=name,
    )
    pki.write_kubeconfig(
        paths.kubeconfig, certs, "admin", server=server, cluster_name=f"probes-{name}"
    )
    for component in ("controller-manager", "scheduler", "kubelet"):
        pki.write_kubeconfig(
            paths.component_kubeconfig(component),
            certs,
            component,
            server=server,
            cluster_name=f"probes-{name}",
        )
    Path(state.socket).parent.mkdir(parents=True, exist_ok=True)
    cni_dir = paths.etc / "cni"
    cni_dir.mkdir(exist_ok=True)
    (cni_dir / CNI_CONFIG_FILE).write_text(
        json.dumps(
            node.render_cni_config(
                network, name=node.cluster_network_name(name), ipam_dir=paths.data / "ipam"
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
        kubelet_config(settings, node.render_kubelet_config(
            address=network.gateway,
            port=ports.kubelet,
            healthz_port=ports.kubelet_healthz,
            ca_file=certs.ca_cert,
            tls_cert=certs.cert("kubelet-serving"),
            tls_key=certs.key("kubelet-serving"),
            runtime_socket=Path(state.socket),
            resolv_conf=paths.etc / "resolv.conf",
            cgroup_root=node.cgroup_root_name(name),
            pod_logs_dir=paths.pod_logs,
            volume_plugin_dir=paths.data / "volume-plugins",
        )),
    )
    return state


@contextmanager
def _choosing(cache_dir: Path) -> Iterator[None]:
    """Hold the lock under which a new cluster picks its pod network and ports."""
    with file_lock(clusters_dir(cache_dir) / ".choosing.lock", timeout=CHOOSING_TIMEOUT,
                   progress=lambda line: None,
                   waiting=lambda waited: f"waiting to choose a pod network ({waited:.0f}s)",
                   held_too_long=f"another process has been choosing a cluster's pod network "
                   f"for over {CHOOSING_TIMEOUT:.0f} s"):
        yield


CHOOSING_TIMEOUT = 60.0
"""Seconds a new cluster waits for another to record its pod network and ports (it takes ms)."""


def _new_state(paths: ClusterPaths, name: str, cache_dir: Path, version: str,
               engine: runtime.RuntimeBins, settings: ClusterSettings,
               node_name: str) -> ClusterState:
    """Choose a new cluster's network and ports, free of the other clusters', and record them."""
    directory = clusters_dir(cache_dir)
    network = node.choose_pod_network(octets_of_other_clusters(directory, name),
                                      node.used_networks())
    others = ports_of_other_clusters(directory, name)
    ports = Ports(*free_ports(7, exclude=others))
    state = ClusterState(
        name=name,
        version=version,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        ports=ports,
        network=network,
        node_name=node_name,
        snapshotter="overlayfs" if node.overlay_works(paths.data / "tmp") else "native",
        socket=str(paths.socket),
        cache_dir=str(cache_dir),
        runtime=runtime.installed_versions(engine),
        settings=settings,
    )
    write_state(paths, state)
    return state

def kubelet_config(settings: ClusterSettings, base: Mapping[str, Any]) -> dict[str, Any]:
    """The node's KubeletConfiguration: ``base`` with a configured cluster's settings merged in.

    The settings' kubelet fragment is merged as YAML would (mappings deeply; the fragment wins),
    and their feature gates become ``featureGates``.
    """
    merged = merge_config(base, settings.kubelet_config)
    if settings.feature_gates:
        merged["featureGates"] = settings.gates
    return merged


def network_of_unreadable_state(paths: ClusterPaths) -> node.PodNetwork | None:
    """The pod network of a cluster whose state file is old-format or unreadable.

    The state file's ``pod_subnet_octet`` if it still has one, else the bridge named in the
    cluster's own CNI config: either way the bridge and its FORWARD rule are this cluster's
    and go with it.
    """
    try:
        data = json.loads(paths.state_file.read_text())
        return node.PodNetwork(int(data["pod_subnet_octet"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        conflist = json.loads((paths.etc / "cni" / CNI_CONFIG_FILE).read_text())
        bridges = [p.get("bridge") for p in conflist["plugins"] if p.get("type") == "bridge"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    found = re.fullmatch(r"probes(\d+)", str(bridges[0])) if bridges else None
    return node.PodNetwork(int(found.group(1))) if found else None
