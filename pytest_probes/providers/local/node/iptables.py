"""The local cluster's iptables rules: the FORWARD rule for pod traffic, portmap's hostPort rules.

Nothing else of the host's firewall is touched: the host's policies, Docker's chains and other
clusters' rules stay as they are.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from pytest_probes.errors import ClusterError
from pytest_probes.providers.local.node.cni import PodNetwork


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
