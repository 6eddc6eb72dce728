"""The workers' first tests set up in turn, the longest first (``pytest_probes._startgate``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_schedule import _scheduled

from pytest_probes._schedule import chunk_size
from pytest_probes._startgate import SetupTurn, gate_dir, leader_ranks, may_start


@pytest.mark.parametrize(("tests", "workers"), [(96, 20), (96, 24), (42, 16), (10, 8), (3, 4)])
def test_the_leaders_are_the_first_test_xdist_sends_each_worker(tests: int, workers: int) -> None:
    """As pytest-xdist's own load scheduler sends them."""
    firsts = [node.sent[0] for node in _scheduled(tests, workers)[1] if node.sent]
    ranks = leader_ranks(workers, chunk_size(tests, workers), tests)
    assert sorted(ranks) == sorted(firsts)
    # Rank k is the k-th chunk's: the k-th longest test when ordered by _schedule.
    assert [ranks[place] for place in firsts] == list(range(len(firsts)))


def test_a_leader_starts_once_all_but_lanes_minus_one_before_it_have_ended() -> None:
    assert may_start(0, 2, [])
    assert may_start(1, 2, [])  # two lanes: ranks 0 and 1 at once
    assert not may_start(2, 2, [])
    assert not may_start(2, 2, [2, 3])  # later leaders' ends do not count
    assert may_start(2, 2, [1])  # either of those before it
    assert not may_start(5, 2, [0, 1, 2])
    assert may_start(5, 2, [0, 1, 2, 4])
    assert may_start(3, 1, [0, 1, 2]) and not may_start(3, 1, [0, 2])


def test_turns_run_in_rank_order_two_at_a_time(tmp_path: Path) -> None:
    directory = gate_dir(tmp_path, "run1")
    lock = threading.Lock()
    running: list[int] = []
    most = []
    started: list[int] = []

    def leader(rank: int) -> None:
        turn = SetupTurn(directory, rank, lanes=2)
        turn.wait(max_wait=30)
        with lock:
            running.append(rank)
            started.append(rank)
            most.append(len(running))
        threading.Event().wait(0.05)  # its set-up
        with lock:
            running.remove(rank)
        turn.end()

    threads = [threading.Thread(target=leader, args=(r,)) for r in reversed(range(8))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert max(most) <= 2
    # Rank r starts only after r - 1 ranks before it ended, so no later pair overtakes an earlier.
    assert sorted(started[:2]) == [0, 1]
    assert all(started.index(r) < started.index(r + 2) for r in range(6))
    assert sorted(int(p.name) for p in directory.iterdir()) == list(range(8))


def test_a_leader_goes_ahead_when_those_before_it_stall(tmp_path: Path) -> None:
    """Ranks 0-2 never end (their workers died, or they bring up a configured cluster)."""
    now = [0.0]
    turn = SetupTurn(gate_dir(tmp_path, "run2"), rank=3, lanes=2)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert 5 <= turn.wait(stall=5, clock=lambda: now[0], sleep=sleep) < 5.1


def test_a_leader_waits_while_those_before_it_progress_up_to_the_bound(tmp_path: Path) -> None:
    directory = gate_dir(tmp_path, "run4")
    now = [0.0]
    turn = SetupTurn(directory, rank=40, lanes=2)

    def sleep(seconds: float) -> None:  # one leader before it ends every 4 s
        before = int(now[0] // 4)
        now[0] += seconds
        if int(now[0] // 4) > before:
            SetupTurn(directory, before, lanes=2).end()

    assert 60 <= turn.wait(max_wait=60, stall=5, clock=lambda: now[0], sleep=sleep) < 60.1
    assert len(list(directory.iterdir())) == 15  # no stall: 4 s apart, under 5


def test_a_leader_in_its_turn_does_not_wait(tmp_path: Path) -> None:
    directory = gate_dir(tmp_path, "run3")
    SetupTurn(directory, 0, lanes=2).end()
    calls: list[float] = []
    assert SetupTurn(directory, 2, lanes=2).wait(sleep=calls.append) < 1
    assert calls == []
