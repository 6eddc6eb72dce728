"""Time windows: the closed intervals of seconds every timing answer is given in.

A :class:`Window` is ``[earliest, latest]``; windows add as interval sums, so a chain of delays
(a probe tick, the kubelet's reaction, a kill) adds up to the window of its end. A timing question
the spec cannot answer raises :class:`TimingError`. What ``earliest`` and ``latest`` promise is
said in :mod:`pytest_probes.timing`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_probes.errors import ProbesError

_EPS = 1e-9


class TimingError(ProbesError, ValueError):
    """A timing question has no answer for this spec (no such probe, impossible inputs).

    Attributes:
        container: The container the question was about, if known.
    """

    def __init__(self, message: str, *, container: str | None = None) -> None:
        self.container = container
        super().__init__(message)


def _fmt(x: float) -> str:
    r = round(x, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


@dataclass(frozen=True)
class Window:
    """A closed time window ``[earliest, latest]`` in seconds.

    Attributes:
        earliest: The earliest possible time.
        latest: The latest possible time.
    """

    earliest: float
    latest: float

    def __post_init__(self) -> None:
        if math.isnan(self.earliest) or math.isnan(self.latest):
            raise TimingError(f"window bounds must be numbers, got {self.earliest}, {self.latest}")
        if self.latest < self.earliest - _EPS:
            raise TimingError(
                f"window ends before it starts: {self.earliest:g} > {self.latest:g}; "
                "swap the bounds"
            )

    @classmethod
    def at(cls, t: float) -> Window:
        """Return the window holding exactly ``t``."""
        return cls(t, t)

    @property
    def width(self) -> float:
        """The length of the window in seconds."""
        return self.latest - self.earliest

    def contains(self, t: float, slack: float = 0.0) -> bool:
        """Tell whether ``t`` lies in the window widened by ``slack`` on both ends."""
        return self.earliest - slack <= t <= self.latest + slack

    def shifted(self, dt: float) -> Window:
        """Return the window moved by ``dt`` seconds."""
        return Window(self.earliest + dt, self.latest + dt)

    def widened(self, by: float) -> Window:
        """Return the window with ``by`` seconds added to ``latest``."""
        return Window(self.earliest, self.latest + by)

    def hull(self, other: Window) -> Window:
        """Return the smallest window holding both windows."""
        return Window(min(self.earliest, other.earliest), max(self.latest, other.latest))

    def __add__(self, other: Window | float) -> Window:
        """Add a window (interval sum) or a number of seconds."""
        if isinstance(other, Window):
            return Window(self.earliest + other.earliest, self.latest + other.latest)
        return self.shifted(float(other))

    __radd__ = __add__

    def __str__(self) -> str:
        if self.width < 0.05:
            return f"{_fmt(self.earliest)} s"
        return f"{_fmt(self.earliest)}\u2013{_fmt(self.latest)} s"


def _sub(a: Window, b: Window) -> Window:
    """Interval difference: every ``x - y`` with ``x`` in ``a`` and ``y`` in ``b``."""
    return Window(a.earliest - b.latest, a.latest - b.earliest)


def _as_window(value: Window | float | int) -> Window:
    return value if isinstance(value, Window) else Window.at(float(value))
