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


def test_missing_service_names_the_services_that_do_have_endpoints(tl: Timeline) -> None:
    from pytest_probes.assertions.diagnosis import missing_service

    assert missing_service(tl, "web", "web") is None
    found = missing_service(tl, "web", "nope")
    assert isinstance(found, DiagnosedFailure) and found.pod == "web-77f9f5cf79-65npl"
    assert "Ready since 16:59:45, but Service 'nope' has no endpoints at all" in found.observed
    assert "(Services with endpoints here: web)" in found.observed


@pytest.mark.parametrize(("source", "kind", "reason", "hopeless"), [
    ("pod", "ContainerWaiting", "ImagePullBackOff", True),
    ("pod", "ContainerWaiting", "CreateContainerConfigError", True),
    ("pod", "ContainerWaiting", "ContainerCreating", False),
    ("pod", "ContainerWaiting", "CrashLoopBackOff", False),
    ("event", "FailedScheduling", "", True),
    ("event", "BackOff", "", False),
])
def test_is_hopeless_only_for_reasons_no_retry_gets_past(source: str, kind: str, reason: str,
                                                         hopeless: bool) -> None:
    from datetime import UTC, datetime

    from pytest_probes.assertions.diagnosis import is_hopeless
    from pytest_probes.timeline import Record

    rec = Record(time=datetime(2026, 12, 5, tzinfo=UTC), source=source, kind=kind,
                 namespace="ns", pod="web-0", data={"reason": reason} if reason else {})
    assert is_hopeless(rec) is hopeless


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


def _live_with_pod(now: list[float]) -> Timeline:
    from datetime import UTC, datetime

    from pytest_probes.timeline import Record

    tl = Timeline("ns", live=True, wall=lambda: now[0])
    created = datetime.fromtimestamp(1_800_000_000, UTC)
    tl.append(Record(time=created, source="pod", kind="PodAdded", namespace="ns",
                     pod="web-0", received_wall=created.timestamp() + 0.5))
    return tl


def test_a_pod_name_that_matches_nothing_is_diagnosed_once_no_pod_is_coming() -> None:
    from pytest_probes.timing import POD_CREATION_ALLOWANCE

    now = [1_800_000_000 + 2.0]
    tl = _live_with_pod(now)
    assert diagnose(tl, "wbe") is None  # a controller may still be creating it
    now[0] += POD_CREATION_ALLOWANCE
    found = diagnose(tl, "wbe")
    assert found is not None
    assert "no pod matching 'wbe' appeared in namespace ns; the pods there are web-0" in str(found)
    assert "check the pod name" in str(found)
    assert diagnose(tl, "web") is None


def test_a_live_helper_on_a_pod_that_never_appears_returns_within_seconds() -> None:
    import time

    from pytest_probes import assert_ready_within

    now = [1_800_000_000 + 100.0]  # the only pod is old
    tl = _live_with_pod(now)
    started = time.monotonic()
    with pytest.raises(DiagnosedFailure, match="no pod matching 'wbe'"):
        assert_ready_within(tl, "wbe", within=120)
    assert time.monotonic() - started < 2
