"""What the plugin keeps in pytest's stashes (session state and per-test items)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_probes.cluster import ClusterConfig
from pytest_probes.cluster_settings import ClusterRequest

STATE_KEY = pytest.StashKey["ProbesState"]()
TIMELINE_KEY = pytest.StashKey[Any]()
REPORT_KEY = pytest.StashKey[dict[str, Any]]()
FAILED_KEY = pytest.StashKey[bool]()
"""Set on an item whose set-up or call failed (read by ``probes_namespace``'s teardown)."""
KEPT_KEY = pytest.StashKey[tuple[str, str]]()
CLUSTER_REQUEST_KEY = pytest.StashKey[ClusterRequest]()
"""What an item's ``probes_cluster`` marker asks for (set at collection, where it is checked)."""
"""(namespace, kubeconfig) of an item whose namespace was kept for inspection."""


@dataclass
class ProbesState:
    """Session-wide settings and results of the plugin, kept in ``config.stash``."""

    provider: str
    cluster: ClusterConfig
    timeout_scale: float
    artifacts_dir: Path | None
    report_path: Path | None
    timeline_mode: str
    html_path: Path | None = None
    """Where ``--probes-html`` writes the run's HTML report, if asked for."""
    keep_namespace: str = "never"
    order: str = "durations"
    """How xdist workers order the probe tests: ``durations`` (longest first) or ``none``."""
    durations_seed: dict[str, float] = field(default_factory=dict)
    """Durations from ``probes_durations_file``, for the tests pytest's cache does not know."""
    run_id: str = ""
    run_owner: str = ""
    """The owner record (:func:`pytest_probes.namespaces.owner`) of the run's main process: the
    xdist controller's on its workers. Leases name it as the cluster's creator."""
    cluster_info: dict[str, Any] = field(default_factory=dict)
    report: list[dict[str, Any]] = field(default_factory=list)
    html_tests: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per node id, what the HTML report needs beyond the report entry: ``outcome``, ``chart``
    (the SVG) and ``failure`` (the failure text), gathered from the reports (the workers')."""
    kept_namespaces: list[tuple[str, str, str]] = field(default_factory=list)
    """(nodeid, namespace, kubeconfig) of the namespaces kept for inspection."""
    controller: Any = None
    """The cluster the xdist controller readied before the workers started
    (:class:`pytest_probes._setup.ControllerCluster`), if it did."""


def report_entry(item: pytest.Item) -> dict[str, Any]:
    """The test's entry of the ``--probes-report``, created on first use."""
    return item.stash.setdefault(REPORT_KEY, {"nodeid": item.nodeid})
