"""How a helper waits on a live timeline (``assertions/waiting.py``): grace past the deadline."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from pytest_probes.timeline import Record, Timeline


def test_a_failed_wait_says_when_the_kubelets_events_were_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_probes import ProbeAssertionError, assert_event_within
    from pytest_probes.assertions import waiting as assertions

    monkeypatch.setattr(assertions, "LATE_RECORD_GRACE", 0.1)
    monkeypatch.setattr(assertions, "EVENT_WRITER_RETRY_SPAN", 0.4)
    now = datetime.now(UTC)
    tl = Timeline("ns", live=True, started=now)
    tl.append(Record(time=now, source="pod", kind="ContainerStarted", namespace="ns",
                     pod="web-0", container="app"))
    begin = time.monotonic()
    with pytest.raises(ProbeAssertionError) as info:
        assert_event_within(tl, "web-0", "Killing", since=now, within=(0, 0.1))
    assert 0.5 < time.monotonic() - begin < 2.0  # deadline, grace, then the catch-up
    assert "the kubelet's Events were still behind its pod status" in str(info.value)
    assert "web-0/app started at" in str(info.value)
