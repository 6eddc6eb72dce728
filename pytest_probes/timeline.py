"""The timeline: what the cluster did, as records in time order.

A :class:`Timeline` holds :class:`Record` objects from three sources — Events, pod status
transitions and EndpointSlice membership — merged in server-time order.  A *live* timeline grows
while a recorder feeds it and lets waiters block until a condition holds; a timeline loaded from a
file is *frozen* and answers at once.

Each record keeps the server timestamp (``time``; the API serialises these to whole seconds) and the
local monotonic time it was received (``received``), plus the local wall-clock time of reception
(``received_wall``), which lets a waiter map server time onto the local clock.

This module holds :class:`Timeline`; what the assertion helpers measured on it is kept apart, in
their context (:mod:`pytest_probes.assertions.context`). The pieces a timeline is made of have
modules of their own, and their names import from here as well:
:mod:`pytest_probes.records` (:class:`Record`, :func:`pod_matches`, :func:`describe`,
:func:`as_time`), :mod:`pytest_probes.apitime` (:func:`parse_time`, :func:`format_time`) and
:mod:`pytest_probes.table` (the Markdown table).
"""

from __future__ import annotations

import json
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pytest_probes.apitime import format_time, parse_time, plus
from pytest_probes.errors import ProbesError, ProbesTimeoutError
from pytest_probes.records import (
    GAP_KIND,
    RECORDED_SOURCES,
    SOURCES,
    TIME_TYPES,
    Record,
    as_time,
    describe,
    gap_span,
    pod_matches,
    seconds_between,
)
from pytest_probes.table import render_markdown
from pytest_probes.timing import EVENT_WRITER_RETRY_SPAN

__all__ = [
    "EVENT_WRITER_RETRY_SPAN",
    "FORMAT_VERSION",
    "GAP_KIND",
    "RECORDED_SOURCES",
    "SOURCES",
    "TIME_TYPES",
    "Record",
    "Timeline",
    "TimelineFrozenError",
    "as_time",
    "describe",
    "format_time",
    "gap_span",
    "parse_time",
    "plus",
    "pod_matches",
    "render_markdown",
    "seconds_between",
]

FORMAT_VERSION = 1

T = TypeVar("T")


class TimelineFrozenError(ProbesError):
    """A record was added to a frozen (loaded or closed) timeline."""


