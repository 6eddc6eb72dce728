"""The node of a local cluster: containerd, the CNI bridge network and the kubelet.

Everything a node owns lives inside the cluster directory: containerd's config, root, state and
socket; the CNI config and the host-local IP allocations; the kubelet's config, root directory and
pod logs; network namespaces (containerd keeps them under its state directory). What cannot live
there is named after the cluster: the bridge (``probes<N>``, its address the first IP of the pod
subnet ``10.<N>.0.0/16``), the cgroup tree ``/pytest-probes-<name>`` and the CNI result cache
entries of network ``pytest-probes-<name>``. :func:`cleanup_node` removes all of it.

The bridge carries no default route and IP forwarding stays as it is: pods talk to each other and
to the host (by pod IP both ways), and no pod traffic leaves the machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_probes._extras import missing_extra
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import supervisor

log = logging.getLogger(__name__)

CGROUP_MOUNT = Path("/sys/fs/cgroup")
HOST_NETNS_DIR = Path("/run/netns")
CNI_CACHE_DIR = Path("/var/lib/cni/results")
CONTAINER_LOG_LINKS = Path("/var/log/containers")

SUBNET_OCTETS = range(88, 128)
"""Second octets of the ``10.N.0.0/16`` pod subnets the local provider picks from."""


@dataclass(frozen=True)
class PodNetwork:
    """The bridge network of one cluster's pods.

    Attributes:
        octet: ``N`` of the subnet ``10.N.0.0/16``.
    """

    octet: int

    @property
    def subnet(self) -> str:
        """The pod subnet in CIDR notation."""
        return f"10.{self.octet}.0.0/16"

    @property
    def gateway(self) -> str:
        """The bridge's address: the node IP, and the host's address on the pod network."""
        return f"10.{self.octet}.0.1"

    @property
    def bridge(self) -> str:
        """The bridge interface name."""
        return f"probes{self.octet}"


def cluster_network_name(cluster: str) -> str:
    """Return the CNI network name of a cluster."""
    return f"pytest-probes-{cluster}"


def cgroup_root_name(cluster: str) -> str:
    """Return the kubelet's cgroup root of a cluster (a top-level cgroup)."""
    return f"/pytest-probes-{cluster}"


# --------------------------------------------------------------------------- pure rendering


SHIM_SOCKETS_ROOT = Path("/run/pytest-probes")
"""Where the clusters' shim socket folders are: containerd allows at most 42 characters."""


def shim_socket_dir(cluster_dir: Path) -> Path:
    """Return the folder of a cluster's shim sockets, named by a hash of the cluster directory.

    containerd's default is ``/run/containerd/s``, shared with every other containerd on the host
    (Docker's among them); ``socket_dir`` must be short (``core/runtime/v2/shim_manager.go``:
    at most 42 characters), so it cannot live inside the cluster directory.
    """
    digest = hashlib.sha256(str(cluster_dir).encode()).hexdigest()[:12]
    return SHIM_SOCKETS_ROOT / f"shims-{digest}"


