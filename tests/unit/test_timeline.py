"""Timeline: ordering, queries, rendering, JSON Lines round trip, live waiting."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_probes.errors import ProbesError
from pytest_probes.timeline import (
    Record,
    Timeline,
    TimelineFrozenError,
    parse_time,
    pod_matches,
)
from tests.helpers import seed000_timeline

SEED000 = Path(__file__).resolve().parents[1] / "data" / "seed000"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def rec(seconds: float, kind: str, *, pod: str = "web-0", source: str = "event",
        **data: object) -> Record:
    return Record(time=T0 + timedelta(seconds=seconds), source=source, kind=kind,
                  namespace="ns", pod=pod, data=data)


def test_parse_time_accepts_api_forms() -> None:
    assert parse_time("2022-06-11T01:52:27Z") == datetime(2022, 6, 11, 1, 52, 27, tzinfo=UTC)
    nano = parse_time("2022-06-11T01:52:27.123456789Z")
    assert nano is not None and nano.microsecond == 123456
    assert parse_time("2022-06-11T10:52:27+09:00") == datetime(2022, 6, 11, 1, 52, 27,
                                                               tzinfo=UTC)
    assert parse_time(None) is None and parse_time("") is None


def test_pod_prefix_matching_respects_the_dash() -> None:
    assert pod_matches("app-target-68b8b88575-86gg8", "app-target")
    assert pod_matches("app-target", "app-target")
    assert not pod_matches("app-targetx-1", "app-target")
    assert not pod_matches(None, "app-target")


def test_records_are_kept_in_server_time_order_whatever_the_arrival_order() -> None:
    tl = Timeline("ns", live=True)
    tl.extend([rec(5, "Killing"), rec(1, "Unhealthy")])
    tl.append(rec(3, "Unhealthy"))
    assert [r.time.second for r in tl] == [1, 3, 5]
    # Endpoint changes stamped in the same second sort after the pod change that caused them.
    tl.append(rec(5, "EndpointRemoved", source="endpoints"))
    tl.append(rec(5, "ContainerStarted", source="pod"))
    assert [r.kind for r in tl.records][-3:] == ["Killing", "ContainerStarted", "EndpointRemoved"]


def test_query_filters_combine() -> None:
    tl = Timeline("ns", [rec(0, "Unhealthy"), rec(5, "Unhealthy", pod="web-1"),
                         rec(10, "Killing"), rec(12, "PodReady", source="pod")])
    assert [r.kind for r in tl.query(pod="web-0")] == ["Unhealthy", "Killing", "PodReady"]
    assert len(tl.query(pod="web")) == 4
    assert [r.kind for r in tl.query(source="pod")] == ["PodReady"]
    assert [r.time.second for r in tl.query(kind="Unhealthy", since=T0 + timedelta(seconds=1))] \
        == [5]
    first = tl.first(kind="Killing")
    assert first is not None and tl.last(until=first) == first
    assert tl.first(kind="Nope") is None
    with pytest.raises(ValueError, match="choose one of event, pod, endpoints"):
        tl.query(source="events")


def test_json_lines_round_trip_is_exact_and_frozen(tmp_path: Path) -> None:
    tl = seed000_timeline(SEED000)
    path = tl.save(tmp_path / "t.jsonl")
    loaded = Timeline.load(path)
    assert loaded.records == tl.records
    assert loaded.namespace == "probes" and loaded.started == tl.started
    assert not loaded.live
    with pytest.raises(TimelineFrozenError, match="frozen"):
        loaded.append(rec(0, "X"))


def test_loading_a_bad_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"pytest_probes_timeline": 1, "namespace": "ns"}\n{"time": "nope"}\n')
    with pytest.raises(ProbesError, match=r"bad\.jsonl:2: not a timeline record"):
        Timeline.load(path)
    with pytest.raises(ProbesError, match="cannot read timeline"):
        Timeline.load(tmp_path / "missing.jsonl")


def test_markdown_shows_endpoints_after_each_change() -> None:
    table = seed000_timeline(SEED000).to_markdown()
    lines = table.splitlines()
    assert lines[0] == "| time | +s | source | pod | event | endpoints after |"
    removed = next(ln for ln in lines if "EndpointRemoved" in ln)
    assert removed.startswith("| 01:52:27 | +36 | endpoints |")
    assert removed.rstrip().endswith("| 10.1.1.222,10.1.1.223 |")
    started = next(ln for ln in lines if "Started" in ln)
    assert started.rstrip().endswith("| 10.1.1.222,10.1.1.223,10.1.1.224 |")


def test_markdown_limit_notes_dropped_rows() -> None:
    table = seed000_timeline(SEED000).to_markdown(limit=3)
    assert len([ln for ln in table.splitlines() if ln.startswith("| 01:")]) == 3
    assert "earlier rows not shown" in table


def test_live_wait_returns_when_a_matching_record_arrives() -> None:
    wall = time.time()
    tl = Timeline("ns", live=True, started=datetime.fromtimestamp(wall, UTC))
    late = Record(time=datetime.fromtimestamp(wall, UTC), source="event", kind="Killing",
                  namespace="ns", pod="web-0", received_wall=wall)

    def feed() -> None:
        time.sleep(0.05)
        tl.append(rec(0, "Unhealthy"))
        time.sleep(0.05)
        tl.append(late)

    threading.Thread(target=feed).start()
    begin = time.monotonic()
    got = tl.wait_for(lambda t: t.first(kind="Killing"),
                      deadline=datetime.fromtimestamp(wall + 30, UTC))
    assert got is not None and (got.kind, got.time, got.seq) == ("Killing", late.time, 2)
    assert time.monotonic() - begin < 1.0


def test_live_wait_gives_up_at_the_deadline_and_a_frozen_one_at_once() -> None:
    now = datetime.now(UTC)
    tl = Timeline("ns", live=True, started=now)
    begin = time.monotonic()
    assert tl.wait_for(lambda t: t.first(kind="Killing"),
                       deadline=now + timedelta(seconds=0.2)) is None
    assert 0.1 < time.monotonic() - begin < 1.5
    tl.close()
    begin = time.monotonic()
    assert tl.wait_for(lambda t: None, deadline=now + timedelta(hours=1)) is None
    assert time.monotonic() - begin < 0.1


def test_closing_wakes_a_waiter() -> None:
    tl = Timeline("ns", live=True, started=datetime.now(UTC))
    threading.Timer(0.05, tl.close).start()
    begin = time.monotonic()
    assert tl.wait_for(lambda t: None, deadline=datetime.now(UTC) + timedelta(hours=1)) is None
    assert time.monotonic() - begin < 1.0


def test_recorder_failure_is_raised_in_the_waiter() -> None:
    tl = Timeline("ns", live=True, started=datetime.now(UTC))
    threading.Timer(0.05, tl.fail, args=(ProbesError("watch broke"),)).start()
    with pytest.raises(ProbesError, match="watch broke"):
        tl.wait_for(lambda t: None, deadline=datetime.now(UTC) + timedelta(hours=1))


def test_server_offset_is_estimated_from_fresh_records() -> None:
    wall = 1_000_000.0
    tl = Timeline("ns", live=True, wall=lambda: wall + 10)
    server = datetime.fromtimestamp(wall - 2.0, UTC)  # the server runs 2 s behind
    tl.append(Record(time=server, source="event", kind="A", namespace="ns",
                     received_wall=wall + 0.3))
    tl.append(Record(time=server - timedelta(seconds=60), source="event", kind="Old",
                     namespace="ns", received_wall=wall + 0.4))
    assert tl.server_offset() == pytest.approx(2.3)


def test_wait_first_waits_for_a_late_record_and_times_out_clearly() -> None:
    wall = time.time()
    tl = Timeline("ns", live=True, started=datetime.fromtimestamp(wall, UTC))
    late = Record(time=datetime.fromtimestamp(wall, UTC), source="pod", kind="ContainerStarted",
                  namespace="ns", pod="web-0", received_wall=wall)
    threading.Timer(0.05, tl.append, args=(late,)).start()
    assert tl.wait_first(pod="web-0", kind="ContainerStarted", timeout=5).kind == \
        "ContainerStarted"
    begin = time.monotonic()
    with pytest.raises(ProbesError, match=r"no record with kind='Killing' arrived within 0\.2 s"):
        tl.wait_first(kind="Killing", timeout=0.2)
    assert time.monotonic() - begin < 2


def test_kubelet_events_behind_while_no_event_follows_the_newest_container_start() -> None:
    tl = Timeline("ns", live=True, started=T0)
    assert tl.kubelet_events_behind() is None
    tl.append(rec(0.0, "Started", component="kubelet"))
    tl.append(rec(0.4, "ContainerStarted", source="pod"))
    # An Event stamped in the start's second (truncated) counts; the scheduler's does not.
    assert tl.kubelet_events_behind() is None
    tl.append(rec(20.7, "ContainerStarted", source="pod"))
    tl.append(rec(21.0, "Scheduled", component="default-scheduler"))
    behind = tl.kubelet_events_behind()
    assert behind is not None and behind.time == T0 + timedelta(seconds=20.7)
    tl.append(rec(20.0, "Started", component="kubelet"))
    assert tl.kubelet_events_behind() is None


def test_live_wait_sits_out_an_event_backlog_up_to_catch_up() -> None:
    now = datetime.now(UTC)
    tl = Timeline("ns", live=True, started=now)
    tl.append(Record(time=now, source="pod", kind="ContainerStarted", namespace="ns",
                     pod="web-0"))
    deadline = now + timedelta(seconds=0.1)
    begin = time.monotonic()
    assert tl.wait_for(lambda t: t.first(kind="Killing"), deadline=deadline, catch_up=0.5) is None
    assert 0.5 < time.monotonic() - begin < 1.5  # no Event from the kubelet: waited it out

    def feed() -> None:
        time.sleep(0.7)
        tl.append(Record(time=now, source="event", kind="Killing", namespace="ns", pod="web-0",
                         data={"component": "kubelet"}))

    threading.Thread(target=feed).start()
    got = tl.wait_for(lambda t: t.first(kind="Killing"), deadline=deadline, catch_up=30.0)
    assert got is not None and got.kind == "Killing"  # the backlog delivered it late
    begin = time.monotonic()
    assert tl.wait_for(lambda t: t.first(kind="Killed"), deadline=deadline, catch_up=30.0) is None
    assert time.monotonic() - begin < 0.5  # caught up: no reason to wait
