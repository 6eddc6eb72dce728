"""Behaviours that differ between kubelet releases, by version, each with its upstream source.

The timing math (:mod:`pytest_probes.timing`) holds the rules every supported kubelet follows;
this module holds the places where releases part ways, so that a test can assert what the
running version does instead of skipping it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytest_probes.timing import (
    CRASHLOOP_INITIAL_BACKOFF,
    CRASHLOOP_MAX_BACKOFF,
    REDUCED_INITIAL_BACKOFF,
    REDUCED_MAX_BACKOFF,
    CrashLoopBackOff,
)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_version(version: str) -> tuple[int, int, int]:
    """Turn ``v1.36.3`` (or ``1.36.3``, ``v1.36.3-rc.1+abc``) into ``(1, 36, 3)``.

    Raises:
        ValueError: The text does not start with a ``major.minor.patch`` version.
    """
    match = _VERSION.match(version.strip())
    if match is None:
        raise ValueError(
            f"{version!r} is not a Kubernetes version such as v1.36.3 (the API server's "
            "gitVersion)"
        )
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def exec_probes_cancelled_while_terminating(version: str) -> bool:
    """Whether this kubelet cancels the exec probes of a pod that is terminating.

    From v1.35.0 the probe workers run on the pod worker's sync context
    (kubernetes/kubernetes#130487), which the pod worker cancels when the pod starts terminating.
    Every exec probe after that fails at once with ``rpc error: code = Canceled desc = context
    canceled``; the kubelet posts "Readiness probe errored and resulted in unknown state" and
    throws the result away, so a terminating pod whose readiness fails stays Ready until its
    container stops (kubernetes/kubernetes#140881). HTTP, TCP and gRPC probes do not take that
    context and are not affected. v1.36.0-v1.36.2 gave each sync a fresh context and were not
    affected; v1.36.3 is again (#140066). v1.37.0 detaches the workers' context with
    ``context.WithoutCancel`` (#140882; ``pkg/kubelet/prober/prober_manager.go`` ``AddPod``).
    Backports to 1.35 and 1.36 (#141005, #141006) were open when this was written: a later
    patch release that carries one turns the live test of this behaviour red, which is how a
    changed behaviour should show.

    Args:
        version: The kubelet's (or API server's) version, ``v1.36.3``.
    """
    found = parse_version(version)
    if found[:2] == (1, 35):
        return True
    if found[:2] == (1, 36):
        return found >= (1, 36, 3)
    return False


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """Seconds of a Go duration as a KubeletConfiguration holds it (``10s``, ``1m30s``).

    Raises:
        ValueError: Not a Go duration.
    """
    value = str(text).strip()
    parts = _GO_DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration such as 10s, 1m30s or 500ms")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def crashloop_backoff(
    version: str,
    feature_gates: Mapping[str, bool] | None = None,
    kubelet_config: Mapping[str, Any] | None = None,
) -> CrashLoopBackOff:
    """The crash-loop back-off a kubelet of this version and configuration uses.

    ``kubelet.go`` ``newCrashLoopBackOff`` (the same in 1.33 and 1.37): 10 s doubling to 300 s;
    with ``ReduceDefaultCrashLoopBackOffDecay`` (alpha, off, from 1.33) 1 s doubling to 60 s;
    then, with ``KubeletCrashLoopBackOffMax`` (alpha off from 1.32, beta on from 1.35;
    ``pkg/features/kube_features.go``), the cap is ``crashLoopBackOff.maxContainerRestartPeriod``
    and the first value at most that. The kubelet defaults that field to 300 s whenever the gate is
    on (``pkg/kubelet/apis/config/v1beta1/defaults.go``), so from 1.35 the reduced decay alone
    starts at 1 s but is capped at 300 s, not 60 s, unless the field is set.

    Args:
        version: The kubelet's version (``v1.37.2``).
        feature_gates: The gates set in its configuration (unset gates take the version's
            default).
        kubelet_config: Its KubeletConfiguration fields as set (only ``crashLoopBackOff`` is read).

    Raises:
        ValueError: ``maxContainerRestartPeriod`` is not a duration.
    """
    gates = dict(feature_gates or {})
    found = parse_version(version)
    reduced = gates.get("ReduceDefaultCrashLoopBackOffDecay", False)
    max_gate = gates.get("KubeletCrashLoopBackOffMax", found >= (1, 35, 0))
    initial, cap = CRASHLOOP_INITIAL_BACKOFF, CRASHLOOP_MAX_BACKOFF
    if reduced:
        initial, cap = REDUCED_INITIAL_BACKOFF, REDUCED_MAX_BACKOFF
    if max_gate:
        section = (kubelet_config or {}).get("crashLoopBackOff") or {}
        period = section.get("maxContainerRestartPeriod") if isinstance(section, Mapping) else None
        cap = CRASHLOOP_MAX_BACKOFF if period is None else go_duration(str(period))
        initial = min(initial, cap)
    return CrashLoopBackOff(initial=initial, cap=cap)


def kubelet_restart_resets_probe_status(version: str) -> bool:
    """Whether restarting this kubelet turns its running containers not started and not ready.

    Up to 1.34 the gate ``ChangeContainerStatusOnKubeletRestart`` is GA and on: a restarted
    kubelet has no probe results, so each running container with a startup probe counts as not
    started until that probe passes again, and each with a readiness probe as not ready until
    it passes ``successThreshold`` times again; the pod's ``Ready`` flips to False meanwhile
    (``pkg/kubelet/prober/prober_manager.go`` ``UpdatePodStatus`` and ``isContainerStarted``,
    ``worker.go`` ``doProbe`` setting the readiness worker's ``initialValue`` Failure, v1.33.13).
    From 1.35 the gate is deprecated and off (KEP-4781): a container that started over ten
    seconds before the kubelet (``kubeletRestartGracePeriod``) keeps its ``Started``, keeps
    ``Ready`` until a probe result says otherwise, and the readiness worker does not seed a
    failure (``prober_manager.go`` ``setReadyStateOnKubeletRestart``, ``kubelet_pods.go``
    ``convertToAPIContainerStatuses``, ``worker.go`` ``doProbe``, v1.37.2;
    ``pkg/features/kube_features.go``). A cluster that turns the gate back on gets the old
    behaviour; this answers for the defaults.

    Args:
        version: The kubelet's (or API server's) version, ``v1.35.0``.
    """
    return parse_version(version)[:2] < (1, 35)
