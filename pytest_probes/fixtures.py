"""The plugin's fixtures, thin wrappers around library code that works without pytest.

``probes_cluster``, ``probes_namespace``, ``probes_deploy``, ``probes_timeline``,
``probes_target_image`` and ``probes_faults`` are the public contract.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_probes._run import progress_writer
from pytest_probes._setup import take_down
from pytest_probes._stash import FAILED_KEY, KEPT_KEY, STATE_KEY, TIMELINE_KEY, report_entry
from pytest_probes.assertions.context import HelperContext, use_context
from pytest_probes.cluster import Cluster, get_provider, resolve_provider_name
from pytest_probes.cluster_objects import ClusterObjects, delete_journaled
from pytest_probes.deploy import Deployer
from pytest_probes.errors import ClusterError
from pytest_probes.leases import Lease
from pytest_probes.namespaces import (
    create_namespace,
    delete_namespace,
    delete_orphaned_namespaces,
    keep_namespace,
    namespace_name,
)
from pytest_probes.outside import OutsideFaults
from pytest_probes.providers import REGISTRY
from pytest_probes.recorder import Recorder
from pytest_probes.timeline import Timeline

log = logging.getLogger(__name__)

def _progress(config: pytest.Config) -> Callable[[str], None]:
    return progress_writer(config)


@pytest.fixture(scope="session")
def probes_cluster(request: pytest.FixtureRequest) -> Generator[Cluster, None, None]:
    """The cluster for this session: created or reused by the selected provider.

    A cluster this session created is deleted at the end unless ``--probes-keep-cluster`` — or
    while another run still uses it: then the last run using it deletes it
    (:mod:`pytest_probes.leases`).
    """
    config = request.config
    state = config.stash[STATE_KEY]
    progress = _progress(config)
    start = time.monotonic()
    lease: Lease | None = None
    try:
        name = resolve_provider_name(state.provider)
        provider = get_provider(name)
        if name in LEASED_PROVIDERS:
            lease = Lease(state.cluster.cache_dir, name, state.cluster.name)
            lease.acquire(progress)
        cluster = provider.up(state.cluster, progress)
    except BaseException as err:
        if lease is not None:
            lease.release()
        if isinstance(err, ClusterError):
            # The message says what to do; a traceback through the provider would only hide it.
            pytest.fail(f"ClusterError: {err}", pytrace=False)
        raise
    if cluster.created and lease is not None:
        lease.mark_created(None if state.cluster.keep else state.run_owner)
    state.cluster_info.update(
        provider=cluster.provider,
        name=cluster.name,
        k8s_version=cluster.k8s_version,
        runtime=cluster.runtime,
        created=cluster.created,
    )
    progress(
        f"cluster {cluster.name} ready ({cluster.provider}, {cluster.k8s_version}, "
        f"{cluster.runtime or 'runtime unknown'}, {'created' if cluster.created else 'reused'}) "
        f"in {time.monotonic() - start:.1f} s"
    )
    worker = hasattr(config, "workerinput")
    if worker and lease is not None:
        # Under pytest-xdist the other workers share this cluster until the whole run ends:
        # the controller decides about it then (plugin.pytest_sessionfinish), not this worker.
        record_workers_cluster(state.cluster.cache_dir, state.run_id, cluster)
    try:
        yield cluster
    finally:
        if lease is None:
            pass
        elif worker:
            lease.release()
        else:
            lease.finish(state.run_owner, lambda: take_down(provider, cluster, progress), progress)


LEASED_PROVIDERS = tuple(name for name, entry in REGISTRY.items() if entry.creates_clusters)
"""The providers that create clusters, and so hold leases on them."""


def _run_marker(cache_dir: Path, run_id: str) -> Path:
    return cache_dir / "runs" / f"{run_id}.json"


def record_workers_cluster(cache_dir: Path, run_id: str, cluster: Cluster) -> None:
    """Note, for the controller of an xdist run, the cluster its workers use."""
    marker = _run_marker(cache_dir, run_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(f".{secrets.token_hex(3)}")
    tmp.write_text(json.dumps({
        "name": cluster.name, "provider": cluster.provider,
        "kubeconfig": str(cluster.kubeconfig), "k8s_version": cluster.k8s_version,
    }))
    tmp.replace(marker)


def finish_workers_cluster(
    cache_dir: Path, run_id: str, *, me: str, progress: Callable[[str], None]
) -> None:
    """End an xdist run's use of its workers' cluster: delete it if this run is the one to.

    That is the case when a worker created it (without ``--probes-keep-cluster``), or its creator
    has ended, and no other run holds a lease on it (:meth:`Lease.finish`).
    """
    marker = _run_marker(cache_dir, run_id)
    if not marker.is_file():
        return
    info = json.loads(marker.read_text())
    marker.unlink()
    cluster = Cluster(name=info["name"], provider=info["provider"],
                      kubeconfig=Path(info["kubeconfig"]), k8s_version=info["k8s_version"],
                      created=True)
    lease = Lease(cache_dir, cluster.provider, cluster.name)
    lease.finish(me, lambda: take_down(get_provider(cluster.provider), cluster, progress), progress)


@pytest.fixture(scope="session")
def probes_target_image(request: pytest.FixtureRequest, probes_cluster: Cluster) -> str:
    """The reference of the target app image, loaded into the cluster."""
    state = request.config.stash[STATE_KEY]
    provider = get_provider(probes_cluster.provider)
    ref = provider.ensure_target_image(probes_cluster, _progress(request.config))
    state.cluster_info["target_image"] = ref
    return ref


@pytest.fixture(scope="session")
def _probes_api(probes_cluster: Cluster) -> Generator[Any, None, None]:
    api = probes_cluster.api_client()
    delete_orphaned_namespaces(api)  # left by an earlier run that was killed outright
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def cluster_objects_journal(cache_dir: Path, run_id: str) -> Path:
    """Where a run's workers write the cluster-scoped objects they created."""
    return cache_dir / "runs" / f"{run_id}.objects.jsonl"


