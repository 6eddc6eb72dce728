"""Container images built without Docker, for the local provider.

The local provider's node has no registry to pull from, so the images it needs are written here as
OCI image archives with the standard library alone and imported with ``ctr images import``:

* the pause (sandbox) image :data:`PAUSE_REF`: one static binary compiled from ``pause.c`` beside
  this module, which containerd's ``sandbox_image`` points at;
* the target image (:func:`target_ref`): a minimal Debian root filesystem made by ``debootstrap``
  (one layer, cached by package set) plus the ``pytest_probes.target`` app (one layer, keyed by a
  hash of its files), run as ``python3 -m pytest_probes.target``.

Everything built is kept under ``CACHE_DIR/images/``; each file there is written to a temporary
name and renamed into place, so an interrupted build never leaves a corrupt entry, and builds hold
an ``fcntl`` lock so concurrent runs do not race. The same inputs give byte-identical layers and
archives, so digests are stable.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pytest_probes._command import last_lines as _tail
from pytest_probes._command import run_command
from pytest_probes._locks import file_lock
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)

IMAGE_LOCK_TIMEOUT = 1800.0
"""Seconds a run waits for another run building the same image (a cold build takes ~2 min)."""

PAUSE_REF = "localhost/pytest-probes/pause:3.10"
"""The reference of the pause image; the node's containerd uses it as ``sandbox_image``."""

TARGET_REPOSITORY = "localhost/pytest-probes/target"
"""The repository of the target image; the tag is ``<package version>-<app hash>``."""

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_VARIANT = "minbase"
DEBIAN_PACKAGES = ("python3-minimal", "libpython3.11-stdlib")
"""Packages added to ``minbase``: ``python3`` (the command) and the full standard library.

``python3.11-minimal`` alone lacks ``http.server``, ``email``, ``logging``'s handlers and more;
``libpython3.11-stdlib`` adds them without the ``python3`` metapackage's extras.
"""

PYTHON_MODULES_CHECKED = (
    "http.server",
    "json",
    "threading",
    "urllib.request",
    "urllib.parse",
    "signal",
    "random",
    "logging",
    "socketserver",
    "argparse",
)
"""Modules the target app uses; a fresh root filesystem must import them all."""

