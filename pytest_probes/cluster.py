"""The cluster handle, the provider protocol and provider selection.

A provider brings up (or reuses) a cluster and returns a frozen :class:`Cluster` handle. After that
every provider shares one code path: the handle's kubeconfig, API client and image loader.
Adding a provider touches one module under :mod:`pytest_probes.providers`: its registry
(:data:`pytest_probes.providers.REGISTRY`), from which :data:`PROVIDERS` and
:func:`get_provider` come.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_probes.cluster_settings import ClusterSettings
from pytest_probes.errors import ClusterError
from pytest_probes.providers import REGISTRY

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from pytest_probes.timing import CrashLoopBackOff

log = logging.getLogger(__name__)

PROVIDERS = ("auto", *REGISTRY)
"""The ``--probes-provider`` choices: ``auto`` and every registered provider."""

KIND_ENV = "PYTEST_PROBES_KIND"
"""Environment variable naming the kind binary to use instead of ``kind`` on ``PATH``."""

Progress = Callable[[str], None]
"""A callback that shows one line of progress to the user (what is happening, elapsed time)."""


def _no_progress(_line: str) -> None:
    return None


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a dotted version without a ``v`` (``1.34`` or ``1.34.4``), oldest first."""
    return tuple(int(part) for part in version.split("."))


