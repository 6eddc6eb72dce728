"""The target app's HTTP side: the paths it serves, its listeners and the request handler.

:class:`Listener` is one listening socket; :class:`_Handler` turns each HTTP request into calls on
the listener's :class:`~pytest_probes.target.server.App`, which decides every health answer.

Standard library only: this module runs inside the target image without the rest of the package;
:mod:`urllib.parse` splits request paths and queries (urllib3 is not in the image).
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

from pytest_probes.target.logline import Outcome, format_health_line
from pytest_probes.target.settings import CONFIG_KEY

if TYPE_CHECKING:
    from pytest_probes.target.server import App

Kind = Literal["liveness", "readiness", "startup"]

PROBE_PATHS: dict[str, Kind] = {
    "/healthz": "liveness",
    "/livez": "liveness",
    "/readyz": "readiness",
    "/startupz": "startup",
}
"""Health paths and the probe kind whose flag files and rules apply to them."""

_REDIRECT_CODES = (301, 302, 303, 307, 308)
_NO_BODY = (204, 304)


class Listener(ThreadingHTTPServer):
    """One listening socket; requests are handled on daemon threads."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, app: App, name: str, address: tuple[str, int], family: int) -> None:
        self.app = app
        self.name = name
        self.address_family = family
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup, which can stall in a pod."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    """Turns one HTTP request into calls on the listener's :class:`App`."""

    server_version = "probes-target/1"
    sys_version = ""
    _head = False

    def version_string(self) -> str:
        """The Server header: the app name only."""
        return self.server_version

    @property
    def _listener(self) -> Listener:
        return cast(Listener, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own stderr lines; the app logs every request itself."""

    def do_GET(self) -> None:
        """Answer GET."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Answer HEAD like GET, without a body."""
        self._head = True
        self._dispatch()

    def _dispatch(self) -> None:
        app = self._listener.app
        url = urlsplit(self.path)
        path = url.path
        app.count_request(path)
        if path in PROBE_PATHS:
            self._probe(path)
            return
        query = parse_qs(url.query)
        if path == "/":
            status = self._send(200, "Hello, World!")
        elif path.startswith("/status/"):
            status = self._status(path.removeprefix("/status/"))
        elif path == "/redirect":
            status = self._redirect(query)
        elif path == "/config" and app.settings.mode == "config":
            names, source = app.config_names()
            body = f"{CONFIG_KEY}={','.join(names)}\n"
            status = self._send(200, body, headers={"X-Source": source})
        elif path == "/info":
            body = json.dumps(app.info(), indent=2, sort_keys=True) + "\n"
            status = self._send(200, body, content_type="application/json")
        else:
            status = self._send(404, f"Not Found: {path}\n")
        app.log(
            f"Request: {self.command} {path} status={status} listener={self._listener.name} "
            f"client={self.client_address[0]}"
        )

    def _status(self, text: str) -> int:
        if text.isascii() and text.isdigit() and 200 <= int(text) <= 599:
            code = int(text)
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = ""
            return self._send(code, f"{code} {phrase}".rstrip() + "\n")
        return self._send(400, f"Bad Request: /status/<code> needs a code 200-599, got {text!r}\n")

    def _redirect(self, query: dict[str, list[str]]) -> int:
        target = query.get("to", [""])[-1]
        code_text = query.get("code", ["302"])[-1]
        if not target or "\r" in target or "\n" in target:
            return self._send(400, "Bad Request: /redirect needs ?to=/path\n")
        if not code_text.isdigit() or int(code_text) not in _REDIRECT_CODES:
            codes = ", ".join(map(str, _REDIRECT_CODES))
            return self._send(400, f"Bad Request: /redirect code must be one of {codes}\n")
        body = f"Redirecting to {target}\n"
        return self._send(int(code_text), body, headers={"Location": target})

    def _probe(self, path: str) -> None:
        app = self._listener.app
        verdict = app.health_verdict(path)
        outcome: Outcome
        if verdict.status is None:
            outcome = "hang"
        else:
            outcome = "ok" if verdict.status < 400 else "fail"
        app.count_outcome(outcome)
        app.log(
            format_health_line(
                outcome,
                path=path,
                status=verdict.status,
                reason=verdict.reason,
                listener=self._listener.name,
                port=self._listener.server_port,
                client=str(self.client_address[0]),
                user_agent=self.headers.get("User-Agent", ""),
            )
        )
        if verdict.status is None:
            self._hang()
        else:
            self._send(verdict.status, verdict.body)

    def _hang(self) -> None:
        """Send nothing until the client leaves, HANG_MAX passes (then 503) or the app stops."""
        app = self._listener.app
        self.close_connection = True
        hang_max = app.settings.hang_max
        deadline = time.monotonic() + hang_max
        with app.hanging():
            while not app.stop_event.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._send(503, f"Service Unhealthy: hung for HANG_MAX={hang_max:g} s")
                    return
                if self._client_gone(min(0.2, remaining)):
                    return

    def _client_gone(self, timeout: float) -> bool:
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
            if not readable:
                return False
            if sock.recv(1, socket.MSG_PEEK) == b"":
                return True
        except OSError:
            return True
        # The client sent more bytes; it is still there. Do not spin on the readable socket.
        self._listener.app.stop_event.wait(timeout)
        return False

    def _send(
        self,
        status: int,
        body: str,
        *,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> int:
        data = b"" if status in _NO_BODY else body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if status not in _NO_BODY:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not self._head:
                self.wfile.write(data)
        except OSError:  # the client went away; nothing to tell it
            self.close_connection = True
        return status
