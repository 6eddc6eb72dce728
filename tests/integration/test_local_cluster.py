"""The local provider for real: a single-node cluster up, used, reported on and taken down.

Runs on any Linux host with root, containerd, runc, the CNI plugins and Go (the Kubernetes binaries
are built on first use and cached in the user cache directory; the first run pays ~7 minutes).
The cluster is called ``probes-it`` so it never touches the default ``probes`` cluster. It runs
on two Kubernetes minors, the default (newest) and the oldest supported, one after the other, so
the suite shows both ends of the supported range working; set ``PYTEST_PROBES_IT_K8S_VERSION``
(e.g. ``1.34``) to run it on that version only.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_probes._proc import stat_fields
from pytest_probes.binaries import k8s
from pytest_probes.cluster import Cluster, ClusterConfig
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import LocalProvider, components, lifecycle, node, supervisor
from pytest_probes.providers.local.config import COMPONENTS
from pytest_probes.providers.local.node import kubelet

NAME = "probes-it"
_ONLY = os.environ.get("PYTEST_PROBES_IT_K8S_VERSION")
VERSIONS = (
    [k8s.resolve_version(_ONLY)]
    if _ONLY
    else [k8s.resolve_version(None), min(k8s.known_versions(), key=k8s._version_key)]
)
NAMESPACE = "local-it"
HOST_PORT = 31871

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.geteuid() != 0
    or shutil.which("ip") is None
    or shutil.which("go") is None,
    reason="the local provider needs root on Linux, ip, and Go (to build Kubernetes and the "
    "container runtime)",
)

FIGURES: dict[str, float] = {}
SYSCTLS_BEFORE: dict[str, str] = {}


def _sysctls() -> dict[str, str]:
    return {name: kubelet._sysctl_path(name).read_text().strip() for name in node.KUBELET_SYSCTLS}


def _progress(line: str) -> None:
    print(f"  [local] {line}", flush=True)


@pytest.fixture(scope="module", params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def config(version: str) -> ClusterConfig:
    return ClusterConfig(name=NAME, k8s_version=version)


@pytest.fixture(scope="module")
def local(config: ClusterConfig) -> lifecycle.LocalCluster:
    return lifecycle.LocalCluster(config.name, config.cache_dir)


@pytest.fixture(scope="module")
def cluster(config: ClusterConfig, local: lifecycle.LocalCluster) -> Iterator[Cluster]:
    local.down(_progress)  # start from nothing, whatever an earlier run left
    SYSCTLS_BEFORE.update(_sysctls())
    assert config.k8s_version is not None
    k8s.ensure_binaries(config.k8s_version, config.cache_dir, _progress)
    provider = LocalProvider()
    started = time.monotonic()
    handle = provider.up(config, _progress)
    FIGURES["up_seconds"] = time.monotonic() - started
    try:
        yield handle
    finally:
        local.down(_progress)
        print(f"\nlocal cluster figures: {FIGURES}", flush=True)


def test_up_creates_a_ready_node_of_the_requested_version(
    cluster: Cluster, local: lifecycle.LocalCluster, version: str
):
    from kubernetes import client

    assert cluster.created is True
    assert cluster.provider == "local"
    assert cluster.k8s_version == f"v{version}"
    assert stat.S_IMODE(cluster.kubeconfig.stat().st_mode) == 0o600
    api = client.CoreV1Api(cluster.api_client())
    nodes = api.list_node().items
    assert [n.metadata.name for n in nodes] == [f"{NAME}-node"]
    ready = [c for c in nodes[0].status.conditions if c.type == "Ready"]
    assert ready and ready[0].status == "True"
    assert nodes[0].status.node_info.kubelet_version == cluster.k8s_version
    assert api.read_namespaced_service_account("default", "default").metadata.name == "default"
    version = client.VersionApi(cluster.api_client()).get_code()
    assert version.git_version == cluster.k8s_version
    assert version.git_tree_state == "clean"
    # Warm start goal is 20 s; allow for a loaded CI machine.
    assert FIGURES["up_seconds"] < 60, FIGURES


def test_resident_memory_of_the_cluster_is_bounded(cluster: Cluster, local: lifecycle.LocalCluster):
    status = local.status()
    assert status.running, status.render()
    total = sum(component.rss_bytes for component in status.components)
    FIGURES["rss_mib"] = total / 2**20
    assert 0 < total < 1.5 * 2**30, status.render()


def test_up_again_reuses_the_running_cluster(cluster: Cluster, config: ClusterConfig):
    started = time.monotonic()
    again = LocalProvider().up(config, _progress)
    FIGURES["reuse_seconds"] = time.monotonic() - started
    assert again.created is False
    assert again.kubeconfig == cluster.kubeconfig
    assert again.k8s_version == cluster.k8s_version
    assert FIGURES["reuse_seconds"] < 10


def test_a_cluster_whose_kubelet_has_other_flags_is_refused(
    cluster: Cluster, config: ClusterConfig, local: lifecycle.LocalCluster
):
    # As a cluster kept from an older pytest-probes, whose kubelet kept one dead instance.
    flag = f"--maximum-dead-containers-per-container={node.DEAD_INSTANCES_KEPT}"
    saved = local.paths.state_file.read_text()
    state = json.loads(saved)
    state["processes"]["kubelet"]["argv"].remove(flag)
    local.paths.state_file.write_text(json.dumps(state))
    try:
        with pytest.raises(ClusterError, match="cluster down") as info:
            LocalProvider().up(config, _progress)
    finally:
        local.paths.state_file.write_text(saved)
    assert flag in str(info.value)
    assert LocalProvider().up(config, _progress).created is False


def test_etcd_and_the_apiserver_refuse_callers_without_credentials(
    cluster: Cluster, local: lifecycle.LocalCluster
):
    # A local user who reaches etcd's port could rewrite the cluster's state and run anything as
    # root on the node; an anonymous API caller could probe what RBAC leaves open.
    state = local.read_state()
    assert state is not None
    etcd = ("127.0.0.1", state.ports.etcd_client)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        plain = http.client.HTTPConnection(*etcd, timeout=5)  # no TLS at all
        plain.request("GET", "/health")
        plain.getresponse().read()
    # TLS that trusts etcd's CA but shows no client certificate: the handshake is refused.
    trusting = ssl.create_default_context(cafile=str(local.paths.pki.etcd_ca_cert))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        anonymous = http.client.HTTPSConnection(*etcd, timeout=5, context=trusting)
        anonymous.request("POST", "/v3/kv/range", body='{"key": "AA=="}')
        anonymous.getresponse().read()
    # A certificate of the cluster's CA (the admin's) is not one etcd trusts either.
    admin = ssl.create_default_context(cafile=str(local.paths.pki.etcd_ca_cert))
    admin.load_cert_chain(str(local.paths.pki.cert("admin")), str(local.paths.pki.key("admin")))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        as_admin = http.client.HTTPSConnection(*etcd, timeout=5, context=admin)
        as_admin.request("POST", "/v3/kv/range", body='{"key": "AA=="}')
        as_admin.getresponse().read()
    # The API server answers an anonymous request with 401, even for its health endpoints.
    apiserver = ssl.create_default_context(cafile=str(local.paths.pki.ca_cert))
    for path in ("/api/v1/namespaces", "/readyz", "/version"):
        connection = http.client.HTTPSConnection("127.0.0.1", state.ports.apiserver, timeout=5,
                                                 context=apiserver)
        connection.request("GET", path)
        assert connection.getresponse().status == 401, path
        connection.close()
    # With its credentials, each answers: the cluster works through TLS and client auth.
    assert local.compact_etcd() > 0
    assert local.api_get(state, "/readyz") == "ok"


def test_load_image_imports_an_archive_into_the_node(cluster: Cluster, config: ClusterConfig):
    from pytest_probes import images

    pause = images.build_pause_image(config.cache_dir, _progress)
    assert cluster.load_image(pause.archive) == [images.PAUSE_REF]
    with pytest.raises(ClusterError, match="does not exist"):
        cluster.load_image(config.cache_dir / "no-such-archive.tar")


def test_another_version_under_the_same_name_is_refused(cluster: Cluster, config: ClusterConfig):
    other = next(v for v in k8s.known_versions() if f"v{v}" != cluster.k8s_version)
    with pytest.raises(ClusterError, match="cluster down") as info:
        LocalProvider().up(ClusterConfig(name=NAME, k8s_version=other), _progress)
    assert cluster.k8s_version in str(info.value)


def test_a_pod_runs_is_probed_and_is_reachable_by_pod_ip(cluster: Cluster):
    from kubernetes import client

    image = LocalProvider().ensure_target_image(cluster, _progress)
    assert image.startswith("localhost/")
    api = client.CoreV1Api(cluster.api_client())
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=1,
            containers=[
                client.V1Container(
                    name="app",
                    image=image,
                    image_pull_policy="Never",
                    # A hostPort makes portmap write iptables rules, which down must remove.
                    ports=[client.V1ContainerPort(container_port=8080, host_port=HOST_PORT)],
                    readiness_probe=client.V1Probe(
                        http_get=client.V1HTTPGetAction(path="/readyz", port=8080),
                        period_seconds=1,
                    ),
                )
            ],
        ),
    )
    api.create_namespaced_pod(NAMESPACE, pod)
    api.create_namespaced_service(
        NAMESPACE,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(
                selector={"app": "web"}, ports=[client.V1ServicePort(port=80, target_port=8080)]
            ),
        ),
    )
    deadline = time.monotonic() + 90
    current = None
    while time.monotonic() < deadline:
        current = api.read_namespaced_pod("web", NAMESPACE)
        conditions = {c.type: c.status for c in current.status.conditions or []}
        if conditions.get("Ready") == "True":
            break
        time.sleep(0.5)
    assert current is not None
    assert {c.type: c.status for c in current.status.conditions or []}.get("Ready") == "True", (
        current.status
    )
    pod_ip = current.status.pod_ip
    assert pod_ip.startswith("10.")

    connection = http.client.HTTPConnection(pod_ip, 8080, timeout=5)
    connection.request("GET", "/readyz")
    reply = connection.getresponse()
    assert (reply.status, reply.read().strip()) == (200, b"OK")

    logs = api.read_namespaced_pod_log("web", NAMESPACE)  # apiserver → kubelet works
    assert "ua=kube-probe/" in logs

    discovery = client.DiscoveryV1Api(cluster.api_client())
    addresses: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pod_ip not in addresses:
        slices = discovery.list_namespaced_endpoint_slice(
            NAMESPACE, label_selector="kubernetes.io/service-name=web"
        ).items
        addresses = [
            address
            for item in slices
            for endpoint in item.endpoints or []
            if endpoint.conditions and endpoint.conditions.ready
            for address in endpoint.addresses
        ]
        time.sleep(0.3)
    assert pod_ip in addresses


def test_the_pods_and_node_agents_come_before_the_test_run_for_the_cpu(
    cluster: Cluster, local: lifecycle.LocalCluster
):
    # The app of the pod above runs in the cluster's cgroup tree, which weighs as one task at
    # the pods' niceness against the test run (niceness 0) and the cluster's own processes.
    root = node.cgroup_root_name(NAME)
    assert node.cgroup_pids(root), "no process in the cluster's cgroup tree"
    shares = [h / root.lstrip("/") / "cpu.shares" for h in node.cgroup_hierarchies()]
    weights = [h / root.lstrip("/") / "cpu.weight.nice" for h in node.cgroup_hierarchies()]
    assert [p.read_text().strip() for p in shares if p.exists()] + [
        p.read_text().strip() for p in weights if p.exists()
    ] in (
        [str(node.nice_weight(components.PODS_NICENESS))],
        [str(components.PODS_NICENESS)],
    )
    status = local.status()
    for component in status.components:
        assert component.pid is not None
        fields = stat_fields(component.pid)  # field 19 is the niceness
        assert fields is not None
        assert int(fields[18]) == components.CLUSTER_NICENESS.get(component.name, 0), component


def test_status_and_cli_report_the_cluster(cluster: Cluster, local: lifecycle.LocalCluster):
    status = local.status()
    assert status.running
    assert status.server_version == cluster.k8s_version
    assert [c.name for c in status.components] == list(COMPONENTS)
    for component in status.components:
        assert component.alive and component.pid and component.log.is_file()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_probes", "cluster", "status", "--name", NAME],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"cluster {NAME}: running, Kubernetes {cluster.k8s_version}" in done.stdout
    for name in COMPONENTS:
        assert name in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "pytest_probes", "cluster", "up", "--name", NAME],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"cluster {NAME} reused" in done.stdout


def test_down_leaves_nothing_behind(cluster: Cluster, local: lifecycle.LocalCluster):
    state = local.read_state()
    assert state is not None
    root = local.paths.root
    assert node.mounts_under(root)  # the running pod has mounts there
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    pids = [record.pid for record in state.processes.values()]
    network_name = node.cluster_network_name(NAME)
    assert node.portmap_rules(_iptables_nat(), network_name)  # the hostPort pod's

    started = time.monotonic()
    LocalProvider().down(cluster, _progress)
    FIGURES["down_seconds"] = time.monotonic() - started

    assert not root.exists()
    assert supervisor.processes_mentioning(str(root)) == []
    assert supervisor.processes_mentioning(state.socket) == []
    assert not [
        pid
        for pid in pids
        if supervisor.start_ticks(pid) is not None and Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert node.mounts_under(root) == []
    netns_after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert not {n for n in netns_after - netns_before if n.startswith("cni-")}
    assert not Path("/sys/class/net", state.network.bridge).exists()
    assert not node.cgroup_pids(node.cgroup_root_name(NAME))
    assert not any(
        (hierarchy / node.cgroup_root_name(NAME).lstrip("/")).exists()
        for hierarchy in node.cgroup_hierarchies()
    )
    if node.CNI_CACHE_DIR.is_dir():
        assert not [
            p
            for p in node.CNI_CACHE_DIR.iterdir()
            if p.name.startswith(node.cluster_network_name(NAME) + "-")
        ]
    assert node.portmap_rules(_iptables_nat(), network_name) == []
    if not local._other_kubelets_running():
        assert _sysctls() == SYSCTLS_BEFORE  # the kubelet's kernel settings are undone
    assert FIGURES["down_seconds"] < 30
    assert local.status().exists is False


def _iptables_nat() -> str:
    return subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def test_a_failed_up_tears_down_what_it_started_and_keeps_the_logs(config: ClusterConfig):
    local = lifecycle.LocalCluster(f"{NAME}-fail", config.cache_dir)
    local.down(_progress)
    bridges_before = {p.name for p in Path("/sys/class/net").iterdir()}
    # Far too short for containerd's socket to appear: the first wait fails for real.
    with pytest.raises(ClusterError, match="did not make it") as info:
        local.up(config.k8s_version, _progress, timeout=0.001)
    assert "Last lines of" in str(info.value)
    root = local.paths.root
    try:
        assert supervisor.processes_mentioning(str(root)) == []
        assert node.mounts_under(root) == []
        assert {p.name for p in Path("/sys/class/net").iterdir()} == bridges_before
        cgroup = node.cgroup_root_name(local.name).lstrip("/")
        assert not any((h / cgroup).exists() for h in node.cgroup_hierarchies())
        assert local.read_state() is None
        assert local.paths.log("containerd").is_file()  # kept for the post-mortem
        assert not local.status().exists
    finally:
        local.down(_progress)
    assert not root.exists()
