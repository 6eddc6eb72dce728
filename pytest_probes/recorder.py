"""The recorder: list+watch Events, Pods and EndpointSlices of a namespace into a timeline.

This is the I/O half of recording; :mod:`pytest_probes.reducer` is the pure half. For each source a
thread lists the objects (feeding the reducer, which ignores what it has already seen), then
watches from the list's ``resourceVersion``. A dropped connection resumes from the last version
seen, and the API server replays what happened meanwhile: nothing is lost. ``410 Gone`` (the
version expired, e.g. after an API server restart or a compaction) needs a fresh list, after a
back-off; the reducer turns its differences into the transitions they imply (a restart from
``restartCount``, a Ready flip from a moved ``lastTransitionTime``, marked ``inferred``). But a
list shows only the net change: a pod that lost and regained Ready in between, or an address
removed and added back, leaves no trace. So the recorder puts a ``WatchGap`` record
(:data:`~pytest_probes.timeline.GAP_KIND`) in the timeline, from the last moment the stream was
known complete (the last line received) to the list, and the helpers that rest on absence
fail as inconclusive where a gap overlaps their window.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pytest_probes.errors import WatchError
from pytest_probes.reducer import Reducer
from pytest_probes.timeline import GAP_KIND, SOURCES, Record, Timeline, format_time

log = logging.getLogger(__name__)

WATCH_SECONDS = 240
"""Server-side timeout of one watch request; the recorder then resumes from the last version."""

READ_TIMEOUT = 30.0
"""Client-side read timeout; bookmarks arrive about once a minute, so a silent connection is
detected as dead within this many seconds after the server stops sending anything."""

_FATAL_STATUSES = (401, 403, 404)


class _Gone(Exception):
    """The watch's resourceVersion expired (HTTP 410); a re-list is needed."""


