"""The kind provider's pins, version choice and missing-kind message, offline."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from pytest_probes.binaries import k8s
from pytest_probes.cluster import ClusterConfig, version_key
from pytest_probes.cluster_settings import ClusterSettings
from pytest_probes.errors import ClusterError, UnsupportedSettings
from pytest_probes.providers import kind

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_every_local_minor_has_a_kind_release_with_an_image_by_digest() -> None:
    assert set(kind.KIND_RELEASE_FOR) == set(k8s.PINNED_VERSIONS)
    assert kind.SUPPORTED_MINORS == tuple(sorted(k8s.PINNED_VERSIONS, key=version_key))
    for minor, release in kind.KIND_RELEASE_FOR.items():
        image = kind.NODE_IMAGES[release][minor]
        assert re.fullmatch(rf"kindest/node:v{re.escape(minor)}\.\d+@sha256:[0-9a-f]{{64}}",
                            image), image
    assert {m for m, r in kind.KIND_RELEASE_FOR.items() if r != kind.PINNED_KIND} == {"1.33"}
    every = [image for table in kind.NODE_IMAGES.values() for image in table.values()]
    digests = [image.partition("@")[2] for image in every]
    assert len(set(digests)) == len(digests)


def test_the_pinned_kind_default_is_its_newest_image() -> None:
    assert kind.PINNED_KIND == "v0.33.0"
    assert kind.node_image(None).startswith("kindest/node:v1.37.0@sha256:a1ed56cf")


@pytest.mark.parametrize(("requested", "expected"), [
    (None, "kindest/node:v1.37.0@"),
    ("1.34", "kindest/node:v1.34.11@"),
    ("1.34.11", "kindest/node:v1.34.11@"),
    ("v1.35", "kindest/node:v1.35.8@"),
    ("1.36", "kindest/node:v1.36.4@"),
])
def test_node_image_picks_the_pinned_image(requested: str | None, expected: str) -> None:
    assert kind.node_image(requested).startswith(expected)


def test_kind_v0_32_keeps_its_own_images() -> None:
    assert kind.node_image("1.33", "v0.32.0").startswith("kindest/node:v1.33.12@")
    assert kind.node_image(None, "v0.32.0").startswith("kindest/node:v1.36.1@")


@pytest.mark.parametrize("requested", ["1.32", "1.34.4", "2.0", "latest-ish"])
def test_an_unknown_version_lists_the_known_ones(requested: str) -> None:
    with pytest.raises(ClusterError) as info:
        kind.node_image(requested)
    assert ("1.34 (= 1.34.11), 1.35 (= 1.35.8), 1.36 (= 1.36.4), 1.37 (= 1.37.0)"
            in str(info.value))


def test_kind_v0_33_has_no_1_33_image_and_names_the_release_that_has() -> None:
    with pytest.raises(ClusterError) as info:
        kind.node_image("1.33", "v0.33.0")
    message = str(info.value)
    assert "kind v0.33.0 has no node image for Kubernetes '1.33'" in message
    assert "for 1.33 install kind v0.32.0" in message


def test_an_unknown_version_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("--probes-provider", "kind",
                                          "--probes-k8s-version", "1.32")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probes-k8s-version*no node image for Kubernetes '1.32'*"
                                 "1.34 (= 1.34.11)*1.37 (= 1.37.0)*"])


def test_missing_kind_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(kind.KIND_ENV, raising=False)
    with pytest.raises(ClusterError) as info:
        kind.KindProvider().up(ClusterConfig(name="x", cache_dir=tmp_path))
    message = str(info.value)
    assert "kind is not on PATH" in message
    assert f"https://kind.sigs.k8s.io/dl/{kind.PINNED_KIND}/kind-linux-amd64" in message
    monkeypatch.setenv(kind.KIND_ENV, str(tmp_path / "my-kind"))
    with pytest.raises(ClusterError, match=r"\$PYTEST_PROBES_KIND=.*my-kind is not an executable"):
        kind.KindProvider().up(ClusterConfig(name="x", cache_dir=tmp_path))


def test_the_build_context_holds_only_the_target_app(tmp_path: Path) -> None:
    dockerfile = kind.stage_target_context(tmp_path)
    assert dockerfile == tmp_path / "pytest_probes" / "target" / "Dockerfile"
    assert "COPY pytest_probes/target" in dockerfile.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pytest_probes"]
    assert not list(tmp_path.rglob("__pycache__"))


def test_the_ci_matrix_is_the_providers_pinned_versions() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    live = workflow["jobs"]["live"]
    pairs = [(str(entry["k8s"]), str(entry["kind"]))
             for entry in live["strategy"]["matrix"]["include"]]
    assert pairs == [(minor, kind.KIND_RELEASE_FOR[minor]) for minor in kind.SUPPORTED_MINORS]
    steps = "\n".join(str(step.get("run", "")) for step in live["steps"])
    assert "--probes-provider kind" in steps
    assert "--probes-k8s-version ${{ matrix.k8s }}" in steps
    assert "kind.sigs.k8s.io/dl/${{ matrix.kind }}/kind-linux-amd64" in steps
    uploads = [s for s in live["steps"] if str(s.get("uses", "")).startswith(
        "actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "failure()"
    assert "--probes-artifacts-dir" in steps and uploads[0]["with"]["path"] in steps


def _patches(config: dict[str, object]) -> list[dict[str, object]]:
    return [yaml.safe_load(text) for text in config["kubeadmConfigPatches"]]  # type: ignore[union-attr]


def test_kind_config_keeps_two_dead_instances_in_both_kubeadm_formats() -> None:
    config = kind.kind_config(None, cgroup_v1=False)
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    patches = _patches(config)
    beta3 = [p for p in patches if p.get("apiVersion") == "kubeadm.k8s.io/v1beta3"]
    beta4 = [p for p in patches if p.get("apiVersion") == "kubeadm.k8s.io/v1beta4"]
    assert {p["kind"] for p in beta3} == {p["kind"] for p in beta4} == {
        "InitConfiguration", "JoinConfiguration"}
    for patch in beta3:
        assert patch["nodeRegistration"] == {
            "kubeletExtraArgs": {"maximum-dead-containers-per-container": "2"}}
    for patch in beta4:
        assert patch["nodeRegistration"] == {"kubeletExtraArgs": [
            {"name": "maximum-dead-containers-per-container", "value": "2"}]}
    assert not [p for p in patches if p["kind"] == "KubeletConfiguration"]


def test_kind_config_on_cgroup_v1_lets_the_kubelet_run_on_cgroupfs() -> None:
    config = kind.kind_config(None, cgroup_v1=True)
    assert {"kind": "KubeletConfiguration", "failCgroupV1": False,
            "cgroupDriver": "cgroupfs"} in _patches(config)
    # containerd's runc must use the same driver as the kubelet, for both of kind's runtimes.
    containerd = tomllib.loads("\n".join(config["containerdConfigPatches"]))
    runtimes = containerd["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert {name: r["options"]["SystemdCgroup"] for name, r in runtimes.items()} == {
        "runc": False, "test-handler": False}


def test_kind_config_on_cgroup_v2_keeps_kinds_systemd_driver() -> None:
    config = kind.kind_config(None, cgroup_v1=False)
    assert "containerdConfigPatches" not in config
    assert not [p for p in _patches(config) if "cgroupDriver" in p]


def test_the_users_kind_config_is_merged_under_ours() -> None:
    user = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
            "featureGates": {"SomeGate": True},
            "containerdConfigPatches": ["[plugins.x]\n  y = 1\n"],
            "kubeadmConfigPatches": ["kind: KubeletConfiguration\nfailCgroupV1: true\n"]}
    config = kind.kind_config(user, cgroup_v1=True)
    assert config["featureGates"] == {"SomeGate": True}
    assert config["containerdConfigPatches"] == ["[plugins.x]\n  y = 1\n",
                                                 kind.CONTAINERD_CGROUPFS_PATCH]
    patches = _patches(config)
    # kind applies patches in order: ours come last and win.
    assert patches[0] == {"kind": "KubeletConfiguration", "failCgroupV1": True}
    assert patches[-1] == {"kind": "KubeletConfiguration", "failCgroupV1": False,
                           "cgroupDriver": "cgroupfs"}


def test_a_kind_config_of_another_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="expected kind: Cluster"):
        kind.kind_config({"kind": "Pod"}, cgroup_v1=False)
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ClusterError, match="is not a YAML mapping"):
        kind.read_kind_config(bad)


def test_cgroup_version_is_read_from_the_mount(tmp_path: Path) -> None:
    assert kind.host_is_cgroup_v1(tmp_path)
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert not kind.host_is_cgroup_v1(tmp_path)


def test_a_missing_kind_config_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("--probes-provider", "kind",
                                          "--probes-kind-config", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probes-kind-config*'nope.yaml' is not a file*"])


def test_a_given_node_image_shows_in_the_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("--probes-provider", "kind",
                                          "--probes-kind-node-image", "my/node:v1")
    result.stdout.fnmatch_lines(["probes: *node image my/node:v1 as given, no digest pin"])


def _failed_command_message(tmp_path: Path, stderr: str) -> str:
    """Run a tool that prints ``stderr`` and exits 1; return the ClusterError's message."""
    from pytest_probes._command import run_command

    output = tmp_path / "output.txt"
    output.write_text(stderr)
    script = tmp_path / "tool"
    script.write_text(f"#!/bin/sh\ncat {output} >&2\nexit 1\n")
    script.chmod(0o755)
    with pytest.raises(ClusterError) as info:
        run_command([str(script)], what="creating", timeout=30, provider="kind")
    return str(info.value)


