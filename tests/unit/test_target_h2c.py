"""The target app's h2c listener (``H2C_PORT``, :mod:`pytest_probes.target.h2c`).

The app runs as in the image (the target package under an empty parent package) with this
interpreter, which has h2 (the dev extra; the image has Debian's python3-h2). The client is h2 as
well, speaking HTTP/2 with prior knowledge as the kubelet's ``protocol: HTTP2`` probe does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_probes.target import SettingsError, parse_settings
from pytest_probes.target.logline import parse_health_line

h2_connection = pytest.importorskip("h2.connection", reason="h2 is in the dev extra")
import h2.config  # noqa: E402
import h2.events  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_h2c_port_and_grpc_tls_are_settings_of_their_own() -> None:
    assert parse_settings({}).h2c_port is None
    assert parse_settings({"H2C_PORT": "80"}).h2c_port == 80
    with pytest.raises(SettingsError, match="H2C_PORT"):
        parse_settings({"PORT": "8080", "H2C_PORT": "8080"})
    with pytest.raises(SettingsError, match="H2C_PORT"):
        parse_settings({"GRPC_PORT": "5000", "H2C_PORT": "5000"})
    tls = parse_settings({"GRPC_PORT": "5000", "GRPC_TLS_CERT": "/tls/tls.crt",
                          "GRPC_TLS_KEY": "/tls/tls.key"})
    assert (tls.grpc_tls_cert, tls.grpc_tls_key) == ("/tls/tls.crt", "/tls/tls.key")
    with pytest.raises(SettingsError, match=r"GRPC_TLS_CERT.*together with GRPC_TLS_KEY"):
        parse_settings({"GRPC_PORT": "5000", "GRPC_TLS_CERT": "/tls/tls.crt"})
    with pytest.raises(SettingsError, match=r"GRPC_TLS_KEY.*together with GRPC_TLS_CERT"):
        parse_settings({"GRPC_PORT": "5000", "GRPC_TLS_KEY": "/tls/tls.key"})
    with pytest.raises(SettingsError, match="GRPC_PORT to be set"):
        parse_settings({"GRPC_TLS_CERT": "/tls/tls.crt", "GRPC_TLS_KEY": "/tls/tls.key"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class App:
    """The app's process, its h2c port, its flag directory and the lines it printed."""

    def __init__(self, proc: subprocess.Popen[str], port: int, flags: Path) -> None:
        self.proc, self.port, self.flags = proc, port, flags


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    import shutil

    root = tmp_path / "image"
    shutil.copytree(REPO / "pytest_probes" / "target", root / "pytest_probes" / "target",
                    ignore=shutil.ignore_patterns("__pycache__", "Dockerfile"))
    (root / "pytest_probes" / "__init__.py").write_text("")
    port, flags = _free_port(), tmp_path / "flags"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_probes.target"], cwd=root, text=True,
        env={"PATH": os.environ["PATH"], "BIND_ADDRESS": "127.0.0.1", "PORT": "0",
             "H2C_PORT": str(port), "FLAG_DIR": str(flags), "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    for line in proc.stdout:
        if "(h2c)" in line and "listening on" in line:
            break
        assert time.monotonic() < deadline, line
    try:
        yield App(proc, port, flags)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def _get(port: int, *paths: str) -> list[tuple[int, str]]:
    """GET each path on one HTTP/2 connection (prior knowledge); (status, body) per path."""
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    conn = h2_connection.H2Connection(config=config)
    answers: list[tuple[int, str]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        for path in paths:
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, [
                (":method", "GET"), (":path", path), (":scheme", "http"),
                (":authority", "localhost"), ("user-agent", "kube-probe/1.37")], end_stream=True)
            sock.sendall(conn.data_to_send())
            status, body, ended = 0, b"", False
            while not ended:
                data = sock.recv(65535)
                assert data, f"the server closed the connection before answering {path}"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = int(dict(event.headers)[":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, stream)
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                        ended = True
                sock.sendall(conn.data_to_send())
            answers.append((status, body.decode()))
    return answers


def test_h2c_answers_the_paths_by_the_health_rules(app: App) -> None:
    assert _get(app.port, "/", "/livez", "/nothing") == [
        (200, "Hello, World!"), (200, "OK"), (404, "Not Found: /nothing\n")]
    app.flags.mkdir(exist_ok=True)
    (app.flags / "fail-liveness").touch()
    [(status, body)] = _get(app.port, "/livez")
    assert status == 500 and "fail-liveness" in body


def test_h2c_logs_health_lines_with_its_listener(app: App) -> None:
    _get(app.port, "/readyz")
    app.proc.terminate()
    assert app.proc.stdout is not None
    out = app.proc.stdout.read()
    app.proc.wait(10)
    [line] = [h for h in map(parse_health_line, out.splitlines()) if h is not None]
    assert (line.listener, line.path, line.status, line.outcome) == ("h2c", "/readyz", 200, "ok")
    assert line.port == app.port and line.user_agent == "kube-probe/1.37"
    assert "Request: GET / " not in out  # health paths are logged once, as health lines


def test_h2c_refuses_http1_with_a_protocol_error(app: App) -> None:
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := sock.recv(65535):
            data += chunk
    frames = []
    while data:
        length, kind = int.from_bytes(data[:3], "big"), data[3]
        frames.append((kind, data[9:9 + length]))
        data = data[9 + length:]
    # The server's SETTINGS (type 4), then a GOAWAY (7) with PROTOCOL_ERROR (1): no HTTP/1.1.
    assert [kind for kind, _ in frames] == [4, 7], frames
    assert int.from_bytes(frames[1][1][4:8], "big") == 1, frames
