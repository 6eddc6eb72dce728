"""Removing every trace of a node: processes, mounts, network namespaces, network, cgroups."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pytest_probes.providers.local import supervisor
from pytest_probes.providers.local.node.cgroups import (
    cgroup_pids,
    cgroup_root_name,
    remove_cgroup_root,
)
from pytest_probes.providers.local.node.cni import (
    PodNetwork,
    bridge_exists,
    cluster_network_name,
    delete_bridge,
    remove_cni_cache,
)
from pytest_probes.providers.local.node.containerd import (
    container_ids,
    sandbox_netns_paths,
    shim_pids,
    shim_socket_dir,
)
from pytest_probes.providers.local.node.iptables import (
    remove_pod_traffic_rule,
    remove_portmap_rules,
)
from pytest_probes.providers.local.node.mounts import libc_unmount, unmount_all

HOST_NETNS_DIR = Path("/run/netns")
CONTAINER_LOG_LINKS = Path("/var/log/containers")


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
