"""The pod network of a local cluster: its subnet, the CNI config, the bridge, libcni's cache.

Each cluster's pods sit on a bridge of their own (``probes<N>``, its address the first IP of the
pod subnet ``10.<N>.0.0/16``), set up by the CNI bridge plugin with host-local IPAM. The bridge
carries no default route and IP forwarding stays as it is: pods talk to each other and to the host
(by pod IP both ways), and no pod traffic leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_probes.errors import ClusterError

CNI_CACHE_DIR = Path("/var/lib/cni/results")

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
