"""The target app's HTTP/2 side: h2c (HTTP/2 over cleartext, prior knowledge) on ``H2C_PORT``.

A probe with ``httpGet.protocol: HTTP2`` (gate ``H2CContainerProbe``, alpha in 1.37) is sent by a
Go transport with unencrypted HTTP/2 enabled (``pkg/probe/http/http.go``,
``Protocols.SetUnencryptedHTTP2``): the client opens with the HTTP/2 connection preface and
frames, with no ``Upgrade`` from HTTP/1.1. The app's main listener speaks HTTP/1.1 only and
answers that preface with 505; this listener speaks HTTP/2 only.

Framing, flow control and HPACK are the h2 library's (Debian's ``python3-h2`` in the image, the
same on PyPI); it is imported only when ``H2C_PORT`` is set. Each connection is served by one
thread. The paths are the main listener's health paths, answered by the same rules
(:meth:`pytest_probes.target.server.App.judge`) and logged as the same health lines with
``listener=h2c``; ``/`` answers 200 ``Hello, World!`` and any other path 404. A hanging verdict
sends nothing on its stream, so the client's timeout ends it; other streams go on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from pytest_probes.target.handler import PROBE_PATHS
from pytest_probes.target.logline import format_health_line

LISTENER = "h2c"
"""The listener name in the health log lines and in ``App.ports``."""

_ACCEPT_POLL = 0.2
"""Seconds the accept and receive loops wait before looking at the stop event again."""


class H2cServer:
    """The h2c listener: an accepting thread and one thread per connection.

    Args:
        app: The :class:`~pytest_probes.target.server.App` whose rules answer.
        sock: A bound, listening socket.
    """

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self._stop = threading.Event()
        sock.settimeout(_ACCEPT_POLL)
        self._thread = threading.Thread(target=self._accept, name="listener-h2c", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close the listening socket; connections end at their next poll."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, address = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, str(address[0])),
                             name="h2c-connection", daemon=True).start()

    def _serve(self, conn: socket.socket, client: str) -> None:
        import h2.config
        import h2.connection
        import h2.errors
        import h2.events
        import h2.exceptions

        h2conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.settimeout(_ACCEPT_POLL)
        with conn:
            try:
                h2conn.initiate_connection()
                conn.sendall(h2conn.data_to_send())
                while not self._stop.is_set():
                    try:
                        data = conn.recv(65535)
                    except TimeoutError:
                        continue
                    if not data:
                        return
                    try:
                        events = h2conn.receive_data(data)
                    except h2.exceptions.ProtocolError as err:
                        # An HTTP/1.1 request lands here (no connection preface): end with a
                        # GOAWAY saying PROTOCOL_ERROR, as RFC 9113 section 3.4 asks.
                        self.app.log(f"Request: h2c protocol error from client={client}: {err}")
                        with contextlib.suppress(h2.exceptions.ProtocolError):
                            h2conn.close_connection(error_code=h2.errors.ErrorCodes.PROTOCOL_ERROR)
                        conn.sendall(h2conn.data_to_send())
                        return
                    for event in events:
                        if isinstance(event, h2.events.RequestReceived):
                            headers = {str(k): str(v) for k, v in event.headers or ()}
                            self._answer(h2conn, event.stream_id, headers, client)
                        elif isinstance(event, h2.events.ConnectionTerminated):
                            conn.sendall(h2conn.data_to_send())
                            return
                    out = h2conn.data_to_send()
                    if out:
                        conn.sendall(out)
            except OSError:
                return

    def _answer(self, h2conn: Any, stream_id: int, headers: dict[str, str], client: str) -> None:
        method, path = headers.get(":method", ""), urlsplit(headers.get(":path", "")).path
        app = self.app
        app.count_request(path)
        if method not in ("GET", "HEAD"):
            status, body = 405, f"Method Not Allowed: {method}\n"
        elif path in PROBE_PATHS:
            verdict, outcome = app.judge(path)
            app.log(format_health_line(
                outcome, path=path, status=verdict.status, reason=verdict.reason,
                listener=LISTENER, port=self.port, client=client,
                user_agent=headers.get("user-agent", "")))
            if verdict.status is None:
                return
            status, body = verdict.status, verdict.body
        elif path == "/":
            status, body = 200, "Hello, World!"
        else:
            status, body = 404, f"Not Found: {path}\n"
        if path not in PROBE_PATHS:
            app.log(f"Request: {method} {path} status={status} listener={LISTENER} "
                    f"client={client}")
        raw = b"" if method == "HEAD" else body.encode("utf-8")
        h2conn.send_headers(stream_id, [
            (":status", str(status)), ("content-type", "text/plain; charset=utf-8"),
            ("content-length", str(len(body.encode("utf-8"))))], end_stream=not raw)
        if raw:
            h2conn.send_data(stream_id, raw, end_stream=True)


def serve(app: Any, port: int, bind_address: str) -> tuple[H2cServer, int]:
    """Start the h2c listener for ``app``; returns it (call ``stop()`` to end) and its port.

    Args:
        app: The :class:`~pytest_probes.target.server.App` whose rules answer.
        port: The port (0 picks a free one).
        bind_address: The address to bind.

    Raises:
        ImportError: h2 is not installed.
        OSError: The port cannot be bound.
    """
    import h2.connection  # noqa: F401  (fail at start, not at the first connection)

    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind_address, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    server = H2cServer(app, sock)
    return server, server.port
