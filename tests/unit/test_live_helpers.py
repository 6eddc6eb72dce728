"""The version gate of the live tests (tests/live/helpers.require_version)."""

from __future__ import annotations

import pytest

from tests.live.helpers import require_version


@pytest.mark.parametrize("version", ["v1.35.0", "v1.35.4", "v1.37.2", "1.36.3"])
def test_a_version_at_or_above_the_minimum_runs(version: str) -> None:
    require_version(version, "1.35", "restart rules")


def test_a_version_below_the_minimum_is_skipped_naming_both() -> None:
    with pytest.raises(pytest.skip.Exception,
                       match=r"^needs Kubernetes ≥ 1\.36 for RestartAllContainers \(KEP-5532\) "
                             r"\(running v1\.35\.4\)$"):
        require_version("v1.35.4", "1.36", "RestartAllContainers (KEP-5532)")
