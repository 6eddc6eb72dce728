"""Upstream's "Probing restartable init container" e2e cases: probes on a native sidecar (issue 15).

Kubernetes' ``test/e2e/common/node/container_probe.go`` at v1.37.2, the ``Describe`` block
"Probing restartable init container" ([NodeConformance]): the cases of "Probing container" with
the probed container as an init container with ``restartPolicy: Always`` beside a main container.
Each test below is one of them, with upstream's probe spec, and the windows of
:mod:`pytest_probes.timing` (which reads a native sidecar's probes as a container's, with restart
policy ``Always``) in place of upstream's fixed waits. The scenarios are shared with
``test_upstream_probe_cases.py`` (:mod:`tests.live.upstream_cases`). The two gRPC cases wait for
the gRPC target (issue 15); ``docs/upstream-probe-cases.md`` maps every case.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_probes import Cluster, Timeline
from pytest_probes.deploy import Deployer
from tests.live import upstream_cases as cases

pytestmark = pytest.mark.probes


@pytest.fixture
def run(probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any,
        probes_cluster: Cluster) -> cases.Run:
    """The probed container is a native sidecar beside a main container."""
    return cases.Run(probes_timeline, probes_deploy, _probes_api, sidecar=True,
                     version=probes_cluster.k8s_version,
                     drain_limit=cases.exec_drain_limit(probes_cluster))


def test_sidecar_with_readiness_probe_should_not_be_ready_before_initial_delay(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container with readiness probe should not be ready
    before initial delay and never restart."""
    cases.readiness_not_ready_before_initial_delay(run)


def test_sidecar_with_readiness_probe_that_fails_should_never_be_ready_and_never_restart(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container with readiness probe that fails should never
    be ready and never restart."""
    cases.failing_readiness_never_ready(run)


def test_sidecar_should_be_restarted_with_a_exec_cat_tmp_health_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should be restarted with a exec
    "cat /tmp/health" liveness probe."""
    cases.exec_cat_health_restarted(run)


def test_sidecar_should_not_be_restarted_with_a_exec_cat_tmp_health_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should *not* be restarted with a exec
    "cat /tmp/health" liveness probe."""
    cases.exec_cat_health_not_restarted(run)


def test_sidecar_should_be_restarted_with_a_healthz_http_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing restartable init container should be restarted with a /healthz http
    liveness probe."""
    cases.http_healthz_restarted(run)


def test_sidecar_should_not_be_restarted_with_a_tcp_8080_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing restartable init container should *not* be restarted with a tcp:8080
    liveness probe."""
    cases.tcp_liveness_not_restarted(run)


def test_sidecar_should_have_monotonically_increasing_restart_count(run: cases.Run) -> None:
    """Upstream: Probing restartable init container should have monotonically increasing restart
    count."""
    cases.restart_count_increases_monotonically(run)


def test_sidecar_should_not_be_restarted_with_a_healthz_http_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should *not* be restarted with a /healthz
    http liveness probe."""
    cases.http_liveness_not_restarted(run)


def test_sidecar_should_be_restarted_with_an_exec_liveness_probe_with_timeout(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should be restarted with an exec liveness
    probe with timeout."""
    cases.exec_liveness_timeout_restarted(run)


def test_sidecar_should_not_be_ready_with_an_exec_readiness_probe_timeout(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should not be ready with an exec readiness
    probe timeout."""
    cases.exec_readiness_timeout_never_ready(run)


def test_sidecar_should_be_restarted_with_a_failing_exec_liveness_probe_past_the_timeout(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should be restarted with a failing exec
    liveness probe that took longer than the timeout."""
    cases.exec_liveness_failing_past_timeout_restarted(run)


def test_sidecar_should_be_restarted_with_a_local_redirect_http_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should be restarted with a local redirect
    http liveness probe."""
    cases.local_redirect_restarted(run)


def test_sidecar_should_not_be_restarted_with_a_non_local_redirect_http_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should *not* be restarted with a non-local
    redirect http liveness probe."""
    cases.non_local_redirect_not_restarted(run)


def test_sidecar_should_be_restarted_startup_probe_fails(run: cases.Run) -> None:
    """Upstream: Probing restartable init container should be restarted startup probe fails."""
    cases.startup_probe_failing_restarted(run)


def test_sidecar_should_not_be_restarted_by_liveness_probe_because_startup_probe_delays_it(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should *not* be restarted by liveness probe
    because startup probe delays it."""
    cases.startup_probe_holds_back_liveness(run)


def test_sidecar_should_be_restarted_by_liveness_probe_after_startup_probe_enables_it(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should be restarted by liveness probe after
    startup probe enables it."""
    cases.liveness_after_startup_restarted(run)


def test_sidecar_should_be_ready_immediately_after_startup_probe_succeeds(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should be ready immediately after
    startupProbe succeeds."""
    cases.ready_after_startup_probe_succeeds(run)


def test_sidecar_should_override_timeout_grace_period_seconds_when_liveness_probe_field_is_set(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should override timeoutGracePeriodSeconds
    when LivenessProbe field is set."""
    cases.liveness_grace_period_overrides_the_pods(run)


def test_sidecar_should_override_timeout_grace_period_seconds_when_startup_probe_field_is_set(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should override timeoutGracePeriodSeconds
    when StartupProbe field is set."""
    cases.startup_grace_period_overrides_the_pods(run)


def test_sidecar_should_mark_readiness_on_pods_to_false_while_pod_is_terminating(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should mark readiness on pods to false while
    pod is in progress of terminating when a pod has a readiness probe."""
    cases.readiness_false_while_terminating(run, with_liveness=False)


def test_sidecar_should_mark_readiness_false_and_disable_liveness_probes_while_terminating(
    run: cases.Run,
) -> None:
    """Upstream: Probing restartable init container should mark readiness on pods to false and
    disable liveness probes while pod is in progress of terminating."""
    cases.readiness_false_while_terminating(run, with_liveness=True)


def test_sidecar_should_not_be_restarted_with_a_grpc_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing restartable init container should *not* be restarted with a GRPC
    liveness probe."""
    cases.grpc_liveness_not_restarted(run)


def test_sidecar_should_be_restarted_with_a_grpc_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing restartable init container should be restarted with a GRPC liveness
    probe."""
    cases.grpc_liveness_restarted(run)
