"""Host plumbing of the local node (cgroups, bridge, mounts, overlay check). Needs root on Linux."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pytest_probes.providers.local import node, supervisor
from pytest_probes.providers.local.node import kubelet

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="needs root on Linux"
)


def test_cgroup_root_is_usable_by_a_process_and_removed_with_it():
    name = f"/pytest-probes-unit-{uuid.uuid4().hex[:8]}"
    node.create_cgroup_root(name)
    try:
        hierarchies = [h for h in node.cgroup_hierarchies() if (h / name.lstrip("/")).is_dir()]
        assert hierarchies
        cpuset = [h for h in hierarchies if (h / "cpuset.cpus").exists()]
        for hierarchy in cpuset:
            assert (hierarchy / name.lstrip("/") / "cpuset.cpus").read_text().strip()
        child = hierarchies[0] / name.lstrip("/") / "child"
        child.mkdir()
        sleeper = subprocess.Popen(["sleep", "30"])
        (child / "cgroup.procs").write_text(str(sleeper.pid))
        assert node.cgroup_pids(name) == {sleeper.pid}
        supervisor.kill_pids(sorted(node.cgroup_pids(name)))
        sleeper.wait(timeout=5)
        assert node.cgroup_pids(name) == set()
    finally:
        left = node.remove_cgroup_root(name)
    assert left == []
    assert not any((h / name.lstrip("/")).exists() for h in node.cgroup_hierarchies())


def test_cgroup_root_weighs_as_one_task_at_the_given_niceness():
    name = f"/pytest-probes-unit-{uuid.uuid4().hex[:8]}"
    node.create_cgroup_root(name, cpu_nice=-10)
    try:
        settings = [
            (h / name.lstrip("/") / setting, expected)
            for h in node.cgroup_hierarchies()
            for setting, expected in (("cpu.shares", "9548"), ("cpu.weight.nice", "-10"))
            if (h / name.lstrip("/") / setting).exists()
        ]
        assert settings, "no cpu controller in any hierarchy"
        for path, expected in settings:
            assert path.read_text().strip() == expected, path
    finally:
        assert node.remove_cgroup_root(name) == []


def test_bridge_is_created_with_the_gateway_address_and_deleted():
    network = node.PodNetwork(127)
    if node.bridge_exists(network):
        pytest.skip(f"{network.bridge} is in use by a cluster")
    node.create_bridge(network)
    try:
        shown = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "dev", network.bridge],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{network.gateway}/16" in shown
        forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    finally:
        node.delete_bridge(network)
    assert not node.bridge_exists(network)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward


def test_unmount_all_detaches_nested_mounts_deepest_first(tmp_path: Path):
    outer = tmp_path / "a"
    inner = outer / "b"
    outer.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer)], check=True)
    inner.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(inner)], check=True)
    assert node.mounts_under(tmp_path) == [inner, outer]
    assert node.unmount_all(tmp_path) == []
    assert node.mounts_under(tmp_path) == []


def test_make_rshared_mounts_once_and_unmount_all_takes_it(tmp_path: Path):
    root = tmp_path / "data" / "kubelet"
    if mounts_text_says_shared(tmp_path):
        pytest.skip("this host's mount holding the tmp dir is shared: the kubelet mounts nothing")
    assert node.make_rshared(root) is True
    assert node.mounts_under(tmp_path) == [root]
    assert node.on_shared_mount(str(root / "pods-api"), Path("/proc/self/mountinfo").read_text())
    assert node.make_rshared(root) is False  # a restarted kubelet's root: mounted already
    assert node.unmount_all(tmp_path) == []


def mounts_text_says_shared(path: Path) -> bool:
    return node.on_shared_mount(str(path.resolve()), Path("/proc/self/mountinfo").read_text())


def test_overlay_check_leaves_nothing_behind(tmp_path: Path):
    result = node.overlay_works(tmp_path / "scratch")
    assert isinstance(result, bool)
    assert list((tmp_path / "scratch").iterdir()) == []
    assert node.mounts_under(tmp_path) == []


def test_host_sysctls_are_recorded_once_and_restored(tmp_path: Path):
    record = tmp_path / "host-sysctl.json"
    before = {name: kubelet._sysctl_path(name).read_text().strip() for name in node.KUBELET_SYSCTLS}
    node.save_host_sysctls(record)
    assert json.loads(record.read_text()) == before
    record.write_text(json.dumps({"kernel.panic": before["kernel.panic"], "vm.bogus": "1"}))
    node.save_host_sysctls(record)  # an existing record (the host's real values) is kept
    assert "vm.bogus" in json.loads(record.read_text())
    assert node.restore_host_sysctls(record) == []
    assert not record.exists()
    after = {name: kubelet._sysctl_path(name).read_text().strip() for name in node.KUBELET_SYSCTLS}
    assert after == before
    assert node.restore_host_sysctls(record) == []  # nothing recorded: nothing to do
