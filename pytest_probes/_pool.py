"""The clusters of one pytest process, one per configuration, each brought up on first use.

A test runs on the run's shared cluster, or on a cluster configured as its ``probes_cluster``
marker asks (:mod:`pytest_probes.cluster_settings`): one cluster per distinct configuration,
named from it. :class:`ClusterPool` keeps them for the session: the first test that needs one
brings it up (or finds it, when another run or xdist worker made it), later tests get it from
the pool at the cost of a dictionary lookup, so tests without the marker pay nothing for the
others. Each cluster of a provider that creates clusters is held by a lease
(:mod:`pytest_probes.leases`) for as long as the process uses it; under pytest-xdist every
worker notes the clusters it used (:func:`record_workers_cluster`), and the controller takes
down, at the end of the run, those the run created and no other run still uses
(:func:`finish_workers_clusters`). The pool also keeps, per cluster, its target image, its API
client and its cluster-scoped objects.

The fixtures (:mod:`pytest_probes.fixtures`) turn a configuration the running
version lacks into a skip.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from pytest_probes._locks import file_lock
from pytest_probes._setup import take_down
from pytest_probes.cluster import Cluster, ClusterConfig, Provider, get_provider
from pytest_probes.cluster_objects import ClusterObjects, delete_journaled
from pytest_probes.cluster_settings import DIGEST_LENGTH, ClusterRequest, ClusterSettings, too_old
from pytest_probes.errors import ClusterError, UnsupportedSettings
from pytest_probes.leases import Lease
from pytest_probes.namespaces import delete_orphaned_namespaces, owner_gone
from pytest_probes.providers import REGISTRY

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

LEASED_PROVIDERS = tuple(name for name, entry in REGISTRY.items() if entry.creates_clusters)
UP_LOCK_TIMEOUT = 3600.0
"""Seconds a process waits for another to bring up the same cluster: as long as a Kubernetes
build may take (``binaries.k8s.BUILD_TIMEOUT``), which a first ``up`` can include."""
"""The providers that create clusters, and so hold leases on them."""


@dataclass
class _Entry:
    """One cluster of the pool and what the process holds of it."""

    cluster: Cluster
    provider: Provider
    lease: Lease | None
    image: str | None = None
    api: Any = None
    objects: ClusterObjects | None = None


class ClusterPool:
    """The process's clusters by configuration (see the module docstring).

    Args:
        provider: The concrete provider name (``local``, ``kind``, ``existing``).
        config: The run's cluster configuration; its ``name`` is the shared cluster's, and a
            configured cluster's name is made from it (:meth:`ClusterSettings.cluster_name`).
        run_id: The run's id (names the xdist notes and the objects' journal).
        owner: The run's owner record (the creator a lease names).
        worker: Whether this process is a pytest-xdist worker (the controller then decides about
            the clusters at the end of the run).
        progress: Receives progress lines.
    """

    def __init__(self, provider: str, config: ClusterConfig, *, run_id: str, owner: str,
                 worker: bool, progress: Progress) -> None:
        self.provider_name = provider
        self.config = config
        self.run_id = run_id
        self.owner = owner
        self.worker = worker
        self.progress = progress
        self._entries: dict[ClusterSettings, _Entry] = {}
        self._refused: dict[ClusterSettings, str] = {}
        self.durations: dict[str, float] = {}
        """Seconds each cluster took to be brought up or found, by name."""

    def cluster_config(self, settings: ClusterSettings) -> ClusterConfig:
        """The configuration of the cluster with ``settings``: its name made from them."""
        if settings.is_default:
            return self.config
        return replace(self.config, name=settings.cluster_name(self.config.name),
                       settings=settings)

    def default(self) -> Cluster:
        """The run's shared cluster (brought up on first use)."""
        return self.cluster(ClusterSettings())

    def adopt(self, cluster: Cluster, image: str) -> None:
        """Take ``cluster`` (with ``image`` loaded) as the shared cluster, without an ``up``.

        For an xdist worker whose controller readied the cluster before the workers started
        (:mod:`pytest_probes._setup`): the controller's lease covers the whole run, so the
        worker holds none and leaves the decision about the cluster to the controller. The
        cluster's image loader asks the provider (an ``up`` that reuses it) on first use only.
        """
        config = self.cluster_config(cluster.settings)
        provider = get_provider(self.provider_name)
        loaded: list[Callable[[Path], list[str]]] = []

        def load(archive: Path) -> list[str]:
            if not loaded:
                fresh = provider.up(config, self.progress)
                if fresh.image_loader is None:
                    raise ClusterError(f"cluster {cluster.name} cannot load images",
                                       provider=self.provider_name)
                loaded.append(fresh.image_loader)
            return loaded[0](archive)

        adopted = replace(cluster, image_loader=load)
        self._entries[cluster.settings] = _Entry(adopted, provider, None, image=image or None)
        self.durations[cluster.name] = 0.0

    def planned_version(self) -> str | None:
        """The Kubernetes version the run's clusters have, known without bringing one up.

        The shared cluster's, once it is up; else what the local or kind provider will bring
        for ``--probes-k8s-version`` (its pinned full version), so a test that needs a newer
        version is skipped before its cluster is made. ``None`` when only the cluster can tell
        (the existing provider, a kind node image given by the user).
        """
        shared = self._entries.get(ClusterSettings())
        if shared is not None:
            return shared.cluster.k8s_version
        try:
            if self.provider_name == "local":
                from pytest_probes.binaries import k8s

                return k8s.resolve_version(self.config.k8s_version)
            if self.provider_name == "kind" and self.config.kind_node_image is None:
                from pytest_probes.providers import kind

                return kind.image_version(kind.node_image(self.config.k8s_version))
        except Exception as error:  # the provider's up() says it better
            log.debug("no planned version: %s", error)
        return None

    def not_applicable(self, request: ClusterRequest) -> str | None:
        """Why a test with this marker does not apply to the run's version, before any up."""
        if request.min_version is None:
            return None
        version = self.planned_version() or self.default().k8s_version
        return too_old(request.min_version, version)

    def cluster(self, settings: ClusterSettings) -> Cluster:
        """The cluster with ``settings``, brought up (or found) on first use, then cached.

        Raises:
            UnsupportedSettings: The version has no such configuration (remembered, so the next
                test asking for it is told at once).
            ClusterError: The provider could not bring it up.
        """
        entry = self._entries.get(settings)
        if entry is not None:
            return entry.cluster
        if settings in self._refused:
            raise UnsupportedSettings(self._refused[settings], provider=self.provider_name)
        try:
            entry = self._up(settings)
        except UnsupportedSettings as error:
            self._refused[settings] = str(error)
            raise
        self._entries[settings] = entry
        return entry.cluster

    def _up(self, settings: ClusterSettings) -> _Entry:
        config = self.cluster_config(settings)
        provider = get_provider(self.provider_name)
        began = time.monotonic()
        lease: Lease | None = None
        if self.provider_name in LEASED_PROVIDERS:
            lease = Lease(config.cache_dir, self.provider_name, config.name)
            lease.acquire(self.progress)
        if not settings.is_default:
            self.progress(f"cluster {config.name} for the tests that ask for "
                          f"{settings.describe()}")
        try:
            with self._bringing_up(lease, config.name):
                cluster = provider.up(config, self.progress)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        if cluster.created and lease is not None:
            lease.mark_created(None if config.keep else self.owner)
        took = time.monotonic() - began
        self.durations[cluster.name] = round(took, 3)
        self.progress(
            f"cluster {cluster.name} ready ({cluster.provider}, {cluster.k8s_version}, "
            f"{cluster.runtime or 'runtime unknown'}, "
            f"{'created' if cluster.created else 'reused'}) in {took:.1f} s")
        if self.worker and lease is not None:
            # Under pytest-xdist other workers may share the cluster until the whole run ends:
            # the controller decides about it then (finish_workers_clusters), not this worker.
            record_workers_cluster(config.cache_dir, self.run_id, cluster)
        return _Entry(cluster, provider, lease)

    def _bringing_up(self, lease: Lease | None, name: str) -> AbstractContextManager[None]:
        """One process at a time brings a cluster of this name up (the others then reuse it).

        Under pytest-xdist two workers may ask for the same configured cluster at once; the
        shared cluster is readied by the controller before them. kind's own create fails on a
        node container of the same name ("Conflict. The container name ... is already in
        use"), so the pool takes an exclusive lock beside the cluster's lease around ``up``.
        """
        if lease is None:
            return nullcontext()
        return file_lock(
            lease.path.with_name(lease.path.name + ".up"), timeout=UP_LOCK_TIMEOUT,
            progress=self.progress,
            waiting=lambda waited: f"waiting for another process to bring up cluster {name} "
            f"({waited:.0f} s)",
            held_too_long=f"another process has been bringing up cluster {name} for over "
            f"{UP_LOCK_TIMEOUT:.0f} s")

    def _entry(self, cluster: Cluster) -> _Entry:
        return next(e for e in self._entries.values() if e.cluster.name == cluster.name)

    def image(self, cluster: Cluster) -> str:
        """The target image's reference, loaded into ``cluster`` on first use."""
        entry = self._entry(cluster)
        if entry.image is None:
            entry.image = entry.provider.ensure_target_image(cluster, self.progress)
        return entry.image

    def api(self, cluster: Cluster) -> Any:
        """The API client of ``cluster``; on first use the namespaces of killed runs go."""
        entry = self._entry(cluster)
        if entry.api is None:
            entry.api = cluster.api_client()
            delete_orphaned_namespaces(entry.api)  # left by an earlier run killed outright
        return entry.api

    def objects(self, cluster: Cluster) -> ClusterObjects:
        """The run's cluster-scoped objects on ``cluster`` (one journal for the whole run)."""
        entry = self._entry(cluster)
        if entry.objects is None:
            entry.objects = ClusterObjects(
                self.run_id, journal=cluster_objects_journal(self.config.cache_dir, self.run_id),
                kubeconfig=str(cluster.kubeconfig), context=cluster.context)
        return entry.objects

    @property
    def clusters(self) -> list[Cluster]:
        """The clusters the process has used, the shared one first."""
        return [e.cluster for e in self._entries.values()]

    def close(self) -> None:
        """End the process's use of its clusters.

        Without xdist: remove the run's cluster-scoped objects, then take down each cluster the
        run created (unless kept, or while another run uses it). On a worker: let go of the
        leases; the controller decides at the end of the run.
        """
        entries = list(self._entries.values())
        if not self.worker and any(e.objects is not None and e.objects.created for e in entries):
            removed = delete_journaled(cluster_objects_journal(self.config.cache_dir,
                                                               self.run_id))
            self.progress(f"removed {len(removed)} cluster-scoped objects this run created: "
                          f"{', '.join(removed)}")
        for entry in entries:
            if entry.api is not None:
                entry.api.close()
            if entry.lease is None:
                continue
            if self.worker:
                entry.lease.release()
            else:
                down = partial(take_down, entry.provider, entry.cluster, self.progress)
                entry.lease.finish(self.owner, down, self.progress)
        if not self.worker:
            take_down_orphans(self.config.cache_dir, self.provider_name, self.config.name,
                              me=self.owner, progress=self.progress)
        self._entries.clear()


