"""How a helper waits on a live timeline: past its deadline for late records, not past a diagnosis.

A live wait is woken by each new record from the watch; it ends at once when
:func:`~pytest_probes.assertions.diagnosis.diagnose` finds the pod cannot get there, and listens
past its deadline for records stamped in time that are still on their way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pytest_probes.assertions.diagnosis import diagnose
from pytest_probes.timeline import Timeline
from pytest_probes.timing import EVENT_WRITER_RETRY_SPAN, STATUS_SYNC_PERIOD

OBSERVATION_GRACE = 3.0
"""Local seconds a live wait that passes at its deadline (nothing happened: ``assert_*_for``) keeps
listening past it for records stamped before the deadline that are still on their way (watch
latency). It does not widen any window: pass or fail is decided on server timestamps."""

LATE_RECORD_GRACE = STATUS_SYNC_PERIOD
"""Local seconds a live wait for something to happen keeps listening past its deadline before it
fails. Under a full suite on 2 cores the kubelet's status updates can fall seconds behind (seen: a
restart stamped 2 s inside the window was not in the API 3 s after the window closed); the status
manager's full batch every :data:`~pytest_probes.timing.STATUS_SYNC_PERIOD` sends what is missing.
It only delays reporting a failure, and widens no window."""

T = TypeVar("T")


def _wait(
    tl: Timeline,
    pod: str,
    check: Callable[[Timeline], T | None],
    *,
    deadline: datetime,
    service: str | None = None,
    passes_at_deadline: bool = False,
) -> T | None:
    """Wait for ``check``; past the deadline, listen for records still on their way.

    A wait for something to happen fails only after :data:`LATE_RECORD_GRACE`, and longer while
    the kubelet's Events are behind its pod status (up to the event writer's retry span). A wait
    that passes at its deadline (``assert_*_for``) keeps :data:`OBSERVATION_GRACE` only.
    """
    if not tl.live:
        grace = catch_up = 0.0
    elif passes_at_deadline:
        grace, catch_up = OBSERVATION_GRACE, 0.0
    else:
        grace, catch_up = LATE_RECORD_GRACE, EVENT_WRITER_RETRY_SPAN
    return tl.wait_for(check, deadline=deadline, grace=grace, catch_up=catch_up,
                       giveup=lambda t: diagnose(t, pod, service=service))
