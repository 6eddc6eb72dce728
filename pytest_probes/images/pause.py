"""The pause (sandbox) image: one static binary compiled from ``pause.c`` beside this module.

containerd's ``sandbox_image`` points at it, on the local provider's node and in the kind node
images built offline, so no registry is needed for it.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path

from pytest_probes.cluster import Progress, _no_progress
from pytest_probes.images._build import (
    BuiltImage,
    build_lock,
    images_dir,
    megabytes,
    prune,
    reuse,
    run,
    sweep,
)
from pytest_probes.images.layers import layer_from_directory
from pytest_probes.images.oci import ImageConfig, host_architecture, write_oci_archive

log = logging.getLogger(__name__)

PAUSE_REF = "localhost/pytest-probes/pause:3.10"
"""The reference of the pause image; the node's containerd uses it as ``sandbox_image``."""

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
    cached = reuse(archive, PAUSE_REF)
    if cached is not None:
        return cached
    with build_lock(directory / "pause.lock", progress, "building pause image"):
        cached = reuse(archive, PAUSE_REF)
        if cached is not None:
            return cached
        sweep(directory, (".pause-*",))
        started = time.monotonic()
        progress("building pause image: compiling pause.c with gcc -static")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".pause-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir(mode=0o755)
            binary = root / "pause"
            run(
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
        prune(directory, "pause-*.tar", archive)
        elapsed = time.monotonic() - started
        size = megabytes(archive.stat().st_size)
        log.info("built pause image %s (%s) in %.1f s", PAUSE_REF, size, elapsed)
        progress(f"built pause image {PAUSE_REF} ({elapsed:.0f} s)")
        return BuiltImage(ref=PAUSE_REF, archive=archive)
