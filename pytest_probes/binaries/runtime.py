"""Build the node's container runtime from pinned sources: containerd 2.x, runc and CNI plugins.

The local cluster runs the runtime that kind nodes and managed clusters run, not whatever a
distribution packages (Debian bookworm's containerd 1.6 and runc 1.1 are past end of life, and
containerd 1.x support ends with Kubernetes 1.37). Each component is built like the Kubernetes
binaries (:mod:`pytest_probes.binaries.k8s`): with the Go toolchain, from the Go module
proxy, once per version, under ``<cache_dir>/runtime/<component>-<version>/bin``, with progress
lines while it compiles. :data:`RUNTIME` is the one place the versions are pinned.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_probes._locks import file_lock
from pytest_probes.binaries import k8s
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """One runtime component built from its Go module.

    Attributes:
        name: The component's name (``containerd``), the cache folder's prefix.
        module: The Go module path.
        version: The pinned module version (``v2.3.7``).
        commands: Binary name → Go package inside the module.
        tags: Go build tags.
        cgo: Whether cgo is on (runc's nsenter and seccomp are C).
        ldflags: Extra ``-X`` settings, as ``package.var=value`` (``{version}`` is filled in).
        reason: Why this version: shown in the docs and kept beside the pin.
    """

    name: str
    module: str
    version: str
    commands: Mapping[str, str]
    tags: tuple[str, ...] = ()
    cgo: bool = False
    ldflags: tuple[str, ...] = ()
    reason: str = ""

    @property
    def plain_version(self) -> str:
        """The version without the leading ``v`` (``2.3.7``)."""
        return self.version.lstrip("v")

    def bin_dir(self, cache_dir: Path) -> Path:
        """Return where this component's binaries are kept."""
        return cache_dir / "runtime" / f"{self.name}-{self.version}" / "bin"

    def missing(self, cache_dir: Path) -> list[str]:
        """Return the names of this component's binaries not yet built."""
        directory = self.bin_dir(cache_dir)
        return [name for name in self.commands if not os.access(directory / name, os.X_OK)]

    def build_flags(self) -> list[str]:
        """Return the ``go install`` flags (tags, stripped and version-stamped ldflags)."""
        flags = ["-trimpath"]
        if self.tags:
            flags += ["-tags", " ".join(self.tags)]
        stamps = [f"-X {setting.format(version=self.version)}" for setting in self.ldflags]
        flags += ["-ldflags", " ".join(["-s", "-w", *stamps])]
        return flags


CONTAINERD = Component(
    name="containerd",
    module="github.com/containerd/containerd/v2",
    version="v2.3.7",
    commands={
        "containerd": "cmd/containerd",
        "containerd-shim-runc-v2": "cmd/containerd-shim-runc-v2",
        "ctr": "cmd/ctr",
    },
    # The optional snapshotters are never selected here; kind builds without them too
    # (kind v0.33.0 images/base/Dockerfile, BUILDTAGS).
    tags=("no_aufs", "no_zfs", "no_btrfs", "no_devmapper", "urfave_cli_no_docs"),
    ldflags=(
        "github.com/containerd/containerd/v2/version.Version={version}",
        "github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2",
    ),
    reason="the 2.3 long-term-support line, newest patch on the Go module proxy; kind v0.33.0 "
    "nodes run v2.3.4",
)
"""containerd: the CRI runtime, its runc shim and ``ctr`` (image import)."""

RUNC = Component(
    name="runc",
    module="github.com/opencontainers/runc",
    version="v1.4.4",
    commands={"runc": "."},
    # runc's own Makefile builds with seccomp (needs Debian's libseccomp-dev and pkg-config);
    # its version comes from the module's embedded VERSION file.
    tags=("seccomp", "urfave_cli_no_docs"),
    cgo=True,
    reason="the newest 1.4 patch; kind v0.33.0 nodes run v1.4.3",
)
"""runc: the OCI runtime containerd's shim starts containers with."""

CNI_PLUGINS = Component(
    name="cni-plugins",
    module="github.com/containernetworking/plugins",
    version="v1.10.0",
    commands={
        "bridge": "plugins/main/bridge",
        "loopback": "plugins/main/loopback",
        "host-local": "plugins/ipam/host-local",
        "portmap": "plugins/meta/portmap",
        # The kind node image's network, as kind's own base image has it.
        "ptp": "plugins/main/ptp",
    },
    ldflags=(
        "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion={version}",
    ),
    reason="the newest release on the Go module proxy",
)
"""The standard CNI plugins the node's network config uses."""

RUNTIME: tuple[Component, ...] = (CONTAINERD, RUNC, CNI_PLUGINS)
"""Every runtime component, in build order."""


@dataclass(frozen=True)
class RuntimeBins:
    """Where a built runtime's binaries are.

    Attributes:
        containerd_dir: ``containerd``, ``containerd-shim-runc-v2`` and ``ctr``.
        runc_dir: ``runc``.
        cni_dir: The CNI plugins.
    """

    containerd_dir: Path
    runc_dir: Path
    cni_dir: Path

    @property
    def containerd(self) -> Path:
        """The containerd daemon."""
        return self.containerd_dir / "containerd"

    @property
    def ctr(self) -> Path:
        """The ``ctr`` client, used to import image archives."""
        return self.containerd_dir / "ctr"

    @property
    def runc(self) -> Path:
        """The OCI runtime."""
        return self.runc_dir / "runc"

    @property
    def search_path(self) -> str:
        """``PATH`` entries containerd needs: it finds its shim, and the shim runc, there."""
        return os.pathsep.join([str(self.containerd_dir), str(self.runc_dir)])


def runtime_bins(cache_dir: Path) -> RuntimeBins:
    """Return where the pinned runtime's binaries are (built or not)."""
    return RuntimeBins(
        containerd_dir=CONTAINERD.bin_dir(cache_dir),
        runc_dir=RUNC.bin_dir(cache_dir),
        cni_dir=CNI_PLUGINS.bin_dir(cache_dir),
    )


def describe() -> str:
    """Return the pinned runtime as the header shows it (``containerd 2.3.7, runc 1.4.4``)."""
    return f"containerd {CONTAINERD.plain_version}, runc {RUNC.plain_version}"


def ensure_runtime(cache_dir: Path, progress: Progress, *, go: str = "go") -> RuntimeBins:
    """Build whatever runtime binaries are missing, and return where they all are.

    Args:
        cache_dir: The pytest-probes cache directory.
        progress: Receives progress lines while building.
        go: The ``go`` command.

    Raises:
        ClusterError: Go is missing, or a download or build failed or took too long.
    """
    bins = runtime_bins(cache_dir)
    if not any(component.missing(cache_dir) for component in RUNTIME):
        return bins
    root = cache_dir / "runtime"
    root.mkdir(parents=True, exist_ok=True)
    # The Kubernetes builds' lock: two Go builds at once would only slow each other down.
    with file_lock(
        k8s.build_lock(cache_dir),
        timeout=k8s.BUILD_TIMEOUT,
        progress=progress,
        waiting=lambda waited: f"waiting for another build to finish before the container "
        f"runtime ({k8s.elapsed(waited)})",
        held_too_long=f"another process has been building for over {k8s.BUILD_TIMEOUT:.0f} s",
        interval=k8s.PROGRESS_INTERVAL,
        poll=1.0,
    ):
        for component in RUNTIME:
            missing = component.missing(cache_dir)
            if missing:
                _build(component, missing, cache_dir, progress, go=go)
    return bins


def _build(
    component: Component, missing: list[str], cache_dir: Path, progress: Progress, *, go: str
) -> None:
    target = component.bin_dir(cache_dir)
    started = time.monotonic()
    what = f"{component.name} {component.version}"
    progress(f"building {', '.join(missing)} ({what}) from the Go module proxy")
    env = k8s.go_install_env()
    env["CGO_ENABLED"] = "1" if component.cgo else "0"
    work = Path(tempfile.mkdtemp(prefix=".out-", dir=target.parent.parent))
    env["GOBIN"] = str(work)
    packages = [
        f"{component.module}/{component.commands[name]}".removesuffix("/.")
        + f"@{component.version}"
        for name in missing
    ]
    try:
        k8s.run_go(
            [go, "install", *component.build_flags(), *packages],
            cwd=work,
            env=env,
            what=f"compiling {what}",
            progress=progress,
            timeout=k8s.BUILD_TIMEOUT,
        )
        target.mkdir(parents=True, exist_ok=True)
        for name in missing:
            # `go install` names a binary after its package's last element: "." is the module's
            # own name (runc), the others are named as their folder.
            built = work / Path(component.commands[name]).name
            if component.commands[name] == ".":
                built = work / component.module.rsplit("/", 1)[-1]
            if not built.is_file():
                raise ClusterError(
                    f"go install of {what} finished but did not produce {built.name}",
                    provider="local",
                )
            os.chmod(built, 0o755)
            os.replace(built, target / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - started
    log.info("built %s in %.1f s", what, took)
    progress(f"built {what} in {k8s.elapsed(took)}")


def installed_versions(bins: RuntimeBins) -> str:
    """Ask the built binaries their versions (``containerd 2.3.7, runc 1.4.4``).

    What ran is what the report shows, so the versions come from the binaries, not the pins.
    A binary that does not answer shows as ``?``.
    """
    containerd = _version_word(bins.containerd)
    runc = _version_word(bins.runc)
    return f"containerd {containerd}, runc {runc}"


def _version_word(binary: Path) -> str:
    """Return the version a binary prints: the first ``v?N.N.N`` word of its first line."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    first = (done.stdout or done.stderr).splitlines()[:1]
    for word in first[0].split() if first else []:
        if _VERSION_WORD.match(word):
            return word.lstrip("v")
    return "?"


_VERSION_WORD = re.compile(r"^v?\d+\.\d+\.\d+\S*$")
