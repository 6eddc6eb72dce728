"""The timeline: what the cluster did, as records in time order.

A :class:`Timeline` holds :class:`Record` objects from three sources — Events, pod status
transitions and EndpointSlice membership — merged in server-time order.  A *live* timeline grows
while a recorder feeds it and lets waiters block until a condition holds; a timeline loaded from a
file is *frozen* and answers at once.

Each record keeps the server timestamp (``time``; the API serialises these to whole seconds) and the
local monotonic time it was received (``received``), plus the local wall-clock time of reception
(``received_wall``), which lets a waiter map server time onto the local clock.
"""

from __future__ import annotations

import json
import math
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pytest_probes.errors import ProbesError, ProbesTimeoutError

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

FORMAT_VERSION = 1

T = TypeVar("T")

EVENT_WRITER_RETRY_SPAN = 110.0
"""Seconds the kubelet's event writer may still deliver an Event after its stamp: client-go's
``record`` package writes one Event at a time and retries a failed write 11 more times, up to
10 s (at random) before the second try and 10 s before each later one (``maxTriesPerEvent``,
``defaultSleepDuration`` in ``tools/record/event.go``)."""


def parse_time(value: str | datetime | None) -> datetime | None:
    """Parse an API timestamp (RFC 3339, ``Z`` or offset, optional fraction) into aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits; the API may send 9.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        tail = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tail = rest[i:]
                break
            digits += ch
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with microseconds only when present."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Record:
    """One thing the cluster did.

    Attributes:
        time: The server timestamp (aware UTC).
        source: One of :data:`SOURCES`.
        kind: For events the reason (``Unhealthy``, ``Killing``, ``Started`` ...); for pod
            status a transition (``ContainerStarted``, ``ContainerRestarted``,
            ``ContainerTerminated``, ``ContainerWaiting``, ``ContainerReady``,
            ``ContainerNotReady``, ``ContainerStartupPassed``, ``PodReady``, ``PodNotReady``,
            ``PodPhase``, ``PodAdded``, ``PodDeleted``); for endpoints ``EndpointAdded`` /
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


class TimelineFrozenError(ProbesError):
    """A record was added to a frozen (loaded or closed) timeline."""


@dataclass(frozen=True)
class Measurement:
    """How long a condition took, as an assertion helper saw it.

    Every helper that checks a window records one on the timeline when it passes, so a run can
    report how its observations compare with what the probe spec allows.

    Attributes:
        helper: The helper's name, e.g. ``assert_restarts_within``.
        pod: The pod (or prefix) the helper was asked about.
        reference: The server time the window counts from (``since``, or the anchor event).
        earliest: The earliest time the spec allows, in seconds after ``reference``.
        latest: The latest time allowed (stretched by the timeline's tolerance).
        observed: The server time of the record that satisfied the helper, after ``reference``.
        returned: When the helper returned, after ``reference`` on the server clock (``None`` on a
            recorded timeline).
        latency: Local seconds from receiving that record to the helper returning, when the
            helper was already waiting for it (``None`` if the record was there before, or on a
            recorded timeline).
    """

    helper: str
    pod: str
    reference: datetime
    earliest: float
    latest: float
    observed: float
    returned: float | None = None
    latency: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The measurement as JSON-serialisable values (seconds rounded to milliseconds)."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "helper": self.helper,
            "pod": self.pod,
            "reference": format_time(self.reference),
            "earliest_s": r(self.earliest),
            "latest_s": r(self.latest),
            "observed_s": r(self.observed),
            "returned_s": r(self.returned),
            "latency_s": r(self.latency),
        }


