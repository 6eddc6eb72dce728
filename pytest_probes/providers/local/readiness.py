"""Waiting for a local cluster's components to get ready, and saying how long it takes.

The waits are polls (no watch exists before the API server answers) that fail at once when a
started process exits, naming it and quoting the end of its log, and otherwise after their
timeout, naming the component that was to make the condition true.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

from tenacity import wait_exponential

from pytest_probes._poll import poll
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import supervisor
from pytest_probes.providers.local.config import ClusterPaths, ClusterState

log = logging.getLogger(__name__)

START_TIMEOUT = 90.0
"""Seconds each start-up stage (a component answering, the node turning Ready) may take."""


class Stopwatch:
    """Progress lines that end with the seconds since the stopwatch was made."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the stopwatch was made."""
        return time.monotonic() - self.started

    def say(self, what: str) -> None:
        """Show ``what`` with the elapsed time."""
        self._progress(f"{what} ({self.elapsed():.1f}s)")


def wait_for(
    cluster: str,
    paths: ClusterPaths,
    state: ClusterState,
    component: str,
    condition: Callable[[], bool],
    timeout: float,
    *,
    what: str = "",
) -> None:
    """Poll ``condition`` until it holds.

    Fails at once when any started process exits (naming that one), and after ``timeout``
    naming ``component``, the one expected to make the condition true.
    """

    def attempt() -> bool:
        if condition():
            return True
        for name, record in state.processes.items():
            if not supervisor.is_alive(record):
                raise component_error(cluster, paths, name, "exited during start-up")
        return False

    # No watch exists before the API server answers, so this is a poll, backing off 50 ms → 0.5 s
    # (an exception ends it at once).
    done = poll(attempt, until=bool, timeout=timeout,
                wait=wait_exponential(multiplier=0.05, exp_base=1.5, max=0.5))
    if not done:
        goal = what or f"{component} to get ready"
        raise component_error(
            cluster, paths, component, f"did not make it: waited {timeout:.0f} s for {goal}"
        )


def component_error(
    cluster: str, paths: ClusterPaths, component: str, problem: str
) -> ClusterError:
    """The error for a component that exited or did not get ready, quoting its log's end."""
    log_path = paths.log(component)
    tail = supervisor.log_tail(log_path, 25)
    return ClusterError(
        f"local cluster {cluster}: {component} {problem}. Last lines of {log_path}:\n{tail}",
        provider="local",
        stderr_tail=tail,
    )


def unix_socket_answers(path: Path) -> bool:
    """Whether something accepts connections on the unix socket ``path`` (containerd's)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()
