"""Start, find and stop the detached processes of a local cluster.

Each process runs in its own session (so it outlives the command or pytest run that started it
and a cluster can be reused by the next run), writes standard output and error to its log file,
and has a pid file. A pid file records the process start time as well, so a pid that the kernel
has since handed to another process is recognised as stale.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tenacity import wait_fixed

from pytest_probes._poll import poll
from pytest_probes._proc import start_ticks as start_ticks  # re-exported
from pytest_probes._proc import stat_fields as _stat_fields
from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)

_RESET_SIGNALS = tuple(
    sig for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
)


@dataclass(frozen=True)
class ProcessRecord:
    """A started process as its pid file records it.

    Attributes:
        name: The component name (``etcd``, ``kubelet``, ...).
        pid: The process id.
        start_ticks: The process start time in clock ticks since boot (``/proc/PID/stat``
            field 22); tells a live process from a reused pid.
        argv: The command line it was started with.
        log: Its log file.
    """

    name: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]
    log: Path

    def to_json(self) -> dict[str, object]:
        """Return the record as a JSON-serialisable dict."""
        return {
            "name": self.name,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "argv": list(self.argv),
            "log": str(self.log),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ProcessRecord:
        """Build a record from :meth:`to_json` output.

        Raises:
            ValueError: A field is missing or of the wrong type.
        """
        try:
            argv = data["argv"]
            if not isinstance(argv, list):
                raise ValueError("argv must be a list")
            return cls(
                name=str(data["name"]),
                pid=int(str(data["pid"])),
                start_ticks=int(str(data["start_ticks"])),
                argv=tuple(str(arg) for arg in argv),
                log=Path(str(data["log"])),
            )
        except KeyError as error:
            raise ValueError(f"missing field {error}") from error


def _state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[2] if fields is not None and len(fields) > 2 else None


def is_alive(record: ProcessRecord) -> bool:
    """Return whether the recorded process still runs (not a zombie, not a reused pid)."""
    _reap(record.pid)
    state = _state(record.pid)
    if state is None or state in ("Z", "X"):
        return False
    return start_ticks(record.pid) == record.start_ticks


def _reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is our own exited child; ignore otherwise."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    nice: int = 0,
) -> ProcessRecord:
    """Start ``argv`` detached, in its own session, logging to ``log_path``.

    With ``nice`` the process starts at that niceness (every thread it ever makes inherits it,
    and so do its children: containerd's shims and the pods' processes). Where the niceness
    cannot be set (not root), the process starts at the caller's and a warning is logged.

    Args:
        name: The component name, for messages.
        argv: The command line; ``argv[0]`` must be a path to an executable.
        log_path: Receives standard output and standard error (appended).
        pid_path: Where the :class:`ProcessRecord` is written as JSON.
        env: The environment; defaults to this process's.
        cwd: The working directory; defaults to the log file's directory.
        nice: The niceness to start it at, ``-20`` (most favoured) to ``19``; 0 keeps the
            caller's.

    Returns:
        The record of the started process.

    Raises:
        ClusterError: The executable could not be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as handle:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        handle.write(f"--- {stamp} starting {' '.join(argv)}\n".encode())
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    previous = os.getcwd()
    try:
        os.chdir(cwd or log_path.parent)
        with _niceness(nice, name):
            pid = os.posix_spawn(
                argv[0],
                list(argv),
                dict(os.environ if env is None else env),
                file_actions=actions,
                setsid=True,
                setsigdef=_RESET_SIGNALS,
                setsigmask=(),
            )
    except OSError as error:
        raise ClusterError(
            f"cannot start {name}: {argv[0]}: {error}", provider="local", command=argv
        ) from error
    finally:
        os.chdir(previous)
    ticks = start_ticks(pid)
    record = ProcessRecord(
        name=name, pid=pid, start_ticks=ticks or 0, argv=tuple(argv), log=log_path
    )
    write_pid_file(pid_path, record)
    log.debug("started %s (pid %d): %s", name, pid, " ".join(argv))
    return record


@contextlib.contextmanager
def _niceness(nice: int, name: str) -> Iterator[None]:
    """Run the block with the calling thread at niceness ``nice``, so what it spawns starts so.

    ``posix_spawn`` has no niceness attribute and setting it on the child after the spawn would
    miss the threads the child starts at once; a child inherits its creating thread's niceness.
    On Linux, ``PRIO_PROCESS`` with who 0 is the calling thread only.
    """
    if not nice:
        yield
        return
    own = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as error:
        log.warning("cannot start %s at niceness %d (%s); it starts at %d", name, nice, error, own)
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, own)


