"""Upstream's "Probing container" e2e cases that no other live test of ours covers (issue 15).

Kubernetes' ``test/e2e/common/node/container_probe.go`` at v1.37.2, the ``Describe`` block
"Probing container": each test below is one of its cases, with upstream's probe spec, and the
windows of :mod:`pytest_probes.timing` in place of upstream's fixed waits. The scenarios live in
:mod:`tests.live.upstream_cases`, shared with the native-sidecar block
(``test_upstream_sidecar_probe_cases.py``). The cases an older test already covers name their
upstream case in that test's docstring; ``docs/upstream-probe-cases.md`` maps them all.
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
    """The probed container is the pod's only container."""
    return cases.Run(probes_timeline, probes_deploy, _probes_api, sidecar=False,
                     version=probes_cluster.k8s_version,
                     drain_limit=cases.exec_drain_limit(probes_cluster))


def test_with_readiness_probe_should_not_be_ready_before_initial_delay_and_never_restart(
    run: cases.Run,
) -> None:
    """Upstream: Probing container with readiness probe should not be ready before initial delay
    and never restart [Conformance]."""
    cases.readiness_not_ready_before_initial_delay(run)


def test_should_not_be_restarted_with_a_exec_cat_tmp_health_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should *not* be restarted with a exec "cat /tmp/health"
    liveness probe [Conformance]."""
    cases.exec_cat_health_not_restarted(run)


def test_should_not_be_restarted_with_a_tcp_8080_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing container should *not* be restarted with a tcp:8080 liveness probe
    [Conformance]."""
    cases.tcp_liveness_not_restarted(run)


def test_should_not_be_restarted_with_a_healthz_http_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing container should *not* be restarted with a /healthz http liveness probe
    [Conformance]."""
    cases.http_liveness_not_restarted(run)


def test_should_be_restarted_with_an_exec_liveness_probe_with_timeout(run: cases.Run) -> None:
    """Upstream: Probing container should be restarted with an exec liveness probe with
    timeout."""
    cases.exec_liveness_timeout_restarted(run)


def test_should_not_be_ready_with_an_exec_readiness_probe_timeout(run: cases.Run) -> None:
    """Upstream: Probing container should not be ready with an exec readiness probe timeout."""
    cases.exec_readiness_timeout_never_ready(run)


def test_should_be_restarted_with_a_failing_exec_liveness_probe_that_took_longer_than_timeout(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted with a failing exec liveness probe that
    took longer than the timeout."""
    cases.exec_liveness_failing_past_timeout_restarted(run)


def test_should_be_restarted_with_a_local_redirect_http_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing container should be restarted with a local redirect http liveness
    probe."""
    cases.local_redirect_restarted(run)


def test_should_not_be_restarted_with_a_non_local_redirect_http_liveness_probe(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should *not* be restarted with a non-local redirect http
    liveness probe."""
    cases.non_local_redirect_not_restarted(run)


def test_should_be_restarted_by_liveness_probe_after_startup_probe_enables_it(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted by liveness probe after startup probe
    enables it."""
    cases.liveness_after_startup_restarted(run)


def test_should_override_timeout_grace_period_seconds_when_startup_probe_field_is_set(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should override timeoutGracePeriodSeconds when StartupProbe
    field is set."""
    cases.startup_grace_period_overrides_the_pods(run)


def test_should_mark_readiness_false_and_disable_liveness_probes_while_terminating(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should mark readiness on pods to false and disable liveness
    probes while pod is in progress of terminating."""
    cases.readiness_false_while_terminating(run, with_liveness=True)


def test_should_not_be_restarted_with_a_grpc_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing container should *not* be restarted with a GRPC liveness probe
    [Conformance]."""
    cases.grpc_liveness_not_restarted(run)


def test_should_be_restarted_with_a_grpc_liveness_probe(run: cases.Run) -> None:
    """Upstream: Probing container should be restarted with a GRPC liveness probe
    [Conformance]."""
    cases.grpc_liveness_restarted(run)


# Upstream's cases behind 1.37's alpha gates (`[FeatureGate:...]`), on a cluster that has them.
ALPHA_PROBES_1_37 = pytest.mark.probes_cluster(
    feature_gates={"H2CContainerProbe": True, "GRPCContainerProbeTLS": True}, min_version="1.37")


@ALPHA_PROBES_1_37
def test_should_not_be_restarted_with_a_grpc_liveness_probe_with_tls_mode(run: cases.Run) -> None:
    """Upstream: Probing container should *not* be restarted with a GRPC liveness probe with TLS
    mode [FeatureGate:GRPCContainerProbeTLS]."""
    cases.grpc_liveness_not_restarted(run, tls=True)


@ALPHA_PROBES_1_37
def test_should_be_restarted_with_a_grpc_liveness_probe_when_not_using_tls_against_a_tls_server(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted with a GRPC liveness probe when not using
    TLS against a TLS server [FeatureGate:GRPCContainerProbeTLS]."""
    cases.grpc_plaintext_against_tls_restarted(run)


@ALPHA_PROBES_1_37
def test_should_be_restarted_with_a_grpc_liveness_probe_with_tls_mode_when_not_healthy(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted with a GRPC liveness probe with TLS mode
    when endpoint returns not healthy [FeatureGate:GRPCContainerProbeTLS]."""
    cases.grpc_tls_not_serving_restarted(run)


@ALPHA_PROBES_1_37
def test_should_be_restarted_with_a_grpc_liveness_probe_with_tls_mode_on_wrong_port(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted with a GRPC liveness probe with TLS mode
    on wrong port [FeatureGate:GRPCContainerProbeTLS]."""
    cases.grpc_liveness_restarted(run, tls=True)


@ALPHA_PROBES_1_37
def test_should_not_be_restarted_with_an_http_get_liveness_probe_with_protocol_http1(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should *not* be restarted with an httpGet liveness probe with
    protocol HTTP1 [FeatureGate:H2CContainerProbe]."""
    cases.http_liveness_not_restarted(run, protocol="HTTP1")


@ALPHA_PROBES_1_37
def test_should_be_restarted_with_an_http_get_liveness_probe_with_protocol_http2_against_http1(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted with an httpGet liveness probe with
    protocol HTTP2 against HTTP/1.1 server [FeatureGate:H2CContainerProbe]."""
    cases.http2_liveness_restarted(run, wrong_port=False)


@ALPHA_PROBES_1_37
def test_should_be_restarted_with_an_http_get_liveness_probe_with_protocol_http2_on_wrong_port(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should be restarted with an httpGet liveness probe with
    protocol HTTP2 on wrong port [FeatureGate:H2CContainerProbe]."""
    cases.http2_liveness_restarted(run, wrong_port=True)


@ALPHA_PROBES_1_37
def test_should_not_be_restarted_with_an_http_get_liveness_probe_with_protocol_http2_against_h2c(
    run: cases.Run,
) -> None:
    """Upstream: Probing container should *not* be restarted with an httpGet liveness probe with
    protocol HTTP2 against h2c server [FeatureGate:H2CContainerProbe]."""
    cases.http_liveness_not_restarted(run, protocol="HTTP2")
