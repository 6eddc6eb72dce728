"""The target app's log lines: how they are written and how a health line is read back.

Every line starts with a UTC timestamp with milliseconds (``2024-07-16T11:57:56.123Z``). A health
request writes exactly one line, ``<timestamp> <message> path= status= reason= listener= port=
client= ua=``, for example (wrapped here)::

    2024-07-16T11:57:56.123Z Health Check: OK path=/healthz status=200 reason=ok
        listener=main port=8080 client=10.244.0.1 ua=kube-probe/1.30
    2024-07-16T11:58:06.125Z Error: Service Unhealthy path=/healthz status=503 reason=fail-after
        listener=main port=8080 client=10.244.0.1 ua=kube-probe/1.30
    2024-07-16T11:58:07.001Z Error: Service Hanging path=/livez status=- reason=flag:hang-liveness
        listener=main port=8080 client=10.244.0.1 ua=kube-probe/1.30

The messages ``Health Check: OK`` and ``Error: Service Unhealthy`` are the ones seed 001's server
logged. ``ua`` is last and runs to the end of the line (it may contain spaces).
:func:`parse_health_line` reads such a line back, also with the extra timestamp prefix that
``kubectl logs --timestamps`` adds.

Standard library only: this module runs inside the target image without the rest of the package.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TextIO

HEALTH_OK = "Health Check: OK"
HEALTH_FAIL = "Error: Service Unhealthy"
HEALTH_HANG = "Error: Service Hanging"

Outcome = Literal["ok", "fail", "hang"]

_MESSAGES: dict[Outcome, str] = {"ok": HEALTH_OK, "fail": HEALTH_FAIL, "hang": HEALTH_HANG}
_OUTCOMES: dict[str, Outcome] = {message: outcome for outcome, message in _MESSAGES.items()}

_TS = r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"  # what timestamp() writes

_HEALTH_RE = re.compile(
    _TS + r" (?P<message>Health Check: OK|Error: Service Unhealthy|Error: Service Hanging) "
    r"path=(?P<path>\S+) status=(?P<status>\d{3}|-) reason=(?P<reason>\S+) "
    r"listener=(?P<listener>\S+) port=(?P<port>\d+) client=(?P<client>\S+) ua=(?P<ua>.*)$"
)


def timestamp(epoch: float | None = None) -> str:
    """Format a wall-clock time the way every log line starts (UTC, milliseconds, ``Z``)."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class HealthLogLine:
    """One health request as the target app logged it.

    Attributes:
        time: When the request was answered (or started hanging), UTC.
        outcome: ``ok``, ``fail`` or ``hang``.
        path: The request path, e.g. ``/healthz``.
        status: The HTTP status sent, or ``None`` for a hang.
        reason: Why: ``ok``, ``starting``, ``fail-after``, ``hang-after``, ``degrade``,
            ``excluded`` or ``flag:<file name>``.
        listener: Which listener answered: ``main``, ``live`` or ``ready``.
        port: The port of that listener.
        client: The client address.
        user_agent: The User-Agent header (``kube-probe/1.30`` for the kubelet), ``-`` if none.
    """

    time: datetime
    outcome: Outcome
    path: str
    status: int | None
    reason: str
    listener: str
    port: int
    client: str
    user_agent: str


def format_health_line(
    outcome: Outcome,
    *,
    path: str,
    status: int | None,
    reason: str,
    listener: str,
    port: int,
    client: str,
    user_agent: str,
) -> str:
    """Return the message part (without timestamp) of a health log line."""
    ua = " ".join(user_agent.split()) or "-"
    return (
        f"{_MESSAGES[outcome]} path={path} status={'-' if status is None else status} "
        f"reason={reason} listener={listener} port={port} client={client} ua={ua}"
    )


def parse_health_line(line: str) -> HealthLogLine | None:
    """Read one health log line; return ``None`` for any other line.

    Args:
        line: A line of the container log, with or without a ``kubectl logs --timestamps`` prefix.

    Returns:
        The parsed line, or ``None`` if the line is not a health line.
    """
    match = _HEALTH_RE.search(line.rstrip("\r\n"))
    if match is None:
        return None
    status = match["status"]
    return HealthLogLine(
        time=_parse_ts(match["ts"]),
        outcome=_OUTCOMES[match["message"]],
        path=match["path"],
        status=None if status == "-" else int(status),
        reason=match["reason"],
        listener=match["listener"],
        port=int(match["port"]),
        client=match["client"],
        user_agent=match["ua"],
    )


class Log:
    """Writes timestamped lines to a stream, one write and one flush per line, thread-safe.

    A failing stream (closed pipe) never breaks a request: the line is dropped.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        """Write ``<timestamp> <message>`` as one line."""
        stream = self._stream if self._stream is not None else sys.stdout
        line = f"{timestamp()} {message}\n"
        with self._lock:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                pass


_LISTENING_RE = re.compile(_TS + r" listening on \S+ \((?P<listener>\w+)\)$")

STARTING = "Starting pytest-probes target"
"""The app's first line; it ends with ``clock_from=`` and the moment its clock counts from."""

CLOCK_FROM = "clock_from"

_STARTING_RE = re.compile(_TS + " " + re.escape(STARTING) + ":")
_CLOCK_FROM_RE = re.compile(" " + CLOCK_FROM + "=" + _TS.replace("<ts>", "<from>") + "$")


def clock_origin(log: str) -> datetime | None:
    """When the app's clock started, from its log (``None`` if it has not logged it yet).

    ``FAIL_AFTER``, ``START_DELAY``, ``HANG_AFTER`` and ``EXIT_AFTER`` count from here: the
    process's creation, which in a container comes a moment before the runtime's ``startedAt``
    (within containerd's StartContainer call: 0.12 s median, 0.56 s at most over 195 starts of
    a suite on a 2-core machine). The first line's ``clock_from=`` holds it; a log written
    before that field existed gives the line's own time. The port is bound later
    (:func:`listening_since`): a fraction of a second on a quiet node, seconds while many pods
    start at once.
    """
    for line in log.splitlines():
        line = line.strip()
        if match := _STARTING_RE.match(line):
            found = _CLOCK_FROM_RE.search(line)
            return _parse_ts(found["from"] if found else match["ts"])
    return None


def _first_time(log: str, pattern: re.Pattern[str], listener: str | None = None) -> datetime | None:
    """The timestamp of the first line matching ``pattern`` (and ``listener``, if given)."""
    for line in log.splitlines():
        match = pattern.match(line.strip())
        if match and (listener is None or match["listener"] == listener):
            return _parse_ts(match["ts"])
    return None


def listening_since(log: str, listener: str = "main") -> datetime | None:
    """When the app's ``listener`` was bound, from its log (``None`` if it is not yet).

    Tests use it as the moment an HTTP or TCP endpoint can first answer: a container is
    "started" before its process has bound its port.
    """
    return _first_time(log, _LISTENING_RE, listener)
