"""The local provider's process supervisor, with harmless real children."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import supervisor

SLEEP = shutil.which("sleep") or "/bin/sleep"
SH = shutil.which("sh") or "/bin/sh"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[supervisor.ProcessRecord]]:
    records: list[supervisor.ProcessRecord] = []
    yield records
    for record in records:
        supervisor.stop(record, timeout=1.0, sig=signal.SIGKILL)


def _start(
    tmp_path: Path, started: list[supervisor.ProcessRecord], argv: list[str], **kwargs: object
) -> supervisor.ProcessRecord:
    record = supervisor.start(
        "child",
        argv,
        log_path=tmp_path / "logs" / "child.log",
        pid_path=tmp_path / "run" / "child.pid",
        **kwargs,  # type: ignore[arg-type]
    )
    started.append(record)
    return record


def test_start_runs_detached_and_writes_a_pid_file(tmp_path: Path, started):
    record = _start(tmp_path, started, [SLEEP, "30"])
    assert supervisor.is_alive(record)
    assert os.getsid(record.pid) == record.pid  # own session, so it outlives its starter
    assert os.getpgid(record.pid) == record.pid
    assert supervisor.read_pid_file(tmp_path / "run" / "child.pid") == record
    assert record.start_ticks == supervisor.start_ticks(record.pid)
    assert record.argv == (SLEEP, "30")


def _niceness_of_threads(pid: int) -> set[int]:
    # /proc/PID/task/TID/stat field 19 is the niceness; the name (field 2) may hold spaces.
    values = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rpartition(")")[2].split()
        values.add(int(fields[16]))
    return values


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may raise a process's priority")
def test_start_at_a_niceness_covers_the_child_and_its_children(tmp_path: Path, started):
    own = os.getpriority(os.PRIO_PROCESS, 0)
    script = f"{SLEEP} 30 & echo $! > {tmp_path / 'grandchild'}; wait"
    record = _start(tmp_path, started, [SH, "-c", script], nice=-7)
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the caller's thread is back as it was
    assert _niceness_of_threads(record.pid) == {-7}
    deadline = time.monotonic() + 5
    while not (tmp_path / "grandchild").is_file() or not (tmp_path / "grandchild").read_text():
        assert time.monotonic() < deadline, "the shell did not start its child"
        time.sleep(0.02)
    grandchild = int((tmp_path / "grandchild").read_text())
    assert _niceness_of_threads(grandchild) == {-7}


def test_stop_with_sigterm_needs_no_kill(tmp_path: Path, started):
    record = _start(tmp_path, started, [SLEEP, "30"])
    assert supervisor.stop(record, timeout=5.0) is False
    assert not supervisor.is_alive(record)


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path, started):
    marker = tmp_path / "trap-ready"
    record = _start(tmp_path, started, [SH, "-c", f"trap '' TERM; touch {marker}; sleep 30"])
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()
    assert supervisor.stop(record, timeout=0.5) is True
    assert not supervisor.is_alive(record)


def test_stop_takes_down_the_whole_process_group(tmp_path: Path, started):
    marker = f"pytest-probes-child-{uuid.uuid4().hex}"
    record = _start(tmp_path, started, [SH, "-c", f"{SLEEP} 30 & wait # {marker}"])
    deadline = time.monotonic() + 5
    group: list[int] = []
    while len(group) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        group = [pid for pid, _argv in supervisor.iter_processes() if _pgid(pid) == record.pid]
    assert len(group) >= 2  # the shell and its sleep
    supervisor.stop(record, timeout=5.0)
    # The sleep outlives the shell as an orphan that the host's init reaps when it gets round to
    # it; a zombie has run its last instruction, so only a running member counts as left.
    deadline = time.monotonic() + 5
    while _running_in_group(group, record.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _running_in_group(group, record.pid)


def _running_in_group(pids: list[int], pgid: int) -> list[int]:
    """Return those of ``pids`` still running (not zombies) in process group ``pgid``."""
    running = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # After the name: state, ppid, pgrp (proc(5)).
        if fields[0] != "Z" and int(fields[2]) == pgid:
            running.append(pid)
    return running


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_a_reused_pid_is_not_alive(tmp_path: Path, started):
    record = _start(tmp_path, started, [SLEEP, "30"])
    impostor = supervisor.ProcessRecord(
        record.name, record.pid, record.start_ticks + 1, record.argv, record.log
    )
    assert supervisor.is_alive(record)
    assert not supervisor.is_alive(impostor)


def test_an_exited_child_is_not_alive(tmp_path: Path, started):
    record = _start(tmp_path, started, [SH, "-c", "exit 3"])
    assert supervisor.wait_gone([record], timeout=5.0)
    assert not supervisor.is_alive(record)


def test_output_and_environment_reach_the_log(tmp_path: Path, started):
    env = dict(os.environ, PROBES_SUPERVISOR_TEST="value-42")
    record = _start(
        tmp_path,
        started,
        [SH, "-c", 'echo "out $PROBES_SUPERVISOR_TEST"; echo "err line" >&2; pwd'],
        env=env,
        cwd=tmp_path,
    )
    assert supervisor.wait_gone([record], timeout=5.0)
    text = (tmp_path / "logs" / "child.log").read_text()
    assert "starting " in text.splitlines()[0]
    assert "out value-42" in text
    assert "err line" in text
    assert str(tmp_path) in text
    assert supervisor.log_tail(tmp_path / "logs" / "child.log", 2).splitlines() == [
        "err line",
        str(tmp_path),
    ]


def test_start_of_a_missing_executable_is_a_cluster_error(tmp_path: Path):
    with pytest.raises(ClusterError, match="cannot start child") as info:
        supervisor.start(
            "child",
            [str(tmp_path / "nope")],
            log_path=tmp_path / "l.log",
            pid_path=tmp_path / "p.pid",
        )
    assert info.value.command == [str(tmp_path / "nope")]


def test_processes_mentioning_and_kill_pids(tmp_path: Path, started):
    marker = f"probes-marker-{uuid.uuid4().hex}"
    # One process (no fork) whose own command line carries the marker.
    script = "import time; time.sleep(30)"
    record = _start(tmp_path, started, [sys.executable, "-c", script, marker])
    assert supervisor.processes_mentioning(marker) == [record.pid]
    supervisor.kill_pids([record.pid], timeout=5.0)
    assert supervisor.processes_mentioning(marker) == []


def test_a_process_of_another_cluster_is_not_one_of_ours(tmp_path: Path, started):
    # A kubelet of cluster probes-2 mentions .../clusters/probes-2/...: not a process of the
    # cluster "probes", whose directory is .../clusters/probes.
    ours = tmp_path / "clusters" / "probes"
    theirs = tmp_path / "clusters" / "probes-2"
    script = "import time; time.sleep(30)"
    other = _start(tmp_path, started, [sys.executable, "-c", script,
                                       f"--root-dir={theirs}/kubelet", str(theirs / "x.sock")])
    try:
        assert supervisor.processes_mentioning(str(ours)) == []
        assert supervisor.processes_mentioning(str(theirs)) == [other.pid]
    finally:
        supervisor.kill_pids([other.pid], timeout=5.0)


def test_an_argument_names_a_path_by_whole_components() -> None:
    assert supervisor.names_path("/c/probes", "/c/probes")
    assert supervisor.names_path("/c/probes/kubelet.conf", "/c/probes/")
    assert supervisor.names_path("--root-dir=/c/probes/kubelet", "/c/probes")
    assert not supervisor.names_path("/c/probes-2/kubelet.conf", "/c/probes")
    assert not supervisor.names_path("--root-dir=/c/probes-2", "/c/probes")
    assert not supervisor.names_path("x/c/probes", "/c/probes")


def test_read_pid_file_tolerates_garbage(tmp_path: Path):
    path = tmp_path / "x.pid"
    assert supervisor.read_pid_file(path) is None
    path.write_text("{not json")
    assert supervisor.read_pid_file(path) is None
    path.write_text('{"name": "x"}')
    assert supervisor.read_pid_file(path) is None


def test_rss_of_self_and_of_a_missing_pid():
    assert supervisor.rss_bytes(os.getpid()) > 1024 * 1024
    assert supervisor.rss_bytes(2**22 + 12345) == 0


def test_an_orphan_killed_is_dead_at_once_but_listed_until_init_reaps_it(tmp_path: Path):
    # The shell starts sleep and exits: sleep belongs to init, as a cluster's components do once
    # the `cluster up` command that started them has exited.
    pid_file = tmp_path / "pid"
    supervisor.start("orphan-maker", [SH, "-c", f"{SLEEP} 30 & echo $! > {pid_file}"],
                     log_path=tmp_path / "l.log", pid_path=tmp_path / "maker.pid")
    while not pid_file.is_file() or not pid_file.read_text().strip():
        time.sleep(0.01)
    pid = int(pid_file.read_text())
    ticks = supervisor.start_ticks(pid)
    assert ticks is not None
    record = supervisor.ProcessRecord("orphan", pid, ticks, (), tmp_path / "l.log")
    os.kill(pid, signal.SIGKILL)
    assert supervisor.wait_gone([record], timeout=5.0)  # no longer alive: a zombie at most
    assert supervisor.wait_vanished([record], timeout=30.0) == []  # and then not even listed
    assert not supervisor.exists(record)
