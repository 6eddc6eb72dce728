"""Container images built without Docker or a registry, as OCI image archives.

Every provider loads these archives into its nodes its own way (the local provider with
``ctr images import``, kind with ``kind load image-archive``); they are written with the standard
library alone:

* :mod:`.layers`: a directory tree as a deterministic layer tar, with its digests;
* :mod:`.oci`: the image config and the single-image OCI archive (with a docker-archive
  ``manifest.json``), and the references an archive names;
* :mod:`.debian`: a Debian root filesystem made by ``debootstrap``;
* :mod:`.pause`: the pause (sandbox) image :data:`PAUSE_REF`, compiled from ``pause.c``;
* :mod:`.target`: the target image (:func:`target_ref`): the Debian root filesystem (one layer,
  cached by package set) plus the ``pytest_probes.target`` app (one layer, keyed by a hash of its
  files), run as ``python3 -m pytest_probes.target``.

Everything built is kept under ``CACHE_DIR/images/``; each file there is written to a temporary
name and renamed into place, so an interrupted build never leaves a corrupt entry, and builds hold
an ``fcntl`` lock so concurrent runs do not race. The same inputs give byte-identical layers and
archives, so digests are stable.
"""

from __future__ import annotations

from pytest_probes.images._build import BuiltImage
from pytest_probes.images.debian import DEBIAN_SUITE, ROOTFS_EXCLUDE, Debootstrap
from pytest_probes.images.layers import (
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_LAYER_GZIP,
    LayerInfo,
    describe_layer,
    layer_from_directory,
)
from pytest_probes.images.oci import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    ImageConfig,
    archive_refs,
    host_architecture,
    write_oci_archive,
)
from pytest_probes.images.pause import PAUSE_REF, build_pause_image
from pytest_probes.images.target import (
    TARGET_REPOSITORY,
    app_hash,
    build_rootfs_layer,
    build_target_image,
    default_app_dir,
    package_version,
    target_config,
    target_ref,
)

__all__ = [
    "DEBIAN_SUITE",
    "MEDIA_TYPE_CONFIG",
    "MEDIA_TYPE_INDEX",
    "MEDIA_TYPE_LAYER",
    "MEDIA_TYPE_LAYER_GZIP",
    "MEDIA_TYPE_MANIFEST",
    "PAUSE_REF",
    "ROOTFS_EXCLUDE",
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
    "default_app_dir",
    "describe_layer",
    "host_architecture",
    "layer_from_directory",
    "package_version",
    "target_config",
    "target_ref",
    "write_oci_archive",
]