def render_containerd_config(
    *,
    root: Path,
    state: Path,
    socket: Path,
    cni_conf_dir: Path,
    sandbox_image: str,
    snapshotter: str,
    cni_bin_dir: Path,
    runc: Path,
    shim_sockets: Path,
) -> str:
    """Render containerd 2.x's config (TOML) for one cluster.

    Written in config version 4, containerd 2.3's own (``version.ConfigVersion``), so it is read
    as it is instead of migrated at every start. Versions 3 and 4 split the CRI plugin of
    version 2 in three: images (``io.containerd.cri.v1.images``: snapshotter, the pinned sandbox
    image), runtime (``io.containerd.cri.v1.runtime``: runtimes, CNI, OOM score and netns
    settings) and the server (``io.containerd.grpc.v1.cri``: the streaming server); version 4
    moves the gRPC, ttrpc, debug and metrics listeners into ``io.containerd.server.v1.*``
    plugins. Everything host-wide that containerd 2.x would otherwise use is kept inside the
    cluster or switched off: config ``imports`` only from inside the cluster (the default reads
    ``/etc/containerd/conf.d``), shim sockets in :func:`shim_socket_dir`, NRI (its socket is
    ``/var/run/nri/nri.sock``), the image verifier (it reads ``/opt/containerd``) and the tracing
    processors disabled.

    Args:
        root: containerd's persistent root (images, snapshots, metadata).
        state: containerd's state directory (tasks, mounts, network namespaces).
        socket: The gRPC socket path.
        cni_conf_dir: The directory with the cluster's CNI network config.
        sandbox_image: The pause image reference (must be imported beforehand: no registry).
        snapshotter: ``overlayfs`` or ``native``.
        cni_bin_dir: Where the CNI plugins are.
        runc: The runc binary the shim starts containers with.
        shim_sockets: The folder of the shims' sockets (see :func:`shim_socket_dir`).

    Returns:
        The TOML text.
    """
    config: dict[str, Any] = {
        "version": 4,
        "root": str(root),
        "state": str(state),
        "temp": str(state / "tmp"),
        # An empty list would keep the default, /etc/containerd/conf.d/*.toml: a glob inside
        # the cluster that matches nothing replaces it.
        "imports": [str(root / "conf.d" / "*.toml")],
        "oom_score": 0,
        "disabled_plugins": [
            "io.containerd.nri.v1.nri",
            "io.containerd.image-verifier.v1.bindir",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing",
        ],
        "debug": {"level": "info"},
        "plugins": {
            "io.containerd.server.v1.grpc": {"address": str(socket)},
            "io.containerd.server.v1.ttrpc": {"address": f"{socket}.ttrpc"},
            "io.containerd.server.v1.debug": {"address": ""},
            "io.containerd.server.v1.metrics": {"address": ""},
            "io.containerd.shim.v1.manager": {"socket_dir": str(shim_sockets)},
            "io.containerd.internal.v1.opt": {"path": str(root / "opt")},
            "io.containerd.cri.v1.images": {
                "snapshotter": snapshotter,
                "discard_unpacked_layers": False,
                "pinned_images": {"sandbox": sandbox_image},
            },
            "io.containerd.cri.v1.runtime": {
                "enable_selinux": False,
                "disable_apparmor": True,
                # The host lacks CAP_SYS_RESOURCE in some VMs: runc may then not lower a
                # sandbox's oom_score_adj below its parent's.
                "restrict_oom_score_adj": True,
                "disable_hugetlb_controller": True,
                "tolerate_missing_hugetlb_controller": True,
                "netns_mounts_under_state_dir": True,
                "max_container_log_line_size": 16384,
                "containerd": {
                    "default_runtime_name": "runc",
                    "runtimes": {
                        "runc": {
                            "runtime_type": "io.containerd.runc.v2",
                            "options": {"BinaryName": str(runc), "SystemdCgroup": False},
                        }
                    },
                },
                "cni": {
                    "bin_dirs": [str(cni_bin_dir)],
                    "conf_dir": str(cni_conf_dir),
                    "max_conf_num": 1,
                },
            },
            "io.containerd.grpc.v1.cri": {
                "stream_server_address": "127.0.0.1",
                "stream_server_port": "0",
            },
        },
    }
    # Imported here, not at the top: the local provider's other modules serve the kind and
    # existing providers too, whose users need not install the local extra.
    try:
        import tomli_w
    except ModuleNotFoundError as err:
        raise missing_extra("local", [err.name or "tomli_w"], provider="local",
                            needed_by="the local provider (its containerd config)") from err
    return tomli_w.dumps(config)


