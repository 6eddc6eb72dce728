"""A cluster configured per test: the marker's keywords, names, merging, applicability."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_probes.cluster import CLUSTER_NAME_MAX, check_cluster_name
from pytest_probes.cluster_settings import (
    ClusterRequest,
    ClusterSettings,
    cluster_request,
    merge_config,
    refused_gates,
    too_old,
)

CAP_10S = {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}}


def test_kubelet_settings_merge_as_yaml_documents_do() -> None:
    base = {"a": 1, "eviction": {"memory": "50Mi", "nodefs": "1%"}, "list": [1, 2]}
    merged = merge_config(base, {"eviction": {"nodefs": "5%"}, "list": [3], "new": {"x": 1}})
    assert merged == {"a": 1, "eviction": {"memory": "50Mi", "nodefs": "5%"}, "list": [3],
                      "new": {"x": 1}}
    assert base["eviction"] == {"memory": "50Mi", "nodefs": "1%"}  # not changed


def test_a_configuration_is_frozen_hashable_and_named_from_a_stable_hash() -> None:
    one = ClusterSettings.of({"B": False, "A": True}, CAP_10S)
    same = ClusterSettings.of({"A": True, "B": False},
                              {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}})
    assert one == same and hash(one) == hash(same)
    assert one.feature_gates == (("A", True), ("B", False))
    assert one.cluster_name("probes") == f"probes-{one.digest}" == "probes-" + one.digest
    assert len(one.digest) == 6
    # Stable across runs and machines: the name is what another run finds.
    assert ClusterSettings.of({"A": True}).digest == ClusterSettings.of({"A": True}).digest
    assert ClusterSettings.of({"A": True}).digest != ClusterSettings.of({"A": False}).digest
    assert ClusterSettings.from_json(one.to_json()) == one


def test_the_default_configuration_is_the_shared_cluster() -> None:
    default = ClusterSettings.of()
    assert default.is_default and default == ClusterSettings()
    assert default.cluster_name("probes") == "probes"
    assert ClusterSettings.of({}, {}).is_default


def test_a_configured_clusters_name_stays_a_valid_cluster_name() -> None:
    long = "p" * CLUSTER_NAME_MAX
    name = ClusterSettings.of({"A": True}).cluster_name(long)
    assert len(name) == CLUSTER_NAME_MAX
    assert check_cluster_name(name) == name
    assert check_cluster_name(ClusterSettings.of({"A": True}).cluster_name("probes-")) != ""


def test_describe_names_gates_and_kubelet_settings() -> None:
    text = ClusterSettings.of({"ReduceDefaultCrashLoopBackOffDecay": True}, CAP_10S).describe()
    assert text == ('feature gates ReduceDefaultCrashLoopBackOffDecay=true; kubelet '
                    '{"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}}')


def test_the_marker_reads_its_three_keywords() -> None:
    request = cluster_request((), {"feature_gates": {"G": True}, "kubelet_config": CAP_10S,
                                   "min_version": "v1.35"})
    assert request == ClusterRequest(ClusterSettings.of({"G": True}, CAP_10S), "1.35")
    assert cluster_request((), {}) == ClusterRequest()


@pytest.mark.parametrize(("args", "kwargs", "error", "text"), [
    (("1.35",), {}, TypeError, "takes keywords only"),
    ((), {"gates": {"A": True}}, TypeError, "unknown keyword gates; it takes feature_gates"),
    ((), {"feature_gates": ["A"]}, TypeError, "feature_gates must be a mapping"),
    ((), {"feature_gates": {"A": "true"}}, TypeError, r"feature_gates\['A'\] must be True"),
    ((), {"feature_gates": {"not-a-gate": True}}, ValueError, "is not a feature gate name"),
    ((), {"kubelet_config": "crashLoopBackOff: {}"}, TypeError,
     "kubelet_config must be a mapping"),
    ((), {"kubelet_config": {1: 2}}, TypeError, "key 1 is not a string"),
    ((), {"kubelet_config": {"featureGates": {"A": True}}}, ValueError,
     "pass feature gates as feature_gates="),
    ((), {"kubelet_config": {"kind": "X"}}, ValueError, "must not set 'kind'"),
    ((), {"min_version": 1.35}, TypeError, "min_version must be a string"),
    ((), {"min_version": "1.35-rc"}, ValueError, "is not MAJOR.MINOR"),
    ((), {"min_version": "latest"}, ValueError, "is not a Kubernetes version"),
])
def test_bad_marker_input_says_what_is_wrong(args: tuple[Any, ...], kwargs: dict[str, Any],
                                              error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        cluster_request(args, kwargs)


@pytest.mark.parametrize(("needed", "running", "reason"), [
    (None, "v1.33.13", None),
    ("1.35", "v1.35.0", None),
    ("1.35", "v1.37.2", None),
    ("1.35", "v1.33.13", "needs Kubernetes ≥ 1.35 (running 1.33.13)"),
    ("1.35.2", "v1.35.1", "needs Kubernetes ≥ 1.35.2 (running 1.35.1)"),
    ("1.35", "1.34.9-rc.0", "needs Kubernetes ≥ 1.35 (running 1.34.9-rc.0)"),
])
def test_a_test_needing_a_newer_version_is_not_applicable(
        needed: str | None, running: str, reason: str | None) -> None:
    assert too_old(needed, running) == reason


def test_gates_a_version_refuses_are_named_in_the_reason() -> None:
    assert refused_gates("unrecognized feature gate: Foo", "v1.33.13") == (
        "feature gate Foo does not exist in Kubernetes 1.33.13")
    locked = "cannot set feature gate SidecarContainers to false, feature is locked to true"
    assert refused_gates(locked, "1.37.2") == (
        f"Kubernetes 1.37.2 refuses the feature gates: {locked}")