def default_cache_dir() -> Path:
    """Return the user cache directory for pytest-probes (``$XDG_CACHE_HOME/pytest-probes``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-probes"


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
CLUSTER_NAME_MAX = 40
"""Longest cluster name: it names a kind cluster's containers, a local cluster's cgroup tree and
its CNI network (``pytest-probes-<name>``), which must stay within a DNS label (63)."""


def check_cluster_name(name: str) -> str:
    """Return ``name`` if it is a valid cluster name.

    Raises:
        ClusterError: It is not a lowercase DNS-1123 label of at most :data:`CLUSTER_NAME_MAX`
            characters (the message gives the rule).
    """
    if len(name) <= CLUSTER_NAME_MAX and _DNS_LABEL.fullmatch(name):
        return name
    raise ClusterError(
        f"{name!r} is not a valid cluster name: use lowercase letters, digits and '-', starting "
        f"and ending with a letter or digit, at most {CLUSTER_NAME_MAX} characters (e.g. probes-2)"
    )


def trusted_cache_dir(path: Path) -> Path:
    """Create the cache directory (mode 0700) or check that an existing one is safe to run from.

    The providers run binaries they built or fetched into the cache, as root for the local
    provider: a cache that someone else could write to would be a way to root. So the directory
    must belong to the running user and be writable by nobody else, and so must every directory
    above it (root's are fine; a sticky, world-writable one such as ``/tmp`` is too).

    Raises:
        ClusterError: The directory or one above it fails the check (the message names it and
            the fix).
    """
    path = path.absolute()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = os.geteuid()
    for directory in (path, *path.parents):
        info = directory.stat()
        owner_ok = info.st_uid == uid or (directory != path and info.st_uid == 0)
        writable = info.st_mode & 0o022
        sticky_above = directory != path and info.st_mode & 0o1000
        if owner_ok and (not writable or sticky_above):
            continue
        if owner_ok:
            who, fix = f"writable by others (mode {info.st_mode & 0o7777:o})", \
                f"chmod go-w {directory}"
        else:
            who, fix = f"owned by uid {info.st_uid}", (
                f"use a cache directory of your own (XDG_CACHE_HOME, or --cache-dir of the "
                f"pytest-probes command), or chown {uid} {directory}")
        raise ClusterError(
            f"refusing the cache directory {path}: {directory} is {who}, so someone else could "
            f"replace the binaries run from it. Fix: {fix}"
        )
    return path


@dataclass(frozen=True)
class ClusterConfig:
    """What the user asked for; the same for every provider.

    Attributes:
        name: The cluster name.
        k8s_version: The Kubernetes version (``1.34`` or ``1.34.4``); ``None`` for the default.
        kubeconfig: An explicit kubeconfig path (required for ``existing``).
        context: A kubeconfig context (``existing`` only); ``None`` for the file's current one.
        keep: Keep a cluster this run created instead of deleting it at the end.
        allow_existing: Allow an existing cluster that does not look like a local test cluster.
        cache_dir: Where builds, images and cluster state are kept.
        kind_node_image: kind only: a node image to use as given, or ``offline`` to build one.
        kind_config: kind only: a kind cluster config of the user's, merged under ours.
        settings: Feature gates and kubelet settings beyond the provider's defaults
            (:mod:`pytest_probes.cluster_settings`; a test's ``probes_cluster`` marker).
    """

    name: str = "probes"
    k8s_version: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    keep: bool = False
    allow_existing: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    kind_node_image: str | None = None
    kind_config: Path | None = None
    settings: ClusterSettings = field(default_factory=ClusterSettings)


@dataclass(frozen=True)
class Cluster:
    """A cluster ready for tests.

    Attributes:
        name: The cluster name.
        provider: The provider that made or found it.
        kubeconfig: Path of a kubeconfig with admin rights on it.
        k8s_version: The server's ``gitVersion``, e.g. ``v1.34.4``.
        created: Whether this run created it (and so may delete it).
        context: The kubeconfig context to use, or ``None`` for the file's current context.
        target_image: The reference of the target image loaded into it, or ``""`` if not yet.
        runtime: The node's container runtime as far as the provider can tell
            (``containerd 2.3.7, runc 1.4.4``), or ``""`` if unknown.
        node_image: The node image a kind cluster was created from, if known.
        settings: The feature gates and kubelet settings it was set up with.
    """

    name: str
    provider: str
    kubeconfig: Path
    k8s_version: str
    created: bool = False
    context: str | None = None
    target_image: str = ""
    runtime: str = ""
    node_image: str = ""
    settings: ClusterSettings = field(default_factory=ClusterSettings)
    image_loader: Callable[[Path], list[str]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def crashloop_backoff(self) -> CrashLoopBackOff:
        """The crash-loop back-off its kubelet uses, from its version and :attr:`settings`.

        Pass it to :meth:`ContainerTiming.from_pod_spec
        <pytest_probes.timing.ContainerTiming.from_pod_spec>` (``backoff=``) and to
        :func:`~pytest_probes.assert_crashloop_backoff`
        (:func:`pytest_probes.kubelet_versions.crashloop_backoff`). An existing cluster's own
        kubelet settings are not known: the default for its version.
        """
        from pytest_probes.kubelet_versions import crashloop_backoff

        return crashloop_backoff(self.k8s_version, self.settings.gates,
                                 self.settings.kubelet_config)

    def api_client(self) -> ApiClient:
        """Return a new ``kubernetes.client.ApiClient`` for this cluster's kubeconfig."""
        from kubernetes import config

        client: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), context=self.context, persist_config=False
        )
        return client

    def to_json(self) -> dict[str, Any]:
        """Its fields as JSON, for another process of the run (:meth:`from_json`).

        ``created`` and the image loader stay behind: the reading process decides the one, and
        the provider gives the other.
        """
        return {"name": self.name, "provider": self.provider,
                "kubeconfig": str(self.kubeconfig), "k8s_version": self.k8s_version,
                "context": self.context, "target_image": self.target_image,
                "runtime": self.runtime, "node_image": self.node_image,
                "settings": self.settings.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, created: bool = False) -> Cluster:
        """The cluster :meth:`to_json` wrote (fields it lacks keep their defaults)."""
        return cls(name=data["name"], provider=data["provider"],
                   kubeconfig=Path(data["kubeconfig"]), k8s_version=data["k8s_version"],
                   created=created, context=data.get("context"),
                   target_image=data.get("target_image", ""), runtime=data.get("runtime", ""),
                   node_image=data.get("node_image", ""),
                   settings=ClusterSettings.from_json(data.get("settings")))

    def load_image(self, archive: Path | str) -> list[str]:
        """Load an image archive (OCI or docker-archive tar) into the cluster's node.

        Args:
            archive: Path of the archive.

        Returns:
            The image references the archive carried.

        Raises:
            ClusterError: The archive is missing or the node refused it.
        """
        path = Path(archive)
        if not path.is_file():
            raise ClusterError(
                f"image archive {path} does not exist: build it first (for example "
                "`docker save IMAGE -o FILE`, or pytest_probes.images)",
                provider=self.provider,
            )
        if self.image_loader is None:
            raise ClusterError(
                f"provider {self.provider} cannot load images", provider=self.provider
            )
        return self.image_loader(path)