def render_cni_config(network: PodNetwork, *, name: str, ipam_dir: Path) -> dict[str, Any]:
    """Return the CNI network config list (bridge + host-local IPAM + portmap).

    The bridge is created beforehand with the gateway address, so the plugin is told neither to
    make it a gateway nor to masquerade: that would switch on IP forwarding for the whole host.
    Pods get only the subnet route.

    Args:
        network: The pod network.
        name: The CNI network name.
        ipam_dir: host-local's allocation directory.

    Returns:
        The conflist as a dict (write it as JSON).
    """
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": False,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.subnet, "gateway": network.gateway}]],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def render_kubelet_config(
    *,
    address: str,
    port: int,
    healthz_port: int,
    ca_file: Path,
    tls_cert: Path,
    tls_key: Path,
    runtime_socket: Path,
    resolv_conf: Path,
    cgroup_root: str,
    pod_logs_dir: Path,
    volume_plugin_dir: Path,
) -> dict[str, Any]:
    """Return the KubeletConfiguration (as a dict) of a local node.

    Args:
        address: The address the kubelet serves on (the node IP).
        port: The kubelet's HTTPS port.
        healthz_port: The port of its plain-HTTP ``/healthz`` on 127.0.0.1.
        ca_file: The CA that signs client certificates (x509 authentication).
        tls_cert: The kubelet's serving certificate.
        tls_key: Its key.
        runtime_socket: containerd's socket.
        resolv_conf: The resolv.conf handed to pods.
        cgroup_root: The cgroup under which pod cgroups are made.
        pod_logs_dir: Where container logs are written.
        volume_plugin_dir: The flexvolume plugin directory (kept inside the cluster directory).

    Returns:
        The configuration; dump it as YAML.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(tls_cert),
        "tlsPrivateKeyFile": str(tls_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "30s"},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "30s", "cacheUnauthorizedTTL": "5s"},
        },
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "cgroupsPerQOS": True,
        "failCgroupV1": False,
        "failSwapOn": False,
        "resolvConf": str(resolv_conf),
        "clusterDomain": "cluster.local",
        # No cluster DNS runs, but an empty list makes the kubelet post two MissingClusterDNS
        # warnings (on the pod and on the node) for every sandbox it sets up: a busy suite's event
        # writer falls behind, and they eat into each pod's burst of 25 warning events, which
        # Unhealthy and BackOff share. The pod's own loopback answers nothing, so lookups still
        # fail at once, as with POD_RESOLV_CONF.
        "clusterDNS": ["127.0.0.1"],
        "podLogsDir": str(pod_logs_dir),
        "volumePluginDir": str(volume_plugin_dir),
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
            "imagefs.inodesFree": "1%",
        },
        "evictionPressureTransitionPeriod": "30s",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "imageMinimumGCAge": "87600h",
        "serializeImagePulls": True,
        "nodeStatusUpdateFrequency": "4s",
        "nodeStatusReportFrequency": "1m",
        "makeIPTablesUtilChains": False,
        "registerNode": True,
        "maxPods": 110,
        "protectKernelDefaults": False,
        "enableServer": True,
        "enableDebuggingHandlers": True,
        "localStorageCapacityIsolation": True,
        "logging": {"format": "text", "verbosity": 1},
    }


DEAD_INSTANCES_KEPT = 2
"""Exited instances the kubelet keeps per container (its default, 1, lets GC skip a back-off).

On a liveness kill the kubelet kills instance *k* and starts *k+1* in one sync, and takes the
back-off from the newest exited instance in the pod status it started that sync with: *k−1*.
Its container GC (every minute) counts a container that is created but not yet running as dead
and keeps the newest ``--maximum-dead-containers-per-container`` of them. With 1, a GC pass
that falls between *k+1*'s CreateContainer and its start keeps *k+1* and removes *k*, the only
exited instance. At the next kill ``doBackOff`` then finds no exited instance, so it neither
applies nor advances the back-off, and the container restarts at once: one back-off step is
skipped (``kuberuntime_gc.go`` ``evictableContainers``; ``kuberuntime_manager.go``
``doBackOff``). With 24 pods killed every 15 s and a 20 s pause put into ``runc start`` to
widen that moment, 53 of 151 kills after the first skipped the back-off, each after a GC pass
had removed its pod's only exited instance; with 2 kept, none of 134 did, though 23 GC passes
fell into such a moment. Keeping 2 makes GC keep *k* beside *k+1*, so the back-off is the one
the probe spec gives. The flag is deprecated but present in every supported version; the
KubeletConfiguration has no field for it.
"""


def kubelet_command(
    kubelet: Path,
    *,
    config: Path,
    kubeconfig: Path,
    root_dir: Path,
    node_name: str,
    node_ip: str,
) -> list[str]:
    """Return the kubelet's command line (the rest is in its config file)."""
    return [
        str(kubelet),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={root_dir}",
        f"--hostname-override={node_name}",
        f"--node-ip={node_ip}",
        f"--maximum-dead-containers-per-container={DEAD_INSTANCES_KEPT}",
    ]


