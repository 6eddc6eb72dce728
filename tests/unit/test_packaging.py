"""What a user of the wheel relies on: its files, entry points, license and changelog."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel of this checkout, built as a user's pip builds it."""
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (built,) = dist.glob("pytest_probes-*.whl")
    return zipfile.ZipFile(built)


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    pattern = rf"pytest_probes-[^/]+\.dist-info/{name}"
    (path,) = [n for n in wheel.namelist() if re.fullmatch(pattern, n)]
    return wheel.read(path).decode()


def test_the_wheel_holds_every_file_of_the_package_and_the_manifests(
    wheel: zipfile.ZipFile,
) -> None:
    names = set(wheel.namelist())
    # Every file the package reads at run time: the Python modules, the target app with its
    # Dockerfile, the pause image's C source, py.typed, whatever is added beside them.
    package = {path.relative_to(ROOT).as_posix() for path in (ROOT / "pytest_probes").rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert package - names == set()
    # The manifests the tests name (deploy.MANIFESTS_DIR in an installed wheel) and the RBAC.
    manifests = {"pytest_probes/" + path.relative_to(ROOT).as_posix()
                 for path in (ROOT / "manifests").rglob("*") if path.is_file()}
    assert manifests - names == set()
    for needed in ("pytest_probes/py.typed", "pytest_probes/target/Dockerfile",
                   "pytest_probes/target/__main__.py", "pytest_probes/target/server.py",
                   "pytest_probes/manifests/seed001-liveness.yaml",
                   "pytest_probes/manifests/rbac/pytest-probes-rbac.yaml"):
        assert needed in names, needed
    assert [n for n in names if n.endswith("/pause.c")], "the pause image's source"


def test_the_wheel_holds_nothing_but_the_package_and_its_metadata(
    wheel: zipfile.ZipFile,
) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"pytest_probes"}
    assert not [n for n in wheel.namelist() if "tests/" in n or n.endswith((".pyc", ".orig"))]


def test_the_wheel_carries_the_license_entry_points_and_extras(wheel: zipfile.ZipFile) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _dist_info(wheel, "licenses/LICENSE") == (ROOT / "LICENSE").read_text()
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["pytest11"]) == project["entry-points"]["pytest11"]
    assert dict(entry_points["console_scripts"]) == project["scripts"]
    names = set(wheel.namelist())
    for target in [*project["entry-points"]["pytest11"].values(), *project["scripts"].values()]:
        assert target.split(":")[0].replace(".", "/") + ".py" in names, target
    metadata = _dist_info(wheel, "METADATA")
    assert set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M)) == set(
        project["optional-dependencies"])
    assert "License-File: LICENSE" in metadata
