"""The kubelet's timing constants, each with the Go source it is read from.

Periods, ticks, back-off values and grace periods of the kubelet (1.33 to 1.36), and the allowances
added where no rule bounds a delay. How the rules combine them, with their sources:
``docs/timing-rules.md``.
"""

from __future__ import annotations

from typing import Literal

from pytest_probes.timing.window import Window

API_TIME_RESOLUTION = 1.0
"""Seconds: ``metav1.Time`` serialises to whole seconds, so API timestamps are truncated."""


StartReference = Literal["api", "runtime"]
"""What a window's times count from: the API's ``startedAt`` (truncated to the second) or the
runtime's precise start (see :func:`delay_from`)."""


def delay_from(initial_delay: float, *, start: StartReference = "api") -> float:
    """The earliest moment after a container's start at which ``initialDelaySeconds`` has passed.

    The prober checks ``int32(time.Since(StartedAt).Seconds()) < initialDelaySeconds``
    (``worker.go`` ``doProbe``) on the status manager's copy of the container status, whose times
    ``normalizeStatus`` truncates to whole seconds (``status_manager.go``
    ``updateStatusInternal``: ``Rfc3339Copy``; the same in 1.33.13 and 1.37.2). That copy is
    the ``startedAt`` the API shows, so:

    * counted from the API's ``startedAt`` (``start="api"``, what the timeline's
      ``ContainerStarted`` carries), the delay passes at ``initialDelaySeconds`` exactly, never
      before;
    * counted from the runtime's precise start (``start="runtime"``, as the restart simulation
      places its instances), it can pass up to :data:`API_TIME_RESOLUTION` early (seen live: a
      container restarted 0.3 s after a probe tick was probed again one ``initialDelaySeconds``
      = ``periodSeconds`` tick later).
    """
    if initial_delay <= 0:
        return 0.0
    return initial_delay if start == "api" else max(0.0, initial_delay - API_TIME_RESOLUTION)


PLEG_RELIST_PERIOD = 1.0
"""Seconds between generic PLEG relists (``pkg/kubelet/kubelet.go``: ``genericPlegRelistPeriod``).

Bounds how late the kubelet notices a container start or exit, and how long a probe-triggered sync
waits for a fresh pod cache."""

SYNC_LOOP_TICK = 1.0
"""Seconds between checks of the pod work queue (``kubelet.go`` ``syncLoop``: ``syncTicker``)."""

STATUS_SYNC_PERIOD = 10.0
"""Seconds between the status manager's full batches (``pkg/kubelet/status/status_manager.go``:
``syncPeriod``). A changed pod status is sent at once, by one goroutine for all pods; when that
falls behind, the next full batch sends whatever the API does not have yet."""

EVENT_WRITER_RETRY_SPAN = 110.0
"""Seconds the kubelet's event writer may still deliver an Event after its stamp: client-go's
``record`` package writes one Event at a time and retries a failed write 11 more times, up to
10 s (at random) before the second try and 10 s before each later one (``maxTriesPerEvent``,
``defaultSleepDuration`` in ``tools/record/event.go``)."""

HOUSEKEEPING_PERIOD = 2.0
"""Seconds between ``HandlePodCleanups`` runs, which garbage-collect back-off entries
(``kubelet.go``: ``housekeepingPeriod``)."""

CRASHLOOP_INITIAL_BACKOFF = 10.0
"""First crash-loop back-off by default (``kubelet.go``: ``initialCrashLoopBackOff``)."""

CRASHLOOP_MAX_BACKOFF = 300.0
"""Crash-loop back-off cap by default (``kubelet.go``: ``MaxCrashLoopBackOff`` =
``MaxContainerBackOff``, ``pkg/kubelet/apis/config/v1beta1/defaults.go``)."""

REDUCED_INITIAL_BACKOFF = 1.0
"""First crash-loop back-off with the ``ReduceDefaultCrashLoopBackOffDecay`` gate (alpha from
1.33; ``kubelet.go``: ``reducedInitialCrashLoopBackOff``; KEP-4603, split out as KEP-5593)."""

REDUCED_MAX_BACKOFF = 60.0
"""Crash-loop back-off cap with ``ReduceDefaultCrashLoopBackOffDecay`` (``kubelet.go``:
``reducedMaxCrashLoopBackOff``), unless ``KubeletCrashLoopBackOffMax`` sets the cap."""

BACKOFF_STABLE_RESET = 600.0
"""A back-off entry resets once ``lastUpdate`` is this old: the kubelet's ``HasExpiredFunc``
(``kubelet.go``, ``eventTime.Sub(lastUpdate) > 600*time.Second``, 1.33 to 1.37), which both
``backoff.go`` ``hasExpired`` and its ``GC`` use in place of ``2 * maxDuration``: the same
10 minutes whatever the cap."""

CRI_RUNTIME_REQUEST_TIMEOUT = 120.0
"""The kubelet's ``runtimeRequestTimeout`` default (2 min). ``ExecSync`` bounds its call by it
*plus* the probe's ``timeoutSeconds`` (``k8s.io/cri-client`` ``pkg/remote_runtime.go``:
``ExecSync``, "timeout + default timeout ... to leave some time for the runtime to do cleanup"):
the latest an exec probe's result can come."""


