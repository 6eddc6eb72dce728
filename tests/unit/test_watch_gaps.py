"""Watch gaps: recorded, shown, inferred from where possible, and never a silent pass.

The timelines are built from record shapes the recorder writes (the live proof is the
integration test ``test_apiserver_outage.py``, where a real API server outage and an etcd
compaction make the watches re-list).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_probes import (
    InconclusiveError,
    ProbeAssertionError,
    Record,
    Reducer,
    Timeline,
    assert_endpoint_kept_for,
    assert_never_ready_for,
    assert_no_restarts_for,
    timeline_svg,
)
from pytest_probes.timeline import GAP_KIND, format_time

T0 = datetime(2026, 12, 5, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rec(seconds: float, source: str, kind: str, pod: str | None = "app", **data: Any) -> Record:
    return Record(time=at(seconds), source=source, kind=kind, namespace="ns", pod=pod, data=data)


def gap(source: str, begin: float, end: float) -> Record:
    reason = "410 Gone: the watch's resourceVersion expired; listed again"
    return Record(time=at(begin), source=source, kind=GAP_KIND, namespace="ns", message=reason,
                  data={"from": format_time(at(begin)), "to": format_time(at(end)),
                        "reason": reason})


BASE = [
    rec(0, "pod", "PodAdded"),
    rec(1, "pod", "ContainerStarted", restartCount=0),
    rec(2, "endpoints", "EndpointAdded", address="10.88.0.5", service="svc"),
]


def timeline(*extra: Record) -> Timeline:
    return Timeline("ns", [*BASE, *extra], started=T0)


@pytest.mark.parametrize(
    ("helper", "source"),
    [(assert_never_ready_for, "pod"), (assert_no_restarts_for, "pod"),
     (assert_endpoint_kept_for, "endpoints")],
)
def test_a_gap_in_the_window_makes_an_absence_helper_inconclusive_naming_it(
    helper: Any, source: str
) -> None:
    tl = timeline(gap(source, 20, 27))
    with pytest.raises(InconclusiveError) as info:
        helper(tl, "app", duration=30, since=at(10))
    message = str(info.value)
    assert "inconclusive" in message and "08:00:20–08:00:27" in message, message
    assert f"no {source} records" in message and "7 s" in message, message
    assert [g.kind for g in info.value.gaps] == [GAP_KIND]
    assert "WatchGap" in info.value.rows  # the table shows the gap as a row
    # The same helper over a window the gap does not touch decides as before: it passes.
    helper(tl, "app", duration=5, since=at(28))
    helper(tl, "app", duration=9, since=at(10))  # ends before the gap began


def test_only_a_gap_of_the_source_a_helper_reads_counts() -> None:
    tl = timeline(gap("endpoints", 20, 27), gap("event", 20, 27))
    assert_never_ready_for(tl, "app", duration=30, since=at(10))
    assert_no_restarts_for(tl, "app", duration=30, since=at(10))
    with pytest.raises(InconclusiveError):
        assert_endpoint_kept_for(tl, "app", duration=30, since=at(10))


def test_evidence_decides_before_a_gap_does() -> None:
    # What the timeline does show against the assertion is a plain failure, gap or not.
    tl = timeline(gap("pod", 20, 27),
                  rec(15, "pod", "ContainerRestarted", restartCount=1, restarts=1),
                  rec(16, "pod", "PodReady", ready=True))
    for helper in (assert_no_restarts_for, assert_never_ready_for):
        with pytest.raises(ProbeAssertionError) as info:
            helper(tl, "app", duration=30, since=at(10))
        assert not isinstance(info.value, InconclusiveError)


def test_gaps_are_found_by_overlap_and_source() -> None:
    tl = timeline(gap("pod", 20, 27), gap("endpoints", 40, 41))
    assert [g.source for g in tl.gaps()] == ["pod", "endpoints"]
    assert tl.gaps(start=at(27.5)) == tl.gaps(sources=("endpoints",))
    assert tl.gaps(end=at(20)) == []  # a gap that begins at the end does not overlap
    assert [g.source for g in tl.gaps(start=at(26), end=at(40.5))] == ["pod", "endpoints"]


def test_the_table_and_the_chart_show_the_gap() -> None:
    tl = timeline(gap("pod", 20, 27))
    table = tl.to_markdown()
    assert "WatchGap: no pod records 08:00:20–08:00:27 (7 s, 410 Gone" in table
    svg = timeline_svg(tl)
    assert svg.count('class="gap"') == 1 and 'fill="url(#gap)"' in svg
    assert "watch gap" in svg  # the legend


def test_a_gap_survives_saving_and_loading(tmp_path: Any) -> None:
    tl = timeline(gap("pod", 20, 27))
    loaded = Timeline.load(tl.save(tmp_path / "tl.jsonl"))
    assert [(g.source, g.data["from"], g.data["to"]) for g in loaded.gaps()] == [
        ("pod", "2026-12-05T08:00:20Z", "2026-12-05T08:00:27Z")]


def _pod(ready: str, since: str) -> dict[str, Any]:
    return {"metadata": {"name": "app", "uid": "u1"},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": ready,
                                       "lastTransitionTime": since}]}}


def test_a_ready_flip_and_back_inside_a_gap_is_inferred_from_the_moved_transition_time() -> None:
    reducer = Reducer("ns")
    reducer.feed("pod", "ADDED", _pod("True", "2026-12-05T08:00:05Z"))
    # After the gap's re-list: Ready again, but since 08:00:25 — it was not Ready in between.
    out = reducer.feed("pod", "ADDED", _pod("True", "2026-12-05T08:00:25Z"))
    assert [(r.kind, r.data.get("inferred"), r.time.second) for r in out] == [
        ("PodNotReady", True, 25), ("PodReady", True, 25)]
    tl = timeline(*out)
    with pytest.raises(ProbeAssertionError, match="Ready at 08:00:25"):
        assert_never_ready_for(tl, "app", duration=30, since=at(24))
    # Seen again unchanged: nothing more.
    assert reducer.feed("pod", "MODIFIED", _pod("True", "2026-12-05T08:00:25Z")) == []


class _Response:
    """A list or watch response as the client returns it with ``_preload_content=False``."""

    def __init__(self, data: bytes = b"", lines: list[dict[str, Any]] | None = None,
                 hold: Any = None) -> None:
        self.data = data
        self._lines = lines or []
        self._hold = hold

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        import json

        for line in self._lines:
            yield (json.dumps(line) + "\n").encode()
        if self._hold is not None:
            self._hold.wait(5)  # an open watch with nothing to say, until the recorder stops

    def close(self) -> None:
        if self._hold is not None:
            self._hold.set()


def test_the_recorder_puts_a_gap_from_the_last_complete_line_to_the_relist_after_a_410(
    tmp_path: Any,
) -> None:
    import json
    import threading

    from pytest_probes import Recorder

    ticks = iter(range(1000, 100000))
    pod = _pod("True", "2026-12-05T08:00:05Z")
    pod["metadata"]["resourceVersion"] = "2"
    calls: list[str] = []
    stopped = threading.Event()

    class Scripted(Recorder):
        def _call(self, source: str, *, watch: bool, resource_version: str | None = None) -> Any:
            calls.append(f"{'watch' if watch else 'list'} {resource_version or ''}".strip())
            if not watch:
                return _Response(json.dumps({"metadata": {"resourceVersion": "1"},
                                             "items": [pod]}).encode())
            if len(calls) == 2:  # the first watch: one change, then the version expires
                return _Response(lines=[
                    {"type": "MODIFIED", "object": pod},
                    {"type": "ERROR", "object": {"code": 410, "message": "too old"}}])
            return _Response(hold=stopped)

    raw = tmp_path / "raw.jsonl"
    recorder = Scripted(object(), "ns", sources=("pod",), retry_initial=0.01,
                        wall=lambda: float(next(ticks)), raw_path=raw)
    recorder.start()
    tl = recorder.timeline
    tl.wait_first(kind=GAP_KIND, timeout=5)
    recorder.stop()
    assert calls[:4] == ["list", "watch 1", "list", "watch 1"]
    assert recorder.gone == 1 and recorder.gaps == 1 and recorder.relists == 2
    (found,) = tl.gaps()
    begin, end = (datetime.fromisoformat(found.data[k].replace("Z", "+00:00"))
                  for k in ("from", "to"))
    assert found.source == "pod" and begin < end
    assert found.received_wall == 0.0  # says nothing about the server's clock
    # The raw stream keeps the gap: a replay has it too.
    from pytest_probes.importers import replay_raw

    assert [g.data for g in replay_raw(raw).gaps()] == [found.data]
