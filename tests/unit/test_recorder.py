"""The recorder (``recorder.py``) without a network: recorded raw streams through its feeding path.

A scripted recorder answers its own API calls (``_call``) from a raw stream it saved before
(tests/data/streams): each source's list is empty, and its watch sends that source's lines in the
order they were received, cut into chunks that split lines, then stays open with nothing to say
until the recorder stops. So every line goes through ``_watch``, ``_lines`` and ``_feed`` as it
would from the API server, with injected clocks.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_probes import Recorder
from pytest_probes.importers import replay_raw
from pytest_probes.timeline import RECORDED_SOURCES, Timeline
from tests.helpers import STREAMS

WALL = 1_800_000_000.0


class _Stream:
    """A watch response: the lines in chunks of ``chunk`` bytes, then silence until closed."""

    def __init__(self, lines: list[dict[str, Any]], chunk: int) -> None:
        self.body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.chunk = chunk
        self.sent = threading.Event()
        self.closed = threading.Event()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for start in range(0, len(self.body), self.chunk):
            yield self.body[start:start + self.chunk]
        self.sent.set()  # asked for more: every line sent so far has been fed
        self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


class _EmptyList:
    data = json.dumps({"metadata": {"resourceVersion": "1"}, "items": []}).encode()

    def close(self) -> None:
        pass


def _record(path: Path, *, raw: Path | None = None) -> Timeline:
    by_source: dict[str, list[dict[str, Any]]] = {source: [] for source in RECORDED_SOURCES}
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        by_source[event["source"]].append({"type": event["type"], "object": event["object"]})
    watches = {source: _Stream(lines, chunk=1000) for source, lines in by_source.items()}
    quiet = {source: _Stream([], chunk=1000) for source in RECORDED_SOURCES}

    class Scripted(Recorder):
        def _call(self, source: str, *, watch: bool, resource_version: str | None = None) -> Any:
            if not watch:
                return _EmptyList()
            first = watches.pop(source, None)  # a watch resumed later has nothing new
            return first if first is not None else quiet[source]

    streams = list(watches.values())
    ticks = itertools.count(100)
    recorder = Scripted(object(), "probes-stream", clock=lambda: float(next(ticks)),
                        wall=lambda: WALL, raw_path=raw)
    recorder.start(sync_timeout=5)
    for stream in streams:
        assert stream.sent.wait(10)
    timeline = recorder.stop()
    assert recorder.relists == len(RECORDED_SOURCES) and recorder.reconnects == 0
    return timeline


def _what(tl: Timeline) -> list[tuple[Any, ...]]:
    """The records without their arrival: what the cluster did and when the server said so."""
    return sorted((r.time, r.source, r.kind, r.pod or "", r.container or "", r.message,
                   json.dumps(dict(r.data), sort_keys=True)) for r in tl.records)


@pytest.mark.parametrize("name", ["liveness-restart.jsonl", "onfailure-liveness-stop.jsonl"])
def test_a_recorded_stream_fed_through_the_watches_gives_the_replayed_timeline(name: str) -> None:
    recorded = _record(STREAMS / name)
    replayed = replay_raw(STREAMS / name)
    assert len(recorded.records) == len(replayed.records) > 40
    assert _what(recorded) == _what(replayed)
    assert not recorded.live


def test_records_carry_the_injected_clocks_and_the_raw_file_replays_them(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    recorded = _record(STREAMS / "liveness-restart.jsonl", raw=raw)
    assert {r.received_wall for r in recorded.records} == {WALL}
    assert all(r.received >= 100 for r in recorded.records)
    assert sorted(r.seq for r in recorded.records) == list(range(1, len(recorded.records) + 1))
    again = replay_raw(raw)
    assert _what(again) == _what(recorded)
    assert sorted((r.time, r.received) for r in again.records) == sorted(
        (r.time, r.received) for r in recorded.records)


def test_a_line_split_across_chunks_is_read_whole() -> None:
    from pytest_probes.recorder import _lines

    stream = _Stream([{"type": "ADDED", "object": {"metadata": {"name": "a" * 30}}},
                      {"type": "DELETED", "object": {}}], chunk=7)
    stream.closed.set()
    lines = list(_lines(stream))
    assert [json.loads(line)["type"] for line in lines] == ["ADDED", "DELETED"]


class _LogStream:
    """A followed log's response: its text in small chunks, then the end of the instance."""

    def __init__(self, text: str) -> None:
        self.body = text.encode()
        self.closed = False

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for start in range(0, len(self.body), 7):
            yield self.body[start:start + 7]

    def close(self) -> None:
        self.closed = True


