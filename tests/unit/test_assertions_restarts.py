"""The restart helpers (``assertions/restarts.py``) on recorded streams.

``liveness-restart.jsonl``: two pods of the Deployment ``web``; ``web-77f9f5cf79-65npl`` failed its
liveness probe three times, was killed at 16:59:49 and restarted at 16:59:50, the other never
restarted. Seed 000's export has Events only: its restarts are counted from ``Started`` Events.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pytest_probes.assertions.restarts import (
    assert_no_restarts_for,
    assert_restarts_within,
    restarts_of,
)
from pytest_probes.errors import ProbeAssertionError
from pytest_probes.importers import replay_raw
from tests.helpers import BYSTANDER as OTHER
from tests.helpers import LIVENESS_RESTART, VICTIM, first_record, seed000_timeline

RESTART = replay_raw(LIVENESS_RESTART)


def test_restarts_of_gives_every_matching_pod_one_record_a_restart() -> None:
    found = restarts_of(RESTART, "web")
    assert sorted(found) == [VICTIM, OTHER] and found[OTHER] == []
    (restart,) = found[VICTIM]
    assert restart.kind == "ContainerRestarted" and restart.time.second == 50
    assert restarts_of(RESTART, "web", since=restart.time + timedelta(seconds=1))[VICTIM] == []


def test_restarts_of_counts_started_events_where_there_is_no_pod_status() -> None:
    found = restarts_of(seed000_timeline(), "app-target")
    assert {name: len(recs) for name, recs in found.items()} == {
        "app-target-68b8b88575-86gg8": 2,
        "app-target-68b8b88575-psd9m": 0,
        "app-target-68b8b88575-qkdrh": 0,
    }
    assert {rec.kind for rec in found["app-target-68b8b88575-86gg8"]} == {"Started"}


def test_restarts_within_returns_the_restart_in_its_window_and_fails_outside_it() -> None:
    killing = first_record(RESTART, VICTIM, "Killing")  # 16:59:49
    (restart,) = assert_restarts_within(RESTART, "web", since=killing, within=(0, 2))
    assert restart.pod == VICTIM
    with pytest.raises(ProbeAssertionError, match=r"observed restart 1 at \+1 s"):
        assert_restarts_within(RESTART, "web", since=killing, within=(4, 6))
    with pytest.raises(ProbeAssertionError, match=f"observed restarts {OTHER}: 0"):
        assert_restarts_within(RESTART, OTHER, within=60)


def test_no_restarts_for_passes_for_the_pod_that_kept_running_only() -> None:
    assert_no_restarts_for(RESTART, OTHER, duration=9)
    with pytest.raises(ProbeAssertionError, match=r"a restart at \+8 s \(16:59:50\)"):
        assert_no_restarts_for(RESTART, "web", duration=9)
    with pytest.raises(ProbeAssertionError, match="no pod matching 'nothing'"):
        assert_no_restarts_for(RESTART, "nothing", duration=5)


def test_since_an_instance_start_does_not_count_the_restart_that_made_it() -> None:
    # The restart and the new instance's start carry the same whole second (16:59:50): measured
    # from that start, the restart that made the instance is not one more.
    started = RESTART.first(pod=VICTIM, kind="ContainerStarted",
                            where=lambda r: r.data.get("restartCount") == 1)
    assert started is not None and started.time.second == 50
    assert restarts_of(RESTART, VICTIM, since=started)[VICTIM] == []
    assert_no_restarts_for(RESTART, VICTIM, since=started, duration=5)
    with pytest.raises(ProbeAssertionError, match="observed restarts"):
        assert_restarts_within(RESTART, VICTIM, since=started, within=5)
    # The same moment as a time, not an instance, still counts it.
    assert len(restarts_of(RESTART, VICTIM, since=started.time)[VICTIM]) == 1
    # From the first instance's start (count 0) the restart counts.
    first = RESTART.first(pod=VICTIM, kind="ContainerStarted")
    assert first is not None and first.data.get("restartCount") == 0
    assert len(restarts_of(RESTART, VICTIM, since=first)[VICTIM]) == 1