ROOTFS_EXCLUDE = (
    "dev/*",
    "proc/*",
    "sys/*",
    "tmp/*",
    "debootstrap",
    "etc/resolv.conf",
    "etc/hostname",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian/*",
    "usr/share/common-licenses/*",
    "var/lib/apt/lists/*",
    "var/cache/apt/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/log/*",
)
"""What the target's root filesystem layer leaves out: device nodes and host files debootstrap
made or copied (the runtime provides them), documentation, translations and apt's caches."""

APP_EXCLUDE = ("__pycache__", "*/__pycache__", "*.pyc", "*.pyo", ".*", "*/.*")
"""What is not part of the app: bytecode caches and hidden files."""

DEFAULT_MTIME = 0
"""Modification time given to layer entries (seconds since the epoch) unless told otherwise."""

_RECIPE = "pytest-probes-target-recipe-1"
"""Changes whenever the target image's recipe (config, layout, rootfs) changes, to bust caches."""

_KEEP_ARCHIVES = 3
_CHUNK = 1024 * 1024


def _no_progress(_line: str) -> None:
    return None


@dataclass(frozen=True)
class ImageConfig:
    """The runtime configuration and platform of an image (the OCI image config).

    Attributes:
        entrypoint: The ``Entrypoint`` argv.
        cmd: The ``Cmd`` argv (arguments to the entrypoint).
        env: ``NAME=value`` strings.
        working_dir: The working directory, or ``""`` for ``/``.
        exposed_ports: Ports such as ``8080/tcp``.
        user: The user (``uid[:gid]`` or a name), or ``""`` for root.
        labels: Image labels.
        architecture: The CPU architecture in Go's naming (``amd64``, ``arm64``).
        os: The operating system.
        created: The creation time (RFC 3339); fixed so that digests are reproducible.
    """

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Sequence[str] = ()
    working_dir: str = ""
    exposed_ports: Sequence[str] = ()
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    architecture: str = "amd64"
    os: str = "linux"
    created: str = "1970-01-01T00:00:00Z"

    def to_json(self, layers: Sequence[LayerInfo]) -> dict[str, Any]:
        """Return the OCI image config document for an image made of ``layers``.

        Args:
            layers: The image's layers, lowest first.

        Returns:
            The JSON-ready config, with ``rootfs.diff_ids`` the digests of the uncompressed layers.
        """
        runtime: dict[str, Any] = {}
        if self.user:
            runtime["User"] = self.user
        if self.exposed_ports:
            runtime["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.env:
            runtime["Env"] = list(self.env)
        if self.entrypoint:
            runtime["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            runtime["Cmd"] = list(self.cmd)
        if self.working_dir:
            runtime["WorkingDir"] = self.working_dir
        if self.labels:
            runtime["Labels"] = dict(self.labels)
        return {
            "created": self.created,
            "architecture": self.architecture,
            "os": self.os,
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [
                {"created": self.created, "created_by": layer.created_by or "pytest-probes"}
                for layer in layers
            ],
        }


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


# --------------------------------------------------------------------------------------------
# Small helpers: references, atomic files, locks, elapsed time.

_REF_RE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)


def _check_ref(ref: str) -> None:
    if not _REF_RE.match(ref):
        raise ValueError(
            f"image reference {ref!r} is not of the form REPOSITORY:TAG with a lowercase "
            "repository (e.g. localhost/pytest-probes/target:0.1.0-abcdef012345)"
        )


def _sanitize_tag(text: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", text).lstrip(".-") or "0"
    return tag[:100]


@contextlib.contextmanager
def _atomic_file(dest: Path) -> Iterator[IO[bytes]]:
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


def _write_bytes_atomic(dest: Path, data: bytes) -> None:
    with _atomic_file(dest) as handle:
        handle.write(data)


@contextlib.contextmanager
def _build_lock(path: Path, progress: Progress, what: str) -> Iterator[None]:
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


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def host_architecture() -> str:
    """Return this machine's CPU architecture in OCI/Go naming (``amd64``, ``arm64``...)."""
    machine = platform.machine().lower()
    return {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }.get(machine, machine)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# --------------------------------------------------------------------------------------------
# Layers.


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


def _walk(root: Path, patterns: Sequence[str], rel: str = "") -> Iterator[tuple[str, str]]:
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
            yield from _walk(root, patterns, child)


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
    with _atomic_file(Path(dest_tar)) as raw:
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
            for rel, path in _walk(src, exclude):
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
        _mb(layer.uncompressed_size),
        _mb(layer.size),
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
    digest = _file_sha256(path)
    size = path.stat().st_size
    if magic != b"\x1f\x8b":
        return LayerInfo(path, digest, size, digest, size, MEDIA_TYPE_LAYER, created_by)
    plain = hashlib.sha256()
    plain_size = 0
    with gzip.open(path, "rb") as unzipped:
        while chunk := unzipped.read(_CHUNK):
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


# --------------------------------------------------------------------------------------------
# Archives.


def _blob_name(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _tar_meta(name: str, size: int = 0, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def write_oci_archive(
    dest: Path, *, ref: str, layers: Sequence[LayerInfo | Path], config: ImageConfig
) -> Path:
    """Write a single-image OCI archive that ``ctr images import`` names ``ref``.

    The archive holds ``oci-layout``, ``index.json`` (whose one manifest carries both the
    ``io.containerd.image.name`` and ``org.opencontainers.image.ref.name`` annotations set to the
    full reference, which is what containerd 1.6 names the image after), the blobs (layers as
    given, the config and the manifest) and a docker-archive style ``manifest.json`` with
    ``RepoTags``, so ``docker load`` and tools that only read that format accept it too. Layer
    blobs are streamed from their files; the archive is written atomically and the same inputs
    give the same bytes.

    Args:
        dest: Path of the archive to write.
        ref: The full image reference, e.g. ``localhost/pytest-probes/pause:3.10``.
        layers: The layers, lowest first: :class:`LayerInfo` from :func:`layer_from_directory`,
            or paths of tar / tar.gz files (their digests are computed here).
        config: The image's runtime configuration and platform.

    Returns:
        ``dest``.

    Raises:
        ValueError: ``ref`` is not ``REPOSITORY:TAG``, or no layer was given.
        FileNotFoundError: A layer file is missing.
        ClusterError: A layer file changed size since it was described.
    """
    _check_ref(ref)
    if not layers:
        raise ValueError("an image needs at least one layer")
    described = [
        layer if isinstance(layer, LayerInfo) else describe_layer(Path(layer)) for layer in layers
    ]
    for layer in described:
        actual = layer.path.stat().st_size
        if actual != layer.size:
            raise ClusterError(
                f"layer file {layer.path} is {actual} bytes but was described as {layer.size} "
                "bytes: it changed after it was built; rebuild it (delete it from the cache)",
                provider="local",
            )
    config_blob = _canonical_json(config.to_json(described))
    config_digest = f"sha256:{hashlib.sha256(config_blob).hexdigest()}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_CONFIG,
            "digest": config_digest,
            "size": len(config_blob),
        },
        "layers": [
            {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
            for layer in described
        ],
    }
    manifest_blob = _canonical_json(manifest)
    manifest_digest = f"sha256:{hashlib.sha256(manifest_blob).hexdigest()}"
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_blob),
                "platform": {"architecture": config.architecture, "os": config.os},
                "annotations": {ANNOTATION_CONTAINERD_NAME: ref, ANNOTATION_REF_NAME: ref},
            }
        ],
    }
    docker_manifest = [
        {
            "Config": _blob_name(config_digest),
            "RepoTags": [ref],
            "Layers": [_blob_name(layer.digest) for layer in described],
        }
    ]
    small: list[tuple[str, bytes]] = [
        ("oci-layout", _canonical_json({"imageLayoutVersion": "1.0.0"})),
        (_blob_name(config_digest), config_blob),
        (_blob_name(manifest_digest), manifest_blob),
        ("index.json", _canonical_json(index)),
        ("manifest.json", _canonical_json(docker_manifest)),
    ]
    started = time.monotonic()
    with _atomic_file(Path(dest)) as raw:
        with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tar_meta("blobs", directory=True))
            tar.addfile(_tar_meta("blobs/sha256", directory=True))
            written: set[str] = set()
            for layer in described:
                if layer.digest in written:
                    continue
                written.add(layer.digest)
                with open(layer.path, "rb") as handle:
                    tar.addfile(_tar_meta(_blob_name(layer.digest), layer.size), handle)
            for name, data in small:
                tar.addfile(_tar_meta(name, len(data)), _BytesReader(data))
    log.info(
        "wrote image archive %s for %s (%s, manifest %s) in %.1f s",
        dest,
        ref,
        _mb(Path(dest).stat().st_size),
        manifest_digest,
        time.monotonic() - started,
    )
    return Path(dest)


