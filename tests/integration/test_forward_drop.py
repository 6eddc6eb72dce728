"""The local provider's pods reach each other when the host's FORWARD policy is DROP.

Once dockerd has run, the host's iptables FORWARD policy is DROP and bridged traffic passes
iptables (``br_netfilter``): without a rule of its own, the local cluster's pod-to-pod traffic is
dropped, and the six seed-000 scenarios (whose app-target pods ask the app-config pod which pod to
fail) then reported "observed failures 0". This test sets the policy to DROP for the duration of
a seed-000 run on a cluster of its own, as Docker would, and puts the host's policy back after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAME = "probes-fwd"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0
    or shutil.which("iptables") is None or shutil.which("go") is None,
    reason="needs root on Linux, iptables and Go (the local provider)",
)


def _policy() -> str:
    done = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True,
                          check=True)
    return next(line.split()[2] for line in done.stdout.splitlines()
                if line.startswith("-P FORWARD "))


def _bridge_traffic_is_filtered() -> bool:
    path = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    return path.exists() and path.read_text().strip() == "1"


@pytest.fixture
def forward_drop() -> Iterator[None]:
    if not _bridge_traffic_is_filtered():
        subprocess.run(["modprobe", "br_netfilter"], check=False, capture_output=True)
    if not _bridge_traffic_is_filtered():
        pytest.skip("bridged traffic does not pass iptables here (no br_netfilter): the "
                    "FORWARD policy cannot affect pods")
    before = _policy()
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-P", "FORWARD", before], check=True)


def test_seed000_pod_to_pod_scenarios_pass_with_forward_policy_drop(forward_drop: None) -> None:
    done = subprocess.run(
        # As make runs the live suite: scripts/live, and the controller readies the cluster.
        [sys.executable, "scripts/live", sys.executable, "-m", "pytest",
         "tests/live/test_seed000_liveness_endpoints.py",
         "-m", "probes", "-n", "6", "-p", "no:cacheprovider", "-q",
         "--probes-provider", "local", "--probes-cluster-name", NAME],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout, done.stdout[-2000:]
    assert _policy() == "DROP"  # the provider never touched the policy
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True,
                           check=True).stdout
    assert f"pytest-probes {NAME}" not in rules, rules  # its rule went with the cluster
