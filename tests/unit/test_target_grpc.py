"""The target app's gRPC health service (``GRPC_PORT``, :mod:`pytest_probes.target.grpc_health`).

The messages are encoded by hand (no protobuf runtime in the image); their bytes are checked
against the protobuf wire format. The service itself runs under an interpreter that has grpcio:
this one (grpcio is in the dev extra), else Debian's ``python3-grpcio`` on ``/usr/bin/python3``
as in the image; where neither has it the end-to-end tests are skipped and say so. Without
grpcio, and without ``GRPC_PORT``, the app runs on the standard library alone
(``test_target_app.py`` runs it with ``-S``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_probes.target import SettingsError, parse_settings
from pytest_probes.target.grpc_health import (
    NOT_SERVING,
    SERVING,
    decode_check_request,
    decode_check_response,
    encode_check_request,
    encode_check_response,
)

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"

CLIENT = """
import sys, grpc
from pytest_probes.target.grpc_health import decode_check_response, encode_check_request
target = "127.0.0.1:" + sys.argv[1]
if sys.argv[2] == "tls":  # as the kubelet in grpc.mode TLS: the certificate is not verified,
    # which Python's grpc cannot skip, so the client trusts the server's own certificate.
    trusted = grpc.ssl_channel_credentials(open(sys.argv[3], "rb").read())
    channel = grpc.secure_channel(target, trusted,
                                  options=[("grpc.ssl_target_name_override", "localhost")])
else:
    channel = grpc.insecure_channel(target)
call = channel.unary_unary("/grpc.health.v1.Health/Check")
for service in sys.argv[4:]:
    try:
        print(decode_check_response(call(encode_check_request(service), timeout=3)))
    except grpc.RpcError as err:
        print(err.code().name)
"""
"""A client as the kubelet's probe calls (``pkg/probe/grpc/grpc.go``: ``Health/Check``)."""


def test_messages_follow_the_protobuf_wire_format() -> None:
    # HealthCheckRequest{service: "readiness"}: field 1, wire type 2, length 9.
    assert encode_check_request("readiness") == b"\x0a\x09readiness"
    assert decode_check_request(b"\x0a\x09readiness") == "readiness"
    # proto3 leaves the empty string out; the kubelet's default request is empty.
    assert encode_check_request("") == b"" and decode_check_request(b"") == ""
    # HealthCheckResponse{status: SERVING / NOT_SERVING}: field 1, varint.
    assert encode_check_response(SERVING) == b"\x08\x01"
    assert decode_check_response(encode_check_response(NOT_SERVING)) == NOT_SERVING
    # Unknown fields are skipped; a long service name takes a multi-byte length.
    long = "s" * 200
    assert decode_check_request(b"\x10\x05" + encode_check_request(long)) == long
    with pytest.raises(ValueError, match="truncated"):
        decode_check_request(b"\x0a\x09read")


