"""The plumbing every image build shares: atomic files, digests, the lock, the cache directory.

Everything built is kept under ``CACHE_DIR/images/``; each file there is written to a temporary
name and renamed into place, so an interrupted build never leaves a corrupt entry, and builds hold
an ``fcntl`` lock so concurrent runs do not race.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_probes._command import run_command
from pytest_probes._locks import file_lock
from pytest_probes.cluster import Progress

log = logging.getLogger(__name__)

IMAGE_LOCK_TIMEOUT = 1800.0
"""Seconds a run waits for another run building the same image (a cold build takes ~2 min)."""

KEEP_ARCHIVES = 3
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BuiltImage:
    """An image archive ready to import.

    Attributes:
        ref: The full image reference the archive names.
        archive: Path of the OCI archive.
        cached: Whether the archive came from the cache rather than being built now.
    """

    ref: str
    archive: Path
    cached: bool = False


@contextlib.contextmanager
def atomic_file(dest: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``dest``; rename it to ``dest`` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(dest: Path, data: bytes) -> None:
    with atomic_file(dest) as handle:
        handle.write(data)


@contextlib.contextmanager
def build_lock(path: Path, progress: Progress, what: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``path`` (created if missing) for the block."""
    started = time.monotonic()
    with file_lock(
        path,
        timeout=IMAGE_LOCK_TIMEOUT,
        progress=progress,
        waiting=lambda _waited: f"{what}: waiting for another run building the same image "
        f"({path})",
        held_too_long=f"{what}: another run has been building the same image for over "
        f"{IMAGE_LOCK_TIMEOUT:.0f} s",
    ):
        waited = time.monotonic() - started
        if waited > 1:
            log.info("waited %.1f s for the lock %s", waited, path)
        yield


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def run(
    command: Sequence[str], *, what: str, timeout: float, hint: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_command(command, what=what, timeout=timeout, hint=hint, provider="local")


def images_dir(cache_dir: Path) -> Path:
    """Return the directory under ``cache_dir`` where image layers and archives are kept."""
    return Path(cache_dir) / "images"


def prune(directory: Path, pattern: str, keep: Path) -> None:
    """Delete all but the newest few files matching ``pattern`` (never ``keep``)."""
    candidates = sorted(
        (path for path in directory.glob(pattern) if path != keep),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for old in candidates[KEEP_ARCHIVES - 1 :]:
        log.info("removing old cached image file %s", old)
        old.unlink(missing_ok=True)


def reuse(archive: Path, ref: str) -> BuiltImage | None:
    if not archive.is_file():
        return None
    os.utime(archive)  # Most recently used: kept by prune.
    log.info("using cached image archive %s for %s", archive, ref)
    return BuiltImage(ref=ref, archive=archive, cached=True)


def mounts_below(path: Path) -> list[str]:
    """Return the mount points at or below ``path``, deepest first."""
    root = os.path.realpath(path)
    found = []
    with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as mounts:
        for line in mounts:
            # The kernel writes space, tab, newline and backslash as octal escapes (\040...).
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[1])
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def sweep(directory: Path, patterns: Sequence[str]) -> None:
    """Delete what killed builds left in ``directory`` (call with the build lock held)."""
    for pattern in patterns:
        for leftover in directory.glob(pattern):
            log.info("removing %s, left by an interrupted build", leftover)
            if leftover.is_dir() and not leftover.is_symlink():
                remove_tree(leftover)
            else:
                leftover.unlink(missing_ok=True)


def remove_tree(path: Path) -> None:
    """Delete a build directory, after unmounting anything an interrupted build left mounted.

    A directory that still has mounts below it is left in place (with a warning) rather than
    risk deleting through a mount.
    """
    if not path.exists():
        return
    for point in mounts_below(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    remaining = mounts_below(path)
    if remaining:
        log.warning(
            "not deleting %s: %s still mounted there; unmount and delete it by hand",
            path,
            ", ".join(remaining),
        )
        return
    shutil.rmtree(path, ignore_errors=True)
