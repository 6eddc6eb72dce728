"""Certificates, keys and kubeconfigs of the local provider."""

from __future__ import annotations

import base64
import ipaddress
import stat
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pytest_probes.providers.local import pki


def _generate(tmp_path: Path) -> pki.PkiPaths:
    return pki.generate(
        tmp_path / "pki",
        node_name="probes-node",
        node_ip="10.88.0.1",
        service_ip="10.0.0.1",
        cluster_name="probes",
    )


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(ext.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return dns, ips


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_every_file_is_private(tmp_path: Path):
    paths = _generate(tmp_path)
    files = sorted(paths.directory.iterdir())
    assert len(files) == 2 * 11 + 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_apiserver_serving_cert_sans_and_chain(tmp_path: Path):
    paths = _generate(tmp_path)
    ca = _load(paths.ca_cert)
    cert = _load(paths.cert("apiserver"))
    dns, ips = _sans(cert)
    assert {"localhost", "kubernetes.default.svc"} <= dns
    assert ips == {"127.0.0.1", "10.0.0.1"}
    assert _usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True


def test_etcd_has_a_ca_of_its_own_that_signs_only_its_server_and_the_apiservers_client(
    tmp_path: Path,
):
    paths = _generate(tmp_path)
    etcd_ca, cluster_ca = _load(paths.etcd_ca_cert), _load(paths.ca_cert)
    assert etcd_ca.subject != cluster_ca.subject
    server = _load(paths.cert("etcd-server"))
    server.verify_directly_issued_by(etcd_ca)
    assert _sans(server) == ({"localhost"}, {"127.0.0.1"})
    # The peer port uses the same certificate in both roles.
    assert _usages(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    client = _load(paths.cert("etcd-apiserver-client"))
    client.verify_directly_issued_by(etcd_ca)
    assert _usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    # No credential of the cluster's CA (admin, kubelet, components) is one etcd trusts.
    for name in ("admin", "kubelet", "controller-manager", "scheduler",
                 "apiserver-kubelet-client"):
        assert _load(paths.cert(name)).issuer == cluster_ca.subject != etcd_ca.subject


def test_kubelet_certs(tmp_path: Path):
    paths = _generate(tmp_path)
    client = _load(paths.cert("kubelet"))
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "system:node:probes-node"
    )
    assert [a.value for a in client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:nodes"
    ]
    assert _usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    serving = _load(paths.cert("kubelet-serving"))
    _dns, ips = _sans(serving)
    assert "10.88.0.1" in ips
    assert ipaddress.ip_address("10.88.0.1") in serving.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.IPAddress)


def test_admin_is_a_system_master_and_components_have_their_names(tmp_path: Path):
    paths = _generate(tmp_path)
    admin = _load(paths.cert("admin"))
    assert "system:masters" in [
        a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    for name, user in (
        ("controller-manager", "system:kube-controller-manager"),
        ("scheduler", "system:kube-scheduler"),
    ):
        cert = _load(paths.cert(name))
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user


def test_keys_match_their_certificates(tmp_path: Path):
    paths = _generate(tmp_path)
    for name in ("ca", "apiserver", "admin", "kubelet"):
        key = serialization.load_pem_private_key(paths.key(name).read_bytes(), password=None)
        cert = _load(paths.cert(name))
        assert key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    sa_private = serialization.load_pem_private_key(paths.sa_key.read_bytes(), password=None)
    sa_public = serialization.load_pem_public_key(paths.sa_pub.read_bytes())
    assert sa_private.public_key().public_numbers() == sa_public.public_numbers()  # type: ignore[union-attr]


def test_kubeconfig_embeds_ca_and_client_and_is_private(tmp_path: Path):
    paths = _generate(tmp_path)
    target = pki.write_kubeconfig(
        tmp_path / "kubeconfig",
        paths,
        "admin",
        server="https://127.0.0.1:6443",
        cluster_name="probes-x",
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    config = yaml.safe_load(target.read_text())
    assert config["current-context"] == "probes-x"
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == paths.ca_cert.read_bytes()
    user = config["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == paths.key("admin").read_bytes()


def test_write_private_replaces_a_world_readable_file(tmp_path: Path):
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    pki.write_private(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
