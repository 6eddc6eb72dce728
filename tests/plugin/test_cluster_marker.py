"""The ``probes_cluster`` marker through pytester: registered, checked, and a skip with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_probes.binaries import k8s
from pytest_probes.providers import local


def test_the_marker_is_registered_with_its_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.probes_cluster(feature_gates={'Gate': True}, kubelet_config={...}, "
        "min_version='1.35'): run the test on a cluster with these*"])


@pytest.mark.parametrize(("marker", "says"), [
    ("probes_cluster(kubelet_config=['crashLoopBackOff'])",
     "kubelet_config must be a mapping (the KubeletConfiguration fields to merge, as YAML"),
    ("probes_cluster(min_version=1.35)", "min_version must be a string such as '1.35'"),
    ("probes_cluster(gates={'A': True})",
     "unknown keyword gates; it takes feature_gates, kubelet_config, min_version"),
    ("probes_cluster(feature_gates={'A': 1})", "feature_gates['A'] must be True or False"),
])
def test_bad_marker_input_is_a_usage_error_naming_the_test_and_the_fix(
        pytester: pytest.Pytester, marker: str, says: str) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.{marker}
        def test_configured():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "test_bad_marker_input_is_a_usage_error_naming_the_test_and_the_fix.py::" \
           "test_configured: @pytest.mark.probes_cluster: " in err
    assert says in err
    assert "Use @pytest.mark.probes_cluster(feature_gates={'Gate': True}" in err


def test_a_test_for_a_newer_version_is_skipped_with_the_reason_before_any_cluster(
        pytester: pytest.Pytester) -> None:
    # The local provider knows 1.33 means 1.33.13 without bringing anything up; an unmarked
    # test beside it would get the shared cluster, which this run never needs.
    pytester.makepyfile("""
        import pytest

        @pytest.mark.probes
        @pytest.mark.probes_cluster(
            kubelet_config={"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}},
            min_version="1.35")
        def test_capped(probes_cluster):
            raise AssertionError("must not run")

        @pytest.mark.probes_cluster(min_version="1.33")
        def test_unrelated():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--probes-provider", "local",
                                "--probes-k8s-version", "1.33")
    result.assert_outcomes(skipped=1, passed=1)
    result.stdout.fnmatch_lines([
        "SKIPPED [[]1[]] *: not applicable: needs Kubernetes ≥ 1.35 (running 1.33.13)"])


def test_a_gate_the_version_lacks_skips_the_test_with_the_components_reason(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # What 1.33.13's kube-scheduler answers for a gate of 1.35 (binaries.k8s.feature_gate_problem);
    # asked before any process starts, and once per configuration.
    asked: list[dict[str, bool]] = []

    def refuse(directory: Path, gates: dict[str, bool]) -> str:
        asked.append(gates)
        return "unrecognized feature gate: ContainerRestartRules"

    monkeypatch.setattr(k8s, "ensure_binaries", lambda version, cache_dir, progress: tmp_path)
    monkeypatch.setattr(k8s, "feature_gate_problem", refuse)
    monkeypatch.setattr(local, "require", lambda *args, **kwargs: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pytester.makepyfile("""
        import pytest

        pytestmark = pytest.mark.probes_cluster(feature_gates={"ContainerRestartRules": True})

        def test_one(probes_cluster):
            raise AssertionError("must not run")

        def test_two(probes_cluster):
            raise AssertionError("must not run")
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs", "--probes-provider",
                                          "local", "--probes-k8s-version", "1.33")
    result.assert_outcomes(skipped=2)
    reason = ("not applicable: feature gate ContainerRestartRules does not exist in Kubernetes "
              "1.33.13")
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *:5: {reason}",
                                 f"SKIPPED [[]1[]] *:8: {reason}"])
    assert asked == [{"ContainerRestartRules": True}]
