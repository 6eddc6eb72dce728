"""The target app, run as a real subprocess and exercised over real HTTP on loopback.

Every process runs from a copy of ``pytest_probes/target`` under an empty ``pytest_probes``
package, with ``python -E -s -S`` (no site-packages, no PYTHONPATH): the layout of the image, and
proof that the app needs nothing but the standard library. Listeners bind 127.0.0.1 with PORT=0;
the chosen port is read from the ``listening on ADDRESS:PORT (NAME)`` line.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_probes.target import (
    HealthLogLine,
    SettingsError,
    parse_exclude_list,
    parse_health_line,
    parse_settings,
)

REPO = Path(__file__).resolve().parents[2]
TARGET_SRC = REPO / "pytest_probes" / "target"


@dataclass
class Response:
    status: int
    body: str
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, *, timeout: float = 3.0, method: str = "GET") -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"User-Agent": "kube-probe/1.30"})
        resp = conn.getresponse()
        body = resp.read().decode()
        return Response(resp.status, body, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


class Target:
    """One app process; its stdout is collected line by line on a thread."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        full_env = {"PATH": os.environ["PATH"], "BIND_ADDRESS": "127.0.0.1", "PORT": "0", **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-E", "-s", "-S", "-m", "pytest_probes.target"],
            cwd=root,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ports: dict[str, int] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def join_reader(self, timeout: float) -> None:
        self._reader.join(timeout)

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, *, timeout: float = 5.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}")
                self._cond.wait(remaining)

    def listening(self, *names: str, timeout: float = 5.0) -> Target:
        for name in names or ("main",):
            match = self.wait_for(rf"listening on \S+:(\d+) \({name}\)$", timeout=timeout)
            self.ports[name] = int(match[1])
        return self

    @property
    def port(self) -> int:
        return self.ports["main"]

    def get(self, path: str, *, timeout: float = 3.0, method: str = "GET") -> Response:
        return http_get(self.port, path, timeout=timeout, method=method)

    def info(self) -> dict[str, object]:
        resp = self.get("/info")
        assert resp.status == 200
        data: dict[str, object] = json.loads(resp.body)
        return data

    def counters(self) -> dict[str, object]:
        counters = self.info()["counters"]
        assert isinstance(counters, dict)
        return counters

    def wait_exit(self, timeout: float = 5.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def health_lines(self, timeout: float = 5.0) -> list[HealthLogLine]:
        """The parsed health lines, once all answered so far (per /info) have been read."""
        health = self.counters()["health"]
        assert isinstance(health, dict)
        expected = sum(health.values())
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                parsed = [h for h in map(parse_health_line, self.lines) if h is not None]
                if len(parsed) >= expected or time.monotonic() > deadline:
                    return parsed
                self._cond.wait(0.1)

    def health_reasons(self) -> list[tuple[str, int | None, str]]:
        return [(h.path, h.status, h.reason) for h in self.health_lines()]


Spawn = Callable[..., Target]


@pytest.fixture(scope="session")
def stub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image layout: the target package under an empty parent package, nothing else."""
    root = tmp_path_factory.mktemp("image")
    shutil.copytree(
        TARGET_SRC,
        root / "pytest_probes" / "target",
        ignore=shutil.ignore_patterns("__pycache__", "Dockerfile"),
    )
    (root / "pytest_probes" / "__init__.py").write_text("")
    return root


@pytest.fixture
def flag_dir(tmp_path: Path) -> Path:
    return tmp_path / "flags"


@pytest.fixture
def spawn(stub_root: Path, flag_dir: Path) -> Iterator[Spawn]:
    started: list[Target] = []

    def _spawn(**env: str) -> Target:
        target = Target(stub_root, {"FLAG_DIR": str(flag_dir), **env})
        started.append(target)
        return target

    yield _spawn
    for target in started:
        if target.proc.poll() is None:
            target.proc.kill()
        target.proc.wait(5)
        # The reader ends at the dead process's EOF; closing its stream under it would raise
        # in the thread (PytestUnhandledThreadExceptionWarning, thread "_read").
        target.join_reader(5)
        for stream in (target.proc.stdout, target.proc.stderr):
            if stream is not None:
                stream.close()


def poll_until(check: Callable[[], bool], *, timeout: float = 5.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


# -- plain paths -------------------------------------------------------------------------------


def test_plain_paths_status_codes_redirect_and_info(spawn: Spawn) -> None:
    t = spawn(POD_NAME="web-0").listening()

    root = t.get("/")
    assert (root.status, root.body) == (200, "Hello, World!")
    head = t.get("/", method="HEAD")
    assert (head.status, head.body, head.headers["content-length"]) == (200, "", "13")
    for path in ("/healthz", "/livez", "/readyz", "/startupz"):
        assert (t.get(path).status, t.get(path).body) == (200, "OK")

    assert t.get("/status/418").status == 418
    assert t.get("/status/503").body.startswith("503 Service Unavailable")
    no_content = t.get("/status/204")
    assert (no_content.status, no_content.body) == (204, "")
    assert t.get("/status/99").status == 400
    assert t.get("/status/abc").status == 400

    redirect = t.get("/redirect?to=/healthz")
    assert (redirect.status, redirect.headers["location"]) == (302, "/healthz")
    assert t.get("/redirect?to=/x&code=307").status == 307
    assert t.get("/redirect").status == 400
    assert t.get("/redirect?to=/x&code=200").status == 400
    assert t.get("/config").status == 404  # only in config mode
    assert t.get("/nope").status == 404

    info = t.info()
    assert info["pod_name"] == "web-0"
    assert info["listeners"] == {"main": t.port}
    assert info["pid"] == t.proc.pid
    assert info["started"] is True
    counters = t.counters()
    assert counters["health"] == {"ok": 8, "fail": 0, "hang": 0}
    assert isinstance(counters["requests"], dict) and counters["requests"]["/healthz"] == 2

    lines = t.health_lines()
    assert len(lines) == 8
    assert {h.outcome for h in lines} == {"ok"}
    assert {(h.listener, h.port, h.client, h.user_agent) for h in lines} == {
        ("main", t.port, "127.0.0.1", "kube-probe/1.30")
    }
    assert sum("Health Check: OK" in line for line in t.lines) == 8


def test_only_main_port_listens_unless_extra_ports_are_set(spawn: Spawn) -> None:
    single = spawn().listening()
    single.wait_for("Started after")
    assert single.info()["listeners"] == {"main": single.port}
    assert not any("(live)" in line or "(ready)" in line for line in single.lines)

    t = spawn(LIVE_PORT="0", READY_PORT="0").listening("main", "live", "ready")
    assert len(set(t.ports.values())) == 3
    live = http_get(t.ports["live"], "/livez")
    ready = http_get(t.ports["ready"], "/readyz")
    assert (live.status, ready.status) == (200, 200)
    listeners = {h.listener: h.port for h in t.health_lines()}
    assert listeners == {"live": t.ports["live"], "ready": t.ports["ready"]}


# -- time-based faults -------------------------------------------------------------------------


def test_fail_after_turns_every_health_path_to_503(spawn: Spawn) -> None:
    t = spawn(FAIL_AFTER="0.8").listening()
    assert t.get("/healthz").status == 200
    before = t.info()["uptime_seconds"]
    assert isinstance(before, float) and before < 0.8

    poll_until(lambda: t.get("/healthz").status == 503)
    uptime = t.info()["uptime_seconds"]
    assert isinstance(uptime, float) and 0.8 <= uptime < 1.3
    for path in ("/livez", "/readyz", "/startupz"):
        assert t.get(path).status == 503
    assert t.get("/").status == 200
    assert t.get("/healthz").body == "Service Unhealthy: FAIL_AFTER=0.8 s passed"

    reasons = t.health_reasons()
    assert reasons[0] == ("/healthz", 200, "ok")
    first_fail = next(i for i, r in enumerate(reasons) if r[1] != 200)
    assert all(r[2] == "fail-after" for r in reasons[first_fail:])
    assert any("Error: Service Unhealthy" in line for line in t.lines)


def _degrade_run(t: Target, n: int) -> list[int]:
    statuses = []
    for i in range(1, n + 1):
        resp = t.get("/healthz")
        expected = f"OK {i}" if resp.status == 200 else f"Server Error {i}"
        assert resp.body == expected
        assert resp.status in (200, 500)
        statuses.append(resp.status)
    return statuses


def test_degrade_fails_more_often_as_the_counter_grows(spawn: Spawn) -> None:
    a = spawn(DEGRADE="1", DEGRADE_SEED="42").listening()
    b = spawn(DEGRADE="1", DEGRADE_SEED="42").listening()
    c = spawn(DEGRADE="1", DEGRADE_SEED="7").listening()
    runs = [_degrade_run(t, 110) for t in (a, b, c)]

    first = runs[0]
    early = first[:30].count(500)
    late = first[60:90].count(500)
    assert early < late, (early, late)
    assert early <= 10 and late >= 15
    assert set(first[100:]) == {500}  # probability 100% from the 100th request on
    assert runs[1] == first  # same seed, same sequence
    assert runs[2] != first
    assert a.get("/").body == "Hello, World!"
    assert a.get("/livez").body == "OK"  # only /healthz degrades
    assert a.counters()["degrade"] == 110
    fails = [r for r in a.health_reasons() if r[2] == "degrade"]
    assert len(fails) == first.count(500)


def test_hang_after_holds_the_request_until_hang_max(spawn: Spawn) -> None:
    t = spawn(HANG_AFTER="0.6", HANG_MAX="0.5").listening()
    assert t.get("/readyz").status == 200
    poll_until(lambda: t.info()["uptime_seconds"] >= 0.6)  # type: ignore[operator]

    started = time.monotonic()
    resp = t.get("/readyz", timeout=3.0)
    elapsed = time.monotonic() - started
    assert resp.status == 503
    assert resp.body == "Service Unhealthy: hung for HANG_MAX=0.5 s"
    assert 0.5 <= elapsed < 1.5
    assert t.get("/").status == 200
    assert ("/readyz", None, "hang-after") in t.health_reasons()
    assert any("Error: Service Hanging" in line for line in t.lines)


def test_start_delay_refuse_does_not_listen_until_started(spawn: Spawn, flag_dir: Path) -> None:
    port = free_port()
    t = spawn(PORT=str(port), START_DELAY="0.7", CREATE_HEALTHY_FILE="1")
    t.wait_for("not listening until START_DELAY")
    with pytest.raises(ConnectionRefusedError):
        http_get(port, "/startupz")
    assert not (flag_dir / "healthy").exists()

    t.listening()
    assert t.port == port
    assert t.get("/startupz").status == 200
    uptime = t.info()["uptime_seconds"]
    assert isinstance(uptime, float) and uptime >= 0.7
    t.wait_for("Created .*healthy")
    exec_probe = subprocess.run(["sh", "-c", f"cat {flag_dir}/healthy"], capture_output=True)
    assert exec_probe.returncode == 0


def test_start_now_flag_ends_the_start_delay(spawn: Spawn, flag_dir: Path) -> None:
    t = spawn(START_DELAY="3600", START_MODE="503").listening()
    assert t.get("/startupz").status == 503
    (flag_dir / "start-now").touch()
    assert t.get("/startupz").status == 200
    assert t.info()["started"] is True
    t2 = spawn(PORT="0", START_DELAY="3600", FLAG_DIR=str(flag_dir))  # refuse: not listening
    t2.wait_for("Started after")


def test_start_delay_503_listens_at_once_and_fails_health(spawn: Spawn) -> None:
    t = spawn(START_DELAY="0.7", START_MODE="503").listening()
    early = t.get("/startupz")
    assert (early.status, early.body) == (503, "Starting: START_DELAY=0.7 s not over")
    assert t.get("/livez").status == 503
    assert t.get("/").status == 200
    assert t.info()["started"] is False

    poll_until(lambda: t.get("/startupz").status == 200)
    uptime = t.info()["uptime_seconds"]
    assert isinstance(uptime, float) and uptime >= 0.7
    assert ("/startupz", 503, "starting") in t.health_reasons()


def test_exit_after_exits_with_exit_code(spawn: Spawn) -> None:
    coded = spawn(EXIT_AFTER="0.3", EXIT_CODE="3")
    default = spawn(EXIT_AFTER="0.2")
    assert coded.wait_exit() == 3
    assert default.wait_exit() == 1
    assert "Exiting with code 3: EXIT_AFTER=0.3 s passed" in coded.output()


# -- flag files --------------------------------------------------------------------------------


def test_fail_flag_files_flip_each_probe_kind(spawn: Spawn, flag_dir: Path) -> None:
    t = spawn().listening()

    def statuses() -> tuple[int, ...]:
        return tuple(t.get(p).status for p in ("/livez", "/healthz", "/readyz", "/startupz"))

    assert statuses() == (200, 200, 200, 200)
    (flag_dir / "fail-liveness").touch()
    assert statuses() == (500, 500, 200, 200)
    assert t.info()["flags"] == ["fail-liveness"]
    (flag_dir / "fail-liveness").unlink()
    (flag_dir / "fail-readiness").touch()
    assert statuses() == (200, 200, 503, 200)
    (flag_dir / "fail-readiness").unlink()
    (flag_dir / "fail-startup").touch()
    assert statuses() == (200, 200, 200, 503)
    (flag_dir / "fail-startup").unlink()
    assert statuses() == (200, 200, 200, 200)

    reasons = {r[2] for r in t.health_reasons()}
    assert {"flag:fail-liveness", "flag:fail-readiness", "flag:fail-startup"} <= reasons


def test_hang_flag_holds_liveness_and_releases_when_client_leaves(
    spawn: Spawn, flag_dir: Path
) -> None:
    t = spawn().listening()
    (flag_dir / "hang-liveness").touch()
    with pytest.raises(TimeoutError):
        t.get("/livez", timeout=0.4)
    assert t.get("/readyz").status == 200
    poll_until(lambda: t.counters()["hanging_now"] == 0, timeout=2.0)
    assert t.counters()["health"] == {"ok": 1, "fail": 0, "hang": 1}

    (flag_dir / "hang-liveness").unlink()
    assert t.get("/livez").status == 200
    assert ("/livez", None, "flag:hang-liveness") in t.health_reasons()


def test_shutdown_releases_a_hanging_request(spawn: Spawn, flag_dir: Path) -> None:
    t = spawn().listening()
    (flag_dir / "hang-readiness").touch()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            t.get("/readyz", timeout=10.0)
        except (OSError, http.client.HTTPException) as err:
            errors.append(err)

    thread = threading.Thread(target=client)
    thread.start()
    poll_until(lambda: t.counters()["hanging_now"] == 1)
    started = time.monotonic()
    t.proc.send_signal(signal.SIGTERM)
    assert t.wait_exit() == 0
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2.0
    assert len(errors) == 1  # connection closed without a response


def test_exit_now_flag_exits_with_its_code_and_is_removed(spawn: Spawn, flag_dir: Path) -> None:
    t = spawn().listening()
    (flag_dir / "exit-now").write_text("abc\n")
    t.wait_for("ignoring .*exit-now")
    assert t.get("/").status == 200
    (flag_dir / "exit-now").write_text("7\n")
    assert t.wait_exit() == 7
    assert not (flag_dir / "exit-now").exists()


def test_create_healthy_file_replaces_a_stale_one(spawn: Spawn, flag_dir: Path) -> None:
    flag_dir.mkdir()
    (flag_dir / "healthy").write_text("stale")
    t = spawn(CREATE_HEALTHY_FILE="1").listening()
    t.wait_for("Created .*healthy")
    assert (flag_dir / "healthy").read_text() == "ok\n"
    assert spawn().listening().info()["flags"] == ["healthy"]  # present, not created again


# -- config service and exclusion ------------------------------------------------------------


def test_excluded_pod_fails_liveness_only(spawn: Spawn, tmp_path: Path) -> None:
    config_file = tmp_path / "exclude"
    config = spawn(MODE="config", LIVE_EXCLUDE="pod-a", CONFIG_FILE=str(config_file)).listening()
    url = f"http://127.0.0.1:{config.port}/config"
    served = config.get("/config")
    assert (served.body, served.headers["x-source"]) == ("LIVE_EXCLUDE=pod-a\n", "env LIVE_EXCLUDE")

    a = spawn(POD_NAME="pod-a", CONFIG_URL=url).listening()
    b = spawn(POD_NAME="pod-b", CONFIG_URL=url).listening()
    cached = spawn(POD_NAME="pod-b", CONFIG_URL=url, CONFIG_TTL="60").listening()

    def live(t: Target) -> tuple[int, int, int]:
        return (t.get("/livez").status, t.get("/healthz").status, t.get("/readyz").status)

    assert live(a) == (500, 500, 200)
    assert live(b) == (200, 200, 200)
    assert live(cached) == (200, 200, 200)
    assert a.get("/livez").body.startswith("Service Unhealthy: pod pod-a is listed in LIVE_EXCLUDE")

    config_file.write_text("pod-b\npod-c\n")  # runtime change, as `kubectl exec ... echo > file`
    assert config.get("/config").body == "LIVE_EXCLUDE=pod-b,pod-c\n"
    assert live(a) == (200, 200, 200)
    assert live(b) == (500, 500, 200)
    assert live(cached) == (200, 200, 200)  # still the answer fetched before the change

    config_file.write_text("")  # an existing empty file overrides the env value
    assert config.get("/config").body == "LIVE_EXCLUDE=\n"
    assert live(a) == (200, 200, 200)

    config.proc.send_signal(signal.SIGTERM)
    assert config.wait_exit() == 0
    config_file.write_text("pod-b")
    assert live(b) == (200, 200, 200)  # unreachable config service: warn, do not fail
    b.wait_for(rf"Warning: config service {re.escape(url)} unavailable")
    assert ("/livez", 500, "excluded") in a.health_reasons()


def test_config_service_error_answer_does_not_fail_liveness(spawn: Spawn) -> None:
    not_config = spawn().listening()  # target mode: /config is 404
    t = spawn(POD_NAME="x", CONFIG_URL=f"http://127.0.0.1:{not_config.port}/config").listening()
    assert t.get("/livez").status == 200
    t.wait_for("Warning: config service .* unavailable .*404")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("LIVE_EXCLUDE=a,b\n", ("a", "b")),
        ("LIVE_EXCLUDE=\n", ()),
        ('LIVE_EXCLUDE="a, b"', ("a", "b")),
        ("OTHER=x\nLIVE_EXCLUDE=a\nLIVE_EXCLUDE=b,a\n", ("a", "b")),
        ("a\nb, c d\n# comment\n", ("a", "b", "c", "d")),
        ("OTHER=x\n", ()),
        ("", ()),
    ],
)
def test_parse_exclude_list(text: str, names: tuple[str, ...]) -> None:
    assert parse_exclude_list(text) == names


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_sigterm", "signum", "code"),
    [
        (None, signal.SIGTERM, 0),
        ("exit1", signal.SIGTERM, 1),
        ("exit2", signal.SIGINT, 2),
        (None, signal.SIGINT, 0),
    ],
)
def test_signal_exits_with_configured_code(
    spawn: Spawn, on_sigterm: str | None, signum: signal.Signals, code: int
) -> None:
    t = spawn(**({"ON_SIGTERM": on_sigterm} if on_sigterm else {})).listening()
    t.proc.send_signal(signum)
    assert t.wait_exit() == code
    assert f"Signal: {signum.name} received; exiting with code {code}" in t.output()


def test_ignored_sigterm_keeps_serving(spawn: Spawn) -> None:
    t = spawn(ON_SIGTERM="ignore").listening()
    t.proc.send_signal(signal.SIGTERM)
    t.wait_for("Signal: SIGTERM received; ignoring it")
    assert t.get("/livez").status == 200
    assert t.proc.poll() is None
    t.proc.kill()
    assert t.wait_exit() == -signal.SIGKILL


def test_sigterm_delay_keeps_serving_then_exits(spawn: Spawn) -> None:
    t = spawn(SIGTERM_DELAY="0.6", ON_SIGTERM="exit1").listening()
    sent = time.monotonic()
    t.proc.send_signal(signal.SIGTERM)
    t.wait_for("Signal: SIGTERM received")
    assert t.get("/").status == 200
    assert t.wait_exit() == 1
    assert time.monotonic() - sent >= 0.6


# -- configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"PORT": "http"}, "PORT", "a port number 0-65535"),
        ({"PORT": "70000"}, "PORT", "a port number 0-65535"),
        ({"LIVE_PORT": "8080"}, "LIVE_PORT", "a port different from PORT"),
        ({"FAIL_AFTER": "10s"}, "FAIL_AFTER", "a number of seconds >= 0 without a unit"),
        ({"START_DELAY": "-1"}, "START_DELAY", "a number of seconds >= 0"),
        ({"HANG_MAX": "0"}, "HANG_MAX", "a number of seconds > 0"),
        ({"START_MODE": "wait"}, "START_MODE", "one of refuse, 503"),
        ({"MODE": "proxy"}, "MODE", "one of target, config"),
        ({"DEGRADE": "2"}, "DEGRADE", "1 or 0"),
        ({"DEGRADE_SEED": "1.5"}, "DEGRADE_SEED", "an integer"),
        ({"EXIT_CODE": "256"}, "EXIT_CODE", "an exit code 0-255"),
        ({"ON_SIGTERM": "exit256"}, "ON_SIGTERM", "exit0, exit1 (any exitN with N 0-255)"),
        ({"ON_SIGTERM": "kill"}, "ON_SIGTERM", "exitN with N 0-255) or ignore"),
        ({"CONFIG_URL": "ftp://x/config"}, "CONFIG_URL", "an http:// URL"),
        ({"BIND_ADDRESS": "localhost"}, "BIND_ADDRESS", "an IPv4 or IPv6 address"),
    ],
)
def test_bad_environment_exits_64_naming_the_variable(
    spawn: Spawn, env: dict[str, str], variable: str, expected: str
) -> None:
    t = spawn(**{"PORT": "8080", **env})
    assert t.wait_exit() == 64
    err = t.stderr()
    line = next(line for line in err.splitlines() if line.startswith(f"{variable}="))
    assert line.startswith(f"{variable}={env[variable]!r} is not valid: expected ")
    assert expected in line
    assert "listening on" not in t.output()


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings({"PORT": "x", "FAIL_AFTER": "soon", "EXIT_AFTER": " "})
    assert [p.variable for p in info.value.problems] == ["PORT", "FAIL_AFTER"]


def test_parse_settings_defaults_and_forms() -> None:
    s = parse_settings({"POD_NAME": "p", "FAIL_AFTER": " .5 ", "ON_SIGTERM": "ignore"})
    assert (s.port, s.bind_address, s.flag_dir) == (8080, "0.0.0.0", "/tmp/probes")
    assert (s.fail_after, s.sigterm_exit_code, s.on_sigterm) == (0.5, None, "ignore")
    assert s.config_file == "/tmp/probes/live-exclude"
    assert parse_settings({"FLAG_DIR": "/d"}).config_file == "/d/live-exclude"
    assert parse_settings({"DEGRADE": "true", "START_MODE": "503"}).degrade is True


def test_arguments_are_refused_and_help_documents_every_variable(stub_root: Path) -> None:
    cmd = [sys.executable, "-E", "-s", "-S", "-m", "pytest_probes.target"]
    bad = subprocess.run([*cmd, "--port", "1"], cwd=stub_root, capture_output=True, text=True)
    assert bad.returncode == 64 and "configured by environment variables" in bad.stderr

    helped = subprocess.run([*cmd, "--help"], cwd=stub_root, capture_output=True, text=True)
    assert helped.returncode == 0
    source = (TARGET_SRC / "settings.py").read_text()
    read = set(re.findall(r"r\.\w+\(\s*\"([A-Z_]+)\"", source)) | {"LIVE_EXCLUDE"}
    documented = set(re.findall(r"^    ([A-Z_]+): ", helped.stdout, re.MULTILINE))
    assert len(read) >= 20
    assert documented == read


# -- packaging ---------------------------------------------------------------------------------


def test_app_imports_nothing_outside_stdlib_and_itself(stub_root: Path) -> None:
    # grpc_health and h2c are imported, grpcio and h2 are not: only GRPC_PORT and H2C_PORT
    # import them (test_target_grpc.py, test_target_h2c.py).
    code = (
        "import sys, sysconfig, pytest_probes.target.server\n"
        "stdlib = sysconfig.get_paths()['stdlib']\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    path = getattr(mod, '__file__', None)\n"
        "    if path and not path.startswith(stdlib):\n"
        "        print(name, path)\n"
    )
    run = subprocess.run(
        [sys.executable, "-E", "-s", "-S", "-c", code],
        cwd=stub_root,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    outside = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert sorted(outside) == [
        "pytest_probes",
        "pytest_probes.target",
        "pytest_probes.target.grpc_health",
        "pytest_probes.target.h2c",
        "pytest_probes.target.handler",
        "pytest_probes.target.logline",
        "pytest_probes.target.server",
        "pytest_probes.target.settings",
    ]
    assert all(path.startswith(str(stub_root)) for path in outside.values())


def test_dockerfile_runs_the_package_from_a_pinned_base() -> None:
    lines = [
        line.strip()
        for line in (TARGET_SRC / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    base = next(line for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert 'ENTRYPOINT ["python3", "-m", "pytest_probes.target"]' in lines
    assert "EXPOSE 8080" in lines
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies and all((REPO / src).exists() for srcs in copies for src in srcs)
    assert any("pytest_probes/__init__.py" in line for line in lines if line.startswith("RUN "))


def test_health_line_parses_with_kubectl_timestamp_prefix() -> None:
    line = (
        "2024-07-16T11:58:06.125123456Z 2024-07-16T11:58:06.125Z Error: Service Unhealthy "
        "path=/healthz status=503 reason=fail-after listener=main port=8080 client=10.0.0.1 "
        "ua=Mozilla/5.0 (X11)"
    )
    parsed = parse_health_line(line)
    assert parsed is not None
    assert (parsed.outcome, parsed.status, parsed.reason, parsed.user_agent) == (
        "fail",
        503,
        "fail-after",
        "Mozilla/5.0 (X11)",
    )
    assert parsed.time.isoformat() == "2024-07-16T11:58:06.125000+00:00"
    assert parse_health_line("2024-07-16T11:58:06.125Z Request: GET / status=200") is None


def test_listening_since_reads_the_bind_moment_of_a_listener() -> None:
    from pytest_probes.target.logline import listening_since

    log = ("2026-11-21T19:35:08.425Z Starting pytest-probes target: mode=target pod=vm pid=1\n"
           "2026-11-21T19:35:08.427Z listening on 0.0.0.0:8080 (main)\n"
           "2026-11-21T19:35:08.431Z listening on 0.0.0.0:8081 (ready)\n")
    main = listening_since(log)
    assert main is not None and (main.second, main.microsecond) == (8, 427000)
    ready = listening_since(log, "ready")
    assert ready is not None and ready.microsecond == 431000
    assert listening_since(log, "live") is None
    assert listening_since(log.splitlines()[0]) is None


def test_clock_origin_reads_the_apps_first_line() -> None:
    from pytest_probes.target.logline import clock_origin

    log = ("2026-11-21T19:35:08.425Z Starting pytest-probes target: mode=target pod=vm pid=1 "
           "clock_from=2026-11-21T19:35:06.910Z\n"
           "2026-11-21T19:35:09.427Z listening on 0.0.0.0:8080 (main)\n")
    origin = clock_origin(log)
    assert origin is not None and (origin.second, origin.microsecond) == (6, 910000)
    assert clock_origin(log.splitlines()[1]) is None
    # A log from before clock_from: the first line's own time.
    old = "2026-11-21T19:35:08.425Z Starting pytest-probes target: mode=target pod=vm pid=1\n"
    origin = clock_origin(old)
    assert origin is not None and (origin.second, origin.microsecond) == (8, 425000)


def test_process_age_reads_the_kernels_start_time(tmp_path: Path) -> None:
    from pytest_probes.target.server import process_age

    tick = os.sysconf("SC_CLK_TCK")
    ticks = int((time.clock_gettime(time.CLOCK_BOOTTIME) - 2.5) * tick)
    fields = ["S"] + ["0"] * 18 + [str(ticks)] + ["0"] * 30
    stat = tmp_path / "stat"
    stat.write_text(f"4242 (python3 (x) y) {' '.join(fields)}\n", encoding="ascii")
    assert 2.5 <= process_age(str(stat)) < 3.0
    stat.write_text("4242 (python3) S 1 2\n", encoding="ascii")
    assert process_age(str(stat)) == 0.0
    assert process_age(str(tmp_path / "missing")) == 0.0
    assert 0.0 < process_age() < time.clock_gettime(time.CLOCK_BOOTTIME)


def test_uptime_counts_from_the_process_start(spawn: Spawn) -> None:
    from pytest_probes.target.logline import clock_origin
    from pytest_probes.target.server import App

    now = [100.0]
    app = App(parse_settings({"FAIL_AFTER": "3"}), clock=lambda: now[0], started_ago=2.0)
    assert app.uptime() == 2.0 and app.health_verdict("/livez").status == 200
    now[0] += 1.0
    assert app.health_verdict("/livez").status == 503

    t = spawn().listening()
    origin = clock_origin("\n".join(t.lines))
    assert origin is not None
    first_line = t.lines[0].split(" ", 1)[0]
    # The clock starts when the process was created: before the app's first line.
    assert origin.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z" <= first_line
    assert t.info()["start_time"] == origin.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