class Timeline:
    """Records of one namespace in server-time order; live (growing) or frozen.

    Args:
        namespace: The namespace the records are about.
        records: Initial records.
        live: Whether a recorder will keep adding records.
        started: When recording started (server time); defaults to the first record's time.
        clock: Local monotonic clock, injectable for tests.
        wall: Local wall clock (epoch seconds), injectable for tests.
        tolerance: Factor that stretches the upper end of every assertion window (the
            ``--probes-timeout-scale`` option); 1.0 means the windows as the probe spec gives them.
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
        tolerance: float = 1.0,
        default_timeout: float = 300.0,
    ) -> None:
        self.namespace = namespace
        self.tolerance = tolerance
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
        self.measurements: list[Measurement] = []
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
                    rec = _with_seq(rec, len(self._records) + 1)
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

    def measure(
        self, helper: str, pod: str, reference: datetime, earliest: float, latest: float,
        record: Record,
    ) -> Measurement:
        """Note that ``helper`` was satisfied by ``record`` (see :class:`Measurement`)."""
        observed = (record.time - reference).total_seconds()
        returned = latency = None
        if self._live:
            returned = (self.server_now() - reference).total_seconds()
            if record.received and record.received >= self.last_wait_started:
                latency = self._clock() - record.received
        found = Measurement(helper, pod, reference, earliest, latest, observed, returned, latency)
        self.measurements.append(found)
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


def _as_time(value: object, argument: str) -> datetime | None:
    return None if value is None else as_time(value, argument=argument)


def _order_key(rec: Record) -> tuple[datetime, int, int]:
    # Server time first; among records of the same second, pod status and events before the
    # endpoint changes they cause, then arrival order.
    rank = 1 if rec.source == "endpoints" else 0
    return (rec.time, rank, rec.seq)


def _with_seq(rec: Record, seq: int) -> Record:
    return Record(
        time=rec.time,
        source=rec.source,
        kind=rec.kind,
        namespace=rec.namespace,
        pod=rec.pod,
        container=rec.container,
        message=rec.message,
        data=rec.data,
        received=rec.received,
        received_wall=rec.received_wall,
        seq=seq,
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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


def render_markdown(
    timeline: Timeline, records: Iterable[Record] | None = None, *, limit: int | None = None
) -> str:
    """Render a timeline (or some of its records) as a Markdown table; see Timeline.to_markdown."""
    everything = timeline.records
    chosen = set(id(r) for r in records) if records is not None else None
    start = timeline.started or (everything[0].time if everything else None)
    ready: dict[str, list[str]] = {}
    rows: list[str] = []
    for rec in everything:
        if rec.source == "endpoints" and "ready_addresses" in rec.data:
            ready[str(rec.data.get("service", ""))] = list(rec.data["ready_addresses"])
        if chosen is not None and id(rec) not in chosen:
            continue
        offset = (rec.time - start).total_seconds() if start else 0.0
        eps = "; ".join(
            f"{svc}: {','.join(addrs) or '-'}" if len(ready) > 1 else ",".join(addrs) or "-"
            for svc, addrs in sorted(ready.items())
        )
        rows.append(
            f"| {rec.time.strftime('%H:%M:%S')} | {offset:+.0f} | {rec.source} | "
            f"{_cell(rec.pod or '')} | {_cell(describe(rec))} | {_cell(eps)} |"
        )
    header = [
        "| time | +s | source | pod | event | endpoints after |",
        "|---|---|---|---|---|---|",
    ]
    dropped = 0
    if limit is not None and len(rows) > limit:
        dropped = len(rows) - limit
        rows = rows[-limit:]
    note = [f"\n({dropped} earlier rows not shown)"] if dropped else []
    return "\n".join(header + rows + note)


def seconds_between(a: datetime | Record, b: datetime | Record) -> float:
    """Seconds from ``a`` to ``b`` (negative if ``b`` is earlier)."""
    ta = a.time if isinstance(a, Record) else a
    tb = b.time if isinstance(b, Record) else b
    return (tb - ta).total_seconds()


def plus(when: datetime, seconds: float) -> datetime:
    """``when`` plus a number of seconds."""
    return when + timedelta(seconds=seconds)
