"""Config files and command lines the local provider renders (pure functions)."""

from __future__ import annotations

import ipaddress
import itertools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pytest_probes.cluster_settings import ClusterSettings
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import controlplane, node
from pytest_probes.providers.local.config import ClusterPaths, ClusterState, kubelet_config
from pytest_probes.providers.local.controlplane import Ports
from pytest_probes.providers.local.node import mounts
from pytest_probes.providers.local.pki import PkiPaths
from pytest_probes.providers.local.supervisor import ProcessRecord

PORTS = Ports(2379, 2380, 6443, 10257, 10259, 10250, 10248)


def test_containerd_config_is_version_3_with_everything_inside_the_cluster(tmp_path: Path):
    text = node.render_containerd_config(
        root=tmp_path / "root",
        state=tmp_path / "state",
        socket=tmp_path / "c.sock",
        cni_conf_dir=tmp_path / "cni",
        sandbox_image="localhost/pytest-probes/pause:3.10",
        snapshotter="native",
        cni_bin_dir=tmp_path / "cni-bin",
        runc=tmp_path / "runc-bin" / "runc",
        shim_sockets=node.shim_socket_dir(tmp_path),
    )
    config = tomllib.loads(text)
    # containerd 2.3's own version (version.ConfigVersion): read as is, not migrated.
    assert config["version"] == 4
    assert config["imports"] == [str(tmp_path / "root" / "conf.d" / "*.toml")]
    assert config["temp"] == str(tmp_path / "state" / "tmp")
    assert config["root"] == str(tmp_path / "root")
    assert config["state"] == str(tmp_path / "state")
    plugins = config["plugins"]
    assert plugins["io.containerd.server.v1.grpc"]["address"] == str(tmp_path / "c.sock")
    assert plugins["io.containerd.server.v1.ttrpc"]["address"] == str(tmp_path / "c.sock.ttrpc")
    sockets = plugins["io.containerd.shim.v1.manager"]["socket_dir"]
    assert sockets == str(node.shim_socket_dir(tmp_path))
    # NRI would listen on /var/run/nri/nri.sock, shared by every cluster on the host.
    assert {"io.containerd.nri.v1.nri", "io.containerd.image-verifier.v1.bindir"} <= set(
        config["disabled_plugins"])
    images = plugins["io.containerd.cri.v1.images"]
    assert images["pinned_images"] == {"sandbox": "localhost/pytest-probes/pause:3.10"}
    assert images["snapshotter"] == "native"
    runtime = plugins["io.containerd.cri.v1.runtime"]
    assert runtime["netns_mounts_under_state_dir"] is True
    assert runtime["restrict_oom_score_adj"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]
    assert runtime["containerd"]["default_runtime_name"] == "runc"
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"BinaryName": str(tmp_path / "runc-bin" / "runc"),
                               "SystemdCgroup": False}
    assert runtime["cni"] == {
        "bin_dirs": [str(tmp_path / "cni-bin")],
        "conf_dir": str(tmp_path / "cni"),
        "max_conf_num": 1,
    }
    server = plugins["io.containerd.grpc.v1.cri"]
    assert server == {"stream_server_address": "127.0.0.1", "stream_server_port": "0"}
    assert plugins["io.containerd.internal.v1.opt"]["path"].startswith(str(tmp_path))


def test_containerd_config_quotes_paths():
    odd = Path('/tmp/we"ird dir')
    config = tomllib.loads(
        node.render_containerd_config(
            root=odd,
            state=odd,
            socket=odd / "s",
            cni_conf_dir=odd,
            sandbox_image="x",
            snapshotter="overlayfs",
            cni_bin_dir=odd,
            runc=odd / "runc",
            shim_sockets=odd,
        )
    )
    assert config["root"] == str(odd)
    assert config["plugins"]["io.containerd.cri.v1.runtime"]["cni"]["bin_dirs"] == [str(odd)]


