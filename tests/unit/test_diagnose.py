"""Fail-fast diagnoses on recorded timelines: a wait that cannot succeed ends with the reason.

``liveness-restart.jsonl`` (tests/data/streams) has two Ready replicas of ``web`` behind the
Service ``web``; asking about another Service is the "missing Service" case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_probes import (
    DiagnosedFailure,
    Timeline,
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    diagnose,
)
from pytest_probes.importers import replay_raw
from pytest_probes.timing import Window, endpoints_follow

STREAM = Path(__file__).resolve().parents[1] / "data" / "streams" / "liveness-restart.jsonl"


@pytest.fixture(scope="module")
def tl() -> Timeline:
    return replay_raw(STREAM)


def test_an_endpoint_helper_on_a_service_that_does_not_exist_names_it_and_the_fix(
    tl: Timeline,
) -> None:
    with pytest.raises(DiagnosedFailure) as info:
        assert_endpoint_added_within(tl, "web", service="wbe", within=60)
    message = str(info.value)
    assert f"{tl.namespace}/web-" in message  # the pod
    assert "Service 'wbe' has no endpoints at all" in message
    assert "Services with endpoints here: web" in message
    assert "deploy the Service, fix its selector, or pass the right service= name" in message


@pytest.mark.parametrize("helper", [
    lambda tl: assert_endpoint_kept_for(tl, "web", service="nope", duration=5),
    lambda tl: assert_endpoint_removed_after(tl, "web", service="nope", after="Killing",
                                             within=10),
])
def test_every_endpoint_helper_diagnoses_the_missing_service(tl: Timeline, helper) -> None:
    with pytest.raises(DiagnosedFailure, match="Service 'nope' has no endpoints at all"):
        helper(tl)


def test_the_right_service_or_no_service_is_no_diagnosis(tl: Timeline) -> None:
    assert diagnose(tl, "web", service="web") is None
    assert diagnose(tl, "web") is None
    assert_endpoint_added_within(tl, "web", service="web", within=60)


def test_no_diagnosis_before_the_endpoints_could_have_followed_ready() -> None:
    full = replay_raw(STREAM)
    ready = full.first(kind="PodReady")
    assert ready is not None
    grace = endpoints_follow(Window(0.0, 0.0)).latest
    early = Timeline(full.namespace, live=True)
    early.extend(r for r in full.records
                 if (r.time - ready.time).total_seconds() < grace and r.source != "endpoints")
    early.close()
    assert diagnose(early, "web", service="web") is None
