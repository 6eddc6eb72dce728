"""One exclusive file lock, shared by every step that two runs must not do at once.

Builds of Kubernetes, image builds and a cluster's up/down each hold an ``fcntl`` lock on a file
of their own; a second run waits, saying so every now and then, and gives up with a clear error
when the first has held the lock for longer than any honest holder would.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_fixed

from pytest_probes._poll import stop_after
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError


@contextmanager
def file_lock(
    path: Path,
    *,
    timeout: float,
    progress: Progress,
    waiting: Callable[[float], str],
    held_too_long: str,
    interval: float = 15.0,
    poll: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    Args:
        path: The lock file.
        timeout: Seconds to wait for another holder before giving up.
        progress: Receives a line every ``interval`` seconds while waiting.
        waiting: Builds that line from the seconds waited so far.
        held_too_long: The error message when ``timeout`` runs out (the lock path is added).
        interval: Seconds between progress lines.
        poll: Seconds between attempts.
        clock: Monotonic clock (injectable for tests).
        sleep: Sleep function (injectable for tests).

    Raises:
        ClusterError: Another process held the lock for more than ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    started = clock()
    said: float | None = None  # when the last progress line went out

    def report(_state: RetryCallState) -> None:
        nonlocal said
        now = clock()
        if said is None or now - said >= interval:
            progress(waiting(now - started))
            said = now

    with open(path, "a+") as handle:
        try:
            for attempt in Retrying(retry=retry_if_exception_type(BlockingIOError),
                                    stop=stop_after(timeout, clock), wait=wait_fixed(poll),
                                    sleep=sleep, before_sleep=report, reraise=True):
                with attempt:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"{held_too_long} (lock {path}); stop that process or remove the lock",
                provider="local",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
