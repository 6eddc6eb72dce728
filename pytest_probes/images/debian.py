"""A Debian root filesystem made by debootstrap: the base of the target and kind node images."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_probes._command import last_lines as _tail
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError
from pytest_probes.images.oci import host_architecture

log = logging.getLogger(__name__)

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_VARIANT = "minbase"
DEBIAN_PACKAGES = ("python3-minimal", "libpython3.11-stdlib", "python3-grpcio", "python3-h2")
"""Packages added to ``minbase``: ``python3`` (the command), the full standard library, grpcio
and h2.

``python3.11-minimal`` alone lacks ``http.server``, ``email``, ``logging``'s handlers and more;
``libpython3.11-stdlib`` adds them without the ``python3`` metapackage's extras.
``python3-grpcio`` is the target app's gRPC health service (``GRPC_PORT``,
:mod:`pytest_probes.target.grpc_health`); it has no ``grpc_health`` module and needs no
protobuf runtime there. ``python3-h2`` (with ``python3-hpack`` and ``python3-hyperframe``) is
its h2c listener (``H2C_PORT``, :mod:`pytest_probes.target.h2c`).
"""

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

    Used for the target image's root filesystem and for the kind node image's.
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
