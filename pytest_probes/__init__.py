"""pytest-probes: executable regression tests for how Kubernetes treats probes.

The public names are listed in ``__all__``; everything else is internal.
"""

from pytest_probes.assertions import (
    Measurement,
    assert_condition_within,
    assert_crashloop_backoff,
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    assert_event_within,
    assert_log_within,
    assert_never_ready_for,
    assert_no_restarts_for,
    assert_not_ready_within,
    assert_phase_within,
    assert_probe_failures,
    assert_ready_within,
    assert_restarts_within,
    assert_terminated,
    diagnose,
    probe_failures,
    ready_addresses,
    restart_gaps,
    restarts_of,
)
from pytest_probes.chart import timeline_svg
from pytest_probes.cluster import Cluster, ClusterConfig, Provider, get_provider
from pytest_probes.errors import (
    ClusterError,
    DeployError,
    DiagnosedFailure,
    InconclusiveError,
    ProbeAssertionError,
    ProbesError,
    ProbesTimeoutError,
    WatchError,
)
from pytest_probes.recorder import Recorder
from pytest_probes.reducer import Reducer
from pytest_probes.timeline import Record, Timeline
from pytest_probes.timing import (
    API_TIME_RESOLUTION,
    ContainerTiming,
    ProbeSpec,
    Window,
    endpoints_follow,
)

# The helper names below are also in pytest_probes.assertions.__all__, on purpose: mypy reads a
# module's public names only from a literal __all__ (or takes all of another module's, imported as
# __all__), and this list has only the helpers, not that package's constants and types (ROW_LIMIT,
# Since, ...). A list built from the other would hide the helpers from users' mypy --strict.
__all__ = [
    "API_TIME_RESOLUTION",
    "Cluster",
    "ClusterConfig",
    "ClusterError",
    "ContainerTiming",
    "DeployError",
    "DiagnosedFailure",
    "InconclusiveError",
    "Measurement",
    "ProbeAssertionError",
    "ProbeSpec",
    "ProbesError",
    "ProbesTimeoutError",
    "Provider",
    "Record",
    "Recorder",
    "Reducer",
    "Timeline",
    "WatchError",
    "Window",
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
    "diagnose",
    "endpoints_follow",
    "get_provider",
    "probe_failures",
    "ready_addresses",
    "restart_gaps",
    "restarts_of",
    "timeline_svg",
]