def write_pid_file(path: Path, record: ProcessRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1))
    os.replace(tmp, path)


def read_pid_file(path: Path) -> ProcessRecord | None:
    """Return the record in ``path``, or ``None`` if it is missing or unreadable."""
    try:
        return ProcessRecord.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def stop(record: ProcessRecord, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the recorded process and its process group; escalate to SIGKILL after ``timeout``.

    Args:
        record: The process.
        timeout: Seconds to wait after ``sig`` before killing.
        sig: The first signal to send.

    Returns:
        Whether the process had to be killed with SIGKILL.
    """
    if not is_alive(record):
        return False
    signal_group(record.pid, sig)
    if wait_gone([record], timeout=timeout):
        return False
    log.info("%s (pid %d) did not stop within %.0f s; killing it", record.name, record.pid, timeout)
    signal_group(record.pid, signal.SIGKILL)
    wait_gone([record], timeout=5.0)
    return True


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` and to ``pid`` itself."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(
    records: Sequence[ProcessRecord], *, timeout: float, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Wait until none of ``records`` is alive; return whether that happened within ``timeout``."""
    return not _wait_until_none(records, is_alive, timeout, clock)


def exists(record: ProcessRecord) -> bool:
    """Return whether the recorded process still has a process table entry, zombies included.

    A zombie is listed by ``ps`` until its parent reaps it; our own children are reaped here.
    """
    _reap(record.pid)
    return start_ticks(record.pid) == record.start_ticks


def wait_vanished(
    records: Sequence[ProcessRecord], *, timeout: float, clock: Callable[[], float] = time.monotonic
) -> list[ProcessRecord]:
    """Wait until none of ``records`` is even a zombie any more; return those still listed.

    Processes started detached by a command that has since exited belong to the host's init,
    which reaps them when it gets round to it (some seconds on a busy machine); until then ``ps``
    still lists them. :func:`wait_gone` does not wait for that, this does.
    """
    return _wait_until_none(records, exists, timeout, clock)


def _wait_until_none(
    records: Sequence[ProcessRecord],
    holds: Callable[[ProcessRecord], bool],
    timeout: float,
    clock: Callable[[], float],
) -> list[ProcessRecord]:
    """Poll until ``holds`` is false for every record; return those it still held for."""
    return poll(lambda: [record for record in records if holds(record)],
                until=lambda left: not left, timeout=timeout, wait=wait_fixed(0.05), clock=clock)


def record_of(pid: int) -> ProcessRecord | None:
    """Return a record of process ``pid`` (no argv, no log), or ``None`` if it is gone."""
    ticks = start_ticks(pid)
    return None if ticks is None else ProcessRecord("pid", pid, ticks, (), Path("/dev/null"))


def kill_pids(pids: Sequence[int], *, timeout: float = 5.0) -> list[ProcessRecord]:
    """Send SIGKILL to ``pids`` and wait (up to ``timeout``) until they are gone.

    Returns:
        Records of the processes that were signalled (for :func:`wait_vanished`).
    """
    recorded = []
    for pid in pids:
        record = record_of(pid)
        if record is None:
            continue
        recorded.append(record)
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    wait_gone(recorded, timeout=timeout)
    return recorded


def iter_processes() -> Iterator[tuple[int, list[str]]]:
    """Yield ``(pid, argv)`` of every process on the host (kernel threads excluded)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            yield int(entry.name), raw.rstrip(b"\0").decode(errors="replace").split("\0")


def names_path(arg: str, path: str) -> bool:
    """Tell whether one command-line argument names ``path`` or something under it.

    The argument is the path itself or starts with it as whole components, alone or as the value
    of ``--flag=VALUE``: ``.../clusters/probes`` does not match ``.../clusters/probes-2/...``.
    """
    root = path.rstrip("/") or "/"
    for value in (arg, arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else None):
        if value is not None and (value == root or value.startswith(root + "/")):
            return True
    return False


def processes_mentioning(path: str) -> list[int]:
    """Return the pids of live processes with an argument naming ``path`` (:func:`names_path`)."""
    own = os.getpid()
    found = []
    for pid, argv in iter_processes():
        if pid != own and any(names_path(arg, path) for arg in argv):
            state = _state(pid)
            if state is not None and state not in ("Z", "X"):
                found.append(pid)
    return found


def log_tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file ('' if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def rss_bytes(pid: int) -> int:
    """Return the resident set size of ``pid`` in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0