def containerd_command(containerd: str, *, config: Path) -> list[str]:
    """Return containerd's command line."""
    return [containerd, "--config", str(config)]


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    """Write a YAML document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False))


# --------------------------------------------------------------------------- host probing


def used_networks() -> list[ipaddress.IPv4Network]:
    """Return the IPv4 networks of the host's routes and addresses."""
    found: list[ipaddress.IPv4Network] = []
    for argv in (["ip", "-4", "-j", "route", "show", "table", "all"], ["ip", "-4", "-j", "addr"]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            entries = json.loads(done.stdout or "[]")
        except (OSError, ValueError, subprocess.TimeoutExpired):
            continue
        for entry in entries:
            candidates = [entry.get("dst", "")]
            candidates += [
                f"{info.get('local')}/{info.get('prefixlen')}"
                for info in entry.get("addr_info", [])
            ]
            for text in candidates:
                if not text or text == "default":
                    continue
                try:
                    found.append(ipaddress.IPv4Network(text, strict=False))
                except ValueError:
                    continue
    return found


def choose_pod_network(
    taken_octets: Iterable[int], used: Sequence[ipaddress.IPv4Network]
) -> PodNetwork:
    """Pick a ``10.N.0.0/16`` pod subnet that no other cluster and no host network overlaps.

    Args:
        taken_octets: Octets other local clusters already use.
        used: The host's networks (see :func:`used_networks`).

    Raises:
        ClusterError: Every candidate is in use.
    """
    taken = set(taken_octets)
    for octet in SUBNET_OCTETS:
        if octet in taken:
            continue
        candidate = ipaddress.IPv4Network(f"10.{octet}.0.0/16")
        if any(candidate.overlaps(net) for net in used if net.prefixlen > 0):
            continue
        return PodNetwork(octet)
    raise ClusterError(
        "no free pod subnet among 10.88.0.0/16 … 10.127.0.0/16: each overlaps a host network or "
        "another local cluster; delete a cluster with `pytest-probes cluster down --name NAME`",
        provider="local",
    )


def overlay_works(scratch: Path) -> bool:
    """Return whether an overlay filesystem can be mounted inside ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="overlay-check-", dir=scratch))
    try:
        for part in ("lower", "upper", "work", "merged"):
            (work / part).mkdir()
        (work / "lower" / "file").write_text("x")
        options = f"lowerdir={work / 'lower'},upperdir={work / 'upper'},workdir={work / 'work'}"
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(work / "merged")],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            log.info(
                "overlayfs does not work here (%s); using the native snapshotter",
                done.stderr.strip(),
            )
            return False
        ok = (work / "merged" / "file").read_text() == "x"
        subprocess.run(
            ["umount", str(work / "merged")], capture_output=True, timeout=10, check=False
        )
        return ok
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- host setup


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterError(
            f"`{' '.join(argv)}` failed: {error}", provider="local", command=argv
        ) from error
    if check and done.returncode != 0:
        raise ClusterError(
            f"`{' '.join(argv)}` failed (exit {done.returncode}): {done.stderr.strip()}",
            provider="local",
            command=argv,
            returncode=done.returncode,
            stderr_tail=done.stderr.strip(),
        )
    return done


def forward_rule(network: PodNetwork, cluster: str) -> list[str]:
    """The FORWARD rule that lets the cluster's pods reach each other across its bridge.

    Once ``br_netfilter`` is loaded (Docker loads it) bridged frames pass the iptables FORWARD
    chain, whose policy Docker sets to DROP: pod-to-pod traffic on the bridge would then be
    dropped. The rule accepts exactly the traffic from the cluster's bridge to itself; the host's
    policy and other rules stay as they are. Returned without the ``-A``/``-I``/``-D`` verb.
    """
    return ["FORWARD", "-i", network.bridge, "-o", network.bridge, "-m", "comment",
            "--comment", f"pytest-probes {cluster}: pod to pod", "-j", "ACCEPT"]


def allow_pod_traffic(network: PodNetwork, cluster: str) -> None:
    """Put :func:`forward_rule` first in the FORWARD chain, unless it is there already.

    Raises:
        ClusterError: iptables refused the rule.
    """
    rule = forward_rule(network, cluster)
    present = _iptables("-C", *rule)
    if present is not None and present.returncode == 0:
        return
    done = _iptables("-I", rule[0], "1", *rule[1:])
    if done is None or done.returncode != 0:
        raise ClusterError(
            f"cannot let the pods of cluster {cluster} reach each other: `iptables -I "
            f"{' '.join(rule)}` failed: {done.stderr.strip() if done else 'did not run'}",
            provider="local",
        )


def remove_pod_traffic_rule(network: PodNetwork, cluster: str) -> list[str]:
    """Delete every copy of :func:`forward_rule`; return what failed."""
    if shutil.which("iptables") is None:
        return []
    rule = forward_rule(network, cluster)
    for _ in range(10):
        present = _iptables("-C", *rule)
        if present is None or present.returncode != 0:
            return []
        _iptables("-D", *rule)
    return [f"iptables rule {' '.join(rule)} could not be deleted"]


def bridge_exists(network: PodNetwork) -> bool:
    """Return whether the cluster's bridge exists."""
    return Path("/sys/class/net", network.bridge).exists()


def create_bridge(network: PodNetwork) -> None:
    """Create the cluster's bridge with the gateway address (replacing a leftover one)."""
    if bridge_exists(network):
        _ip("link", "delete", network.bridge, check=False)
    _ip("link", "add", network.bridge, "type", "bridge")
    _ip("addr", "add", f"{network.gateway}/16", "dev", network.bridge)
    _ip("link", "set", network.bridge, "up")


def delete_bridge(network: PodNetwork) -> None:
    """Delete the cluster's bridge if it exists."""
    if bridge_exists(network):
        _ip("link", "delete", network.bridge, check=False)


def cgroup_hierarchies() -> list[Path]:
    """Return the mount points of every cgroup hierarchy (v1 controllers and the v2 one)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(_unescape(left.split()[4])))
    return found


NICE_0_WEIGHT = 1024
"""The scheduler's weight of a task at niceness 0, and cgroup v1's default ``cpu.shares``."""


def nice_weight(nice: int) -> int:
    """The scheduler's weight of a task at ``nice`` (the kernel's ``sched_prio_to_weight``).

    Each step of niceness is worth about 1.25 times the CPU: -10 gives 9548, -5 gives 3121.
    """
    if not -20 <= nice <= 19:
        raise ValueError(f"niceness {nice} is not in -20..19")
    return _PRIO_TO_WEIGHT[nice + 20]


_PRIO_TO_WEIGHT = (
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
)  # fmt: skip


def create_cgroup_root(name: str, *, cpu_nice: int = 0) -> None:
    """Create the kubelet's cgroup root in every hierarchy (the kubelet requires it to exist).

    A new cpuset cgroup starts with no CPUs and no memory nodes; they are copied from the parent.
    The whole tree gets the CPU weight of one task at niceness ``cpu_nice`` (``cpu.shares`` in
    cgroup v1, ``cpu.weight.nice`` in v2, where the cpu controller is enabled): the scheduler
    weighs a cgroup against the tasks beside it as one entity, whatever the niceness of the
    processes inside.
    """
    relative = name.lstrip("/")
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / relative
        try:
            path.mkdir(exist_ok=True)
        except OSError as error:
            log.debug("cannot create cgroup %s: %s", path, error)
            continue
        for setting in ("cpuset.cpus", "cpuset.mems"):
            parent_file = hierarchy / setting
            own = path / setting
            if parent_file.exists() and own.exists() and not own.read_text().strip():
                own.write_text(parent_file.read_text().strip())
        weights = (("cpu.shares", nice_weight(cpu_nice)), ("cpu.weight.nice", cpu_nice))
        for setting, value in weights:
            own = path / setting
            if own.exists():
                try:
                    own.write_text(str(value))
                except OSError as error:
                    log.debug("cannot set %s to %s: %s", own, value, error)


def cgroup_pids(name: str) -> set[int]:
    """Return the pids in the cgroup tree ``name`` of every hierarchy."""
    relative = name.lstrip("/")
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for directory, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    text = Path(directory, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(line) for line in text.split() if line.isdigit())
    return pids


def remove_cgroup_root(name: str) -> list[Path]:
    """Remove the cgroup tree ``name`` in every hierarchy; return the directories left behind."""
    relative = name.lstrip("/")
    left: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for directory, _dirs, _files in sorted(
            os.walk(top), key=lambda item: item[0].count("/"), reverse=True
        ):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(Path(directory))
    return left


# --------------------------------------------------------------------------- cleanup


def _unescape(field: str) -> str:
    r"""Undo the octal escapes of /proc/self/mountinfo (``\040`` for a space, ...)."""
    out = []
    index = 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1 : index + 4].isdigit():
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def mounts_under(directory: Path) -> list[Path]:
    """Return the mount points at or below ``directory``, deepest first."""
    prefix = str(directory.resolve()) if directory.exists() else str(directory)
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: (len(p.parts), str(p)), reverse=True)


_MNT_DETACH = 2


def unmount_all(directory: Path, *, attempts: int = 5) -> list[Path]:
    """Unmount everything at or below ``directory``; return what stayed mounted.

    Mounts are taken deepest first and detached (``MNT_DETACH``), as pods' volumes, containers'
    root filesystems and network namespaces are mounted there.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    for _ in range(attempts):
        points = mounts_under(directory)
        if not points:
            return []
        for point in points:
            if libc.umount2(os.fsencode(point), _MNT_DETACH) != 0:
                log.debug("umount %s: %s", point, os.strerror(ctypes.get_errno()))
    return mounts_under(directory)


