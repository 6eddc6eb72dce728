"""Turn recordings made with other tools into a timeline, so the same helpers can assert on them.

Supported inputs, as the seed write-ups captured them:

- JSON lines from an event exporter with the fields ``1_POD``, ``2_AT``, ``3_EVENT``, ``4_CNT``,
  ``5_MSG`` (seed 000);
- the output of ``kubectl get endpoints NAME -w -o custom-columns=UPDATED:...trigger-time,
  ENDPOINTS_IP:subsets[*].addresses[*].ip`` (seed 000), with a ``kubectl get pods -o wide`` listing
  to map addresses to pods.

Both are converted into the API objects they summarise and fed through the same
:class:`~pytest_probes.reducer.Reducer` a live recording uses, so aggregation and membership are
interpreted identically (:func:`timeline_from_exports`). Which files make up a recording, and of
which Service, is the caller's to say: seed 000's are in the tests (``tests/helpers.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_probes.errors import ProbesError
from pytest_probes.reducer import SERVICE_NAME_LABEL, TRIGGER_TIME_ANNOTATION, Reducer
from pytest_probes.timeline import GAP_KIND, Record, Timeline, format_time, parse_time


def _exporter_time(text: str) -> datetime:
    # "2022-06-11 01:51:51 +0000 UTC" (Go's time.Time.String())
    parts = text.replace(" UTC", "").split()
    when = parse_time(f"{parts[0]}T{parts[1]}{parts[2][:3]}:{parts[2][3:]}")
    if when is None:
        raise ValueError(text)
    return when


def events_from_exporter(lines: Iterable[str], *, namespace: str, source: str = "<lines>") -> list[
    dict[str, Any]
]:
    """Convert event-exporter JSON lines into core/v1 Event dicts.

    Lines that are not JSON objects (log noise such as client-side throttling notices) are
    skipped. Events of the same pod, reason and message are one aggregated Event object, as the
    kubelet's event correlator makes them, so ``count`` increments are interpreted correctly.

    Raises:
        ProbesError: A JSON line lacks a field, naming the source and line number.
    """
    out = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            obj = json.loads(text)
            pod, reason, message = obj["1_POD"], obj["3_EVENT"], obj["5_MSG"]
            when = format_time(_exporter_time(obj["2_AT"]))
            count = int(obj["4_CNT"])
        except (ValueError, KeyError, IndexError) as err:
            raise ProbesError(
                f"{source}:{number}: not an event-exporter line ({err}); expected JSON with "
                "1_POD, 2_AT, 3_EVENT, 4_CNT, 5_MSG"
            ) from err
        container = None
        if reason == "Killing" or "container " in message:
            words = message.split()
            if "container" in [w.lower() for w in words[:2]]:
                container = words[1] if words[0].lower() == "container" else words[2]
        out.append(
            {
                "metadata": {"uid": f"{pod}/{reason}/{message}", "namespace": namespace},
                "involvedObject": {
                    "kind": "Pod",
                    "name": pod,
                    "namespace": namespace,
                    **({"fieldPath": f"spec.containers{{{container}}}"} if container else {}),
                },
                "reason": reason,
                "message": message,
                "count": count,
                "lastTimestamp": when,
                "type": "Warning" if reason == "Unhealthy" else "Normal",
                "source": {"component": "kubelet"},
            }
        )
    return out


def pod_addresses(listing: str) -> dict[str, str]:
    """Map pod IPs to pod names from ``kubectl get pods -o wide`` output."""
    lines = [ln for ln in listing.splitlines() if ln.strip()]
    if not lines:
        return {}
    header = lines[0].split()
    if "IP" not in header or "NAME" not in header:
        raise ProbesError("not `kubectl get pods -o wide` output: no NAME and IP columns")
    out = {}
    for line in lines[1:]:
        # RESTARTS may read "2 (27s ago)": drop parenthesised groups before splitting.
        cleaned = line
        while "(" in cleaned and ")" in cleaned:
            start = cleaned.index("(")
            cleaned = cleaned[:start] + cleaned[cleaned.index(")", start) + 1 :]
        cols = cleaned.split()
        out[cols[header.index("IP")]] = cols[header.index("NAME")]
    return out


def endpoint_slices_from_watch(
    text: str, *, service: str, namespace: str, pods: dict[str, str], start: datetime
) -> list[dict[str, Any]]:
    """Convert ``kubectl get endpoints -w`` custom-column output into EndpointSlice dicts.

    Each line becomes the Service's slice as it was then: the listed addresses, all ready. The
    first line's ``<none>`` (no trigger time yet) is stamped ``start``.
    """
    slices = []
    for line in text.splitlines():
        cols = line.split()
        if len(cols) < 1 or cols[0] == "UPDATED":
            continue
        stamp = start if cols[0] == "<none>" else parse_time(cols[0])
        if stamp is None:
            continue
        addresses = cols[1].split(",") if len(cols) > 1 and cols[1] != "<none>" else []
        slices.append(
            {
                "metadata": {
                    "name": service,
                    "namespace": namespace,
                    "labels": {SERVICE_NAME_LABEL: service},
                    "annotations": {TRIGGER_TIME_ANNOTATION: format_time(stamp)},
                },
                "endpoints": [
                    {
                        "addresses": [ip],
                        "conditions": {"ready": True, "serving": True, "terminating": False},
                        **({"targetRef": {"kind": "Pod", "name": pods[ip]}} if ip in pods else {}),
                    }
                    for ip in addresses
                ],
            }
        )
    return slices


def timeline_from_exports(
    *, events: Path, endpoints_watch: Path, pods: Path, service: str, namespace: str = "probes"
) -> Timeline:
    """Build a timeline from an event export and an endpoints watch of one Service.

    The events and the endpoint slices are fed through one reducer in time order; the first
    event's time stands for the watch's first line if it has no trigger time yet.

    Args:
        events: Event-exporter JSON lines (:func:`events_from_exporter`).
        endpoints_watch: The Service's ``kubectl get endpoints -w`` custom-column output
            (:func:`endpoint_slices_from_watch`).
        pods: ``kubectl get pods -o wide`` output from before the recording, to map addresses to
            pods (:func:`pod_addresses`).
        service: The Service the endpoints watch is of.
        namespace: The namespace the records are put in.
    """
    reducer = Reducer(namespace)
    exported = events_from_exporter(
        events.read_text(encoding="utf-8").splitlines(),
        namespace=namespace,
        source=str(events),
    )
    start = min(parse_time(e["lastTimestamp"]) or datetime.max for e in exported)
    addresses = pod_addresses(pods.read_text(encoding="utf-8"))
    slices = endpoint_slices_from_watch(
        endpoints_watch.read_text(encoding="utf-8"),
        service=service,
        namespace=namespace,
        pods=addresses,
        start=start,
    )
    feed: list[tuple[datetime, str, dict[str, Any]]] = []
    feed += [(parse_time(e["lastTimestamp"]) or start, "event", e) for e in exported]
    feed += [
        (parse_time(s["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION]) or start, "endpoints", s)
        for s in slices
    ]
    feed.sort(key=lambda item: (item[0], item[1] == "endpoints"))
    records: list[Record] = []
    for _when, source, obj in feed:
        records += reducer.feed(source, "MODIFIED", obj, received=0.0, received_wall=0.0)
    numbered = [replace(r, seq=i) for i, r in enumerate(records, start=1)]
    return Timeline(namespace, numbered, live=False, started=start)


def replay_raw(path: Path, *, namespace: str | None = None) -> Timeline:
    """Replay a raw watch stream saved by a :class:`~pytest_probes.recorder.Recorder`.

    Each line is fed through a fresh :class:`~pytest_probes.reducer.Reducer` in the order it was
    received, so the result is the timeline the recorder built live, frozen; a ``WatchGap`` line
    (the recorder's own, its object the record) is taken as it is.

    Raises:
        ProbesError: A line is not a raw watch event, naming the file and line.
    """
    reducer: Reducer | None = None
    records: list[Record] = []
    started: datetime | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            obj = event["object"]
            ns = namespace or (obj.get("metadata") or {}).get("namespace") or ""
            if reducer is None:
                reducer = Reducer(ns)
            if event["type"] == GAP_KIND:  # the recorder's own line: the object is the record
                out = [Record.from_json(obj)]
            else:
                out = reducer.feed(event["source"], event["type"], obj,
                                   received=float(event.get("received", 0.0)),
                                   received_wall=float(event.get("received_wall", 0.0)))
        except (ValueError, KeyError, TypeError) as err:
            raise ProbesError(
                f"{path}:{number}: not a raw watch event ({err}); expected JSON with source, "
                "type, object"
            ) from err
        if started is None and event.get("received_wall"):
            started = datetime.fromtimestamp(float(event["received_wall"]), UTC)
        records += out
    numbered = [replace(r, seq=i) for i, r in enumerate(records, start=1)]
    return Timeline(reducer.namespace if reducer else (namespace or ""), numbered,
                    live=False, started=started)
