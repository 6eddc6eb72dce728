"""Set-up in turn: the workers' first tests set up a few at a time, the longest first.

Each pytest-xdist worker's first test pays for the worker's share of the run's set-up: the
Kubernetes client (about 1 s of CPU: importing it, and the first use of ``CoreV1Api``, whose
methods build their pydantic validators then), the cluster's API client, the namespace and the
recorder. With 20-24 workers doing it at once on 2 cores, each took 10-25 s, so the longest
scenario, first on its worker (:mod:`pytest_probes._schedule`), began 20-40 s into the run and
the suite could not end sooner than that plus the longest scenario.

Set up in turn, at most ``lanes`` at a time (the machine's cores) and in the order of the
tests' expected durations, the longest test's set-up runs on an idle machine, and the last
leader's ends about when all of them ended before. The first tests of the workers (the
leaders, ranked 0 for the longest) are the only ones that wait: leader ``k`` starts its set-up
once all but ``lanes - 1`` of the leaders ranked before it have ended theirs. Each leader notes
the end of its set-up, whatever its outcome (a skipped one too), as a file in a directory of
the run. A set-up that is slow for want of something other than CPU (bringing up a configured
cluster) or a leader whose worker died (it notes nothing) would hold the others up: a leader goes
ahead once none of those before it has ended for :data:`STALL` seconds, and after
:data:`MAX_WAIT` in any case, so the gate can only delay a run, never hang it. Pure file
operations, no pytest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from pathlib import Path

MAX_WAIT = 60.0
"""Seconds a leader waits at most for the leaders before it (a worker that died ends none)."""

STALL = 5.0
"""Seconds without any leader before it ending after which a leader goes ahead: a set-up alone
took 1-3.5 s here (the client, the namespace, the recorder), a configured cluster's bring-up
30-50 s."""

POLL = 0.05
"""Seconds between looks at the directory while waiting."""


def gate_dir(cache_dir: Path, run_id: str) -> Path:
    """The directory where a run's leaders note the end of their set-up."""
    return cache_dir / "runs" / f"{run_id}.setup-turns"


def lanes() -> int:
    """How many leaders set up at once: the CPUs this process may run on, at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def leader_ranks(leaders: int, chunk: int, total: int) -> dict[int, int]:
    """The place in the hand-out order of each worker's first test, and its rank.

    pytest-xdist's ``load`` scheduling gives the ``k``-th worker the ``k``-th chunk of
    ``chunk`` consecutive tests (one test, round robin, when ``chunk`` is 1), so the first test
    of each chunk is a worker's first. ``total`` is the number of tests handed out.
    """
    return {k * chunk: k for k in range(leaders) if k * chunk < total}


def may_start(rank: int, lanes: int, ended: Collection[int]) -> bool:
    """Whether leader ``rank`` may set up: all but ``lanes - 1`` of those before it have ended."""
    before = sum(1 for r in ended if r < rank)
    return before >= rank - lanes + 1


class SetupTurn:
    """One leader's turn: :meth:`wait` before its set-up, :meth:`end` after it."""

    def __init__(self, directory: Path, rank: int, lanes: int) -> None:
        self.directory = directory
        self.rank = rank
        self.lanes = lanes

    def _ended(self) -> list[int]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return [int(n) for n in names if n.isdigit()]

    def wait(self, *, max_wait: float = MAX_WAIT, stall: float = STALL,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait for this leader's turn, or until those before it stall; return the seconds waited.

        It goes ahead once none of the leaders before it has ended for ``stall`` seconds, and
        after ``max_wait`` in any case.
        """
        start = progress = clock()
        seen: list[int] = []
        while True:
            before = [r for r in self._ended() if r < self.rank]
            if may_start(self.rank, self.lanes, before):
                break
            now = clock()
            if len(before) != len(seen):
                seen, progress = before, now
            if now - progress >= stall or now - start >= max_wait:
                break
            sleep(POLL)
        return clock() - start

    def end(self) -> None:
        """Note that this leader's set-up ended, so the next may begin theirs."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / str(self.rank)).touch()