def test_a_followed_log_is_read_per_instance_once_each_line_until_the_pod_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubernetes import client

    first = "2026-01-01T12:00:01.000000000Z starting\nno timestamp here\n" \
            "2026-01-01T12:00:02.000000000Z serving\n"
    # The next request re-reads the instance from its first line, and one line more.
    answers: list[Any] = [_LogStream(first),
                          _LogStream(first + "2026-01-01T12:00:05.000000000Z stopping\n")]

    class Gone(Exception):
        status = 404

    class Api:
        def __init__(self, api_client: Any) -> None:
            pass

        def read_namespaced_pod_log(self, pod: str, namespace: str, **kwargs: Any) -> Any:
            assert (pod, namespace, kwargs["container"]) == ("web-0", "probes-logs", "app")
            assert kwargs["follow"] and kwargs["timestamps"]
            if not answers:
                raise Gone("pods \"web-0\" not found")
            return answers.pop(0)

        def read_namespaced_pod(self, pod: str, namespace: str, **kwargs: Any) -> Any:
            raise Gone("pods \"web-0\" not found")

    monkeypatch.setattr(client, "CoreV1Api", Api)
    ticks = itertools.count(100)
    recorder = Recorder(object(), "probes-logs", retry_initial=0.01,
                        clock=lambda: float(next(ticks)), wall=lambda: WALL)
    responses = list(answers)
    recorder._follow("web-0", "app")
    logged = recorder.timeline.query(source="log")
    assert [(r.time.second, r.message) for r in logged] == [(1, "starting"), (2, "serving"),
                                                            (5, "stopping")]
    assert all(r.container == "app" and r.received is not None for r in logged)
    assert all(r.closed for r in responses) and recorder._responses == {}


def test_a_404_for_a_log_ends_the_follower_only_once_the_api_has_no_such_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kubelet answers 404 "pod does not exist" until its watch has brought it the pod
    # (getContainerLogs, pkg/kubelet/server/server.go); the API still has the pod meanwhile.
    from kubernetes import client

    class NotFound(Exception):
        status = 404

    logs: list[Any] = [NotFound("pod \"web-0\" does not exist"), NotFound("again"),
                       _LogStream("2026-01-01T12:00:01.000000000Z starting\n"),
                       NotFound("pods \"web-0\" not found")]
    pods: list[Any] = [{"metadata": {"name": "web-0"}}, {"metadata": {"name": "web-0"}},
                       NotFound("pods \"web-0\" not found")]

    class Api:
        def __init__(self, api_client: Any) -> None:
            pass

        def read_namespaced_pod_log(self, pod: str, namespace: str, **kwargs: Any) -> Any:
            answer = logs.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        def read_namespaced_pod(self, pod: str, namespace: str, **kwargs: Any) -> Any:
            answer = pods.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    monkeypatch.setattr(client, "CoreV1Api", Api)
    recorder = Recorder(object(), "probes-logs", retry_initial=0.01, retry_max=0.01)
    recorder.follow_logs("web-0", "app")
    deadline = time.monotonic() + 10
    while recorder.following:
        assert time.monotonic() < deadline, "the follower did not end"
        time.sleep(0.01)
    assert [r.message for r in recorder.timeline.query(source="log")] == ["starting"]
    assert logs == [] and pods == []


def test_a_followed_log_ends_when_recording_stops() -> None:
    recorder = Recorder(object(), "probes-logs")
    stream = _LogStream("2026-01-01T12:00:01.000000000Z one\n2026-01-01T12:00:02.000000000Z two\n")
    recorder._stop.set()
    with recorder._reading("log:web-0/app", stream) as lines:
        assert list(lines) == []
    assert stream.closed and recorder._responses == {}
