"""In CI (``CI`` set), an integration test that skips fails instead.

These tests skip on a machine without root, containerd, runc or Go. CI installs all of that
(``make bootstrap``), so there a skip means something is missing, not that the test passed.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() not in ("", "0", "false"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {reason}"
