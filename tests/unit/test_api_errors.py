"""Refusals and absences of the API server become ClusterErrors that say what to do.

A real HTTP server on loopback answers as an API server does when RBAC refuses (a ``Status`` with
HTTP 403); a closed loopback port stands for an API server that went away after ``up``.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from kubernetes import client

from pytest_probes import namespaces
from pytest_probes.errors import ClusterError


def _load_benchmark() -> ModuleType:
    # The bad-input benchmark's loopback "API server" that refuses everything: one copy.
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bad_inputs.py"
    spec = importlib.util.spec_from_file_location("bad_inputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_Forbidden = _load_benchmark().Forbidden


def _api(host: str) -> client.ApiClient:
    config = client.Configuration()
    config.host = host
    return client.ApiClient(config)


@pytest.fixture
def forbidding() -> Iterator[client.ApiClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _api(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()


@pytest.fixture
def gone() -> client.ApiClient:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return _api(f"http://127.0.0.1:{port}")


def test_a_403_on_listing_namespaces_names_the_rbac_rule(forbidding: client.ApiClient) -> None:
    with pytest.raises(ClusterError, match=r"orphan cleanup: the API server at http://127.0.0.1:"
                       r"\d+ answered HTTP 403 Forbidden: the kubeconfig's user may not list "
                       r"namespaces\. Grant it \(an RBAC rule with verbs: \[list\] on resources: "
                       r"\[namespaces\]\)"):
        namespaces.delete_orphaned_namespaces(forbidding)


def test_a_403_on_deleting_a_namespace_names_the_rbac_rule(forbidding: client.ApiClient) -> None:
    with pytest.raises(ClusterError, match=r"may not get namespaces"):
        namespaces.delete_namespace(forbidding, "probes-x-123456")


def test_a_403_on_creating_a_namespace_names_the_rbac_rule(forbidding: client.ApiClient) -> None:
    with pytest.raises(ClusterError, match=r"creating namespace probes-x: .* may not create "
                                           r"namespaces"):
        namespaces.create_namespace(forbidding, "probes-x", run_id="r")


def test_an_api_server_that_went_away_is_named(gone: client.ApiClient) -> None:
    with pytest.raises(ClusterError, match=r"the API server at http://127.0.0.1:\d+ does not "
                                           r"answer \(MaxRetryError\); is the cluster still up"):
        namespaces.leftover_namespaces(gone)
