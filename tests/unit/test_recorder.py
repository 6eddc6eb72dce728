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
