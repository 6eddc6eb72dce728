"""Reaching a local cluster's API server and etcd, through the official Kubernetes client.

The lifecycle asks a few questions while the cluster starts (is etcd healthy, does the API server
answer ``/readyz``, is the node Ready). Each question builds a client from the admin kubeconfig
:func:`.config.prepare` wrote (the server's address, the CA and the admin's client certificate):
a recreated cluster has a new port and new certificates. Until a server listens, the answer is
"not yet" (``False``, or ``''`` for the version), not an error.

etcd is not a Kubernetes API, but its JSON gateway speaks HTTPS and JSON too: it is reached
through the same client, configured with etcd's own CA and the API server's etcd client
certificate, so the package has one way to send a request.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import controlplane
from pytest_probes.providers.local.config import ClusterPaths, ClusterState

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

log = logging.getLogger(__name__)


class ClusterApi:
    """The API server and etcd of one local cluster, as its admin (and the API server's client).

    Args:
        name: The cluster name, for messages.
        paths: The cluster's files (its kubeconfig and PKI).
    """

    def __init__(self, name: str, paths: ClusterPaths) -> None:
        self.name = name
        self.paths = paths

    @contextmanager
    def _admin(self) -> Iterator[ApiClient]:
        """A client of the API server as admin, built from the cluster's admin kubeconfig.

        Raises:
            ConfigException: The kubeconfig is missing or unreadable.
        """
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.paths.kubeconfig),
            client_configuration=configuration,
            persist_config=False,
        )
        with _client(configuration) as api:
            yield api

    @contextmanager
    def _etcd(self, state: ClusterState) -> Iterator[ApiClient]:
        """A client of etcd's JSON gateway as the API server's etcd client."""
        from kubernetes import client

        pki = self.paths.pki
        configuration = client.Configuration(host=controlplane.etcd_url(state.ports))
        configuration.ssl_ca_cert = str(pki.etcd_ca_cert)
        configuration.cert_file = str(pki.cert("etcd-apiserver-client"))
        configuration.key_file = str(pki.key("etcd-apiserver-client"))
        with _client(configuration) as api:
            yield api

    def etcd_healthy(self, state: ClusterState) -> bool:
        """Whether etcd answers ``/health`` with 200."""
        try:
            with self._etcd(state) as api:
                _call(api, "GET", "/health", timeout=2.0)
        except _unanswered():
            return False
        return True

    def request(
        self,
        state: ClusterState,
        path: str,
        *,
        timeout: float = 5.0,
        method: str = "GET",
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a request (GET by default) to the API server as admin; return the decoded JSON.

        An answer that is not JSON (``/readyz``'s ``ok``) is returned as text. The server is the
        one the admin kubeconfig names (the port ``state`` records).

        Raises:
            kubernetes.client.ApiException: The server answered with an error status (status 0:
                TLS failed).
            urllib3.exceptions.HTTPError: It did not answer (refused, reset, timed out).
            kubernetes.config.ConfigException: The admin kubeconfig is missing or unreadable.
        """
        with self._admin() as api:
            return _call(api, method, path, timeout=timeout, body=body)

    def server_version(self, state: ClusterState) -> str:
        """Return the API server's ``gitVersion`` ('' if it does not answer)."""
        from kubernetes import client

        try:
            with self._admin() as api:
                info = client.VersionApi(api).get_code(_request_timeout=3.0)
        except _unanswered():
            return ""
        return str(info.git_version or "")

    def _node_ready_condition(self, state: ClusterState) -> Any:
        """The node's Ready condition (``None`` if the API does not answer or has none)."""
        from kubernetes import client

        try:
            with self._admin() as api:
                node = client.CoreV1Api(api).read_node(state.node_name, _request_timeout=3.0)
        except _unanswered():
            return None
        conditions = (node.status.conditions if node.status else None) or []
        return next((c for c in conditions if c.type == "Ready"), None)

    def node_ready(self, state: ClusterState) -> bool:
        """Return whether the node reports the Ready condition True."""
        ready = self._node_ready_condition(state)
        return ready is not None and ready.status == "True"

    def node_lease_renewed(self, state: ClusterState) -> datetime | None:
        """When the kubelet last renewed its node's Lease (``spec.renewTime``, microseconds).

        The Lease is the kubelet's heartbeat; a new kubelet renews it as it starts
        (``controller.sync`` in ``k8s.io/component-helpers/apimachinery/lease``), while the node
        status it posts then carries whole seconds only and is not posted again for minutes
        (``nodeStatusReportFrequency``). ``None`` when the API server does not answer or there
        is no Lease yet.
        """
        from kubernetes import client

        try:
            with self._admin() as api:
                lease = client.CoordinationV1Api(api).read_namespaced_lease(
                    state.node_name, "kube-node-lease", _request_timeout=3.0)
        except _unanswered():
            return None
        renewed = lease.spec.renew_time if lease.spec else None
        return renewed if isinstance(renewed, datetime) else None

    def apiserver_ready(self, state: ClusterState) -> bool:
        """Whether the API server answers ``/readyz`` with ``ok``."""
        try:
            return bool(self.request(state, "/readyz", timeout=2.0) == "ok")
        except _unanswered():
            return False

    def default_sa_exists(self, state: ClusterState, namespace: str = "default") -> bool:
        """Whether ``namespace`` has its ``default`` ServiceAccount (the controllers made it)."""
        from kubernetes import client

        try:
            with self._admin() as api:
                client.CoreV1Api(api).read_namespaced_service_account(
                    "default", namespace, _request_timeout=2.0
                )
        except _unanswered():
            return False
        return True

    def controllers_work(self, state: ClusterState) -> bool:
        """Whether a fresh namespace gets its ``default`` ServiceAccount (then it is deleted)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        name = f"probes-health-{os.getpid()}"
        try:
            with self._admin() as api:
                client.CoreV1Api(api).create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=name)),
                    _request_timeout=3.0,
                )
        except ApiException as error:
            if error.status != 409:  # 409: made by an earlier attempt
                return False
        except _unanswered():
            return False
        if not self.default_sa_exists(state, name):
            return False
        try:
            with self._admin() as api:
                client.CoreV1Api(api).delete_namespace(name, _request_timeout=3.0)
        except _unanswered():
            log.debug("deleting namespace %s failed", name, exc_info=True)
        return True

    def compact_etcd(self, state: ClusterState | None) -> int:
        """Compact etcd's history up to its current revision and return that revision.

        Every resourceVersion older than it becomes too old to watch from: a client resuming
        from one gets ``410 Gone`` (at once from etcd, or from the API server's watch cache
        once it is rebuilt, e.g. after a restart) and has to list again.

        Raises:
            ClusterError: etcd does not answer.
        """
        if state is None:
            raise ClusterError(f"cluster {self.name} does not exist", provider="local")
        base = f"{controlplane.etcd_url(state.ports)}/v3/kv"
        failed: tuple[type[Exception], ...] = (*_unanswered(), KeyError, TypeError)
        try:
            with self._etcd(state) as api:
                header = _call(api, "POST", "/v3/kv/range", timeout=5.0,
                               body={"key": "AA==", "limit": 1})["header"]
                revision = int(header["revision"])
                _call(api, "POST", "/v3/kv/compaction", timeout=5.0,
                      body={"revision": revision, "physical": True})
        except failed as error:
            raise ClusterError(
                f"cluster {self.name}: compacting etcd at {base} failed: {error}; is etcd "
                f"running? (pytest-probes cluster status --name {self.name})",
                provider="local",
            ) from error
        log.info("cluster %s: etcd compacted at revision %d", self.name, revision)
        return revision


@contextmanager
def _client(configuration: Configuration) -> Iterator[ApiClient]:
    """An ``ApiClient`` that tries each request once, closed after use."""
    from kubernetes import client

    # The callers poll, each request with its own timeout; urllib3's default three retries
    # would stretch a timed-out GET to four timeouts.
    configuration.retries = False
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _call(
    api: ApiClient,
    method: str,
    path: str,
    *,
    timeout: float,
    body: Mapping[str, Any] | None = None,
) -> Any:
    """Send one request through the client's REST layer; return the decoded JSON, else the text.

    For paths no typed API covers (``/readyz``, etcd's gateway). It goes below
    ``ApiClient.call_api``, whose signature changed in client 37, to ``rest_client.request``,
    whose keywords every supported client shares.

    Raises:
        kubernetes.client.ApiException: The server answered with an error status.
        urllib3.exceptions.HTTPError: It did not answer (refused, reset, timed out).
    """
    from kubernetes.client.exceptions import ApiException

    headers = {
        **api.default_headers,
        "Accept": "application/json, */*",
        "Content-Type": "application/json",
    }
    response = api.rest_client.request(  # type: ignore[no-untyped-call]
        method, api.configuration.host + path, headers=headers,
        body=dict(body) if body is not None else None, _request_timeout=timeout,
    )
    # Clients before 37 read the body and raise for an error status themselves.
    data: bytes = response.data if response.data is not None else response.read()
    if not 200 <= response.status <= 299:
        raise ApiException(http_resp=response)
    return json.loads(data) if data[:1] in (b"{", b"[") else data.decode()


def _unanswered() -> tuple[type[Exception], ...]:
    """The errors that mean a server did not answer as asked (yet).

    An error status or failed TLS (``ApiException``), no connection, a reset or a timeout
    (urllib3's errors), no kubeconfig yet (``ConfigException``), an unreadable answer.
    """
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    return (ApiException, ConfigException, HTTPError, OSError, ValueError)