def exec_response(
    probe_timeout: float, *, held_for: float, drain_limit: float | None = None
) -> Window:
    """Probe start to result of an exec probe whose child holds its output past the timeout.

    The command outlives ``timeoutSeconds`` in a child that holds the exec's output for
    ``held_for`` seconds (``sh -c "sleep 10"``: dash forks the ``sleep``).

    At ``timeoutSeconds`` containerd kills the exec'd process, but ``ExecSync`` answers only once
    it has drained the exec's output, waiting ``drain_exec_sync_io_timeout`` for that at most
    (containerd ``internal/cri/server/container_execsync.go``, ``drainExecSyncIO``); the child
    keeps the pipe until it exits. The kubelet waits for the answer up to
    :data:`CRI_RUNTIME_REQUEST_TIMEOUT` past the probe's timeout.

    Args:
        probe_timeout: The probe's ``timeoutSeconds``.
        held_for: Seconds from the probe's start the child holds the output.
        drain_limit: The runtime's ``drain_exec_sync_io_timeout`` in seconds: ``0`` for none
            (containerd's default, ``"0s"`` in ``internal/cri/config/config_unix.go``, which the
            local and kind providers' nodes run), so the result comes when the child lets go.
            ``None`` when the runtime's setting is unknown (an existing cluster): then the
            result comes from ``timeoutSeconds`` to ``held_for``.

    Returns:
        The window, for ``probe_response=`` of the
        :class:`~pytest_probes.timing.ContainerTiming` windows of an exec probe.
    """
    latest = min(max(probe_timeout, held_for), probe_timeout + CRI_RUNTIME_REQUEST_TIMEOUT)
    if drain_limit is None:
        return Window(probe_timeout, latest)
    if drain_limit > 0:
        latest = min(latest, probe_timeout + drain_limit)
    return Window(latest, latest)


MINIMUM_GRACE_PERIOD = 2.0
"""Shortest shutdown window a killed container gets (``kuberuntime_manager.go``:
``minimumGracePeriodInSeconds``; applied in ``killContainer``)."""

DEFAULT_TERMINATION_GRACE_PERIOD = 30.0
"""API default of ``terminationGracePeriodSeconds``."""

DEFAULT_ALLOWANCE = 1.0
"""Seconds added to ``latest`` for each kubelet hop that no rule bounds: goroutine scheduling,
a CRI call (create/start/stop), a status write to the API server. Not a rule of Kubernetes but a
documented scheduling allowance; set
:attr:`ContainerTiming.allowance <pytest_probes.timing.ContainerTiming.allowance>` for slow
machines."""

CONTAINER_START_CALLS = 2
"""CRI calls between the kubelet's decision to start a container and its start, one
:data:`DEFAULT_ALLOWANCE` each: ``CreateContainer``, then ``StartContainer`` (``startContainer``
in ``pkg/kubelet/kuberuntime/kuberuntime_container.go``, steps 2 and 3; step 1, the image check,
answers from the runtime's own records for an image already there). On a loaded node each takes
about a second: with 16 workers, ``Created`` came 1 s after a container's exit and ``Started``
2-3 s after ``Created``."""

POD_CREATION_ALLOWANCE = 10.0
"""Seconds a controller may take to create the pods of an object applied with others (a
Deployment's ReplicaSet, then its pods, under a busy controller manager). Once the newest pod in a
namespace is this old and no pod matches a name a helper waits for, none is coming: a typo, or a
manifest that was not deployed. An allowance, not a rule; it is stretched by the timeline's
tolerance."""


POD_RESYNC = Window(60.0, 90.0)
"""Pod worker resync after a successful sync: ``syncFrequency`` (1 min) jittered by
``workerResyncIntervalJitterFactor`` 0.5 (``pod_workers.go``, ``completeWork``)."""

BACKOFF_REQUEUE = Window(10.0, 15.0)
"""Pod worker requeue after a sync that hit a back-off: ``backOffPeriod`` 10 s jittered by
``workerBackOffPeriodJitterFactor`` 0.5 (``pod_workers.go``, ``completeWork``; 1.33/1.34)."""

REQUEUE_JITTER = 0.5
"""``workerBackOffPeriodJitterFactor``: a requeue delay ``d`` becomes ``d`` to ``1.5 d``."""

SYNC_FREQUENCY = 60.0
"""The kubelet's ``syncFrequency``; from 1.35 it caps the requeue delay of a pod in back-off."""


def backoff_requeue_late(backoff: float) -> float:
    """How late after its expiry a back-off of ``backoff`` seconds can end, at most.

    The pod sync that restarts the container comes at the first requeue past the expiry (plus
    the 1 s sync ticker, not included here). 1.33/1.34 requeue every :data:`BACKOFF_REQUEUE`;
    1.35 and later requeue for the time left (at most :data:`SYNC_FREQUENCY`), jittered by up to
    :data:`REQUEUE_JITTER` of it. The larger bound of the two covers every supported version.
    """
    return max(BACKOFF_REQUEUE.latest, REQUEUE_JITTER * min(backoff, SYNC_FREQUENCY))


def first_probe_after_kubelet_start(period: float) -> Window:
    """When a probe worker made by a freshly started kubelet first probes, after it is made.

    Within one ``periodSeconds`` of the kubelet's start a new worker first sleeps a random part
    of the period, "If kubelet restarted the probes could be started in rapid succession"
    (``pkg/kubelet/prober/worker.go`` ``run``, 1.33 to 1.37); its first ``doProbe`` follows.
    """
    return Window(0.0, period)
