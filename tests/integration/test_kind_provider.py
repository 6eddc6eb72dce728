"""The kind provider's whole flow, with fake ``kind`` and ``docker`` backed by the local provider.

The fakes (``tests/fake_tools.py``) record their arguments and answer like the real tools; their
``kind create cluster`` brings up a real local cluster, so the inner pytest runs really deploy the
target image and watch a kubelet restart a pod through ``--probes-provider kind``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_probes.binaries import k8s
from pytest_probes.cluster import default_cache_dir
from pytest_probes.images import PAUSE_REF, build_pause_image, package_version
from pytest_probes.providers import kind
from tests import fake_tools
from tests.helpers import readme_probe_example

NAME = "probes-kind-it"
VERSION = k8s.DEFAULT_MINOR  # the default version: CI builds no extra one for this test
CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.geteuid() != 0
    or shutil.which("ip") is None
    or shutil.which("go") is None,
    reason="the fake kind runs the local provider: root on Linux, ip, and Go (to build "
    "Kubernetes and the container runtime)",
)


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key, value in fake_tools.install(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(kind.KIND_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    monkeypatch.delenv("PYTEST_PROBES_RUN_ID", raising=False)
    yield tmp_path
    # Whatever happened, leave no cluster behind.
    subprocess.run([sys.executable, "-m", "pytest_probes", "cluster", "down", "--name", NAME],
                   capture_output=True, check=False)
    shutil.rmtree(kind.kubeconfig_path(CACHE_DIR, NAME).parent, ignore_errors=True)


def _run(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        "-m", "probes", "--probes-provider", "kind", "--probes-k8s-version", VERSION,
        "--probes-cluster-name", NAME, "-p", "no:cacheprovider", *extra,
    )


def _kind_calls(directory: Path) -> list[list[str]]:
    return [c for c in fake_tools.calls(directory, "kind") if c != ["version"]]


def test_a_live_probe_test_runs_through_kind_and_a_kept_cluster_is_reused_not_deleted(
    pytester: pytest.Pytester, fakes: Path
) -> None:
    pytester.makepyfile(test_example=readme_probe_example())
    image = kind.NODE_IMAGES[kind.PINNED_KIND][VERSION]
    kubeconfig = str(kind.kubeconfig_path(CACHE_DIR, NAME))
    ref = kind.target_image_ref()

    first = _run(pytester, "--probes-keep-cluster")
    first.assert_outcomes(passed=1)
    config = kind.kubeconfig_path(CACHE_DIR, NAME).parent / "kind-config.yaml"
    assert _kind_calls(fakes) == [
        ["get", "clusters"],
        ["create", "cluster", "--name", NAME, "--image", image, "--config", str(config),
         "--kubeconfig", kubeconfig, "--wait", "120s"],
        ["get", "kubeconfig", "--name", NAME],
        ["load", "docker-image", ref, "--name", NAME],
    ]
    builds = fake_tools.calls(fakes, "docker")
    assert len(builds) == 1 and builds[0][0] == "build"
    assert builds[0][builds[0].index("-t") + 1] == ref
    assert ref == f"localhost/pytest-probes/target:{package_version()}"
    assert "@sha256:" in image and image.startswith(f"kindest/node:v{VERSION}.")
    assert (CACHE_DIR / "clusters" / NAME / "cluster.json").is_file(), "kept cluster is gone"
    assert "maximum-dead-containers-per-container" in config.read_text()

    # A second run without --probes-keep-cluster reuses it and, not having created it, keeps it.
    (fakes / "calls.jsonl").unlink()
    archive = build_pause_image(CACHE_DIR).archive
    pytester.makepyfile(test_example=f"""
        import pytest
        from kubernetes import client

        @pytest.mark.probes
        def test_reuses(probes_cluster):
            assert probes_cluster.provider == "kind" and not probes_cluster.created
            assert probes_cluster.k8s_version.startswith("v{VERSION}.")
            assert probes_cluster.runtime.startswith("containerd 2.")
            client.CoreV1Api(probes_cluster.api_client()).list_namespace()
            assert probes_cluster.load_image({str(archive)!r}) == [{PAUSE_REF!r}]
    """)
    second = _run(pytester)
    second.assert_outcomes(passed=1)
    assert _kind_calls(fakes) == [["get", "clusters"], ["get", "kubeconfig", "--name", NAME],
                                  ["load", "image-archive", str(archive), "--name", NAME]]
    assert (CACHE_DIR / "clusters" / NAME / "cluster.json").is_file()

    # Reusing it for another Kubernetes minor is an error that says what to do.
    third = _run(pytester, "--probes-k8s-version", "1.35")
    third.assert_outcomes(errors=1)
    third.stdout.fnmatch_lines([f"*kind cluster {NAME} runs Kubernetes v{VERSION}.*, not 1.35: "
                                "delete "
                                f"it (`kind delete cluster --name {NAME}`)*"])
    assert not any(c[:2] == ["create", "cluster"] for c in _kind_calls(fakes))


def test_a_cluster_the_run_created_is_deleted_at_the_end(
    pytester: pytest.Pytester, fakes: Path
) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.probes
        def test_up(probes_cluster):
            assert probes_cluster.created and probes_cluster.provider == "kind"
    """)
    _run(pytester).assert_outcomes(passed=1)
    calls = _kind_calls(fakes)
    assert [c[:2] for c in calls] == [["get", "clusters"], ["create", "cluster"],
                                      ["get", "kubeconfig"], ["delete", "cluster"]]
    assert calls[-1] == ["delete", "cluster", "--name", NAME, "--kubeconfig",
                         str(kind.kubeconfig_path(CACHE_DIR, NAME))]
    assert not (CACHE_DIR / "clusters" / NAME).exists()
    assert not kind.kubeconfig_path(CACHE_DIR, NAME).parent.exists()


def test_a_failed_kind_create_says_what_kubeadm_said_and_leaves_no_config_behind(
    pytester: pytest.Pytester, fakes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_kind_provider import KIND_KUBEADM_FAILURE

    monkeypatch.setenv("FAKE_KIND_CREATE_FAILS", KIND_KUBEADM_FAILURE)
    pytester.makepyfile(test_example=readme_probe_example())
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*kube-apiserver is not healthy after 4m0.000s*"])
    assert "runner.go" not in result.stdout.str()
    assert not kind.kubeconfig_path(CACHE_DIR, NAME).parent.exists()
