"""The crash-loop back-off: its values, and a simulation of the kubelet's back-off state machine.

``doBackOff`` (``kuberuntime_manager.go``) and ``flowcontrol.Backoff`` (``Next``,
``IsInBackOffSince``, ``hasExpired``, ``GC``), with the pod worker's requeue: the rules and their
sources are in ``docs/timing-rules.md``, "Restarts and back-off". :class:`_Simulation` follows
every branch the kubelet's timing allows, over classes of timings, and yields a
:class:`~pytest_probes.timing.schedule.RestartSchedule`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from pytest_probes.timing.kubelet import (
    BACKOFF_STABLE_RESET,
    CRASHLOOP_INITIAL_BACKOFF,
    CRASHLOOP_MAX_BACKOFF,
    HOUSEKEEPING_PERIOD,
)
from pytest_probes.timing.schedule import Restart, RestartSchedule, Stop
from pytest_probes.timing.window import _EPS, TimingError, Window, _sub

logger = logging.getLogger(__name__)

_MAX_CLASSES = 4096
"""Timing classes per restart above which the restart simulation stops keeping histories apart."""


@dataclass(frozen=True)
class CrashLoopBackOff:
    """The kubelet's crash-loop back-off settings: the first value and the cap.

    ``kubelet.go`` ``newCrashLoopBackOff`` picks them once at start: 10 s and 300 s by default;
    1 s and 60 s with the ``ReduceDefaultCrashLoopBackOffDecay`` gate; and with
    ``KubeletCrashLoopBackOffMax`` (beta and on from 1.35) the cap is the KubeletConfiguration's
    ``crashLoopBackOff.maxContainerRestartPeriod`` (1 s to 300 s, defaulted to 300 s), the first
    value lowered to the cap if it is above it. The back-off starts at ``initial`` and doubles up
    to ``cap`` (``flowcontrol.Backoff`` ``Next``); it resets after 10 minutes
    (:data:`BACKOFF_STABLE_RESET`) whatever the cap. Which settings a kubelet of a given version
    and configuration has: :func:`pytest_probes.kubelet_versions.crashloop_backoff`.

    Attributes:
        initial: The first back-off, in seconds.
        cap: The largest back-off, in seconds.
    """

    initial: float = CRASHLOOP_INITIAL_BACKOFF
    cap: float = CRASHLOOP_MAX_BACKOFF

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise TimingError(f"crash-loop back-off: need 0 < initial <= cap, got initial "
                              f"{self.initial:g} s, cap {self.cap:g} s")

    def delays(self, n: int) -> list[float]:
        """The first ``n`` back-off values (:func:`backoff_delays`)."""
        return backoff_delays(n, initial=self.initial, cap=self.cap)

    def next(self, entry: float | None) -> float:
        """The value after ``entry`` (``None``: no entry yet, or one that was reset)."""
        return self.initial if entry is None else min(entry * 2, self.cap)

    def __str__(self) -> str:
        return f"{self.initial:g} s doubling to {self.cap:g} s"


DEFAULT_CRASHLOOP_BACKOFF = CrashLoopBackOff()
"""The back-off of a kubelet with no back-off gate or setting of its own: 10 s doubling to 300 s."""


def backoff_delays(
    n: int, *, initial: float = CRASHLOOP_INITIAL_BACKOFF, cap: float = CRASHLOOP_MAX_BACKOFF
) -> list[float]:
    """The first ``n`` crash-loop back-off values: ``initial`` doubling up to ``cap``.

    ``backoff.go`` ``Next``: the first call (or the first after a reset) sets ``initial``; each
    later call doubles, capped at ``cap``. Which restart waits for which value depends on the
    kill/crash history; see :meth:`~pytest_probes.timing.ContainerTiming.restart_schedule`.
    """
    if n < 0:
        raise TimingError(f"n must be >= 0, got {n}")
    return [min(initial * 2**i, cap) for i in range(n)]


@dataclass(frozen=True)
class _Grid:
    """How one probe paces a kill: its ticks and the failures needed, relative to a start."""

    eligible: Window  # earliest/latest time after start from which a failing probe counts
    period: float
    needed: int
    response: Window  # probe start -> result
    # How much earlier than ``eligible.earliest`` the first instance's first counted tick can be:
    # its request may meet the change after the tick (container.py ``_first_tick_to_see``).
    early: float = 0.0


@dataclass(frozen=True)
class _Cycle:
    """One instance's life, relative to its anchor (a probe tick in grid mode, else its start)."""

    mode: Literal["grid", "fixed", "crash"]
    kill: Window      # anchor -> Killing event (crash: -> exit)
    exit: Window      # anchor -> exit
    restart: Window   # restart decision -> Started (sigma; strictly > 0)
    detect: Window    # crash: exit -> first sync that sees it
    wait_slack: Callable[[float], float]  # back-off -> its expiry to the restart decision, at most
    grid: _Grid | None = None