def sandbox_netns_paths(state_dir: Path) -> list[Path]:
    """Return the network namespace files named by the container bundles in ``state_dir``.

    containerd writes each task's OCI spec to ``<state>/io.containerd.runtime.v2.task/<ns>/<id>/
    config.json``; a pod sandbox's names its network namespace.
    """
    found: set[Path] = set()
    tasks = state_dir / "io.containerd.runtime.v2.task"
    for spec in tasks.glob("*/*/config.json"):
        try:
            namespaces = json.loads(spec.read_text()).get("linux", {}).get("namespaces", [])
        except (OSError, ValueError):
            continue
        for namespace in namespaces:
            if namespace.get("type") == "network" and namespace.get("path"):
                found.add(Path(namespace["path"]))
    return sorted(found)


def container_ids(state_dir: Path) -> set[str]:
    """Return the ids of the sandboxes and containers with state in ``state_dir``."""
    ids: set[str] = set()
    for pattern in ("io.containerd.runtime.v2.task/*/*", "io.containerd.grpc.v1.cri/sandboxes/*"):
        ids.update(path.name for path in state_dir.glob(pattern) if path.is_dir())
    return ids


_SANDBOX_ID = re.compile(r"[0-9a-f]{64}")


def is_cni_cache_entry_of(name: str, network: str) -> bool:
    """Tell whether a CNI result cache file belongs to exactly this network.

    libcni names the file ``<network>-<container id>-<interface>`` (``getCacheFilePath`` in
    ``containernetworking/cni`` ``libcni/api.go``); the container ID is a sandbox's 64 hex digits,
    so the network ``pytest-probes-probes`` does not claim ``pytest-probes-probes-it-<id>-eth0``.
    """
    if not name.startswith(f"{network}-"):
        return False
    sandbox, _, interface = name[len(network) + 1:].partition("-")
    return bool(_SANDBOX_ID.fullmatch(sandbox)) and bool(interface)


