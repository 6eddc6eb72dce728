"""The plugin's fixtures, thin wrappers around library code that works without pytest.

``probes_cluster``, ``probes_namespace``, ``probes_deploy``, ``probes_timeline``,
``probes_target_image`` and ``probes_faults`` are the public contract. They are function-scoped:
each test gets the cluster its ``probes_cluster`` marker asks for from the session's pool of
clusters (``_probes_pool``), which brings each cluster up once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from pytest_probes._pool import ClusterPool
from pytest_probes._run import progress_writer
from pytest_probes._setup import READY_KEY, adopted_cluster
from pytest_probes._stash import (
    CLUSTER_REQUEST_KEY,
    FAILED_KEY,
    KEPT_KEY,
    STATE_KEY,
    TIMELINE_KEY,
    report_entry,
)
from pytest_probes.assertions.context import HelperContext, use_context
from pytest_probes.cluster import Cluster, resolve_provider_name
from pytest_probes.cluster_objects import ClusterObjects
from pytest_probes.cluster_settings import ClusterRequest, too_old
from pytest_probes.deploy import Deployer
from pytest_probes.errors import ClusterError, UnsupportedSettings
from pytest_probes.namespaces import (
    create_namespace,
    delete_namespace,
    keep_namespace,
    namespace_name,
)
from pytest_probes.outside import OutsideFaults
from pytest_probes.recorder import Recorder
from pytest_probes.timeline import Timeline

log = logging.getLogger(__name__)

def _progress(config: pytest.Config) -> Callable[[str], None]:
    return progress_writer(config)


@pytest.fixture(scope="session")
def _probes_pool(request: pytest.FixtureRequest) -> Generator[ClusterPool, None, None]:
    """The session's clusters, one per configuration (:class:`pytest_probes._pool.ClusterPool`).

    A cluster this session created is deleted at the end unless ``--probes-keep-cluster`` — or
    while another run still uses it: then the last run using it deletes it
    (:mod:`pytest_probes.leases`). Under pytest-xdist the controller decides at the end of the
    run (:func:`pytest_probes._pool.finish_workers_clusters`).
    """
    config = request.config
    state = config.stash[STATE_KEY]
    try:
        provider = resolve_provider_name(state.provider)
    except ClusterError as err:
        pytest.fail(f"ClusterError: {err}", pytrace=False)
    pool = ClusterPool(provider, state.cluster, run_id=state.run_id, owner=state.run_owner,
                       worker=hasattr(config, "workerinput"), progress=_progress(config))
    ready = getattr(config, "workerinput", {}).get(READY_KEY)
    if ready is not None:  # the xdist controller readied it (pytest_probes._setup)
        pool.adopt(*adopted_cluster(ready))
    try:
        yield pool
    finally:
        pool.close()


DEFAULT_REQUEST = ClusterRequest()
"""What an unmarked test asks for: the run's shared cluster."""


@pytest.fixture
def probes_cluster(request: pytest.FixtureRequest, _probes_pool: ClusterPool) -> Cluster:
    """The test's cluster: the run's shared one, or the one its ``probes_cluster`` marker asks for.

    Each cluster is created or reused by the selected provider on first use and kept for the
    session (:mod:`pytest_probes._pool`), so this costs a lookup after the first test. A test
    whose marker needs a newer Kubernetes (``min_version``) or feature gates the version does
    not have is skipped with the reason.
    """
    wanted = request.node.stash.get(CLUSTER_REQUEST_KEY, DEFAULT_REQUEST)
    state = request.config.stash[STATE_KEY]
    try:
        reason = _probes_pool.not_applicable(wanted)
        if reason is None:
            cluster = _probes_pool.cluster(wanted.settings)
            reason = too_old(wanted.min_version, cluster.k8s_version)
    except UnsupportedSettings as err:
        pytest.skip(f"not applicable: {err}")
    except ClusterError as err:
        # The message says what to do; a traceback through the provider would only hide it.
        pytest.fail(f"ClusterError: {err}", pytrace=False)
    if reason is not None:
        pytest.skip(f"not applicable: {reason}")
    if wanted.settings.is_default or not state.cluster_info:
        state.cluster_info.update(
            provider=cluster.provider, name=cluster.name, k8s_version=cluster.k8s_version,
            runtime=cluster.runtime, created=cluster.created)
    if not wanted.settings.is_default:
        report_entry(request.node)["cluster"] = cluster.name
    return cluster


@pytest.fixture
def probes_target_image(request: pytest.FixtureRequest, probes_cluster: Cluster,
                        _probes_pool: ClusterPool) -> str:
    """The reference of the target app image, loaded into the test's cluster (once per cluster)."""
    ref = _probes_pool.image(probes_cluster)
    request.config.stash[STATE_KEY].cluster_info.setdefault("target_image", ref)
    return ref


@pytest.fixture
def _probes_api(probes_cluster: Cluster, _probes_pool: ClusterPool) -> Any:
    """The API client of the test's cluster (one per cluster for the session)."""
    return _probes_pool.api(probes_cluster)


@pytest.fixture
def _probes_cluster_objects(probes_cluster: Cluster, _probes_pool: ClusterPool) -> ClusterObjects:
    """The run's cluster-scoped objects on the test's cluster, removed at the end of the run.

    Under pytest-xdist the controller removes them, since other workers may still use them.
    """
    return _probes_pool.objects(probes_cluster)


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