def test_shim_socket_dir_is_short_and_differs_per_cluster():
    long = Path("/root/.cache/pytest-probes/clusters") / ("x" * 63)
    first = node.shim_socket_dir(long)
    # containerd refuses a socket_dir over 42 characters (core/runtime/v2/shim_manager.go).
    assert len(str(first)) <= 42
    assert first != node.shim_socket_dir(long.with_name("y" * 63))


def test_cni_config_bridge_without_gateway_or_masquerade(tmp_path: Path):
    network = node.PodNetwork(90)
    config = node.render_cni_config(network, name="pytest-probes-x", ipam_dir=tmp_path / "ipam")
    assert config["name"] == "pytest-probes-x"
    bridge, portmap = config["plugins"]
    assert bridge["type"] == "bridge"
    assert bridge["bridge"] == "probes90"
    assert bridge["isGateway"] is False and bridge["ipMasq"] is False
    assert bridge["ipam"]["type"] == "host-local"
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.90.0.0/16", "gateway": "10.90.0.1"}]]
    assert "routes" not in bridge["ipam"]  # no default route: pod traffic stays here
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}
    json.dumps(config)


def test_pod_network_names():
    network = node.PodNetwork(88)
    assert (network.subnet, network.gateway, network.bridge) == (
        "10.88.0.0/16",
        "10.88.0.1",
        "probes88",
    )
    assert len(network.bridge) <= 15
    assert len(node.PodNetwork(127).bridge) <= 15


def test_choose_pod_network_skips_taken_and_host_networks():
    used = [
        ipaddress.IPv4Network("10.88.4.0/24"),
        ipaddress.IPv4Network("0.0.0.0/0"),
        ipaddress.IPv4Network("192.0.2.0/24"),
    ]
    assert node.choose_pod_network({89}, used) == node.PodNetwork(90)
    assert node.choose_pod_network(set(), []) == node.PodNetwork(88)


def test_choose_pod_network_fails_when_everything_is_taken():
    with pytest.raises(ClusterError, match="no free pod subnet"):
        node.choose_pod_network(set(node.SUBNET_OCTETS), [])
    with pytest.raises(ClusterError):
        node.choose_pod_network(set(), [ipaddress.IPv4Network("10.0.0.0/8")])


def test_kubelet_config(tmp_path: Path):
    config = node.render_kubelet_config(
        address="10.88.0.1",
        port=10250,
        healthz_port=10248,
        ca_file=tmp_path / "ca.crt",
        tls_cert=tmp_path / "k.crt",
        tls_key=tmp_path / "k.key",
        runtime_socket=tmp_path / "c.sock",
        resolv_conf=tmp_path / "resolv.conf",
        cgroup_root="/pytest-probes-x",
        pod_logs_dir=tmp_path / "logs",
        volume_plugin_dir=tmp_path / "vp",
    )
    assert config["kind"] == "KubeletConfiguration"
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["containerRuntimeEndpoint"] == f"unix://{tmp_path / 'c.sock'}"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authentication"]["webhook"]["enabled"] is True
    assert config["authentication"]["x509"]["clientCAFile"] == str(tmp_path / "ca.crt")
    assert config["authorization"]["mode"] == "Webhook"
    assert config["clusterDNS"] == ["127.0.0.1"]  # no MissingClusterDNS warning per pod start
    assert config["resolvConf"] == str(tmp_path / "resolv.conf")
    assert config["imageGCHighThresholdPercent"] == 100
    assert config["serializeImagePulls"] is True
    assert config["readOnlyPort"] == 0
    assert "staticPodPath" not in config
    for signal_name, threshold in config["evictionHard"].items():
        if signal_name != "memory.available":
            assert threshold == "1%"
    for key in ("podLogsDir", "volumePluginDir", "tlsCertFile"):
        assert config[key].startswith(str(tmp_path))


