"""``cluster down`` removes what is the cluster's, and nothing of a cluster with a similar name.

Names the repository itself uses share prefixes (``probes``, ``probes-it``, ``probes-2``): a stray
``kubelet`` of ``probes-2``, its CNI cache entries and its hostPort rules must all survive
``pytest-probes cluster down --name probes``. The test uses names of its own with the same shape:
a cluster's cgroup tree, bridge and CNI network are named after it alone, whatever the cache
directory, so ``down`` of the real ``probes`` would stop a developer's running default cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_probes.providers.local import node, supervisor
from pytest_probes.providers.local.config import CNI_CONFIG_FILE

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.geteuid() != 0
    or not all(shutil.which(t) for t in ("iptables", "iptables-save")),
    reason="needs root on Linux and iptables",
)

OURS, THEIRS = "probes-idt", "probes-idt-2"


@pytest.fixture
def their_kubelet(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process named ``kubelet`` whose arguments name the other cluster's directory."""
    program = tmp_path / "bin" / "kubelet"
    program.parent.mkdir()
    program.symlink_to(sys.executable)
    theirs = tmp_path / "cache" / "clusters" / THEIRS
    theirs.mkdir(parents=True)
    proc = subprocess.Popen([str(program), "-c", "import time; time.sleep(120)",
                             f"--kubeconfig={theirs}/kubelet.conf", f"--root-dir={theirs}/kubelet"])
    time.sleep(0.3)
    yield proc
    proc.kill()
    proc.wait()


def test_down_leaves_a_similarly_named_clusters_process_and_cni_cache(
    tmp_path: Path, their_kubelet: subprocess.Popen[bytes]
) -> None:
    cache = tmp_path / "cache"
    (cache / "clusters" / OURS).mkdir(parents=True)
    node.CNI_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    entry = node.CNI_CACHE_DIR / f"{node.cluster_network_name(THEIRS)}-{'c' * 64}-eth0"
    entry.write_text("{}")
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_probes", "cluster", "down",
                               "--name", OURS, "--cache-dir", str(cache)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert their_kubelet.poll() is None, "the other cluster's kubelet was killed"
        assert supervisor.processes_mentioning(str(cache / "clusters" / THEIRS)) == [
            their_kubelet.pid]
        assert entry.exists(), "the other cluster's CNI cache entry was removed"
        assert not (cache / "clusters" / OURS).exists()
    finally:
        entry.unlink(missing_ok=True)


def _nat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", "-t", "nat", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def test_hostport_rules_of_another_network_and_the_shared_chains_stay() -> None:
    # portmap's layout for two networks: a jump per sandbox from CNI-HOSTPORT-DNAT to its own
    # CNI-DN chain, the comment naming network and sandbox.
    had_dnat = _nat("-S", "CNI-HOSTPORT-DNAT").returncode == 0
    if not had_dnat:
        assert _nat("-N", "CNI-HOSTPORT-DNAT").returncode == 0
    made: list[tuple[str, list[str]]] = []
    try:
        for network, chain, port in (
            (node.cluster_network_name(OURS), "CNI-DN-probesidtest0", "31990"),
            (node.cluster_network_name(THEIRS), "CNI-DN-probesidtest1", "31991"),
        ):
            assert _nat("-N", chain).returncode == 0
            rule = ["-p", "tcp", "-m", "comment", "--comment",
                    f'dnat name: "{network}" id: "{"d" * 64}"', "-m", "multiport", "--dports",
                    port, "-j", chain]
            assert _nat("-A", "CNI-HOSTPORT-DNAT", *rule).returncode == 0
            made.append((chain, rule))
        assert node.remove_portmap_rules(node.cluster_network_name(OURS)) == []
        left = _nat("-S", "CNI-HOSTPORT-DNAT")
        assert left.returncode == 0, "the shared chain was removed"
        assert "CNI-DN-probesidtest1" in left.stdout
        assert "CNI-DN-probesidtest0" not in left.stdout
        assert _nat("-S", "CNI-DN-probesidtest1").returncode == 0
        assert _nat("-S", "CNI-DN-probesidtest0").returncode != 0
        # The last hostPort rule gone: the shared chain still stays (portmap's own DEL leaves it;
        # another cluster's ADD may be using it right now).
        assert node.remove_portmap_rules(node.cluster_network_name(THEIRS)) == []
        assert _nat("-S", "CNI-DN-probesidtest1").returncode != 0
        assert _nat("-S", "CNI-HOSTPORT-DNAT").returncode == 0, "the shared chain was removed"
    finally:
        for chain, rule in made:
            _nat("-D", "CNI-HOSTPORT-DNAT", *rule)
            _nat("-F", chain)
            _nat("-X", chain)
        if not had_dnat:
            _nat("-X", "CNI-HOSTPORT-DNAT")


def _free_octet() -> int:
    taken = {int(p.name[len("probes"):]) for p in Path("/sys/class/net").iterdir()
             if p.name.startswith("probes") and p.name[len("probes"):].isdigit()}
    return max(set(node.SUBNET_OCTETS) - taken)


@pytest.mark.parametrize("record", ["old-format state", "unreadable state"])
def test_down_removes_the_bridge_of_a_cluster_whose_state_it_cannot_read(
    tmp_path: Path, record: str
) -> None:
    network = node.PodNetwork(_free_octet())
    root = tmp_path / "cache" / "clusters" / OURS
    (root / "etc" / "cni").mkdir(parents=True)
    if record == "old-format state":
        # What an earlier release wrote: the subnet, but not every field of today's state.
        (root / "cluster.json").write_text(json.dumps({"name": OURS,
                                                        "pod_subnet_octet": network.octet}))
    else:
        (root / "cluster.json").write_text("{truncated")
        (root / "etc" / "cni" / CNI_CONFIG_FILE).write_text(json.dumps(
            node.render_cni_config(network, name=node.cluster_network_name(OURS),
                                   ipam_dir=root / "data" / "ipam")))
    subprocess.run(["ip", "link", "add", network.bridge, "type", "bridge"], check=True)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_probes", "cluster", "down",
                               "--name", OURS, "--cache-dir", str(tmp_path / "cache")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert not Path("/sys/class/net", network.bridge).exists(), "the bridge was left"
        assert not root.exists()
    finally:
        subprocess.run(["ip", "link", "del", network.bridge], capture_output=True, check=False)
