"""The existing provider's kubeconfig handling and safety rule, offline (loopback only)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_probes.cluster import ClusterConfig
from pytest_probes.cluster_settings import ClusterSettings
from pytest_probes.errors import ClusterError
from pytest_probes.kubelet_versions import crashloop_backoff
from pytest_probes.providers.existing import (
    ExistingProvider,
    Target,
    looks_like_test_cluster,
    read_target,
    running_settings,
    server_version,
    settings_mismatch,
)


def kubeconfig(path: Path, context: str, server: str, *, current: bool = True) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server,
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "c", "user": "u"}}],
        **({"current-context": context} if current else {}),
    }))
    return path


def local_state(cache: Path, name: str, port: int) -> None:
    root = cache / "clusters" / name
    root.mkdir(parents=True)
    (root / "cluster.json").write_text(json.dumps({"name": name, "ports": {"apiserver": port}}))


def up(path: Path, cache: Path, *, context: str | None = None, allow: bool = False) -> None:
    ExistingProvider().up(ClusterConfig(name="ignored", kubeconfig=path, context=context,
                                        allow_existing=allow, cache_dir=cache))


def test_a_missing_kubeconfig_is_a_cluster_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"cannot read kubeconfig .*nope.*--probes-kubeconfig"):
        up(tmp_path / "nope", tmp_path)


def test_a_file_that_is_not_a_kubeconfig_is_a_cluster_error(tmp_path: Path) -> None:
    (tmp_path / "kc").write_text("just: text\n")
    with pytest.raises(ClusterError, match="is not a kubeconfig"):
        up(tmp_path / "kc", tmp_path)
    (tmp_path / "kc").write_text("a: [\n")
    with pytest.raises(ClusterError, match="is not valid YAML"):
        up(tmp_path / "kc", tmp_path)


def test_an_unknown_context_lists_the_ones_there_are(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", "kind-a", "https://127.0.0.1:1")
    with pytest.raises(ClusterError, match=r"no context 'prod'; it has kind-a, other"):
        up(path, tmp_path, context="prod")


def test_no_current_context_asks_for_one(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", "kind-a", "https://127.0.0.1:1", current=False)
    with pytest.raises(ClusterError, match="no current-context; choose one of kind-a, other"):
        up(path, tmp_path)


@pytest.mark.parametrize(("context", "server", "local_port", "expected"), [
    ("kind-probes", "https://127.0.0.1:43123", None, True),
    ("kind-probes", "https://localhost:43123", None, True),
    ("kind-probes", "https://[::1]:43123", None, True),
    ("kind-prod", "https://10.0.0.5:6443", None, False),
    ("probes-h", "https://127.0.0.1:40001", 40001, True),
    ("probes-h", "https://127.0.0.1:40002", 40001, False),  # not that cluster's port
    ("prod-admin", "https://127.0.0.1:40001", 40001, False),  # renamed context
    ("gke_prod_europe-west1_main", "https://35.1.2.3", None, False),
])
def test_which_contexts_look_like_local_test_clusters(
    tmp_path: Path, context: str, server: str, local_port: int | None, expected: bool
) -> None:
    if local_port is not None:
        local_state(tmp_path, "h", local_port)
    target = Target(context=context, cluster="c", server=server)
    assert looks_like_test_cluster(target, tmp_path) is expected


@pytest.mark.parametrize(("server", "host", "port"), [
    ("https://[::1]:6443", "::1", 6443),
    ("https://K8s.Example.com", "k8s.example.com", 443),
    ("http://10.0.0.5", "10.0.0.5", None),
    ("not a url", "", None),
])
def test_the_server_url_is_split_into_host_and_port(server: str, host: str,
                                                     port: int | None) -> None:
    target = Target(context="c", cluster="c", server=server)
    assert (target.host, target.port) == (host, port)


def test_a_production_context_is_refused_before_any_connection(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", "prod-eu", "https://k8s.prod.example.com:6443")
    start = time.monotonic()
    with pytest.raises(ClusterError) as info:
        up(path, tmp_path)
    message = str(info.value)
    assert "refusing to run against context 'prod-eu'" in message
    assert "server https://k8s.prod.example.com:6443" in message
    assert "--probes-allow-existing-cluster" in message
    assert time.monotonic() - start < 1.0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_an_unreachable_api_server_fails_within_the_timeout(
    tmp_path: Path, silent_server: int
) -> None:
    server = f"https://127.0.0.1:{silent_server}"
    path = kubeconfig(tmp_path / "kc", "kind-x", server)
    start = time.monotonic()
    with pytest.raises(ClusterError, match=rf"API server {server} .* did not answer /version "
                                           r"within 1 s"):
        server_version(path, "kind-x", server, timeout=1.0)
    assert time.monotonic() - start < 3.0


def test_a_closed_port_fails_at_once_through_up(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    path = kubeconfig(tmp_path / "kc", "kind-x", f"https://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(ClusterError, match="did not answer /version"):
        up(path, tmp_path)
    assert time.monotonic() - start < 3.0


def test_read_target_follows_the_context_to_its_server(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", "kind-a", "https://127.0.0.1:9")
    assert read_target(path, None) == Target("kind-a", "c", "https://127.0.0.1:9")
    assert read_target(path, "other").context == "other"


def test_the_plugin_reports_a_refusal_without_a_traceback(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    path = kubeconfig(tmp_path / "kc", "prod-eu", "https://k8s.prod.example.com:6443")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.probes
        def test_x(probes_cluster):
            pass
    """)
    result = pytester.runpytest_inprocess("--probes-provider", "existing",
                                          "--probes-kubeconfig", str(path))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ClusterError: refusing to run against context 'prod-eu'*"])
    assert "Traceback" not in result.stdout.str()
    assert "existing.py" not in result.stdout.str()


def test_an_existing_cluster_runs_only_tests_its_kubelets_are_configured_for() -> None:
    settings = ClusterSettings.of({"KubeletCrashLoopBackOffMax": True},
                                  {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}})
    running = {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}, "port": 10250,
               "featureGates": {"KubeletCrashLoopBackOffMax": True, "Other": False}}
    assert settings_mismatch(settings, {"n1": running, "n2": running}) is None
    other = {**running, "crashLoopBackOff": {"maxContainerRestartPeriod": "5m0s"}}
    assert settings_mismatch(settings, {"n1": running, "n2": other}) == (
        "node n2's kubelet has crashLoopBackOff.maxContainerRestartPeriod = '5m0s', the test "
        "needs '10s'")
    ungated = {k: v for k, v in running.items() if k != "featureGates"}
    assert settings_mismatch(settings, {"n1": ungated}) == (
        "node n1's kubelet has featureGates = None, the test needs "
        "{'KubeletCrashLoopBackOffMax': True}")
    assert settings_mismatch(settings, {"n1": "its kubelet's /configz did not answer (403)"}) == (
        "node n1: its kubelet's /configz did not answer (403)")
    assert settings_mismatch(settings, {}) == "it has no nodes"


def test_a_matching_existing_cluster_carries_the_settings_its_kubelet_runs_with() -> None:
    running = {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}, "port": 10250,
               "featureGates": {"ReduceDefaultCrashLoopBackOffDecay": True}}
    settings = running_settings({"n2": "no answer", "n1": running})
    assert settings.gates == {"ReduceDefaultCrashLoopBackOffDecay": True}
    assert settings.kubelet_config == {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}}
    # The test asked for the cap only; the kubelet's back-off starts at 1 s all the same.
    assert crashloop_backoff("v1.37.2", settings.gates, settings.kubelet_config).initial == 1