def test_kubelet_command(tmp_path: Path):
    argv = node.kubelet_command(
        tmp_path / "kubelet",
        config=tmp_path / "k.yaml",
        kubeconfig=tmp_path / "kc",
        root_dir=tmp_path / "root",
        node_name="x-node",
        node_ip="10.88.0.1",
    )
    assert argv[0] == str(tmp_path / "kubelet")
    assert f"--root-dir={tmp_path / 'root'}" in argv
    assert "--hostname-override=x-node" in argv
    assert "--node-ip=10.88.0.1" in argv
    # The default, 1, lets container GC skip a crash-loop back-off step (node.DEAD_INSTANCES_KEPT).
    assert "--maximum-dead-containers-per-container=2" in argv


def test_etcd_command(tmp_path: Path):
    pki = PkiPaths(tmp_path / "pki")
    argv = controlplane.etcd_command(tmp_path / "etcd", data_dir=tmp_path / "d", ports=PORTS,
                                     pki=pki)
    assert "--listen-client-urls=https://127.0.0.1:2379" in argv
    assert "--listen-peer-urls=https://127.0.0.1:2380" in argv
    assert f"--data-dir={tmp_path / 'd'}" in argv
    assert any(arg.startswith("--quota-backend-bytes=") for arg in argv)
    assert all("0.0.0.0" not in arg and "http://" not in arg for arg in argv)
    # Only clients and peers with a certificate of etcd's own CA.
    for flag in ("--client-cert-auth=true", "--peer-client-cert-auth=true",
                 f"--trusted-ca-file={pki.etcd_ca_cert}",
                 f"--peer-trusted-ca-file={pki.etcd_ca_cert}",
                 f"--cert-file={pki.cert('etcd-server')}", f"--key-file={pki.key('etcd-server')}"):
        assert flag in argv


def test_apiserver_command(tmp_path: Path):
    pki = PkiPaths(tmp_path / "pki")
    argv = controlplane.apiserver_command(
        tmp_path / "kube-apiserver", pki=pki, ports=PORTS, advertise_address="10.88.0.1"
    )
    assert "--bind-address=127.0.0.1" in argv
    assert "--secure-port=6443" in argv
    assert "--etcd-servers=https://127.0.0.1:2379" in argv
    assert f"--etcd-cafile={pki.etcd_ca_cert}" in argv
    assert f"--etcd-certfile={pki.cert('etcd-apiserver-client')}" in argv
    assert f"--etcd-keyfile={pki.key('etcd-apiserver-client')}" in argv
    assert "--anonymous-auth=false" in argv
    assert "--authorization-mode=Node,RBAC" in argv
    assert f"--service-cluster-ip-range={controlplane.SERVICE_CIDR}" in argv
    assert f"--service-account-signing-key-file={pki.sa_key}" in argv
    assert f"--service-account-key-file={pki.sa_pub}" in argv
    assert f"--client-ca-file={pki.ca_cert}" in argv
    assert "--advertise-address=10.88.0.1" in argv
    assert ipaddress.ip_address(controlplane.SERVICE_IP) in ipaddress.ip_network(
        controlplane.SERVICE_CIDR
    )


def test_controller_manager_and_scheduler_commands(tmp_path: Path):
    pki = PkiPaths(tmp_path / "pki")
    kcm = controlplane.controller_manager_command(
        tmp_path / "kcm", pki=pki, kubeconfig=tmp_path / "kc", ports=PORTS, cluster_name="x"
    )
    assert "--use-service-account-credentials=true" in kcm
    assert f"--root-ca-file={pki.ca_cert}" in kcm
    assert f"--service-account-private-key-file={pki.sa_key}" in kcm
    assert "--secure-port=10257" in kcm and "--bind-address=127.0.0.1" in kcm
    controllers = next(a for a in kcm if a.startswith("--controllers="))
    assert controllers.split("=", 1)[1].split(",")[0] == "*"
    sched = controlplane.scheduler_command(tmp_path / "s", kubeconfig=tmp_path / "kc", ports=PORTS)
    assert f"--kubeconfig={tmp_path / 'kc'}" in sched
    assert "--secure-port=10259" in sched


