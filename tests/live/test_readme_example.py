"""The README's example test runs, as written, against the session's cluster."""

from __future__ import annotations

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from tests.helpers import readme_probe_example

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder


@pytest.mark.selftest
def test_readme_example_passes_on_a_real_cluster(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_example=readme_probe_example())
    # pytester gives the inner run a temporary HOME; keep the real cache (builds and clusters).
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    # The inner session reuses the running cluster (it did not create it, so it leaves it up).
    result = pytester.runpytest_inprocess(
        "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
