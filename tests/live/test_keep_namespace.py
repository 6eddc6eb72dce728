"""``--probes-keep-namespace=failed``: a failed test's namespace stays, labelled, for inspection.

An inner pytest run on the shared cluster has one failing and one passing test. The failing
test's namespace is kept (labelled, its pod still there) and the summary prints the ``kubectl``
line; the passing test's namespace is deleted. A later run's orphan cleanup leaves the kept one
alone although its run has ended; ``pytest-probes cleanup`` deletes it.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from kubernetes import client

from pytest_probes import Cluster, cli
from pytest_probes.cluster import default_cache_dir
from pytest_probes.namespaces import KEPT_LABEL, delete_orphaned_namespaces

pytestmark = pytest.mark.selftest

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder


def test_a_failed_tests_namespace_is_kept_until_cleanup(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile(
        """
        import pytest

        POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kept"},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "app", "image": "probes-target"}]}}

        @pytest.mark.probes
        def test_fails(probes_deploy, probes_namespace):
            probes_deploy(POD, wait="running")
            print("NAMESPACE", probes_namespace)
            assert False, "on purpose"

        @pytest.mark.probes
        def test_passes(probes_namespace):
            print("NAMESPACE", probes_namespace)
        """
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    for key in [k for k in os.environ if k.startswith("PYTEST_XDIST")]:
        monkeypatch.delenv(key)
    result = pytester.runpytest_subprocess(
        "-s", "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "--probes-keep-namespace=failed",
        "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=1, failed=1)
    failed_ns, passed_ns = re.findall(r"NAMESPACE (\S+)", result.stdout.str())
    result.stdout.fnmatch_lines([
        "*namespaces kept for inspection*",
        f"*test_fails: kubectl --kubeconfig {probes_cluster.kubeconfig} -n {failed_ns} "
        "get all,events"])
    with probes_cluster.api_client() as api:
        core: Any = client.CoreV1Api(api)
        kept = core.read_namespace(failed_ns)
        assert kept.metadata.labels[KEPT_LABEL] == "true" and kept.status.phase == "Active"
        assert core.read_namespaced_pod("kept", failed_ns).status.phase == "Running"
        passed = core.list_namespace(field_selector=f"metadata.name={passed_ns}").items
        assert not passed or passed[0].status.phase == "Terminating"
        # The run that kept it has ended: still, the orphan cleanup leaves it alone.
        assert failed_ns not in delete_orphaned_namespaces(api)
        assert core.read_namespace(failed_ns).status.phase == "Active"
        capsys.readouterr()
        assert cli.main(["cleanup", "--kubeconfig", str(probes_cluster.kubeconfig)]) == 0
        assert failed_ns in capsys.readouterr().out
        left = core.list_namespace(field_selector=f"metadata.name={failed_ns}").items
        assert not left or left[0].status.phase == "Terminating"
