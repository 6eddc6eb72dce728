"""The plugin under pytest-xdist: the run's id handed to the workers, and the tests' order.

The controller hands each worker its run id and owner, so the whole run labels its namespaces
and leases alike. Each worker orders the selected tests by the durations earlier runs left in
pytest's cache (:mod:`pytest_probes._schedule` says why and how), and the controller keeps the
passed tests' durations for the next run. Tests the cache does not know take their durations from
the project's durations file, if it has one.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Generator
from typing import Any

import pytest

from pytest_probes._schedule import (
    chunk_size,
    durations_from_report,
    merge_durations,
    worker_order,
)
from pytest_probes._setup import READY_KEY, ready_info
from pytest_probes._startgate import SetupTurn, gate_dir, lanes, leader_ranks
from pytest_probes._stash import ProbesState, report_entry

RUN_ID_KEY = "pytest_probes_run_id"
RUN_OWNER_KEY = "pytest_probes_run_owner"

DURATIONS_CACHE_KEY = "pytest-probes/durations"
"""pytest's cache key of the live tests' durations (seconds by node id) from earlier runs."""

SCHEDULING_KEY = "pytest_probes_scheduling"


class XdistHooks:
    """Hands the run id to each xdist worker; orders the tests so the longest start first."""

    def __init__(self, state: ProbesState, config: pytest.Config) -> None:
        self.state = state
        self.config = config
        self.turns: dict[str, SetupTurn] = {}
        """The workers' first tests, by node id: their set-up waits its turn
        (:mod:`pytest_probes._startgate`)."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_KEY] = self.state.run_id
        node.workerinput[RUN_OWNER_KEY] = self.state.run_owner
        # A worker's own options say dist "no"; the controller's scheduling is what counts.
        node.workerinput[SCHEDULING_KEY] = {
            "dist": self.config.getoption("dist", None),
            "maxschedchunk": self.config.getoption("maxschedchunk", None),
        }
        if self.state.controller is not None:  # pytest_sessionstart ran before xdist's
            node.workerinput[READY_KEY] = ready_info(self.state.controller)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """On a worker, order the selected probe tests by the durations of earlier runs.

        Every worker collects, and the controller requires the same order from all: each reads
        the same cached durations (written only when a run ends). See
        :mod:`pytest_probes._schedule`.
        """
        workerinput = getattr(config, "workerinput", None)
        cache = getattr(config, "cache", None)
        scheduling = (workerinput or {}).get(SCHEDULING_KEY, {})
        if workerinput is None or scheduling.get("dist") != "load":
            return
        cached = cache.get(DURATIONS_CACHE_KEY, {}) if cache is not None else {}
        durations: dict[str, Any] = {**self.state.durations_seed,
                                     **(cached if isinstance(cached, dict) else {})}
        if self.state.order == "none" or not durations:
            return
        # Only the probe tests move, among the places they hold; the others keep theirs.
        places = [i for i, item in enumerate(items) if item.get_closest_marker("probes")]
        probes = [items[i] for i in places]
        workers = int(workerinput.get("workercount", 0))
        chunk = chunk_size(len(items), workers, scheduling.get("maxschedchunk"))
        known = [durations.get(item.nodeid) for item in probes]
        order = worker_order([d if isinstance(d, int | float) else None for d in known],
                             workers, chunk)
        for place, index in zip(places, order, strict=True):
            items[place] = probes[index]
        directory = gate_dir(self.state.cluster.cache_dir, self.state.run_id)
        at_once = lanes()
        for place, rank in leader_ranks(workers, chunk, len(items)).items():
            if items[place].get_closest_marker("probes"):
                self.turns[items[place].nodeid] = SetupTurn(directory, rank, at_once)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        """A worker's first test sets up in its turn, the longest first (``_startgate``)."""
        turn = self.turns.pop(item.nodeid, None)
        if turn is None:
            return (yield)
        report_entry(item)["turn_wait_s"] = round(turn.wait(), 3)
        try:
            return (yield)
        finally:
            turn.end()

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """A worker, about to exit, takes its objects out of the garbage collector's sight.

        The interpreter collects garbage once more as it exits, through every object of the
        Kubernetes client and the run (some 130,000): 24 workers doing that at once on 2 cores
        held the end of a run up by 5-6 s (the controller waits for each worker to exit), 0.4-0.5
        s with the objects frozen (:func:`gc.freeze`), measured on a run of 9 short tests. Only a
        worker, a process of xdist's own that ends here, does it.
        """
        if hasattr(config, "workerinput"):
            gc.freeze()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The controller removes the run's set-up turns."""
        if not hasattr(session.config, "workerinput"):
            shutil.rmtree(gate_dir(self.state.cluster.cache_dir, self.state.run_id),
                          ignore_errors=True)


def save_durations(config: pytest.Config, state: ProbesState) -> None:
    """Keep the passed live tests' durations in pytest's cache, for the next run's order.

    Each is :func:`~pytest_probes._schedule.duration`: its wall time less its set-up turn's wait.
    """
    cache = getattr(config, "cache", None)
    finished = durations_from_report(state.report)
    if cache is None or not finished:
        return
    previous = cache.get(DURATIONS_CACHE_KEY, {})
    cache.set(DURATIONS_CACHE_KEY,
              merge_durations(previous if isinstance(previous, dict) else {}, finished))
