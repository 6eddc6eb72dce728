"""The order live tests are handed to pytest-xdist in (longest first, each alone on its worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler.load import LoadScheduling

from pytest_probes._schedule import (
    chunk_size,
    durations_from_report,
    merge_durations,
    read_durations_file,
    worker_order,
)


class _Config:
    def __init__(self, workers: int) -> None:
        self.options = {"tx": [f"{workers}*popen"], "maxschedchunk": None}

    def getvalue(self, name: str) -> Any:
        return self.options[name]

    getoption = getvalue


class _Node:
    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduled(tests: int, workers: int) -> tuple[LoadScheduling, list[_Node]]:
    """pytest-xdist's own load scheduler, after it sent each worker its first tests."""
    scheduler = LoadScheduling(_Config(workers))  # type: ignore[arg-type]
    nodes = [_Node(f"gw{i}") for i in range(workers)]
    for node in nodes:
        scheduler.add_node(node)  # type: ignore[arg-type]
    for node in nodes:
        scheduler.add_node_collection(node, [f"t{i}" for i in range(tests)])  # type: ignore[arg-type]
    scheduler.schedule()
    return scheduler, nodes


def _first_chunks(tests: int, workers: int) -> list[list[int]]:
    """What pytest-xdist's own load scheduler first sends each worker."""
    return [node.sent for node in _scheduled(tests, workers)[1]]


@pytest.mark.parametrize(("tests", "workers"), [(42, 16), (8, 2), (100, 4), (10, 8), (3, 4)])
def test_chunk_size_is_what_xdist_sends_each_worker_first(tests: int, workers: int) -> None:
    chunks = _first_chunks(tests, workers)
    size = chunk_size(tests, workers)
    if size == 1:  # round robin: worker w gets places w, w + W, ...
        assert chunks == [list(range(w, tests, workers)) for w in range(workers)]
    else:
        assert chunks == [list(range(w * size, (w + 1) * size)) for w in range(workers)]


def test_the_longest_tests_open_the_chunks_and_the_shortest_are_handed_out_last() -> None:
    durations = [5.0, 200.0, 1.0, 80.0, 30.0, 2.0, 60.0, 3.0]
    order = worker_order(durations, workers=2, chunk=chunk_size(8, 2))
    assert chunk_size(8, 2) == 2
    assert sorted(order) == list(range(8))
    # An even share is 190.5 s, the chunks' room 0.8 of it (152 s). Worker 0: the longest
    # (200 s) has no room left, so the shortest (1 s) follows it; worker 1: 80 s, then the
    # longest test that fits in the 72 s left (60 s).
    assert order[:4] == [1, 2, 3, 6]
    # The rest, handed out as workers run dry: longest first, so the shortest come last.
    assert [durations[i] for i in order[4:]] == [30.0, 5.0, 3.0, 2.0]


DURATIONS = Path(__file__).resolve().parents[1] / "data" / "durations"


def _simulated_wall(handed_out: list[float], workers: int) -> float:
    """When the last worker ends if pytest-xdist's own load scheduler hands out tests taking
    ``handed_out`` seconds, in that order (a worker runs what it was sent, in order)."""
    scheduler, nodes = _scheduled(len(handed_out), workers)
    clock = {node: 0.0 for node in nodes}
    done = {node: 0 for node in nodes}
    while True:
        running = [n for n in nodes if done[n] < len(n.sent)]
        if not running:
            return max(clock.values())
        # The worker whose current test ends first reports it; the scheduler may send it more.
        node = min(running, key=lambda n: clock[n] + handed_out[n.sent[done[n]]])
        index = node.sent[done[node]]
        clock[node] += handed_out[index]
        done[node] += 1
        scheduler.mark_test_complete(node, index, handed_out[index])  # type: ignore[arg-type]


@pytest.mark.parametrize(("ordered_by", "run"), [("b", "c"), ("c", "b"), ("b", "b"), ("c", "c")])
def test_recorded_suites_end_close_to_an_even_share(ordered_by: str, run: str) -> None:
    """Two 20-worker runs of this suite (1.37.2, 96 tests, 4,252 and 4,322 s of tests): ordered
    by one run's durations and run with the other's (or its own), the busiest worker ends within
    9 % of an even share. The shortest followers for every leader, before FOLLOWER_ROOM, ended
    7-11 % past it, over 9 % in two of the four."""
    known = read_durations_file(DURATIONS / f"suite-1.37.2-20-workers-{ordered_by}.json")
    actual = read_durations_file(DURATIONS / f"suite-1.37.2-20-workers-{run}.json")
    ids = sorted(actual)
    workers = 20
    order = worker_order([known.get(i) for i in ids], workers, chunk_size(len(ids), workers))
    wall = _simulated_wall([actual[ids[i]] for i in order], workers)
    even = sum(actual.values()) / workers
    assert wall <= 1.09 * even, (wall, even)


def test_round_robin_gives_the_longest_leader_the_shortest_follower() -> None:
    durations = [10.0, 90.0, 1.0, 50.0, 5.0]
    order = worker_order(durations, workers=3, chunk=chunk_size(5, 3))
    assert chunk_size(5, 3) == 1
    # Places 0-2 start at once on workers 0-2; place 3 follows on worker 0, place 4 on worker 1.
    assert order == [1, 3, 0, 2, 4]


def test_unknown_durations_count_as_the_median_and_none_known_keeps_the_order() -> None:
    assert worker_order([None, None, None], workers=2, chunk=1) == [0, 1, 2]
    # Median of the known is 10: the unknown test ranks between 100 and 1.
    assert worker_order([1.0, None, 100.0, 10.0], workers=1, chunk=1) == [2, 0, 3, 1]


def test_this_runs_durations_replace_the_previous_and_others_are_kept() -> None:
    merged = merge_durations({"a": 1.0, "b": 2, "bad": "x"}, {"b": 5.0, "c": 7.0})
    assert merged == {"a": 1.0, "b": 5.0, "c": 7.0}


def test_a_durations_file_is_read_and_a_bad_one_named_with_the_fix(tmp_path: Path) -> None:
    good = tmp_path / "d.json"
    good.write_text('{"t.py::a": 3, "t.py::b": 0.5}')
    assert read_durations_file(good) == {"t.py::a": 3.0, "t.py::b": 0.5}
    for text in ('["t.py::a"]', '{"t.py::a": -1}', '{"t.py::a": true}'):
        good.write_text(text)
        with pytest.raises(ValueError, match=r"d\.json: not an object.*pytest-probes durations"):
            read_durations_file(good)


def test_a_reports_passed_tests_give_the_durations() -> None:
    entries = [
        {"nodeid": "t.py::a", "outcome": "passed", "wall_s": 12.34},
        {"nodeid": "t.py::b", "outcome": "failed", "wall_s": 99.0},
        {"nodeid": "t.py::c", "outcome": "passed"},
        # A worker's first test, which waited 9 s for its set-up turn: not its own time.
        {"nodeid": "t.py::d", "outcome": "passed", "wall_s": 30.0, "turn_wait_s": 9.0},
    ]
    assert durations_from_report(entries) == {"t.py::a": 12.3, "t.py::d": 21.0}
