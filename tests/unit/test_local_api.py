"""The local provider's questions to its API server and etcd, against fakes on 127.0.0.1.

The fakes speak HTTPS with the cluster's own certificates and want the client certificate the
answers depend on, so these tests cover the transport as the kubeconfig configures it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import node, pki
from pytest_probes.providers.local.api import ClusterApi
from pytest_probes.providers.local.config import ClusterPaths, ClusterState
from pytest_probes.providers.local.controlplane import Ports

NODE = "unit-node"

VERSION = {
    "major": "1", "minor": "34", "emulationMajor": "1", "emulationMinor": "34",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "33", "gitVersion": "v1.34.4",
    "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.4", "compiler": "gc", "platform": "linux/amd64",
}
"""The API server's ``/version`` answer."""

Answer = tuple[int, Any]
"""An HTTP status and a body (a str is sent as text, anything else as JSON)."""


@dataclass
class FakeServer:
    """An HTTPS server on 127.0.0.1 answering from ``answers`` by (method, path)."""

    cert: Path
    key: Path
    client_ca: Path
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    seen: list[tuple[str, str, Any, str]] = field(default_factory=list)
    port: int = 0

    def serve(self) -> Iterator[FakeServer]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                subject = dict(x[0] for x in self.connection.getpeercert()["subject"])  # type: ignore[attr-defined]
                fake.seen.append((self.command, self.path, body, subject["commonName"]))
                status, payload = fake.answers.get((self.command, self.path), (404, {}))
                text = payload if isinstance(payload, str) else json.dumps(payload)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(str(self.cert), str(self.key))
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pki_paths(tmp_path_factory: pytest.TempPathFactory) -> pki.PkiPaths:
    return pki.generate(
        tmp_path_factory.mktemp("api") / "pki",
        node_name=NODE,
        node_ip="10.88.0.1",
        service_ip="10.0.0.1",
        cluster_name="unit",
    )


def _cluster(tmp_path: Path, pki_paths: pki.PkiPaths, *, apiserver: int, etcd: int,
             ) -> tuple[ClusterApi, ClusterState]:
    paths = ClusterPaths(tmp_path / "cluster")
    paths.root.mkdir()
    (paths.root / "pki").symlink_to(pki_paths.directory)
    pki.write_kubeconfig(paths.kubeconfig, paths.pki, "admin",
                         server=f"https://127.0.0.1:{apiserver}", cluster_name="probes-unit")
    state = ClusterState(
        name="unit", version="1.34.4", created="2026-01-01T00:00:00+00:00",
        ports=Ports(etcd, 2, apiserver, 4, 5, 6, 7), network=node.PodNetwork(127),
        node_name=NODE, snapshotter="native", socket=str(paths.root / "containerd.sock"),
        cache_dir=str(tmp_path),
    )
    return ClusterApi("unit", paths), state


@pytest.fixture
def apiserver(pki_paths: pki.PkiPaths) -> Iterator[FakeServer]:
    yield from FakeServer(pki_paths.cert("apiserver"), pki_paths.key("apiserver"),
                          pki_paths.ca_cert).serve()


@pytest.fixture
def etcd(pki_paths: pki.PkiPaths) -> Iterator[FakeServer]:
    yield from FakeServer(pki_paths.cert("etcd-server"), pki_paths.key("etcd-server"),
                          pki_paths.etcd_ca_cert).serve()


