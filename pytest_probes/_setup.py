"""The run's set-up under pytest-xdist: the controller readies the cluster and image first.

Without this, every worker waits while one of them creates the cluster and imports the target
image (the build progress of a worker never reaches the terminal), and then all start their
scenarios at the same moment: some 40 pods starting at once on 2 cores, whose apps took up to
9 s to answer, so start-up probe failures counted towards kills. So when the run selects probe
tests (``-m probes``, or any marker expression that needs the ``probes`` marker) and the
provider creates clusters, the controller brings the cluster up and loads the target image in
``pytest_sessionstart``, before pytest-xdist starts the workers, with its progress on the
terminal. Each worker then finds the cluster ready (a lookup) and starts its tests as soon as it
has started itself. The controller holds a lease on the cluster (:mod:`pytest_probes.leases`)
and, when the run ends, takes down a cluster it created unless it is kept or another run still
uses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_probes.cluster import Cluster, get_provider, resolve_provider_name
from pytest_probes.leases import Lease
from pytest_probes.providers import REGISTRY

log = logging.getLogger(__name__)


def selects_probes(markexpr: str) -> bool:
    """Whether a ``-m`` expression selects probe tests and only those.

    ``probes`` and ``probes and not slow`` do; ``not probes``, ``slow`` and an empty expression
    (every test, which may hold no probe test at all) do not: there the workers set the cluster
    up on first use, as without xdist.
    """
    if not markexpr.strip():
        return False
    # pytest's own parser of -m expressions: private, but the one meaning -m has.
    from _pytest.mark.expression import Expression

    try:
        expression = Expression.compile(markexpr)
    except Exception:  # pytest reports a bad expression itself
        return False

    def with_markers(*names: str) -> Callable[..., bool]:
        return lambda name, **_kwargs: name in names

    return bool(expression.evaluate(with_markers("probes"))) and not expression.evaluate(
        with_markers())


@dataclass
class ControllerCluster:
    """The cluster the controller readied, and its lease."""

    cluster: Cluster
    lease: Lease


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
    return ControllerCluster(cluster, lease)


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
