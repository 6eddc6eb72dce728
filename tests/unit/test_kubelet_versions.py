"""Which kubelet releases differ, by version (pytest_probes.kubelet_versions)."""

from __future__ import annotations

import pytest

from pytest_probes.kubelet_versions import (
    crashloop_backoff,
    exec_probes_cancelled_while_terminating,
    go_duration,
    kubelet_restart_resets_probe_status,
    parse_version,
)
from pytest_probes.timing import CrashLoopBackOff


@pytest.mark.parametrize(("version", "parsed"), [
    ("v1.36.3", (1, 36, 3)), ("1.37.2", (1, 37, 2)), ("v1.38.0-beta.0+abc", (1, 38, 0)),
])
def test_parse_version(version: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(version) == parsed


@pytest.mark.parametrize("version", ["", "v1.36", "latest", "1.x.3"])
def test_parse_version_rejects_what_is_not_a_version(version: str) -> None:
    with pytest.raises(ValueError, match=r"is not a Kubernetes version such as v1\.36\.3"):
        parse_version(version)


@pytest.mark.parametrize(("version", "cancelled"), [
    ("v1.33.13", False),
    ("v1.34.4", False),
    ("v1.35.0", True),
    ("v1.35.4", True),
    ("v1.36.0", False),
    ("v1.36.2", False),
    ("v1.36.3", True),
    ("v1.37.0", False),
    ("v1.37.2", False),
])
def test_exec_probes_cancelled_while_terminating_follows_kubernetes_140881(
    version: str, cancelled: bool
) -> None:
    assert exec_probes_cancelled_while_terminating(version) is cancelled


CAP = {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}}
REDUCED = {"ReduceDefaultCrashLoopBackOffDecay": True}


@pytest.mark.parametrize(("version", "gates", "kubelet", "initial", "cap"), [
    # kubelet.go newCrashLoopBackOff: 10 s doubling to 300 s by default.
    ("v1.33.13", {}, {}, 10, 300),
    ("v1.37.2", {}, {}, 10, 300),
    # KubeletCrashLoopBackOffMax (beta, on from 1.35): the cap is maxContainerRestartPeriod, the
    # first value at most the cap.
    ("v1.37.2", {}, CAP, 10, 10),
    ("v1.35.0", {}, {"crashLoopBackOff": {"maxContainerRestartPeriod": "5s"}}, 5, 5),
    ("v1.37.2", {}, {"crashLoopBackOff": {"maxContainerRestartPeriod": "1m30s"}}, 10, 90),
    # Before 1.35 the gate is alpha and off: the field is not read (the kubelet refuses it).
    ("v1.34.4", {}, CAP, 10, 300),
    ("v1.33.13", {"KubeletCrashLoopBackOffMax": True}, CAP, 10, 10),
    ("v1.37.2", {"KubeletCrashLoopBackOffMax": False}, CAP, 10, 300),
    # ReduceDefaultCrashLoopBackOffDecay (alpha from 1.33): 1 s doubling to 60 s ...
    ("v1.33.13", REDUCED, {}, 1, 60),
    # ... but from 1.35 KubeletCrashLoopBackOffMax is on and its field defaults to 300 s
    # (v1beta1/defaults.go), which overrides the reduced cap unless set.
    ("v1.37.2", REDUCED, {}, 1, 300),
    ("v1.37.2", REDUCED, {"crashLoopBackOff": {"maxContainerRestartPeriod": "60s"}}, 1, 60),
    ("v1.37.2", {**REDUCED, "KubeletCrashLoopBackOffMax": False}, {}, 1, 60),
])
def test_crashloop_backoff_follows_new_crash_loop_back_off(
        version: str, gates: dict[str, bool], kubelet: dict[str, object], initial: float,
        cap: float) -> None:
    assert crashloop_backoff(version, gates, kubelet) == CrashLoopBackOff(initial, cap)


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("2.5s", 2.5),
])
def test_go_duration(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "10 s", "s10", "1x"])
def test_go_duration_rejects_what_is_not_one(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        go_duration(text)
@pytest.mark.parametrize(("version", "resets"), [
    ("v1.33.13", True), ("v1.34.4", True), ("v1.35.0", False), ("v1.36.3", False),
    ("v1.37.2", False),
])
def test_kubelet_restart_resets_probe_status_until_1_35(version: str, resets: bool) -> None:
    assert kubelet_restart_resets_probe_status(version) is resets
