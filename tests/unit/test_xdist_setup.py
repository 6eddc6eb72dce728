"""Which runs the xdist controller readies the cluster for (``pytest_probes._setup``)."""

from __future__ import annotations

import pytest

from pytest_probes._setup import selects_probes


@pytest.mark.parametrize(
    ("markexpr", "expected"),
    [
        ("probes", True),
        ("probes and not slow", True),
        ("(probes)", True),
        ("not probes", False),
        ("probes or not probes", False),  # every test: not only probe tests
        ("slow", False),
        ("", False),  # everything: there may be no probe test at all
        ("probes and", False),  # a bad expression: pytest says so itself
    ],
)
def test_only_an_expression_that_needs_the_probes_marker_selects_the_set_up(
    markexpr: str, expected: bool
) -> None:
    assert selects_probes(markexpr) is expected
