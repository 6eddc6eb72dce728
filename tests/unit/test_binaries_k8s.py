"""Version table, go.mod rendering and ldflags of the local provider's build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_probes.binaries import k8s
from pytest_probes.errors import ClusterError

DATA = Path(__file__).resolve().parent.parent / "data"
K8S_GOMOD = (DATA / "kubernetes-v1.34.4.go.mod").read_text()


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("1.34", "1.34.4"),
        ("1.34.4", "1.34.4"),
        ("v1.34.4", "1.34.4"),
        (" 1.33 ", "1.33.13"),
        ("v1.33", "1.33.13"),
    ],
)
def test_resolve_version_accepts_minor_and_pinned_full_versions(requested: str, expected: str):
    assert k8s.resolve_version(requested) == expected


def test_resolve_version_default_is_the_pinned_default_minor():
    assert k8s.resolve_version(None) == k8s.PINNED_VERSIONS[k8s.DEFAULT_MINOR]


@pytest.mark.parametrize("requested", ["1.30", "1.34.3", "2.0", "banana", "1.34.4.1"])
def test_resolve_version_rejects_unknown_versions_listing_the_known_ones(requested: str):
    with pytest.raises(ClusterError) as info:
        k8s.resolve_version(requested)
    message = str(info.value)
    assert repr(requested) in message
    for minor, full in k8s.PINNED_VERSIONS.items():
        assert f"{minor} (= {full})" in message
    assert info.value.provider == "local"


def test_known_versions_are_sorted_numerically():
    versions = k8s.known_versions()
    assert versions == sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert "1.34.4" in versions


def test_staging_version():
    assert k8s.staging_version("1.34.4") == "v0.34.4"
    assert k8s.staging_version("1.33.13") == "v0.33.13"


def test_parse_staging_replaces_on_recorded_kubernetes_gomod():
    replaces = k8s.parse_staging_replaces(K8S_GOMOD, "1.34.4")
    modules = [r.module for r in replaces]
    assert len(modules) == 31
    assert modules == sorted(modules)
    for module in ("k8s.io/api", "k8s.io/client-go", "k8s.io/kubelet", "k8s.io/cri-client"):
        assert module in modules
    assert {r.version for r in replaces} == {"v0.34.4"}
    assert replaces[0].render() == "k8s.io/api => k8s.io/api v0.34.4"


def test_parse_staging_replaces_single_line_form_and_comments():
    gomod = (
        "module k8s.io/kubernetes\n"
        "replace k8s.io/api => ./staging/src/k8s.io/api // staging\n"
        "replace github.com/x/y => github.com/x/y v1.0.0\n"
        "// replace k8s.io/commented => ./staging/src/k8s.io/commented\n"
    )
    replaces = k8s.parse_staging_replaces(gomod, "1.33.13")
    assert [r.render() for r in replaces] == ["k8s.io/api => k8s.io/api v0.33.13"]


def test_parse_staging_replaces_rejects_a_foreign_gomod():
    with pytest.raises(ClusterError, match="no `replace"):
        k8s.parse_staging_replaces("module example.com/x\n\ngo 1.22\n", "1.34.4")


def test_required_version_reads_block_and_single_line_requires():
    assert k8s.required_version(K8S_GOMOD, k8s.ETCD_MODULE) == "v3.6.4"
    assert k8s.required_version(K8S_GOMOD, "go.etcd.io/etcd/client/v3") == "v3.6.4"
    assert k8s.required_version("require a.b/c v1.2.3\n", "a.b/c") == "v1.2.3"
    assert k8s.required_version(K8S_GOMOD, "example.com/missing") is None


def test_render_wrapper_gomod():
    text = k8s.render_wrapper_gomod("1.34.4", K8S_GOMOD)
    lines = text.splitlines()
    assert lines[0].startswith("module ")
    assert "go 1.24.0" in lines
    assert "godebug default=go1.24" in lines
    assert "\tk8s.io/kubernetes v1.34.4" in lines
    assert "\tgo.etcd.io/etcd/server/v3 v3.6.4" in lines
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.4" in lines
    assert "./staging" not in text
    assert text.count(" => ") == 31


def test_render_wrapper_gomod_needs_etcd_in_the_graph():
    gomod = "module k8s.io/kubernetes\nreplace k8s.io/api => ./staging/src/k8s.io/api\n"
    with pytest.raises(ClusterError, match=r"go\.etcd\.io/etcd/server/v3"):
        k8s.render_wrapper_gomod("1.34.4", gomod)


def test_ldflags_stamp_the_version_in_both_version_packages():
    flags = k8s.ldflags("1.34.4", build_date="2026-01-02T03:04:05Z")
    assert flags.startswith("-s -w ")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.34.4" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=34" in flags
        assert f"-X {package}.gitTreeState=clean" in flags
        assert f"-X {package}.buildDate=2026-01-02T03:04:05Z" in flags


def test_go_env_forces_module_mode_and_local_toolchain_keeping_other_flags():
    env = k8s.go_env({"GOFLAGS": "-buildvcs=false -mod=vendor", "GOPROXY": "https://p.example"})
    assert env["GOFLAGS"].split() == ["-buildvcs=false", "-mod=mod"]
    assert env["GOTOOLCHAIN"] == "local"
    assert env["GOPROXY"] == "https://p.example"


def test_missing_binaries_and_bin_dir(tmp_path: Path):
    directory = k8s.bin_dir(tmp_path, "1.34.4")
    assert directory == tmp_path / "k8s" / "1.34.4" / "bin"
    assert k8s.missing_binaries(tmp_path, "1.34.4") == list(k8s.BINARIES)
    directory.mkdir(parents=True)
    for name in ("kubelet", "etcd"):
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    (directory / "kube-apiserver").write_text("not executable")
    assert k8s.missing_binaries(tmp_path, "1.34.4") == [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]


def test_ensure_binaries_reports_a_missing_go_toolchain(tmp_path: Path):
    with pytest.raises(ClusterError, match="Go toolchain") as info:
        k8s.ensure_binaries(
            "1.34.4", tmp_path, lambda _line: None, go=str(tmp_path / "no-such-go")
        )
    assert info.value.command is not None


def test_run_go_says_how_long_it_runs_and_stops_it_after_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(k8s, "PROGRESS_INTERVAL", 0.5)
    lines: list[str] = []
    with pytest.raises(ClusterError, match=r"^building x took longer than 2 s and was stopped$"):
        k8s.run_go(["sleep", "30"], cwd=tmp_path, env=dict(os.environ), what="building x",
                   progress=lines.append, timeout=2.0)
    assert lines and all(line.startswith("building x (") for line in lines)


def test_run_go_returns_the_output_or_fails_with_the_end_of_stderr(tmp_path: Path):
    assert k8s.run_go(["sh", "-c", "echo built"], cwd=tmp_path, env=dict(os.environ),
                      what="building x", progress=print, timeout=30) == "built\n"
    with pytest.raises(ClusterError, match=r"building x failed \(exit 3\) in .*:\nno go"):
        k8s.run_go(["sh", "-c", "echo 'no go' >&2; exit 3"], cwd=tmp_path, env=dict(os.environ),
                   what="building x", progress=print, timeout=30)


def test_feature_gates_a_version_refuses_are_told_by_its_scheduler(tmp_path: Path) -> None:
    # kube-scheduler --feature-gates=... --version validates the flag and exits (klog's line).
    scheduler = tmp_path / "kube-scheduler"
    scheduler.write_text(
        "#!/bin/sh\ncase \"$1\" in *Foo*) echo 'E1205 16:27:43.488607 3432 run.go:72] "
        "\"command failed\" err=\"unrecognized feature gate: Foo\"' >&2; exit 1;; esac\n"
        "echo Kubernetes v1.33.13\n")
    scheduler.chmod(0o755)
    assert k8s.feature_gate_problem(tmp_path, {"Foo": True}) == "unrecognized feature gate: Foo"
    assert k8s.feature_gate_problem(tmp_path, {"KubeletCrashLoopBackOffMax": True}) is None
    assert k8s.feature_gate_problem(tmp_path, {}) is None
    assert k8s.feature_gates_flag({"B": False, "A": True}) == "--feature-gates=A=true,B=false"
