"""Bad input to ``probes_deploy`` on a real cluster: a message naming the thing and the fix.

An inner pytest run (pytester, reusing the session's cluster) feeds ``probes_deploy`` an unknown
kind, a malformed image reference, malformed YAML and a manifest that does not exist. Each test
must fail with the library's message (no traceback), and the whole run must take seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir

pytestmark = pytest.mark.probes

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder
DATA = Path(__file__).resolve().parents[1] / "data" / "manifests"

INNER = f"""
import pytest

POD = {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "app"}},
       "spec": {{"containers": [{{"name": "app", "image": "localhost/Not A Valid:ref"}}]}}}}

@pytest.mark.probes
def test_unknown_kind(probes_deploy):
    probes_deploy({str(DATA / "unserved-kind.yaml")!r})

@pytest.mark.probes
def test_bad_image_reference(probes_deploy):
    probes_deploy(POD, wait="running", timeout=120)

@pytest.mark.probes
def test_malformed_yaml(probes_deploy):
    probes_deploy({str(DATA / "bad-indent.yaml")!r})

@pytest.mark.probes
def test_missing_manifest(probes_deploy):
    probes_deploy("no-such-manifest.yaml")
"""


def test_bad_input_to_probes_deploy_fails_at_once_with_a_message(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider",
        "--probes-timeline", "never",
    )
    took = time.monotonic() - started
    print(f"4 bad inputs against the cluster: {took:.1f} s")
    result.assert_outcomes(failed=4)
    out = result.stdout.str()
    assert "Traceback" not in out, out
    result.stdout.fnmatch_lines([
        "DeployError: *unserved-kind.yaml document 1: Widget gadget: kind Widget (example.com/v1)"
        " is not served by this cluster; check apiVersion/kind or install its CRD*",
        "DeployError: *app*Not A Valid:ref*",
        "DeployError: *bad-indent.yaml: invalid YAML in document 1 at line 9*",
        "DeployError: manifest 'no-such-manifest.yaml' not found; looked for*",
    ], consecutive=False)
    assert took < 60, out