def remove_cni_cache(
    cluster: str, sandbox_ids: Iterable[str], *, cache_dir: Path = CNI_CACHE_DIR
) -> list[Path]:
    """Remove the CNI result cache entries of a cluster's network and of its sandboxes.

    libcni caches each ADD result as ``<network>-<sandbox id>-<interface>``: the cluster's own
    network and the ``cni-loopback`` network containerd adds to every sandbox.

    Returns:
        The removed files.
    """
    if not cache_dir.is_dir():
        return []
    network = cluster_network_name(cluster)
    loopback = {f"cni-loopback-{sandbox}-lo" for sandbox in sandbox_ids}
    removed = []
    for entry in cache_dir.iterdir():
        if is_cni_cache_entry_of(entry.name, network) or entry.name in loopback:
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")
"""The shared chains the portmap plugin makes in the nat table (hostPort support)."""


def portmap_rules(save_text: str, network_name: str) -> list[tuple[list[str], str]]:
    """Find the portmap rules of one CNI network in ``iptables-save -t nat`` output.

    portmap jumps from ``CNI-HOSTPORT-DNAT`` to a per-sandbox ``CNI-DN-<hash>`` chain, with a
    comment naming the network and the sandbox.

    Returns:
        ``(rule, chain)`` pairs: the jump rule's arguments after ``-A CNI-HOSTPORT-DNAT`` (ready
        for ``iptables -t nat -D CNI-HOSTPORT-DNAT ...``) and the chain it jumps to.
    """
    found = []
    needle = f'name: "{network_name}" id:'
    for line in save_text.splitlines():
        if not line.startswith("-A CNI-HOSTPORT-DNAT "):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if not any(needle in word for word in words) or "-j" not in words:
            continue
        chain = words[words.index("-j") + 1]
        if chain.startswith("CNI-DN-"):
            found.append((words[2:], chain))
    return found


