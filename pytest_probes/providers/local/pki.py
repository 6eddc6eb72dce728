"""Certificates, keys and kubeconfigs of a local cluster.

One CA signs every certificate: the API server's and the kubelet's serving certificates and the
client certificates of the admin, the API server (towards the kubelet), the controller manager,
the scheduler and the kubelet. Keys are ECDSA P-256 (fast to make, accepted by every component);
the service-account token signing key is its own key pair. Every key and kubeconfig file is
written with mode 0600.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_probes._extras import missing_extra

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ModuleNotFoundError as err:  # the local extra is not installed
    raise missing_extra("local", [err.name or "cryptography"], provider="local",
                        needed_by="the local provider (its cluster's certificates)") from err

VALIDITY = _dt.timedelta(days=3650)
"""How long the generated certificates are valid."""


@dataclass(frozen=True)
class KeyPair:
    """A private key and the certificate for it, both PEM-encoded."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate says its holder is."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class PkiPaths:
    """Where the files of a cluster's PKI live (all inside one directory)."""

    directory: Path

    def cert(self, name: str) -> Path:
        """Return the certificate path of ``name`` (``ca``, ``apiserver``, ``admin``, ...)."""
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        """Return the private key path of ``name``."""
        return self.directory / f"{name}.key"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate."""
        return self.cert("ca")

    @property
    def ca_key(self) -> Path:
        """The CA private key."""
        return self.key("ca")

    @property
    def etcd_ca_cert(self) -> Path:
        """The CA of etcd's own certificates (no cluster credential opens etcd)."""
        return self.cert("etcd-ca")

    @property
    def sa_key(self) -> Path:
        """The service-account token signing key (private)."""
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """The service-account token verification key (public)."""
        return self.directory / "sa.pub"


CLIENTS: dict[str, ClientIdentity] = {
    "admin": ClientIdentity("pytest-probes-admin", ("system:masters",)),
    "apiserver-kubelet-client": ClientIdentity(
        "kube-apiserver-kubelet-client", ("system:masters",)
    ),
    "controller-manager": ClientIdentity("system:kube-controller-manager"),
    "scheduler": ClientIdentity("system:kube-scheduler"),
}
"""Client certificates every cluster has, besides the kubelet's (which depends on the node)."""


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.CertificateBuilder:
    """The fields every certificate here shares; ``ca`` decides the constraints and usage."""
    now = _dt.datetime.now(_dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def make_ca(common_name: str) -> KeyPair:
    """Create a self-signed CA certificate and its key."""
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
) -> KeyPair:
    """Issue a certificate signed by ``ca``.

    Args:
        ca: The signing CA.
        common_name: The subject CN (the user name, for client certificates).
        organizations: The subject O values (the groups, for client certificates).
        dns_names: DNS subject alternative names.
        ip_addresses: IP subject alternative names.
        server: Allow TLS server authentication.
        client: Allow TLS client authentication.

    Returns:
        The new key and certificate.
    """
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an ECDSA key")
    key = _new_key()
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = _builder(
        _name(common_name, organizations), ca.certificate.subject, key, ca=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 (created that way, never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_pair(paths: PkiPaths, name: str, pair: KeyPair) -> None:
    write_private(paths.key(name), pair.key_pem)
    write_private(paths.cert(name), pair.cert_pem)


def generate(
    directory: Path,
    *,
    node_name: str,
    node_ip: str,
    service_ip: str,
    cluster_name: str,
) -> PkiPaths:
    """Create every certificate and key of a cluster in ``directory``.

    Args:
        directory: Where to write the files (created if missing).
        node_name: The node name; the kubelet's client certificate says
            ``system:node:<node_name>`` in group ``system:nodes``.
        node_ip: The IP address the kubelet serves on (a SAN of its serving certificate).
        service_ip: The first service IP (the ``kubernetes`` Service), a SAN of the API server's.
        cluster_name: The cluster name, part of the CA's name.

    Returns:
        The paths of the files.
    """
    paths = PkiPaths(directory)
    ca = make_ca(f"pytest-probes-{cluster_name}-ca")
    _write_pair(paths, "ca", ca)
    _write_pair(
        paths,
        "apiserver",
        issue(
            ca,
            "kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=["127.0.0.1", service_ip],
            server=True,
        ),
    )
    _write_pair(
        paths,
        "kubelet-serving",
        issue(
            ca,
            node_name,
            dns_names=[node_name, "localhost"],
            ip_addresses=[node_ip, "127.0.0.1"],
            server=True,
        ),
    )
    for name, identity in CLIENTS.items():
        _write_pair(
            paths,
            name,
            issue(ca, identity.user, organizations=identity.groups, client=True),
        )
    _write_pair(
        paths,
        "kubelet",
        issue(ca, f"system:node:{node_name}", organizations=["system:nodes"], client=True),
    )
    # etcd has a CA of its own, as kubeadm gives it: etcd trusts every certificate its CA
    # signed, so with the cluster's CA any node's or user's credential would open it.
    etcd_ca = make_ca(f"pytest-probes-{cluster_name}-etcd-ca")
    _write_pair(paths, "etcd-ca", etcd_ca)
    _write_pair(paths, "etcd-server", issue(etcd_ca, "etcd", dns_names=["localhost"],
                                            ip_addresses=["127.0.0.1"], server=True, client=True))
    _write_pair(paths, "etcd-apiserver-client",
                issue(etcd_ca, "kube-apiserver-etcd-client", client=True))
    sa_key = _new_key()
    write_private(paths.sa_key, _key_pem(sa_key))
    write_private(
        paths.sa_pub,
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return paths


def kubeconfig(
    *, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, cluster_name: str, user: str
) -> str:
    """Render a kubeconfig with the CA and client certificate embedded.

    Args:
        server: The API server URL.
        ca_pem: The CA certificate.
        cert_pem: The client certificate.
        key_pem: The client key.
        cluster_name: The cluster (and context) name.
        user: The user entry name.

    Returns:
        The kubeconfig YAML.
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(cert_pem),
                    "client-key-data": b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": cluster_name,
        "preferences": {},
    }
    return yaml.safe_dump(document, sort_keys=False)


def write_kubeconfig(
    path: Path, paths: PkiPaths, client: str, *, server: str, cluster_name: str
) -> Path:
    """Write a kubeconfig (mode 0600) for the client certificate ``client`` of ``paths``."""
    text = kubeconfig(
        server=server,
        ca_pem=paths.ca_cert.read_bytes(),
        cert_pem=paths.cert(client).read_bytes(),
        key_pem=paths.key(client).read_bytes(),
        cluster_name=cluster_name,
        user=client,
    )
    write_private(path, text.encode())
    return path