def test_grpc_port_is_a_setting_of_its_own() -> None:
    assert parse_settings({}).grpc_port is None
    assert parse_settings({"GRPC_PORT": "5000"}).grpc_port == 5000
    with pytest.raises(SettingsError, match="GRPC_PORT"):
        parse_settings({"PORT": "8080", "GRPC_PORT": "8080"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """The image layout: the target package under an empty parent package."""
    root = tmp_path / "image"
    shutil.copytree(REPO / "pytest_probes" / "target", root / "pytest_probes" / "target",
                    ignore=shutil.ignore_patterns("__pycache__", "Dockerfile"))
    (root / "pytest_probes" / "__init__.py").write_text("")
    return root


def _start(python: list[str], root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*python, "-m", "pytest_probes.target"], cwd=root, text=True,
        env={"PATH": os.environ["PATH"], "BIND_ADDRESS": "127.0.0.1", "PORT": "0", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_without_grpcio_grpc_port_exits_69_naming_the_port(image_root: Path,
                                                          tmp_path: Path) -> None:
    port = _free_port()
    proc = _start([sys.executable, "-E", "-s", "-S"], image_root,
                  {"GRPC_PORT": str(port), "FLAG_DIR": str(tmp_path / "flags")})
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 69, out
    assert f"cannot serve gRPC health on port {port}" in out and "grpc" in out


def _grpc_python() -> list[str]:
    """An interpreter with grpcio, started so it sees the image layout first."""
    for python in ([sys.executable, "-E"], [SYSTEM_PYTHON, "-E", "-s"]):
        if Path(python[0]).exists() and subprocess.run(
                [*python, "-c", "import grpc"], capture_output=True).returncode == 0:
            return python
    pytest.skip(f"neither {sys.executable} nor {SYSTEM_PYTHON} has a grpc module (pip install "
                "grpcio, the dev extra has it; Debian: apt-get install python3-grpcio, the "
                "package the target image has)")


@dataclass
class GrpcApp:
    python: list[str]
    port: int
    flags: Path
    root: Path
    cert: Path | None = None

    def check(self, *services: str, tls: bool | None = None) -> list[str]:
        """Health/Check each service; ``tls`` (default: as the app serves) picks the channel."""
        use_tls = self.cert is not None if tls is None else tls
        out = subprocess.run(
            [*self.python, "-c", CLIENT, str(self.port), "tls" if use_tls else "plain",
             str(self.cert), *services],
            cwd=self.root, capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.split()


@contextlib.contextmanager
def _grpc_app(root: Path, tmp_path: Path, tls: bool) -> Iterator[GrpcApp]:
    python = _grpc_python()
    app = GrpcApp(python, _free_port(), tmp_path / "flags", root)
    env = {"GRPC_PORT": str(app.port), "FLAG_DIR": str(app.flags)}
    if tls:
        from pytest_probes.providers.local.pki import issue, make_ca

        pair = issue(make_ca("probes-test-ca"), "localhost", dns_names=["localhost"], server=True)
        app.cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
        app.cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        env |= {"GRPC_TLS_CERT": str(app.cert), "GRPC_TLS_KEY": str(key)}
    proc = _start(python, root, env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    want = "(grpc, TLS)" if tls else "(grpc)"
    for line in proc.stdout:
        if want in line and "listening on" in line:
            break
        assert time.monotonic() < deadline, line
    try:
        yield app
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def grpc_app(image_root: Path, tmp_path: Path) -> Iterator[GrpcApp]:
    with _grpc_app(image_root, tmp_path, tls=False) as app:
        yield app


@pytest.fixture
def grpc_tls_app(image_root: Path, tmp_path: Path) -> Iterator[GrpcApp]:
    with _grpc_app(image_root, tmp_path, tls=True) as app:
        yield app


def test_health_check_follows_the_flag_files(grpc_app: GrpcApp) -> None:
    flags = grpc_app.flags
    assert grpc_app.check("", "liveness", "readiness", "nope") == [
        str(SERVING), str(SERVING), str(SERVING), "NOT_FOUND"]
    (flags / "fail-liveness").touch()
    assert grpc_app.check("", "readiness") == [str(NOT_SERVING), str(SERVING)]
    (flags / "fail-liveness").unlink()
    (flags / "fail-readiness").touch()
    assert grpc_app.check("", "readiness") == [str(SERVING), str(NOT_SERVING)]
    # A hanging verdict holds the call past the client's deadline.
    (flags / "hang-liveness").touch()
    assert grpc_app.check("liveness") == ["DEADLINE_EXCEEDED"]


def test_tls_serves_tls_only(grpc_tls_app: GrpcApp) -> None:
    assert grpc_tls_app.check("", "readiness") == [str(SERVING), str(SERVING)]
    (grpc_tls_app.flags / "fail-liveness").touch()
    assert grpc_tls_app.check("") == [str(NOT_SERVING)]
    # A plaintext call to the TLS port fails, as the probe without grpc.mode TLS does (upstream
    # "should be restarted with a GRPC liveness probe when not using TLS against a TLS server").
    assert grpc_tls_app.check("", tls=False) == ["UNAVAILABLE"]
