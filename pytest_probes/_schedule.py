"""The order live tests are handed to pytest-xdist workers in: the longest first, each alone.

A live suite's wall time is that of its busiest worker. pytest-xdist's ``load`` scheduling gives
each of ``W`` workers a first chunk of consecutive tests (``chunk_size``), runs each chunk in
order, and hands out the rest one by one to whichever worker runs dry. A long scenario in the
second place of a chunk, or followed in its chunk by another long one, stretches the suite past
its longest scenario (seen: O1.2, 199 s, followed by O1.3, 33 s, on one worker: the suite took
1.34 times O1.2). Ordered as :func:`worker_order` says, each of the ``W`` longest tests opens a
chunk, and the rest follow longest first. The longest leaders' chunks are filled up with the
shortest tests; the other chunks with the longest tests that leave their worker room, so that
the tests handed out last, when the workers run dry one by one, are the shortest. (xdist keeps
one test queued on each worker beyond the one it runs, so the last tests it hands out are
committed a whole test early: when those are 20-30 s long, the workers end that far apart.)

The durations come from the previous run (pytest's cache) and, for the tests the cache does not
know (a fresh clone, ``-p no:cacheprovider``), from a durations file the project commits
(``probes_durations_file``; ``pytest-probes durations`` writes it from a ``--probes-report``), as
pytest-split's ``.test_durations`` does. Tests without either count as the median of those with
one, and without any the collection order stands. Pure functions, no pytest.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def chunk_size(tests: int, workers: int, max_chunk: int | None = None) -> int:
    """How many consecutive tests pytest-xdist's ``load`` scheduling first gives each worker.

    As ``LoadScheduling.schedule``: with fewer than two tests per worker they are dealt one at a
    time (round robin, returned as 1); else a quarter of the tests per worker, at least 2.
    """
    if workers <= 0 or tests < 2 * workers:
        return 1
    size = (tests // workers) // 4
    if max_chunk is not None:
        size = min(size, max_chunk)
    return max(size, 2)


FOLLOWER_ROOM = 0.8
"""A chunk's leader and followers may take up to this share of a worker's even share of the
summed durations. Measured with pytest-xdist's own scheduler on the durations of two 20-worker
runs of this suite (96 tests; each ordered by one run and run with the other, or with itself):
the busiest worker ended 1.02-1.08 times an even share, against 1.07-1.11 with the shortest
followers for every leader (5-13 s sooner); 0.5-0.75 and 0.9 did less well
(``tests/unit/test_schedule.py``)."""


def worker_order(durations: Sequence[float | None], workers: int, chunk: int) -> list[int]:
    """A permutation of ``range(len(durations))``: the order to hand the tests to xdist in.

    Args:
        durations: Each test's expected seconds (``None`` if unknown), in collection order.
        workers: The number of xdist workers.
        chunk: :func:`chunk_size` for this run (1: dealt round robin).

    Returns:
        The collection order if no duration is known; else the ``workers`` longest tests each
        first on a worker, followed on that worker by the longest tests that keep the chunk
        within :data:`FOLLOWER_ROOM` of an even share (the shortest where none fits), then the
        rest longest first (longest-processing-time-first for the tests handed out later).
    """
    known = [d for d in durations if d is not None]
    if not known or workers <= 0:
        return list(range(len(durations)))
    fill = statistics.median(known)
    expected = [fill if d is None else d for d in durations]
    # Longest first; ties keep the collection order.
    by_length = sorted(range(len(expected)), key=lambda i: (-expected[i], i))
    leaders = by_length[:workers]
    rest = by_length[workers:]
    if chunk == 1:
        # Round robin: place p goes to worker p % W, so the W leaders start at once, and the
        # shortest of the rest go to the longest leaders' workers.
        return leaders + rest[::-1]
    share = FOLLOWER_ROOM * sum(expected) / workers
    order: list[int] = []
    for leader in leaders:
        room = share - expected[leader]
        order.append(leader)
        for _ in range(min(chunk - 1, len(rest))):
            # rest is longest first: the longest that fits, else the shortest of all.
            pick = next((i for i in rest if expected[i] <= room), rest[-1])
            rest.remove(pick)
            order.append(pick)
            room -= expected[pick]
    return order + rest


def merge_durations(
    previous: Mapping[str, float], finished: Mapping[str, float]
) -> dict[str, float]:
    """The durations to keep for the next run: this run's, then the previous run's others."""
    merged = {k: float(v) for k, v in previous.items() if isinstance(v, int | float)}
    merged.update(finished)
    return merged


def read_durations_file(path: Path) -> dict[str, float]:
    """The durations a project keeps in ``path``: a JSON object, test node id → seconds.

    Raises:
        ValueError: The file cannot be read or is not such an object; the message names the
            file and the fix.
    """
    fix = ("write it with `pytest-probes durations REPORT.json -o FILE` from a --probes-report, "
           "or remove the probes_durations_file setting")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(
            f"{path}: cannot read the durations file ({err.strerror}); {fix}") from None
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err}); {fix}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for k, v in data.items()
    ):
        raise ValueError(f"{path}: not an object of test node ids to seconds (numbers >= 0); {fix}")
    return {k: float(v) for k, v in data.items()}


def duration(entry: Mapping[str, Any]) -> float:
    """A test's wall time in a ``--probes-report`` entry, less its wait for its set-up turn.

    The wait (``turn_wait_s``, :mod:`pytest_probes._startgate`) is the rank it was given, not
    its own: counted in, a leader that waited long would rank higher the next run and wait less.
    """
    return float(entry["wall_s"]) - float(entry.get("turn_wait_s", 0.0))


def durations_from_report(entries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The :func:`duration` of each passed test of a ``--probes-report`` (its ``tests``)."""
    return {str(e["nodeid"]): round(duration(e), 1) for e in entries
            if e.get("outcome") == "passed" and isinstance(e.get("wall_s"), int | float)
            and "nodeid" in e}
