"""The README's example test runs, as written, against the session's cluster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder


@pytest.mark.probes
def test_readme_example_passes_on_a_real_cluster(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = next(b for b in re.findall(r"```python\n(.*?)```", README, re.S)
                   if "@pytest.mark.probes" in b)
    pytester.makepyfile(test_example=example)
    # pytester gives the inner run a temporary HOME; keep the real cache (builds and clusters).
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    # The inner session reuses the running cluster (it did not create it, so it leaves it up).
    result = pytester.runpytest_inprocess(
        "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
