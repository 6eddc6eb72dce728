"""The order live tests are handed to pytest-xdist workers in: the longest first, each alone.

A live suite's wall time is that of its busiest worker. pytest-xdist's ``load`` scheduling gives
each of ``W`` workers a first chunk of consecutive tests (``chunk_size``), runs each chunk in
order, and hands out the rest one by one to whichever worker runs dry. A long scenario in the
second place of a chunk, or followed in its chunk by another long one, stretches the suite past
its longest scenario (seen: O1.2, 199 s, followed by O1.3, 33 s, on one worker: the suite took
1.34 times O1.2). Ordered as :func:`worker_order` says, each of the ``W`` longest tests opens a
chunk filled up with the shortest ones, and the rest follow longest first.

The durations come from the previous run (pytest's cache); tests without one count as the median
of those with one, and without any the collection order stands. Pure functions, no pytest.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


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


def worker_order(durations: Sequence[float | None], workers: int, chunk: int) -> list[int]:
    """A permutation of ``range(len(durations))``: the order to hand the tests to xdist in.

    Args:
        durations: Each test's expected seconds (``None`` if unknown), in collection order.
        workers: The number of xdist workers.
        chunk: :func:`chunk_size` for this run (1: dealt round robin).

    Returns:
        The collection order if no duration is known; else the ``workers`` longest tests each
        first on a worker, with the shortest tests after them on that worker, then the rest
        longest first (longest-processing-time-first for the tests handed out later).
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
    order: list[int] = []
    for leader in leaders:
        cut = len(rest) - min(chunk - 1, len(rest))  # the shortest are at the end
        order += [leader, *rest[cut:][::-1]]
        del rest[cut:]
    return order + rest


def merge_durations(
    previous: Mapping[str, float], finished: Mapping[str, float]
) -> dict[str, float]:
    """The durations to keep for the next run: this run's, then the previous run's others."""
    merged = {k: float(v) for k, v in previous.items() if isinstance(v, int | float)}
    merged.update(finished)
    return merged