def cluster_objects_journal(cache_dir: Path, run_id: str) -> Path:
    """Where a run's processes write the cluster-scoped objects they created."""
    return cache_dir / "runs" / f"{run_id}.objects.jsonl"


def _workers_cluster_note(cache_dir: Path, run_id: str, name: str) -> Path:
    return cache_dir / "runs" / f"{run_id}.cluster-{name}.json"


def record_workers_cluster(cache_dir: Path, run_id: str, cluster: Cluster) -> None:
    """Note, for the controller of an xdist run, a cluster its workers use."""
    note = _workers_cluster_note(cache_dir, run_id, cluster.name)
    note.parent.mkdir(parents=True, exist_ok=True)
    tmp = note.with_suffix(f".{secrets.token_hex(3)}")
    tmp.write_text(json.dumps(cluster.to_json()))
    tmp.replace(note)


def finish_workers_clusters(
    cache_dir: Path, run_id: str, *, me: str, progress: Progress,
    after: Mapping[str, Future[Any]] | None = None,
) -> set[str]:
    """End an xdist run's use of its workers' clusters: take down those this run is to.

    That is each cluster a worker created (without ``--probes-keep-cluster``), or whose creator
    has ended, that no other run holds a lease on (:meth:`Lease.finish`). The clusters are
    independent, so each is taken down in a thread of its own (deleting a local cluster is 3-4 s
    of waiting for its processes to stop; one after the other, four took 12 s).

    Args:
        cache_dir: Where the workers' notes and the leases are.
        run_id: The run whose workers' notes to read.
        me: This run's owner record (the controller's).
        progress: Receives what is taken down.
        after: Per cluster name, work to wait for before finishing that cluster's lease (the
            controller's own lease on it: held, it would keep this run from the last word).

    Returns:
        The providers of those clusters (for :func:`take_down_orphans`).
    """
    ends: list[Callable[[], None]] = []
    providers: set[str] = set()
    for note in sorted(_workers_cluster_note(cache_dir, run_id, "*").parent.glob(
            f"{run_id}.cluster-*.json")):
        cluster = Cluster.from_json(json.loads(note.read_text()), created=True)
        note.unlink()
        lease = Lease(cache_dir, cluster.provider, cluster.name)
        first = (after or {}).get(cluster.name)

        def end(lease: Lease = lease, cluster: Cluster = cluster,
                first: Future[Any] | None = first) -> None:
            if first is not None:
                first.result()
            lease.finish(me, partial(take_down, get_provider(cluster.provider), cluster,
                                     progress), progress)

        ends.append(end)
        providers.add(cluster.provider)
    if ends:
        with ThreadPoolExecutor(len(ends), thread_name_prefix="probes-down") as pool:
            for done in [pool.submit(end) for end in ends]:
                done.result()
    return providers


