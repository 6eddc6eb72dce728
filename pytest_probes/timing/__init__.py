"""Probe timing math: when the kubelet acts on liveness, readiness and startup probes.

From a pod spec this package computes, with the kubelet's real rules, the earliest and the latest
time of a liveness kill, a readiness loss or gain, a startup give-up, the restart after a kill,
and a whole restart schedule under the crash-loop back-off. Live tests take their windows from
here, and a benchmark divides observed times by ``earliest``, so:

* ``earliest`` is a true lower bound, as tight as the kubelet allows: it assumes zero latency
  everywhere and the luckiest ticker phase;
* ``latest`` is a true upper bound of the rules plus a documented allowance for kubelet-internal
  latency (:data:`DEFAULT_ALLOWANCE` per hop, settable per :class:`ContainerTiming`).

All times are seconds (``float``) relative to the container's start (``startedAt``) unless a
method says otherwise. Server timestamps are truncated to whole seconds; that slack is *not* baked
in: callers comparing API timestamps add :data:`API_TIME_RESOLUTION`.

The kubelet's rules, as read in kubernetes/kubernetes for 1.33 and 1.34, each with its source:
``docs/timing-rules.md``. The modules, one concern each:

* :mod:`~pytest_probes.timing.window`: :class:`Window`, the interval every answer is, and
  :class:`TimingError`;
* :mod:`~pytest_probes.timing.kubelet`: the kubelet's constants and allowances, with citations;
* :mod:`~pytest_probes.timing.spec`: :class:`ProbeSpec`, probes read from a manifest;
* :mod:`~pytest_probes.timing.container`: :class:`ContainerTiming`, one container's windows;
* :mod:`~pytest_probes.timing.schedule`: :class:`RestartSchedule`, restarts per history;
* :mod:`~pytest_probes.timing.backoff`: the crash-loop back-off and its simulation;
* :mod:`~pytest_probes.timing.endpoints`: when the EndpointSlice follows ``Ready``;
* :mod:`~pytest_probes.timing.kubelet_restart`: the probe workers of a restarted kubelet;
* :mod:`~pytest_probes.timing.restart_rules`: what a container's exit does under its restart
  rules (KEP-5307), and how long ``RestartAllContainers`` takes (KEP-5532).
"""

from pytest_probes.timing.backoff import DEFAULT_CRASHLOOP_BACKOFF, CrashLoopBackOff, backoff_delays
from pytest_probes.timing.container import ContainerTiming
from pytest_probes.timing.endpoints import ENDPOINTS_ALLOWANCE, endpoints_follow
from pytest_probes.timing.kubelet import (
    API_TIME_RESOLUTION,
    BACKOFF_REQUEUE,
    BACKOFF_STABLE_RESET,
    CONTAINER_START_CALLS,
    CRASHLOOP_INITIAL_BACKOFF,
    CRASHLOOP_MAX_BACKOFF,
    CRI_RUNTIME_REQUEST_TIMEOUT,
    DEFAULT_ALLOWANCE,
    DEFAULT_TERMINATION_GRACE_PERIOD,
    EVENT_WRITER_RETRY_SPAN,
    HOUSEKEEPING_PERIOD,
    MINIMUM_GRACE_PERIOD,
    PLEG_RELIST_PERIOD,
    POD_CREATION_ALLOWANCE,
    POD_RESYNC,
    REDUCED_INITIAL_BACKOFF,
    REDUCED_MAX_BACKOFF,
    REQUEUE_JITTER,
    STATUS_SYNC_PERIOD,
    SYNC_FREQUENCY,
    SYNC_LOOP_TICK,
    backoff_requeue_late,
    delay_from,
    exec_response,
)
from pytest_probes.timing.kubelet_restart import (
    first_probe_after_kubelet_start,
    ready_again_after_kubelet_restart,
)
from pytest_probes.timing.restart_rules import (
    ExitAction,
    all_containers_restarting,
    exit_action,
    restart_all_containers,
)
from pytest_probes.timing.schedule import Restart, RestartSchedule, Stop
from pytest_probes.timing.spec import ProbeSpec
from pytest_probes.timing.window import TimingError, Window

__all__ = [
    "API_TIME_RESOLUTION",
    "BACKOFF_REQUEUE",
    "BACKOFF_STABLE_RESET",
    "CONTAINER_START_CALLS",
    "CRASHLOOP_INITIAL_BACKOFF",
    "CRASHLOOP_MAX_BACKOFF",
    "CRI_RUNTIME_REQUEST_TIMEOUT",
    "DEFAULT_ALLOWANCE",
    "DEFAULT_CRASHLOOP_BACKOFF",
    "DEFAULT_TERMINATION_GRACE_PERIOD",
    "ENDPOINTS_ALLOWANCE",
    "EVENT_WRITER_RETRY_SPAN",
    "HOUSEKEEPING_PERIOD",
    "MINIMUM_GRACE_PERIOD",
    "PLEG_RELIST_PERIOD",
    "POD_CREATION_ALLOWANCE",
    "POD_RESYNC",
    "REDUCED_INITIAL_BACKOFF",
    "REDUCED_MAX_BACKOFF",
    "REQUEUE_JITTER",
    "STATUS_SYNC_PERIOD",
    "SYNC_FREQUENCY",
    "SYNC_LOOP_TICK",
    "ContainerTiming",
    "CrashLoopBackOff",
    "ExitAction",
    "ProbeSpec",
    "Restart",
    "RestartSchedule",
    "Stop",
    "TimingError",
    "Window",
    "all_containers_restarting",
    "backoff_delays",
    "backoff_requeue_late",
    "delay_from",
    "endpoints_follow",
    "exec_response",
    "exit_action",
    "first_probe_after_kubelet_start",
    "ready_again_after_kubelet_restart",
    "restart_all_containers",
]
