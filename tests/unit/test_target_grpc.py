"""The target app's gRPC health service (``GRPC_PORT``, :mod:`pytest_probes.target.grpc_health`).

The messages are encoded by hand (no protobuf runtime in the image); their bytes are checked
against the protobuf wire format. The service itself runs under an interpreter that has grpcio:
Debian's ``python3-grpcio`` on ``/usr/bin/python3``, as in the image; where that is missing the
end-to-end test is skipped and says so. Without grpcio, and without ``GRPC_PORT``, the app runs
on the standard library alone (``test_target_app.py`` runs it with ``-S``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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
call = grpc.insecure_channel("127.0.0.1:" + sys.argv[1]).unary_unary(
    "/grpc.health.v1.Health/Check")
for service in sys.argv[2:]:
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


def _system_grpc() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import grpc"], capture_output=True).returncode == 0


@pytest.fixture
def grpc_app(image_root: Path, tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    if not _system_grpc():
        pytest.skip(f"{SYSTEM_PYTHON} has no grpc module (Debian: apt-get install python3-grpcio, "
                    "the package the target image has)")
    port, flags = _free_port(), tmp_path / "flags"
    proc = _start([SYSTEM_PYTHON, "-E", "-s"], image_root,
                  {"GRPC_PORT": str(port), "FLAG_DIR": str(flags)})
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    for line in proc.stdout:
        if "(grpc)" in line and "listening on" in line:
            break
        assert time.monotonic() < deadline, line
    try:
        yield port, flags, image_root
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def _check(port: int, root: Path, *services: str) -> list[str]:
    out = subprocess.run([SYSTEM_PYTHON, "-E", "-s", "-c", CLIENT, str(port), *services],
                         cwd=root, capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split()


def test_health_check_follows_the_flag_files(grpc_app: tuple[int, Path, Path]) -> None:
    port, flags, root = grpc_app
    assert _check(port, root, "", "liveness", "readiness", "nope") == [
        str(SERVING), str(SERVING), str(SERVING), "NOT_FOUND"]
    (flags / "fail-liveness").touch()
    assert _check(port, root, "", "readiness") == [str(NOT_SERVING), str(SERVING)]
    (flags / "fail-liveness").unlink()
    (flags / "fail-readiness").touch()
    assert _check(port, root, "", "readiness") == [str(SERVING), str(NOT_SERVING)]
    # A hanging verdict holds the call past the client's deadline.
    (flags / "hang-liveness").touch()
    assert _check(port, root, "liveness") == ["DEADLINE_EXCEEDED"]