class Recorder:
    """Records a namespace into a :class:`Timeline` until stopped.

    Args:
        api_client: A ``kubernetes.client.ApiClient``.
        namespace: The namespace to record.
        timeline: The live timeline to fill; a new one is made if omitted.
        sources: Which of ``event``, ``pod``, ``endpoints`` to record.
        retry_initial: First pause in seconds before reconnecting after an error.
        retry_max: Longest pause in seconds between reconnect attempts.
        clock: Local monotonic clock.
        wall: Local wall clock (epoch seconds).
        raw_path: If given, every raw watch event is also appended to this JSON Lines file
            (``source``, ``type``, ``object``, ``received``, ``received_wall``), so the stream
            can be replayed through the reducer later (:func:`pytest_probes.importers.replay_raw`).
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        timeline: Timeline | None = None,
        *,
        sources: tuple[str, ...] = SOURCES,
        retry_initial: float = 0.2,
        retry_max: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        raw_path: Path | None = None,
    ) -> None:
        self.api_client = api_client
        self._raw = raw_path.open("a", encoding="utf-8") if raw_path is not None else None
        self.namespace = namespace
        self.timeline = (
            timeline if timeline is not None
            else Timeline(namespace, live=True, clock=clock, wall=wall)
        )
        self.sources = sources
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._clock = clock
        self._wall = wall
        self._reducer = Reducer(namespace)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: dict[str, Any] = {}
        self._synced: dict[str, threading.Event] = {s: threading.Event() for s in sources}
        self._complete: dict[str, float] = {}  # local wall time each stream was last complete
        self.reconnects = 0
        self.relists = 0
        self.gone = 0
        self.gaps = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, sync_timeout: float = 30.0) -> Timeline:
        """Start recording and return once every source has been listed once.

        Raises:
            WatchError: A source could not be listed within ``sync_timeout`` seconds.
        """
        for source in self.sources:
            thread = threading.Thread(
                target=self._run, args=(source,), name=f"probes-watch-{source}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        deadline = self._clock() + sync_timeout
        for source, synced in self._synced.items():
            if not synced.wait(max(0.0, deadline - self._clock())):
                self.stop()
                raise WatchError(
                    f"could not list {source} objects in namespace {self.namespace} within "
                    f"{sync_timeout:.0f} s; is the apiserver reachable? (the log at DEBUG "
                    "has the errors)"
                )
        log.info("recording namespace %s (%s)", self.namespace, ", ".join(self.sources))
        return self.timeline

    def stop(self, *, timeout: float = 5.0) -> Timeline:
        """Stop the watches, freeze the timeline and return it."""
        self._stop.set()
        with self._lock:
            responses = list(self._responses.values())
        for resp in responses:
            _close(resp)
        deadline = self._clock() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        self.timeline.close()
        if self._raw is not None:
            with self._lock:
                self._raw.close()
        return self.timeline

    def __enter__(self) -> Timeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ threads

    def _run(self, source: str) -> None:
        pause = self.retry_initial
        version: str | None = None
        gap_from: float | None = None  # set from a 410 until the list that ends the gap
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list(source)
                    if gap_from is not None:
                        self._record_gap(source, gap_from, self._complete[source])
                        gap_from = None
                    self._synced[source].set()
                version = self._watch(source, version)
                pause = self.retry_initial
            except Exception as err:
                if self._stop.is_set():
                    break
                status = getattr(err, "status", None)
                if isinstance(err, _Gone) or status == 410:
                    self.gone += 1
                    log.info("watch of %s in %s: resourceVersion expired; listing again in "
                             "%.1f s", source, self.namespace, pause)
                    if gap_from is None:
                        gap_from = self._complete.get(source, self._wall())
                    version = None
                    # Back off: a 410 right after an API server restart may come again at once.
                    if self._stop.wait(pause):
                        break
                    pause = min(pause * 2, self.retry_max)
                    continue
                if status in _FATAL_STATUSES:
                    self.timeline.fail(
                        WatchError(
                            f"cannot watch {source} objects in namespace {self.namespace}: "
                            f"HTTP {status} {getattr(err, 'reason', '')}; the kubeconfig's user "
                            "needs list and watch on pods, events and endpointslices there"
                        )
                    )
                    self._synced[source].set()
                    return
                self.reconnects += 1
                log.debug("watch of %s in %s failed (%s); retrying in %.1f s", source,
                          self.namespace, err, pause)
                if self._stop.wait(pause):
                    break
                pause = min(pause * 2, self.retry_max)
                # A failed list leaves version None; a failed watch resumes from `version`.

    def _record_gap(self, source: str, since_wall: float, until_wall: float) -> None:
        """Put a ``WatchGap`` record of ``source`` in the timeline (local wall times given)."""
        begin = self.timeline.server_time_at(since_wall)
        end = self.timeline.server_time_at(until_wall)
        reason = "410 Gone: the watch's resourceVersion expired; listed again"
        self.gaps += 1
        log.info("%s watch of %s had a gap of %.1f s", source, self.namespace,
                 until_wall - since_wall)
        # received_wall stays 0: a gap says nothing about the server's clock.
        gap = Record(
            time=begin, source=source, kind=GAP_KIND, namespace=self.namespace, message=reason,
            data={"from": format_time(begin), "to": format_time(end), "reason": reason},
            received=self._clock())
        with self._lock:
            if self._raw is not None and not self._raw.closed:
                line = {"source": source, "type": GAP_KIND, "object": gap.to_json()}
                self._raw.write(json.dumps(line, sort_keys=True) + "\n")
        self.timeline.extend([gap])

    def _list(self, source: str) -> str:
        resp = self._call(source, watch=False)
        payload = json.loads(resp.data)
        self._complete[source] = self._wall()
        self.relists += 1
        items = payload.get("items") or []
        for item in items:
            self._feed(source, "ADDED", item)
        # Objects deleted while we were not watching: the reducer knows them, the list doesn't.
        with self._lock:
            gone = self._reducer.vanished(source, {Reducer.key(source, i) for i in items})
        for stub in gone:
            self._feed(source, "DELETED", stub)
        return str((payload.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, source: str, version: str) -> str:
        resp = self._call(source, watch=True, resource_version=version)
        with self._lock:
            self._responses[source] = resp
        try:
            for line in _lines(resp):
                if self._stop.is_set():
                    break
                event = json.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise WatchError(f"watch error: {obj.get('message')}")
                self._complete[source] = self._wall()  # complete up to this line's version
                new_version = (obj.get("metadata") or {}).get("resourceVersion")
                if kind != "BOOKMARK":
                    self._feed(source, kind, obj)
                if new_version:
                    version = str(new_version)
        finally:
            with self._lock:
                self._responses.pop(source, None)
            _close(resp)
        return version

    def _feed(self, source: str, kind: str, obj: Mapping[str, Any]) -> None:
        received, wall = self._clock(), self._wall()
        with self._lock:
            if self._raw is not None and not self._raw.closed:
                line = {"source": source, "type": kind, "object": obj, "received": received,
                        "received_wall": wall}
                self._raw.write(json.dumps(line, sort_keys=True) + "\n")
            records = self._reducer.feed(
                source, kind, obj, received=received, received_wall=wall
            )
        if records:
            for rec in records:
                log.debug("%s %s %s %s", rec.source, rec.kind, rec.pod or "", rec.message)
            self.timeline.extend(records)

    def _call(self, source: str, *, watch: bool, resource_version: str | None = None) -> Any:
        from kubernetes import client

        kwargs: dict[str, Any] = {"_preload_content": False}
        if watch:
            kwargs.update(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=(5, READ_TIMEOUT + 60),
            )
        else:
            kwargs["_request_timeout"] = (5, 30)
        if source == "pod":
            return client.CoreV1Api(self.api_client).list_namespaced_pod(self.namespace, **kwargs)
        if source == "event":
            return client.CoreV1Api(self.api_client).list_namespaced_event(
                self.namespace, **kwargs
            )
        return client.DiscoveryV1Api(self.api_client).list_namespaced_endpoint_slice(
            self.namespace, **kwargs
        )


def _lines(resp: Any) -> Iterator[str]:
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8")
    if buffer.strip():
        yield buffer.decode("utf-8")


def _close(resp: Any) -> None:
    for method in ("shutdown", "close", "release_conn"):
        func = getattr(resp, method, None)
        if func is None:
            continue
        try:
            func()
        except Exception:
            log.debug("closing watch response: %s failed", method, exc_info=True)
