"""Assertion helpers: what a timeline must show, within windows derived from the probe spec.

Every helper takes the timeline first, the pod (a name, or a prefix such as a Deployment's name)
second, and everything else by keyword. On a live timeline it waits, woken by each new record from
the watch, until the condition is decided or its deadline passes; on a recorded timeline it decides
at once. A failure raises :class:`~pytest_probes.errors.ProbeAssertionError` (an
``AssertionError``) whose message says what was expected, what was observed, and shows the
timeline rows that matter. Helpers return the records that satisfied them, so a test can chain
(``since=record``).

Windows: ``within`` is a number of seconds (an upper bound) or a window with ``earliest`` and
``latest`` (a :class:`pytest_probes.timing.Window`, or a ``(earliest, latest)`` tuple), measured
from ``since`` — a timestamp, a record, or by default the start of recording. Server timestamps
have whole-second resolution (:data:`~pytest_probes.timing.API_TIME_RESOLUTION`), so both ends of
a window are widened by that much: the true times can be up to one second apart from the stamped
ones. The tolerance (the ``--probes-timeout-scale`` option) stretches the upper end of every
window; it comes, with the sink of the measurements the helpers note for the report, in the
:class:`~pytest_probes.assertions.context.HelperContext` the ``probes_timeline`` fixture binds to
the test's timeline (:mod:`~pytest_probes.assertions.context`).

When a prefix matches several pods, a helper that expects something to happen passes if it happens
to any of them, and a helper that expects something *not* to happen requires it of all of them.

A helper that expects something *not* to happen (``assert_never_ready_for``,
``assert_endpoint_kept_for``, ``assert_no_restarts_for``) rests on the absence of records, which
a gap in the recording (a ``WatchGap`` record: the watch was lost and the list that resumed it
shows only the net change) cannot prove: where a gap of the source it reads overlaps its window
and nothing else decided it, it raises :class:`~pytest_probes.errors.InconclusiveError`, naming
the gap, instead of passing.

The helpers, one module per subject over a shared core (:mod:`~pytest_probes.assertions._core`:
windows, references, record selection, failure messages):

* :mod:`~pytest_probes.assertions.restarts`: restarts in a window, or none for a while;
* :mod:`~pytest_probes.assertions.readiness`: Ready gained, lost, or never reached;
* :mod:`~pytest_probes.assertions.endpoints`: a Service's ready endpoints;
* :mod:`~pytest_probes.assertions.events`: probe failures and Events;
* :mod:`~pytest_probes.assertions.phases`: pod phases and conditions, container terminations;
* :mod:`~pytest_probes.assertions.backoff`: restart gaps against the crash-loop back-off;
* :mod:`~pytest_probes.assertions.waiting` and :mod:`~pytest_probes.assertions.diagnosis`: how a
  live wait listens for late records, and ends at once when the pod cannot get there.
"""

from pytest_probes.assertions._core import ROW_LIMIT, Since, WindowLike
from pytest_probes.assertions.backoff import (
    SKIPPED_BACKOFF_HINT,
    RestartGap,
    assert_crashloop_backoff,
    restart_gaps,
)
from pytest_probes.assertions.context import HelperContext, Measurement, context_of, use_context
from pytest_probes.assertions.diagnosis import (
    FATAL_WAITING_REASONS,
    diagnose,
    is_hopeless,
    missing_service,
)
from pytest_probes.assertions.endpoints import (
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    ready_addresses,
)
from pytest_probes.assertions.events import (
    assert_event_within,
    assert_log_within,
    assert_probe_failures,
    probe_failures,
)
from pytest_probes.assertions.phases import (
    assert_condition_within,
    assert_phase_within,
    assert_terminated,
)
from pytest_probes.assertions.readiness import (
    assert_never_ready_for,
    assert_not_ready_within,
    assert_ready_within,
)
from pytest_probes.assertions.restarts import (
    assert_no_restarts_for,
    assert_restarts_within,
    restarts_of,
)
from pytest_probes.assertions.waiting import LATE_RECORD_GRACE, OBSERVATION_GRACE

__all__ = [
    "FATAL_WAITING_REASONS",
    "LATE_RECORD_GRACE",
    "OBSERVATION_GRACE",
    "ROW_LIMIT",
    "SKIPPED_BACKOFF_HINT",
    "HelperContext",
    "Measurement",
    "RestartGap",
    "Since",
    "WindowLike",
    "assert_condition_within",
    "assert_crashloop_backoff",
    "assert_endpoint_added_within",
    "assert_endpoint_kept_for",
    "assert_endpoint_removed_after",
    "assert_event_within",
    "assert_log_within",
    "assert_never_ready_for",
    "assert_no_restarts_for",
    "assert_not_ready_within",
    "assert_phase_within",
    "assert_probe_failures",
    "assert_ready_within",
    "assert_restarts_within",
    "assert_terminated",
    "context_of",
    "diagnose",
    "is_hopeless",
    "missing_service",
    "probe_failures",
    "ready_addresses",
    "restart_gaps",
    "restarts_of",
    "use_context",
]
