"""Reaching a local cluster's API server and etcd: HTTPS with the cluster's own certificates.

The lifecycle needs a few answers before any client library could be configured (is etcd
healthy, does the API server answer ``/readyz``, is the node Ready): the admin certificate and
the API server's etcd client certificate, over ``urllib``.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import controlplane
from pytest_probes.providers.local.config import ClusterPaths, ClusterState

log = logging.getLogger(__name__)


class ClusterApi:
    """The API server and etcd of one local cluster, as its admin (and the API server's client).

    Args:
        name: The cluster name, for messages.
        paths: The cluster's files (its PKI).
    """

    def __init__(self, name: str, paths: ClusterPaths) -> None:
        self.name = name
        self.paths = paths

    def _ssl_context(self) -> ssl.SSLContext:
        paths = self.paths.pki
        context = ssl.create_default_context(cafile=str(paths.ca_cert))
        context.load_cert_chain(str(paths.cert("admin")), str(paths.key("admin")))
        return context

    def _etcd_ssl_context(self) -> ssl.SSLContext:
        """TLS to etcd as the API server's etcd client (etcd's own CA, a client certificate)."""
        paths = self.paths.pki
        context = ssl.create_default_context(cafile=str(paths.etcd_ca_cert))
        context.load_cert_chain(str(paths.cert("etcd-apiserver-client")),
                                str(paths.key("etcd-apiserver-client")))
        return context

    def etcd_healthy(self, state: ClusterState) -> bool:
        """Whether etcd answers ``/health`` with 200."""
        return _http_ok(f"{controlplane.etcd_url(state.ports)}/health", self._etcd_ssl_context())

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

        Raises:
            OSError: The request failed (connection refused, TLS, HTTP error status).
        """
        url = f"https://127.0.0.1:{state.ports.apiserver}{path}"
        request = urllib.request.Request(
            url, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context()) as reply:
            body_bytes = reply.read()
        return json.loads(body_bytes) if body_bytes[:1] in (b"{", b"[") else body_bytes.decode()

    def server_version(self, state: ClusterState) -> str:
        """Return the API server's ``gitVersion`` ('' if it does not answer)."""
        try:
            return str(self.request(state, "/version", timeout=3.0).get("gitVersion", ""))
        except (OSError, ValueError, AttributeError):
            return ""

    def node_ready(self, state: ClusterState) -> bool:
        """Return whether the node reports the Ready condition True."""
        try:
            node_obj = self.request(state, f"/api/v1/nodes/{state.node_name}", timeout=3.0)
        except (OSError, ValueError):
            return False
        conditions = node_obj.get("status", {}).get("conditions", []) or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def apiserver_ready(self, state: ClusterState) -> bool:
        """Whether the API server answers ``/readyz`` with ``ok``."""
        try:
            return bool(self.request(state, "/readyz", timeout=2.0) == "ok")
        except (OSError, ValueError):
            return False

    def default_sa_exists(self, state: ClusterState, namespace: str = "default") -> bool:
        """Whether ``namespace`` has its ``default`` ServiceAccount (the controllers made it)."""
        try:
            self.request(state, f"/api/v1/namespaces/{namespace}/serviceaccounts/default",
                         timeout=2.0)
        except (OSError, ValueError):
            return False
        return True

    def controllers_work(self, state: ClusterState) -> bool:
        """Whether a fresh namespace gets its ``default`` ServiceAccount (then it is deleted)."""
        name = f"probes-health-{os.getpid()}"
        try:
            self.request(state, "/api/v1/namespaces", method="POST", timeout=3.0,
                         body={"metadata": {"name": name}})
        except urllib.error.HTTPError as error:
            if error.code != 409:  # 409: made by an earlier attempt
                return False
        except (OSError, ValueError):
            return False
        if not self.default_sa_exists(state, name):
            return False
        try:
            self.request(state, f"/api/v1/namespaces/{name}", method="DELETE", timeout=3.0)
        except (OSError, ValueError):
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
        context = self._etcd_ssl_context()
        try:
            header = _post_json(f"{base}/range", {"key": "AA==", "limit": 1}, context)["header"]
            revision = int(header["revision"])
            _post_json(f"{base}/compaction", {"revision": revision, "physical": True}, context)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ClusterError(
                f"cluster {self.name}: compacting etcd at {base} failed: {error}; is etcd "
                f"running? (pytest-probes cluster status --name {self.name})",
                provider="local",
            ) from error
        log.info("cluster %s: etcd compacted at revision %d", self.name, revision)
        return revision


def _post_json(url: str, body: Mapping[str, Any], context: ssl.SSLContext) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5.0, context=context) as reply:
        return json.loads(reply.read())


def _http_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0, context=context) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False
