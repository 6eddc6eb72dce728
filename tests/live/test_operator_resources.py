"""Operators' resources: CRDs and cluster-scoped objects in manifests, CR conditions, log lines.

An inner pytest run with two workers deploys a manifest holding a CRD, a ClusterRole that the
run creates, a ClusterRole that exists before it (made here, not labelled as ours) and a custom
resource. The CRD is applied once for the run and established before its resource; the custom
resource's ``status.conditions`` are recorded once watched; when the run ends, what it created is
removed and the ClusterRole it found is left exactly as it was.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

import pytest
from kubernetes import client

from pytest_probes import Cluster, Recorder, Timeline, assert_log_within
from pytest_probes._poll import poll
from pytest_probes.cluster import default_cache_dir
from pytest_probes.deploy import Deployer
from pytest_probes.namespaces import MANAGED_BY_LABEL, RUN_LABEL
from pytest_probes.timing import API_TIME_RESOLUTION, DEFAULT_ALLOWANCE, Window

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder

INNER = '''
import time
from pathlib import Path

import pytest
from kubernetes import client

from pytest_probes import assert_condition_within
from pytest_probes.namespaces import RUN_LABEL

SUFFIX = "{suffix}"
GROUP = f"probes-{{SUFFIX}}.example.com"
MANIFEST = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{{GROUP}}
spec:
  group: {{GROUP}}
  scope: Namespaced
  names: {{{{kind: Widget, plural: widgets, singular: widget}}}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{{{status: {{{{}}}}}}}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: probes-made-{{SUFFIX}}
rules: []
---
{{{{kind: ClusterRole, apiVersion: rbac.authorization.k8s.io/v1,
 metadata: {{{{name: probes-found-{{SUFFIX}}}}}}, rules: []}}}}
---
apiVersion: {{GROUP}}/v1
kind: Widget
metadata:
  name: w1
spec: {{{{size: 1}}}}
"""


def _conditions(ready):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {{"status": {{"conditions": [
        {{"type": "Ready", "status": ready, "reason": "Test", "lastTransitionTime": now}}]}}}}


@pytest.mark.probes
@pytest.mark.parametrize("which", ["a", "b"])
def test_widget(which, probes_deploy, probes_timeline, probes_namespace, _probes_api):
    tl = probes_timeline
    applied = probes_deploy(MANIFEST, wait="none")
    crd = applied[0]
    # Each test notes the CRD it got (an xdist worker's print does not reach the terminal).
    Path(__file__).with_name(f"crd-{{which}}.txt").write_text(
        f'{{crd["metadata"]["uid"]}} {{crd["metadata"]["labels"].get(RUN_LABEL)}}')
    tl.watch(GROUP, "v1", "widgets")
    api = client.CustomObjectsApi(_probes_api)
    api.patch_namespaced_custom_object_status(GROUP, "v1", probes_namespace, "widgets", "w1",
                                              _conditions("False"))
    assert_condition_within(tl, "Widget/w1", "Ready", status="False", within=(0, 10))
    patched = tl.server_now()
    api.patch_namespaced_custom_object_status(GROUP, "v1", probes_namespace, "widgets", "w1",
                                              _conditions("True"))
    hit = assert_condition_within(tl, "Widget/w1", "Ready", status="True", within=(0, 10),
                                  since=patched)
    assert hit.data["previous"] == "False"
