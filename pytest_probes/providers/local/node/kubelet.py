"""The node's kubelet: its configuration, its command line and the kernel settings it changes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


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


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    """Write a YAML document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False))


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