class _BytesReader:
    """The minimal readable object :meth:`tarfile.TarFile.addfile` needs, over bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


def archive_refs(archive: Path) -> list[str]:
    """Return the image references an OCI (or docker-archive) tar names.

    Args:
        archive: The archive.

    Returns:
        The ``io.containerd.image.name`` (else ``org.opencontainers.image.ref.name``) annotations
        of ``index.json``, or the ``RepoTags`` of ``manifest.json`` when there is no index.

    Raises:
        ClusterError: The archive cannot be read or names no image.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            found: dict[str, Any] = {}
            for member in tar:
                name = member.name.lstrip("./")
                if name in ("index.json", "manifest.json") and member.isreg():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[name] = json.load(handle)
    except (OSError, tarfile.TarError, json.JSONDecodeError) as err:
        raise ClusterError(
            f"cannot read image archive {archive}: {err}; rebuild it", provider="local"
        ) from err
    refs: list[str] = []
    for descriptor in found.get("index.json", {}).get("manifests", []):
        annotations = descriptor.get("annotations") or {}
        named = annotations.get(ANNOTATION_CONTAINERD_NAME) or annotations.get(ANNOTATION_REF_NAME)
        if named:
            refs.append(str(named))
    if not refs:
        for entry in found.get("manifest.json", []):
            refs.extend(str(tag) for tag in entry.get("RepoTags") or [])
    if not refs:
        raise ClusterError(
            f"image archive {archive} names no image (no io.containerd.image.name or "
            "org.opencontainers.image.ref.name annotation in index.json, no RepoTags in "
            "manifest.json); write it with write_oci_archive(ref=...)",
            provider="local",
        )
    return refs


# --------------------------------------------------------------------------------------------
# Subprocesses.


