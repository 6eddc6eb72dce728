"""The node of a local cluster: containerd, the CNI bridge network and the kubelet.

Everything a node owns lives inside the cluster directory: containerd's config, root, state and
socket; the CNI config and the host-local IP allocations; the kubelet's config, root directory and
pod logs; network namespaces (containerd keeps them under its state directory). What cannot live
there is named after the cluster: the bridge (``probes<N>``, its address the first IP of the pod
subnet ``10.<N>.0.0/16``), the cgroup tree ``/pytest-probes-<name>`` and the CNI result cache
entries of network ``pytest-probes-<name>``. :func:`cleanup_node` removes all of it.

The bridge carries no default route and IP forwarding stays as it is: pods talk to each other and
to the host (by pod IP both ways), and no pod traffic leaves the machine.

One module a concern; this package names them all, so callers write ``node.<name>``:

- :mod:`.cni`: the pod network (subnet choice, the CNI config, the bridge, libcni's result cache);
- :mod:`.iptables`: the FORWARD rule for pod traffic and portmap's hostPort rules;
- :mod:`.containerd`: containerd's config and command line, its shims and task state;
- :mod:`.kubelet`: the kubelet's config and command line, the kernel settings it changes;
- :mod:`.cgroups`: the cluster's cgroup tree and its CPU weight;
- :mod:`.mounts`: the mount table, unmounting, the kubelet's shared root, the cgroup hierarchies,
  the overlayfs check;
- :mod:`.cleanup`: removing every trace of a node (:func:`cleanup_node`).
"""

from pytest_probes.providers.local.node.cgroups import (
    CGROUP_MOUNT,
    NICE_0_WEIGHT,
    cgroup_pids,
    cgroup_root_name,
    create_cgroup_root,
    nice_weight,
    remove_cgroup_root,
)
from pytest_probes.providers.local.node.cleanup import (
    CONTAINER_LOG_LINKS,
    HOST_NETNS_DIR,
    cleanup_node,
)
from pytest_probes.providers.local.node.cni import (
    CNI_CACHE_DIR,
    SUBNET_OCTETS,
    PodNetwork,
    bridge_exists,
    choose_pod_network,
    cluster_network_name,
    create_bridge,
    delete_bridge,
    is_cni_cache_entry_of,
    remove_cni_cache,
    render_cni_config,
    used_networks,
)
from pytest_probes.providers.local.node.containerd import (
    SHIM_SOCKETS_ROOT,
    container_ids,
    containerd_command,
    render_containerd_config,
    sandbox_netns_paths,
    shim_pids,
    shim_socket_dir,
)
from pytest_probes.providers.local.node.iptables import (
    PORTMAP_CHAINS,
    allow_pod_traffic,
    forward_rule,
    forward_rules_text,
    nat_rules,
    portmap_rules,
    remove_pod_traffic_rule,
    remove_portmap_rules,
)
from pytest_probes.providers.local.node.kubelet import (
    DEAD_INSTANCES_KEPT,
    KUBELET_SYSCTLS,
    kubelet_command,
    render_kubelet_config,
    restore_host_sysctls,
    save_host_sysctls,
    write_yaml,
)
from pytest_probes.providers.local.node.mounts import (
    cgroup_hierarchies,
    libc_unmount,
    make_rshared,
    mounts_under,
    on_shared_mount,
    overlay_works,
    unmount_all,
)

__all__ = [
    "CGROUP_MOUNT",
    "CNI_CACHE_DIR",
    "CONTAINER_LOG_LINKS",
    "DEAD_INSTANCES_KEPT",
    "HOST_NETNS_DIR",
    "KUBELET_SYSCTLS",
    "NICE_0_WEIGHT",
    "PORTMAP_CHAINS",
    "SHIM_SOCKETS_ROOT",
    "SUBNET_OCTETS",
    "PodNetwork",
    "allow_pod_traffic",
    "bridge_exists",
    "cgroup_hierarchies",
    "cgroup_pids",
    "cgroup_root_name",
    "choose_pod_network",
    "cleanup_node",
    "cluster_network_name",
    "container_ids",
    "containerd_command",
    "create_bridge",
    "create_cgroup_root",
    "delete_bridge",
    "forward_rule",
    "forward_rules_text",
    "is_cni_cache_entry_of",
    "kubelet_command",
    "libc_unmount",
    "make_rshared",
    "mounts_under",
    "nat_rules",
    "nice_weight",
    "on_shared_mount",
    "overlay_works",
    "portmap_rules",
    "remove_cgroup_root",
    "remove_cni_cache",
    "remove_pod_traffic_rule",
    "remove_portmap_rules",
    "render_cni_config",
    "render_containerd_config",
    "render_kubelet_config",
    "restore_host_sysctls",
    "sandbox_netns_paths",
    "save_host_sysctls",
    "shim_pids",
    "shim_socket_dir",
    "unmount_all",
    "used_networks",
    "write_yaml",
]
