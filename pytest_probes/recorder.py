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
(:data:`~pytest_probes.records.GAP_KIND`) in the timeline, from the last moment the stream was
known complete (the last line received) to the list, and the helpers that rest on absence
fail as inconclusive where a gap overlaps their window.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_probes.errors import WatchError
from pytest_probes.podlogs import log_line_record
from pytest_probes.reducer import Reducer
from pytest_probes.timeline import GAP_KIND, RECORDED_SOURCES, Record, Timeline, format_time

log = logging.getLogger(__name__)

WATCH_SECONDS = 240
"""Server-side timeout of one watch request; the recorder then resumes from the last version."""

READ_TIMEOUT = 30.0
"""Client-side read timeout; bookmarks arrive about once a minute, so a silent connection is
detected as dead within this many seconds after the server stops sending anything."""

_FATAL_STATUSES = (401, 403, 404)

LOGS_ANNOTATION = "pytest-probes.io/logs"
"""On a pod (or a workload's pod template): the containers whose log lines go into the timeline,
comma-separated, or ``*`` for all. Each line becomes a ``LogLine`` record at the container
runtime's timestamp (:func:`pytest_probes.podlogs.log_line_record`)."""

CUSTOM_PREFIX = "custom:"


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
        sources: tuple[str, ...] = RECORDED_SOURCES,
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
        self._custom: dict[str, tuple[str, str, str]] = {}  # source -> group, version, plural
        self._following: set[tuple[str, str]] = set()  # (pod, container) whose logs are read
        self.timeline.set_custom_watcher(self.watch)

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, sync_timeout: float = 30.0) -> Timeline:
        """Start recording and return once every source has been listed once.

        Raises:
            WatchError: A source could not be listed within ``sync_timeout`` seconds.
        """
        for source in self.sources:
            self._thread(self._run, source, name=f"probes-watch-{source}")
        deadline = self._clock() + sync_timeout
        for source, synced in list(self._synced.items()):
            if not synced.wait(max(0.0, deadline - self._clock())):
                self.stop()
                raise WatchError(
                    f"could not list {source} objects in namespace {self.namespace} within "
                    f"{sync_timeout:.0f} s; is the apiserver reachable? (the log at DEBUG "
                    "has the errors)"
                )
        log.info("recording namespace %s (%s)", self.namespace, ", ".join(self.sources))
        return self.timeline

    def watch(self, group: str, version: str, plural: str, *, sync_timeout: float = 30.0) -> None:
        """Also record the ``status.conditions`` of the namespace's custom resources ``plural``.

        Each change of a condition becomes a ``Condition`` record whose subject is ``Kind/name``
        (:meth:`pytest_probes.reducer.Reducer.feed`, source ``custom``). Returns once the
        resources have been listed.

        Args:
            group: The API group, e.g. ``example.com``.
            version: The version, e.g. ``v1``.
            plural: The resource's plural name, e.g. ``widgets``.
            sync_timeout: Seconds to wait for the first list.

        Raises:
            WatchError: The resources could not be listed in time.
        """
        source = f"{CUSTOM_PREFIX}{plural}.{group}"
        with self._lock:
            if source in self._custom:
                return
            self._custom[source] = (group, version, plural)
            self._synced[source] = threading.Event()
        self._thread(self._run, source, name=f"probes-watch-{plural}.{group}")
        if not self._synced[source].wait(sync_timeout):
            raise WatchError(
                f"could not list {plural}.{group}/{version} in namespace {self.namespace} within "
                f"{sync_timeout:.0f} s; is the CRD installed and established?"
            )
        self.timeline.raise_if_failed()

    def follow_logs(self, pod: str, container: str) -> None:
        """Put the log lines of ``pod``'s ``container`` into the timeline (``LogLine`` records).

        Pods with the :data:`LOGS_ANNOTATION` are followed without asking. Every instance of the
        container is read, from its first line, until the pod is gone or recording stops.
        """
        with self._lock:
            if (pod, container) in self._following or self._stop.is_set():
                return
            self._following.add((pod, container))
        self._thread(self._follow, pod, container, name=f"probes-logs-{pod}-{container}")

    @property
    def following(self) -> frozenset[tuple[str, str]]:
        """The ``(pod, container)`` pairs whose log lines are being read now."""
        with self._lock:
            return frozenset(self._following)

    def _thread(self, target: Callable[..., None], *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def stop(self, *, timeout: float = 5.0) -> Timeline:
        """Stop the watches, freeze the timeline and return it."""
        self._stop.set()
        with self._lock:
            responses = list(self._responses.values())
        for resp in responses:
            _interrupt(resp)
        deadline = self._clock() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
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
        # Hand-written: its pauses wait on the stop Event, and it runs until stopped, not until
        # a success (which resets the back-off).
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
                    what = source.removeprefix(CUSTOM_PREFIX)
                    self.timeline.fail(
                        WatchError(
                            f"cannot watch {what} objects in namespace {self.namespace}: "
                            f"HTTP {status} {getattr(err, 'reason', '')}; the kubeconfig's user "
                            f"needs list and watch on {_rights(source)} there"
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
            time=begin, source=_reduced(source), kind=GAP_KIND, namespace=self.namespace,
            message=reason,
            data={"from": format_time(begin), "to": format_time(end), "reason": reason},
            received=self._clock())
        with self._lock:
            if self._raw is not None and not self._raw.closed:
                line = {"source": _reduced(source), "type": GAP_KIND,
                        "object": gap.to_json()}
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
            gone = self._reducer.vanished(_reduced(source),
                                          {Reducer.key(_reduced(source), i) for i in items})
        for stub in gone:
            self._feed(source, "DELETED", stub)
        return str((payload.get("metadata") or {}).get("resourceVersion") or "")

    @contextlib.contextmanager
    def _reading(self, key: str, resp: Any) -> Iterator[Iterator[str]]:
        """The response's lines until recording stops; :meth:`stop` can close it meanwhile."""
        with self._lock:
            self._responses[key] = resp
            stopped = self._stop.is_set()  # stop() ran while this request was being sent
        if stopped:
            _interrupt(resp)
        try:
            yield itertools.takewhile(lambda _line: not self._stop.is_set(), _lines(resp))
        finally:
            with self._lock:
                self._responses.pop(key, None)
            _close(resp)

    def _watch(self, source: str, version: str) -> str:
        resp = self._call(source, watch=True, resource_version=version)
        with self._reading(source, resp) as lines:
            for line in lines:
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
        return version

    def _feed(self, source: str, kind: str, obj: Mapping[str, Any]) -> None:
        received, wall = self._clock(), self._wall()
        source = _reduced(source)
        with self._lock:
            if self._raw is not None and not self._raw.closed:
                line = {"source": source, "type": kind, "object": obj, "received": received,
                        "received_wall": wall}
                self._raw.write(json.dumps(line, sort_keys=True) + "\n")
            records = self._reducer.feed(
                source, kind, obj, received=received, received_wall=wall
            )
        if source == "pod" and kind != "DELETED":
            for container in _logged_containers(obj):
                self.follow_logs(str((obj.get("metadata") or {}).get("name")), container)
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
        if source in self._custom:
            group, version, plural = self._custom[source]
            return client.CustomObjectsApi(self.api_client).list_namespaced_custom_object(
                group, version, self.namespace, plural, **kwargs
            )
        if source == "pod":
            return client.CoreV1Api(self.api_client).list_namespaced_pod(self.namespace, **kwargs)
        if source == "event":
            return client.CoreV1Api(self.api_client).list_namespaced_event(
                self.namespace, **kwargs
            )
        return client.DiscoveryV1Api(self.api_client).list_namespaced_endpoint_slice(
            self.namespace, **kwargs
        )


    # ------------------------------------------------------------------ logs

    def _follow(self, pod: str, container: str) -> None:
        """Read every instance of a container's log into the timeline until the pod is gone."""
        try:
            self._follow_instances(pod, container)
        finally:
            with self._lock:
                self._following.discard((pod, container))

    def _follow_instances(self, pod: str, container: str) -> None:
        from kubernetes import client

        key = f"log:{pod}/{container}"
        last = None  # the runtime's timestamp of the last line taken
        pause = self.retry_initial
        # Hand-written for the reasons of _run's loop: pauses on the stop Event, no last attempt.
        while not self._stop.is_set():
            try:
                resp = client.CoreV1Api(self.api_client).read_namespaced_pod_log(
                    pod, self.namespace, container=container, follow=True, timestamps=True,
                    _preload_content=False, _request_timeout=(5, 24 * 3600),
                )
            except Exception as err:
                # 404 also comes while the pod's node is not known to serve it: the kubelet
                # answers "pod does not exist" until its own watch has delivered the pod
                # (getContainerLogs, pkg/kubelet/server/server.go). Only the API says it is gone.
                if getattr(err, "status", None) == 404 and not self._pod_exists(pod):
                    return
                # 400 while the container is still being created: try again shortly.
                log.debug("logs of %s/%s: %s; again in %.1f s", pod, container, err, pause)
                if self._stop.wait(pause):
                    return
                pause = min(pause * 2, self.retry_max)
                continue
            taken = last
            try:
                with self._reading(key, resp) as lines:
                    for line in lines:
                        rec = log_line_record(self.namespace, pod, container, line)
                        # A new request re-reads the current instance from its first line.
                        if rec is None or (last is not None and rec.time <= last):
                            continue
                        last = rec.time
                        stamped = replace(rec, received=self._clock(),
                                          received_wall=self._wall())
                        self.timeline.extend([stamped])
            except Exception as err:
                log.debug("logs of %s/%s ended: %s", pod, container, err)
            # The instance ended (or the connection did): look for the next one, backing off
            # while nothing new comes (a container that has ended for good).
            pause = self.retry_initial if last != taken else min(pause * 2, self.retry_max)
            if self._stop.wait(pause):
                return

    def _pod_exists(self, pod: str) -> bool:
        """Whether the API still has ``pod`` (``True`` when it does not answer: keep trying)."""
        from kubernetes import client

        try:
            client.CoreV1Api(self.api_client).read_namespaced_pod(
                pod, self.namespace, _request_timeout=(5, 30))
        except Exception as err:
            return getattr(err, "status", None) != 404
        return True


def _reduced(source: str) -> str:
    """The reducer's source for a recorder source (every custom resource is ``custom``)."""
    return "custom" if source.startswith(CUSTOM_PREFIX) else source


def _rights(source: str) -> str:
    if source.startswith(CUSTOM_PREFIX):
        return source.removeprefix(CUSTOM_PREFIX)
    return "pods, events and endpointslices"


def _logged_containers(pod: Mapping[str, Any]) -> list[str]:
    """The containers a pod asks to have its log recorded (:data:`LOGS_ANNOTATION`)."""
    wanted = str(((pod.get("metadata") or {}).get("annotations") or {}).get(LOGS_ANNOTATION)
                 or "").strip()
    if not wanted:
        return []
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for key in ("initContainers", "containers")
             for c in spec.get(key) or [] if c.get("name")]
    if wanted in ("*", "true"):
        return names
    return [name for name in (part.strip() for part in wanted.split(",")) if name in names]


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


def _interrupt(resp: Any) -> None:
    """Make a stream's blocked read return, from another thread than the one reading it.

    Only the socket is shut down for reading (urllib3's ``HTTPResponse.shutdown``, which refuses
    once the connection went back to the pool); the reading thread then closes the response
    itself (:func:`_close`). Closing it here as well raced with that thread: a connection it had
    just handed back to the client's pool, shared by every request of the worker, could be
    closed under the next request that took it (seen as ``SSL: WRONG_VERSION_NUMBER`` and
    ``Bad file descriptor`` in the next test's first list). Without ``shutdown`` (urllib3 before
    2.3) the response is closed instead.
    """
    if getattr(resp, "shutdown", None) is None:
        _close(resp)
        return
    try:
        resp.shutdown()
    except RuntimeError:
        pass  # its connection went back to the pool: the stream has ended
    except ValueError:
        _close(resp)  # no socket to shut down (a response not made on a pooled connection)
    except OSError:
        log.debug("interrupting a stream: shutdown failed", exc_info=True)


def _close(resp: Any) -> None:
    """Close a stream in the thread that reads it; its (closed) connection returns to the pool."""
    for method in ("close", "release_conn"):
        func = getattr(resp, method, None)
        if func is None:
            continue
        try:
            func()
        except Exception:
            log.debug("closing watch response: %s failed", method, exc_info=True)