def test_a_failed_command_names_its_error_line_before_a_stack_trace(tmp_path: Path) -> None:
    frames = "".join(f"frame {i}\n" for i in range(40))
    message = _failed_command_message(
        tmp_path, f"ERROR: failed to create cluster: boom\n{frames}")
    assert "ERROR: failed to create cluster: boom" in message
    assert "frame 39" in message


# The shape of kind's output when kubeadm init fails: its error, kubeadm's output, then the Go
# stack of the wrapped error (the last lines of a CI run's failure were all frames).
KIND_KUBEADM_FAILURE = """\
ERROR: failed to create cluster: failed to init node with kubeadm: command "docker exec \
--privileged probes-kind-x-control-plane kubeadm init --config=/kind/kubeadm.conf" failed with \
error: exit status 1
Command Output: [init] Using Kubernetes version: v1.37.2
[wait-control-plane] Waiting for the kubelet to boot up the control plane
[control-plane-check] kube-apiserver is not healthy after 4m0.000s
error execution phase wait-control-plane: failed while waiting for the control plane to start
k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow.(*Runner).Run.func1
\tk8s.io/kubernetes@v1.37.2/cmd/kubeadm/app/cmd/phases/workflow/runner.go:262
k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow.(*Runner).visitAll
\tk8s.io/kubernetes@v1.37.2/cmd/kubeadm/app/cmd/phases/workflow/runner.go:450
main.main
\tk8s.io/kubernetes@v1.37.2/cmd/kubeadm/kubeadm.go:25
runtime.main
\truntime/proc.go:290
runtime.goexit
\truntime/asm_amd64.s:1771
"""