def _run(
    command: Sequence[str], *, what: str, timeout: float, hint: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_command(command, what=what, timeout=timeout, hint=hint, provider="local")


# --------------------------------------------------------------------------------------------
# containerd.


def _ctr(ctr: str, address: str, namespace: str, *args: str) -> list[str]:
    return [ctr, "--address", address, "--namespace", namespace, *args]


def list_images(*, address: str, namespace: str = "k8s.io", ctr: str = "ctr") -> list[str]:
    """Return the image references containerd holds in ``namespace``.

    Args:
        address: containerd's socket path.
        namespace: The containerd namespace (``k8s.io`` is the one the kubelet uses).
        ctr: The ``ctr`` executable.

    Raises:
        ClusterError: ``ctr`` failed (e.g. containerd is not listening on ``address``).
    """
    done = _run(
        _ctr(ctr, address, namespace, "images", "list", "--quiet"),
        what=f"listing images in containerd at {address}",
        timeout=60,
        hint="Is containerd running and listening there?",
    )
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def image_present(ref: str, *, address: str, namespace: str = "k8s.io", ctr: str = "ctr") -> bool:
    """Return whether containerd holds an image named ``ref`` in ``namespace``.

    Args:
        ref: The full image reference.
        address: containerd's socket path.
        namespace: The containerd namespace.
        ctr: The ``ctr`` executable.

    Raises:
        ClusterError: ``ctr`` failed (e.g. containerd is not listening on ``address``).
    """
    return ref in list_images(address=address, namespace=namespace, ctr=ctr)


def import_archive(
    archive: Path,
    *,
    address: str,
    namespace: str = "k8s.io",
    ctr: str = "ctr",
    snapshotter: str = "overlayfs",
    timeout: float = 600,
) -> list[str]:
    """Import an image archive into containerd and unpack it, like a pull would.

    Runs ``ctr --address ADDRESS -n NAMESPACE images import --all-platforms --snapshotter
    SNAPSHOTTER ARCHIVE``. ctr 1.6 unpacks imported images into the snapshotter by default (the
    CRI plugin would otherwise unpack on first use), so the first pod does not pay for it; the
    unpacked files are then flushed to disk, so that the first pods do not wait for that either.

    Args:
        archive: The OCI or docker-archive tar.
        address: containerd's socket path.
        namespace: The containerd namespace (``k8s.io`` is the one the kubelet uses).
        ctr: The ``ctr`` executable.
        snapshotter: The snapshotter to unpack into; must be the CRI plugin's (``overlayfs``).
        timeout: Seconds to wait for the import.

    Returns:
        The references the archive named, each now present in containerd.

    Raises:
        ClusterError: The archive is missing or unreadable, ``ctr`` failed (the error keeps the
            command, exit code and stderr tail), or an image is missing after the import.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ClusterError(
            f"image archive {archive} does not exist; build it first", provider="local"
        )
    refs = archive_refs(archive)
    started = time.monotonic()
    _run(
        _ctr(
            ctr,
            address,
            namespace,
            "images",
            "import",
            "--all-platforms",
            "--snapshotter",
            snapshotter,
            str(archive),
        ),
        what=f"importing {archive} into containerd at {address} (namespace {namespace})",
        timeout=timeout,
        hint="Check that containerd runs there and that the archive is a valid image.",
    )
    # The unpacked layers (some 120 MB for the target image) sit in the page cache as dirty
    # pages; written back seconds later, they would stall containerd's and etcd's fsyncs just as
    # the suite's first pods start (seen: a container created 14 s after its image was ready,
    # only on freshly created clusters). Write them now.
    flushed = time.monotonic()
    os.sync()
    log.info("flushed the unpacked image to disk in %.1f s", time.monotonic() - flushed)
    present = set(list_images(address=address, namespace=namespace, ctr=ctr))
    missing = [ref for ref in refs if ref not in present]
    if missing:
        raise ClusterError(
            f"imported {archive} into containerd at {address} (namespace {namespace}) but "
            f"{', '.join(missing)} is not listed afterwards; listed: "
            f"{', '.join(sorted(present)) or 'nothing'}",
            provider="local",
        )
    log.info(
        "imported %s (%s) into containerd namespace %s in %.1f s",
        ", ".join(refs),
        _mb(archive.stat().st_size),
        namespace,
        time.monotonic() - started,
    )
    return refs


# --------------------------------------------------------------------------------------------
# The cache.


def images_dir(cache_dir: Path) -> Path:
    """Return the directory under ``cache_dir`` where image layers and archives are kept."""
    return Path(cache_dir) / "images"


def _prune(directory: Path, pattern: str, keep: Path) -> None:
    """Delete all but the newest few files matching ``pattern`` (never ``keep``)."""
    candidates = sorted(
        (path for path in directory.glob(pattern) if path != keep),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for old in candidates[_KEEP_ARCHIVES - 1 :]:
        log.info("removing old cached image file %s", old)
        old.unlink(missing_ok=True)


def _reuse(archive: Path, ref: str) -> BuiltImage | None:
    if not archive.is_file():
        return None
    os.utime(archive)  # Most recently used: kept by _prune.
    log.info("using cached image archive %s for %s", archive, ref)
    return BuiltImage(ref=ref, archive=archive, cached=True)


def _mounts_below(path: Path) -> list[str]:
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


def _sweep(directory: Path, patterns: Sequence[str]) -> None:
    """Delete what killed builds left in ``directory`` (call with the build lock held)."""
    for pattern in patterns:
        for leftover in directory.glob(pattern):
            log.info("removing %s, left by an interrupted build", leftover)
            if leftover.is_dir() and not leftover.is_symlink():
                _remove_tree(leftover)
            else:
                leftover.unlink(missing_ok=True)


def _remove_tree(path: Path) -> None:
    """Delete a build directory, after unmounting anything an interrupted build left mounted.

    A directory that still has mounts below it is left in place (with a warning) rather than
    risk deleting through a mount.
    """
    if not path.exists():
        return
    for point in _mounts_below(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    remaining = _mounts_below(path)
    if remaining:
        log.warning(
            "not deleting %s: %s still mounted there; unmount and delete it by hand",
            path,
            ", ".join(remaining),
        )
        return
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The pause image.

_PAUSE_SOURCE = Path(__file__).with_name("pause.c")
_PAUSE_CFLAGS = ("-static", "-Os", "-s", "-Wall", "-Wextra")


def build_pause_image(cache_dir: Path, progress: Progress = _no_progress) -> BuiltImage:
    """Build (or reuse) the pause image archive, :data:`PAUSE_REF`.

    Compiles ``pause.c`` with ``gcc -static -Os`` into a one-file image whose entrypoint is
    ``/pause`` (user 65535, like the upstream image). Cached under ``cache_dir/images/`` by a hash
    of the source and flags.

    Args:
        cache_dir: The pytest-probes cache directory (``default_cache_dir()``).
        progress: Called with one line saying what is happening.

    Returns:
        The reference and archive path.

    Raises:
        ClusterError: gcc is missing or failed (on Debian, static libc comes with ``libc6-dev``).
    """
    source = _PAUSE_SOURCE.read_bytes()
    key = hashlib.sha256(source + "\0".join(_PAUSE_CFLAGS).encode()).hexdigest()[:12]
    directory = images_dir(cache_dir)
    archive = directory / f"pause-3.10-{key}.tar"
    cached = _reuse(archive, PAUSE_REF)
    if cached is not None:
        return cached
    with _build_lock(directory / "pause.lock", progress, "building pause image"):
        cached = _reuse(archive, PAUSE_REF)
        if cached is not None:
            return cached
        _sweep(directory, (".pause-*",))
        started = time.monotonic()
        progress("building pause image: compiling pause.c with gcc -static")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".pause-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir(mode=0o755)
            binary = root / "pause"
            _run(
                ["gcc", *_PAUSE_CFLAGS, "-o", str(binary), str(_PAUSE_SOURCE)],
                what="compiling the pause program",
                timeout=300,
                hint="Install gcc and the static C library: apt-get install gcc libc6-dev",
            )
            binary.chmod(0o755)
            layer = layer_from_directory(
                root, Path(tmp) / "layer.tar.gz", created_by="pytest-probes: pause (pause.c)"
            )
            config = ImageConfig(
                entrypoint=("/pause",),
                user="65535:65535",
                architecture=host_architecture(),
                labels={"org.opencontainers.image.title": "pytest-probes pause"},
            )
            write_oci_archive(archive, ref=PAUSE_REF, layers=[layer], config=config)
        _prune(directory, "pause-*.tar", archive)
        elapsed = time.monotonic() - started
        log.info(
            "built pause image %s (%s) in %.1f s", PAUSE_REF, _mb(archive.stat().st_size), elapsed
        )
        progress(f"built pause image {PAUSE_REF} ({elapsed:.0f} s)")
        return BuiltImage(ref=PAUSE_REF, archive=archive)


# --------------------------------------------------------------------------------------------
# The target image.


def default_app_dir() -> Path:
    """Return the directory of the ``pytest_probes.target`` app in this installation."""
    import pytest_probes

    return Path(pytest_probes.__file__).resolve().parent / "target"


def package_version() -> str:
    """Return the installed pytest-probes version, or ``0.0.0`` when it is not installed."""
    try:
        return importlib.metadata.version("pytest-probes")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _app_files(app_dir: Path) -> list[tuple[str, Path]]:
    if not app_dir.is_dir():
        raise ClusterError(
            f"target app directory {app_dir} does not exist; is pytest_probes installed "
            "with its target package?",
            provider="local",
        )
    return [
        (rel, Path(path))
        for rel, path in _walk(app_dir, APP_EXCLUDE)
        if Path(path).is_file() and not Path(path).is_symlink()
    ]


def app_hash(app_dir: Path | None = None) -> str:
    """Return a hex SHA-256 over the target app's files and the image recipe.

    The hash covers each file's relative path, executable bit and contents (not times), plus a
    recipe version that changes when this module changes how the image is made.

    Args:
        app_dir: The app directory; the installed ``pytest_probes/target`` by default.

    Raises:
        ClusterError: The directory does not exist.
    """
    app_dir = Path(app_dir) if app_dir is not None else default_app_dir()
    digest = hashlib.sha256(f"{_RECIPE}\0{_rootfs_key()}\0".encode())
    for rel, path in _app_files(app_dir):
        executable = bool(path.stat().st_mode & stat.S_IXUSR)
        digest.update(f"{rel}\0{int(executable)}\0".encode())
        digest.update(bytes.fromhex(_file_sha256(path).partition(":")[2]))
    return digest.hexdigest()


def target_ref(app_dir: Path | None = None) -> str:
    """Return the target image reference for the app as it is now.

    ``localhost/pytest-probes/target:<package version>-<first 12 hex of app_hash>``; never
    ``latest``, so a changed app gets a new reference and the kubelet never runs a stale one.

    Args:
        app_dir: The app directory; the installed ``pytest_probes/target`` by default.

    Raises:
        ClusterError: The directory does not exist.
    """
    tag = _sanitize_tag(f"{package_version()}-{app_hash(app_dir)[:12]}")
    return f"{TARGET_REPOSITORY}:{tag}"


def target_config(ref: str = "", architecture: str | None = None) -> ImageConfig:
    """Return the target image's runtime configuration.

    Args:
        ref: The image reference, recorded as a label.
        architecture: The CPU architecture; this machine's by default.
    """
    return ImageConfig(
        entrypoint=("python3", "-m", "pytest_probes.target"),
        env=(
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH=/opt/probes",
            "PYTHONUNBUFFERED=1",
            "LANG=C.UTF-8",
        ),
        working_dir="/opt/probes",
        exposed_ports=("8080/tcp",),
        labels={
            "org.opencontainers.image.title": "pytest-probes target",
            "org.opencontainers.image.version": package_version(),
            "org.opencontainers.image.ref.name": ref,
        },
        architecture=architecture or host_architecture(),
    )


def _rootfs_key() -> str:
    recipe = {
        "suite": DEBIAN_SUITE,
        "mirror": DEBIAN_MIRROR,
        "variant": DEBIAN_VARIANT,
        "packages": sorted(DEBIAN_PACKAGES),
        "exclude": list(ROOTFS_EXCLUDE),
        "architecture": host_architecture(),
        "layer": "v1",
    }
    return hashlib.sha256(_canonical_json(recipe)).hexdigest()[:12]


def _stage_app(app_dir: Path, stage: Path) -> Path:
    """Copy the app into ``stage`` as it will appear under ``/opt/probes``; return the app copy."""
    package = stage / "pytest_probes"
    target = package / "target"
    target.mkdir(parents=True)
    for directory in (stage, package, target):
        directory.chmod(0o755)
    (package / "__init__.py").write_bytes(b"")
    (package / "__init__.py").chmod(0o644)
    for rel, path in _app_files(app_dir):
        copy = target / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.parent.chmod(0o755)
        shutil.copyfile(path, copy)
        copy.chmod(0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)
    return target


_DEBOOTSTRAP_PHASES = {
    "Retrieving": "download",
    "Validating": "download",
    "Extracting": "extract",
    "Unpacking": "unpack",
    "Configuring": "configure",
}
"""debootstrap's per-package ``I:`` lines grouped into phases; progress shows each phase once,
then at most every 10 s."""


class Debootstrap:
    """Runs debootstrap, turning its ``I:`` lines into throttled progress.

    Used for the target image's root filesystem here and for the kind node image's.
    """

    def __init__(
        self,
        progress: Progress,
        started: float,
        *,
        what: str = "building target image",
        packages: Sequence[str] = DEBIAN_PACKAGES,
    ) -> None:
        self._progress = progress
        self._started = started
        self._what = what
        self._packages = tuple(packages)
        self._last_phase = ""
        self._last_emit = 0.0
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        """Take one line of debootstrap's output."""
        text = text.rstrip()
        if not text:
            return
        log.debug("debootstrap: %s", text)
        self.lines = [*self.lines[-60:], text]
        if not text.startswith("I: "):
            return
        message = text[3:]
        first = message.split(" ", 1)[0]
        phase = _DEBOOTSTRAP_PHASES.get(first, message)
        now = time.monotonic()
        if phase != self._last_phase or now - self._last_emit >= 10:
            self._last_phase, self._last_emit = phase, now
            self._progress(
                f"{self._what}: debootstrap {DEBIAN_SUITE}: {message} "
                f"({now - self._started:.0f} s)"
            )

    def run(self, target: Path, timeout: float) -> None:
        """Debootstrap into ``target``, showing progress; raise ClusterError if it fails."""
        command = [
            "debootstrap",
            f"--variant={DEBIAN_VARIANT}",
            f"--arch={host_architecture()}",
            f"--include={','.join(self._packages)}",
            DEBIAN_SUITE,
            str(target),
            DEBIAN_MIRROR,
        ]
        hint = (
            f"debootstrap needs root, the debootstrap package and access to {DEBIAN_MIRROR}; "
            f"its log is {target}/debootstrap/debootstrap.log if it got that far"
        )
        log.info("running %s", " ".join(command))
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError as err:
            raise ClusterError(
                f"{self._what}: debootstrap is not installed; apt-get install debootstrap",
                provider="local",
                command=command,
            ) from err
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert process.stdout is not None
            for text in process.stdout:
                self.line(text)
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                kill()
                process.wait()
        if timed_out.is_set() or returncode != 0:
            tail = "\n".join(self.lines[-20:])
            log_file = target / "debootstrap" / "debootstrap.log"
            if log_file.is_file():
                tail += "\n--- debootstrap.log ---\n" + _tail(log_file.read_text(errors="replace"))
            what = (
                f"did not finish within {timeout:.0f} s"
                if timed_out.is_set()
                else (f"exited with {returncode}")
            )
            raise ClusterError(
                f"{self._what}: `{' '.join(command)}` {what}: "
                f"{_tail(tail, 5)}. {hint}",
                provider="local",
                command=command,
                returncode=returncode,
                stderr_tail=tail,
            )


def _check_python(rootfs: Path) -> None:
    """Fail unless the root filesystem's python3 imports every module the app needs."""
    command = [
        "chroot",
        str(rootfs),
        "/usr/bin/python3",
        "-c",
        f"import {', '.join(PYTHON_MODULES_CHECKED)}",
    ]
    _run(
        command,
        what="checking python3 in the target root filesystem",
        timeout=120,
        hint=f"the package set {', '.join(DEBIAN_PACKAGES)} lacks a module the app needs",
    )


def build_rootfs_layer(
    cache_dir: Path, progress: Progress = _no_progress, *, timeout: float = 1800
) -> LayerInfo:
    """Build (or reuse) the target image's Debian root filesystem layer.

    Runs ``debootstrap --variant=minbase --include=...`` from :data:`DEBIAN_MIRROR`, checks that
    its python3 imports what the app needs, and writes the tree (less :data:`ROOTFS_EXCLUDE`, with
    the tree's own owners and times) as a gzip layer. Cached under ``cache_dir/images/rootfs/`` by
    a key over the suite, mirror, variant, packages and exclusions. The caller holds the lock.

    Args:
        cache_dir: The pytest-probes cache directory.
        progress: Called with lines saying what is happening and the elapsed time.
        timeout: Seconds debootstrap may take.

    Returns:
        The layer.

    Raises:
        ClusterError: debootstrap failed or the result lacks a Python module the app needs.
    """
    directory = images_dir(cache_dir) / "rootfs"
    key = _rootfs_key()
    name = f"debian-{DEBIAN_SUITE}-{DEBIAN_VARIANT}-{key}"
    layer_path = directory / f"{name}.tar.gz"
    info_path = directory / f"{name}.json"
    if layer_path.is_file() and info_path.is_file():
        layer = LayerInfo.from_json(json.loads(info_path.read_text(encoding="utf-8")))
        if layer.path == layer_path and layer.size == layer_path.stat().st_size:
            log.info("using cached root filesystem layer %s", layer_path)
            return layer
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(dir=directory, prefix=f".{name}."))
    try:
        rootfs = work / "rootfs"
        progress(
            f"building target image: debootstrap {DEBIAN_SUITE} ({DEBIAN_VARIANT} + "
            f"{', '.join(DEBIAN_PACKAGES)}) from {DEBIAN_MIRROR}; this takes a minute or two"
        )
        Debootstrap(progress, started).run(rootfs, timeout)
        bootstrapped = time.monotonic()
        log.info("debootstrap %s finished in %.1f s", DEBIAN_SUITE, bootstrapped - started)
        _check_python(rootfs)
        progress(
            f"building target image: writing the root filesystem layer "
            f"({time.monotonic() - started:.0f} s)"
        )
        layer = layer_from_directory(
            rootfs,
            work / "layer.tar.gz",
            exclude=ROOTFS_EXCLUDE,
            mtime=None,
            owner=None,
            created_by=(
                f"debootstrap --variant={DEBIAN_VARIANT} --include={','.join(DEBIAN_PACKAGES)} "
                f"{DEBIAN_SUITE} {DEBIAN_MIRROR}"
            ),
        )
        os.replace(layer.path, layer_path)
        layer = LayerInfo(**{**layer.__dict__, "path": layer_path})
        _write_bytes_atomic(info_path, _canonical_json(layer.to_json()))
        log.info(
            "built root filesystem layer %s: %s uncompressed, %s gzip; debootstrap %.1f s, "
            "layer %.1f s",
            layer_path,
            _mb(layer.uncompressed_size),
            _mb(layer.size),
            bootstrapped - started,
            time.monotonic() - bootstrapped,
        )
        return layer
    finally:
        cleanup = time.monotonic()
        _remove_tree(work)
        log.info("removed the debootstrap tree in %.1f s", time.monotonic() - cleanup)


