"""When a reused kind cluster serves again: recorded from a cluster whose Docker engine restarted.

The figures are from ``probes-kind`` on this project's CI machine, 2026-12-07: dockerd started its
node container again at 06:17:50.919 (``docker inspect``), the node's Ready condition carried the
heartbeat 06:18:08 and its Lease was renewed at 06:18:29.128. Before the restart the Lease had last
been renewed the evening before.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_probes.providers.kind_ready import ApiView, NodeContainer, missing, parse_inspect_line

NODE = "probes-kind-control-plane"
STARTED = datetime(2026, 12, 7, 6, 17, 50, 919413, tzinfo=UTC)
RENEWED = datetime(2026, 12, 7, 6, 18, 29, 128479, tzinfo=UTC)
BEFORE = datetime(2026, 12, 6, 21, 4, 12, 5001, tzinfo=UTC)


def test_docker_inspect_line_with_nanoseconds() -> None:
    line = f"/{NODE} true 2026-12-07T06:17:50.919413842Z"
    assert parse_inspect_line(line) == NodeContainer(NODE, True, STARTED)


def test_a_container_never_started_has_no_start() -> None:
    assert parse_inspect_line(f"/{NODE} false 0001-01-01T00:00:00Z").started is None


def test_serving_once_the_lease_is_renewed_after_the_start() -> None:
    api = ApiView(version="v1.37.2", ready={NODE: True}, renewed={NODE: RENEWED})
    assert missing([NodeContainer(NODE, True, STARTED)], api) == ""


def test_a_ready_node_with_the_lease_from_before_the_restart_does_not_serve() -> None:
    api = ApiView(version="v1.37.2", ready={NODE: True}, renewed={NODE: BEFORE})
    assert "has not renewed its Lease" in missing([NodeContainer(NODE, True, STARTED)], api)


def test_each_gap_is_named() -> None:
    running = [NodeContainer(NODE, True, STARTED)]
    assert missing([], None) == "it has no node containers"
    assert "not running" in missing([NodeContainer(NODE, False, STARTED)], None)
    assert "does not answer /version" in missing(running, None)
    assert "is not Ready" in missing(running, ApiView("v1.37.2", {NODE: False}, {NODE: RENEWED}))
    assert "is not Ready" in missing(running, ApiView("v1.37.2", {}, {NODE: RENEWED}))
    assert "has not renewed" in missing(running, ApiView("v1.37.2", {NODE: True}, {}))
