"""Timeline records, each one thing the cluster did, and the small functions that read them.

A :class:`Record` comes from one of :data:`SOURCES` (an Event, a pod status transition, an
EndpointSlice membership change, a custom resource's condition, a log line) or marks a gap in the
recording (:data:`GAP_KIND`). Beside it: which pods a name or prefix selects (:func:`pod_matches`),
a record in one line (:func:`describe`), a gap's span (:func:`gap_span`), and the time-like
arguments the helpers accept, where a record stands for its time (:func:`as_time`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pytest_probes.apitime import format_time, parse_time

SOURCES = ("event", "pod", "endpoints", "custom", "log")
"""The record sources: the three every recording has (:data:`RECORDED_SOURCES`), ``custom``
(custom resources' ``status.conditions``, watched on request) and ``log`` (containers' log lines,
for pods that ask for them)."""

RECORDED_SOURCES = ("event", "pod", "endpoints")
"""The sources a recorder always watches."""

GAP_KIND = "WatchGap"
"""The kind of the record a recorder adds when its watch of one source had a gap: from the
last moment its stream was known complete to the list that resumed it (``data``: ``from``,
``to`` in RFC 3339, ``reason``). Changes inside the gap are seen only as their net result."""


@dataclass(frozen=True)
class Record:
    """One thing the cluster did.

    Attributes:
        time: The server timestamp (aware UTC).
        source: One of :data:`SOURCES`.
        kind: For events the reason (``Unhealthy``, ``Killing``, ``Started`` ...); for pod
            status a transition (``ContainerStarted``, ``ContainerRestarted``,
            ``ContainerTerminated``, ``ContainerWaiting``, ``ContainerReady``,
            ``ContainerNotReady``, ``ContainerStartupPassed``, ``ContainerNotStarted``,
            ``PodReady``, ``PodNotReady``, ``PodPhase``, ``PodAdded``, ``PodDeleted``,
            ``PodCondition``); for endpoints ``EndpointAdded`` /
            ``EndpointRemoved`` (the address entered/left the Service's ready set) or
            ``EndpointChanged`` (other conditions changed); for custom resources ``Condition``
            (one of its ``status.conditions`` changed); for logs ``LogLine``; for any source
            ``WatchGap`` (:data:`GAP_KIND`: the recording of that source had a gap).
        namespace: The namespace.
        pod: The pod the record is about, if any; for a custom resource ``Kind/name``.
        container: The container the record is about, if any.
        message: A human-readable message (the event message, or a summary).
        data: Source-specific details (counts, exit codes, addresses ...), JSON-serialisable.
        received: Local monotonic seconds when the record was received (0.0 if unknown).
        received_wall: Local wall-clock seconds (epoch) when received (0.0 if unknown).
        seq: Arrival order within the timeline.
    """

    time: datetime
    source: str
    kind: str
    namespace: str
    pod: str | None = None
    container: str | None = None
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    received: float = 0.0
    received_wall: float = 0.0
    seq: int = 0

    @property
    def reason(self) -> str:
        """The event reason or transition name (same as ``kind``)."""
        return self.kind

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-serialisable dict."""
        out: dict[str, Any] = {
            "time": format_time(self.time),
            "source": self.source,
            "kind": self.kind,
            "namespace": self.namespace,
        }
        if self.pod is not None:
            out["pod"] = self.pod
        if self.container is not None:
            out["container"] = self.container
        if self.message:
            out["message"] = self.message
        if self.data:
            out["data"] = dict(self.data)
        out["received"] = round(self.received, 6)
        out["received_wall"] = round(self.received_wall, 6)
        out["seq"] = self.seq
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Record:
        """Build a record from :meth:`to_json` output."""
        when = parse_time(obj["time"])
        if when is None:
            raise ValueError("record has no time")
        return cls(
            time=when,
            source=str(obj["source"]),
            kind=str(obj["kind"]),
            namespace=str(obj.get("namespace", "")),
            pod=obj.get("pod"),
            container=obj.get("container"),
            message=str(obj.get("message", "")),
            data=dict(obj.get("data") or {}),
            received=float(obj.get("received", 0.0)),
            received_wall=float(obj.get("received_wall", 0.0)),
            seq=int(obj.get("seq", 0)),
        )


def pod_matches(name: str | None, selector: str) -> bool:
    """Return whether a pod name matches a selector: the exact name, or a ``prefix-`` of it.

    ``app-target`` matches ``app-target`` and ``app-target-68b8b88575-86gg8`` but not
    ``app-targetx``.
    """
    if name is None:
        return False
    if name == selector:
        return True
    prefix = selector if selector.endswith("-") else selector + "-"
    return name.startswith(prefix)


def gap_span(rec: Record) -> tuple[datetime, datetime]:
    """The ``from`` and ``to`` of a ``WatchGap`` record (server time)."""
    begin = parse_time(rec.data.get("from")) or rec.time
    return begin, parse_time(rec.data.get("to")) or begin


def describe(rec: Record) -> str:
    """A one-line description of a record for tables and messages."""
    d = rec.data
    if rec.kind == GAP_KIND:
        begin, finish = gap_span(rec)
        return (f"{GAP_KIND}: no {rec.source} records {begin:%H:%M:%S}–{finish:%H:%M:%S} "
                f"({(finish - begin).total_seconds():.0f} s, {d.get('reason', '?')}); only the "
                "net change in it is known")
    where = f" [{rec.container}]" if rec.container else ""
    if rec.source == "event":
        count = d.get("count")
        suffix = f" (x{count})" if count and count != 1 else ""
        return f"{rec.kind}{where}{suffix}: {rec.message}"
    if rec.source == "endpoints":
        return f"{rec.kind} {d.get('address', '?')} ({d.get('service', '?')})"
    return f"{rec.kind}{where}" + (f": {rec.message}" if rec.message else "")


TIME_TYPES = ("an epoch number (what time.time() returns)", "an aware datetime",
              "an RFC 3339 string", "a Record")
"""What every time-like argument (``since=``, ``until=``, ``after=``, ``at=``) accepts."""


def as_time(value: object, *, argument: str = "time") -> datetime:
    """Read any of :data:`TIME_TYPES` as an aware UTC datetime.

    Raises:
        TypeError: ``value`` is none of them (the message lists them).
        ValueError: A string that is not RFC 3339, or a number that is not a finite time.
    """
    accepted = ", ".join(TIME_TYPES)
    if isinstance(value, Record):
        return value.time
    if isinstance(value, datetime):
        return parse_time(value)  # type: ignore[return-value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < 1e11:
            raise ValueError(f"{argument}={value!r} is not a time; pass {accepted}")
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str) and value.strip():
        try:
            return parse_time(value)  # type: ignore[return-value]
        except ValueError:
            raise ValueError(f"{argument}={value!r} is not an RFC 3339 time "
                             f"(2026-12-04T20:16:39Z); pass {accepted}") from None
    raise TypeError(f"{argument}= takes {accepted}; got {type(value).__name__} {value!r}")


def seconds_between(a: datetime | Record, b: datetime | Record) -> float:
    """Seconds from ``a`` to ``b`` (negative if ``b`` is earlier)."""
    ta = a.time if isinstance(a, Record) else a
    tb = b.time if isinstance(b, Record) else b
    return (tb - ta).total_seconds()