def _node(conditions: list[Mapping[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
            "status": {"conditions": conditions}}


def test_answers_as_admin_with_the_kubeconfig_certificate(
    tmp_path: Path, pki_paths: pki.PkiPaths, apiserver: FakeServer
):
    api, state = _cluster(tmp_path, pki_paths, apiserver=apiserver.port, etcd=_free_port())
    apiserver.answers.update({
        ("GET", "/readyz"): (200, "ok"),
        ("GET", "/version"): (200, VERSION),
        ("GET", "/version/"): (200, VERSION),
        ("GET", f"/api/v1/nodes/{NODE}"): (200, _node([{"type": "Ready", "status": "True"}])),
        ("GET", "/api/v1/namespaces/default/serviceaccounts/default"):
            (200, {"metadata": {"name": "default", "namespace": "default"}}),
    })
    assert api.apiserver_ready(state)
    assert api.server_version(state) == "v1.34.4"
    assert api.node_ready(state)
    assert api.default_sa_exists(state)
    assert api.request(state, "/version")["gitVersion"] == "v1.34.4"
    assert {common_name for *_, common_name in apiserver.seen} == {"pytest-probes-admin"}


def test_not_ready_answers(tmp_path: Path, pki_paths: pki.PkiPaths, apiserver: FakeServer):
    api, state = _cluster(tmp_path, pki_paths, apiserver=apiserver.port, etcd=_free_port())
    apiserver.answers.update({
        ("GET", "/readyz"): (500, "[-]etcd failed: reason withheld\nreadyz check failed"),
        ("GET", f"/api/v1/nodes/{NODE}"): (200, _node([{"type": "Ready", "status": "False"}])),
    })
    assert not api.apiserver_ready(state)
    assert not api.node_ready(state)
    assert not api.default_sa_exists(state)  # 404
    with pytest.raises(ApiException) as info:
        api.request(state, "/readyz")
    assert info.value.status == 500


def test_a_server_that_does_not_listen_yet_is_not_ready(tmp_path: Path, pki_paths: pki.PkiPaths):
    api, state = _cluster(tmp_path, pki_paths, apiserver=_free_port(), etcd=_free_port())
    assert not api.apiserver_ready(state)
    assert api.server_version(state) == ""
    assert not api.node_ready(state)
    assert not api.etcd_healthy(state)
    assert not api.controllers_work(state)


def test_no_kubeconfig_yet_is_not_ready(tmp_path: Path, pki_paths: pki.PkiPaths):
    api, state = _cluster(tmp_path, pki_paths, apiserver=_free_port(), etcd=_free_port())
    api.paths.kubeconfig.unlink()
    assert not api.apiserver_ready(state)
    assert api.server_version(state) == ""


def test_controllers_work_makes_a_namespace_and_removes_it(
    tmp_path: Path, pki_paths: pki.PkiPaths, apiserver: FakeServer
):
    api, state = _cluster(tmp_path, pki_paths, apiserver=apiserver.port, etcd=_free_port())
    name = f"probes-health-{os.getpid()}"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    apiserver.answers.update({
        ("POST", "/api/v1/namespaces"): (409, {"kind": "Status", "reason": "AlreadyExists"}),
        ("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default"):
            (200, {"metadata": {"name": "default", "namespace": name}}),
        ("DELETE", f"/api/v1/namespaces/{name}"): (200, namespace),
    })
    assert api.controllers_work(state)
    assert [(method, path) for method, path, *_ in apiserver.seen] == [
        ("POST", "/api/v1/namespaces"),
        ("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default"),
        ("DELETE", f"/api/v1/namespaces/{name}"),
    ]
    assert apiserver.seen[0][2]["metadata"] == {"name": name}
    apiserver.answers[("POST", "/api/v1/namespaces")] = (403, {"kind": "Status"})
    assert not api.controllers_work(state)


def test_etcd_is_asked_as_the_api_servers_etcd_client(
    tmp_path: Path, pki_paths: pki.PkiPaths, etcd: FakeServer
):
    api, state = _cluster(tmp_path, pki_paths, apiserver=_free_port(), etcd=etcd.port)
    etcd.answers.update({
        ("GET", "/health"): (200, {"health": "true"}),
        ("POST", "/v3/kv/range"): (200, {"header": {"revision": "1234"}}),
        ("POST", "/v3/kv/compaction"): (200, {"header": {"revision": "1234"}}),
    })
    assert api.etcd_healthy(state)
    assert api.compact_etcd(state) == 1234
    assert etcd.seen[1:] == [
        ("POST", "/v3/kv/range", {"key": "AA==", "limit": 1}, "kube-apiserver-etcd-client"),
        ("POST", "/v3/kv/compaction", {"revision": 1234, "physical": True},
         "kube-apiserver-etcd-client"),
    ]
    etcd.answers[("GET", "/health")] = (503, {"health": "false"})
    assert not api.etcd_healthy(state)


def test_compacting_fails_naming_etcd_when_it_does_not_answer(
    tmp_path: Path, pki_paths: pki.PkiPaths
):
    port = _free_port()
    api, state = _cluster(tmp_path, pki_paths, apiserver=_free_port(), etcd=port)
    with pytest.raises(ClusterError, match=rf"cluster unit: compacting etcd at "
                       rf"https://127.0.0.1:{port}/v3/kv failed: .*; is etcd running\? "
                       r"\(pytest-probes cluster status --name unit\)"):
        api.compact_etcd(state)
    with pytest.raises(ClusterError, match="cluster unit does not exist"):
        api.compact_etcd(None)
