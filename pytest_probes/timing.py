"""Probe timing math: when the kubelet acts on liveness, readiness and startup probes.

From a pod spec this module computes, with the kubelet's real rules, the earliest and the latest
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

The rules, as read in kubernetes/kubernetes for 1.33 and 1.34 (the stored snapshots carry no tags;
versions were matched through the pull requests that changed each function):

Probe workers -- ``pkg/kubelet/prober/worker.go``, ``run`` and ``doProbe``:

* A worker per (container, probe type) starts when the pod is added, before the container runs,
  and keeps one ``time.Ticker`` of ``periodSeconds`` for the pod's lifetime, across container
  restarts. The first ``doProbe`` runs at once; the random initial sleep only happens when the
  kubelet itself started less than a period ago. So the ticker phase relative to a container's
  start is unknown: the first counted probe lies anywhere in ``[a, a + period)``.
* ``int32(time.Since(startedAt).Seconds()) < InitialDelaySeconds`` skips the probe; with an
  integer delay that is exactly ``t < initialDelaySeconds``.
* The result only changes after ``failureThreshold`` (``successThreshold``) equal results in a row
  (``lastResult``/``resultRun``). Liveness and readiness skip while the container is not
  ``Started``; the startup worker stops once it is.
* After a liveness or startup failure is reported the worker goes ``onHold`` (no probes) until it
  sees a new container ID, and ``resultRun`` is reset. A new container ID sets the initial result
  (readiness ``Failure``, liveness ``Success``) but does *not* reset ``lastResult``/``resultRun``:
  a readiness success streak carries over to the next container.
* ``manualTriggerCh``: a manual run also ``Reset``s the ticker (PR #119089, in since 1.29).

Manual readiness runs -- ``pkg/kubelet/prober/prober_manager.go``, ``UpdatePodStatus``: every pod
sync asks the readiness worker for an immediate run while the container is started, running and
its readiness result is not ``Success`` (never while ready). This is how readiness is probed right
after a startup probe succeeds (the startup result triggers a sync). Pod syncs with no event come
from the pod worker resync, at least :data:`POD_RESYNC` apart.

Probes -- ``pkg/kubelet/prober/prober.go``, ``probe``/``runProbeWithRetries``, and
``pkg/probe/http/http.go``: HTTP 200-399 is success (3xx to another host is a warning, counted as
success); the request, TCP dial, exec or gRPC call is bounded by ``timeoutSeconds``; a timeout is
a failure; only internal errors are retried.

Kubelet reaction -- ``pkg/kubelet/kubelet.go``, ``syncLoopIteration``: a liveness ``Failure`` or any
startup change syncs the pod; a readiness change updates the status manager (``Ready``) and syncs
the pod. The pod worker waits for a PLEG cache newer than its last sync; the generic PLEG relists
every :data:`PLEG_RELIST_PERIOD`.

Kills -- ``pkg/kubelet/kuberuntime/kuberuntime_container.go``, ``killContainer`` and
``setTerminationGracePeriod``: for a liveness (startup) kill the grace period is the probe's
``terminationGracePeriodSeconds`` when set (GA since 1.28), else the pod's (default 30); at least
:data:`MINIMUM_GRACE_PERIOD`; ``StopContainer`` returns as soon as the process exits.

Restarts and back-off -- ``pkg/kubelet/kuberuntime/kuberuntime_manager.go``, ``computePodActions``,
``SyncPod``, ``doBackOff``, and ``staging/src/k8s.io/client-go/util/flowcontrol/backoff.go``,
``Next``, ``IsInBackOffSince``, ``hasExpired``, ``GC``:

* A liveness kill and the restart happen in the same ``SyncPod``: the container is added to the
  containers to start before it is killed, whatever its exit code, unless the policy is
  ``Never``. ``doBackOff`` then looks, in the pod status captured *before* the kill, for the
  newest *exited* container of that name -- the previous instance, not the one just killed.
  So the first kill restarts at once without touching the back-off; later kills compare
  ``now - finishedAt(previous instance)`` against the current back-off.
* Not in back-off: ``Next`` sets the back-off to 10 s on the first call or after a reset, else
  doubles it (capped at 300 s), and stamps ``lastUpdate = now``.
* In back-off the start is skipped (``CrashLoopBackOff``); later syncs find the killed instance
  exited and wait for ``now - finishedAt >= back-off``; under ``OnFailure`` a container that
  exited 0 is then never started again (``pkg/kubelet/container/helpers.go``,
  ``ShouldContainerBeRestarted``), so the pod completes.
* A container that exits on its own is seen by the next PLEG relist; its own exited status is
  the one ``doBackOff`` finds. The first crash has no back-off entry (``Next`` sets 10 s, restart
  at once); from the second crash on the restart waits (issue #133472).
* Reset: ``hasExpired`` (``eventTime - lastUpdate > 2 x 300 s``) and ``GC`` (entries whose
  ``lastUpdate`` is older than 600 s, run from ``HandlePodCleanups`` every
  :data:`HOUSEKEEPING_PERIOD`).
* The back-off error propagates out of ``Kubelet.SyncPod`` (the "only back-off" filter never
  matches, issue #123602), so ``pod_workers.go`` ``completeWork`` requeues the pod after
  ``wait.Jitter(backOffPeriod, 0.5)`` = :data:`BACKOFF_REQUEUE`, checked by the 1 s sync ticker.
  The restart therefore lands up to ~16 s after the back-off expires. From 1.35 (PR #133066) the
  requeue waits for the expiry the error carries (``finishedAt`` + back-off, capped at the 1 min
  ``syncFrequency``), but jittered the same way, so the sync that restarts can come up to half
  of the remaining time late: up to 30 s. The windows take the larger of the two
  (:func:`backoff_requeue_late`), so they hold for 1.33 to 1.36. Seen on 1.36.3: a 20 s back-off
  restarted 26 s after the exit.
* So after a restart that waited, whether the next kill lands in the doubled back-off can depend
  on that jitter alone. :meth:`ContainerTiming.restart_schedule` follows every branch and keeps a
  window per history (which restarts waited), besides their hull: a test that sees which way the
  kubelet went checks against that history's window (:meth:`RestartSchedule.given`).
* Feature gates ``KubeletCrashLoopBackOffMax`` (alpha 1.32, beta 1.35) and
  ``ReduceDefaultCrashLoopBackOffDecay`` (alpha 1.33) are off by default in 1.33 and 1.34 and are
  not modelled; neither are per-container restart rules (KEP-5307) nor the evented PLEG.

Readiness to endpoints -- ``staging/src/k8s.io/endpointslice/utils.go``, ``podToEndpoint``: an
endpoint is ready iff the pod's ``Ready`` condition (as written to the API) is true and the pod is
not terminating; see :func:`endpoints_follow`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, overload

from pytest_probes.errors import DeployError, ProbesError

logger = logging.getLogger(__name__)

__all__ = [
    "API_TIME_RESOLUTION",
    "BACKOFF_REQUEUE",
    "BACKOFF_STABLE_RESET",
    "CRASHLOOP_INITIAL_BACKOFF",
    "CRASHLOOP_MAX_BACKOFF",
    "DEFAULT_ALLOWANCE",
    "DEFAULT_TERMINATION_GRACE_PERIOD",
    "ENDPOINTS_ALLOWANCE",
    "HOUSEKEEPING_PERIOD",
    "MINIMUM_GRACE_PERIOD",
    "PLEG_RELIST_PERIOD",
    "POD_RESYNC",
    "REQUEUE_JITTER",
    "SYNC_FREQUENCY",
    "SYNC_LOOP_TICK",
    "ContainerTiming",
    "ProbeSpec",
    "Restart",
    "RestartSchedule",
    "Stop",
    "TimingError",
    "Window",
    "backoff_delays",
    "backoff_requeue_late",
    "endpoints_follow",
]

API_TIME_RESOLUTION = 1.0
"""Seconds: ``metav1.Time`` serialises to whole seconds, so API timestamps are truncated."""

def delay_from(initial_delay: float) -> float:
    """The earliest moment after a container's start at which ``initialDelaySeconds`` has passed.

    The prober checks ``int32(time.Since(StartedAt).Seconds()) < initialDelaySeconds``
    (``worker.go`` ``doProbe``) on the status manager's copy of the container status, whose times
    ``normalizeStatus`` truncates to whole seconds (``status_manager.go``: ``Rfc3339Copy``). So the
    delay counts from the start rounded down to the second: it can pass up to
    :data:`API_TIME_RESOLUTION` early (seen live: a container restarted 0.3 s after a probe tick
    was probed again one ``initialDelaySeconds`` = ``periodSeconds`` tick later).
    """
    return max(0.0, initial_delay - API_TIME_RESOLUTION) if initial_delay > 0 else 0.0


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

HOUSEKEEPING_PERIOD = 2.0
"""Seconds between ``HandlePodCleanups`` runs, which garbage-collect back-off entries
(``kubelet.go``: ``housekeepingPeriod``)."""

CRASHLOOP_INITIAL_BACKOFF = 10.0
"""First crash-loop back-off (``kubelet.go``: ``backOffPeriod``)."""

CRASHLOOP_MAX_BACKOFF = 300.0
"""Crash-loop back-off cap (``kubelet.go``: ``MaxContainerBackOff``)."""

BACKOFF_STABLE_RESET = 2 * CRASHLOOP_MAX_BACKOFF
"""A back-off entry resets once ``lastUpdate`` is this old (``backoff.go``: ``hasExpired``,
``GC``: ``2 * maxDuration``)."""

MINIMUM_GRACE_PERIOD = 2.0
"""Shortest shutdown window a killed container gets (``kuberuntime_manager.go``:
``minimumGracePeriodInSeconds``; applied in ``killContainer``)."""

DEFAULT_TERMINATION_GRACE_PERIOD = 30.0
"""API default of ``terminationGracePeriodSeconds``."""

DEFAULT_ALLOWANCE = 1.0
"""Seconds added to ``latest`` for each kubelet hop that no rule bounds: goroutine scheduling,
a CRI call (create/start/stop), a status write to the API server. Not a rule of Kubernetes but a
documented scheduling allowance; set :attr:`ContainerTiming.allowance` for slow machines."""

POD_CREATION_ALLOWANCE = 10.0
"""Seconds a controller may take to create the pods of an object applied with others (a
Deployment's ReplicaSet, then its pods, under a busy controller manager). Once the newest pod in a
namespace is this old and no pod matches a name a helper waits for, none is coming: a typo, or a
manifest that was not deployed. An allowance, not a rule; it is stretched by the timeline's
tolerance."""

ENDPOINTS_ALLOWANCE = 1.0
"""Seconds the EndpointSlice controller may take to follow a Pod ``Ready`` change (watch, queue,
``syncService``; ``endpointUpdatesBatchPeriod`` is 0 by default). An allowance, not a rule."""

_EPS = 1e-9

_MAX_CLASSES = 4096
"""Timing classes per restart above which the restart simulation stops keeping histories apart."""


class TimingError(ProbesError, ValueError):
    """A timing question has no answer for this spec (no such probe, impossible inputs).

    Attributes:
        container: The container the question was about, if known.
    """

    def __init__(self, message: str, *, container: str | None = None) -> None:
        self.container = container
        super().__init__(message)


def _fmt(x: float) -> str:
    r = round(x, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


@dataclass(frozen=True)
class Window:
    """A closed time window ``[earliest, latest]`` in seconds.

    Attributes:
        earliest: The earliest possible time.
        latest: The latest possible time.
    """

    earliest: float
    latest: float

    def __post_init__(self) -> None:
        if math.isnan(self.earliest) or math.isnan(self.latest):
            raise TimingError(f"window bounds must be numbers, got {self.earliest}, {self.latest}")
        if self.latest < self.earliest - _EPS:
            raise TimingError(
                f"window ends before it starts: {self.earliest:g} > {self.latest:g}; "
                "swap the bounds"
            )

    @classmethod
    def at(cls, t: float) -> Window:
        """Return the window holding exactly ``t``."""
        return cls(t, t)

    @property
    def width(self) -> float:
        """The length of the window in seconds."""
        return self.latest - self.earliest

    def contains(self, t: float, slack: float = 0.0) -> bool:
        """Tell whether ``t`` lies in the window widened by ``slack`` on both ends."""
        return self.earliest - slack <= t <= self.latest + slack

    def shifted(self, dt: float) -> Window:
        """Return the window moved by ``dt`` seconds."""
        return Window(self.earliest + dt, self.latest + dt)

    def widened(self, by: float) -> Window:
        """Return the window with ``by`` seconds added to ``latest``."""
        return Window(self.earliest, self.latest + by)

    def hull(self, other: Window) -> Window:
        """Return the smallest window holding both windows."""
        return Window(min(self.earliest, other.earliest), max(self.latest, other.latest))

    def __add__(self, other: Window | float) -> Window:
        """Add a window (interval sum) or a number of seconds."""
        if isinstance(other, Window):
            return Window(self.earliest + other.earliest, self.latest + other.latest)
        return self.shifted(float(other))

    __radd__ = __add__

    def __str__(self) -> str:
        if self.width < 0.05:
            return f"{_fmt(self.earliest)} s"
        return f"{_fmt(self.earliest)}\u2013{_fmt(self.latest)} s"


def _sub(a: Window, b: Window) -> Window:
    """Interval difference: every ``x - y`` with ``x`` in ``a`` and ``y`` in ``b``."""
    return Window(a.earliest - b.latest, a.latest - b.earliest)


def _as_window(value: Window | float | int) -> Window:
    return value if isinstance(value, Window) else Window.at(float(value))


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


# --------------------------------------------------------------------------------------------
# Specs


_PROBE_DEFAULTS = {
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


def _int_field(
    obj: Mapping[str, Any], key: str, *, where: str, default: int | None, minimum: int
) -> int | None:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeployError(
            f"{where}.{key}: expected a whole number of seconds or a count, got {value!r}; "
            "write it as an integer (e.g. 5)"
        )
    if value == 0 and default is not None:
        # The API server's SetDefaults_Probe treats 0 as unset.
        return default
    if value < minimum:
        raise DeployError(f"{where}.{key}: must be >= {minimum}, got {value}; the API server "
                          "rejects this spec")
    return value


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a container, with the API defaults applied.

    Attributes:
        initial_delay: ``initialDelaySeconds``.
        period: ``periodSeconds``.
        timeout: ``timeoutSeconds``.
        success_threshold: ``successThreshold``.
        failure_threshold: ``failureThreshold``.
        termination_grace_period: The probe-level ``terminationGracePeriodSeconds``, or ``None``.
        handler: ``httpGet``, ``tcpSocket``, ``exec`` or ``grpc`` (``""`` when not given).
    """

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period: float | None = None
    handler: str = ""

    def __post_init__(self) -> None:
        if self.period < 1 or self.timeout < 1 or self.initial_delay < 0:
            raise TimingError(
                f"probe needs period >= 1, timeout >= 1, initial delay >= 0; got period "
                f"{self.period:g}, timeout {self.timeout:g}, initial delay {self.initial_delay:g}"
            )
        if self.success_threshold < 1 or self.failure_threshold < 1:
            raise TimingError(
                f"probe thresholds must be >= 1; got success {self.success_threshold}, "
                f"failure {self.failure_threshold}"
            )

    @classmethod
    def from_k8s(cls, probe: Mapping[str, Any], *, where: str = "probe") -> ProbeSpec:
        """Read a probe in Kubernetes API camelCase, applying the API defaults.

        Defaults (``pkg/apis/core/v1/defaults.go``, ``SetDefaults_Probe``): period 10 s, timeout
        1 s, success threshold 1, failure threshold 3; a zero means unset.

        Args:
            probe: The probe mapping, e.g. ``{"httpGet": {...}, "periodSeconds": 5}``.
            where: Where the probe sits, for error messages.

        Returns:
            The probe spec.

        Raises:
            DeployError: A field is not an integer or is out of the API's range.
        """
        if not isinstance(probe, Mapping):
            raise DeployError(f"{where}: expected a mapping, got {type(probe).__name__}")
        values = {
            key: _int_field(probe, key, where=where, default=default, minimum=1)
            for key, default in _PROBE_DEFAULTS.items()
        }
        delay = _int_field(probe, "initialDelaySeconds", where=where, default=None, minimum=0)
        grace = _int_field(probe, "terminationGracePeriodSeconds", where=where, default=None,
                           minimum=1)
        handler = next((h for h in _HANDLERS if h in probe), "")
        return cls(
            initial_delay=float(delay or 0),
            period=float(values["periodSeconds"] or 10),
            timeout=float(values["timeoutSeconds"] or 1),
            success_threshold=int(values["successThreshold"] or 1),
            failure_threshold=int(values["failureThreshold"] or 3),
            termination_grace_period=None if grace is None else float(grace),
            handler=handler,
        )


def _pod_spec_of(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """Find the pod spec in a pod spec, a Pod, a workload or a CronJob manifest."""
    if "containers" in manifest:
        return manifest
    spec = manifest.get("spec")
    kind = manifest.get("kind", "<no kind>")
    if isinstance(spec, Mapping):
        if "containers" in spec:
            return spec
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, Mapping):
            spec = job_template.get("spec", {})
        template = spec.get("template") if isinstance(spec, Mapping) else None
        if isinstance(template, Mapping):
            inner = template.get("spec")
            if isinstance(inner, Mapping) and "containers" in inner:
                return inner
    raise DeployError(
        f"no pod spec found in a {kind} manifest: expected .containers, .spec.containers, "
        ".spec.template.spec.containers or .spec.jobTemplate.spec.template.spec.containers",
        kind=str(kind),
        name=_name_of(manifest),
    )


def _name_of(manifest: Mapping[str, Any]) -> str | None:
    meta = manifest.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return str(name) if name else None


@dataclass(frozen=True)
class _Grid:
    """How one probe paces a kill: its ticks and the failures needed, relative to a start."""

    eligible: Window  # earliest/latest time after start from which a failing probe counts
    period: float
    needed: int
    response: Window  # probe start -> result


@dataclass(frozen=True)
class ContainerTiming:
    """The probe-timing facts of one container, and the windows they imply.

    Build it with :meth:`from_pod_spec`. All windows are relative to the container's start
    (``state.running.startedAt``) unless a method says otherwise.

    Attributes:
        name: The container name.
        liveness: The liveness probe, or ``None``.
        readiness: The readiness probe, or ``None``.
        startup: The startup probe, or ``None``.
        pod_grace: The pod's ``terminationGracePeriodSeconds`` (default 30).
        restart_policy: ``Always``, ``OnFailure`` or ``Never`` (``Always`` for a native sidecar).
        has_pre_stop: Whether the container has a ``preStop`` hook (widens kill durations).
        allowance: Seconds added to ``latest`` per kubelet hop (:data:`DEFAULT_ALLOWANCE`).
    """

    name: str
    liveness: ProbeSpec | None = None
    readiness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    pod_grace: float = DEFAULT_TERMINATION_GRACE_PERIOD
    restart_policy: str = "Always"
    has_pre_stop: bool = False
    allowance: float = DEFAULT_ALLOWANCE

    def __post_init__(self) -> None:
        if self.restart_policy not in ("Always", "OnFailure", "Never"):
            raise TimingError(
                f"restartPolicy must be Always, OnFailure or Never, got {self.restart_policy!r}",
                container=self.name,
            )
        if self.allowance < 0 or self.pod_grace < 0:
            raise TimingError("allowance and pod grace period must be >= 0", container=self.name)

    @classmethod
    def from_pod_spec(
        cls,
        pod_spec: Mapping[str, Any],
        container: str | None = None,
        *,
        allowance: float = DEFAULT_ALLOWANCE,
    ) -> ContainerTiming:
        """Read a container's probes from a pod spec or a manifest holding one.

        Args:
            pod_spec: A pod spec (with ``containers``), a Pod, or a workload manifest (its
                ``spec.template.spec``; a CronJob's ``spec.jobTemplate.spec.template.spec``).
            container: The container name; may be omitted when the pod has one container. A
                native sidecar (an init container with ``restartPolicy: Always``) is found too.
            allowance: See :attr:`allowance`.

        Returns:
            The container's timing.

        Raises:
            DeployError: No pod spec, no such container, or an invalid probe.
        """
        spec = _pod_spec_of(pod_spec)
        containers = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
        sidecars = [
            c for c in spec.get("initContainers") or []
            if isinstance(c, Mapping) and c.get("restartPolicy") == "Always"
        ]
        names = [str(c.get("name")) for c in containers + sidecars]
        if container is None:
            if len(containers) != 1:
                raise DeployError(
                    f"the pod has containers {names}; pass container= to pick one"
                )
            chosen, sidecar = containers[0], False
        else:
            match = [c for c in containers if c.get("name") == container]
            sidecar = not match
            match = match or [c for c in sidecars if c.get("name") == container]
            if not match:
                raise DeployError(
                    f"no container {container!r} in the pod; it has {names}", name=container
                )
            chosen = match[0]
        name = str(chosen.get("name"))

        def probe(key: str) -> ProbeSpec | None:
            value = chosen.get(key)
            return None if value is None else ProbeSpec.from_k8s(value, where=f"{name}.{key}")

        liveness, readiness, startup = probe("livenessProbe"), probe("readinessProbe"), probe(
            "startupProbe")
        for kind, p in (("livenessProbe", liveness), ("startupProbe", startup)):
            if p is not None and p.success_threshold != 1:
                raise DeployError(
                    f"{name}.{kind}.successThreshold must be 1, got {p.success_threshold}; "
                    "the API server rejects this spec", name=name,
                )
        grace = spec.get("terminationGracePeriodSeconds")
        if grace is None:
            grace = DEFAULT_TERMINATION_GRACE_PERIOD
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise DeployError(f"terminationGracePeriodSeconds: expected seconds >= 0, got "
                              f"{grace!r}")
        policy = "Always" if sidecar else str(spec.get("restartPolicy") or "Always")
        lifecycle = chosen.get("lifecycle")
        pre_stop = isinstance(lifecycle, Mapping) and lifecycle.get("preStop") is not None
        try:
            return cls(
                name=name, liveness=liveness, readiness=readiness, startup=startup,
                pod_grace=float(grace), restart_policy=policy, has_pre_stop=pre_stop,
                allowance=allowance,
            )
        except TimingError as err:
            raise DeployError(str(err), name=name) from err

    # ---------------------------------------------------------------- latencies

    @property
    def status_lag(self) -> float:
        """Latest delay before probe workers see a freshly started container.

        The workers read the status manager, which learns of the new container at the sync that
        follows the PLEG relist: at most :data:`PLEG_RELIST_PERIOD` plus one allowance.
        """
        return PLEG_RELIST_PERIOD + self.allowance

    @property
    def kill_reaction(self) -> float:
        """Latest delay from a liveness/startup ``Failure`` result to the ``Killing`` event.

        ``syncLoopIteration`` syncs the pod at once; the pod worker waits for a pod cache newer
        than its last sync (one PLEG relist), then ``SyncPod`` kills.
        """
        return PLEG_RELIST_PERIOD + self.allowance

    def _need(self, probe: ProbeSpec | None, kind: str) -> ProbeSpec:
        if probe is None:
            raise TimingError(f"container {self.name!r} has no {kind} probe", container=self.name)
        return probe

    def _response(self, probe: ProbeSpec, response: Window | float | None) -> Window:
        if response is None:
            return Window(0.0, probe.timeout)
        w = _as_window(response)
        if w.earliest < 0 or w.latest > probe.timeout + _EPS:
            raise TimingError(
                f"probe_response {w} must lie within 0-{_fmt(probe.timeout)} s (timeoutSeconds)",
                container=self.name,
            )
        return w

    # ---------------------------------------------------------------- startup

    def startup_success(self, *, started_from: float = 0.0,
                        probe_response: Window | float | None = None) -> Window:
        """When the container counts as started (liveness and readiness may begin).

        Without a startup probe the container is started at once. With one, the first tick at or
        after ``max(started_from, initialDelaySeconds)`` succeeds (success threshold is always 1),
        and ``syncLoopIteration`` marks the container started in the status manager.

        Args:
            started_from: When the startup endpoint starts succeeding.
            probe_response: Probe start to result, default ``0-timeoutSeconds``.

        Returns:
            The window of the ``Started`` flag.

        Raises:
            TimingError: The startup probe certainly gives up before ``started_from``.
        """
        if self.startup is None:
            return Window.at(0.0)
        sp = self.startup
        r = self._response(sp, probe_response)
        lo = max(started_from, delay_from(sp.initial_delay))
        hi = max(lo, self.status_lag)
        spacing = max(sp.period, r.latest)
        # The failure-threshold-th failing tick comes before this in every timing.
        last_failure_tick = (max(sp.initial_delay, self.status_lag) + sp.period
                             + (sp.failure_threshold - 1) * spacing)
        if started_from >= last_failure_tick:
            raise TimingError(
                f"container {self.name!r}: the startup probe gives up (failureThreshold "
                f"{sp.failure_threshold} x period {_fmt(sp.period)} s after a delay of "
                f"{_fmt(sp.initial_delay)} s) before the app starts at {_fmt(started_from)} s; "
                "use startup_give_up()",
                container=self.name,
            )
        return Window(lo + r.earliest, hi + sp.period + r.latest + self.allowance)

    def startup_give_up(self, *, probe_response: Window | float | None = None) -> Window:
        """When the kubelet kills a container whose startup probe never succeeds.

        The ``failureThreshold``-th failing tick after ``initialDelaySeconds``, then the kill
        reaction (``worker.go`` ``doProbe``; ``kuberuntime_manager.go`` ``computePodActions``:
        "failed startup probe").

        Returns:
            The window of the ``Killing`` event.
        """
        return self._kill_window(self._startup_grid(probe_response))

    def _startup_grid(self, probe_response: Window | float | None) -> _Grid:
        sp = self._need(self.startup, "startup")
        r = self._response(sp, probe_response)
        return _Grid(Window(delay_from(sp.initial_delay), max(sp.initial_delay, self.status_lag)),
                     sp.period, sp.failure_threshold, r)

    # ---------------------------------------------------------------- liveness

    def _liveness_grid(self, fail_from: float, *, startup_from: float, prior_failures: int,
                       probe_response: Window | float | None) -> _Grid:
        lp = self._need(self.liveness, "liveness")
        started = self.startup_success(started_from=startup_from)
        lo = max(fail_from, delay_from(lp.initial_delay), started.earliest)
        hi = max(fail_from, lp.initial_delay, started.latest, self.status_lag)
        needed = max(1, lp.failure_threshold - max(0, prior_failures))
        return _Grid(Window(lo, hi), lp.period, needed, self._response(lp, probe_response))

    def _kill_window(self, grid: _Grid) -> Window:
        """Killing event after ``needed`` failing ticks counted from ``grid.eligible``."""
        spacing = max(grid.period, grid.response.latest)
        earliest = grid.eligible.earliest + (grid.needed - 1) * grid.period + grid.response.earliest
        latest = (grid.eligible.latest + grid.period + (grid.needed - 1) * spacing
                  + grid.response.latest + self.kill_reaction)
        return Window(earliest, latest)

    def first_liveness_kill(
        self,
        *,
        fail_from: float = 0.0,
        startup_from: float = 0.0,
        prior_failures: int = 0,
        probe_response: Window | float | None = None,
    ) -> Window:
        """When the kubelet first kills the container for failing its liveness probe.

        Worked example: initialDelay 5, period 5, failureThreshold 3, failing from 10 s. The first
        counted tick lies in ``[10, 15)``, the third 10 s later, in ``[20, 25)``; the result takes
        up to the timeout (1 s) and the kill reaction (PLEG relist 1 s + allowance). So
        ``20 - 25 + 1 + 1 + allowance`` s.

        Args:
            fail_from: When the liveness endpoint starts failing, after the container start.
            startup_from: When the startup endpoint starts succeeding (only with a startup
                probe; liveness does not run before the container is started).
            prior_failures: Failures the worker already counts from a previous instance that
                crashed on its own (``resultRun`` survives a container change). 0 after a kill.
            probe_response: Probe start to result, default ``0-timeoutSeconds``; pass a narrow
                window for an endpoint that fails fast (HTTP 500 at once).

        Returns:
            The window of the ``Killing`` event, relative to the container start.
        """
        grid = self._liveness_grid(fail_from, startup_from=startup_from,
                                   prior_failures=prior_failures, probe_response=probe_response)
        return self._kill_window(grid)

    def first_liveness_failure(
        self,
        *,
        fail_from: float = 0.0,
        startup_from: float = 0.0,
        probe_response: Window | float | None = None,
    ) -> Window:
        """When the first failing liveness probe is reported (the first ``Unhealthy`` event).

        The first tick at or after ``max(fail_from, initialDelaySeconds, started)`` fails; the
        prober records the event as soon as the result is in (``worker.go`` ``doProbe``).

        Returns:
            The window of the first liveness ``Unhealthy`` event, relative to the container start.
        """
        grid = self._liveness_grid(fail_from, startup_from=startup_from, prior_failures=0,
                                   probe_response=probe_response)
        return Window(grid.eligible.earliest + grid.response.earliest,
                      grid.eligible.latest + grid.period + grid.response.latest + self.allowance)

    # ---------------------------------------------------------------- readiness

    def _readiness_start(
        self, change_from: float, startup_from: float, probe_response: Window | float | None
    ) -> tuple[ProbeSpec, Window, float, float]:
        """Readiness spec, response window, and the first moments probes can see a change.

        ``lo``/``hi`` bound when a change at ``change_from`` can first be probed, after the
        initial delay and startup gating.
        """
        rp = self._need(self.readiness, "readiness")
        r = self._response(rp, probe_response)
        started = self.startup_success(started_from=startup_from)
        lo = max(change_from, delay_from(rp.initial_delay), started.earliest)
        hi = max(change_from, rp.initial_delay, started.latest, self.status_lag)
        return rp, r, lo, hi

    def readiness_gain(
        self,
        *,
        ready_from: float = 0.0,
        startup_from: float = 0.0,
        prior_successes: int = 0,
        probe_response: Window | float | None = None,
        synced_at: float | None = None,
    ) -> Window:
        """When the container's ``Ready`` turns true (in the kubelet, then written to the API).

        While not ready, every pod sync triggers an immediate readiness run
        (``prober_manager.go`` ``UpdatePodStatus``), so a probe may come at any moment; probes are
        never more than a period apart. The first success is therefore in
        ``[a, a + period)`` with ``a = max(ready_from, initialDelaySeconds, started)``. Further
        successes (``successThreshold`` > 1) come a period apart, except that a pod resync (at
        most one per :data:`POD_RESYNC` minimum) can inject one manual run and save a period.

        Args:
            ready_from: When the readiness endpoint starts succeeding, after the container start.
            startup_from: When the startup endpoint starts succeeding (with a startup probe).
            prior_successes: Successes in a row the worker carries from the previous container
                instance (``resultRun`` is not reset on a container change).
            probe_response: Probe start to result, default ``0-timeoutSeconds``.
            synced_at: When the pod was last synced, if known (at the latest): the sync that
                followed its readiness turning false, say. The pod worker resyncs a pod
                :data:`POD_RESYNC` after its last sync (``pod_workers.go`` ``completeWork``), so
                no resync can inject a run before then. Only probe results, container changes
                and spec changes sync a pod otherwise.

        Returns:
            The window of ``Ready`` becoming true, relative to the container start.
        """
        rp, r, lo, hi = self._readiness_start(ready_from, startup_from, probe_response)
        needed = max(1, rp.success_threshold - max(0, prior_successes))
        span = (needed - 1) * rp.period
        injected = min(needed - 1, 1 + int(span // POD_RESYNC.earliest)) if needed > 1 else 0
        if synced_at is not None and synced_at + POD_RESYNC.earliest > lo + span:
            injected = 0  # the streak is over before the next resync
        earliest = lo + (needed - 1 - injected) * rp.period + r.earliest
        spacing = max(rp.period, r.latest)
        latest = hi + rp.period + (needed - 1) * spacing + r.latest + self.allowance
        return Window(earliest, latest)

    def readiness_loss(
        self,
        *,
        fail_from: float,
        startup_from: float = 0.0,
        probe_response: Window | float | None = None,
    ) -> Window:
        """When a ready container's ``Ready`` turns false because its probe keeps failing.

        While ready there are no manual runs, so failures come on the ticker: the first counted
        tick is in ``[a, a + period)``, the ``failureThreshold``-th ``(threshold - 1)`` periods
        later; then the status manager writes ``Ready=False``. Worked example: delay 5, period 5,
        threshold 3, failing from 10 s: ``20 - 25 + timeout + allowance`` s.

        Args:
            fail_from: When the readiness endpoint starts failing; the container must have become
                ready before (see :meth:`readiness_gain`).
            startup_from: When the startup endpoint starts succeeding (with a startup probe).
            probe_response: Probe start to result, default ``0-timeoutSeconds``.

        Returns:
            The window of ``Ready`` becoming false, relative to the container start.
        """
        rp, r, lo, hi = self._readiness_start(fail_from, startup_from, probe_response)
        spacing = max(rp.period, r.latest)
        earliest = lo + (rp.failure_threshold - 1) * rp.period + r.earliest
        latest = (hi + rp.period + (rp.failure_threshold - 1) * spacing + r.latest
                  + self.allowance)
        return Window(earliest, latest)

    def readiness_loss_on_restart(self) -> Window:
        """When ``Ready`` turns false after a restart, relative to the new container's start.

        The kill and the start happen in one ``SyncPod``; the status manager still shows the old
        container until the next sync after the PLEG relist. There ``UpdatePodStatus`` finds no
        readiness result for the new container ID and reports it not ready. (During the old
        container's grace period readiness keeps probing it, so the pod may stay ready.)
        """
        self._need(self.readiness, "readiness")
        return Window(0.0, self.status_lag)

    # ---------------------------------------------------------------- kills and restarts

    def grace_period(self, reason: Literal["liveness", "startup", "other"] = "liveness") -> float:
        """The grace period ``killContainer`` uses, minimum included.

        ``setTerminationGracePeriod``: a probe-level ``terminationGracePeriodSeconds`` wins for a
        kill caused by that probe; otherwise the pod's. Then at least
        :data:`MINIMUM_GRACE_PERIOD`.
        """
        grace = self.pod_grace
        probe = {"liveness": self.liveness, "startup": self.startup}.get(reason)
        if probe is not None and probe.termination_grace_period is not None:
            grace = probe.termination_grace_period
        return max(grace, MINIMUM_GRACE_PERIOD)

    def kill_duration(
        self,
        *,
        exits_on_sigterm_after: float | None,
        reason: Literal["liveness", "startup", "other"] = "liveness",
    ) -> Window:
        """From the ``Killing`` event to the container's exit.

        ``StopContainer`` sends SIGTERM and returns when the process exits, or sends SIGKILL when
        the grace period runs out. A ``preStop`` hook runs first and eats into the grace period,
        but the kubelet still leaves at least :data:`MINIMUM_GRACE_PERIOD` after it, so the latest
        exit is ``grace + min(x, 2)``.

        Args:
            exits_on_sigterm_after: Seconds the app needs to exit after SIGTERM; ``None`` if it
                ignores SIGTERM (then it is SIGKILLed when the grace period ends).
            reason: What the kill is for; selects the probe-level grace period.

        Returns:
            The window of the exit, relative to the ``Killing`` event.
        """
        grace = self.grace_period(reason)
        x = math.inf if exits_on_sigterm_after is None else max(0.0, exits_on_sigterm_after)
        earliest = min(x, grace)
        latest = grace + min(x, MINIMUM_GRACE_PERIOD) if self.has_pre_stop else earliest
        return Window(earliest, latest + self.allowance)

    def restart_after_kill(
        self,
        *,
        exits_on_sigterm_after: float | None,
        reason: Literal["liveness", "startup", "other"] = "liveness",
        backoff: float | None = None,
    ) -> Window:
        """From the ``Killing`` event to the next ``Started`` of the container.

        Without back-off the restart follows the exit in the same ``SyncPod``. With ``backoff``
        (the back-off in force for this restart, measured from the exit) the kubelet starts the
        container at the first pod sync at least ``backoff`` after the exit, up to
        :func:`backoff_requeue_late` after it (plus the 1 s work-queue tick).

        Args:
            exits_on_sigterm_after: See :meth:`kill_duration`.
            reason: See :meth:`kill_duration`.
            backoff: The back-off that applies, or ``None`` when none does (the first restart).

        Returns:
            The window of the new ``Started`` event, relative to ``Killing``.
        """
        exit_ = self.kill_duration(exits_on_sigterm_after=exits_on_sigterm_after, reason=reason)
        start = Window(0.0, self.allowance)
        if backoff is None or backoff <= 0:
            return exit_ + start
        return exit_ + Window(backoff, backoff + self._wait_slack(backoff)) + start

    def _wait_slack(self, backoff: float) -> float:
        """Back-off expiry to the restart decision, at most (the requeue, the sync ticker)."""
        return backoff_requeue_late(backoff) + SYNC_LOOP_TICK + self.allowance

    def restart_schedule(
        self,
        n: int,
        *,
        run_until_kill: Window | float | None = None,
        kill_duration: Window | float | None = None,
        exit_code: int = 0,
        crash: bool = False,
        fail_from: float | None = None,
        killer: Literal["liveness", "startup"] = "liveness",
        startup_from: float = 0.0,
        probe_response: Window | float | None = None,
    ) -> RestartSchedule:
        """Start times of restarts 1..n, by simulating the kubelet's back-off state machine.

        Three ways to describe a container's life:

        * ``fail_from`` (liveness) or ``killer="startup"``: every instance fails its probe from
          ``fail_from`` after its start (startup: never succeeds) and is killed by the probe. The
          probe ticker keeps its phase across restarts (one worker per pod), and a restarted
          container starts just after the killing tick, so the ticks are tracked exactly; only
          the first phase is unknown.
        * ``run_until_kill``: each instance is killed this long after its start (independently).
        * ``crash=True`` with ``run_until_kill``: each instance exits on its own this long after
          its start (no kill); the first crash restarts at once and backs off from the second.

        The restart policy decides whether a restart happens at all: ``Never`` never restarts;
        ``OnFailure`` restarts a liveness-killed container even with exit code 0 as long as no
        back-off applies, but once a kill lands in back-off an exit code 0 ends the container
        for good (the pod completes). See the module docstring for the rules and sources.

        Args:
            n: How many restarts to compute.
            run_until_kill: Start to ``Killing`` (or to the exit, with ``crash``).
            kill_duration: ``Killing`` to exit (see :meth:`kill_duration`); needed unless
                ``crash``.
            exit_code: The exit code of each instance (after SIGTERM, or of the crash).
            crash: The container exits on its own instead of being killed.
            fail_from: When the liveness endpoint starts failing after each start.
            killer: ``"startup"`` for instances killed by a startup probe that never succeeds.
            startup_from: When the startup endpoint succeeds (liveness with a startup probe).
            probe_response: Probe start to result, default ``0-timeoutSeconds``.

        Returns:
            The schedule: a sequence of start windows relative to the first container's start,
            with details per restart and where the container may stop for good.

        Raises:
            TimingError: Inconsistent arguments or a missing probe.
        """
        if n < 0:
            raise TimingError(f"n must be >= 0, got {n}", container=self.name)
        if crash:
            if run_until_kill is None:
                raise TimingError("crash=True needs run_until_kill (start to exit)",
                                  container=self.name)
            cycle = _Cycle(
                mode="crash",
                kill=_as_window(run_until_kill),
                exit=_as_window(run_until_kill),
                restart=Window(0.0, self.allowance),
                detect=Window(0.0, PLEG_RELIST_PERIOD + self.allowance),
                wait_slack=self._wait_slack,
            )
        else:
            if kill_duration is None:
                raise TimingError("pass kill_duration (see kill_duration())", container=self.name)
            dur = _as_window(kill_duration)
            grid: _Grid | None = None
            if killer == "startup":
                grid = self._startup_grid(probe_response)
            elif fail_from is not None:
                grid = self._liveness_grid(fail_from, startup_from=startup_from,
                                           prior_failures=0, probe_response=probe_response)
            elif run_until_kill is None:
                raise TimingError("pass fail_from (probe-paced kills) or run_until_kill",
                                  container=self.name)
            # A probe that returns within its period keeps the ticks on the grid (a tick that
            # fires meanwhile is buffered and consumed at once).
            if grid is not None and grid.response.latest <= grid.period + _EPS:
                kill = Window(grid.response.earliest, grid.response.latest + self.kill_reaction)
                cycle = _Cycle(mode="grid", kill=kill, exit=kill + dur,
                               restart=Window(0.0, self.allowance),
                               detect=Window.at(0.0), wait_slack=self._wait_slack, grid=grid)
            else:
                # Ticks can be skipped when a probe outlasts its period: fall back to independent
                # kill times (still true bounds, only looser).
                run = (_as_window(run_until_kill) if run_until_kill is not None
                       else self._kill_window(grid) if grid is not None else Window.at(0.0))
                cycle = _Cycle(mode="fixed", kill=run, exit=run + dur,
                               restart=Window(0.0, self.allowance),
                               detect=Window.at(0.0), wait_slack=self._wait_slack)
        sim = _Simulation(cycle, policy=self.restart_policy, exit_code=exit_code)
        return sim.run(n)


def backoff_delays(
    n: int, *, initial: float = CRASHLOOP_INITIAL_BACKOFF, cap: float = CRASHLOOP_MAX_BACKOFF
) -> list[float]:
    """The first ``n`` crash-loop back-off values: ``initial`` doubling up to ``cap``.

    ``backoff.go`` ``Next``: the first call (or the first after a reset) sets ``initial``; each
    later call doubles, capped at ``cap``. Which restart waits for which value depends on the
    kill/crash history; see :meth:`ContainerTiming.restart_schedule`.
    """
    if n < 0:
        raise TimingError(f"n must be >= 0, got {n}")
    return [min(initial * 2**i, cap) for i in range(n)]


def endpoints_follow(ready_change: Window, *, allowance: float = ENDPOINTS_ALLOWANCE) -> Window:
    """When the EndpointSlice follows a change of the Pod ``Ready`` condition.

    ``podToEndpoint`` (``staging/src/k8s.io/endpointslice/utils.go``) sets the endpoint ready iff
    the API pod is ready and not terminating; the controller reacts to the pod update event.
    """
    return ready_change.widened(allowance)


# --------------------------------------------------------------------------------------------
# Restart schedule


@dataclass(frozen=True)
class Restart:
    """One restart (the start of a new container instance) in a schedule.

    Attributes:
        number: The restart count after it (1 for the first restart).
        started: When the new instance starts, relative to the first instance's start.
        killed: When the previous instance got its ``Killing`` event (or exited, for crashes).
        backed_off: ``True`` if the restart waited for a back-off (the pod showed
            ``CrashLoopBackOff``), ``False`` if it followed at once, ``None`` if it depends on
            timing.
        backoff: The back-off values waited for (``None`` if it never waited).
        certain: Whether the restart happens in every timing (else the container may have
            stopped for good before).
        paths: The start window per history: whether each of restarts 1..``number`` waited for
            a back-off, in order. One history per way the kubelet's jitter can go; ``None`` when
            the simulation had too many timing classes to keep them apart.
    """

    number: int
    started: Window
    killed: Window
    backed_off: bool | None
    backoff: Window | None
    certain: bool
    paths: Mapping[tuple[bool, ...], Window] | None = None


@dataclass(frozen=True)
class Stop:
    """The container is left terminated: no more restarts.

    Attributes:
        restarts: The restart count it stays at.
        exited: When the last instance exits, relative to the first instance's start.
        reason: Why the kubelet does not restart it.
    """

    restarts: int
    exited: Window
    reason: str


@dataclass(frozen=True)
class RestartSchedule(Sequence[Window]):
    """Restart start windows (a sequence of :class:`Window`) with details.

    ``schedule[k]`` is the start window of restart ``k + 1``. The sequence is shorter than asked
    when the container stops for good in every timing before; ``stops`` says when and why.

    Attributes:
        restarts: Details per restart.
        stops: Where the container may be left terminated (one entry per restart count).
        continues: Whether, in some timing, the container is still being restarted at the end
            of the computed horizon.
    """

    restarts: tuple[Restart, ...]
    stops: tuple[Stop, ...] = ()
    continues: bool = True

    @overload
    def __getitem__(self, index: int) -> Window: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Window]: ...

    def __getitem__(self, index: int | slice) -> Window | Sequence[Window]:
        if isinstance(index, slice):
            return [r.started for r in self.restarts[index]]
        return self.restarts[index].started

    def __len__(self) -> int:
        return len(self.restarts)

    def __iter__(self) -> Iterator[Window]:
        return (r.started for r in self.restarts)

    @property
    def certain(self) -> int:
        """How many leading restarts happen in every timing."""
        return sum(1 for r in self.restarts if r.certain)

    @property
    def stop_counts(self) -> frozenset[int]:
        """The restart counts at which the container may stay terminated."""
        return frozenset(s.restarts for s in self.stops)

    @property
    def always_stops(self) -> bool:
        """Whether the container stops for good within the horizon in every timing."""
        return not self.continues

    def given(self, waited: Sequence[bool]) -> Window | None:
        """The start window of restart ``len(waited)`` for one history of the kubelet's choices.

        After a restart that waited for a back-off, the requeue jitter decides whether the next
        kill lands in the doubled back-off, so one schedule holds several histories and
        ``schedule[k]`` is their hull. Once the restarts have happened, whether each waited
        (a ``CrashLoopBackOff`` between exit and start) is known, and this narrows the window to
        the timings that lead there.

        Args:
            waited: For restarts 1..k in order, whether each waited for a back-off.

        Returns:
            The window of restart k under that history; ``None`` if the kubelet's rules do not
            allow that history. The hull ``schedule[k - 1]`` when the histories were not kept.
        """
        k = len(waited)
        if not 1 <= k <= len(self.restarts):
            raise IndexError(f"the schedule has restarts 1..{len(self.restarts)}, not {k}")
        restart = self.restarts[k - 1]
        if restart.paths is None:
            return restart.started
        return restart.paths.get(tuple(bool(w) for w in waited))

    def shifted(self, by: Window | float) -> RestartSchedule:
        """The same schedule with every window moved by ``by`` (an interval: widens too)."""
        def move(w: Window) -> Window:
            return w + by

        restarts = tuple(
            replace(r, started=move(r.started), killed=move(r.killed),
                    paths=None if r.paths is None else {h: move(w) for h, w in r.paths.items()})
            for r in self.restarts)
        stops = tuple(replace(s, exited=move(s.exited)) for s in self.stops)
        return RestartSchedule(restarts=restarts, stops=stops, continues=self.continues)

    def __str__(self) -> str:
        parts = []
        for r in self.restarts:
            flag = {True: " after back-off", False: "", None: " (back-off depends)"}[r.backed_off]
            maybe = "" if r.certain else " if not stopped"
            parts.append(f"restart {r.number}: {r.started}{flag}{maybe}")
        for s in self.stops:
            parts.append(f"stops at {s.restarts} restarts ({s.reason}), exit {s.exited}")
        return "; ".join(parts)


@dataclass(frozen=True)
class _Cycle:
    """One instance's life, relative to its anchor (a probe tick in grid mode, else its start)."""

    mode: Literal["grid", "fixed", "crash"]
    kill: Window      # anchor -> Killing event (crash: -> exit)
    exit: Window      # anchor -> exit
    restart: Window   # restart decision -> Started (sigma; strictly > 0)
    detect: Window    # crash: exit -> first sync that sees it
    wait_slack: Callable[[float], float]  # back-off -> its expiry to the restart decision, at most
    grid: _Grid | None = None


@dataclass(frozen=True)
class _State:
    """One class of timings for the instance currently running."""

    count: int                      # restarts so far = index of this instance
    entry: float | None             # back-off entry (seconds), None if there is none
    anchor: Window                  # absolute anchor of this instance
    start: Window                   # absolute start of this instance
    since_prev_exit: Window | None  # anchor - exit of the previous instance
    since_update: Window | None     # anchor - lastUpdate of the entry
    step: float | None              # grid: anchor - previous anchor (a multiple of the period)
    waited: bool | None             # how this instance was started (None: the first)
    backoff: float | None           # the back-off it waited for
    history: tuple[bool, ...] | None = ()  # waited, per restart so far; None: not kept

    def key(self) -> tuple[object, ...]:
        return (self.count, self.entry, self.step, self.waited, self.backoff, self.history)

    def merge(self, other: _State) -> _State:
        def hull(a: Window | None, b: Window | None) -> Window | None:
            if a is None or b is None:
                return a if b is None else b
            return a.hull(b)

        return _State(
            count=self.count, entry=self.entry, anchor=self.anchor.hull(other.anchor),
            start=self.start.hull(other.start),
            since_prev_exit=hull(self.since_prev_exit, other.since_prev_exit),
            since_update=hull(self.since_update, other.since_update),
            step=self.step, waited=self.waited, backoff=self.backoff, history=self.history,
        )


@dataclass(frozen=True)
class _Decision:
    """What the kubelet does when an instance exits: restart after ``wait``, or stop."""

    wait: Window | None    # exit -> restart decision; None: no restart
    entry: float | None    # back-off entry after the decision
    updated: bool          # Next() was called (lastUpdate := decision time)
    backed_off: bool
    backoff: float | None
    reason: str = ""
    exit: Window | None = None  # anchor -> exit of the instance, where this decision is possible


def _merged(states: Iterable[_State]) -> list[_State]:
    """One state per class (:meth:`_State.key`), the hull of those that share it."""
    out: dict[tuple[object, ...], _State] = {}
    for st in states:
        k = st.key()
        out[k] = st if k not in out else out[k].merge(st)
    return list(out.values())


def _clip(w: Window, *, lo: float = -math.inf, hi: float = math.inf) -> Window:
    """``w`` cut to ``[lo, hi]``.

    A point at the nearer end when they do not overlap (they can miss by :data:`_EPS`, the
    margin :func:`_branches` decides with).
    """
    earliest = min(max(w.earliest, lo), w.latest)
    return Window(earliest, max(earliest, min(w.latest, hi)))


def _branches(interval: Window, threshold: float) -> tuple[bool, ...]:
    """Possible truth values of ``x < threshold`` for ``x`` in ``interval``."""
    out: list[bool] = []
    if interval.earliest < threshold - _EPS:
        out.append(True)
    if interval.latest >= threshold - _EPS:
        out.append(False)
    return tuple(out)


class _Simulation:
    """The back-off state machine over classes of timings (see ``restart_schedule``)."""

    def __init__(self, cycle: _Cycle, *, policy: str, exit_code: int) -> None:
        self.cycle = cycle
        self.policy = policy
        self.exit_code = exit_code
        self.stop_after_backoff = policy == "Never" or (policy == "OnFailure" and exit_code == 0)

    def _double(self, entry: float | None) -> float:
        if entry is None:
            return CRASHLOOP_INITIAL_BACKOFF
        return min(entry * 2, CRASHLOOP_MAX_BACKOFF)

    def _alive(self, age: Window) -> tuple[bool, ...]:
        """Whether the entry may still exist when ``now - lastUpdate`` is ``age`` (GC)."""
        out: list[bool] = []
        if age.earliest <= BACKOFF_STABLE_RESET + HOUSEKEEPING_PERIOD:
            out.append(True)
        if age.latest > BACKOFF_STABLE_RESET:
            out.append(False)
        return tuple(out)

    def _expired(self, delta: Window) -> tuple[bool, ...]:
        """Possible values of ``hasExpired`` for ``eventTime - lastUpdate`` in ``delta``."""
        return tuple(not v for v in _branches(delta, BACKOFF_STABLE_RESET + _EPS))

    def _wait(self, state: _State, entry: float, age_at_exit: Window | None,
              exit_floor: float) -> list[_Decision]:
        """Restart decisions while in back-off ``entry``, measured from the exit."""
        slack = self.cycle.wait_slack(entry)
        out: list[_Decision] = []
        if age_at_exit is None:
            gc = Window(math.inf, math.inf)
        else:
            gc = Window(BACKOFF_STABLE_RESET - age_at_exit.latest,
                        BACKOFF_STABLE_RESET - age_at_exit.earliest + HOUSEKEEPING_PERIOD)
        if gc.latest >= entry:
            lo = max(entry, exit_floor)
            wait = Window(lo, max(lo, entry) + slack)
            expired = (False,) if age_at_exit is None else self._expired(age_at_exit)
            for exp in expired:
                new = CRASHLOOP_INITIAL_BACKOFF if exp else self._double(entry)
                out.append(_Decision(wait, new, True, True, entry))
        if gc.earliest < entry:
            lo = max(gc.earliest, exit_floor, 0.0)
            wait = Window(lo, max(lo, min(gc.latest, entry)) + slack)
            out.append(_Decision(wait, CRASHLOOP_INITIAL_BACKOFF, True, True, entry))
        return out

    def decide(self, state: _State) -> list[_Decision]:
        """The kubelet's choices when this instance is killed (or crashes)."""
        cyc = self.cycle
        if self.policy == "Never":
            return [_Decision(None, state.entry, False, False, None,
                              "restartPolicy Never: a dead container is never restarted")]
        if cyc.mode == "crash":
            return self._decide_crash(state)
        if state.since_prev_exit is None:
            # First kill: the pre-kill pod status holds no exited instance, doBackOff returns
            # early and Next() is not called.
            return [_Decision(Window.at(0.0), state.entry, False, False, None)]
        out: list[_Decision] = []
        age = cyc.exit + state.since_update if state.since_update is not None else None
        alive = self._alive(age) if age is not None and state.entry is not None else (False,)
        for is_alive in alive:
            if not is_alive:
                out.append(_Decision(Window.at(0.0), CRASHLOOP_INITIAL_BACKOFF, True, False, None))
                continue
            assert state.entry is not None and state.since_update is not None and age is not None
            # hasExpired(finishedAt(previous), lastUpdate)
            for exp in self._expired(_sub(state.since_update, state.since_prev_exit)):
                if exp:
                    out.append(_Decision(Window.at(0.0), CRASHLOOP_INITIAL_BACKOFF, True, False,
                                         None))
                    continue
                spe = state.since_prev_exit
                gap = cyc.exit + spe  # now - finishedAt(previous instance)
                for in_backoff in _branches(gap, state.entry):
                    # Only the exits that take this branch (the same exit places the restart).
                    if not in_backoff:
                        ex = _clip(cyc.exit, lo=state.entry - spe.latest)
                        out.append(_Decision(Window.at(0.0), self._double(state.entry), True,
                                             False, None, exit=ex))
                        continue
                    ex = _clip(cyc.exit, hi=state.entry - spe.earliest)
                    if self.stop_after_backoff:
                        out.append(_Decision(
                            None, state.entry, False, True, state.entry,
                            "restartPolicy OnFailure: the kill landed in back-off and the "
                            f"container exited {self.exit_code}, so it is never started again",
                            exit=ex,
                        ))
                    else:
                        out.extend(replace(d, exit=ex)
                                   for d in self._wait(state, state.entry, age, 0.0))
        return out

    def _decide_crash(self, state: _State) -> list[_Decision]:
        cyc = self.cycle
        if self.policy == "OnFailure" and self.exit_code == 0:
            return [_Decision(None, state.entry, False, False, None,
                              "restartPolicy OnFailure: the container exited 0")]
        detect = cyc.detect
        if state.entry is None or state.since_update is None:
            return [_Decision(detect, CRASHLOOP_INITIAL_BACKOFF, True, False, None)]
        out: list[_Decision] = []
        age_exit = cyc.exit + state.since_update  # finishedAt - lastUpdate
        for is_alive in self._alive(age_exit + detect):
            if not is_alive:
                out.append(_Decision(detect, CRASHLOOP_INITIAL_BACKOFF, True, False, None))
                continue
            for exp in self._expired(age_exit):
                if exp:
                    out.append(_Decision(detect, CRASHLOOP_INITIAL_BACKOFF, True, False, None))
                    continue
                for in_backoff in _branches(detect, state.entry):
                    if not in_backoff:
                        out.append(_Decision(detect, self._double(state.entry), True, False,
                                             None))
                    else:
                        out.extend(self._wait(state, state.entry, age_exit, detect.earliest))
        return out

    def place(self, state: _State, d: _Decision) -> list[_State]:
        """The next instance's states after restart decision ``d``."""
        cyc = self.cycle
        assert d.wait is not None
        exit_ = d.exit or cyc.exit
        decision = exit_ + d.wait              # decision - anchor
        history = None if state.history is None else (*state.history, d.backed_off)
        start = decision + cyc.restart         # new start - anchor (lower end is open)
        entry = d.entry
        out: list[_State] = []
        if cyc.mode == "grid":
            grid = cyc.grid
            assert grid is not None
            p, a = grid.period, grid.eligible
            c_min = math.floor((start.earliest + a.earliest) / p + _EPS) + 1
            c_max = max(c_min, math.ceil((start.latest + a.latest) / p - _EPS))
            for c in range(c_min, c_max + 1):
                # ceil((start + a) / p) == c  <=>  (c - 1) p < start + a <= c p
                lo = max(start.earliest, (c - 1) * p - a.latest)
                hi = min(start.latest, c * p - a.earliest)
                if hi < lo - _EPS:
                    continue
                step = p * (c + grid.needed - 1)
                if d.updated:
                    since_update: Window | None = Window.at(step) + Window(
                        -decision.latest, -decision.earliest)
                elif state.since_update is not None and entry is not None:
                    since_update = state.since_update.shifted(step)
                else:
                    since_update = None
                out.append(_State(
                    count=state.count + 1, entry=entry,
                    anchor=state.anchor.shifted(step),
                    start=state.anchor + Window(lo, max(lo, hi)),
                    since_prev_exit=Window(step - exit_.latest, step - exit_.earliest),
                    since_update=since_update, step=step, waited=d.backed_off,
                    backoff=d.backoff, history=history,
                ))
            return out
        if d.updated:
            since_update = cyc.restart
        elif state.since_update is not None and entry is not None:
            since_update = state.since_update + start
        else:
            since_update = None
        new_start = state.anchor + start
        return [_State(
            count=state.count + 1, entry=entry, anchor=new_start, start=new_start,
            since_prev_exit=d.wait + cyc.restart, since_update=since_update, step=None,
            waited=d.backed_off, backoff=d.backoff, history=history,
        )]

    def first(self) -> _State:
        cyc = self.cycle
        if cyc.mode == "grid":
            grid = cyc.grid
            assert grid is not None
            anchor = Window(grid.eligible.earliest + (grid.needed - 1) * grid.period,
                            grid.eligible.latest + grid.needed * grid.period)
        else:
            anchor = Window.at(0.0)
        return _State(count=0, entry=None, anchor=anchor, start=Window.at(0.0),
                      since_prev_exit=None, since_update=None, step=None, waited=None,
                      backoff=None)

    def run(self, n: int) -> RestartSchedule:
        states = [self.first()]
        starts: dict[int, list[_State]] = {}
        killed: dict[int, Window] = {}
        stops: dict[int, tuple[Window, str]] = {}
        stopped_before: set[int] = set()
        for j in range(n):
            children: list[_State] = []
            for st in states:
                kill = st.anchor + self.cycle.kill
                for d in self.decide(st):
                    if d.wait is None:
                        exit_ = st.anchor + (d.exit or self.cycle.exit)
                        old = stops.get(j)
                        stops[j] = (exit_ if old is None else old[0].hull(exit_), d.reason)
                        continue
                    killed[j + 1] = kill if j + 1 not in killed else killed[j + 1].hull(kill)
                    children.extend(self.place(st, d))
            if j in stops:
                stopped_before.add(j + 1)
            states = _merged(children)
            if len(states) > _MAX_CLASSES and states[0].history is not None:
                # Every waited-or-not history doubles the classes: past this many, keep only
                # the hull per class (RestartSchedule.given falls back to it).
                states = _merged([replace(st, history=None) for st in states])
            if not states:
                break
            starts[j + 1] = states
            logger.debug("restart %d: %d timing classes", j + 1, len(states))
        restarts: list[Restart] = []
        for number, group in sorted(starts.items()):
            window = group[0].start
            for st in group[1:]:
                window = window.hull(st.start)
            flags = {st.waited for st in group}
            values = [st.backoff for st in group if st.backoff is not None]
            paths: dict[tuple[bool, ...], Window] | None = None
            if all(st.history is not None for st in group):
                paths = {}
                for st in group:
                    h = st.history or ()
                    paths[h] = st.start if h not in paths else paths[h].hull(st.start)
            restarts.append(Restart(
                number=number,
                started=window,
                killed=killed[number],
                backed_off=flags.pop() if len(flags) == 1 else None,
                backoff=Window(min(values), max(values)) if values else None,
                certain=not any(k <= number for k in stopped_before),
                paths=paths,
            ))
        stop_list = tuple(Stop(restarts=j, exited=w, reason=why)
                          for j, (w, why) in sorted(stops.items()))
        return RestartSchedule(restarts=tuple(restarts), stops=stop_list,
                               continues=bool(states))