def take_down_orphans(cache_dir: Path, provider: str, base: str, *, me: str,
                      progress: Progress) -> list[str]:
    """Take down the configured clusters of ``base`` whose creating run ended and nobody uses.

    A run killed outright leaves the clusters it created behind, with an owner record that names
    a process that is gone. The next run that uses the same configuration takes one down at its
    end; one that no later run asks for would stay. So at its end every run (the controller under
    xdist) looks at the leases of the configured clusters of its cluster name
    (``<base>-<digest>``) and takes down, as :meth:`Lease.finish` decides, each whose creator is
    gone and that no other run holds. Kept clusters (no owner record) and those of live runs stay.

    Returns:
        The names of the clusters taken down.
    """
    if provider not in LEASED_PROVIDERS:
        return []
    stem = ClusterSettings.of({"A": True}).cluster_name(base)[:-DIGEST_LENGTH]
    shape = re.compile(rf"{re.escape(provider)}-({re.escape(stem)}[0-9a-f]{{{DIGEST_LENGTH}}})")
    gone = []
    for owner_file in sorted((cache_dir / "leases").glob(f"{provider}-{stem}*.owner")):
        found = shape.fullmatch(owner_file.stem)
        if found is None:
            continue
        lease = Lease(cache_dir, provider, found.group(1))
        creator = lease.creator()
        if creator is None or creator == me or not owner_gone(creator):
            continue
        cluster = _handle(cache_dir, provider, found.group(1))
        if lease.finish(me, partial(take_down, get_provider(provider), cluster, progress),
                        progress):
            gone.append(cluster.name)
    return gone


def _handle(cache_dir: Path, provider: str, name: str) -> Cluster:
    """A handle on a cluster of ours by name, enough for its provider's ``down``."""
    if provider == "kind":
        from pytest_probes.providers.kind import kubeconfig_path

        kubeconfig = kubeconfig_path(cache_dir, name)
    else:
        from pytest_probes.providers.local.config import ClusterPaths, clusters_dir

        kubeconfig = ClusterPaths(clusters_dir(cache_dir) / name).kubeconfig
    return Cluster(name=name, provider=provider, kubeconfig=kubeconfig, k8s_version="",
                   created=True)
