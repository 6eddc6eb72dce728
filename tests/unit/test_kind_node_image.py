"""The offline kind node image's recipe pieces (no Docker, no build)."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

from pytest_probes.providers import kind_node_image as node


def test_the_reference_names_the_version_and_changes_with_the_recipe() -> None:
    ref = node.node_image_ref("1.37.2", "v0.33.0")
    assert ref.startswith("localhost/pytest-probes/kind-node:v1.37.2-")
    assert ref != node.node_image_ref("1.36.3", "v0.33.0")
    assert ref != node.node_image_ref("1.37.2", "v0.32.0")
    assert ref == node.node_image_ref("1.37.2", "v0.33.0")


def test_the_cni_network_is_the_first_nodes_range_of_kinds_pod_subnet() -> None:
    conflist = node.cni_conflist()
    ptp, portmap = conflist["plugins"]  # type: ignore[misc]
    assert ptp["type"] == "ptp" and portmap["type"] == "portmap"
    [[subnet]] = ptp["ipam"]["ranges"]
    assert ipaddress.ip_network(subnet["subnet"]).subnet_of(ipaddress.ip_network("10.244.0.0/16"))
    assert node.POD_RANGE in node.DEFAULT_CNI_MANIFEST
    assert "would you kindly" not in node.DEFAULT_CNI_MANIFEST  # kind must not template it


def test_containerd_config_uses_our_pause_image() -> None:
    config = tomllib.loads(node.containerd_config("localhost/pytest-probes/pause:3.10"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "localhost/pytest-probes/pause:3.10"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert "proxy_plugins" not in config


def test_systemd_is_set_up_as_kinds_base_image_does(tmp_path: Path) -> None:
    lib = tmp_path / "lib/systemd/system"
    for unit in ("multi-user.target.wants/getty.target",
                 "sysinit.target.wants/systemd-tmpfiles-setup.service",
                 "sockets.target.wants/systemd-udevd-control.socket",
                 "sysinit.target.wants/systemd-journald.service"):
        (lib / unit).parent.mkdir(parents=True, exist_ok=True)
        (lib / unit).write_text("")
    (tmp_path / "etc/systemd/system/timers.target.wants").mkdir(parents=True)
    (tmp_path / "etc/systemd/system/timers.target.wants/apt-daily.timer").write_text("")
    (tmp_path / "etc/systemd/journald.conf").write_text("[Journal]\n")
    (tmp_path / "sbin").mkdir()
    node._systemd_like_kind(tmp_path)
    assert not (lib / "multi-user.target.wants/getty.target").exists()
    assert not (lib / "sysinit.target.wants/systemd-tmpfiles-setup.service").exists()
    assert not (lib / "sockets.target.wants/systemd-udevd-control.socket").exists()
    assert (lib / "sysinit.target.wants/systemd-journald.service").exists()
    assert not (tmp_path / "etc/systemd/system/timers.target.wants/apt-daily.timer").exists()
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == [
        "containerd.service", "kubelet.service", "undo-mount-hacks.service"]
    assert (wants / "kubelet.service").readlink() == Path("/etc/systemd/system/kubelet.service")
    assert (tmp_path / "etc/systemd/system/systemd-binfmt.service").readlink() == Path("/dev/null")
    assert "ReadKMsg=no" in (tmp_path / "etc/systemd/journald.conf").read_text()
    assert (tmp_path / "sbin/init").readlink() == Path("/usr/lib/systemd/systemd")
