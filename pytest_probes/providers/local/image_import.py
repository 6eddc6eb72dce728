"""Images imported into the local node's containerd (``ctr images import``), and listed there.

The archives come from :mod:`pytest_probes.images`; the node has no registry to pull from.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pytest_probes._command import run_command
from pytest_probes.errors import ClusterError
from pytest_probes.images import archive_refs

log = logging.getLogger(__name__)

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
    done = run_command(
        _ctr(ctr, address, namespace, "images", "list", "--quiet"),
        what=f"listing images in containerd at {address}",
        timeout=60,
        hint="Is containerd running and listening there?",
        provider="local",
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
    run_command(
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
        provider="local",
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
        "imported %s (%.1f MB) into containerd namespace %s in %.1f s",
        ", ".join(refs),
        archive.stat().st_size / 1e6,
        namespace,
        time.monotonic() - started,
    )
    return refs
