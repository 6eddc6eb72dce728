"""An SVG chart of a timeline, for the folder a failed test leaves behind.

One row per pod shows when a container was running (light band) and the pod Ready (dark inner
band), with markers for probe failures (``Unhealthy`` events, coloured by probe), ``Killing``
events and container restarts. One block per Service shows, for each address its EndpointSlices
listed, when the address was listed (light band) and ready (dark inner band). A grey hatched band
across all rows marks a watch gap (a ``WatchGap`` record): there the recording shows only the net
change. An amber band across all rows marks an expected window (a helper's
:class:`~pytest_probes.assertions.context.Measurement`: from ``earliest`` to ``latest`` seconds
after its reference moment), with a line where the event that satisfied the helper came. The x
axis counts seconds from the first record. Every marker and band has a ``<title>`` tooltip.

The SVG is built as text with the standard library, so the same timeline gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from pytest_probes.assertions.context import Measurement
from pytest_probes.timeline import GAP_KIND, Record, Timeline, describe, format_time, gap_span

PROBE_COLOURS = {
    "liveness": "#d62728",
    "readiness": "#ff7f0e",
    "startup": "#9467bd",
    "probe": "#7f7f7f",
}
"""Marker colour of a probe failure, by the probe named at the start of the event message."""

_BAND_STYLE = {  # class -> (fill, inset from the row's band area, in pixels)
    "running": ("#c7e9c0", 0),
    "ready": ("#31a354", 4),
    "listed": ("#c6dbef", 0),
    "serving": ("#3182bd", 3),
}
_PLOT_WIDTH = 720
_POD_ROW = 30
_ADDRESS_ROW = 20
_HEADER_ROW = 20
_TOP = 44
_CHAR = 6.6  # approximate width of one character at font-size 11
_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_WINDOW_FILL = "#fdd835"
_WINDOW_STROKE = "#e6a100"
_EVENT_STROKE = "#d94801"


@dataclass
class _Band:
    start: float
    end: float
    kind: str
    note: str


@dataclass
class _Marker:
    at: float
    kind: str  # restart | killing | probe-failure
    probe: str
    text: str


@dataclass
class _Row:
    label: str
    height: int
    header: bool = False
    indent: int = 0
    bands: list[_Band] = field(default_factory=list)
    markers: list[_Marker] = field(default_factory=list)


def timeline_svg(
    timeline: Timeline,
    *,
    title: str = "",
    windows: Sequence[Measurement] = (),
    pattern_id: str = "gap",
) -> str:
    """Draw a timeline as a standalone SVG document.

    Args:
        timeline: The records to draw (live or frozen; a live one is drawn as it is now).
        title: The heading; defaults to the timeline's namespace.
        windows: Measurements whose expected window (and event) to draw over the records, e.g.
            the test's key measurement; the x axis is stretched to show a window's end.
        pattern_id: The id of the watch-gap hatching, unique per chart when several charts share
            one HTML page.

    Returns:
        The SVG text (UTF-8 safe, deterministic for the same records).
    """
    records = list(timeline.records)
    heading = title or f"namespace {timeline.namespace}"
    if not records:
        rows: list[_Row] = []
        t0_label, span = "", 1.0
        spans: list[tuple[float, float, float, Measurement]] = []
    else:
        t0 = records[0].time
        last = max([records[-1].time] + [gap_span(r)[1] for r in records if r.kind == GAP_KIND])
        spans = [_window_span(m, t0) for m in windows]
        # The axis reaches the windows' events and starts, and their ends unless an end is far
        # beyond everything else (a 300 s allowance for a 10 s scenario): then the band runs off
        # the right edge and its label gives the numbers.
        span = max([(last - t0).total_seconds(), 1.0] + [max(start, event)
                                                         for start, _, event, _ in spans])
        span = max([span] + [min(end, span * 1.5) for _, end, _, _ in spans])
        t0_label = format_time(t0)
        rows = _pod_rows(records, t0, span) + _service_rows(records, t0, span)
    longest = max((len(r.label) * _CHAR + r.indent for r in rows), default=60.0)
    label_width = int(min(longest + 24, 380))
    width = label_width + _PLOT_WIDTH + 32

    def x(seconds: float) -> float:
        return label_width + 8 + max(seconds, 0.0) / span * _PLOT_WIDTH

    plot_bottom = _TOP + (sum(r.height for r in rows) if rows else 24)
    body = [_axis_svg(span, x, _TOP, plot_bottom, t0_label)]
    y = _TOP
    for row in rows:
        body.append(_row_svg(row, y, x, width - 12))
        y += row.height
    # Over the rows (tinting them), so a window stays visible across bands that fill a row.
    body += [_window_svg(*window, x, plot_bottom, span) for window in spans]
    if not rows:
        body.append(f'<text x="{x(0):.1f}" y="{y + 16}" class="note">no records</text>')
    if records:
        body += [_gap_svg(r, records[0].time, x, plot_bottom, pattern_id) for r in records
                 if r.kind == GAP_KIND]
    if spans:
        body.append(_event_labels(spans, x, x(span)))
    legend, legend_height = _legend_svg(width, plot_bottom + 44, pattern_id,
                                        window=bool(spans))
    body.append(legend)
    height = plot_bottom + 44 + legend_height
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        "<style>.header{font-weight:bold}.note,.tick{fill:#555}"
        ".grid{stroke:#ddd;stroke-width:1}</style>",
        _GAP_PATTERN.replace('id="gap"', f'id="{escape(pattern_id)}"'),
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="22" font-size="15" font-weight="bold">{escape(heading)}</text>',
        *body,
        "</svg>",
        "",
    ])


def _window_span(m: Measurement, t0: datetime) -> tuple[float, float, float, Measurement]:
    """A measurement's window and event in seconds after ``t0``.

    An endless window ends at its event (the chart cannot draw infinity).
    """
    ref = (m.reference - t0).total_seconds()
    event = ref + m.observed
    end = ref + m.latest if math.isfinite(m.latest) else max(event, ref + m.earliest)
    return ref + m.earliest, end, event, m


def _window_svg(start: float, end: float, event: float, m: Measurement,
                x: Callable[[float], float], bottom: int, span: float) -> str:
    left, right = x(start), max(x(min(end, span)), x(start) + 2)
    window = f"{m.earliest:g}–{m.latest:g} s" if math.isfinite(m.latest) else f"≥{m.earliest:g} s"
    tip = (f"{m.helper} {m.pod}: expected {window} after {format_time(m.reference)}; "
           f"the event came at {m.observed:.1f} s")
    return (f'<g class="window"><title>{escape(tip)}</title>'
            f'<rect x="{left:.1f}" y="{_TOP}" width="{right - left:.1f}" '
            f'height="{bottom - _TOP}" fill="{_WINDOW_FILL}" fill-opacity="0.25" '
            f'stroke="{_WINDOW_STROKE}" stroke-dasharray="5,3"/>'
            f'<line class="event" x1="{x(event):.1f}" x2="{x(event):.1f}" y1="{_TOP - 4}" '
            f'y2="{bottom}" stroke="{_EVENT_STROKE}" stroke-width="2"/></g>')


def _event_labels(spans: list[tuple[float, float, float, Measurement]],
                  x: Callable[[float], float], right: float) -> str:
    """One label above the plot per window: which helper, its window, when the event came."""
    out = []
    for n, (start, _end, _event, m) in enumerate(spans[:2]):
        window = (f"{m.earliest:g}–{m.latest:g} s" if math.isfinite(m.latest)
                  else f"≥{m.earliest:g} s")
        text = (f"{m.helper}: window {window}, event at {m.observed:.1f} s, both after "
                f"{m.reference:%H:%M:%S}")
        # Left-aligned at the window's start, unless that would run past the plot's right end.
        at, anchor = x(start), "start"
        if at + len(text) * _CHAR > right:
            at, anchor = right, "end"
        out.append(f'<text class="window-label" x="{at:.1f}" y="{_TOP - 8 - 12 * n}" '
                   f'text-anchor="{anchor}" fill="#8a5a00">{escape(text)}</text>')
    return "\n".join(out)


def _gap_svg(rec: Record, t0: datetime, x: Callable[[float], float], bottom: int,
             pattern_id: str) -> str:
    begin, end = ((t - t0).total_seconds() for t in gap_span(rec))
    left, right = x(begin), max(x(end), x(begin) + 2)
    return (f'<rect class="gap" x="{left:.1f}" y="{_TOP}" width="{right - left:.1f}" '
            f'height="{bottom - _TOP}" fill="url(#{escape(pattern_id)})" stroke="#888" '
            'stroke-dasharray="3,2">'
            f'<title>{escape(describe(rec))}</title></rect>')


_GAP_PATTERN = ('<defs><pattern id="gap" width="6" height="6" patternUnits="userSpaceOnUse" '
                'patternTransform="rotate(45)"><rect width="6" height="6" fill="#888" '
                'fill-opacity="0.12"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" '
                'stroke-width="2" stroke-opacity="0.5"/></pattern></defs>')


def _seconds(rec: Record, t0: datetime) -> float:
    return (rec.time - t0).total_seconds()


def _intervals(changes: Iterable[tuple[float, bool]], end: float) -> list[tuple[float, float]]:
    """Turn (time, on) transitions into closed (start, end) intervals; an open one ends at end."""
    out: list[tuple[float, float]] = []
    opened: float | None = None
    for at, on in changes:
        if on and opened is None:
            opened = at
        elif not on and opened is not None:
            out.append((opened, at))
            opened = None
    if opened is not None:
        out.append((opened, end))
    return out


def _pod_rows(records: list[Record], t0: datetime, span: float) -> list[_Row]:
    pods = [r.pod for r in records if r.pod is not None and r.source in ("pod", "event")]
    rows = []
    for pod in dict.fromkeys(pods):
        mine = [r for r in records if r.pod == pod and r.source in ("pod", "event")]
        running_containers: set[str] = set()
        running: list[tuple[float, bool]] = []
        ready: list[tuple[float, bool]] = []
        row = _Row(label=pod or "", height=_POD_ROW)
        for rec in mine:
            at = _seconds(rec, t0)
            was_running = bool(running_containers)
            if rec.kind == "ContainerStarted":
                running_containers.add(rec.container or "")
            elif rec.kind in ("ContainerTerminated", "ContainerWaiting"):
                running_containers.discard(rec.container or "")
            elif rec.kind == "PodDeleted":
                running_containers.clear()
                ready.append((at, False))
            elif rec.kind in ("PodReady", "PodNotReady"):
                ready.append((at, rec.kind == "PodReady"))
            if bool(running_containers) != was_running:
                running.append((at, not was_running))
            marker = _marker(rec, at)
            if marker is not None:
                row.markers.append(marker)
        row.bands += [_Band(a, b, "running", "container running") for a, b in
                      _intervals(running, span)]
        row.bands += [_Band(a, b, "ready", "pod Ready") for a, b in _intervals(ready, span)]
        rows.append(row)
    return rows


def _marker(rec: Record, at: float) -> _Marker | None:
    when = f"+{at:.1f} s ({format_time(rec.time)})"
    who = f" [{rec.container}]" if rec.container else ""
    if rec.kind == "ContainerRestarted":
        return _Marker(at, "restart", "", f"{when} restart{who}: {rec.message}")
    if rec.source != "event" or rec.kind not in ("Unhealthy", "Killing"):
        return None
    times = int(rec.data.get("count_delta") or 1)
    repeat = f" (×{times})" if times > 1 else ""
    if rec.kind == "Killing":
        return _Marker(at, "killing", "", f"{when} Killing{who}{repeat}: {rec.message}")
    words = rec.message.split()
    probe = words[0].lower() if words and words[0].lower() in PROBE_COLOURS else "probe"
    return _Marker(at, "probe-failure", probe, f"{when} Unhealthy{who}{repeat}: {rec.message}")


def _service_rows(records: list[Record], t0: datetime, span: float) -> list[_Row]:
    by_service: dict[str, dict[str, list[Record]]] = {}
    for rec in records:
        if rec.source == "endpoints":
            service = str(rec.data.get("service") or "?")
            address = str(rec.data.get("address") or "?")
            by_service.setdefault(service, {}).setdefault(address, []).append(rec)
    rows = []
    for service, addresses in by_service.items():
        rows.append(_Row(label=f"Service {service}", height=_HEADER_ROW, header=True))
        for address, mine in addresses.items():
            pods = [r.pod for r in mine if r.pod]
            row = _Row(label=address + (f" {pods[-1]}" if pods else ""),
                       height=_ADDRESS_ROW, indent=12)
            listed = [(_seconds(r, t0), bool(r.data.get("listed"))) for r in mine]
            ready = [(_seconds(r, t0), bool(r.data.get("ready"))) for r in mine]
            row.bands += [_Band(a, b, "listed", "address listed") for a, b in
                          _intervals(listed, span)]
            row.bands += [_Band(a, b, "serving", "address ready") for a, b in
                          _intervals(ready, span)]
            rows.append(row)
    return rows


def _row_svg(row: _Row, y: int, x: Callable[[float], float], right: float) -> str:
    cls = ' class="header"' if row.header else ""
    shown = row.label if len(row.label) <= 52 else row.label[:51] + "…"
    out = [f'<text x="{12 + row.indent}" y="{y + row.height / 2 + 4:.1f}"{cls}>'
           f"{escape(shown)}"
           f"<title>{escape(row.label)}</title></text>"]
    if row.header:
        return out[0]
    top, bottom = y + 3, y + row.height - 3
    out.append(f'<line class="grid" x1="12" x2="{right:.1f}" y1="{y + row.height}" '
               f'y2="{y + row.height}"/>')
    for band in row.bands:
        fill, inset = _BAND_STYLE[band.kind]
        x1, x2 = x(band.start), x(band.end)
        out.append(
            f'<rect class="band {band.kind}" x="{x1:.1f}" y="{top + inset}" '
            f'width="{max(x2 - x1, 1.5):.1f}" height="{bottom - top - 2 * inset}" '
            f'fill="{fill}" stroke="#ffffff" stroke-width="0.6">'
            f"<title>{escape(band.note)} +{band.start:.1f} s to +{band.end:.1f} s</title></rect>"
        )
    lanes = {"probe-failure": top + 5.0, "killing": (top + bottom) / 2, "restart": bottom - 5.0}
    for marker in row.markers:
        classes = f"marker {marker.kind}" + (f" {marker.probe}" if marker.probe else "")
        out.append(f'<g class="{classes}"><title>{escape(marker.text)}</title>'
                   f"{_shape(marker.kind, marker.probe, x(marker.at), lanes[marker.kind])}</g>")
    return "\n".join(out)


def _shape(kind: str, probe: str, cx: float, cy: float) -> str:
    if kind == "probe-failure":
        return (f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{PROBE_COLOURS[probe]}" '
                'stroke="#ffffff" stroke-width="0.8"/>')
    if kind == "killing":
        return (f'<path d="M{cx - 4:.1f},{cy - 4:.1f}L{cx + 4:.1f},{cy + 4:.1f}'
                f'M{cx - 4:.1f},{cy + 4:.1f}L{cx + 4:.1f},{cy - 4:.1f}" stroke="#000000" '
                'stroke-width="2"/>')
    return (f'<path d="M{cx:.1f},{cy - 5:.1f}L{cx + 5:.1f},{cy:.1f}L{cx:.1f},{cy + 5:.1f}'
            f'L{cx - 5:.1f},{cy:.1f}Z" fill="#1f1f1f" stroke="#ffffff" stroke-width="0.8"/>')


def _tick_step(span: float) -> int:
    nice = [s for s in _NICE_STEPS if span / s <= 10]
    return nice[0] if nice else 3600 * (int(span // 36000) + 1)


def _axis_svg(span: float, x: Callable[[float], float], top: int, bottom: int, t0: str) -> str:
    step = _tick_step(span)
    out = [f'<line x1="{x(0):.1f}" x2="{x(span):.1f}" y1="{bottom}" y2="{bottom}" '
           'stroke="#333333"/>']
    for n in range(int(span // step) + 1):
        at = x(n * step)
        out.append(f'<line class="grid" x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{bottom}"/>')
        out.append(f'<text class="tick" x="{at:.1f}" y="{bottom + 14}" '
                   f'text-anchor="middle">{n * step}</text>')
    since = f" since {t0}" if t0 else ""
    out.append(f'<text class="note" x="{x(span / 2):.1f}" y="{bottom + 30}" '
               f'text-anchor="middle">seconds{escape(since)} (server time)</text>')
    return "\n".join(out)


def _legend_svg(width: int, y: int, pattern_id: str, *, window: bool) -> tuple[str, int]:
    items: list[tuple[str, str]] = [
        (f'<rect x="0" y="-6" width="22" height="12" fill="{_BAND_STYLE["running"][0]}"/>',
         "container running"),
        (f'<rect x="0" y="-3" width="22" height="6" fill="{_BAND_STYLE["ready"][0]}"/>',
         "pod Ready"),
        (f'<rect x="0" y="-6" width="22" height="12" fill="{_BAND_STYLE["listed"][0]}"/>',
         "address listed"),
        (f'<rect x="0" y="-3" width="22" height="6" fill="{_BAND_STYLE["serving"][0]}"/>',
         "address ready"),
        *((_shape("probe-failure", p, 11, 0), f"{p} failure") for p in PROBE_COLOURS
          if p != "probe"),
        (_shape("killing", "", 11, 0), "Killing"),
        (_shape("restart", "", 11, 0), "container restart"),
        (f'<rect x="0" y="-6" width="22" height="12" fill="url(#{escape(pattern_id)})" '
         'stroke="#888"/>', "watch gap"),
    ]
    if window:
        items.append((
            f'<rect x="0" y="-6" width="22" height="12" fill="{_WINDOW_FILL}" '
            f'fill-opacity="0.25" stroke="{_WINDOW_STROKE}" stroke-dasharray="5,3"/>'
            f'<line x1="11" x2="11" y1="-7" y2="7" stroke="{_EVENT_STROKE}" stroke-width="2"/>',
            "expected window, event"))
    per_line = max((width - 24) // 150, 1)
    out = ['<g class="legend">']
    for n, (swatch, text) in enumerate(items):
        gx, gy = 12 + (n % per_line) * 150, y + (n // per_line) * 20
        out.append(f'<g transform="translate({gx},{gy})">{swatch}'
                   f'<text x="28" y="4">{escape(text)}</text></g>')
    out.append("</g>")
    return "\n".join(out), ((len(items) - 1) // per_line + 1) * 20 + 8