def build_target_image(
    cache_dir: Path, progress: Progress = _no_progress, *, app_dir: Path | None = None
) -> BuiltImage:
    """Build (or reuse) the target app image archive.

    Two layers: the Debian root filesystem (:func:`build_rootfs_layer`, cached once) and the app,
    copied to ``/opt/probes/pytest_probes/target/`` beside an empty
    ``/opt/probes/pytest_probes/__init__.py``. The image runs ``python3 -m pytest_probes.target``
    with ``PYTHONPATH=/opt/probes``. Its reference is :func:`target_ref`; an archive for the
    same reference is reused, and a changed app gets a new reference and archive.

    Args:
        cache_dir: The pytest-probes cache directory (``default_cache_dir()``).
        progress: Called with lines saying what is happening and the elapsed time.
        app_dir: The app directory; the installed ``pytest_probes/target`` by default.

    Returns:
        The reference and archive path.

    Raises:
        ClusterError: The app directory is missing, or building the root filesystem failed.
    """
    app_dir = Path(app_dir) if app_dir is not None else default_app_dir()
    directory = images_dir(cache_dir)
    ref = target_ref(app_dir)
    archive = directory / f"target-{ref.rpartition(':')[2]}.tar"
    cached = _reuse(archive, ref)
    if cached is not None:
        return cached
    started = time.monotonic()
    with _build_lock(directory / "target.lock", progress, "building target image"):
        _sweep(directory, (".target-*", "rootfs/.debian-*"))
        rootfs = build_rootfs_layer(cache_dir, progress)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".target-") as tmp:
            stage = Path(tmp) / "opt-probes"
            staged_app = _stage_app(app_dir, stage)
            # Name the image after what was copied, even if the app changed meanwhile.
            ref = target_ref(staged_app)
            archive = directory / f"target-{ref.rpartition(':')[2]}.tar"
            cached = _reuse(archive, ref)
            if cached is not None:
                return cached
            progress(f"building target image: writing {ref} ({time.monotonic() - started:.0f} s)")
            app_layer = layer_from_directory(
                stage,
                Path(tmp) / "app.tar.gz",
                prefix="opt/probes",
                created_by="pytest-probes: app pytest_probes.target",
            )
            write_oci_archive(
                archive, ref=ref, layers=[rootfs, app_layer], config=target_config(ref)
            )
        _prune(directory, "target-*.tar", archive)
    elapsed = time.monotonic() - started
    log.info(
        "built target image %s (%s: root filesystem %s, app %s) in %.1f s",
        ref,
        _mb(archive.stat().st_size),
        _mb(rootfs.size),
        _mb(app_layer.size),
        elapsed,
    )
    progress(f"built target image {ref} ({_mb(archive.stat().st_size)}, {elapsed:.0f} s)")
    return BuiltImage(ref=ref, archive=archive)


__all__ = [
    "PAUSE_REF",
    "TARGET_REPOSITORY",
    "BuiltImage",
    "Debootstrap",
    "ImageConfig",
    "LayerInfo",
    "app_hash",
    "archive_refs",
    "build_pause_image",
    "build_rootfs_layer",
    "build_target_image",
    "describe_layer",
    "image_present",
    "import_archive",
    "layer_from_directory",
    "list_images",
    "target_config",
    "target_ref",
    "write_oci_archive",
]
