"""scripts/min-versions: the pins come from pyproject.toml's lower bounds, core and extras."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "min-versions"


def _script() -> ModuleType:
    return load_script(SCRIPT)


def test_every_bounded_requirement_of_the_project_is_pinned_to_its_bound() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins, unbounded = _script().lower_bounds(pyproject)
    project = pyproject["project"]
    declared = list(project["dependencies"])
    for requirements in project["optional-dependencies"].values():
        declared += requirements
    assert len(pins) + len(unbounded) == len(declared)
    for requirement in declared:
        name = requirement.split(">=")[0]
        assert name in unbounded or requirement == f"{name}>={pins[name]}", requirement
    assert set(pins) >= {"pytest", "kubernetes", "cryptography", "tomli-w", "pytest-xdist"}


def test_bounds_are_read_from_any_specifier_and_must_agree() -> None:
    lower_bounds = _script().lower_bounds
    pins, unbounded = lower_bounds({"project": {
        "dependencies": ["a>=1.2,<2", "b[x]==3.0", "c", "d >= 4 ; python_version >= '3.11'"],
        "optional-dependencies": {"e": ["a>=1.2", "f<5"]},
    }})
    assert pins == {"a": "1.2", "b": "3.0", "d": "4"}
    assert unbounded == ["c", "f"]
    with pytest.raises(ValueError, match=r"a has two lower bounds: 1\.2 and 1\.3"):
        lower_bounds({"project": {"dependencies": ["a>=1.2"],
                                  "optional-dependencies": {"x": ["a>=1.3"]}}})
