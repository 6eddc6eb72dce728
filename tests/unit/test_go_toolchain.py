"""scripts/go-toolchain: which Go the pinned Kubernetes needs, and what bootstrap does about it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pytest_probes.binaries.k8s import PINNED_VERSIONS
from pytest_probes.cluster import version_key
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
script = load_script(ROOT / "scripts" / "go-toolchain")


def test_the_needed_go_is_the_newer_of_the_go_and_toolchain_lines() -> None:
    assert script.required_go("module k8s.io/kubernetes\n\ngo 1.26.0\n") == "1.26.0"
    assert script.required_go("go 1.24.0\n\ntoolchain go1.24.6\n") == "1.24.6"
    assert script.required_go("go 1.25\ntoolchain go1.24.1\n") == "1.25"
    recorded = (DATA / "kubernetes-v1.34.4.go.mod").read_text()
    assert script.version_tuple(script.required_go(recorded)) >= (1, 24, 0)
    with pytest.raises(ValueError, match="no `go` line"):
        script.required_go("module x\n")


@pytest.mark.parametrize(
    ("output", "required", "action"),
    [
        ("go version go1.26.8 linux/amd64\n", "1.26.0", "ok"),
        ("go version go1.26.0 linux/amd64\n", "1.26.0", "ok"),
        ("go version go1.26 linux/amd64\n", "1.26.0", "ok"),
        ("go version go1.25.7 linux/amd64\n", "1.26.0", "switch"),
        ("go version go1.27rc1 linux/amd64\n", "1.26.0", "ok"),
        ("go version go1.19.8 linux/amd64\n", "1.26.0", "download"),  # Debian 12's golang-go
        (None, "1.26.0", "download"),
        ("", "1.26.0", "download"),
    ],
)
def test_decision(output: str | None, required: str, action: str) -> None:
    assert script.decide(script.installed_go(output), required) == action


def test_toolchain_names_have_three_numbers() -> None:
    assert script.toolchain_version("1.26") == "go1.26.0"
    assert script.toolchain_version("1.26.11") == "go1.26.11"


def test_module_zip_hash_is_gos_dirhash() -> None:
    # The zip and its hash as Go's module cache keeps them (cache/download/.../v1.0.0.ziphash).
    archive = zipfile.ZipFile(DATA / "go-module-josharian-intern-v1.0.0.zip")
    assert script.dirhash(archive) == "h1:vlS4z54oSdjm0bgjRigI+G1HpF+tI+9rE5LLzOg8HmY="


def _fake_go(folder: Path, version: str, goroot: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    go.write_text(f"""#!/bin/sh
case "$1" in
  version) echo "go version go{version} linux/amd64";;
  env) [ "$GOTOOLCHAIN" = "go1.26.0" ] && echo "{goroot}" || exit 3;;
esac
""")
    go.chmod(0o755)
    return go


@pytest.fixture
def pinned_gomod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes' go.mod in a module cache of its own (so nothing is fetched)."""
    pinned = max(PINNED_VERSIONS.values(), key=version_key)
    mod = tmp_path / "gomodcache" / "cache" / "download" / "k8s.io" / "kubernetes" / "@v"
    mod.mkdir(parents=True)
    (mod / f"v{pinned}.mod").write_text("module k8s.io/kubernetes\n\ngo 1.26.0\n")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomodcache"))


@pytest.mark.usefixtures("pinned_gomod")
def test_an_older_go_switches_and_the_venv_gets_the_toolchains_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    venv, goroot = tmp_path / "venv", tmp_path / "toolchain"
    (venv / "bin").mkdir(parents=True)
    _fake_go(goroot / "bin", "1.26.0", goroot)
    _fake_go(tmp_path / "system", "1.25.7", goroot)
    monkeypatch.setenv("PATH", f"{venv / 'bin'}:{tmp_path / 'system'}:/usr/bin:/bin")
    assert script.main(["go-toolchain", str(venv)]) == 0
    assert (venv / "bin" / "go").resolve() == goroot / "bin" / "go"
    assert "fetching go1.26.0 (GOTOOLCHAIN=go1.26.0)" in capsys.readouterr().out
    # Once the system's go is new enough, the link goes.
    _fake_go(tmp_path / "system", "1.26.8", goroot)
    assert script.main(["go-toolchain", str(venv)]) == 0
    assert not (venv / "bin" / "go").exists()
    assert "go 1.26.8 will do" in capsys.readouterr().out
