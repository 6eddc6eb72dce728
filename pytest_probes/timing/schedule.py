"""Restart schedules: when each restart starts, per history of the kubelet's choices.

:meth:`ContainerTiming.restart_schedule <pytest_probes.timing.ContainerTiming.restart_schedule>`
returns a :class:`RestartSchedule`, which the back-off simulation
(:mod:`pytest_probes.timing.backoff`) computes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, overload

from pytest_probes.timing.window import Window

if TYPE_CHECKING:
    from pytest_probes.timing.backoff import CrashLoopBackOff


@dataclass(frozen=True)
class Restart:
    """One restart (the start of a new container instance) in a schedule.

    Attributes:
        number: The restart count after it (1 for the first restart).
        started: When the new instance starts, relative to the first instance's start.
        killed: When the previous instance got its ``Killing`` event (or exited, for crashes).
        backed_off: ``True`` if the restart waited for a back-off (the pod showed
            ``CrashLoopBackOff``), ``False`` if it followed at once, ``None`` if it depends on
            timing.
        backoff: The back-off values waited for (``None`` if it never waited).
        certain: Whether the restart happens in every timing (else the container may have
            stopped for good before).
        paths: The start window per history: whether each of restarts 1..``number`` waited for
            a back-off, in order. One history per way the kubelet's jitter can go; ``None`` when
            the simulation had too many timing classes to keep them apart.
    """

    number: int
    started: Window
    killed: Window
    backed_off: bool | None
    backoff: Window | None
    certain: bool
    paths: Mapping[tuple[bool, ...], Window] | None = None


@dataclass(frozen=True)
class Stop:
    """The container is left terminated: no more restarts.

    Attributes:
        restarts: The restart count it stays at.
        exited: When the last instance exits, relative to the first instance's start.
        reason: Why the kubelet does not restart it.
    """

    restarts: int
    exited: Window
    reason: str


@dataclass(frozen=True)
class RestartSchedule(Sequence[Window]):
    """Restart start windows (a sequence of :class:`~pytest_probes.timing.Window`) with details.

    ``schedule[k]`` is the start window of restart ``k + 1``. The sequence is shorter than asked
    when the container stops for good in every timing before; ``stops`` says when and why.

    Attributes:
        restarts: Details per restart.
        stops: Where the container may be left terminated (one entry per restart count).
        continues: Whether, in some timing, the container is still being restarted at the end
            of the computed horizon.
        backoff: The kubelet's crash-loop back-off settings the schedule was computed with
            (``None``: not known, the default).
    """

    restarts: tuple[Restart, ...]
    stops: tuple[Stop, ...] = ()
    continues: bool = True
    backoff: CrashLoopBackOff | None = None

    @overload
    def __getitem__(self, index: int) -> Window: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Window]: ...

    def __getitem__(self, index: int | slice) -> Window | Sequence[Window]:
        if isinstance(index, slice):
            return [r.started for r in self.restarts[index]]
        return self.restarts[index].started

    def __len__(self) -> int:
        return len(self.restarts)

    def __iter__(self) -> Iterator[Window]:
        return (r.started for r in self.restarts)

    @property
    def certain(self) -> int:
        """How many leading restarts happen in every timing."""
        return sum(1 for r in self.restarts if r.certain)

    @property
    def stop_counts(self) -> frozenset[int]:
        """The restart counts at which the container may stay terminated."""
        return frozenset(s.restarts for s in self.stops)

    @property
    def always_stops(self) -> bool:
        """Whether the container stops for good within the horizon in every timing."""
        return not self.continues

    def given(self, waited: Sequence[bool]) -> Window | None:
        """The start window of restart ``len(waited)`` for one history of the kubelet's choices.

        After a restart that waited for a back-off, the requeue jitter decides whether the next
        kill lands in the doubled back-off, so one schedule holds several histories and
        ``schedule[k]`` is their hull. Once the restarts have happened, whether each waited
        (a ``CrashLoopBackOff`` between exit and start) is known, and this narrows the window to
        the timings that lead there.

        Args:
            waited: For restarts 1..k in order, whether each waited for a back-off.

        Returns:
            The window of restart k under that history; ``None`` if the kubelet's rules do not
            allow that history. The hull ``schedule[k - 1]`` when the histories were not kept.
        """
        k = len(waited)
        if not 1 <= k <= len(self.restarts):
            raise IndexError(f"the schedule has restarts 1..{len(self.restarts)}, not {k}")
        restart = self.restarts[k - 1]
        if restart.paths is None:
            return restart.started
        return restart.paths.get(tuple(bool(w) for w in waited))

    def shifted(self, by: Window | float) -> RestartSchedule:
        """The same schedule with every window moved by ``by`` (an interval: widens too)."""
        def move(w: Window) -> Window:
            return w + by

        restarts = tuple(
            replace(r, started=move(r.started), killed=move(r.killed),
                    paths=None if r.paths is None else {h: move(w) for h, w in r.paths.items()})
            for r in self.restarts)
        stops = tuple(replace(s, exited=move(s.exited)) for s in self.stops)
        return RestartSchedule(restarts=restarts, stops=stops, continues=self.continues)

    def __str__(self) -> str:
        parts = []
        for r in self.restarts:
            flag = {True: " after back-off", False: "", None: " (back-off depends)"}[r.backed_off]
            maybe = "" if r.certain else " if not stopped"
            parts.append(f"restart {r.number}: {r.started}{flag}{maybe}")
        for s in self.stops:
            parts.append(f"stops at {s.restarts} restarts ({s.reason}), exit {s.exited}")
        return "; ".join(parts)
