"""Orphan cleanup judges a namespace's owner only where its pid means the same process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from pytest_probes import namespaces


def _fields(record: str) -> list[str]:
    return record.split(":", 4)


def test_the_owner_record_names_host_pid_start_boot_and_pid_namespace() -> None:
    host, pid, ticks, boot, pidns = _fields(namespaces.owner())
    assert host == socket.gethostname()
    assert pid == str(os.getpid()) and ticks.isdigit()
    assert boot == namespaces.BOOT_ID.read_text().strip()
    assert pidns == os.readlink("/proc/self/ns/pid") and pidns.startswith("pid:[")


def test_a_live_owner_is_not_gone_and_a_dead_one_is() -> None:
    assert not namespaces.owner_gone(namespaces.owner())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, _pid, _ticks, boot, pidns = _fields(namespaces.owner())
    assert namespaces.owner_gone(":".join([host, str(child.pid), "12345", boot, pidns]))


def test_a_pid_of_another_container_boot_or_host_is_never_judged() -> None:
    # Same hostname, same pid, a start time that does not match: gone, were it ours. From another
    # pid namespace (a container sharing the hostname), boot or host it is left alone.
    host, pid, _ticks, boot, pidns = _fields(namespaces.owner())
    assert namespaces.owner_gone(":".join([host, pid, "1", boot, pidns]))
    assert not namespaces.owner_gone(":".join([host, pid, "1", boot, "pid:[1]"]))
    assert not namespaces.owner_gone(":".join([host, pid, "1", "other-boot", pidns]))
    assert not namespaces.owner_gone(":".join(["other-host", pid, "1", boot, pidns]))


def test_an_old_format_record_is_left_alone() -> None:
    host, pid, _ticks, _boot, _pidns = _fields(namespaces.owner())
    assert not namespaces.owner_gone(f"{host}:{pid}:1")
    assert not namespaces.owner_gone("garbage")
