"""The pure reducer: one raw watch event in, timeline records out.

No I/O happens here, so the reducer is tested on recorded watch streams. It keeps the last state it
saw of every pod, EndpointSlice and Event, and turns each new version of an object into the records
of what changed. Feeding it the same object twice (as a re-list after a reconnect does) yields
nothing the second time; a re-list after missed events yields the differences, so a resumed
recording has neither duplicates nor gaps in transitions.

Objects are plain dicts in the API's JSON form (camelCase), as a watch stream carries them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pytest_probes.apitime import parse_time
from pytest_probes.podstate import (
    condition,
    container_started_at,
    container_state,
    container_statuses,
)
from pytest_probes.records import Record

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass
class _ContainerState:
    state: str = ""  # waiting | running | terminated | ""
    waiting_reason: str = ""
    started_at: str = ""
    finished_at: str = ""
    container_id: str = ""
    ready: bool = False
    started: bool | None = None
    restart_count: int = 0
    terminations: set[str] = field(default_factory=set)  # container IDs already reported
    starts: set[str] = field(default_factory=set)  # container IDs whose start was reported


@dataclass
class _PodState:
    name: str
    phase: str = ""
    ready: bool | None = None
    ready_since: str = ""  # the Ready condition's lastTransitionTime as last seen
    conditions: dict[str, str] = field(default_factory=dict)  # other conditions' status by type
    containers: dict[str, _ContainerState] = field(default_factory=dict)
    deleted: bool = False


@dataclass(frozen=True)
class _Member:
    pod: str | None
    ready: bool
    serving: bool
    terminating: bool


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def update_time(obj: Mapping[str, Any]) -> datetime | None:
    """The latest ``managedFields[].time`` of an object: when the server last wrote it."""
    latest: datetime | None = None
    for entry in _get(obj, "metadata", "managedFields") or []:
        when = parse_time(entry.get("time")) if isinstance(entry, Mapping) else None
        if when is not None and (latest is None or when > latest):
            latest = when
    return latest


class Reducer:
    """Turns raw watch events of one namespace into :class:`Record` objects.

    Args:
        namespace: The namespace being recorded.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._pods: dict[str, _PodState] = {}
        self._slices: dict[str, tuple[str, dict[str, _Member]]] = {}
        self._events: dict[str, int] = {}
        self._custom: dict[str, dict[str, str]] = {}  # uid -> condition type -> status

    def feed(
        self,
        source: str,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        received: float = 0.0,
        received_wall: float | None = None,
    ) -> list[Record]:
        """Reduce one watch event.

        Args:
            source: ``event``, ``pod``, ``endpoints`` or ``custom`` (a custom resource).
            event_type: ``ADDED``, ``MODIFIED`` or ``DELETED`` (``BOOKMARK`` yields nothing).
            obj: The object, as a dict in API JSON form.
            received: Local monotonic time of reception.
            received_wall: Local wall-clock time of reception (epoch seconds); now if omitted.

        Returns:
            The new records, in order.
        """
        if event_type in ("BOOKMARK", "ERROR"):
            return []
        wall = time.time() if received_wall is None else received_wall
        if source == "event":
            out = self._event(event_type, obj)
        elif source == "pod":
            out = self._pod(event_type, obj, wall)
        elif source == "endpoints":
            out = self._slice(event_type, obj, wall)
        elif source == "custom":
            out = self._custom_object(event_type, obj, wall)
        else:
            raise ValueError(f"unknown source {source!r}")
        return [replace(r, received=received, received_wall=wall) for r in out]

    def vanished(self, source: str, present: set[str]) -> list[dict[str, Any]]:
        """Stub objects for what the reducer knows but a fresh list no longer shows.

        After a re-list, feed these as ``DELETED`` so deletions missed while disconnected are
        recorded. Pods are keyed by uid, EndpointSlices by name.

        Args:
            source: ``pod`` or ``endpoints`` (events are never reported as vanished).
            present: The keys the fresh list returned.
        """
        if source == "pod":
            return [
                {"metadata": {"uid": uid, "name": state.name}}
                for uid, state in self._pods.items()
                if uid not in present and not state.deleted
            ]
        if source == "endpoints":
            return [
                {"metadata": {"name": name, "labels": {SERVICE_NAME_LABEL: svc}}}
                for name, (svc, _members) in self._slices.items()
                if name not in present
            ]
        return []

    @staticmethod
    def key(source: str, obj: Mapping[str, Any]) -> str:
        """The key :meth:`vanished` uses for an object of a source."""
        meta = obj.get("metadata") or {}
        if source in ("pod", "custom"):
            return str(meta.get("uid") or meta.get("name") or "")
        return str(meta.get("name") or "")

    # ------------------------------------------------------------------ custom resources

    def _custom_object(
        self, event_type: str, obj: Mapping[str, Any], wall: float
    ) -> list[Record]:
        """A ``Condition`` record for each of the object's ``status.conditions`` that changed.

        The subject (``pod``) is ``Kind/name``; the time is the condition's
        ``lastTransitionTime`` (set by the controller that owns it, in whole seconds), else the
        object's last write.
        """
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name") or "")
        subject = f"{obj.get('kind', 'Object')}/{meta.get('name', '')}"
        if event_type == "DELETED":
            self._custom.pop(uid, None)
            return []
        known = self._custom.setdefault(uid, {})
        fallback = update_time(obj) or datetime.fromtimestamp(wall, UTC)
        out = []
        for cond in _get(obj, "status", "conditions") or []:
            if not isinstance(cond, Mapping) or not cond.get("type"):
                continue
            kind_of, value = str(cond["type"]), str(cond.get("status") or "Unknown")
            if known.get(kind_of) == value:
                continue
            reason = str(cond.get("reason") or "")
            out.append(Record(
                time=parse_time(cond.get("lastTransitionTime")) or fallback, source="custom",
                kind="Condition", namespace=self.namespace, pod=subject,
                message=f"{kind_of}={value}" + (f" ({reason})" if reason else ""),
                data={"type": kind_of, "status": value, "reason": reason,
                      "message": str(cond.get("message") or ""),
                      "previous": known.get(kind_of),
                      "generation": meta.get("generation"),
                      "observed_generation": cond.get("observedGeneration")},
            ))
            known[kind_of] = value
        return out

    # ------------------------------------------------------------------ events

    def _event(self, event_type: str, ev: Mapping[str, Any]) -> list[Record]:
        if event_type == "DELETED":
            return []
        uid = str(_get(ev, "metadata", "uid") or _get(ev, "metadata", "name") or "")
        count = int(_get(ev, "series", "count") or ev.get("count") or 1)
        seen = self._events.get(uid, 0)
        if count <= seen:
            return []
        self._events[uid] = count
        when = (
            parse_time(_get(ev, "series", "lastObservedTime"))
            or parse_time(ev.get("lastTimestamp"))
            or parse_time(ev.get("eventTime"))
            or parse_time(ev.get("firstTimestamp"))
            or parse_time(_get(ev, "metadata", "creationTimestamp"))
        )
        if when is None:
            return []
        involved = ev.get("involvedObject") or ev.get("regarding") or {}
        pod = involved.get("name") if involved.get("kind") == "Pod" else None
        container = _container_from_field_path(str(involved.get("fieldPath") or ""))
        source = ev.get("source") or {}
        data: dict[str, Any] = {
            "type": ev.get("type") or "",
            "uid": uid,
            "count": count,
            "count_delta": count - seen,
            "object_kind": involved.get("kind") or "",
            "object_name": involved.get("name") or "",
            "component": source.get("component") or ev.get("reportingComponent") or "",
            "first_time": _iso(parse_time(ev.get("firstTimestamp"))),
        }
        return [
            Record(
                time=when,
                source="event",
                kind=str(ev.get("reason") or ""),
                namespace=self.namespace,
                pod=pod,
                container=container,
                message=str(ev.get("message") or ev.get("note") or ""),
                data=data,
            )
        ]

    # ------------------------------------------------------------------ pods

    def _pod(self, event_type: str, pod: Mapping[str, Any], wall: float) -> list[Record]:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name") or "")
        name = str(meta.get("name") or "")
        status = pod.get("status") or {}
        fallback = update_time(pod) or datetime.fromtimestamp(wall, UTC)
        known = self._pods.get(uid)
        out: list[Record] = []

        def rec(kind: str, when: datetime | None, container: str | None = None,
                message: str = "", **data: Any) -> None:
            out.append(
                Record(
                    time=when or fallback,
                    source="pod",
                    kind=kind,
                    namespace=self.namespace,
                    pod=name,
                    container=container,
                    message=message,
                    data=data,
                )
            )

        if event_type == "DELETED":
            if known is not None and not known.deleted:
                known.deleted = True
                rec("PodDeleted", parse_time(meta.get("deletionTimestamp")))
            return out
        is_new = known is None
        if known is None:
            known = _PodState(name=name)
            self._pods[uid] = known
            rec("PodAdded", parse_time(meta.get("creationTimestamp")))

        phase = str(status.get("phase") or "")
        if phase and phase != known.phase:
            reason = str(status.get("reason") or "")
            rec("PodPhase", None, message=phase + (f" ({reason})" if reason else ""),
                phase=phase, reason=reason, previous=known.phase)
            known.phase = phase

        statuses = container_statuses(pod)
        ready_cond = condition(pod, "Ready")
        for cond in status.get("conditions") or []:
            kind_of = str(cond.get("type") or "")
            value = str(cond.get("status") or "")
            if kind_of and kind_of != "Ready" and known.conditions.get(kind_of) != value:
                # Any condition by name (PodScheduled, Initialized, ContainersReady,
                # PodReadyToStartContainers, a readiness gate's ...); Ready has its own records.
                rec("PodCondition", parse_time(cond.get("lastTransitionTime")),
                    message=f"{kind_of}={value}" + (f" ({cond['reason']})" if cond.get("reason")
                                                    else ""),
                    type=kind_of, status=value, reason=str(cond.get("reason") or ""),
                    previous=known.conditions.get(kind_of))
                known.conditions[kind_of] = value
        for cs in statuses:
            self._container(known, cs, ready_cond, rec, history=not is_new)

        if ready_cond is not None:
            is_ready = ready_cond.get("status") == "True"
            since = str(ready_cond.get("lastTransitionTime") or "")
            kind = "PodReady" if is_ready else "PodNotReady"
            if known.ready is None or is_ready != known.ready:
                if known.ready is not None or is_ready:
                    when = parse_time(since)
                    rec(kind, when, message=str(ready_cond.get("reason") or ""), ready=is_ready)
                known.ready = is_ready
            elif since and known.ready_since and since != known.ready_since:
                # The same status with a later transition time: it flipped and flipped back while
                # no status reached us (a watch gap). The second flip's time is the condition's;
                # the first's is unknown, at or before it.
                when = parse_time(since)
                rec("PodNotReady" if is_ready else "PodReady", when,
                    message="flipped while no status was seen (at or before this time)",
                    ready=not is_ready, inferred=True)
                rec(kind, when, message="flipped back while no status was seen",
                    ready=is_ready, inferred=True)
            known.ready_since = since or known.ready_since
        return out

    def _container(
        self,
        known: _PodState,
        cs: Mapping[str, Any],
        ready_cond: Mapping[str, Any] | None,
        rec: Any,
        *,
        history: bool,
    ) -> None:
        # history: whether the pod was known before this version. A pod seen for the first time
        # (the initial list) brings no restart or termination records for its past; a known pod
        # whose container appears with restarts already (updates were missed) does.
        cname = str(cs.get("name") or "")
        prev = known.containers.get(cname)
        first = prev is None
        cur = prev or _ContainerState()
        state = cs.get("state") or {}
        state_kind, fields = container_state(cs)
        last = _get(cs, "lastState", "terminated")
        restarts = int(cs.get("restartCount") or 0)
        cid = str(cs.get("containerID") or "")

        # A container that ended since we last looked, seen only as lastState now.
        if isinstance(last, Mapping):
            # The kubelet writes a lastState with neither ID nor time when the instance's own end
            # never reached the API (kubelet_pods.go, convertToAPIContainerStatuses: the
            # container was removed, e.g. RestartingAllContainers with exit code 137): the
            # restartCount it comes with names it.
            last_id = str(last.get("containerID") or last.get("finishedAt")
                          or (f"unseen:{restarts}" if last.get("reason") else ""))
            if last_id and last_id not in cur.terminations:
                if history:
                    started_at = container_started_at(last)
                    if last_id not in cur.starts and started_at and not first:
                        # Counted as the kubelet counts: a waiting container's restartCount is
                        # that of the instance that died last.
                        number = restarts if state_kind == "waiting" else restarts - 1
                        self._unseen_instance(cur, cname, last, last_id, parse_time(started_at),
                                              number=number, rec=rec)
                    ended_at = parse_time(last.get("finishedAt"))
                    extra = {} if ended_at else {"inferred": True}  # dated by this status
                    rec("ContainerTerminated", ended_at, cname, _terminated_message(last),
                        **_terminated_data(last), **extra)
                cur.terminations.add(last_id)
                cur.starts.add(last_id)

        if restarts > cur.restart_count:
            # The restart is the start of the newest instance: running or terminated now, or
            # (waiting in back-off) the one lastState holds.
            when = (
                parse_time(_get(state, "running", "startedAt"))
                or parse_time(container_started_at(state.get("terminated")))
                or (parse_time(container_started_at(last) or last.get("finishedAt"))
                    if isinstance(last, Mapping) else None)
            )
            if history:
                previous = _terminated_data(last) if isinstance(last, Mapping) else {}
                rec("ContainerRestarted", when, cname,
                    f"restartCount {cur.restart_count} -> {restarts}",
                    restartCount=restarts, restarts=restarts - cur.restart_count,
                    previous=previous)
            cur.restart_count = restarts

        if state_kind == "running":
            started_at = str(fields.get("startedAt") or "")
            if cur.state != "running" or started_at != cur.started_at or cid != cur.container_id:
                rec("ContainerStarted", parse_time(started_at), cname,
                    f"restartCount {restarts}", restartCount=restarts, containerID=cid)
                cur.starts.add(cid)
            cur.state, cur.started_at, cur.waiting_reason = "running", started_at, ""
        elif state_kind == "terminated":
            term = fields
            finished = str(term.get("finishedAt") or "")
            term_id = str(term.get("containerID") or cid or finished)
            if cur.state != "terminated" or finished != cur.finished_at:
                if term_id not in cur.terminations:
                    rec("ContainerTerminated", parse_time(finished), cname,
                        _terminated_message(term), **_terminated_data(term))
                cur.terminations.add(term_id)
            cur.state, cur.finished_at, cur.waiting_reason = "terminated", finished, ""
        elif state_kind == "waiting":
            reason = str(fields.get("reason") or "")
            if cur.state != "waiting" or reason != cur.waiting_reason:
                detail = str(fields.get("message") or "")
                rec("ContainerWaiting", None, cname, reason + (f": {detail}" if detail else ""),
                    reason=reason, detail=detail)
            cur.state, cur.waiting_reason = "waiting", reason
        same_instance = bool(cid) and cid == cur.container_id
        cur.container_id = cid or cur.container_id

        started = cs.get("started")
        if started is True and cur.started is not True:
            rec("ContainerStartupPassed", None, cname)
        elif started is False and cur.started is True and same_instance \
                and state_kind == "running":
            # The same instance, still running, no longer counts as started: a kubelet restart
            # before 1.35 makes it wait for its startup probe again
            # (kubelet_versions.kubelet_restart_resets_probe_status). An exit clears it too;
            # ContainerTerminated tells that.
            rec("ContainerNotStarted", None, cname, "started true -> false, same instance")
        cur.started = started if isinstance(started, bool) else cur.started

        ready = bool(cs.get("ready"))
        if ready != cur.ready and not (first and not ready):
            # The API has no per-container ready time. The pod's Ready condition dates this change
            # only when it flips with it; otherwise (another container keeps the pod not ready)
            # its lastTransitionTime is older, and the time of this status update is used.
            flips = (ready_cond is not None and known.ready != ready
                     and (ready_cond.get("status") == "True") == ready)
            when = parse_time(ready_cond.get("lastTransitionTime")) if flips and ready_cond \
                else None
            rec("ContainerReady" if ready else "ContainerNotReady", when, cname, ready=ready)
        cur.ready = ready
        known.containers[cname] = cur

    @staticmethod
    def _unseen_instance(
        cur: _ContainerState,
        cname: str,
        last: Mapping[str, Any],
        last_id: str,
        started: datetime | None,
        *,
        number: int,
        rec: Any,
    ) -> None:
        """Records for the instance in ``last``, which lived and died while no status reached us.

        A whole instance can do so in an API outage (the kubelet posts only the newest status
        afterwards); its start is then known only from lastState. ``number`` is its restartCount.
        """
        # The instance before it ended unseen too: no later than this start.
        gone = cur.container_id
        if gone and gone not in cur.terminations and gone != last_id:
            rec("ContainerTerminated", started, cname,
                "ended while no status was seen", reason="", exitCode=None,
                signal=None, startedAt=cur.started_at or None, finishedAt=None,
                containerID=gone, inferred=True)
            cur.terminations.add(gone)
        rec("ContainerStarted", started, cname,
            f"restartCount {number} (seen only after it ended)",
            restartCount=number, containerID=str(last.get("containerID") or ""),
            inferred=True)
        if number > cur.restart_count:
            rec("ContainerRestarted", started, cname,
                f"restartCount {cur.restart_count} -> {number}",
                restartCount=number, restarts=number - cur.restart_count,
                previous={}, inferred=True)
            cur.restart_count = number

    # ------------------------------------------------------------------ endpoints

    def _slice(self, event_type: str, sl: Mapping[str, Any], wall: float) -> list[Record]:
        meta = sl.get("metadata") or {}
        name = str(meta.get("name") or "")
        service = str((meta.get("labels") or {}).get(SERVICE_NAME_LABEL) or name)
        when = (
            parse_time((meta.get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION))
            or update_time(sl)
            or datetime.fromtimestamp(wall, UTC)
        )
        old = self._slices.get(name, (service, {}))[1]
        new: dict[str, _Member] = {}
        if event_type != "DELETED":
            for ep in sl.get("endpoints") or []:
                cond = ep.get("conditions") or {}
                ready = cond.get("ready")
                serving = cond.get("serving")
                entry = _Member(
                    pod=_get(ep, "targetRef", "name"),
                    ready=True if ready is None else bool(ready),
                    serving=(True if ready is None else bool(ready)) if serving is None
                    else bool(serving),
                    terminating=bool(cond.get("terminating")),
                )
                for address in ep.get("addresses") or []:
                    new[str(address)] = entry
        if event_type == "DELETED":
            self._slices.pop(name, None)
        else:
            self._slices[name] = (service, new)
        ready_now = self._ready_addresses(service)
        out: list[Record] = []
        for address in sorted(set(old) | set(new)):
            before, after = old.get(address), new.get(address)
            if before == after:
                continue
            was_ready = before is not None and before.ready
            is_ready = after is not None and after.ready
            if is_ready and not was_ready:
                kind = "EndpointAdded"
            elif was_ready and not is_ready:
                kind = "EndpointRemoved"
            else:
                kind = "EndpointChanged"
            member: _Member | None = after if after is not None else before
            if member is None:  # pragma: no cover - an address is in old or new
                continue
            out.append(
                Record(
                    time=when,
                    source="endpoints",
                    kind=kind,
                    namespace=self.namespace,
                    pod=member.pod,
                    message=f"{address} {'ready' if is_ready else 'not ready'}"
                    + (" (gone)" if after is None else ""),
                    data={
                        "service": service,
                        "slice": name,
                        "address": address,
                        "listed": after is not None,
                        "ready": is_ready,
                        "serving": bool(after and after.serving),
                        "terminating": bool(after and after.terminating),
                        "ready_addresses": ready_now,
                    },
                )
            )
        return out

    def _ready_addresses(self, service: str) -> list[str]:
        addrs: set[str] = set()
        for svc, members in self._slices.values():
            if svc == service:
                addrs.update(a for a, m in members.items() if m.ready)
        return sorted(addrs, key=_address_key)


def _address_key(address: str) -> tuple[int, ...] | tuple[str]:
    parts = address.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)
    return (address,)


def _container_from_field_path(path: str) -> str | None:
    # spec.containers{app} / spec.initContainers{init}
    if "{" in path and path.endswith("}"):
        return path[path.index("{") + 1 : -1]
    return None


def _terminated_data(term: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "reason": str(term.get("reason") or ""),
        "exitCode": term.get("exitCode"),
        "signal": term.get("signal"),
        "startedAt": container_started_at(term) or None,
        "finishedAt": term.get("finishedAt"),
        "containerID": term.get("containerID"),
    }


def _terminated_message(term: Mapping[str, Any]) -> str:
    return f"{term.get('reason') or 'Terminated'}, exit code {term.get('exitCode')}"


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