def nat_rules(*, timeout: float = 15) -> subprocess.CompletedProcess[str] | None:
    """Run ``iptables-save -t nat``; return ``None`` if it could not run or timed out."""
    try:
        return subprocess.run(
            ["iptables-save", "-t", "nat"], capture_output=True, text=True, timeout=timeout,
            check=False, env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _iptables(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["iptables", "-w", "5", *args], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def forward_rules_text() -> str:
    """Return ``iptables -S FORWARD`` (empty if iptables is missing or fails)."""
    done = _iptables("-S", "FORWARD")
    return done.stdout if done is not None and done.returncode == 0 else ""


def remove_portmap_rules(network_name: str) -> list[str]:
    """Remove the hostPort rules portmap made for a CNI network; return what failed.

    Only this network's rules go: each sandbox's jump from ``CNI-HOSTPORT-DNAT`` and the
    ``CNI-DN-<hash>`` chain it jumps to. The shared chains (:data:`PORTMAP_CHAINS`) and the jumps
    to them stay, as portmap's own DEL leaves them (``unforwardPorts`` in
    ``containernetworking/plugins`` ``plugins/meta/portmap/portmap_iptables.go``): another
    cluster may be adding its rules to them at this moment.
    """
    if shutil.which("iptables") is None or shutil.which("iptables-save") is None:
        return []
    save = nat_rules()
    if save is None:
        return ["iptables-save -t nat did not run"]
    if save.returncode != 0:
        return []
    problems = []
    for rule, chain in portmap_rules(save.stdout, network_name):
        for args in (("-D", "CNI-HOSTPORT-DNAT", *rule), ("-F", chain), ("-X", chain)):
            done = _iptables("-t", "nat", *args)
            if done is None or done.returncode != 0:
                problems.append(f"iptables -t nat {' '.join(args)}: {done.stderr if done else ''}")
    return problems


def shim_pids(socket: Path) -> list[int]:
    """Return the pids of containerd shims serving the containerd at ``socket``."""
    pids = []
    for pid, argv in supervisor.iter_processes():
        if argv and "containerd-shim" in Path(argv[0]).name and str(socket) in argv:
            pids.append(pid)
    return pids


def cleanup_node(
    *,
    cluster: str,
    cluster_dir: Path,
    state_dir: Path,
    socket: Path,
    network: PodNetwork | None,
    pod_logs_dir: Path,
) -> list[str]:
    """Remove every trace of a node that is no longer needed (its daemons must be stopped).

    Kills what is left in the pod cgroups and the containerd shims, unmounts everything under the
    cluster directory, removes the pods' network namespaces, the shims' socket folder, the
    bridge and its FORWARD rule, the CNI result cache entries, the container log links and the
    cgroup tree.

    Returns:
        Descriptions of what could not be removed (empty when everything went).
    """
    problems: list[str] = []
    cgroup = cgroup_root_name(cluster)
    netns = [path for path in sandbox_netns_paths(state_dir) if HOST_NETNS_DIR in path.parents]
    sandbox_ids = container_ids(state_dir)
    supervisor.kill_pids(sorted(cgroup_pids(cgroup)))
    supervisor.kill_pids(shim_pids(socket))
    for path in netns:
        libc_unmount(path)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            problems.append(f"network namespace {path}: {error}")
    left = unmount_all(cluster_dir)
    problems += [f"still mounted: {point}" for point in left]
    sockets = shim_socket_dir(cluster_dir)
    shutil.rmtree(sockets, ignore_errors=True)
    if sockets.exists():
        problems.append(f"shim socket folder {sockets} could not be removed")
    if network is not None:
        delete_bridge(network)
        if bridge_exists(network):
            problems.append(f"bridge {network.bridge} still exists")
        problems += remove_pod_traffic_rule(network, cluster)
    remove_cni_cache(cluster, sandbox_ids)
    problems += remove_portmap_rules(cluster_network_name(cluster))
    if CONTAINER_LOG_LINKS.is_dir():
        for link in CONTAINER_LOG_LINKS.iterdir():
            if link.is_symlink() and str(pod_logs_dir) in os.readlink(link):
                link.unlink(missing_ok=True)
    remaining = cgroup_pids(cgroup)
    if remaining:
        supervisor.kill_pids(sorted(remaining))
    left_cgroups = remove_cgroup_root(cgroup)
    if left_cgroups:
        supervisor.kill_pids(sorted(cgroup_pids(cgroup)))
        left_cgroups = remove_cgroup_root(cgroup)
    problems += [f"cgroup {path} could not be removed" for path in left_cgroups]
    return problems


KUBELET_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
"""Kernel settings the kubelet sets on start (``protectKernelDefaults: false``)."""


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def save_host_sysctls(path: Path) -> None:
    """Record the kernel settings the kubelet will change, unless a record exists already.

    The first cluster to start records the host's own values; :func:`restore_host_sysctls`
    puts them back when the last one is gone.
    """
    if path.exists():
        return
    values = {}
    for name in KUBELET_SYSCTLS:
        try:
            values[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            continue
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(values, indent=1))
    os.replace(tmp, path)


def restore_host_sysctls(path: Path) -> list[str]:
    """Write back the kernel settings recorded by :func:`save_host_sysctls`; drop the record.

    Returns:
        Descriptions of settings that could not be restored.
    """
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    problems = []
    for name, value in dict(values).items():
        if name not in KUBELET_SYSCTLS:
            continue
        try:
            target = _sysctl_path(name)
            if target.read_text().strip() != str(value):
                target.write_text(f"{value}\n")
        except OSError as error:
            problems.append(f"sysctl {name}={value}: {error}")
    path.unlink(missing_ok=True)
    return problems


def libc_unmount(path: Path) -> None:
    """Detach the mount at ``path`` if there is one."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.umount2(os.fsencode(path), _MNT_DETACH)
