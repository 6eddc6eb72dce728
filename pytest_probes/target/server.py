"""The target app's process: its state, the fault rules, signals and exit.

What the app does, variable by variable, is documented in the package docstring
(:mod:`pytest_probes.target`); this module implements it. :class:`App` holds the state of one
process and decides every health answer (:meth:`App.health_verdict`); the HTTP side
(:mod:`pytest_probes.target.handler`) turns requests into calls on it; :meth:`App.run` owns the
process lifetime and returns the exit code.

Standard library only: this module runs inside the target image without the rest of the package,
so its one outgoing request (CONFIG_URL) is made with :mod:`http.client` and the URL split with
:mod:`urllib.parse` (urllib3 and the Kubernetes client are not in the image).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from pytest_probes.target import grpc_health, h2c
from pytest_probes.target.handler import PROBE_PATHS, Kind, Listener
from pytest_probes.target.logline import (
    CLOCK_FROM,
    STARTING,
    Log,
    Outcome,
    format_health_line,
    timestamp,
)
from pytest_probes.target.settings import (
    CONFIG_KEY,
    EXIT_USAGE,
    Settings,
    SettingsError,
    parse_exclude_list,
    parse_settings,
)

EXIT_UNAVAILABLE = 69
"""Exit code when a listening port cannot be bound (``EX_UNAVAILABLE``)."""

FLAG_FILES = (
    "fail-liveness",
    "fail-readiness",
    "fail-startup",
    "hang-liveness",
    "hang-readiness",
    "hang-startup",
    "exit-now",
    "start-now",
    "healthy",
)
"""The file names the app looks for in FLAG_DIR."""

_FAIL_STATUS: dict[Kind, int] = {"liveness": 500, "readiness": 503, "startup": 503}
_EXIT_WATCH_INTERVAL = 0.2
_SERVE_POLL_INTERVAL = 0.1
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Verdict:
    """The answer to one health request.

    Attributes:
        status: The HTTP status to send, or ``None`` to hang.
        body: The response body.
        reason: Why, as logged (``ok``, ``fail-after``, ``flag:fail-liveness``, ...).
    """

    status: int | None
    body: str
    reason: str


class App:
    """The state of one target app process and the rules that answer health requests.

    Args:
        settings: The parsed configuration.
        log: Where log lines go.
        clock: Monotonic clock in seconds.
        started_ago: How long the process ran before this object was built (see
            :func:`process_age`); uptime counts from the process's start, not from here.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        log: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
        started_ago: float = 0.0,
    ) -> None:
        self.settings = settings
        self.log = log if log is not None else Log()
        self._clock = clock
        self._t0 = clock() - started_ago
        self.start_time = time.time() - started_ago
        self.stop_event = threading.Event()
        self.exit_code: int | None = None
        self.exit_reason = ""
        self.ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._degrade_count = 0
        self._rng = random.Random(settings.degrade_seed)
        self._hanging = 0
        self._config_cache: tuple[float, tuple[str, ...]] | None = None
        self._signalled = False
        self._signal_sockets: tuple[socket.socket, socket.socket] | None = None

    # -- time and flags ---------------------------------------------------------------------

    def uptime(self) -> float:
        """Seconds since the process started."""
        return self._clock() - self._t0

    def started(self) -> bool:
        """Whether START_DELAY has passed, or flag file ``start-now`` ended it early."""
        return self.uptime() >= self.settings.start_delay or self.has_flag("start-now")

    def flag_path(self, name: str) -> Path:
        """The path of flag file ``name`` in FLAG_DIR."""
        return Path(self.settings.flag_dir) / name

    def has_flag(self, name: str) -> bool:
        """Whether flag file ``name`` exists now."""
        return self.flag_path(name).exists()

    # -- health rules -----------------------------------------------------------------------

    def health_verdict(self, path: str) -> Verdict:
        """Decide the answer to a request for health path ``path`` (a key of PROBE_PATHS).

        The rules, first match wins, are listed in the package docstring.
        """
        kind = PROBE_PATHS[path]
        s = self.settings
        up = self.uptime()
        if up < s.start_delay and not self.has_flag("start-now"):
            return Verdict(503, f"Starting: START_DELAY={s.start_delay:g} s not over", "starting")
        if self.has_flag(f"hang-{kind}"):
            return Verdict(None, "", f"flag:hang-{kind}")
        if s.hang_after is not None and up >= s.hang_after:
            return Verdict(None, "", "hang-after")
        if self.has_flag(f"fail-{kind}"):
            body = f"Service Unhealthy: flag file {self.flag_path(f'fail-{kind}')} exists"
            return Verdict(_FAIL_STATUS[kind], body, f"flag:fail-{kind}")
        if kind == "liveness" and s.config_url is not None:
            names = self.excluded_names()
            if names is not None and s.pod_name in names:
                listed = f"{CONFIG_KEY} at {s.config_url}"
                body = f"Service Unhealthy: pod {s.pod_name} is listed in {listed}"
                return Verdict(500, body, "excluded")
        if s.fail_after is not None and up >= s.fail_after:
            body = f"Service Unhealthy: FAIL_AFTER={s.fail_after:g} s passed"
            return Verdict(503, body, "fail-after")
        if s.degrade and path == "/healthz":
            with self._lock:
                self._degrade_count += 1
                count = self._degrade_count
                failed = self._rng.random() < count / 100
            if failed:
                return Verdict(500, f"Server Error {count}", "degrade")
            return Verdict(200, f"OK {count}", "ok")
        return Verdict(200, "OK", "ok")

    def excluded_names(self) -> tuple[str, ...] | None:
        """Fetch the exclusion list from CONFIG_URL; ``None`` (and a warning) if unavailable."""
        s = self.settings
        assert s.config_url is not None
        with self._lock:
            cached = self._config_cache
        if cached is not None and self._clock() - cached[0] < s.config_ttl:
            return cached[1]
        try:
            body = fetch(s.config_url, timeout=s.config_timeout)
        except (OSError, ValueError, http.client.HTTPException) as err:
            self.log(
                f"Warning: config service {s.config_url} unavailable ({err}); "
                "liveness is not failed for it"
            )
            return None
        names = parse_exclude_list(body)
        with self._lock:
            self._config_cache = (self._clock(), names)
        return names

    def config_names(self) -> tuple[tuple[str, ...], str]:
        """Config mode: the exclusion list to serve and where it came from (file or env)."""
        s = self.settings
        try:
            text = Path(s.config_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            return s.live_exclude, f"env {CONFIG_KEY}"
        except (OSError, UnicodeDecodeError) as err:
            self.log(f"Warning: cannot read CONFIG_FILE {s.config_file} ({err}); using env")
            return s.live_exclude, f"env {CONFIG_KEY}"
        return parse_exclude_list(text), f"file {s.config_file}"

    def judge(self, path: str) -> tuple[Verdict, Outcome]:
        """:meth:`health_verdict` for ``path``, counted by its outcome."""
        verdict = self.health_verdict(path)
        outcome: Outcome
        if verdict.status is None:
            outcome = "hang"
        else:
            outcome = "ok" if verdict.status < 400 else "fail"
        self.count_outcome(outcome)
        return verdict, outcome

    def grpc_check(self, kind: Kind, service: str, context: Any) -> int:
        """Answer one ``grpc.health.v1.Health/Check`` for ``service``.

        The rules of ``kind``'s HTTP path decide; a hanging verdict holds the call until its
        deadline (``context.is_active``), HANG_MAX or the app's exit, then answers NOT_SERVING.
        """
        verdict, outcome = self.judge(grpc_health.KIND_PATHS[kind])
        peer = str(context.peer()) if hasattr(context, "peer") else "-"
        self.log(format_health_line(
            outcome, path=grpc_health.check_path(service),
            status=verdict.status, reason=verdict.reason, listener="grpc",
            port=self.ports.get("grpc", 0), client=peer, user_agent="grpc"))
        if verdict.status is None:
            deadline = self._clock() + self.settings.hang_max
            with self.hanging():
                while (context.is_active() and self._clock() < deadline
                       and not self.stop_event.wait(0.2)):
                    pass
            return grpc_health.NOT_SERVING
        return grpc_health.SERVING if verdict.status < 400 else grpc_health.NOT_SERVING

    # -- counters ---------------------------------------------------------------------------

    def count_request(self, path: str) -> None:
        """Count one request for ``path``."""
        with self._lock:
            self._requests[path] += 1

    def count_outcome(self, outcome: Outcome) -> None:
        """Count one health answer by outcome."""
        with self._lock:
            self._outcomes[outcome] += 1

    @contextlib.contextmanager
    def hanging(self) -> Iterator[None]:
        """Count a request as hanging while the block runs."""
        with self._lock:
            self._hanging += 1
        try:
            yield
        finally:
            with self._lock:
                self._hanging -= 1

    def info(self) -> dict[str, Any]:
        """The ``/info`` document."""
        s = self.settings
        up = self.uptime()
        with self._lock:
            counters = {
                "requests": dict(self._requests),
                "health": {key: self._outcomes[key] for key in ("ok", "fail", "hang")},
                "degrade": self._degrade_count,
                "hanging_now": self._hanging,
            }
        return {
            "app": "pytest-probes-target",
            "pod_name": s.pod_name,
            "pid": os.getpid(),
            "mode": s.mode,
            "start_time": timestamp(self.start_time),
            "uptime_seconds": round(up, 3),
            "started": self.started(),
            "listeners": dict(self.ports),
            "settings": {**asdict(s), "on_sigterm": s.on_sigterm},
            "counters": counters,
            "flags": [name for name in FLAG_FILES if self.has_flag(name)],
        }

    # -- lifetime ---------------------------------------------------------------------------

    def request_exit(self, code: int, reason: str) -> None:
        """Ask :meth:`run` to stop serving and return ``code``; the first request wins."""
        with self._lock:
            if self.exit_code is not None:
                return
            self.exit_code = code
            self.exit_reason = reason
        self.stop_event.set()

    def handle_signal(self, signum: int) -> None:
        """Act on SIGTERM/SIGINT as ON_SIGTERM and SIGTERM_DELAY say (called off the handler)."""
        name = signal.Signals(signum).name
        s = self.settings
        code = s.sigterm_exit_code
        if code is None:
            self.log(f"Signal: {name} received; ignoring it (ON_SIGTERM=ignore)")
            return
        if self._signalled:
            self.log(f"Signal: {name} received again; already exiting")
            return
        self._signalled = True
        self.log(
            f"Signal: {name} received; exiting with code {code} in {s.sigterm_delay:g} s "
            f"(ON_SIGTERM={s.on_sigterm}, SIGTERM_DELAY={s.sigterm_delay:g})"
        )
        reason = f"{name} (ON_SIGTERM={s.on_sigterm})"
        if s.sigterm_delay > 0:
            timer = threading.Timer(s.sigterm_delay, self.request_exit, args=(code, reason))
            timer.daemon = True
            timer.start()
        else:
            self.request_exit(code, reason)

    def run(self) -> int:
        """Serve until something asks the process to exit; return the exit code.

        Must be called from the main thread (it installs signal handlers).
        """
        s = self.settings
        self.log(f"{STARTING}: mode={s.mode} pod={s.pod_name} pid={os.getpid()} "
                 f"{CLOCK_FROM}={timestamp(self.start_time)}")
        self.log(f"Config: {json.dumps(_non_defaults(s), sort_keys=True)}")
        self._install_signal_handlers()
        self._prepare_flag_dir()
        threading.Thread(target=self._watch_exit_flag, name="exit-now", daemon=True).start()
        if s.exit_after is not None:
            timer = threading.Timer(
                max(0.0, s.exit_after - self.uptime()),
                self.request_exit,
                args=(s.exit_code, f"EXIT_AFTER={s.exit_after:g} s passed"),
            )
            timer.daemon = True
            timer.start()

        listeners: list[Listener] = []
        grpc_server: Any = None
        h2c_server: h2c.H2cServer | None = None
        if s.start_delay > 0 and s.start_mode == "refuse":
            self.log(f"Starting: not listening until START_DELAY={s.start_delay:g} s (refuse)")
            self._wait_until_started()
        if not self.stop_event.is_set():
            try:
                listeners = self._listen()
            except OSError as err:
                self.log(f"Error: cannot listen on {s.bind_address}: {err}")
                return EXIT_UNAVAILABLE
            if s.grpc_port is not None:
                try:
                    grpc_server = self._serve_grpc(s.grpc_port)
                except (ImportError, OSError) as err:
                    self.log(f"Error: cannot serve gRPC health on port {s.grpc_port}: {err}")
                    for listener in listeners:
                        listener.server_close()
                    return EXIT_UNAVAILABLE
            if s.h2c_port is not None:
                try:
                    h2c_server = self._serve_h2c(s.h2c_port)
                except (ImportError, OSError) as err:
                    self.log(f"Error: cannot serve h2c on port {s.h2c_port}: {err}")
                    for listener in listeners:
                        listener.server_close()
                    if grpc_server is not None:
                        grpc_server.stop(0)
                    return EXIT_UNAVAILABLE
            if s.start_delay > 0 and s.start_mode == "503":
                self.log(f"Starting: health paths answer 503 until START_DELAY={s.start_delay:g} s")
                self._wait_until_started()
        if not self.stop_event.is_set():
            if s.create_healthy_file:
                self._write_healthy_file()
            self.log(f"Started after {self.uptime():.3f} s")
        while not self.stop_event.wait(0.1):
            pass
        for listener in listeners:
            listener.shutdown()
            listener.server_close()
        if grpc_server is not None:
            grpc_server.stop(0)
        if h2c_server is not None:
            h2c_server.stop()
        code = 0 if self.exit_code is None else self.exit_code
        self.log(f"Exiting with code {code}: {self.exit_reason}")
        return code

    def _install_signal_handlers(self) -> None:
        # A Python signal handler runs on the main thread between any two bytecodes, also while
        # that thread holds a lock or is inside a write to stdout, so it must not log or set an
        # Event. The C-level handler instead writes the signal number to a wakeup socket and a
        # plain thread acts on it.
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self._signal_sockets = (reader, writer)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in _HANDLED_SIGNALS:
            signal.signal(signum, _ignore_in_handler)
        threading.Thread(
            target=self._read_signals, args=(reader,), name="signals", daemon=True
        ).start()

    def _read_signals(self, reader: socket.socket) -> None:
        while data := reader.recv(64):
            for signum in data:
                if signum in _HANDLED_SIGNALS:
                    self.handle_signal(signum)

    def _wait_until_started(self) -> None:
        while not self.stop_event.is_set():
            if self.started():
                return
            self.stop_event.wait(min(self.settings.start_delay - self.uptime(), 0.1))

    def _listen(self) -> list[Listener]:
        s = self.settings
        family = socket.AF_INET6 if ":" in s.bind_address else socket.AF_INET
        wanted = [("main", s.port), ("live", s.live_port), ("ready", s.ready_port)]
        listeners: list[Listener] = []
        try:
            for name, port in wanted:
                if port is not None:
                    listeners.append(Listener(self, name, (s.bind_address, port), family))
        except OSError:
            for listener in listeners:
                listener.server_close()
            raise
        host = f"[{s.bind_address}]" if family == socket.AF_INET6 else s.bind_address
        for listener in listeners:
            self.ports[listener.name] = listener.server_port
            thread = threading.Thread(
                target=listener.serve_forever,
                kwargs={"poll_interval": _SERVE_POLL_INTERVAL},
                name=f"listener-{listener.name}",
                daemon=True,
            )
            thread.start()
            self.log(f"listening on {host}:{listener.server_port} ({listener.name})")
        return listeners

    def _serve_grpc(self, port: int) -> Any:
        """Start the gRPC health service (:mod:`pytest_probes.target.grpc_health`).

        Over TLS with GRPC_TLS_CERT and GRPC_TLS_KEY.
        """
        s = self.settings
        tls = None
        if s.grpc_tls_cert is not None and s.grpc_tls_key is not None:
            tls = (Path(s.grpc_tls_key).read_bytes(), Path(s.grpc_tls_cert).read_bytes())
        server, bound = grpc_health.serve(self, port, s.bind_address, tls=tls)
        self.ports["grpc"] = bound
        host = f"[{s.bind_address}]" if ":" in s.bind_address else s.bind_address
        self.log(f"listening on {host}:{bound} (grpc{', TLS' if tls else ''})")
        return server

    def _serve_h2c(self, port: int) -> h2c.H2cServer:
        """Start the h2c listener (:mod:`pytest_probes.target.h2c`)."""
        s = self.settings
        server, bound = h2c.serve(self, port, s.bind_address)
        self.ports[h2c.LISTENER] = bound
        host = f"[{s.bind_address}]" if ":" in s.bind_address else s.bind_address
        self.log(f"listening on {host}:{bound} (h2c)")
        return server

    def _prepare_flag_dir(self) -> None:
        directory = Path(self.settings.flag_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self.log(f"Warning: cannot create FLAG_DIR {directory} ({err})")
        if self.settings.create_healthy_file:
            try:
                self.flag_path("healthy").unlink(missing_ok=True)
            except OSError as err:
                self.log(f"Warning: cannot delete stale {self.flag_path('healthy')} ({err})")

    def _write_healthy_file(self) -> None:
        path = self.flag_path("healthy")
        try:
            path.write_text("ok\n", encoding="utf-8")
        except OSError as err:
            self.log(f"Warning: cannot create {path} ({err}); exec probes on it will fail")
        else:
            self.log(f"Created {path}")

    def _watch_exit_flag(self) -> None:
        path = self.flag_path("exit-now")
        warned = ""
        while True:
            try:
                text = path.read_text(encoding="utf-8", errors="replace").strip()
            except FileNotFoundError:
                text = ""
            except OSError as err:
                text = ""
                if warned != str(err):
                    warned = str(err)
                    self.log(f"Warning: cannot read {path} ({err})")
            if text.isascii() and text.isdigit() and int(text) <= 255:
                try:
                    path.unlink()
                except OSError as err:
                    self.log(f"Warning: cannot delete {path} ({err}); the next start exits too")
                self.log(f"Flag file {path} asks for exit code {int(text)}")
                self.request_exit(int(text), f"flag file {path}")
                return
            if text and warned != text:
                warned = text
                self.log(f"Warning: ignoring {path}: {text[:40]!r} is not an exit code 0-255")
            if self.stop_event.wait(_EXIT_WATCH_INTERVAL):
                return




def fetch(url: str, *, timeout: float) -> str:
    """GET ``url`` (http or https) straight from the pod, whatever proxy variables say.

    Returns:
        The first 64 KiB of a 2xx answer's body.

    Raises:
        OSError: No answer in time, the connection failed, or the answer was not 2xx.
        http.client.HTTPException: The answer was no HTTP.
    """
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        body = response.read(65536).decode("utf-8", "replace")
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise OSError(f"HTTP Error {response.status}: {response.reason}")
    return body


def _ignore_in_handler(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: nothing; :meth:`App._read_signals` does the work."""


def _non_defaults(settings: Settings) -> dict[str, Any]:
    defaults = Settings()
    return {
        f.name: getattr(settings, f.name)
        for f in fields(settings)
        if getattr(settings, f.name) != getattr(defaults, f.name)
    }


def process_age(stat: str = "/proc/self/stat") -> float:
    """Seconds since the kernel created this process, or 0 where ``/proc`` cannot tell.

    In a container the app is the init process, created by the runtime a moment before the
    container counts as started (``startedAt``: runc forks it, then execs the image's command).
    Counting FAIL_AFTER and the other times from here rather than from the interpreter's first
    line keeps them off the interpreter's start-up, which takes seconds while many pods start.
    """
    try:
        with open(stat, encoding="ascii") as f:
            # Field 22, starttime, in clock ticks since boot; the command name (field 2) is in
            # parentheses and may contain spaces, so count from the last ")".
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
    return max(0.0, age)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the target app with the process environment; return its exit code.

    Args:
        argv: Command-line arguments without the program name (default ``sys.argv[1:]``). Only
            ``-h``/``--help`` is accepted; the app is configured by environment variables.

    Returns:
        The exit code: 0 for ``--help``, 64 for bad arguments or environment, else as configured.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["-h"], ["--help"]):
        print(sys.modules["pytest_probes.target"].__doc__)
        return 0
    if args:
        sys.stderr.write(
            f"pytest_probes.target: unexpected arguments {args!r}; it takes none and is "
            "configured by environment variables (see --help)\n"
        )
        return EXIT_USAGE
    try:
        settings = parse_settings(os.environ)
    except SettingsError as err:
        sys.stderr.write(
            f"pytest_probes.target: invalid environment:\n{err}\n"
            "See `python3 -m pytest_probes.target --help` for every variable and its form.\n"
        )
        return EXIT_USAGE
    return App(settings, started_ago=process_age()).run()