'''


def _cluster_role(rbac: Any, name: str) -> Any:
    found = rbac.list_cluster_role(field_selector=f"metadata.name={name}").items
    return found[0] if found else None


@pytest.mark.selftest
def test_crds_and_cluster_objects_are_applied_once_per_run_and_removed_by_it(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = secrets.token_hex(3)
    group = f"probes-{suffix}.example.com"
    pytester.makepyfile(INNER.format(suffix=suffix))
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    for key in [k for k in os.environ if k.startswith("PYTEST_XDIST")]:
        monkeypatch.delenv(key)
    with probes_cluster.api_client() as api:
        rbac: Any = client.RbacAuthorizationV1Api(api)
        # A plain body: an in-process pytester run on this worker may have imported the
        # client's model classes anew, and the client checks a model's class by identity.
        found = {"metadata": {"name": f"probes-found-{suffix}",
                              "labels": {"owner": "someone-else"}}, "rules": []}
        before = rbac.create_cluster_role(found)
        try:
            result = pytester.runpytest_subprocess(
                "-s", "-m", "probes", "-n", "2", "--probes-provider", probes_cluster.provider,
                "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider",
                timeout=300)
            result.assert_outcomes(passed=2)
            noted = [(pytester.path / f"crd-{w}.txt").read_text().split() for w in "ab"]
            assert noted[0] == noted[1], "both tests used the one CRD the run applied"
            assert noted[0][1] != "None"  # labelled with the run
            result.stdout.fnmatch_lines(["*removed 2 cluster-scoped objects this run created:*"])
            # Removed by the run: the CRD (deleting its resources) and the ClusterRole it made.
            ext: Any = client.ApiextensionsV1Api(api)
            left = ext.list_custom_resource_definition(
                field_selector=f"metadata.name=widgets.{group}").items
            assert not left or left[0].metadata.deletion_timestamp is not None
            assert _cluster_role(rbac, f"probes-made-{suffix}") is None
            # The ClusterRole that was there before: untouched, not labelled as ours.
            after = _cluster_role(rbac, f"probes-found-{suffix}")
            assert after is not None
            assert after.metadata.resource_version == before.metadata.resource_version
            assert MANAGED_BY_LABEL not in (after.metadata.labels or {})
            assert RUN_LABEL not in (after.metadata.labels or {})
        finally:
            rbac.delete_cluster_role(f"probes-found-{suffix}")


LISTEN_AFTER = 10
"""Seconds the logger sleeps before its 'listening' line. Long beside what the measurement adds
to it (``startedAt``'s truncation, up to one API_TIME_RESOLUTION, and the shell's start), so the
window's earliest is close to what is observed (returned / earliest 1.18-1.28 with 2 s)."""

LOGGER = ["sh", "-c",
          f"echo starting; sleep {LISTEN_AFTER}; echo listening on 8080; sleep 1; exit 3"]


@pytest.mark.probes
def test_a_pods_log_lines_are_in_the_timeline_at_the_runtimes_time(
    probes_deploy: Deployer, probes_timeline: Timeline
) -> None:
    """Every instance's lines, dated when written: the app sleeps :data:`LISTEN_AFTER` s before
    'listening', so the line can come no earlier than that after the container's start
    (``startedAt``, whole seconds: one API_TIME_RESOLUTION); its upper end is one
    DEFAULT_ALLOWANCE for the shell's own work."""
    tl = probes_timeline
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "logger", "annotations": {"pytest-probes.io/logs": "app"}},
           "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": "probes-target",
                                    "command": LOGGER}]}}
    probes_deploy(pod, wait="exist")
    started = tl.wait_first(pod="logger", kind="ContainerStarted", timeout=60)
    window = Window(LISTEN_AFTER, LISTEN_AFTER + API_TIME_RESOLUTION + DEFAULT_ALLOWANCE)
    line = assert_log_within(tl, "logger", r"listening on \d+", within=window,
                             since=started.time, container="app")
    assert line.container == "app" and line.message == "listening on 8080"
    # The container exits 3 and is restarted (after the kubelet's first back-off, 10 s): the
    # follower reads the next instance too, every line once.
    restarted = tl.wait_first(pod="logger", kind="ContainerRestarted", timeout=60)
    deadline = time.monotonic() + 30
    while len(tl.all(pod="logger", source="log", message="starting")) < 2:
        assert time.monotonic() < deadline, tl.to_markdown()
        time.sleep(0.2)
    first, second = tl.all(pod="logger", source="log", message="starting")[:2]
    assert first.time < line.time < second.time
    # The next instance writes after the first one ended (finishedAt, whole seconds), but may
    # write before its own startedAt: the runtime stamps that after its process runs (seen:
    # 'starting' at .994 of the second before startedAt on 1.33.13).
    ended = tl.wait_first(pod="logger", kind="ContainerTerminated", timeout=30)
    assert ended.time <= second.time and ended.time <= restarted.time
    assert len(tl.all(pod="logger", source="log", message="listening on 8080")) in (1, 2)


@pytest.mark.probes
def test_a_log_follower_keeps_trying_through_404_until_its_pod_is_gone(
    _probes_api: Any, probes_namespace: str
) -> None:
    """A 404 for a pod's log is not the pod's end: the kubelet answers "pod does not exist"
    until its own watch has brought it the pod (``getContainerLogs``,
    ``pkg/kubelet/server/server.go``), which a loaded node made a CI run see, and the follower
    then stopped for good. A pod bound to a node that does not exist gets the API server's 404
    for every request: the follower keeps trying while the pod exists and ends once it is gone."""
    core = client.CoreV1Api(_probes_api)
    recorder = Recorder(_probes_api, probes_namespace, retry_initial=0.1, retry_max=0.5)
    recorder.start()
    try:
        core.create_namespaced_pod(probes_namespace, {
            "metadata": {"name": "unserved", "annotations": {"pytest-probes.io/logs": "app"}},
            "spec": {"nodeName": f"probes-nowhere-{secrets.token_hex(3)}",
                     "containers": [{"name": "app", "image": "probes-target"}]}})
        with pytest.raises(client.ApiException) as refused:
            core.read_namespaced_pod_log("unserved", probes_namespace, container="app")
        assert refused.value.status == 404
        key = ("unserved", "app")
        assert poll(lambda: key in recorder.following, until=bool, timeout=30), "never followed"
        # Attempts at 0.1, 0.2, 0.4, 0.5 s apart: several 404s within 3 s.
        time.sleep(3.0)
        assert key in recorder.following
        core.delete_namespaced_pod("unserved", probes_namespace, grace_period_seconds=0)
        assert poll(lambda: key not in recorder.following, until=bool, timeout=30), \
            "the follower did not end once the pod was gone"
    finally:
        recorder.stop()

