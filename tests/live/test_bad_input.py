"""Bad input to ``probes_deploy`` on a real cluster: a message naming the thing and the fix.

An inner pytest run (pytester, reusing the session's cluster) feeds ``probes_deploy`` an unknown
kind, a malformed image reference, malformed YAML and a manifest that does not exist. Each test
must fail with the library's message (no traceback) within seconds: each call is timed inside the
inner run, from the call to the error, so the inner pytest's own start-up and the namespaces'
teardown (slow while the whole live suite runs beside it) are not counted. The image reference is
the kubelet's to reject, so that answer is timed from the kubelet's verdict.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from tests.live.helpers import FAST, REACTION, TIMEOUT

pytestmark = pytest.mark.selftest

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder
REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "manifests"

INNER = f"""
import time

import pytest

from tests.live.helpers import reaction


@pytest.fixture(autouse=True)
def _timed(request, probes_deploy):
    # Set up after probes_deploy (namespace, recorder) and torn down before it.
    started = time.monotonic()
    yield
    print(f"\\nBAD-INPUT {{request.node.name}} answered in {{time.monotonic() - started:.2f}} s")

POD = {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "app"}},
       "spec": {{"containers": [{{"name": "app", "image": "localhost/Not A Valid:ref"}}]}}}}

@pytest.mark.probes
def test_unknown_kind(probes_deploy):
    probes_deploy({str(DATA / "unserved-kind.yaml")!r})

@pytest.mark.probes
def test_bad_image_reference(probes_deploy, probes_timeline):
    try:
        probes_deploy(POD, wait="running", timeout={TIMEOUT!r})
    finally:
        answered = reaction(probes_timeline, "app", time.time())
        print(f"\\nBAD-INPUT-REACTION {{answered:.2f}}")

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
    # The inner run imports this checkout (pytest_probes and tests.live.helpers), whatever else
    # is installed.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpytest_subprocess(
        "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider",
        "--probes-timeline", "never", "-s",
    )
    result.assert_outcomes(failed=4)
    out = result.stdout.str()
    assert "Traceback" not in out, out
    result.stdout.fnmatch_lines([
        "DeployError: *unserved-kind.yaml document 1: Widget gadget: kind Widget (example.com/v1)"
        " is not served by this cluster; check apiVersion/kind or install its CRD*",
        "DeployError: *app*Not A Valid:ref*",
        "DeployError: *bad-indent.yaml: invalid YAML in document 1 at line 9*",
        "DeployError: manifest 'no-such-manifest.yaml' not found (not a manifest file); looked*",
    ], consecutive=False)
    took = {m[1]: float(m[2]) for m in re.finditer(r"BAD-INPUT (\S+) answered in ([\d.]+) s", out)}
    print(f"bad inputs answered in (s): {took}")
    assert set(took) == {"test_unknown_kind", "test_bad_image_reference", "test_malformed_yaml",
                         "test_missing_manifest"}, out
    # The image reference is the kubelet's to reject, after it has set up the pod's sandbox: the
    # answer must follow its verdict at once, however long the kubelet took to get there.
    answered = float(re.findall(r"BAD-INPUT-REACTION ([\d.]+)", out)[0])
    print(f"the bad image reference answered {answered:.2f} s after the kubelet's verdict")
    assert answered < REACTION, out
    slow = {name: t for name, t in took.items()
            if t >= FAST and name != "test_bad_image_reference"}
    assert not slow, f"answered in {FAST:g} s or more (of the {TIMEOUT:g} s timeout): {slow}"
