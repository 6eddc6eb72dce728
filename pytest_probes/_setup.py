"""The run's set-up under pytest-xdist: the controller readies the cluster and image first.

Without this, every worker waits while one of them creates the cluster and imports the target
image (the build progress of a worker never reaches the terminal), and then all start their
scenarios at the same moment: some 40 pods starting at once on 2 cores, whose apps took up to
9 s to answer, so start-up probe failures counted towards kills. So when the run selects probe
tests (``-m probes``, or any marker expression that needs the ``probes`` marker) and the
provider creates clusters, the controller brings the cluster up and loads the target image in
``pytest_sessionstart``, before pytest-xdist starts the workers, with its progress on the
terminal. Each worker is handed the readied cluster with its start (:data:`READY_KEY` in its
``workerinput``) and adopts it (:meth:`pytest_probes._pool.ClusterPool.adopt`): no ``up`` of its
own, which on a running cluster costs 0.7 s of CPU and is serialized by the bring-up lock, so that
with 16 workers the last one began its first test 13-25 s after the first. The controller holds
a lease on the cluster (:mod:`pytest_probes.leases`) and, when the run ends, takes down a cluster
it created unless it is kept or another run still uses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_probes.cluster import Cluster, get_provider, resolve_provider_name
from pytest_probes.leases import Lease
from pytest_probes.providers import REGISTRY

log = logging.getLogger(__name__)

READY_KEY = "pytest_probes_ready_cluster"
"""``workerinput`` key of the cluster the controller readied (:func:`ready_info`)."""


def matches_markers(markexpr: str) -> Callable[[Iterable[str]], bool] | None:
    """Whether a test with these markers is selected by ``-m markexpr``, as pytest decides.

    Returns ``None`` for an empty expression (every test) or a bad one (pytest reports it).
    """
    if not markexpr.strip():
        return None
    # pytest's own parser of -m expressions: private, but the one meaning -m has.
    from _pytest.mark.expression import Expression

    try:
        expression = Expression.compile(markexpr)
    except Exception:  # pytest reports a bad expression itself
        return None

    def matches(markers: Iterable[str]) -> bool:
        names = set(markers)

        def has(name: str, /, **_kwargs: str | int | bool | None) -> bool:
            return name in names

        return bool(expression.evaluate(has))

    return matches


def selects_probes(markexpr: str) -> bool:
    """Whether a ``-m`` expression selects probe tests and only those.

    ``probes`` and ``probes and not slow`` do; ``not probes``, ``slow`` and an empty expression
    (every test, which may hold no probe test at all) do not: there the workers set the cluster
    up on first use, as without xdist.
    """
    matches = matches_markers(markexpr)
    return matches is not None and matches(["probes"]) and not matches([])


@dataclass
class ControllerCluster:
    """The cluster the controller readied, and its lease."""

    cluster: Cluster
    lease: Lease
    image: str = ""


def set_up(config: pytest.Config, state: Any,
           progress: Callable[[str], None]) -> ControllerCluster | None:
    """Ready the cluster and the target image in the xdist controller, if the run needs them.

    Returns:
        What was readied, or ``None`` when this process is not an xdist controller, the run
        selects no probe tests, or the provider creates no clusters.

    Raises:
        ClusterError: The cluster or the image could not be readied (the lease is released).
    """
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("dsession"):
        return None
    if not selects_probes(config.getoption("markexpr", "") or ""):
        return None
    name = resolve_provider_name(state.provider)
    if not REGISTRY[name].creates_clusters:
        return None
    provider = get_provider(name)
    began = time.monotonic()
    lease = Lease(state.cluster.cache_dir, name, state.cluster.name)
    lease.acquire(progress)
    try:
        progress(f"readying cluster {state.cluster.name} ({name}) before the workers start")
        cluster = provider.up(state.cluster, progress)
        if cluster.created:
            lease.mark_created(None if state.cluster.keep else state.run_owner)
        image = provider.ensure_target_image(cluster, progress)
    except BaseException:
        lease.release()
        raise
    progress(f"cluster {cluster.name} and {image} ready in {time.monotonic() - began:.1f} s; "
             "the workers start now")
    return ControllerCluster(cluster, lease, image)


def ready_info(readied: ControllerCluster) -> dict[str, Any]:
    """What a worker needs to adopt the readied cluster (JSON: it crosses to the worker)."""
    return {**readied.cluster.to_json(), "image": readied.image}


def adopted_cluster(info: dict[str, Any]) -> tuple[Cluster, str]:
    """The cluster and target image of :func:`ready_info`, on the worker's side.

    ``created`` is false: the controller, not the worker, decides about taking it down. It has
    no image loader yet: :meth:`pytest_probes._pool.ClusterPool.adopt` gives it one that asks
    the provider on first use.
    """
    image = str(info.get("image", ""))
    return Cluster.from_json({**info, "target_image": image}), image


def finish(readied: ControllerCluster | None, me: str, progress: Callable[[str], None]) -> None:
    """End the controller's use of the cluster: take it down if this run is the one to."""
    if readied is None:
        return
    provider = get_provider(readied.cluster.provider)
    readied.lease.finish(me, lambda: take_down(provider, readied.cluster, progress), progress)


def take_down(provider: Any, cluster: Cluster, progress: Callable[[str], None]) -> None:
    """Delete a cluster this run created, saying how to keep it next time."""
    progress(f"deleting cluster {cluster.name} (pass --probes-keep-cluster to keep it)")
    provider.down(cluster, progress)
