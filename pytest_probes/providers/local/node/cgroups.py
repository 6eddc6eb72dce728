"""The cluster's cgroup tree ``/pytest-probes-<name>``: the kubelet's cgroup root, its weight."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pytest_probes.providers.local.node.mounts import cgroup_hierarchies

log = logging.getLogger(__name__)

CGROUP_MOUNT = Path("/sys/fs/cgroup")


def cgroup_root_name(cluster: str) -> str:
    """Return the kubelet's cgroup root of a cluster (a top-level cgroup)."""
    return f"/pytest-probes-{cluster}"


NICE_0_WEIGHT = 1024
"""The scheduler's weight of a task at niceness 0, and cgroup v1's default ``cpu.shares``."""


def nice_weight(nice: int) -> int:
    """The scheduler's weight of a task at ``nice`` (the kernel's ``sched_prio_to_weight``).

    Each step of niceness is worth about 1.25 times the CPU: -10 gives 9548, -5 gives 3121.
    """
    if not -20 <= nice <= 19:
        raise ValueError(f"niceness {nice} is not in -20..19")
    return _PRIO_TO_WEIGHT[nice + 20]


_PRIO_TO_WEIGHT = (
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
)  # fmt: skip


def create_cgroup_root(name: str, *, cpu_nice: int = 0) -> None:
    """Create the kubelet's cgroup root in every hierarchy (the kubelet requires it to exist).

    A new cpuset cgroup starts with no CPUs and no memory nodes; they are copied from the parent.
    The whole tree gets the CPU weight of one task at niceness ``cpu_nice`` (``cpu.shares`` in
    cgroup v1, ``cpu.weight.nice`` in v2, where the cpu controller is enabled): the scheduler
    weighs a cgroup against the tasks beside it as one entity, whatever the niceness of the
    processes inside.
    """
    relative = name.lstrip("/")
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / relative
        try:
            path.mkdir(exist_ok=True)
        except OSError as error:
            log.debug("cannot create cgroup %s: %s", path, error)
            continue
        for setting in ("cpuset.cpus", "cpuset.mems"):
            parent_file = hierarchy / setting
            own = path / setting
            if parent_file.exists() and own.exists() and not own.read_text().strip():
                own.write_text(parent_file.read_text().strip())
        weights = (("cpu.shares", nice_weight(cpu_nice)), ("cpu.weight.nice", cpu_nice))
        for setting, value in weights:
            own = path / setting
            if own.exists():
                try:
                    own.write_text(str(value))
                except OSError as error:
                    log.debug("cannot set %s to %s: %s", own, value, error)


def cgroup_pids(name: str) -> set[int]:
    """Return the pids in the cgroup tree ``name`` of every hierarchy."""
    relative = name.lstrip("/")
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for directory, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    text = Path(directory, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(line) for line in text.split() if line.isdigit())
    return pids


def remove_cgroup_root(name: str) -> list[Path]:
    """Remove the cgroup tree ``name`` in every hierarchy; return the directories left behind."""
    relative = name.lstrip("/")
    left: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for directory, _dirs, _files in sorted(
            os.walk(top), key=lambda item: item[0].count("/"), reverse=True
        ):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(Path(directory))
    return left