class Timeline:
    """Records of one namespace in server-time order; live (growing) or frozen.

    Args:
        namespace: The namespace the records are about.
        records: Initial records.
        live: Whether a recorder will keep adding records.
        started: When recording started (server time); defaults to the first record's time.
        clock: Local monotonic clock, injectable for tests.
        wall: Local wall clock (epoch seconds), injectable for tests.
        default_timeout: Seconds a helper waits for something that has no window of its own
            (such as the event an endpoint change is measured from).
    """

    def __init__(
        self,
        namespace: str,
        records: Iterable[Record] = (),
        *,
        live: bool = False,
        started: datetime | None = None,
        clock: Callable[[], float] = _time.monotonic,
        wall: Callable[[], float] = _time.time,
        default_timeout: float = 300.0,
    ) -> None:
        self.namespace = namespace
        self.default_timeout = default_timeout
        self._records: list[Record] = sorted(records, key=_order_key)
        self._live = live
        self._cond = threading.Condition()
        self._clock = clock
        self._wall = wall
        self._error: BaseException | None = None
        if started is None:
            if self._records:
                started = self._records[0].time
            elif live:
                started = datetime.fromtimestamp(wall(), UTC)
        self.started = started
        self.started_monotonic = clock() if live else 0.0
        self.last_wait_started = 0.0
        self._custom_watcher: Callable[[str, str, str], None] | None = None

    # ----------------------------------------------------------------- growing

    @property
    def live(self) -> bool:
        """Whether the timeline may still grow."""
        return self._live

    @property
    def clock(self) -> Callable[[], float]:
        """The local monotonic clock of this timeline."""
        return self._clock

    def append(self, record: Record) -> None:
        """Add one record (live timelines only) and wake waiters."""
        self.extend([record])

    def extend(self, records: Iterable[Record]) -> None:
        """Add records (live timelines only) and wake waiters.

        Raises:
            TimelineFrozenError: The timeline is frozen.
        """
        with self._cond:
            if not self._live:
                raise TimelineFrozenError(
                    f"timeline of namespace {self.namespace} is frozen (loaded from a file or "
                    "closed); records cannot be added"
                )
            for rec in records:
                if rec.seq == 0:
                    rec = replace(rec, seq=len(self._records) + 1)
                self._insert(rec)
            self._cond.notify_all()

    def _insert(self, rec: Record) -> None:
        key = _order_key(rec)
        i = len(self._records)
        while i > 0 and _order_key(self._records[i - 1]) > key:
            i -= 1
        self._records.insert(i, rec)

    def fail(self, error: BaseException) -> None:
        """Record that the recorder failed; waiters raise it instead of waiting on."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def raise_if_failed(self) -> None:
        """Raise the recorder's failure, if it had one."""
        with self._cond:
            if self._error is not None:
                raise self._error

    def set_custom_watcher(self, watcher: Callable[[str, str, str], None]) -> None:
        """Give :meth:`watch` its recorder (the recorder filling this timeline calls it)."""
        self._custom_watcher = watcher

    def watch(self, group: str, version: str, plural: str) -> None:
        """Also record the ``status.conditions`` of the namespace's custom resources ``plural``.

        Each change becomes a ``Condition`` record with subject ``Kind/name``, which
        ``assert_condition_within(tl, "Kind/name", "Ready", ...)`` waits on. Returns once the
        resources have been listed.

        Raises:
            ProbesError: The timeline has no recorder (it was loaded or replayed).
            WatchError: The resources could not be listed.
        """
        if self._custom_watcher is None:
            raise ProbesError(
                f"the timeline of {self.namespace} has no recorder to watch {plural}.{group} "
                "with; watch on the live timeline (the probes_timeline fixture)"
            )
        self._custom_watcher(group, version, plural)

    def close(self) -> None:
        """Stop growing: the timeline becomes frozen and waiters are woken."""
        with self._cond:
            self._live = False
            self._cond.notify_all()

    def notify(self) -> None:
        """Wake waiters without adding records (e.g. to let them re-check a deadline)."""
        with self._cond:
            self._cond.notify_all()

    # ----------------------------------------------------------------- reading

    @property
    def records(self) -> tuple[Record, ...]:
        """A snapshot of all records in order."""
        with self._cond:
            return tuple(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        with self._cond:
            return len(self._records)

    def pods(self) -> list[str]:
        """Names of the pods that appear in the timeline, in order of first appearance."""
        seen: dict[str, None] = {}
        for rec in self.records:
            if rec.pod:
                seen.setdefault(rec.pod, None)
        return list(seen)

    def query(
        self,
        *,
        pod: str | None = None,
        container: str | None = None,
        source: str | None = None,
        kind: str | Sequence[str] | None = None,
        since: datetime | Record | None = None,
        until: datetime | Record | None = None,
        message: str | None = None,
        where: Callable[[Record], bool] | None = None,
    ) -> list[Record]:
        """Return the records matching every given filter, in order.

        Args:
            pod: Pod name or prefix (see :func:`pod_matches`).
            container: Container name.
            source: ``event``, ``pod`` or ``endpoints``.
            kind: Event reason or transition name, or several.
            since: Only records at or after this server time (or this record's time).
            until: Only records at or before this server time (or this record's time).
            message: Only records whose message contains this text.
            where: Any further predicate.
        """
        if source is not None and source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
        kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else None
        lo = _as_time(since, "since")
        hi = _as_time(until, "until")
        out = []
        for rec in self.records:
            if pod is not None and not pod_matches(rec.pod, pod):
                continue
            if container is not None and rec.container != container:
                continue
            if source is not None and rec.source != source:
                continue
            if kinds is not None and rec.kind not in kinds:
                continue
            if lo is not None and rec.time < lo:
                continue
            if hi is not None and rec.time > hi:
                continue
            if message is not None and message not in rec.message:
                continue
            if where is not None and not where(rec):
                continue
            out.append(rec)
        return out

    def all(self, **filters: Any) -> list[Record]:
        """Same as :meth:`query`."""
        return self.query(**filters)

    def first(self, **filters: Any) -> Record | None:
        """The first record matching :meth:`query` filters, or ``None``."""
        found = self.query(**filters)
        return found[0] if found else None

    def wait_first(self, *, timeout: float | None = None, **filters: Any) -> Record:
        """The first record matching :meth:`query` filters, waiting for it on a live timeline.

        Use it after an action whose effect the watch has not delivered yet (a deploy that just
        returned, say). Waits at most ``timeout`` seconds (``default_timeout`` if omitted).

        Raises:
            ProbesTimeoutError: No such record arrived in time (or the timeline is frozen).
        """
        limit = self.default_timeout if timeout is None else timeout
        deadline = self.server_now() + timedelta(seconds=limit)
        found = self.wait_for(lambda t: t.first(**filters), deadline=deadline)
        if found is None:
            wanted = ", ".join(f"{k}={v!r}" for k, v in filters.items())
            raise ProbesTimeoutError(
                f"namespace {self.namespace}: no record with {wanted} "
                f"{'arrived within ' + format(limit, 'g') + ' s' if self.live else 'recorded'}",
                what=wanted,
                timeout=limit,
            )
        return found

    def last(self, **filters: Any) -> Record | None:
        """The last record matching :meth:`query` filters, or ``None``."""
        found = self.query(**filters)
        return found[-1] if found else None

    # ----------------------------------------------------------------- time

    def server_offset(self) -> float:
        """Estimate local wall clock minus server clock, in seconds, from received records.

        Server timestamps are truncated to whole seconds and arrive after they are stamped, so
        ``received_wall - time`` over fresh records is at least the true offset; the minimum over
        all records is the tightest estimate. ``0.0`` when nothing was received live.
        """
        diffs = [r.received_wall - r.time.timestamp() for r in self.records if r.received_wall]
        return min(diffs) if diffs else 0.0

    def server_now(self) -> datetime:
        """The current server time, estimated from the local wall clock and the offset."""
        return self.server_time_at(self._wall())

    def server_time_at(self, wall: float) -> datetime:
        """The server time at local wall-clock time ``wall`` (epoch seconds), estimated."""
        return datetime.fromtimestamp(wall - max(self.server_offset(), 0.0), UTC)

    def gaps(
        self,
        *,
        sources: Iterable[str] = SOURCES,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Record]:
        """The ``WatchGap`` records of ``sources`` that overlap ``start``–``end`` (either open).

        A gap overlaps when it began before ``end`` and ended after ``start``.
        """
        wanted = set(sources)
        found = []
        for rec in self.query(kind=GAP_KIND):
            begin, finish = gap_span(rec)
            if rec.source in wanted and (end is None or begin < end) and (
                    start is None or finish > start):
                found.append(rec)
        return found

    # ----------------------------------------------------------------- waiting

    def kubelet_events_behind(self) -> Record | None:
        """A container start whose kubelet Event has not arrived, if any (``None``: caught up).

        The kubelet posts ``Started`` just after a container starts, and its Events go out one at
        a time in the order they were made. So while no Event from the kubelet stamped in or
        after the second of the newest ``ContainerStarted`` has arrived, the kubelet's Events
        lag its pod status: while many pods start at once they were seen 8 s behind. Events the
        kubelet drops (a pod past its burst of 25) make this last until a later Event comes.
        """
        starts = self.query(source="pod", kind="ContainerStarted")
        if not starts:
            return None
        newest = starts[-1]  # records are in server-time order
        caught_up = self.query(source="event", since=newest.time.replace(microsecond=0),
                               where=lambda r: r.data.get("component") == "kubelet")
        return None if caught_up else newest

    def wait_for(
        self,
        check: Callable[[Timeline], T | None],
        *,
        deadline: datetime,
        grace: float = 0.0,
        catch_up: float = 0.0,
        giveup: Callable[[Timeline], BaseException | None] | None = None,
    ) -> T | None:
        """Block until ``check`` returns a value, the server deadline passes, or recording stops.

        ``check`` runs once at once and again after every change to the timeline, so the wait is
        driven by the watch: it returns within one event's latency of the condition becoming
        observable. On a frozen timeline it runs exactly once.

        Args:
            check: Returns a non-``None`` value when the condition is decided.
            deadline: Server time after which the condition can no longer become true.
            grace: Seconds of local time to keep listening after the deadline for records stamped
                before it that are still in flight.
            catch_up: Up to this many more seconds, keep listening while the kubelet's Events
                are behind its pod status (:meth:`kubelet_events_behind`), so that a backlog in
                its event writer delays a failure instead of causing one.
            giveup: Returns an exception to raise at once when the cluster can no longer reach the
                condition (a diagnosis such as ImagePullBackOff), else ``None``.

        Returns:
            What ``check`` returned, or ``None`` if it never decided.
        """
        self.last_wait_started = self._clock()
        # Hand-written: it waits on the Condition the recorder notifies, not by sleeping.
        while True:
            with self._cond:
                generation = len(self._records)
                live = self._live
                error = self._error
            result = check(self)
            if result is not None:
                return result
            if giveup is not None:
                stop = giveup(self)
                if stop is not None:
                    raise stop
            if error is not None:
                raise error
            if not live:
                return None
            remaining = (deadline - self.server_now()).total_seconds() + grace
            if remaining <= 0:
                remaining += catch_up
                if remaining <= 0 or self.kubelet_events_behind() is None:
                    return None
            with self._cond:
                if len(self._records) == generation and self._live and self._error is None:
                    self._cond.wait(timeout=min(remaining, 1.0))

    # ----------------------------------------------------------------- output

    def to_markdown(
        self, records: Iterable[Record] | None = None, *, limit: int | None = None
    ) -> str:
        """Render records as a Markdown table: time, +seconds, source, pod, event, endpoints.

        The last column shows each Service's ready addresses after the row (as the table at the
        end of seed 000 does).

        Args:
            records: The records to show; all by default.
            limit: Show at most this many rows (the last ones), noting how many were left out.
        """
        return render_markdown(self, records, limit=limit)

    def save(self, path: str | Path) -> Path:
        """Write the timeline as JSON Lines (a header line, then one record per line)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(self._header()) + "\n")
            for rec in self.records:
                fh.write(json.dumps(rec.to_json(), sort_keys=True) + "\n")
        tmp.replace(target)
        return target

    def _header(self) -> dict[str, Any]:
        return {
            "pytest_probes_timeline": FORMAT_VERSION,
            "namespace": self.namespace,
            "started": format_time(self.started) if self.started else None,
        }

    @classmethod
    def load(cls, path: str | Path) -> Timeline:
        """Read a timeline written by :meth:`save`; the result is frozen.

        Raises:
            ProbesError: The file is missing or a line is not a record, naming file and line.
        """
        source = Path(path)
        try:
            lines = source.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ProbesError(f"cannot read timeline {source}: {err.strerror}") from err
        namespace = ""
        started: datetime | None = None
        records: list[Record] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if "pytest_probes_timeline" in obj:
                    namespace = str(obj.get("namespace") or "")
                    started = parse_time(obj.get("started"))
                    continue
                records.append(Record.from_json(obj))
            except (ValueError, KeyError, TypeError) as err:
                raise ProbesError(
                    f"{source}:{number}: not a timeline record ({err}); files written by "
                    "Timeline.save() have one JSON object per line"
                ) from err
        if not namespace and records:
            namespace = records[0].namespace
        return cls(namespace, records, live=False, started=started)


def _as_time(value: object, argument: str) -> datetime | None:
    return None if value is None else as_time(value, argument=argument)


def _order_key(rec: Record) -> tuple[datetime, int, int]:
    # Server time first; among records of the same second, pod status and events before the
    # endpoint changes they cause, then arrival order.
    rank = 1 if rec.source == "endpoints" else 0
    return (rec.time, rank, rec.seq)
