"""The license and changelog a user of the wheel relies on match the metadata."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_file_is_the_license_the_metadata_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Permission is hereby granted" in text


def test_the_changelog_has_the_current_version_and_an_unreleased_section() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines()
                if line.startswith("## ")]
    assert headings[0] == "## Unreleased"
    assert f"## {project['version']}" in headings