def test_a_failed_command_keeps_what_kubeadm_said_and_drops_the_stack(tmp_path: Path) -> None:
    message = _failed_command_message(tmp_path, KIND_KUBEADM_FAILURE + "".join(
        f"main.frame{i}\n\tmain.go:{i}\n" for i in range(30)))
    assert "kube-apiserver is not healthy after 4m0.000s" in message
    assert "error execution phase wait-control-plane" in message
    assert "ERROR: failed to create cluster" in message
    assert "runner.go" not in message and "main.frame29" not in message


def test_the_kubeconfig_is_replaced_atomically_and_private(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    kind._write_private(path, "a: 1\n")
    assert path.read_text() == "a: 1\n" and (path.stat().st_mode & 0o777) == 0o600
    inode = path.stat().st_ino
    kind._write_private(path, "a: 1\n")  # unchanged: left as it is
    assert path.stat().st_ino == inode
    kind._write_private(path, "a: 2\n")
    assert path.read_text() == "a: 2\n" and path.stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"]


def test_kind_config_of_a_configured_cluster_sets_gates_and_patches_the_kubelet() -> None:
    settings = ClusterSettings.of({"ReduceDefaultCrashLoopBackOffDecay": True},
                                  {"crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}})
    user = {"kind": "Cluster", "featureGates": {"Mine": True}}
    config = kind.kind_config(user, cgroup_v1=False, settings=settings)
    # kind hands featureGates to the kubelet and to the control plane's components.
    assert config["featureGates"] == {"Mine": True, "ReduceDefaultCrashLoopBackOffDecay": True}
    patches = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    assert patches[-1] == {"kind": "KubeletConfiguration",
                           "crashLoopBackOff": {"maxContainerRestartPeriod": "10s"}}
    plain = kind.kind_config(None, cgroup_v1=False, settings=ClusterSettings())
    assert plain == kind.kind_config(None, cgroup_v1=False)
    assert "featureGates" not in plain


def test_a_gate_the_node_images_version_lacks_is_refused_before_kind_create(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = ClusterConfig(name="k", cache_dir=tmp_path,
                           settings=ClusterSettings.of({"ContainerRestartRules": True}))
    kind.check_gates(config, "1.33.13")  # no binaries of 1.33.13 in the cache: kind create says
    scheduler = k8s.bin_dir(tmp_path, "1.33.13") / "kube-scheduler"
    scheduler.parent.mkdir(parents=True)
    scheduler.write_text("")
    monkeypatch.setattr(k8s, "feature_gate_problem", lambda directory, gates: (
        "unrecognized feature gate: ContainerRestartRules"))
    with pytest.raises(UnsupportedSettings, match="feature gate ContainerRestartRules does not "
                       r"exist in Kubernetes 1\.33\.13"):
        kind.check_gates(config, "1.33.13")
    kind.check_gates(ClusterConfig(name="k", cache_dir=tmp_path), "1.33.13")  # no gates: no ask
