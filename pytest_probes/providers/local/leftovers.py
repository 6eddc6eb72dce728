"""What a local cluster can leave behind on the host, and a check that it left nothing.

Take a :class:`Footprint` while the cluster runs (it notes what only a running cluster can tell:
its processes, the pods' network namespaces, its bridge and IP allocations), take the cluster
down, then :func:`leftovers` lists every trace still there: processes (zombies included, as ``ps``
shows them), mounts, network namespaces, the bridge, host-local IPAM allocations, CNI result
cache entries, hostPort iptables rules, the cgroup tree, the shims' socket folder and the cluster
directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_probes.providers.local import node, supervisor
from pytest_probes.providers.local.lifecycle import LocalCluster

HOST_LOCAL_DIR = Path("/var/lib/cni/networks")
"""host-local's default allocation directory (``<dir>/<network>/<ip>``); the local provider points
its IPAM at the cluster directory instead, but a leftover here would be a leak all the same."""


@dataclass(frozen=True)
class Footprint:
    """What a running local cluster occupies on the host.

    Attributes:
        cluster: The cluster name.
        root: Its directory.
        socket: Its containerd socket.
        processes: Its components, containerd shims and pod processes.
        netns: The network namespaces of its pod sandboxes.
        bridge: Its bridge interface, if it has one.
        network: Its CNI network name.
        ipam_dir: Its host-local allocation directory.
        ip_allocations: The pod IPs allocated when the footprint was taken.
    """

    cluster: str
    root: Path
    socket: Path
    processes: tuple[supervisor.ProcessRecord, ...]
    netns: tuple[Path, ...]
    bridge: str | None
    network: str
    ipam_dir: Path
    ip_allocations: tuple[str, ...]


def footprint(local: LocalCluster) -> Footprint:
    """Note what the running cluster ``local`` occupies on the host."""
    state = local.read_state()
    socket = Path(state.socket) if state is not None else local.paths.socket
    records = list(state.processes.values()) if state is not None else []
    pids = {record.pid for record in records}
    for pid in sorted((node.cgroup_pids(node.cgroup_root_name(local.name))
                       | set(node.shim_pids(socket))) - pids):
        record = supervisor.record_of(pid)
        if record is not None:
            records.append(record)
    network = node.cluster_network_name(local.name)
    ipam_dir = local.paths.data / "ipam"
    return Footprint(
        cluster=local.name,
        root=local.paths.root,
        socket=socket,
        processes=tuple(records),
        netns=tuple(node.sandbox_netns_paths(local.paths.containerd_state)),
        bridge=state.network.bridge if state is not None else None,
        network=network,
        ipam_dir=ipam_dir,
        ip_allocations=tuple(sorted(_allocations(ipam_dir / network))),
    )


def _allocations(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.name[:1].isdigit()}


def leftovers(fp: Footprint) -> list[str]:
    """Describe every trace of the cluster still on the host (empty when it left nothing).

    Run it after ``down`` has returned: it does not wait for anything.
    """
    found: list[str] = []
    for record in fp.processes:
        if supervisor.exists(record):
            zombie = "" if supervisor.is_alive(record) else " (zombie)"
            found.append(f"process {record.name} {record.pid}{zombie}")
    for marker in (str(fp.root), str(fp.socket)):
        found += [f"process {pid} mentions {marker}"
                  for pid in supervisor.processes_mentioning(marker)]
    cgroup = node.cgroup_root_name(fp.cluster)
    found += [f"process {pid} in cgroup {cgroup}" for pid in sorted(node.cgroup_pids(cgroup))]
    found += [f"cgroup {hierarchy / cgroup.lstrip('/')}"
              for hierarchy in node.cgroup_hierarchies()
              if (hierarchy / cgroup.lstrip("/")).exists()]
    found += [f"mount {point}" for point in node.mounts_under(fp.root)]
    found += [f"network namespace {path}" for path in fp.netns if path.exists()]
    if fp.bridge and Path("/sys/class/net", fp.bridge).exists():
        found.append(f"bridge {fp.bridge}")
    for directory in (fp.ipam_dir / fp.network, HOST_LOCAL_DIR / fp.network):
        found += [f"IP allocation {directory / ip}" for ip in sorted(_allocations(directory))]
    if node.CNI_CACHE_DIR.is_dir():
        found += [f"CNI cache entry {entry}" for entry in sorted(node.CNI_CACHE_DIR.iterdir())
                  if node.is_cni_cache_entry_of(entry.name, fp.network)]
    saved = node.nat_rules(timeout=30)
    nat = saved.stdout if saved is not None else ""
    found += [f"iptables nat rule jumping to {chain}"
              for _rule, chain in node.portmap_rules(nat, fp.network)]
    if fp.bridge:
        rules = node.forward_rules_text()
        found += [f"iptables rule {line}" for line in rules.splitlines()
                  if f"-i {fp.bridge} " in line and "pytest-probes" in line]
    sockets = node.shim_socket_dir(fp.root)
    if sockets.exists():
        found.append(f"shim socket folder {sockets}")
    if fp.root.exists():
        found.append(f"directory {fp.root}")
    if fp.socket.exists():
        found.append(f"socket {fp.socket}")
    return found

