"""Read the target app's environment into a frozen :class:`Settings`.

The variables and their forms are listed in the package docstring (:mod:`pytest_probes.target`).
Parsing is strict: every bad variable is reported at once, naming the variable, the value seen and
the form accepted, and the app exits with :data:`EXIT_USAGE`. Surrounding whitespace is ignored and
an empty value counts as unset (manifests often write ``value: ""``).

Standard library only: this module runs inside the target image without the rest of the package;
:mod:`urllib.parse` checks CONFIG_URL (urllib3 is not in the image).
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

EXIT_USAGE = 64
"""Exit code for a bad environment variable or command line (``EX_USAGE``)."""

DEFAULT_FLAG_DIR = "/tmp/probes"
CONFIG_KEY = "LIVE_EXCLUDE"

_SECONDS_RE = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_UINT_RE = re.compile(r"[0-9]+")
_INT_RE = re.compile(r"-?[0-9]+")
_EXIT_RE = re.compile(r"exit([0-9]{1,3})")
_NAME_SPLIT_RE = re.compile(r"[,\s]+")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class Problem(NamedTuple):
    """One bad environment variable."""

    variable: str
    value: str
    expected: str


class SettingsError(ValueError):
    """One or more environment variables hold values the app does not accept.

    Attributes:
        problems: One :class:`Problem` per bad variable, in the order they were checked.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = [f"{p.variable}={p.value!r} is not valid: expected {p.expected}" for p in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one target app process.

    Times are seconds as floats, counted from process start. ``None`` means "feature off".
    See the package docstring for what each field does.
    """

    port: int = 8080
    live_port: int | None = None
    ready_port: int | None = None
    grpc_port: int | None = None
    grpc_tls_cert: str | None = None
    grpc_tls_key: str | None = None
    h2c_port: int | None = None
    bind_address: str = "0.0.0.0"
    mode: Literal["target", "config"] = "target"
    pod_name: str = ""
    fail_after: float | None = None
    degrade: bool = False
    degrade_seed: int | None = None
    start_delay: float = 0.0
    start_mode: Literal["refuse", "503"] = "refuse"
    hang_after: float | None = None
    hang_max: float = 3600.0
    config_url: str | None = None
    config_ttl: float = 0.0
    config_timeout: float = 0.5
    config_file: str = f"{DEFAULT_FLAG_DIR}/live-exclude"
    live_exclude: tuple[str, ...] = ()
    flag_dir: str = DEFAULT_FLAG_DIR
    create_healthy_file: bool = False
    exit_after: float | None = None
    exit_code: int = 1
    sigterm_exit_code: int | None = 0
    sigterm_delay: float = 0.0

    @property
    def on_sigterm(self) -> str:
        """The ``ON_SIGTERM`` form of :attr:`sigterm_exit_code` (``exitN`` or ``ignore``)."""
        return "ignore" if self.sigterm_exit_code is None else f"exit{self.sigterm_exit_code}"


def parse_exclude_list(text: str) -> tuple[str, ...]:
    """Parse the body of a config response (or a config file) into pod names.

    Two forms are accepted. If any line reads ``LIVE_EXCLUDE=...``, only those lines count and the
    names are what follows the ``=``. Otherwise the whole text is a plain list. Either way names
    are separated by commas, spaces or newlines; quotes around a value, empty entries, lines
    starting with ``#`` and (in the plain form) other ``KEY=value`` lines are ignored. Duplicates
    are dropped, order is kept.

    Args:
        text: The body or file content.

    Returns:
        The pod names, possibly empty.
    """
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    prefix = f"{CONFIG_KEY}="
    keyed = [line[len(prefix) :] for line in lines if line.startswith(prefix)]
    values = keyed if keyed else [line for line in lines if "=" not in line]
    names: list[str] = []
    for value in values:
        for name in _NAME_SPLIT_RE.split(value.strip().strip("\"'")):
            name = name.strip("\"'")
            if name and name not in names:
                names.append(name)
    return tuple(names)


class _Reader:
    """Reads variables one by one and collects the problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def bad(self, name: str, value: str, expected: str) -> None:
        self.problems.append(Problem(name, value, expected))

    def seconds(self, name: str, *, positive: bool = False) -> float | None:
        value = self.raw(name)
        if value is None:
            return None
        if _SECONDS_RE.fullmatch(value) and math.isfinite(float(value)):
            seconds = float(value)
            if seconds > 0 or not positive:
                return seconds
        bound = "> 0" if positive else ">= 0"
        self.bad(name, value, f"a number of seconds {bound} without a unit, e.g. 10 or 0.5")
        return None

    def integer(self, name: str, *, low: int, high: int, expected: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if _INT_RE.fullmatch(value) and low <= int(value) <= high:
            return int(value)
        self.bad(name, value, expected)
        return None

    def port(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if _UINT_RE.fullmatch(value) and int(value) <= 65535:
            return int(value)
        self.bad(name, value, "a port number 0-65535 (0 picks a free port)")
        return None

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if value is None:
            return False
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.bad(name, value, "1 or 0 (true/false, yes/no, on/off also accepted)")
        return False

    def choice(self, name: str, choices: Sequence[str]) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if value in choices:
            return value
        self.bad(name, value, "one of " + ", ".join(choices))
        return None


def parse_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from environment variables.

    Args:
        environ: The environment, usually ``os.environ``.

    Returns:
        The settings; unset variables take the defaults listed in the package docstring.

    Raises:
        SettingsError: One or more variables hold a value of the wrong form; all are listed.
    """
    r = _Reader(environ)
    defaults = Settings()

    port = r.port("PORT")
    live_port = r.port("LIVE_PORT")
    ready_port = r.port("READY_PORT")
    main_port = defaults.port if port is None else port
    if live_port and live_port == main_port:
        r.bad("LIVE_PORT", str(live_port), "a port different from PORT")
    if ready_port and ready_port in (main_port, live_port):
        r.bad("READY_PORT", str(ready_port), "a port different from PORT and LIVE_PORT")
    grpc_port = r.port("GRPC_PORT")
    if grpc_port and grpc_port in (main_port, live_port, ready_port):
        r.bad("GRPC_PORT", str(grpc_port), "a port different from PORT, LIVE_PORT and READY_PORT")
    grpc_tls_cert, grpc_tls_key = r.raw("GRPC_TLS_CERT"), r.raw("GRPC_TLS_KEY")
    if (grpc_tls_cert is None) != (grpc_tls_key is None):
        given, missing = (("GRPC_TLS_CERT", "GRPC_TLS_KEY") if grpc_tls_key is None
                          else ("GRPC_TLS_KEY", "GRPC_TLS_CERT"))
        r.bad(given, str(grpc_tls_cert or grpc_tls_key), f"to be set together with {missing}")
    elif grpc_tls_cert is not None and grpc_port is None:
        r.bad("GRPC_TLS_CERT", grpc_tls_cert, "GRPC_PORT to be set too (TLS is for the gRPC port)")
    h2c_port = r.port("H2C_PORT")
    if h2c_port and h2c_port in (main_port, live_port, ready_port, grpc_port):
        r.bad("H2C_PORT", str(h2c_port),
              "a port different from PORT, LIVE_PORT, READY_PORT and GRPC_PORT")

    bind_address = r.raw("BIND_ADDRESS") or defaults.bind_address
    try:
        ipaddress.ip_address(bind_address)
    except ValueError:
        r.bad("BIND_ADDRESS", bind_address, "an IPv4 or IPv6 address such as 0.0.0.0 or ::")

    mode = r.choice("MODE", ("target", "config")) or defaults.mode
    start_mode = r.choice("START_MODE", ("refuse", "503")) or defaults.start_mode

    config_url = r.raw("CONFIG_URL")
    if config_url is not None:
        parts = urlsplit(config_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            r.bad("CONFIG_URL", config_url, "an http:// URL such as http://10.96.0.20:8080/config")
            config_url = None

    sigterm_exit_code = defaults.sigterm_exit_code
    on_sigterm = r.raw("ON_SIGTERM")
    if on_sigterm is not None:
        match = _EXIT_RE.fullmatch(on_sigterm)
        if on_sigterm == "ignore":
            sigterm_exit_code = None
        elif match and int(match.group(1)) <= 255:
            sigterm_exit_code = int(match.group(1))
        else:
            r.bad("ON_SIGTERM", on_sigterm, "exit0, exit1 (any exitN with N 0-255) or ignore")

    flag_dir = r.raw("FLAG_DIR") or defaults.flag_dir
    settings = Settings(
        port=main_port,
        live_port=live_port,
        ready_port=ready_port,
        grpc_port=grpc_port,
        grpc_tls_cert=grpc_tls_cert,
        grpc_tls_key=grpc_tls_key,
        h2c_port=h2c_port,
        bind_address=bind_address,
        mode="config" if mode == "config" else "target",
        pod_name=r.raw("POD_NAME") or socket.gethostname(),
        fail_after=r.seconds("FAIL_AFTER"),
        degrade=r.flag("DEGRADE"),
        degrade_seed=r.integer(
            "DEGRADE_SEED", low=-(2**63), high=2**63 - 1, expected="an integer such as 42"
        ),
        start_delay=r.seconds("START_DELAY") or 0.0,
        start_mode="503" if start_mode == "503" else "refuse",
        hang_after=r.seconds("HANG_AFTER"),
        hang_max=r.seconds("HANG_MAX", positive=True) or defaults.hang_max,
        config_url=config_url,
        config_ttl=r.seconds("CONFIG_TTL") or 0.0,
        config_timeout=r.seconds("CONFIG_TIMEOUT", positive=True) or defaults.config_timeout,
        config_file=r.raw("CONFIG_FILE") or f"{flag_dir}/live-exclude",
        live_exclude=parse_exclude_list(r.raw(CONFIG_KEY) or ""),
        flag_dir=flag_dir,
        create_healthy_file=r.flag("CREATE_HEALTHY_FILE"),
        exit_after=r.seconds("EXIT_AFTER"),
        exit_code=_or(
            r.integer("EXIT_CODE", low=0, high=255, expected="an exit code 0-255"),
            defaults.exit_code,
        ),
        sigterm_exit_code=sigterm_exit_code,
        sigterm_delay=r.seconds("SIGTERM_DELAY") or 0.0,
    )
    if r.problems:
        raise SettingsError(r.problems)
    return settings


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
