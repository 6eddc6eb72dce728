"""What the plugin's hooks and its fixtures share about a run: its id and its progress lines."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest


def new_run_id() -> str:
    """A fresh id for one test run: it labels the run's namespaces and names its cluster marker.

    The xdist controller hands its id to the workers (:mod:`pytest_probes._xdist`); a pytest run
    started from inside a test gets its own.
    """
    return f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


def progress_writer(config: pytest.Config) -> Callable[[str], None]:
    """Return a callback that prints a progress line to the terminal, past output capturing."""
    start = time.monotonic()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        text = f"probes [{time.monotonic() - start:6.1f}s] {line}"
        if reporter is None:
            return
        if capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line(text)
        else:
            reporter.write_line(text)

    return write
