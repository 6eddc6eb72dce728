"""Which kubelet releases differ, by version (pytest_probes.kubelet_versions)."""

from __future__ import annotations

import pytest

from pytest_probes.kubelet_versions import (
    exec_probes_cancelled_while_terminating,
    kubelet_restart_resets_probe_status,
    parse_version,
)


@pytest.mark.parametrize(("version", "parsed"), [
    ("v1.36.3", (1, 36, 3)), ("1.37.2", (1, 37, 2)), ("v1.38.0-beta.0+abc", (1, 38, 0)),
])
def test_parse_version(version: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(version) == parsed


@pytest.mark.parametrize("version", ["", "v1.36", "latest", "1.x.3"])
def test_parse_version_rejects_what_is_not_a_version(version: str) -> None:
    with pytest.raises(ValueError, match=r"is not a Kubernetes version such as v1\.36\.3"):
        parse_version(version)


@pytest.mark.parametrize(("version", "cancelled"), [
    ("v1.33.13", False),
    ("v1.34.4", False),
    ("v1.35.0", True),
    ("v1.35.4", True),
    ("v1.36.0", False),
    ("v1.36.2", False),
    ("v1.36.3", True),
    ("v1.37.0", False),
    ("v1.37.2", False),
])
def test_exec_probes_cancelled_while_terminating_follows_kubernetes_140881(
    version: str, cancelled: bool
) -> None:
    assert exec_probes_cancelled_while_terminating(version) is cancelled


@pytest.mark.parametrize(("version", "resets"), [
    ("v1.33.13", True), ("v1.34.4", True), ("v1.35.0", False), ("v1.36.3", False),
    ("v1.37.2", False),
])
def test_kubelet_restart_resets_probe_status_until_1_35(version: str, resets: bool) -> None:
    assert kubelet_restart_resets_probe_status(version) is resets
