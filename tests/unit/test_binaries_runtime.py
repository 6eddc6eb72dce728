"""The container runtime's pins, go install commands and version reading (no real build)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pytest_probes.binaries import runtime
from pytest_probes.errors import ClusterError

FAKE_GO = """#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
with open(os.environ["FAKE_GO_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "cgo": os.environ.get("CGO_ENABLED"),
                          "goflags": os.environ.get("GOFLAGS"),
                          "toolchain": os.environ.get("GOTOOLCHAIN")}) + "\\n")
if os.environ.get("FAKE_GO_FAIL"):
    sys.stderr.write("go: module lookup disabled\\n")
    sys.exit(1)
for package in sys.argv[1:]:
    if "@" in package:
        name = package.split("@")[0].rstrip("/").rsplit("/", 1)[-1]
        (Path(os.environ["GOBIN"]) / name).write_text("#!/bin/sh\\necho fake\\n")
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    go = tmp_path / "go"
    go.write_text(FAKE_GO)
    go.chmod(0o755)
    log = tmp_path / "go.log"
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    return go, log


def calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_component_is_pinned_to_a_release_with_a_reason() -> None:
    assert [c.name for c in runtime.RUNTIME] == ["containerd", "runc", "cni-plugins"]
    for component in runtime.RUNTIME:
        assert re.fullmatch(r"v\d+\.\d+\.\d+", component.version), component
        assert component.reason
    assert runtime.CONTAINERD.version.startswith("v2.")
    assert runtime.RUNC.version >= "v1.4"
    assert runtime.describe() == (f"containerd {runtime.CONTAINERD.plain_version}, "
                                  f"runc {runtime.RUNC.plain_version}")


def test_build_flags_stamp_the_version_and_keep_the_tags() -> None:
    flags = runtime.CONTAINERD.build_flags()
    assert flags[:3] == ["-trimpath", "-tags", "no_aufs no_zfs no_btrfs no_devmapper "
                         "urfave_cli_no_docs"]
    assert flags[3] == "-ldflags"
    assert (f"-X github.com/containerd/containerd/v2/version.Version="
            f"{runtime.CONTAINERD.version}") in flags[4]
    assert flags[4].startswith("-s -w")
    assert "seccomp" in runtime.RUNC.build_flags()[2].split()


def test_ensure_runtime_installs_each_component_once_into_its_versioned_folder(
    tmp_path: Path, fake_go: tuple[Path, Path]
) -> None:
    go, log = fake_go
    lines: list[str] = []
    bins = runtime.ensure_runtime(tmp_path, lines.append, go=str(go))
    assert bins.containerd == (tmp_path / "runtime" / f"containerd-{runtime.CONTAINERD.version}"
                               / "bin" / "containerd")
    for component in runtime.RUNTIME:
        assert component.missing(tmp_path) == []
    recorded = calls(log)
    assert len(recorded) == 3
    containerd, runc, cni = recorded
    module = runtime.CONTAINERD.module
    assert containerd["argv"][-3:] == [  # type: ignore[index]
        f"{module}/cmd/containerd@{runtime.CONTAINERD.version}",
        f"{module}/cmd/containerd-shim-runc-v2@{runtime.CONTAINERD.version}",
        f"{module}/cmd/ctr@{runtime.CONTAINERD.version}",
    ]
    assert runc["argv"][-1] == f"github.com/opencontainers/runc@{runtime.RUNC.version}"  # type: ignore[index]
    assert (runc["cgo"], containerd["cgo"], cni["cgo"]) == ("1", "0", "0")
    for call in recorded:
        assert call["argv"][0] == "install"  # type: ignore[index]
        assert "-mod=" not in str(call["goflags"])
        assert call["toolchain"] == "local"
    assert any("built containerd" in line for line in lines)
    assert not list((tmp_path / "runtime").glob(".out-*"))

    runtime.ensure_runtime(tmp_path, lines.append, go=str(go))
    assert len(calls(log)) == 3


def test_a_failed_build_keeps_the_command_and_stderr(
    tmp_path: Path, fake_go: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    go, _log = fake_go
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(ClusterError) as info:
        runtime.ensure_runtime(tmp_path, lambda _line: None, go=str(go))
    assert "compiling containerd v2." in str(info.value)
    assert "module lookup disabled" in str(info.value)
    assert info.value.command is not None and info.value.command[1] == "install"
    assert not (tmp_path / "runtime" / f"containerd-{runtime.CONTAINERD.version}" / "bin").exists()


def test_a_missing_go_names_the_toolchain(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="Go toolchain"):
        runtime.ensure_runtime(tmp_path, lambda _line: None, go=str(tmp_path / "no-go"))


def test_installed_versions_asks_the_binaries(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("containerd", "containerd github.com/containerd/containerd/v2 v2.3.7 "),
                       ("runc", "runc version 1.4.4\\nspec: 1.3.0")):
        path = folder / name
        path.write_text(f"#!/bin/sh\nprintf '{text}\\n'\n")
        path.chmod(0o755)
    bins = runtime.RuntimeBins(containerd_dir=folder, runc_dir=folder, cni_dir=folder)
    assert runtime.installed_versions(bins) == "containerd 2.3.7, runc 1.4.4"
    os.unlink(folder / "runc")
    assert runtime.installed_versions(bins) == "containerd 2.3.7, runc ?"
