"""Waits that cannot succeed end at once with a diagnosis, on a real cluster.

Each case deploys a pod that can never run — its image cannot be pulled, it refers to a
ConfigMap that does not exist, or no node can take it — and checks that both ways of waiting end
as soon as the cluster shows the cause instead of running out their timeout:
``probes_deploy(..., wait="running")`` with a :class:`~pytest_probes.errors.DeployError`, and an
assertion helper with a :class:`~pytest_probes.errors.DiagnosedFailure`. The message must name the
pod, the cause and the fix, and come within :data:`~tests.live.helpers.REACTION` of the cause's
server stamp (how long the kubelet or the scheduler take to get there is theirs). A helper asked
about a Service that does not exist ends the same way once the pod is Ready. The seconds each took
are printed (run with ``-s``) and reported.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import pytest

from pytest_probes import (
    DiagnosedFailure,
    Timeline,
    assert_endpoint_added_within,
    assert_ready_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.errors import DeployError
from tests.live.helpers import FAST, REACTION, TIMEOUT, reaction

pytestmark = pytest.mark.probes

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "doomed", "labels": {"app": "doomed"}},
    "spec": {
        "containers": [{
            "name": "app",
            "image": "probes-target",
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
        }],
    },
}


def _pod(change: str) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    if change == "missing-image":
        container["image"] = "localhost:1/pytest-probes/no-such-image:1"
        container["imagePullPolicy"] = "IfNotPresent"
    elif change == "missing-configmap":
        container["env"] = [{"name": "SETTING", "valueFrom": {
            "configMapKeyRef": {"name": "no-such-config", "key": "setting"}}}]
    elif change == "unmatched-node-selector":
        spec["nodeSelector"] = {"pytest-probes.io/no-such-label": "anything"}
    elif change == "huge-requests":
        container["resources"] = {"requests": {"cpu": "1000", "memory": "10Ti"}}
    return pod


CASES = {
    "missing-image": ("ErrImagePull|ImagePullBackOff", "load_image"),
    "missing-configmap": ("CreateContainerConfigError.*no-such-config",
                          "create (it|the ConfigMap)"),
    "unmatched-node-selector": ("node affinity/selector|didn't match", "nodeSelector"),
    "huge-requests": ("Insufficient cpu|Insufficient memory", "resource requests"),
}


def _took(what: str, started: float) -> float:
    """Seconds since ``started``, printed (run with ``-s``)."""
    took = time.monotonic() - started
    print(f"{what}: failed after {took:.1f} s")
    return took


def _assert_fast(took: float, message: str) -> None:
    assert took < FAST, f"took {took:.1f} s of {TIMEOUT:g}: {message}"


def _check(what: str, tl: Timeline, started: float, message: str, where: str, cause: str,
           fix: str) -> None:
    """The message names the pod, the cause and the fix, and came as soon as the cause showed."""
    answered = reaction(tl, "doomed", time.time())
    _took(what, started)
    print(f"{what}: answered {answered:.1f} s after the cluster showed the cause")
    assert where in message, message
    assert re.search(cause, message), message
    assert re.search(fix, message, re.I), message
    assert answered < REACTION, (
        f"answered {answered:.1f} s after the cluster showed the cause (allowed {REACTION:g} s):"
        f" {message}")


@pytest.mark.parametrize("case", list(CASES))
def test_deploy_wait_fails_fast_with_a_diagnosis(
    probes_deploy: Deployer, probes_timeline: Timeline, case: str
) -> None:
    started = time.monotonic()
    with pytest.raises(DeployError) as info:
        probes_deploy(_pod(case), wait="running", timeout=TIMEOUT)
    _check(f"deploy wait, {case}", probes_timeline, started, str(info.value),
           f"{probes_timeline.namespace}/doomed", *CASES[case])


@pytest.mark.parametrize("case", list(CASES))
def test_a_helper_wait_fails_fast_with_a_diagnosis(
    probes_deploy: Deployer, probes_timeline: Timeline, case: str
) -> None:
    probes_deploy(_pod(case), wait="none")
    started = time.monotonic()
    with pytest.raises(DiagnosedFailure) as info:
        assert_ready_within(probes_timeline, "doomed", within=TIMEOUT)
    _check(f"assert_ready_within, {case}", probes_timeline, started, str(info.value),
           f"pod {probes_timeline.namespace}/doomed: stopped waiting early", *CASES[case])


def test_an_endpoint_helper_on_a_missing_service_fails_fast(
    probes_deploy: Deployer, probes_timeline: Timeline
) -> None:
    probes_deploy(_pod("as-is"), wait="ready")
    started = time.monotonic()
    with pytest.raises(DiagnosedFailure) as info:
        assert_endpoint_added_within(probes_timeline, "doomed", service="doomed", within=TIMEOUT)
    took = _took("assert_endpoint_added_within, missing Service", started)
    message = str(info.value)
    assert f"pod {probes_timeline.namespace}/doomed" in message
    assert "Service 'doomed' has no endpoints at all" in message
    assert f"Service {probes_timeline.namespace}/doomed does not exist" in message
    _assert_fast(took, message)
