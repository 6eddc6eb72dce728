"""Mounts on the host: the mount table, unmounting a tree, where cgroups are, overlayfs's check."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def _unescape(field: str) -> str:
    r"""Undo the octal escapes of /proc/self/mountinfo (``\040`` for a space, ...)."""
    out = []
    index = 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1 : index + 4].isdigit():
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def mounts_under(directory: Path) -> list[Path]:
    """Return the mount points at or below ``directory``, deepest first."""
    prefix = str(directory.resolve()) if directory.exists() else str(directory)
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: (len(p.parts), str(p)), reverse=True)


def cgroup_hierarchies() -> list[Path]:
    """Return the mount points of every cgroup hierarchy (v1 controllers and the v2 one)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(_unescape(left.split()[4])))
    return found


_MNT_DETACH = 2


def unmount_all(directory: Path, *, attempts: int = 5) -> list[Path]:
    """Unmount everything at or below ``directory``; return what stayed mounted.

    Mounts are taken deepest first and detached (``MNT_DETACH``), as pods' volumes, containers'
    root filesystems and network namespaces are mounted there.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    for _ in range(attempts):
        points = mounts_under(directory)
        if not points:
            return []
        for point in points:
            if libc.umount2(os.fsencode(point), _MNT_DETACH) != 0:
                log.debug("umount %s: %s", point, os.strerror(ctypes.get_errno()))
    return mounts_under(directory)


def libc_unmount(path: Path) -> None:
    """Detach the mount at ``path`` if there is one."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.umount2(os.fsencode(path), _MNT_DETACH)


def overlay_works(scratch: Path) -> bool:
    """Return whether an overlay filesystem can be mounted inside ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="overlay-check-", dir=scratch))
    try:
        for part in ("lower", "upper", "work", "merged"):
            (work / part).mkdir()
        (work / "lower" / "file").write_text("x")
        options = f"lowerdir={work / 'lower'},upperdir={work / 'upper'},workdir={work / 'work'}"
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(work / "merged")],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            log.info(
                "overlayfs does not work here (%s); using the native snapshotter",
                done.stderr.strip(),
            )
            return False
        ok = (work / "merged" / "file").read_text() == "x"
        subprocess.run(
            ["umount", str(work / "merged")], capture_output=True, timeout=10, check=False
        )
        return ok
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(work, ignore_errors=True)
