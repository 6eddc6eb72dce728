"""The shared file lock: waits with progress, gives up with the lock's path, frees on exit."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest

from pytest_probes._locks import file_lock
from pytest_probes.errors import ClusterError


def hold(path: Path, seconds: float, ready: threading.Event) -> None:
    with file_lock(path, timeout=5, progress=print, waiting=str, held_too_long="x"):
        ready.set()
        time.sleep(seconds)


def test_second_holder_waits_reports_and_then_gets_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    ready = threading.Event()
    holder = threading.Thread(target=hold, args=(path, 0.5, ready))
    holder.start()
    ready.wait(5)
    lines: list[str] = []
    started = time.monotonic()
    with file_lock(path, timeout=5, progress=lines.append,
                   waiting=lambda w: f"waiting {w:.1f}", held_too_long="x", poll=0.05):
        waited = time.monotonic() - started
    holder.join()
    assert 0.3 < waited < 3
    assert lines and lines[0].startswith("waiting ")


def test_gives_up_naming_the_lock_when_held_too_long(tmp_path: Path) -> None:
    path = tmp_path / "b.lock"
    ready = threading.Event()
    holder = threading.Thread(target=hold, args=(path, 1.0, ready))
    holder.start()
    ready.wait(5)
    with pytest.raises(ClusterError, match=r"someone is busy \(lock .*b\.lock\); stop that"):
        with file_lock(path, timeout=0.2, progress=lambda _l: None, waiting=str,
                       held_too_long="someone is busy", poll=0.05):
            pass
    holder.join()
    with file_lock(path, timeout=0.2, progress=print, waiting=str, held_too_long="x"):
        pass  # free again once the holder left


def test_waits_on_the_clock_and_sleep_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "c.lock"
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    lines: list[str] = []
    with open(path, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(ClusterError, match=r"^busy \(lock .*c\.lock\); stop that process "
                           r"or remove the lock$"):
            with file_lock(path, timeout=40, progress=lines.append,
                           waiting=lambda w: f"waited {w:.0f}", held_too_long="busy",
                           interval=15, poll=5, clock=lambda: now[0], sleep=sleep):
                pass
    assert slept == [5] * 8
    assert lines == ["waited 0", "waited 15", "waited 30"]
