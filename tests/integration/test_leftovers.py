"""``cluster down`` leaves nothing behind, checked the moment it returns.

A cluster started and stopped by the command line (as a person does: its processes then belong to
the host's init, which reaps them when it gets round to it) runs a pod with a hostPort, so it has
everything a cluster can leak: processes, mounts, a network namespace, a bridge, an IP allocation,
a CNI cache entry and iptables rules. The moment ``pytest-probes cluster down`` returns, none of it
may be there, not even a zombie process that ``ps`` would still list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_probes.cluster import default_cache_dir
from pytest_probes.errors import ProbesError
from pytest_probes.providers.local.config import COMPONENTS
from pytest_probes.providers.local.leftovers import footprint, leftovers
from pytest_probes.providers.local.lifecycle import LocalCluster

NAME = "probes-leftovers"
HOST_PORT = 31873
CACHE_DIR = default_cache_dir()

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.geteuid() != 0
    or not all(shutil.which(t) for t in ("ip", "iptables-save"))
    or shutil.which("go") is None,
    reason="needs root on Linux, ip, iptables and Go (to build Kubernetes and the runtime)",
)


def _cli(*args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest_probes", "cluster", *args,
                           "--name", NAME], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return time.monotonic() - started


def _run_pod(local: LocalCluster) -> None:
    from kubernetes import client

    from pytest_probes.cluster import Cluster
    from pytest_probes.providers.local import LocalProvider

    cluster = Cluster(name=NAME, provider="local", kubeconfig=local.paths.kubeconfig,
                      k8s_version="", created=False)
    image = LocalProvider().ensure_target_image(cluster, lambda line: None)
    api = client.CoreV1Api(cluster.api_client())
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="leftovers")))
    api.create_namespaced_pod("leftovers", client.V1Pod(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[
            client.V1Container(name="app", image=image, image_pull_policy="Never",
                               ports=[client.V1ContainerPort(container_port=8080,
                                                             host_port=HOST_PORT)])])))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if api.read_namespaced_pod("web", "leftovers").status.phase == "Running":
            return
        time.sleep(0.5)
    raise AssertionError("the pod did not start within 90 s")


def test_cluster_down_leaves_no_process_mount_netns_ip_or_iptables_rule_behind() -> None:
    local = LocalCluster(NAME, CACHE_DIR)
    try:
        _cli("up")
        _run_pod(local)
        fp = footprint(local)
        # The footprint is real: every kind of trace is there before down.
        assert {r.name for r in fp.processes} >= set(COMPONENTS)
        assert len(fp.processes) > len(COMPONENTS)  # the shim and the pod's processes
        assert fp.netns and fp.ip_allocations and fp.bridge
        assert leftovers(fp)  # the checker sees the running cluster
        took = _cli("down")
        left = leftovers(fp)
    finally:
        try:
            local.down(lambda line: None)
        except ProbesError:
            pass
    print(f"cluster down took {took:.1f} s; footprint: {len(fp.processes)} processes, "
          f"{len(fp.netns)} netns, {len(fp.ip_allocations)} IPs; left: {left}")
    assert left == []


def test_the_checker_names_what_is_left(tmp_path: Path) -> None:
    # A process that mentions the cluster directory, and the directory itself.
    local = LocalCluster("probes-leftovers-fake", tmp_path)
    local.paths.root.mkdir(parents=True)
    fp = footprint(local)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                                str(local.paths.root)])
    while b"time.sleep" not in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes():
        time.sleep(0.01)  # until it has exec'd
    try:
        found = leftovers(fp)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert f"process {sleeper.pid} mentions {local.paths.root}" in found
    assert f"directory {local.paths.root}" in found
