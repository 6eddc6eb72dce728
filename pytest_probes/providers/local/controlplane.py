"""The control plane of a local cluster: etcd, kube-apiserver, kube-controller-manager, scheduler.

Only command lines are made here (pure functions, unit-tested); :mod:`.cluster` starts them.
Everything binds to 127.0.0.1 on ports picked per cluster. The flags follow upstream's
``hack/local-up-cluster.sh``, trimmed to what a one-node test cluster needs and tuned to start
fast and stay small: no priority-and-fairness, no endpoint reconciler for the ``kubernetes``
Service (pods never talk to the API server), no leader election, etcd without fsync.

Nothing answers a caller without credentials: etcd serves TLS only and requires a client
certificate of its own CA (``--client-cert-auth``; its peer port likewise), and the API server
refuses anonymous requests (``--anonymous-auth=false``; every health check of ours
authenticates). On a shared host, a local user could otherwise read or write the cluster's
state through etcd's port, and with it run anything as root on the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_probes.providers.local.pki import PkiPaths

SERVICE_CIDR = "10.0.0.0/24"
"""The Service cluster IP range (no kube-proxy runs; ClusterIPs are only bookkeeping)."""

SERVICE_IP = "10.0.0.1"
"""The ClusterIP of the ``kubernetes`` Service (a SAN of the API server's certificate)."""

ETCD_QUOTA_BYTES = 512 * 1024 * 1024
"""etcd's backend quota: ample for tests, and it bounds the memory etcd maps."""


@dataclass(frozen=True)
class Ports:
    """The TCP ports (all on 127.0.0.1, except the kubelet's on the node IP) of one cluster."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kubelet: int
    kubelet_healthz: int

    def as_dict(self) -> dict[str, int]:
        """Return the ports by name."""
        return dict(self.__dict__)


def etcd_url(ports: Ports) -> str:
    """Etcd's client URL."""
    return f"https://127.0.0.1:{ports.etcd_client}"


def etcd_command(
    etcd: Path, *, data_dir: Path, ports: Ports, pki: PkiPaths, name: str = "probes"
) -> list[str]:
    """Return etcd's command line: a single member on 127.0.0.1, no fsync (test data only).

    TLS on both ports, and only clients (and peers) with a certificate of etcd's own CA.
    """
    client = etcd_url(ports)
    peer = f"https://127.0.0.1:{ports.etcd_peer}"
    server_cert, server_key = pki.cert("etcd-server"), pki.key("etcd-server")
    return [
        str(etcd),
        f"--name={name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={name}={peer}",
        "--initial-cluster-state=new",
        f"--cert-file={server_cert}",
        f"--key-file={server_key}",
        "--client-cert-auth=true",
        f"--trusted-ca-file={pki.etcd_ca_cert}",
        f"--peer-cert-file={server_cert}",
        f"--peer-key-file={server_key}",
        "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={pki.etcd_ca_cert}",
        f"--quota-backend-bytes={ETCD_QUOTA_BYTES}",
        "--snapshot-count=10000",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def feature_gates_args(gates: Mapping[str, bool]) -> list[str]:
    """``--feature-gates=A=true,B=false`` for a component, or nothing when no gate is set.

    The control plane gets every gate a test's cluster sets, as the kubelet does: each component
    registers all gates of its version (``pkg/features/kube_features.go``) and ignores those it
    does not use, and a gate such as a new field's needs the API server too.
    """
    if not gates:
        return []
    from pytest_probes.binaries.k8s import feature_gates_flag

    return [feature_gates_flag(gates)]


def apiserver_command(
    apiserver: Path,
    *,
    pki: PkiPaths,
    ports: Ports,
    advertise_address: str,
    feature_gates: Mapping[str, bool] | None = None,
) -> list[str]:
    """Return kube-apiserver's command line.

    Args:
        apiserver: The binary.
        pki: The cluster's certificates.
        ports: The cluster's ports.
        advertise_address: The address published as the API server's; it must not be a loopback
            address (the node IP is used). Nothing listens there: the endpoint reconciler is off.
        feature_gates: Feature gates to set (:func:`feature_gates_args`).

    Returns:
        The command line.
    """
    return [
        str(apiserver),
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--advertise-address={advertise_address}",
        "--endpoint-reconciler-type=none",
        f"--etcd-servers={etcd_url(ports)}",
        f"--etcd-cafile={pki.etcd_ca_cert}",
        f"--etcd-certfile={pki.cert('etcd-apiserver-client')}",
        f"--etcd-keyfile={pki.key('etcd-apiserver-client')}",
        "--anonymous-auth=false",
        f"--client-ca-file={pki.ca_cert}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
        f"--kubelet-certificate-authority={pki.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--event-ttl=2h",
        "--v=1",
        *feature_gates_args(feature_gates or {}),
    ]


def controller_manager_command(
    controller_manager: Path,
    *,
    pki: PkiPaths,
    kubeconfig: Path,
    ports: Ports,
    cluster_name: str,
    feature_gates: Mapping[str, bool] | None = None,
) -> list[str]:
    """Return kube-controller-manager's command line.

    Every default controller runs (Deployments, ReplicaSets, Endpoints, EndpointSlices, namespace
    deletion, service accounts, garbage collection, node lifecycle, ...); cloud controllers are
    not built in, and node IPAM is off because the CNI config owns the pod subnet.
    """
    return [
        str(controller_manager),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allocate-node-cidrs=false",
        f"--cluster-name={cluster_name}",
        "--controllers=*,-nodeipam",
        # Each controller fetches its own service-account token at start; the default client
        # rate limit (20 qps) spreads that over seconds.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--profiling=false",
        "--v=1",
        *feature_gates_args(feature_gates or {}),
    ]


def scheduler_command(scheduler: Path, *, kubeconfig: Path, ports: Ports,
                      feature_gates: Mapping[str, bool] | None = None) -> list[str]:
    """Return kube-scheduler's command line."""
    return [
        str(scheduler),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
        *feature_gates_args(feature_gates or {}),
    ]
