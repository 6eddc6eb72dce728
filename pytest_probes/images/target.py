"""The target image: the ``pytest_probes.target`` app on a minimal Debian root filesystem.

Two layers: a root filesystem made by ``debootstrap`` (:mod:`.debian`; one layer, cached by
package set) and the app (one layer, keyed by a hash of its files), run as
``python3 -m pytest_probes.target``. The reference names the package version and that hash, so
a changed app gets a new image.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from pytest_probes.cluster import Progress, _no_progress
from pytest_probes.errors import ClusterError
from pytest_probes.images._build import (
    BuiltImage,
    build_lock,
    canonical_json,
    file_sha256,
    images_dir,
    megabytes,
    prune,
    remove_tree,
    reuse,
    run,
    sweep,
    write_bytes_atomic,
)
from pytest_probes.images.debian import (
    DEBIAN_MIRROR,
    DEBIAN_PACKAGES,
    DEBIAN_SUITE,
    DEBIAN_VARIANT,
    ROOTFS_EXCLUDE,
    Debootstrap,
)
from pytest_probes.images.layers import LayerInfo, layer_from_directory, walk
from pytest_probes.images.oci import ImageConfig, host_architecture, write_oci_archive

log = logging.getLogger(__name__)

TARGET_REPOSITORY = "localhost/pytest-probes/target"
"""The repository of the target image; the tag is ``<package version>-<app hash>``."""

PYTHON_MODULES_CHECKED = (
    "collections", "collections.abc", "contextlib", "dataclasses", "datetime", "http",
    "http.client", "http.server", "ipaddress", "json", "math", "os", "pathlib", "random", "re",
    "select", "signal", "socket", "socketserver", "sys", "threading", "time", "types", "typing",
    "urllib.parse", "concurrent.futures", "grpc", "h2.config", "h2.connection", "h2.errors",
    "h2.events", "h2.exceptions",
)
"""Modules the target app imports (:mod:`pytest_probes.target`, checked by the unit tests); a fresh
root filesystem must import them all. ``concurrent.futures`` and ``grpc`` (Debian's
``python3-grpcio``) are imported only with ``GRPC_PORT``
(:mod:`pytest_probes.target.grpc_health`), ``h2`` (``python3-h2``) only with ``H2C_PORT``
(:mod:`pytest_probes.target.h2c`)."""

APP_EXCLUDE = ("__pycache__", "*/__pycache__", "*.pyc", "*.pyo", ".*", "*/.*")
"""What is not part of the app: bytecode caches and hidden files."""

_RECIPE = "pytest-probes-target-recipe-1"
"""Changes whenever the target image's recipe (config, layout, rootfs) changes, to bust caches."""


def _sanitize_tag(text: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", text).lstrip(".-") or "0"
    return tag[:100]


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
        for rel, path in walk(app_dir, APP_EXCLUDE)
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
        digest.update(bytes.fromhex(file_sha256(path).partition(":")[2]))
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
    return hashlib.sha256(canonical_json(recipe)).hexdigest()[:12]


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


def _check_python(rootfs: Path) -> None:
    """Fail unless the root filesystem's python3 imports every module the app needs."""
    command = [
        "chroot",
        str(rootfs),
        "/usr/bin/python3",
        "-c",
        f"import {', '.join(PYTHON_MODULES_CHECKED)}",
    ]
    run(
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
        write_bytes_atomic(info_path, canonical_json(layer.to_json()))
        log.info(
            "built root filesystem layer %s: %s uncompressed, %s gzip; debootstrap %.1f s, "
            "layer %.1f s",
            layer_path,
            megabytes(layer.uncompressed_size),
            megabytes(layer.size),
            bootstrapped - started,
            time.monotonic() - bootstrapped,
        )
        return layer
    finally:
        cleanup = time.monotonic()
        remove_tree(work)
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
    cached = reuse(archive, ref)
    if cached is not None:
        return cached
    started = time.monotonic()
    with build_lock(directory / "target.lock", progress, "building target image"):
        sweep(directory, (".target-*", "rootfs/.debian-*"))
        rootfs = build_rootfs_layer(cache_dir, progress)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".target-") as tmp:
            stage = Path(tmp) / "opt-probes"
            staged_app = _stage_app(app_dir, stage)
            # Name the image after what was copied, even if the app changed meanwhile.
            ref = target_ref(staged_app)
            archive = directory / f"target-{ref.rpartition(':')[2]}.tar"
            cached = reuse(archive, ref)
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
        prune(directory, "target-*.tar", archive)
    elapsed = time.monotonic() - started
    log.info(
        "built target image %s (%s: root filesystem %s, app %s) in %.1f s",
        ref,
        megabytes(archive.stat().st_size),
        megabytes(rootfs.size),
        megabytes(app_layer.size),
        elapsed,
    )
    progress(f"built target image {ref} ({megabytes(archive.stat().st_size)}, {elapsed:.0f} s)")
    return BuiltImage(ref=ref, archive=archive)