@dataclass(frozen=True)
class _State:
    """One class of timings for the instance currently running."""

    count: int                      # restarts so far = index of this instance
    entry: float | None             # back-off entry (seconds), None if there is none
    anchor: Window                  # absolute anchor of this instance
    start: Window                   # absolute start of this instance
    since_prev_exit: Window | None  # anchor - exit of the previous instance
    since_update: Window | None     # anchor - lastUpdate of the entry
    step: float | None              # grid: anchor - previous anchor (a multiple of the period)
    waited: bool | None             # how this instance was started (None: the first)
    backoff: float | None           # the back-off it waited for
    history: tuple[bool, ...] | None = ()  # waited, per restart so far; None: not kept

    def key(self) -> tuple[object, ...]:
        return (self.count, self.entry, self.step, self.waited, self.backoff, self.history)

    def merge(self, other: _State) -> _State:
        def hull(a: Window | None, b: Window | None) -> Window | None:
            if a is None or b is None:
                return a if b is None else b
            return a.hull(b)

        return _State(
            count=self.count, entry=self.entry, anchor=self.anchor.hull(other.anchor),
            start=self.start.hull(other.start),
            since_prev_exit=hull(self.since_prev_exit, other.since_prev_exit),
            since_update=hull(self.since_update, other.since_update),
            step=self.step, waited=self.waited, backoff=self.backoff, history=self.history,
        )


@dataclass(frozen=True)
class _Decision:
    """What the kubelet does when an instance exits: restart after ``wait``, or stop."""

    wait: Window | None    # exit -> restart decision; None: no restart
    entry: float | None    # back-off entry after the decision
    updated: bool          # Next() was called (lastUpdate := decision time)
    backed_off: bool
    backoff: float | None
    reason: str = ""
    exit: Window | None = None  # anchor -> exit of the instance, where this decision is possible


def _merged(states: Iterable[_State]) -> list[_State]:
    """One state per class (:meth:`_State.key`), the hull of those that share it."""
    out: dict[tuple[object, ...], _State] = {}
    for st in states:
        k = st.key()
        out[k] = st if k not in out else out[k].merge(st)
    return list(out.values())


def _clip(w: Window, *, lo: float = -math.inf, hi: float = math.inf) -> Window:
    """``w`` cut to ``[lo, hi]``.

    A point at the nearer end when they do not overlap (they can miss by :data:`_EPS`, the
    margin :func:`_branches` decides with).
    """
    earliest = min(max(w.earliest, lo), w.latest)
    return Window(earliest, max(earliest, min(w.latest, hi)))


def _branches(interval: Window, threshold: float) -> tuple[bool, ...]:
    """Possible truth values of ``x < threshold`` for ``x`` in ``interval``."""
    out: list[bool] = []
    if interval.earliest < threshold - _EPS:
        out.append(True)
    if interval.latest >= threshold - _EPS:
        out.append(False)
    return tuple(out)


