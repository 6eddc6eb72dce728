"""A failed live test leaves its timeline, pods and container logs in the artifacts folder."""

from __future__ import annotations

import json

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder


@pytest.mark.selftest
def test_failed_test_leaves_timeline_pods_and_logs(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    pytester.makepyfile(
        """
        import pytest
        from pytest_probes import assert_restarts_within

        POD = '''
        apiVersion: v1
        kind: Pod
        metadata: {name: steady}
        spec:
          containers:
            - name: app
              image: probes-target
              readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
        '''

        @pytest.mark.probes
        def test_expects_a_restart_that_never_comes(probes_deploy, probes_timeline):
            probes_deploy(POD, wait="ready")  # serving: its log has the "listening" line
            assert_restarts_within(probes_timeline, "steady", within=1)
        """
    )
    result = pytester.runpytest_inprocess(
        "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "--probes-artifacts-dir", "arts",
        "-p", "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected ≥1 restart within 1 s*observed restarts steady: 0*"])
    (folder,) = (pytester.path / "arts").iterdir()
    assert (folder / "timeline.jsonl").read_text().count('"kind": "ContainerStarted"') == 1
    svg = (folder / "timeline.svg").read_text()
    assert svg.startswith("<svg") and ">steady<" in svg
    pods = json.loads((folder / "pods.json").read_text())
    assert [p["metadata"]["name"] for p in pods] == ["steady"]
    log = (folder / "logs" / "steady.app.log").read_text()
    assert "listening on" in log
