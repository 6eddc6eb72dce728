"""scripts/live's CPU check: steal time read from /proc/stat, under load of its own."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "live"


def _live() -> ModuleType:
    return load_script(SCRIPT)


def test_steal_share_is_the_stolen_part_of_all_cpu_time() -> None:
    live = _live()
    assert live.steal_share((100, 1000), (150, 1200)) == 0.25
    assert live.steal_share((100, 1000), (100, 1000)) == 0.0


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_the_cpu_check_keeps_the_cpus_busy_and_reports_what_it_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = _live()
    monkeypatch.setattr(live, "CPU_CHECK_SECONDS", 0.5)
    steal, total = live.cpu_times()
    assert 0 <= steal <= total
    assert 0.0 <= live.measured_steal() <= 1.0
    lines: list[str] = []
    monkeypatch.setattr(live, "BUSY_HOST_STEAL", -1.0)  # every host counts as busy
    monkeypatch.setenv("PROBES_QUIET_WAIT", "0")
    live.wait_for_cpu(lines.append)
    assert len(lines) == 1 and "running anyway" in lines[0], lines
    monkeypatch.setattr(live, "BUSY_HOST_STEAL", 1.0)
    lines.clear()
    live.wait_for_cpu(lines.append)
    assert len(lines) == 1 and lines[0].startswith("CPU check: the host took"), lines