class _Simulation:
    """The back-off state machine over classes of timings (see ``restart_schedule``)."""

    def __init__(self, cycle: _Cycle, *, policy: str, exit_code: int,
                 backoff: CrashLoopBackOff = DEFAULT_CRASHLOOP_BACKOFF) -> None:
        self.cycle = cycle
        self.backoff = backoff
        self.policy = policy
        self.exit_code = exit_code
        self.stop_after_backoff = policy == "Never" or (policy == "OnFailure" and exit_code == 0)

    def _double(self, entry: float | None) -> float:
        return self.backoff.next(entry)

    def _alive(self, age: Window) -> tuple[bool, ...]:
        """Whether the entry may still exist when ``now - lastUpdate`` is ``age`` (GC)."""
        out: list[bool] = []
        if age.earliest <= BACKOFF_STABLE_RESET + HOUSEKEEPING_PERIOD:
            out.append(True)
        if age.latest > BACKOFF_STABLE_RESET:
            out.append(False)
        return tuple(out)

    def _expired(self, delta: Window) -> tuple[bool, ...]:
        """Possible values of ``hasExpired`` for ``eventTime - lastUpdate`` in ``delta``."""
        return tuple(not v for v in _branches(delta, BACKOFF_STABLE_RESET + _EPS))

    def _wait(self, state: _State, entry: float, age_at_exit: Window | None,
              exit_floor: float) -> list[_Decision]:
        """Restart decisions while in back-off ``entry``, measured from the exit."""
        slack = self.cycle.wait_slack(entry)
        out: list[_Decision] = []
        if age_at_exit is None:
            gc = Window(math.inf, math.inf)
        else:
            gc = Window(BACKOFF_STABLE_RESET - age_at_exit.latest,
                        BACKOFF_STABLE_RESET - age_at_exit.earliest + HOUSEKEEPING_PERIOD)
        if gc.latest >= entry:
            lo = max(entry, exit_floor)
            wait = Window(lo, max(lo, entry) + slack)
            expired = (False,) if age_at_exit is None else self._expired(age_at_exit)
            for exp in expired:
                new = self.backoff.initial if exp else self._double(entry)
                out.append(_Decision(wait, new, True, True, entry))
        if gc.earliest < entry:
            lo = max(gc.earliest, exit_floor, 0.0)
            wait = Window(lo, max(lo, min(gc.latest, entry)) + slack)
            out.append(_Decision(wait, self.backoff.initial, True, True, entry))
        return out

    def decide(self, state: _State) -> list[_Decision]:
        """The kubelet's choices when this instance is killed (or crashes)."""
        cyc = self.cycle
        if self.policy == "Never":
            return [_Decision(None, state.entry, False, False, None,
                              "restartPolicy Never: a dead container is never restarted")]
        if cyc.mode == "crash":
            return self._decide_crash(state)
        if state.since_prev_exit is None:
            # First kill: the pre-kill pod status holds no exited instance, doBackOff returns
            # early and Next() is not called.
            return [_Decision(Window.at(0.0), state.entry, False, False, None)]
        out: list[_Decision] = []
        age = cyc.exit + state.since_update if state.since_update is not None else None
        alive = self._alive(age) if age is not None and state.entry is not None else (False,)
        for is_alive in alive:
            if not is_alive:
                out.append(_Decision(Window.at(0.0), self.backoff.initial, True, False, None))
                continue
            assert state.entry is not None and state.since_update is not None and age is not None
            # hasExpired(finishedAt(previous), lastUpdate)
            for exp in self._expired(_sub(state.since_update, state.since_prev_exit)):
                if exp:
                    out.append(_Decision(Window.at(0.0), self.backoff.initial, True, False,
                                         None))
                    continue
                spe = state.since_prev_exit
                gap = cyc.exit + spe  # now - finishedAt(previous instance)
                for in_backoff in _branches(gap, state.entry):
                    # Only the exits that take this branch (the same exit places the restart).
                    if not in_backoff:
                        ex = _clip(cyc.exit, lo=state.entry - spe.latest)
                        out.append(_Decision(Window.at(0.0), self._double(state.entry), True,
                                             False, None, exit=ex))
                        continue
                    ex = _clip(cyc.exit, hi=state.entry - spe.earliest)
                    if self.stop_after_backoff:
                        out.append(_Decision(
                            None, state.entry, False, True, state.entry,
                            "restartPolicy OnFailure: the kill landed in back-off and the "
                            f"container exited {self.exit_code}, so it is never started again",
                            exit=ex,
                        ))
                    else:
                        out.extend(replace(d, exit=ex)
                                   for d in self._wait(state, state.entry, age, 0.0))
        return out

    def _decide_crash(self, state: _State) -> list[_Decision]:
        cyc = self.cycle
        if self.policy == "OnFailure" and self.exit_code == 0:
            return [_Decision(None, state.entry, False, False, None,
                              "restartPolicy OnFailure: the container exited 0")]
        detect = cyc.detect
        if state.entry is None or state.since_update is None:
            return [_Decision(detect, self.backoff.initial, True, False, None)]
        out: list[_Decision] = []
        age_exit = cyc.exit + state.since_update  # finishedAt - lastUpdate
        for is_alive in self._alive(age_exit + detect):
            if not is_alive:
                out.append(_Decision(detect, self.backoff.initial, True, False, None))
                continue
            for exp in self._expired(age_exit):
                if exp:
                    out.append(_Decision(detect, self.backoff.initial, True, False, None))
                    continue
                for in_backoff in _branches(detect, state.entry):
                    if not in_backoff:
                        # Seen only once the back-off had passed (IsInBackOffSince is false
                        # from finishedAt + backoff on): possible with a back-off shorter than
                        # the relist, as the reduced decay's 1 s.
                        out.append(_Decision(_clip(detect, lo=state.entry),
                                             self._double(state.entry), True, False, None))
                    else:
                        out.extend(self._wait(state, state.entry, age_exit, detect.earliest))
        return out

    def place(self, state: _State, d: _Decision) -> list[_State]:
        """The next instance's states after restart decision ``d``."""
        cyc = self.cycle
        assert d.wait is not None
        exit_ = d.exit or cyc.exit
        decision = exit_ + d.wait              # decision - anchor
        history = None if state.history is None else (*state.history, d.backed_off)
        start = decision + cyc.restart         # new start - anchor (lower end is open)
        entry = d.entry
        out: list[_State] = []
        if cyc.mode == "grid":
            grid = cyc.grid
            assert grid is not None
            p, a = grid.period, grid.eligible
            # A later instance's first counted tick is taken at or after ``a`` (no ``early``): a
            # tick before it could only meet the change with a request delayed past the kill,
            # the exit and the new start after the tick before. Seen once at 24 workers; left
            # out as docs/timing-rules.md ("Probe workers") says.
            c_min = math.floor((start.earliest + a.earliest) / p + _EPS) + 1
            c_max = max(c_min, math.ceil((start.latest + a.latest) / p - _EPS))
            for c in range(c_min, c_max + 1):
                # ceil((start + a) / p) == c  <=>  (c - 1) p < start + a <= c p
                lo = max(start.earliest, (c - 1) * p - a.latest)
                hi = min(start.latest, c * p - a.earliest)
                if hi < lo - _EPS:
                    continue
                step = p * (c + grid.needed - 1)
                if d.updated:
                    since_update: Window | None = Window.at(step) + Window(
                        -decision.latest, -decision.earliest)
                elif state.since_update is not None and entry is not None:
                    since_update = state.since_update.shifted(step)
                else:
                    since_update = None
                out.append(_State(
                    count=state.count + 1, entry=entry,
                    anchor=state.anchor.shifted(step),
                    start=state.anchor + Window(lo, max(lo, hi)),
                    since_prev_exit=Window(step - exit_.latest, step - exit_.earliest),
                    since_update=since_update, step=step, waited=d.backed_off,
                    backoff=d.backoff, history=history,
                ))
            return out
        if d.updated:
            since_update = cyc.restart
        elif state.since_update is not None and entry is not None:
            since_update = state.since_update + start
        else:
            since_update = None
        new_start = state.anchor + start
        return [_State(
            count=state.count + 1, entry=entry, anchor=new_start, start=new_start,
            since_prev_exit=d.wait + cyc.restart, since_update=since_update, step=None,
            waited=d.backed_off, backoff=d.backoff, history=history,
        )]

    def first(self) -> _State:
        cyc = self.cycle
        if cyc.mode == "grid":
            grid = cyc.grid
            assert grid is not None
            anchor = Window(grid.eligible.earliest - grid.early + (grid.needed - 1) * grid.period,
                            grid.eligible.latest + grid.needed * grid.period)
        else:
            anchor = Window.at(0.0)
        return _State(count=0, entry=None, anchor=anchor, start=Window.at(0.0),
                      since_prev_exit=None, since_update=None, step=None, waited=None,
                      backoff=None)

    def run(self, n: int) -> RestartSchedule:
        states = [self.first()]
        starts: dict[int, list[_State]] = {}
        killed: dict[int, Window] = {}
        stops: dict[int, tuple[Window, str]] = {}
        stopped_before: set[int] = set()
        for j in range(n):
            children: list[_State] = []
            for st in states:
                kill = st.anchor + self.cycle.kill
                for d in self.decide(st):
                    if d.wait is None:
                        exit_ = st.anchor + (d.exit or self.cycle.exit)
                        old = stops.get(j)
                        stops[j] = (exit_ if old is None else old[0].hull(exit_), d.reason)
                        continue
                    killed[j + 1] = kill if j + 1 not in killed else killed[j + 1].hull(kill)
                    children.extend(self.place(st, d))
            if j in stops:
                stopped_before.add(j + 1)
            states = _merged(children)
            if len(states) > _MAX_CLASSES and states[0].history is not None:
                # Every waited-or-not history doubles the classes: past this many, keep only
                # the hull per class (RestartSchedule.given falls back to it).
                states = _merged([replace(st, history=None) for st in states])
            if not states:
                break
            starts[j + 1] = states
            logger.debug("restart %d: %d timing classes", j + 1, len(states))
        restarts: list[Restart] = []
        for number, group in sorted(starts.items()):
            window = group[0].start
            for st in group[1:]:
                window = window.hull(st.start)
            flags = {st.waited for st in group}
            values = [st.backoff for st in group if st.backoff is not None]
            paths: dict[tuple[bool, ...], Window] | None = None
            if all(st.history is not None for st in group):
                paths = {}
                for st in group:
                    h = st.history or ()
                    paths[h] = st.start if h not in paths else paths[h].hull(st.start)
            restarts.append(Restart(
                number=number,
                started=window,
                killed=killed[number],
                backed_off=flags.pop() if len(flags) == 1 else None,
                backoff=Window(min(values), max(values)) if values else None,
                certain=not any(k <= number for k in stopped_before),
                paths=paths,
            ))
        stop_list = tuple(Stop(restarts=j, exited=w, reason=why)
                          for j, (w, why) in sorted(stops.items()))
        return RestartSchedule(restarts=tuple(restarts), stops=stop_list,
                               continues=bool(states), backoff=self.backoff)