@pytest.fixture(scope="session")
def _probes_cluster_objects(
    request: pytest.FixtureRequest, probes_cluster: Cluster, _probes_api: Any
) -> Generator[ClusterObjects, None, None]:
    """The run's cluster-scoped objects, removed at the end of the run.

    Under pytest-xdist the controller removes them, since other workers may still use them.
    """
    state = request.config.stash[STATE_KEY]
    journal = cluster_objects_journal(state.cluster.cache_dir, state.run_id)
    objects = ClusterObjects(state.run_id, journal=journal, kubeconfig=str(
        probes_cluster.kubeconfig), context=probes_cluster.context)
    yield objects
    if not hasattr(request.config, "workerinput") and objects.created:
        removed = delete_journaled(journal)
        _progress(request.config)(f"removed {len(removed)} cluster-scoped objects this run "
                                  f"created: {', '.join(removed)}")


@pytest.fixture
def probes_namespace(
    request: pytest.FixtureRequest, _probes_api: Any
) -> Generator[str, None, None]:
    """A fresh namespace for the test, labelled as ours, deleted at teardown even on failure."""
    state = request.config.stash[STATE_KEY]
    name = namespace_name(request.node.name)
    began = time.monotonic()
    create_namespace(_probes_api, name, run_id=state.run_id)
    report_entry(request.node)["namespace_s"] = round(time.monotonic() - began, 3)
    try:
        yield name
    finally:
        failed = request.node.stash.get(FAILED_KEY, False)
        if state.keep_namespace == "always" or (state.keep_namespace == "failed" and failed):
            keep_namespace(_probes_api, name, reason=f"{request.node.nodeid} "
                           f"{'failed' if failed else 'ran'} with --probes-keep-namespace="
                           f"{state.keep_namespace}")
            kubeconfig = request.getfixturevalue("probes_cluster").kubeconfig
            request.node.stash[KEPT_KEY] = (name, str(kubeconfig))
        else:
            delete_namespace(_probes_api, name)


@pytest.fixture
def probes_timeline(
    request: pytest.FixtureRequest, _probes_api: Any, probes_namespace: str
) -> Generator[Timeline, None, None]:
    """A live timeline of the test's namespace, recording from before the test body to teardown."""
    state = request.config.stash[STATE_KEY]
    timeline = Timeline(probes_namespace, live=True)
    use_context(timeline, HelperContext(tolerance=state.timeout_scale))
    recorder = Recorder(_probes_api, probes_namespace, timeline)
    began = time.monotonic()
    recorder.start()
    report_entry(request.node)["recorder_s"] = round(time.monotonic() - began, 3)
    request.node.stash[TIMELINE_KEY] = timeline
    try:
        yield timeline
    finally:
        recorder.stop()


@pytest.fixture
def probes_deploy(
    request: pytest.FixtureRequest,
    _probes_api: Any,
    probes_namespace: str,
    probes_target_image: str,
    probes_timeline: Timeline,
    _probes_cluster_objects: ClusterObjects,
) -> Generator[Deployer, None, None]:
    """A :class:`~pytest_probes.deploy.Deployer` for the test's namespace; call it to apply.

    ``probes_deploy(source, wait="running", timeout=120, substitutions=None)`` accepts a path
    (relative paths also resolve against the project's ``manifests/``), YAML text, a dict or a list
    of dicts; substitutes the target image for ``image: probes-target``; waits for pods as asked;
    returns the objects it applied. ``probes_deploy.pods(objects)`` lists their current pods.

    Cluster-scoped objects in a manifest (CRDs, ClusterRoles, ...) are applied once per run,
    labelled as ours, and removed at the end of the run only if this run created them; a CRD is
    waited for until it is Established.

    Requesting it also starts the test's timeline, so everything deployed is recorded.
    """
    deployer = Deployer(
        _probes_api,
        probes_namespace,
        target_image=probes_target_image,
        base_dirs=[request.path.parent],
        cluster_objects=_probes_cluster_objects,
    )
    try:
        yield deployer
    finally:
        deployer.close()


@pytest.fixture
def probes_faults(
    probes_cluster: Cluster, _probes_api: Any, probes_namespace: str
) -> Generator[OutsideFaults, None, None]:
    """Faults for any app, from outside it: ``freeze``, ``kill``, ``block_port``, ``delay``.

    See :mod:`pytest_probes.outside`. Every fault still in force is undone at teardown.
    """
    docker = "docker"
    if probes_cluster.provider == "kind":
        from pytest_probes.providers.kind import docker_binary

        docker = docker_binary()
    faults = OutsideFaults(_probes_api, probes_cluster.provider, probes_namespace, docker=docker)
    try:
        yield faults
    finally:
        for what in faults.undo_all():
            log.info("teardown: %s", what)
