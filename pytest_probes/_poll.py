"""Polls on tenacity: ask again until the answer will do, or the time is up.

Every poll and retry of the package runs on tenacity's ``Retrying``, whose ``sleep`` is
injectable. :func:`poll` is the common case: ask until a result will do, and return the last
result when time runs out, for the caller to say what it saw. :func:`stop_after` is the stop for
waits that take an injected clock (tenacity's own ``stop_after_delay`` reads its own clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential
from tenacity.wait import wait_base

T = TypeVar("T")

GROWING = wait_exponential(multiplier=0.05, max=1.0)
"""The default pause between two calls: 50 ms, doubling up to 1 s."""


def stop_after(
    timeout: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[RetryCallState], bool]:
    """A tenacity stop that holds once ``timeout`` seconds of ``clock`` have passed from now."""
    deadline = clock() + timeout
    return lambda _state: clock() >= deadline


def poll(
    read: Callable[[], T],
    *,
    until: Callable[[T], bool],
    timeout: float,
    wait: wait_base = GROWING,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``read`` until ``until`` holds for its result or ``timeout`` passes; return the last.

    ``read`` runs at least once; an exception from it ends the poll at once.

    Args:
        read: Returns the current answer.
        until: Whether an answer will do.
        timeout: Seconds of ``clock`` after which the last answer is returned, whatever it is.
        wait: The pause between two calls (a tenacity wait).
        clock: Monotonic clock (injectable for tests).
        sleep: Sleep function (injectable for tests).
    """
    retrying = Retrying(
        retry=retry_if_result(lambda value: not until(value)),
        stop=stop_after(timeout, clock),
        wait=wait,
        sleep=sleep,
        retry_error_callback=_last_result,
    )
    return retrying(read)


def _last_result(state: RetryCallState) -> object:
    """What the last call returned, once the poll has run out of time."""
    return state.outcome.result() if state.outcome is not None else None
