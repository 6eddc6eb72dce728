"""The endpoint helpers (``assertions/endpoints.py``) on a recorded stream.

``liveness-restart.jsonl``: the Service ``web`` lists both pods of the Deployment ``web`` from
16:59:45; ``web-77f9f5cf79-65npl`` (10.88.0.13) is killed at 16:59:49, restarts at 16:59:50, and
at 16:59:51 its address leaves the ready endpoints and comes back.
"""

from __future__ import annotations

import pytest

from pytest_probes.assertions.endpoints import (
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    ready_addresses,
)
from pytest_probes.errors import ProbeAssertionError
from pytest_probes.importers import replay_raw
from tests.helpers import BYSTANDER, LIVENESS_RESTART, VICTIM, first_record

RESTART = replay_raw(LIVENESS_RESTART)


def test_ready_addresses_as_of_a_moment_or_the_end() -> None:
    assert ready_addresses(RESTART, "web") == ["10.88.0.12", "10.88.0.13"]
    assert ready_addresses(RESTART, "web", at=RESTART.records[0]) == []
    assert ready_addresses(RESTART, "other") == []


def test_removed_after_measures_from_the_named_moment() -> None:
    killing = first_record(RESTART, VICTIM, "Killing")  # 16:59:49
    removed = assert_endpoint_removed_after(RESTART, VICTIM, after="Killing", within=(0, 3))
    assert removed.data["address"] == "10.88.0.13" and removed.time.second == 51
    assert removed.data["ready_addresses"] == ["10.88.0.12"]
    with pytest.raises(ProbeAssertionError, match=r"after Started \(16:59:50\); observed removed"):
        assert_endpoint_removed_after(RESTART, VICTIM, after="Started", since=killing,
                                      within=(3, 5))


def test_added_within_finds_the_address_coming_back() -> None:
    removed = first_record(RESTART, VICTIM, "EndpointRemoved")
    added = assert_endpoint_added_within(RESTART, VICTIM, since=removed, within=1)
    assert added.kind == "EndpointAdded" and added.data["address"] == "10.88.0.13"
    with pytest.raises(ProbeAssertionError, match=r"observed added at \+0 s"):
        assert_endpoint_added_within(RESTART, VICTIM, since=removed, within=(3, 5))


def test_kept_for_passes_for_the_pod_never_removed_only() -> None:
    assert_endpoint_kept_for(RESTART, BYSTANDER, duration=9, service="web")
    with pytest.raises(ProbeAssertionError, match=f"10.88.0.13 removed at 16:59:51 \\({VICTIM}"):
        assert_endpoint_kept_for(RESTART, "web", duration=9)


def test_removed_after_fails_without_its_moment_on_an_early_removal_and_without_one() -> None:
    removed = first_record(RESTART, VICTIM, "EndpointRemoved")  # 16:59:51
    with pytest.raises(ProbeAssertionError,
                       match=r"expected a 'Evicted' for the pod \(to measure from\); observed "
                       r"none after"):
        assert_endpoint_removed_after(RESTART, VICTIM, after="Evicted", within=5)
    later = removed.time.replace(second=52)
    with pytest.raises(ProbeAssertionError,
                       match=r"expected address kept until 16:59:52 at 16:59:52; observed removed "
                       r"before it, at 16:59:51"):
        assert_endpoint_removed_after(RESTART, VICTIM, after=later, within=5)
    killing = first_record(RESTART, VICTIM, "Killing")
    with pytest.raises(ProbeAssertionError, match=r"after 16:59:49 \(16:59:49\); observed not "
                       r"removed"):
        assert_endpoint_removed_after(RESTART, BYSTANDER, after=killing.time, within=5)
