"""A kubelet restart: when the probe workers of the new kubelet run, and what they do to Ready.

Which versions reset a running container's status on a restart (before 1.35; KEP-4781):
:func:`pytest_probes.kubelet_versions.kubelet_restart_resets_probe_status`. Sources:
``pkg/kubelet/prober`` at v1.33.13 and v1.37.2.
"""

from __future__ import annotations

from pytest_probes.timing.container import ContainerTiming
from pytest_probes.timing.window import TimingError, Window


def first_probe_after_kubelet_start(period: float) -> Window:
    """When a probe worker made by a freshly started kubelet first probes, after it is made.

    Within one ``periodSeconds`` of the kubelet's start a new worker first sleeps a random part
    of the period, "If kubelet restarted the probes could be started in rapid succession"
    (``pkg/kubelet/prober/worker.go`` ``run``, 1.33 to 1.37); its first ``doProbe`` follows.
    """
    return Window(0.0, period)


def ready_again_after_kubelet_restart(timing: ContainerTiming) -> Window:
    """When ``Ready`` returns after a kubelet restart reset it (before 1.35), from the reset.

    The reset is the readiness worker's first run, which seeds a Failure (``worker.go``
    ``doProbe``: ``initialValue``); ``successThreshold`` successes in a row then make the
    container ready, as after a start (:meth:`ContainerTiming.readiness_gain` bounds the
    latest). The earliest is 0: every sync of a not-ready container triggers an immediate
    readiness run (``prober_manager.go`` ``UpdatePodStatus``: ``manualTriggerCh``), and the new
    kubelet syncs the pod several times in a row (its first relist, the startup probe's result
    turning Unknown and then Success), so the successes may all come within a moment (seen on
    v1.33.13: threshold 3, period 2 s, Ready again within 2 s of the reset).

    Raises:
        TimingError: The container has no readiness probe.
    """
    if timing.readiness is None:
        raise TimingError(f"container {timing.name!r} has no readiness probe",
                          container=timing.name)
    return Window(0.0, timing.readiness_gain().latest)