def node_runtime(cluster: Cluster) -> str:
    """Return the container runtime the cluster's nodes report (``containerd 2.3.4``).

    Read from each node's ``status.nodeInfo.containerRuntimeVersion`` (``containerd://2.3.4``);
    several nodes with different runtimes are listed together. ``""`` when the API does not
    answer: the runtime is for the report, and no verdict depends on it.
    """
    from kubernetes import client

    try:
        with cluster.api_client() as api:
            nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
    except Exception as error:
        log.debug("cannot read the nodes' runtime of %s: %s", cluster.name, error)
        return ""
    found = sorted(
        {
            (n.status.node_info.container_runtime_version or "").replace("://", " ")
            for n in nodes
            if n.status is not None and n.status.node_info is not None
        }
        - {""}
    )
    return "; ".join(found)


class Provider(Protocol):
    """What every cluster provider implements."""

    name: str

    def up(self, config: ClusterConfig, progress: Progress = _no_progress) -> Cluster:
        """Create the cluster, or reuse a running one of the same name and version."""
        ...

    def ensure_target_image(self, cluster: Cluster, progress: Progress = _no_progress) -> str:
        """Make the target app image available on the cluster and return its reference."""
        ...

    def down(self, cluster: Cluster, progress: Progress = _no_progress) -> None:
        """Delete the cluster (only called for clusters this run created, unless asked)."""
        ...


def docker_engine_answers() -> bool:
    """Return whether a Docker engine answers ``docker info`` within a few seconds."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def kind_installed() -> bool:
    """Whether a kind binary is there: ``$PYTEST_PROBES_KIND`` or ``kind`` on ``PATH``."""
    named = os.environ.get(KIND_ENV)
    return shutil.which(named if named else "kind") is not None


def resolve_provider_name(requested: str) -> str:
    """Turn ``auto`` into a concrete provider name; pass others through.

    ``auto`` picks kind where a Docker engine answers and kind is installed (``$PYTEST_PROBES_KIND``
    or ``kind`` on ``PATH``), otherwise ``local`` where running as root on Linux, and otherwise
    fails with what is missing.

    Raises:
        ClusterError: ``auto`` found no provider that can run here.
    """
    if requested != "auto":
        return requested
    if kind_installed() and docker_engine_answers():
        return "kind"
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        return "local"
    raise ClusterError(
        "no cluster provider can run here: kind needs a Docker engine (`docker info` did not "
        "answer) and the kind binary, and the local provider needs root on Linux. Install and "
        "start Docker and kind, run as root on Linux, or point at a cluster you run with "
        "--probes-provider existing --probes-kubeconfig PATH",
        provider="auto",
    )


def get_provider(name: str) -> Provider:
    """Return the provider object for a concrete provider name.

    Raises:
        ClusterError: The name is not a known provider, or its module is not available.
    """
    if name not in REGISTRY:
        raise ClusterError(
            f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}", provider=name
        )
    module_name, class_name = REGISTRY[name].module, REGISTRY[name].cls
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ClusterError(
            f"provider {name} is not available in this version of pytest-probes; use "
            "--probes-provider local",
            provider=name,
        ) from err
    provider: Provider = getattr(module, class_name)()
    return provider
