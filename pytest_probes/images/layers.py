"""Layers: a directory tree written as a deterministic (gzip) tar, with its OCI digests.

The same tree, modes and times give byte-identical layers, so digests are stable.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import logging
import os
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_probes.images._build import CHUNK, atomic_file, file_sha256, megabytes

log = logging.getLogger(__name__)

MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

DEFAULT_MTIME = 0
"""Modification time given to layer entries (seconds since the epoch) unless told otherwise."""


@dataclass(frozen=True)
class LayerInfo:
    """A layer blob on disk and its digests.

    Attributes:
        path: The layer file (a tar, gzip-compressed or not).
        digest: ``sha256:`` digest of the file as stored (the blob digest in the manifest).
        size: Size of the file in bytes.
        diff_id: ``sha256:`` digest of the uncompressed tar (what the config's ``rootfs`` lists).
        uncompressed_size: Size of the uncompressed tar in bytes.
        media_type: The OCI layer media type.
        created_by: What made the layer, for the config's history.
    """

    path: Path
    digest: str
    size: int
    diff_id: str
    uncompressed_size: int
    media_type: str = MEDIA_TYPE_LAYER_GZIP
    created_by: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the layer's facts as JSON-ready data (the path as a string)."""
        return {
            "path": str(self.path),
            "digest": self.digest,
            "size": self.size,
            "diff_id": self.diff_id,
            "uncompressed_size": self.uncompressed_size,
            "media_type": self.media_type,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerInfo:
        """Rebuild a :class:`LayerInfo` from :meth:`to_json` output."""
        return cls(
            path=Path(data["path"]),
            digest=str(data["digest"]),
            size=int(data["size"]),
            diff_id=str(data["diff_id"]),
            uncompressed_size=int(data["uncompressed_size"]),
            media_type=str(data["media_type"]),
            created_by=str(data.get("created_by", "")),
        )


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through to ``out``."""

    def __init__(self, out: IO[bytes] | gzip.GzipFile) -> None:
        self._out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha.hexdigest()}"


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns)


def walk(root: Path, patterns: Sequence[str], rel: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(relative path, absolute path)`` below ``root`` in sorted order, pruning excluded."""
    directory = os.path.join(root, rel) if rel else str(root)
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        if _excluded(child, patterns):
            continue
        yield child, entry.path
        if entry.is_dir(follow_symlinks=False):
            yield from walk(root, patterns, child)


def layer_from_directory(
    src: Path,
    dest_tar: Path,
    *,
    prefix: str = "",
    exclude: Sequence[str] = (),
    mtime: int | None = DEFAULT_MTIME,
    owner: tuple[int, int] | None = (0, 0),
    compress: bool = True,
    created_by: str = "",
) -> LayerInfo:
    """Write a directory tree as a layer tar, deterministically, and return its digests.

    Entries come in sorted order with modes, symlinks and hard links kept; sockets are skipped.
    The tar is streamed through ``sha256`` (giving the diff_id) and, if ``compress``, through gzip
    with a fixed header and through ``sha256`` again (giving the blob digest), so a large tree is
    read once and never held in memory. The file is written atomically.

    Args:
        src: The directory whose contents become the layer's root (``src`` itself is not an entry).
        dest_tar: Where to write the layer (e.g. ``layer.tar.gz``).
        prefix: A directory inside the image under which the tree is placed (``opt/app``; a
            leading ``/`` is ignored); it and its parents are added as entries with mode 0755.
        exclude: ``fnmatch`` patterns on paths relative to ``src`` (``usr/share/doc/*``); ``*``
            also matches ``/``. An excluded directory's whole subtree is left out.
        mtime: Entries' modification times are clamped to at most this (seconds since the
            epoch); the default 0 sets them all to 0. ``None`` keeps the tree's own times (which
            keeps Python bytecode caches valid).
        owner: ``(uid, gid)`` given to every entry (root:root by default); ``None`` keeps the
            tree's numeric owners.
        compress: Write a gzip-compressed tar (``tar+gzip`` media type) instead of a plain one.
        created_by: What made the layer, for the image config's history.

    Returns:
        The layer's path, digest, size, diff_id and media type.

    Raises:
        NotADirectoryError: ``src`` is not a directory.
        ValueError: ``prefix`` climbs out with ``..``.
    """
    src = Path(src)
    if not src.is_dir():
        raise NotADirectoryError(f"layer source {src} is not a directory")
    prefix = prefix.strip("/")
    if ".." in prefix.split("/"):
        raise ValueError(f"layer prefix {prefix!r} must be a relative path without '..'")
    started = time.monotonic()
    count = 0
    with atomic_file(Path(dest_tar)) as raw:
        stored = _HashingWriter(raw)
        gz = (
            gzip.GzipFile(filename="", mode="wb", fileobj=stored, mtime=0, compresslevel=6)
            if compress
            else None
        )
        plain = _HashingWriter(gz if gz is not None else stored)  # type: ignore[arg-type]
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]

            def fix(info: tarfile.TarInfo) -> tarfile.TarInfo:
                if owner is not None:
                    info.uid, info.gid = owner
                    info.uname = info.gname = "root" if owner == (0, 0) else ""
                else:
                    info.uname = info.gname = ""
                info.mtime = int(info.mtime) if mtime is None else min(int(info.mtime), mtime)
                return info

            parts = prefix.split("/") if prefix else []
            for depth in range(1, len(parts) + 1):
                info = tarfile.TarInfo("/".join(parts[:depth]))
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = mtime if mtime is not None else int(src.stat().st_mtime)
                tar.addfile(fix(info))
                count += 1
            for rel, path in walk(src, exclude):
                arcname = f"{prefix}/{rel}" if prefix else rel
                found = tar.gettarinfo(path, arcname=arcname)
                if found is None:
                    log.debug(
                        "layer %s: skipping %s (socket or other unsupported type)", dest_tar, path
                    )
                    continue
                info = fix(found)
                if info.isreg():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
                count += 1
        if gz is not None:
            gz.close()
    layer = LayerInfo(
        path=Path(dest_tar),
        digest=stored.digest,
        size=stored.size,
        diff_id=plain.digest,
        uncompressed_size=plain.size,
        media_type=MEDIA_TYPE_LAYER_GZIP if compress else MEDIA_TYPE_LAYER,
        created_by=created_by,
    )
    log.debug(
        "layer %s: %d entries, %s tar, %s stored, %s, in %.1f s",
        dest_tar,
        count,
        megabytes(layer.uncompressed_size),
        megabytes(layer.size),
        layer.digest,
        time.monotonic() - started,
    )
    return layer


def describe_layer(path: Path, *, created_by: str = "") -> LayerInfo:
    """Compute the digests of an existing layer file (a tar, gzip-compressed or not).

    Args:
        path: The layer file.
        created_by: What made the layer, for the image config's history.

    Returns:
        The layer's facts; for a plain tar the diff_id equals the digest.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        magic = handle.read(2)
    digest = file_sha256(path)
    size = path.stat().st_size
    if magic != b"\x1f\x8b":
        return LayerInfo(path, digest, size, digest, size, MEDIA_TYPE_LAYER, created_by)
    plain = hashlib.sha256()
    plain_size = 0
    with gzip.open(path, "rb") as unzipped:
        while chunk := unzipped.read(CHUNK):
            plain.update(chunk)
            plain_size += len(chunk)
    return LayerInfo(
        path,
        digest,
        size,
        f"sha256:{plain.hexdigest()}",
        plain_size,
        MEDIA_TYPE_LAYER_GZIP,
        created_by,
    )
