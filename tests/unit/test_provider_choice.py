"""Which provider ``auto`` picks (pytest_probes.cluster.resolve_provider_name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_probes import cluster
from pytest_probes.errors import ClusterError


@pytest.fixture
def no_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(cluster.KIND_ENV, raising=False)
    return tmp_path


def _kind(folder: Path) -> Path:
    kind = folder / "kind"
    kind.write_text("#!/bin/sh\n")
    kind.chmod(0o755)
    return kind


def test_auto_picks_kind_only_where_docker_answers_and_kind_is_installed(
    no_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 0)
    assert cluster.resolve_provider_name("auto") == "local"
    _kind(no_kind)
    assert cluster.resolve_provider_name("auto") == "kind"
    monkeypatch.setattr(cluster, "docker_engine_answers", lambda: False)
    assert cluster.resolve_provider_name("auto") == "local"


def test_kind_named_by_the_environment_counts(
    no_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "docker_engine_answers", lambda: True)
    monkeypatch.setenv(cluster.KIND_ENV, str(_kind(no_kind)))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cluster.resolve_provider_name("auto") == "kind"


def test_nothing_to_run_names_what_is_missing(
    no_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError, match="and the kind binary"):
        cluster.resolve_provider_name("auto")


def test_a_named_provider_passes_through() -> None:
    assert cluster.resolve_provider_name("existing") == "existing"
