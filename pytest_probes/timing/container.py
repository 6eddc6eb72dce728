"""Container timing: the windows of one container's probe-driven transitions.

:class:`ContainerTiming` reads a container's probes from a pod spec and answers when the kubelet
marks it started or gives up on it, reports and acts on a failing liveness probe, turns it ready
or not ready, how long a kill takes, when the restart after it comes, and (through the back-off
simulation, :mod:`pytest_probes.timing.backoff`) a whole restart schedule. The kubelet rules each
method follows, with their sources: ``docs/timing-rules.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pytest_probes.errors import DeployError
from pytest_probes.timing.backoff import (
    DEFAULT_CRASHLOOP_BACKOFF,
    CrashLoopBackOff,
    _Cycle,
    _Grid,
    _Simulation,
)
from pytest_probes.timing.kubelet import (
    CONTAINER_START_CALLS,
    CRI_RUNTIME_REQUEST_TIMEOUT,
    DEFAULT_ALLOWANCE,
    DEFAULT_TERMINATION_GRACE_PERIOD,
    MINIMUM_GRACE_PERIOD,
    PLEG_RELIST_PERIOD,
    POD_RESYNC,
    SYNC_LOOP_TICK,
    StartReference,
    backoff_requeue_late,
    delay_from,
)
from pytest_probes.timing.schedule import RestartSchedule
from pytest_probes.timing.spec import ProbeSpec, _pod_spec_of
from pytest_probes.timing.window import _EPS, TimingError, Window, _as_window, _fmt


def _first_tick_to_see(change_from: float, response: Window) -> float:
    """The earliest probe tick whose result can reflect an endpoint change at ``change_from``.

    A probe's request reaches the endpoint some time after its tick (the worker's goroutine
    wakes, the prober dials), within the probe's response window: one that has not been answered
    by then times out (``prober.go`` ``runProbe`` with ``timeoutSeconds``), which counts as a
    failure too. So a tick up to ``response.latest`` before the change can already see it (under
    load, seen on kind: a liveness kill 0.6 s before ``fail_from`` + the ticks allowed). Its
    result still comes no earlier than the change itself.
    """
    return change_from - response.latest


@dataclass(frozen=True)
class ContainerTiming:
    """The probe-timing facts of one container, and the windows they imply.

    Build it with :meth:`from_pod_spec`. All windows are relative to the container's start as
    the API shows it (``state.running.startedAt``, truncated to the second, the timeline's
    ``ContainerStarted``) unless a method says otherwise: the kubelet counts
    ``initialDelaySeconds`` from that same second (:func:`~pytest_probes.timing.delay_from`).

    Attributes:
        name: The container name.
        liveness: The liveness probe, or ``None``.
        readiness: The readiness probe, or ``None``.
        startup: The startup probe, or ``None``.
        pod_grace: The pod's ``terminationGracePeriodSeconds`` (default 30).
        restart_policy: ``Always``, ``OnFailure`` or ``Never`` (``Always`` for a native sidecar).
        has_pre_stop: Whether the container has a ``preStop`` hook (widens kill durations).
        allowance: Seconds added to ``latest`` per kubelet hop (:data:`DEFAULT_ALLOWANCE`).
        backoff: The kubelet's crash-loop back-off settings (default 10 s doubling to 300 s;
            a configured cluster's: :attr:`pytest_probes.cluster.Cluster.crashloop_backoff`).
        later_starts: How many of the pod's containers the kubelet starts after this one in
            the same sync when the pod starts (:meth:`from_pod_spec` counts the containers
            listed after it). See :attr:`probe_lag`.
    """

    name: str
    liveness: ProbeSpec | None = None
    readiness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    pod_grace: float = DEFAULT_TERMINATION_GRACE_PERIOD
    restart_policy: str = "Always"
    has_pre_stop: bool = False
    allowance: float = DEFAULT_ALLOWANCE
    backoff: CrashLoopBackOff = DEFAULT_CRASHLOOP_BACKOFF
    later_starts: int = 0

    def __post_init__(self) -> None:
        if self.restart_policy not in ("Always", "OnFailure", "Never"):
            raise TimingError(
                f"restartPolicy must be Always, OnFailure or Never, got {self.restart_policy!r}",
                container=self.name,
            )
        if self.allowance < 0 or self.pod_grace < 0 or self.later_starts < 0:
            raise TimingError("allowance, pod grace period and later_starts must be >= 0",
                              container=self.name)

    @classmethod
    def from_pod_spec(
        cls,
        pod_spec: Mapping[str, Any],
        container: str | None = None,
        *,
        allowance: float = DEFAULT_ALLOWANCE,
        backoff: CrashLoopBackOff = DEFAULT_CRASHLOOP_BACKOFF,
    ) -> ContainerTiming:
        """Read a container's probes from a pod spec or a manifest holding one.

        Args:
            pod_spec: A pod spec (with ``containers``), a Pod, or a workload manifest (its
                ``spec.template.spec``; a CronJob's ``spec.jobTemplate.spec.template.spec``).
            container: The container name; may be omitted when the pod has one container. A
                native sidecar (an init container with ``restartPolicy: Always``) is found too.
            allowance: See :attr:`allowance`.
            backoff: See :attr:`backoff`.

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
                allowance=allowance, backoff=backoff,
                later_starts=0 if sidecar else len(containers) - 1 - containers.index(chosen),
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
    def probe_lag(self) -> float:
        """Latest delay before the probe workers see this container after it started.

        A probe worker waits until the status manager's pod status has the container's ID
        (``prober/worker.go`` ``doProbe``: "Wait for more information"), and the kubelet sets
        that status at the start of a sync (``kubelet.go`` ``SyncPod``: ``SetPodStatus``). When
        the pod starts, one sync starts its containers one after another
        (``kuberuntime_manager.go`` ``SyncPod``, "start containers in
        podContainerChanges.ContainersToStart"), so the sync that shows this container follows
        the starts of the :attr:`later_starts` containers listed after it: :attr:`status_lag`
        plus one :attr:`start_latency` each. A container restarted on its own starts with no
        others; its later instances' windows are that much wider at their upper end.
        """
        return self.status_lag + self.later_starts * self.start_latency

    @property
    def stop_return(self) -> float:
        """Latest delay from a killed container's exit to the end of its ``StopContainer`` call.

        The runtime deletes the exited task before it marks the container stopped, and
        ``StopContainer`` waits for that (containerd ``internal/cri/server/events.go``
        ``handleContainerExit``: ``task.Delete``, then ``Stop()``; ``container_stop.go``
        ``waitContainerStop``); the kubelet's ``SyncPod`` starts the next instance only after
        the kill returns. One allowance.
        """
        return self.allowance

    @property
    def start_latency(self) -> float:
        """Latest delay from the kubelet's decision to start a container to its start.

        One allowance per CRI call (:data:`~pytest_probes.timing.kubelet.CONTAINER_START_CALLS`).
        """
        return CONTAINER_START_CALLS * self.allowance

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
        """Probe start to result.

        Within ``timeoutSeconds``, except that an exec probe's result can come later, up to
        :data:`CRI_RUNTIME_REQUEST_TIMEOUT` past it, while a child of its command holds the output
        (:func:`~pytest_probes.timing.exec_response`).
        """
        if response is None:
            return Window(0.0, probe.timeout)
        w = _as_window(response)
        limit = probe.timeout + (CRI_RUNTIME_REQUEST_TIMEOUT if probe.handler == "exec" else 0.0)
        if w.earliest < 0 or w.latest > limit + _EPS:
            raise TimingError(
                f"probe_response {w} must lie within 0-{_fmt(limit)} s (timeoutSeconds"
                + (", and the CRI request timeout for an exec probe)" if limit > probe.timeout
                   else ")"),
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
        return self._startup_success(started_from, probe_response, start="api")

    def _startup_success(self, started_from: float, probe_response: Window | float | None,
                         start: StartReference) -> Window:
        if self.startup is None:
            return Window.at(0.0)
        sp = self.startup
        r = self._response(sp, probe_response)
        lo = max(started_from, delay_from(sp.initial_delay, start=start))
        hi = max(lo, self.probe_lag)
        spacing = max(sp.period, r.latest)
        # The failure-threshold-th failing tick comes before this in every timing.
        last_failure_tick = (max(sp.initial_delay, self.probe_lag) + sp.period
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

    def _startup_grid(self, probe_response: Window | float | None,
                      start: StartReference = "api") -> _Grid:
        sp = self._need(self.startup, "startup")
        r = self._response(sp, probe_response)
        return _Grid(Window(delay_from(sp.initial_delay, start=start),
                            max(sp.initial_delay, self.probe_lag)),
                     sp.period, sp.failure_threshold, r)

    # ---------------------------------------------------------------- liveness

    def _liveness_grid(self, fail_from: float, *, startup_from: float, prior_failures: int,
                       probe_response: Window | float | None,
                       start: StartReference = "api") -> _Grid:
        lp = self._need(self.liveness, "liveness")
        started = self._startup_success(startup_from, None, start)
        response = self._response(lp, probe_response)
        gate = max(delay_from(lp.initial_delay, start=start), started.earliest)
        lo = max(fail_from, gate)
        hi = max(fail_from, lp.initial_delay, started.latest, self.probe_lag)
        needed = max(1, lp.failure_threshold - max(0, prior_failures))
        seen = max(_first_tick_to_see(fail_from, response), gate)
        return _Grid(Window(lo, hi), lp.period, needed, response, early=lo - seen)

    def _kill_window(self, grid: _Grid) -> Window:
        """Killing event after ``needed`` failing ticks counted from ``grid.eligible``."""
        spacing = max(grid.period, grid.response.latest)
        # A counted failure's result comes no earlier than the change it reports.
        earliest = max(grid.eligible.earliest - grid.early + (grid.needed - 1) * grid.period
                       + grid.response.earliest, grid.eligible.earliest)
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
        counted tick lies in ``[10, 15)``, or from 9 s if its request reaches the app after 10 s
        (:func:`_first_tick_to_see`), the third 10 s later, in ``[19, 25)``; the result takes
        up to the timeout (1 s) and the kill reaction (PLEG relist 1 s + allowance). So
        ``19 - 25 + 1 + 1 + allowance`` s.

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
        lo = max(_first_tick_to_see(change_from, r), delay_from(rp.initial_delay),
                 started.earliest)
        hi = max(change_from, rp.initial_delay, started.latest, self.probe_lag)
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
        earliest = max(lo + (needed - 1 - injected) * rp.period + r.earliest, ready_from)
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
        threshold 3, failing from 10 s: ``19 - 25 + timeout + allowance`` s.

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
        earliest = max(lo + (rp.failure_threshold - 1) * rp.period + r.earliest, fail_from)
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

        Without back-off the restart follows the exit in the same ``SyncPod``, once
        ``StopContainer`` returns (:attr:`stop_return`). With ``backoff``
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
        start = Window(0.0, self.start_latency)
        if backoff is None or backoff <= 0:
            return exit_ + Window(0.0, self.stop_return) + start
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
        for good (the pod completes). The rules and their sources: ``docs/timing-rules.md``.

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
                restart=Window(0.0, self.start_latency),
                detect=Window(0.0, PLEG_RELIST_PERIOD + self.allowance),
                wait_slack=self._wait_slack,
            )
        else:
            if kill_duration is None:
                raise TimingError("pass kill_duration (see kill_duration())", container=self.name)
            dur = _as_window(kill_duration)
            # The kill returns once the task is deleted; then the create and the start.
            after_exit = Window(0.0, self.stop_return + self.start_latency)
            grid: _Grid | None = None
            # The simulation places each instance at its precise start (after the exit, the
            # back-off and the start calls), not at the API's truncated startedAt.
            if killer == "startup":
                grid = self._startup_grid(probe_response, start="runtime")
            elif fail_from is not None:
                grid = self._liveness_grid(fail_from, startup_from=startup_from,
                                           prior_failures=0, probe_response=probe_response,
                                           start="runtime")
            elif run_until_kill is None:
                raise TimingError("pass fail_from (probe-paced kills) or run_until_kill",
                                  container=self.name)
            # A probe that returns within its period keeps the ticks on the grid (a tick that
            # fires meanwhile is buffered and consumed at once).
            if grid is not None and grid.response.latest <= grid.period + _EPS:
                kill = Window(grid.response.earliest, grid.response.latest + self.kill_reaction)
                cycle = _Cycle(mode="grid", kill=kill, exit=kill + dur,
                               restart=after_exit,
                               detect=Window.at(0.0), wait_slack=self._wait_slack, grid=grid)
            else:
                # Ticks can be skipped when a probe outlasts its period: fall back to independent
                # kill times (still true bounds, only looser).
                run = (_as_window(run_until_kill) if run_until_kill is not None
                       else self._kill_window(grid) if grid is not None else Window.at(0.0))
                cycle = _Cycle(mode="fixed", kill=run, exit=run + dur,
                               restart=after_exit,
                               detect=Window.at(0.0), wait_slack=self._wait_slack)
        sim = _Simulation(cycle, policy=self.restart_policy, exit_code=exit_code,
                          backoff=self.backoff)
        return sim.run(n)
