"""This repository's collection: a run of the live tests alone does not import the others.

Every test with the ``probes`` or ``selftest`` marker lives in ``tests/live``
(``tests/unit/test_layout.py`` checks it). A run whose ``-m`` selects only those (``-m probes``,
``-m selftest``) would still import every module of ``tests/unit``, ``tests/plugin`` and
``tests/integration`` to find that none of their tests is selected: 3.6 s of CPU per process
against 1.1 s for ``tests/live`` alone. Under pytest-xdist every worker collects, so with 16
workers on 2 cores that was some 25 s before the first scenario began. Such a run skips those
directories.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pytest_probes._setup import matches_markers

OFFLINE = tuple(Path(__file__).parent / name for name in ("unit", "plugin", "integration"))

OFFLINE_MARKS = ("parametrize", "skipif", "usefixtures")
"""The only marks the tests outside ``tests/live`` carry."""


def live_only(markexpr: str) -> bool:
    """Whether ``-m markexpr`` can select no test outside ``tests/live``.

    That is: no test with none, some or all of :data:`OFFLINE_MARKS` matches it.
    """
    matches = matches_markers(markexpr)
    return matches is not None and not any(
        matches(marks) for n in range(len(OFFLINE_MARKS) + 1)
        for marks in itertools.combinations(OFFLINE_MARKS, n))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path in OFFLINE and live_only(config.getoption("markexpr", "") or ""):
        return True
    return None