def test_cluster_state_round_trips_through_json(tmp_path: Path):
    record = ProcessRecord("etcd", 123, 456, ("/bin/etcd", "--x"), tmp_path / "etcd.log")
    state = ClusterState(
        name="x",
        version="1.34.4",
        created="2026-01-01T00:00:00+00:00",
        ports=PORTS,
        network=node.PodNetwork(91),
        node_name="x-node",
        snapshotter="overlayfs",
        socket=str(tmp_path / "c.sock"),
        cache_dir=str(tmp_path),
        processes={"etcd": record},
    )
    data = json.loads(json.dumps(state.to_json()))
    assert data["pod_subnet"] == "10.91.0.0/16"
    assert ClusterState.from_json(data) == state
    configured = ClusterState.from_json({**data, "settings": SETTINGS.to_json()})
    assert configured.settings == SETTINGS
    assert ClusterState.from_json(json.loads(json.dumps(configured.to_json()))) == configured
    # A state file written before configured clusters: the default configuration.
    assert ClusterState.from_json({k: v for k, v in data.items() if k != "settings"}) == state
    with pytest.raises(ValueError):
        ClusterState.from_json({"name": "x"})


def test_cluster_paths_keep_the_socket_short(tmp_path: Path):
    # Only paths are computed here; pytest's own tmp_path can already be too long for a socket.
    short = ClusterPaths(Path("/tmp/c"))
    assert short.socket.parent == short.run
    deep = ClusterPaths(tmp_path / ("d" * 120) / "c")
    assert len(str(deep.socket)) < 100
    assert str(deep.socket).startswith("/run/pytest-probes/")
    assert deep.lock_file.parent == deep.root.parent
    # Every process must agree on the path (no per-process hash seed).
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from pytest_probes.providers.local.config import ClusterPaths; "
            "print(ClusterPaths(Path(sys.argv[1])).socket)",
            str(deep.root),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert other.stdout.strip() == str(deep.socket)


def test_remove_cni_cache_only_touches_this_cluster(tmp_path: Path):
    # libcni's names: <network>-<sandbox id (64 hex)>-<interface>. Cluster "probes" must not
    # claim the entries of "probes-it" (network pytest-probes-probes-it), nor "x" those of "xy".
    ours, theirs = "a" * 64, "b" * 64
    names = [
        f"pytest-probes-probes-{ours}-eth0",
        f"pytest-probes-probes-it-{theirs}-eth0",
        f"pytest-probes-probesx-{theirs}-eth0",
        f"cni-loopback-{ours}-lo",
        f"cni-loopback-{theirs}-lo",
        f"someone-else-{ours}-eth0",
    ]
    for name in names:
        (tmp_path / name).write_text("{}")
    removed = node.remove_cni_cache("probes", {ours}, cache_dir=tmp_path)
    assert sorted(p.name for p in removed) == [f"cni-loopback-{ours}-lo",
                                               f"pytest-probes-probes-{ours}-eth0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"cni-loopback-{theirs}-lo", f"pytest-probes-probes-it-{theirs}-eth0",
         f"pytest-probes-probesx-{theirs}-eth0", f"someone-else-{ours}-eth0"])


def test_sandbox_netns_paths_and_container_ids_from_bundles(tmp_path: Path):
    bundle = tmp_path / "io.containerd.runtime.v2.task" / "k8s.io" / "sb1"
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(
        json.dumps(
            {
                "linux": {
                    "namespaces": [
                        {"type": "pid"},
                        {"type": "network", "path": "/run/netns/cni-1234"},
                    ]
                }
            }
        )
    )
    other = tmp_path / "io.containerd.runtime.v2.task" / "k8s.io" / "c1"
    other.mkdir()
    (other / "config.json").write_text("not json")
    (tmp_path / "io.containerd.grpc.v1.cri" / "sandboxes" / "sb2").mkdir(parents=True)
    assert node.sandbox_netns_paths(tmp_path) == [Path("/run/netns/cni-1234")]
    assert node.container_ids(tmp_path) == {"sb1", "c1", "sb2"}


