"""Under pytest-xdist every worker shares one cluster, deleted once, after the last worker ends."""

from __future__ import annotations

import os

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from pytest_probes.providers.local.lifecycle import LocalCluster

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder
NAME = "probes-xdist"


@pytest.mark.selftest
def test_a_worker_that_ends_first_does_not_delete_the_shared_cluster(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    if probes_cluster.provider != "local":
        pytest.fail("this test drives the local provider's cluster lifecycle; run it with "
                    "--probes-provider local")
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    for key in [k for k in os.environ if k.startswith("PYTEST_XDIST")]:
        monkeypatch.delenv(key)  # when this test itself runs in an xdist worker
    pytester.makepyfile(
        """
        import time
        import pytest
        from kubernetes import client

        @pytest.mark.probes
        def test_short(probes_cluster):
            # This worker asks first, so it is the one that creates the cluster.
            client.CoreV1Api(probes_cluster.api_client()).list_namespace()

        @pytest.mark.probes
        def test_long(request):
            time.sleep(3)
            cluster = request.getfixturevalue("probes_cluster")  # reuses the other's cluster
            time.sleep(10)  # outlives the other worker's whole session
            client.CoreV1Api(cluster.api_client()).list_namespace()
        """
    )
    local = LocalCluster(NAME, CACHE_DIR)
    local.down(lambda _line: None)
    result = pytester.runpytest_subprocess(
        "-n", "2", "-v", "-m", "probes", "--probes-provider", "local",
        "--probes-cluster-name", NAME, "-p", "no:cacheprovider", timeout=600,
    )
    result.assert_outcomes(passed=2)
    workers = {line.split("]")[0] for line in result.outlines if "PASSED" in line}
    assert len(workers) == 2, result.outlines  # one test per worker
    result.stdout.fnmatch_lines(["*deleting cluster probes-xdist*"])
    assert not local.status().running
