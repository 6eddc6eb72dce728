"""Mounts on the host: the mount table, unmounting, shared mounts, cgroups, overlayfs's check."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
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


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, for mount(2) and umount2(2), with errno kept."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def unmount_all(directory: Path, *, attempts: int = 5) -> list[Path]:
    """Unmount everything at or below ``directory``; return what stayed mounted.

    Mounts are taken deepest first and detached (``MNT_DETACH``), as pods' volumes, containers'
    root filesystems and network namespaces are mounted there.
    """
    libc = _libc()
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
    libc = _libc()
    libc.umount2(os.fsencode(path), _MNT_DETACH)


def _mount_containing(path: str, mountinfo: str) -> list[str] | None:
    """Return the mountinfo fields of the mount holding ``path`` (its longest mount point)."""
    best: list[str] | None = None
    best_length = -1
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best_length:  # the later of two on one point is on top
            best, best_length = fields, len(point)
    return best


def on_shared_mount(path: str, mountinfo: str) -> bool:
    """Return whether ``path`` is on a mount with shared propagation (a ``shared:N`` field).

    The same test as the kubelet's ``isShared`` (``pkg/volume/util/hostutil/hostutil_linux.go``):
    the optional fields, between the mount options and the ``-`` separator, of the mount that
    holds the path.
    """
    fields = _mount_containing(path, mountinfo)
    if fields is None:
        return False
    optional = fields[6 : fields.index("-")] if "-" in fields else []
    return any(field.startswith("shared:") for field in optional)


_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_SHARED = 1 << 20


def make_rshared(path: Path) -> bool:
    """Put ``path`` on a shared mount as the kubelet would: bind it onto itself, make it rshared.

    The kubelet does this to its root directory at start (``setupDataDirs`` ->
    ``DoMakeRShared``) when that is not on a shared mount already, as on a host whose ``/`` is
    private (no systemd; this machine). It does so in ``Run`` while other goroutines started
    beside it (``startKubelet`` in ``cmd/kubelet/app/server.go``) create their sockets under the
    same directory: each binds a temporary name and renames it into place, and a rename whose
    two paths are looked up on either side of the new mount fails with EXDEV. From 1.37, where
    the ``PodsAPI`` gate (beta) adds a second socket, a CI run saw the kubelet exit so ("Failed
    to create listener for pods API endpoint ... invalid cross-device link"). Done here, before
    the kubelet starts, its own check finds the directory shared and mounts nothing.

    Returns:
        Whether a mount was made (the cluster's clean-up unmounts everything under its
        directory, this with the rest).

    Raises:
        OSError: A mount failed.
    """
    path.mkdir(parents=True, exist_ok=True)
    resolved = str(path.resolve())
    if on_shared_mount(resolved, Path("/proc/self/mountinfo").read_text()):
        return False
    libc = _libc()
    target = os.fsencode(resolved)
    if libc.mount(target, target, None, _MS_BIND, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"bind-mounting {resolved} onto itself: {os.strerror(errno)}")
    if libc.mount(None, target, None, _MS_SHARED | _MS_REC, None) != 0:
        errno = ctypes.get_errno()
        libc.umount2(target, _MNT_DETACH)
        raise OSError(errno, f"making {resolved} rshared: {os.strerror(errno)}")
    return True


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
