"""What the helpers are given beside the timeline: the tolerance, and where measurements go.

A :class:`Timeline` holds what the cluster did; how strictly the helpers judge it and what they
note for the report are the run's, not the timeline's. They travel in a :class:`HelperContext`
that the ``probes_timeline`` fixture makes for each test (tolerance from
``--probes-timeout-scale``) and binds to the test's timeline with :func:`use_context`; the helpers,
called as ever with the timeline (``assert_restarts_within(timeline, ...)``), find it with
:func:`context_of`, and the report reads the measurements from the same context. A timeline no
one bound a context to (a recording loaded from a file, say) gets its own on first use: tolerance
1.0 (the windows as the probe spec gives them) and a sink that keeps what the helpers measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from pytest_probes.apitime import format_time
from pytest_probes.timeline import Record, Timeline

__all__ = ["HelperContext", "Measurement", "context_of", "use_context"]


@dataclass(frozen=True)
class Measurement:
    """How long a condition took, as an assertion helper saw it.

    Every helper that checks a window notes one in its context when it passes, so a run can
    report how its observations compare with what the probe spec allows.

    Attributes:
        helper: The helper's name, e.g. ``assert_restarts_within``.
        pod: The pod (or prefix) the helper was asked about.
        reference: The server time the window counts from (``since``, or the anchor event).
        earliest: The earliest time the spec allows, in seconds after ``reference``.
        latest: The latest time allowed (stretched by the context's tolerance).
        observed: The server time of the record that satisfied the helper, after ``reference``.
        returned: When the helper returned, after ``reference`` on the server clock (``None`` on a
            recorded timeline).
        latency: Local seconds from receiving that record to the helper returning, when the
            helper was already waiting for it (``None`` if the record was there before, or on a
            recorded timeline).
    """

    helper: str
    pod: str
    reference: datetime
    earliest: float
    latest: float
    observed: float
    returned: float | None = None
    latency: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The measurement as JSON-serialisable values (seconds rounded to milliseconds)."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "helper": self.helper,
            "pod": self.pod,
            "reference": format_time(self.reference),
            "earliest_s": r(self.earliest),
            "latest_s": r(self.latest),
            "observed_s": r(self.observed),
            "returned_s": r(self.returned),
            "latency_s": r(self.latency),
        }


@dataclass(frozen=True)
class HelperContext:
    """The helpers' settings for one test, and the sink of what they measured.

    Attributes:
        tolerance: Factor that stretches the upper end of every assertion window (the
            ``--probes-timeout-scale`` option); 1.0 means the windows as the probe spec gives
            them.
        measurements: What the helpers measured, in the order they passed (the report's).
    """

    tolerance: float = 1.0
    measurements: list[Measurement] = field(default_factory=list, compare=False)

    def measure(
        self, tl: Timeline, helper: str, pod: str, reference: datetime, earliest: float,
        latest: float, record: Record,
    ) -> Measurement:
        """Note that ``helper`` was satisfied by ``record`` of ``tl`` (see :class:`Measurement`)."""
        observed = (record.time - reference).total_seconds()
        returned = latency = None
        if tl.live:
            returned = (tl.server_now() - reference).total_seconds()
            if record.received and record.received >= tl.last_wait_started:
                latency = tl.clock() - record.received
        found = Measurement(helper, pod, reference, earliest, latest, observed, returned, latency)
        self.measurements.append(found)
        return found


_CONTEXTS: WeakKeyDictionary[Timeline, HelperContext] = WeakKeyDictionary()
"""Each timeline's context, for as long as the timeline lives."""


def use_context(tl: Timeline, context: HelperContext) -> HelperContext:
    """Have the helpers called with ``tl`` use ``context``; returns it."""
    _CONTEXTS[tl] = context
    return context


def context_of(tl: Timeline) -> HelperContext:
    """The context the helpers use with ``tl`` (a default one, kept, if none was given)."""
    return _CONTEXTS.setdefault(tl, HelperContext())