def test_mountinfo_unescape():
    assert mounts._unescape(r"/a\040b\011c") == "/a b\tc"


# /proc/self/mountinfo of this machine (``/`` private, no systemd) with a kubelet's root bound
# onto itself and made rshared, and a shared /run of a systemd host.
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/a\\040b ro,nosuid - tmpfs none ro,size=4k
40 27 0:30 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,mode=755
61 27 254:0 /root/c/data/kubelet /root/c/data/kubelet rw,relatime shared:80 - ext4 /dev/vda rw
"""


def test_shared_mount_is_the_kubelets_test_on_the_mount_holding_the_path():
    # Private /: a kubelet root there gets the kubelet's bind mount (hostutil isShared false).
    assert not mounts.on_shared_mount("/root/c/data", MOUNTINFO)
    assert not mounts.on_shared_mount("/root/c/data/kubeletx", MOUNTINFO)
    assert not mounts.on_shared_mount("/mnt/a b/kubelet", MOUNTINFO)
    # At or below a shared mount point: nothing to do.
    assert mounts.on_shared_mount("/root/c/data/kubelet", MOUNTINFO)
    assert mounts.on_shared_mount("/root/c/data/kubelet/pods-api", MOUNTINFO)
    assert mounts.on_shared_mount("/run/kubelet", MOUNTINFO)
    # The last of two mounts on one point is the one in effect.
    stacked = MOUNTINFO + "62 61 0:31 / /root/c/data/kubelet rw - tmpfs tmpfs rw\n"
    assert not mounts.on_shared_mount("/root/c/data/kubelet/pods", stacked)
    assert not mounts.on_shared_mount("/", "")


def test_portmap_rules_of_one_network_from_recorded_iptables_save():
    text = (Path(__file__).parent.parent / "data" / "iptables-save-nat-portmap.txt").read_text()
    rules = node.portmap_rules(text, "pytest-probes-probes")
    assert len(rules) == 1
    rule, chain = rules[0]
    assert chain == "CNI-DN-e1d61866f24c6ca3fb6df"
    assert rule[:2] == ["-p", "tcp"]
    assert rule[-2:] == ["-j", chain]
    comment = rule[rule.index("--comment") + 1]
    assert comment.startswith('dnat name: "pytest-probes-probes" id: "169aec5d')
    assert node.portmap_rules(text, "pytest-probes-prob") == []
    assert node.portmap_rules(text, "pytest-probes-other") == []


def test_nice_weight_follows_the_kernel_table():
    # 1024 at niceness 0, about 1.25 times more per step down.
    assert node.nice_weight(0) == node.NICE_0_WEIGHT == 1024
    assert node.nice_weight(-10) == 9548
    assert node.nice_weight(-5) == 3121
    assert node.nice_weight(19) == 15
    weights = [node.nice_weight(n) for n in range(-20, 20)]
    assert all(1.19 < a / b < 1.29 for a, b in itertools.pairwise(weights))
    with pytest.raises(ValueError, match="-21"):
        node.nice_weight(-21)


def test_forward_rule_accepts_only_the_clusters_own_bridge_to_itself():
    rule = node.forward_rule(node.PodNetwork(93), "probes")
    assert rule == ["FORWARD", "-i", "probes93", "-o", "probes93", "-m", "comment",
                    "--comment", "pytest-probes probes: pod to pod", "-j", "ACCEPT"]
    assert "-P" not in rule


SETTINGS = ClusterSettings.of(
    {"ReduceDefaultCrashLoopBackOffDecay": True, "KubeletCrashLoopBackOffMax": True},
    {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"},
     "evictionHard": {"memory.available": "100Mi"}})


def test_a_configured_clusters_kubelet_config_merges_its_settings(tmp_path: Path):
    base = node.render_kubelet_config(
        address="10.88.0.1", port=10250, healthz_port=10248, ca_file=tmp_path / "ca",
        tls_cert=tmp_path / "c", tls_key=tmp_path / "k", runtime_socket=tmp_path / "s",
        resolv_conf=tmp_path / "r", cgroup_root="/x", pod_logs_dir=tmp_path / "l",
        volume_plugin_dir=tmp_path / "v")
    merged = kubelet_config(SETTINGS, base)
    assert merged["crashLoopBackOff"] == {"maxContainerRestartPeriod": "10s"}
    assert merged["featureGates"] == {"KubeletCrashLoopBackOffMax": True,
                                      "ReduceDefaultCrashLoopBackOffDecay": True}
    # Merged as YAML would: the one field set, the provider's other eviction thresholds kept.
    assert merged["evictionHard"]["memory.available"] == "100Mi"
    assert merged["evictionHard"]["nodefs.available"] == base["evictionHard"]["nodefs.available"]
    assert {k: v for k, v in merged.items()
            if k not in ("crashLoopBackOff", "featureGates", "evictionHard")} == {
        k: v for k, v in base.items() if k != "evictionHard"}
    assert kubelet_config(ClusterSettings(), base) == base


def test_the_control_plane_gets_a_configured_clusters_feature_gates(tmp_path: Path):
    pki = PkiPaths(tmp_path / "pki")
    flag = ("--feature-gates=KubeletCrashLoopBackOffMax=true,"
            "ReduceDefaultCrashLoopBackOffDecay=true")
    gates = SETTINGS.gates
    assert flag in controlplane.apiserver_command(
        tmp_path / "a", pki=pki, ports=PORTS, advertise_address="10.88.0.1", feature_gates=gates)
    assert flag in controlplane.controller_manager_command(
        tmp_path / "c", pki=pki, kubeconfig=tmp_path / "kc", ports=PORTS, cluster_name="x",
        feature_gates=gates)
    assert flag in controlplane.scheduler_command(
        tmp_path / "s", kubeconfig=tmp_path / "kc", ports=PORTS, feature_gates=gates)
    plain = controlplane.scheduler_command(tmp_path / "s", kubeconfig=tmp_path / "kc",
                                           ports=PORTS)
    assert not any(a.startswith("--feature-gates") for a in plain)


def test_a_new_cluster_avoids_the_ports_other_clusters_recorded(tmp_path: Path):
    from pytest_probes.providers.local.config import free_ports, ports_of_other_clusters

    for name, first in (("a", 40000), ("b", 41000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cluster.json").write_text(json.dumps(
            {"ports": dict(zip(Ports.__dataclass_fields__, range(first, first + 7),
                               strict=True))}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "cluster.json").write_text("{")
    assert ports_of_other_clusters(tmp_path, "a") == set(range(41000, 41007))
    assert ports_of_other_clusters(tmp_path, "c") == set(range(40000, 40007)) | set(
        range(41000, 41007))
    assert len(set(free_ports(7))) == 7


def test_free_ports_are_outside_the_ephemeral_range_and_not_excluded(tmp_path: Path) -> None:
    import socket

    from pytest_probes.errors import ClusterError
    from pytest_probes.providers.local.config import LISTEN_PORTS, ephemeral_range, free_ports

    low, high = ephemeral_range()
    ports = free_ports(7)
    assert len(set(ports)) == 7
    assert all(not low <= p <= high for p in ports), (ports, low, high)
    # A port something listens on is never chosen; nor an excluded one.
    base = LISTEN_PORTS[0]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base))
        busy.listen()
        assert sorted(free_ports(2, exclude={base + 1}, ephemeral=(base + 4, 60999))) == [
            base + 2, base + 3]
    # No room below the range: above it.
    assert all(p > 60999 for p in free_ports(3, ephemeral=(base, 60999)))
    # The range as the kernel says it; its default when it cannot be read.
    (tmp_path / "range").write_text("40000\t50000\n")
    assert ephemeral_range(tmp_path / "range") == (40000, 50000)
    assert ephemeral_range(tmp_path / "missing") == (32768, 60999)
    with pytest.raises(ClusterError, match="fewer than 70000 free TCP ports"):
        free_ports(70000)
