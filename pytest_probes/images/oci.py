"""OCI image archives written with the standard library alone, and the references they name.

An archive holds one image: its layers (:mod:`.layers`), its config and manifest, an OCI index
and a docker-archive ``manifest.json``, so ``ctr images import``, ``kind load image-archive`` and
``docker load`` all accept it. The same inputs give byte-identical archives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_probes.errors import ClusterError
from pytest_probes.images._build import atomic_file, canonical_json, megabytes
from pytest_probes.images.layers import LayerInfo, describe_layer

log = logging.getLogger(__name__)

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"


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
    config_blob = canonical_json(config.to_json(described))
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
    manifest_blob = canonical_json(manifest)
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
        ("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})),
        (_blob_name(config_digest), config_blob),
        (_blob_name(manifest_digest), manifest_blob),
        ("index.json", canonical_json(index)),
        ("manifest.json", canonical_json(docker_manifest)),
    ]
    started = time.monotonic()
    with atomic_file(Path(dest)) as raw:
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
        megabytes(Path(dest).stat().st_size),
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
