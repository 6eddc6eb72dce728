"""Container restart rules (KEP-5307) and RestartAllContainers (KEP-5532): timing/restart_rules."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_probes.errors import DeployError
from pytest_probes.timing import (
    MINIMUM_GRACE_PERIOD,
    PLEG_RELIST_PERIOD,
    Window,
    all_containers_restarting,
    exit_action,
    restart_all_containers,
)


def _pod(pod_policy: str | None, own: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "x"}
    if own is not None:
        container["restartPolicy"] = own
    if rules:
        container["restartPolicyRules"] = rules
    spec: dict[str, Any] = {"containers": [container]}
    if pod_policy is not None:
        spec["restartPolicy"] = pod_policy
    return {"kind": "Pod", "spec": spec}


def _rule(action: str, operator: str, values: list[int]) -> dict[str, Any]:
    return {"action": action, "exitCodes": {"operator": operator, "values": values}}


@pytest.mark.parametrize(("pod_policy", "own", "rules", "code", "action"), [
    # No container policy: the pod's decides (unset is Always).
    (None, None, [], 0, "Restart"),
    ("OnFailure", None, [], 0, "Stop"),
    ("OnFailure", None, [], 3, "Restart"),
    ("Never", None, [], 3, "Stop"),
    # The container's policy wins over the pod's.
    ("OnFailure", "Never", [], 3, "Stop"),
    ("Never", "OnFailure", [], 3, "Restart"),
    ("Never", "Always", [], 0, "Restart"),
    # Rules: In lists the codes that match, NotIn those that do not; the first match decides.
    ("Never", "Never", [_rule("Restart", "In", [42])], 42, "Restart"),
    ("Never", "Never", [_rule("Restart", "In", [42])], 7, "Stop"),
    ("OnFailure", "Never", [_rule("Restart", "In", [42])], 7, "Stop"),
    ("Never", "Never", [_rule("Restart", "NotIn", [0, 1])], 2, "Restart"),
    ("Never", "Never", [_rule("Restart", "NotIn", [0, 1])], 1, "Stop"),
    ("Never", "Never", [_rule("RestartAllContainers", "In", [42]),
                        _rule("Restart", "In", [42, 43])], 42, "RestartAllContainers"),
    ("Never", "Never", [_rule("RestartAllContainers", "In", [42]),
                        _rule("Restart", "In", [42, 43])], 43, "Restart"),
    # A rule with an unknown operator matches nothing; the container's policy applies.
    ("Never", "OnFailure", [_rule("Restart", "Maybe", [5])], 5, "Restart"),
    # Rules count only with a container restartPolicy (the API server requires one).
    ("Never", None, [_rule("Restart", "In", [42])], 42, "Stop"),
])
def test_exit_action_follows_container_should_restart(
    pod_policy: str | None, own: str | None, rules: list[dict[str, Any]], code: int, action: str,
) -> None:
    assert exit_action(_pod(pod_policy, own, rules), "c", code) == action


def test_exit_action_names_the_containers_a_pod_has() -> None:
    with pytest.raises(DeployError, match=r"no container 'x' in the pod; it has \['c'\]"):
        exit_action(_pod("Never", None, []), "x", 1)


def test_the_condition_follows_the_exit_within_one_relist() -> None:
    assert all_containers_restarting(allowance=1.0) == Window(0.0, PLEG_RELIST_PERIOD + 1.0)


def _restart_all_pod(inits: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"restartPolicy": "Never", "initContainers": inits, "containers": [
        {"name": "app", "image": "i"},
        {"name": "trigger", "image": "i", "restartPolicy": "Never", "restartPolicyRules": [
            {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [42]}}]},
    ]}}


def test_restart_all_containers_counts_each_cri_call_and_the_init_containers_run() -> None:
    pod = _restart_all_pod([{"name": "init", "image": "i"}])
    # Exit seen (relist + hop); kill the app (hop + its SIGTERM exit + hop for the task's
    # delete) and remove three containers (3 hops); the init container's start (create, start:
    # 2 hops), its exit seen (relist + hop), its run; the app's start (2 hops).
    assert restart_all_containers(pod, "app", trigger="trigger", init_run=Window(2.0, 3.0),
                                  exits_on_sigterm_after=0.0, allowance=1.0) == \
        Window(2.0, 2.0 + 2.0 + 3.0 + 4.0 + 3.0 + 2.0)
    # The trigger starts after the app: one more start.
    assert restart_all_containers(pod, "trigger", trigger="trigger", init_run=Window(2.0, 3.0),
                                  exits_on_sigterm_after=0.0, allowance=1.0).latest == 18.0


def test_restart_all_containers_kill_waits_at_most_the_minimum_grace_period() -> None:
    # killContainer raises the grace period of 0 to 2 s: an app ignoring SIGTERM runs that long.
    pod = _restart_all_pod([])
    slow = restart_all_containers(pod, "app", trigger="trigger", exits_on_sigterm_after=30.0,
                                  allowance=1.0)
    quick = restart_all_containers(pod, "app", trigger="trigger", exits_on_sigterm_after=0.0,
                                   allowance=1.0)
    assert slow.latest - quick.latest == MINIMUM_GRACE_PERIOD
    # Without init containers nothing waits for an exit to be seen.
    assert quick == Window(0.0, 2.0 + 2.0 + 2.0 + 2 * 1.0)


def test_restart_all_containers_names_the_containers_it_knows() -> None:
    pod = _restart_all_pod([{"name": "init", "image": "i"}])
    with pytest.raises(DeployError, match=r"no regular container 'init' in the pod; it has "
                                          r"\['app', 'trigger'\]"):
        restart_all_containers(pod, "init", trigger="trigger")
    with pytest.raises(DeployError, match="no container 'x'"):
        restart_all_containers(pod, "app", trigger="x")
