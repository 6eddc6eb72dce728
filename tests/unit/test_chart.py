"""The SVG chart of a timeline: valid XML, one mark per recorded transition, escaped text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_probes.assertions.context import context_of
from pytest_probes.chart import timeline_svg
from pytest_probes.importers import replay_raw
from pytest_probes.timeline import Record, Timeline
from tests.helpers import seed000_timeline

DATA = Path(__file__).resolve().parents[1] / "data"
SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def recorded() -> dict[str, Timeline]:
    return {
        "liveness-restart": replay_raw(DATA / "streams" / "liveness-restart.jsonl"),
        "onfailure-liveness-stop": replay_raw(DATA / "streams" / "onfailure-liveness-stop.jsonl"),
        "seed000": seed000_timeline(DATA / "seed000"),
    }


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def with_class(root: ET.Element, tag: str, *classes: str) -> list[ET.Element]:
    return [el for el in root.iter(f"{SVG}{tag}")
            if set(classes) <= set((el.get("class") or "").split())]


def count(tl: Timeline, kind: str, source: str | None = None) -> int:
    return sum(1 for r in tl if r.kind == kind and r.pod is not None
               and (source is None or r.source == source))


@pytest.mark.parametrize("name", ["liveness-restart", "onfailure-liveness-stop", "seed000"])
def test_recorded_timeline_has_one_mark_per_transition(name: str) -> None:
    tl = recorded()[name]
    root = parse(timeline_svg(tl, title=name))

    assert len(with_class(root, "g", "marker", "restart")) == count(tl, "ContainerRestarted")
    assert len(with_class(root, "g", "marker", "killing")) == count(tl, "Killing", "event")
    failures = [r for r in tl if r.kind == "Unhealthy" and r.pod is not None]
    assert len(with_class(root, "g", "marker", "probe-failure")) == len(failures)
    for probe in ("liveness", "readiness", "startup"):
        expected = sum(1 for r in failures if r.message.lower().startswith(probe))
        assert len(with_class(root, "g", "probe-failure", probe)) == expected, probe
    # Every (single-container) start opens a running band, every PodReady a Ready band, every
    # EndpointAdded a band of the address being ready.
    assert len(with_class(root, "rect", "band", "running")) == count(tl, "ContainerStarted")
    assert len(with_class(root, "rect", "band", "ready")) == count(tl, "PodReady")
    assert len(with_class(root, "rect", "band", "serving")) == count(tl, "EndpointAdded")
    for marker in with_class(root, "g", "marker"):
        tip = marker.find(f"{SVG}title")
        assert tip is not None and tip.text and "+" in tip.text and " s (" in tip.text


def test_recorded_streams_cover_every_mark() -> None:
    # The counts above are only meaningful if the data has each kind of mark to count.
    tls = recorded().values()
    for kind in ("ContainerRestarted", "Killing", "Unhealthy", "PodReady", "EndpointAdded",
                 "ContainerStarted"):
        assert any(count(tl, kind) for tl in tls), kind
    assert any(r.message.startswith("Readiness") for tl in tls for r in tl)


def test_rows_and_tooltips_name_pods_services_and_times() -> None:
    tl = recorded()["liveness-restart"]
    svg = timeline_svg(tl)
    texts = [el.text or "" for el in parse(svg).iter(f"{SVG}text")]
    for pod in {r.pod for r in tl if r.source == "pod"}:
        assert pod in texts
    assert "Service web" in texts
    assert f"namespace {tl.namespace}" in texts
    assert "seconds since 2026-11-21T16:59:42Z (server time)" in texts
    killing = next(r for r in tl if r.kind == "Killing")
    tips = [el.text or "" for el in parse(svg).iter(f"{SVG}title")]
    assert f"+7.0 s (2026-11-21T16:59:49Z) Killing [app]: {killing.message}" in tips


def test_output_is_deterministic() -> None:
    first, second = recorded()["seed000"], recorded()["seed000"]
    assert timeline_svg(first) == timeline_svg(second)


def test_empty_timeline() -> None:
    root = parse(timeline_svg(Timeline("empty"), title="nothing"))
    texts = [el.text for el in root.iter(f"{SVG}text")]
    assert "nothing" in texts and "no records" in texts
    assert not with_class(root, "g", "marker") and not with_class(root, "rect", "band")


def test_single_record_and_markup_in_names_are_escaped() -> None:
    pod = 'a<b>&"c'
    rec = Record(time=T0, source="event", kind="Unhealthy", namespace="ns", pod=pod,
                 container="app", message="Startup probe failed: <html> & more",
                 data={"count_delta": 3})
    svg = timeline_svg(Timeline("ns", [rec]), title="<title & more>")
    assert "<b>" not in svg and "<html>" not in svg
    root = parse(svg)
    assert pod in [el.text for el in root.iter(f"{SVG}text")]
    [marker] = with_class(root, "g", "marker", "probe-failure", "startup")
    tip = marker.find(f"{SVG}title")
    assert tip is not None
    assert tip.text == ("+0.0 s (2026-11-21T12:00:00Z) Unhealthy [app] (×3): "
                        "Startup probe failed: <html> & more")


def test_the_expected_window_and_the_event_are_drawn_over_the_records() -> None:
    from pytest_probes import assert_restarts_within

    tl = recorded()["liveness-restart"]
    assert_restarts_within(tl, "web", within=12)
    [m] = context_of(tl).measurements
    root = parse(timeline_svg(tl, windows=[m], pattern_id="gap-1"))
    [window] = with_class(root, "g", "window")
    rect, line = window.find(f"{SVG}rect"), window.find(f"{SVG}line")
    assert rect is not None and line is not None
    # The axis: 0 s at the first tick, one tick per step; the band from the window's start
    # (the reference, 0 s) to its end (12 s), the event line at the restart.
    ticks = {float(t.text or ""): float(t.get("x") or 0) for t in with_class(root, "text", "tick")}
    per_second = (ticks[10] - ticks[0]) / 10
    start = ticks[0] + (m.reference - tl.records[0].time).total_seconds() * per_second
    assert float(rect.get("x") or 0) == pytest.approx(start, abs=0.1)
    assert float(rect.get("width") or 0) == pytest.approx(12 * per_second, abs=0.2)
    assert float(line.get("x1") or 0) == pytest.approx(start + m.observed * per_second, abs=0.1)
    title = window.find(f"{SVG}title")
    assert title is not None and title.text is not None
    assert title.text.startswith("assert_restarts_within web: expected 0–12 s after 2026-11-21T")
    labels = [el.text for el in with_class(root, "text", "window-label")]
    assert labels == [f"assert_restarts_within: window 0–12 s, event at {m.observed:.1f} s, "
                      f"both after {m.reference:%H:%M:%S}"]
    # The hatching has the id given, and everything that uses it points at that id.
    assert [p.get("id") for p in root.iter(f"{SVG}pattern")] == ["gap-1"]
    assert "url(#gap)" not in timeline_svg(tl, windows=[m], pattern_id="gap-1")
    # Without a window the legend does not offer one.
    assert "expected window" not in timeline_svg(tl)


def test_a_far_window_end_runs_off_the_edge_instead_of_squeezing_the_records() -> None:
    from pytest_probes import assert_restarts_within

    tl = recorded()["liveness-restart"]  # 11 s of records
    assert_restarts_within(tl, "web", within=300)
    root = parse(timeline_svg(tl, windows=list(context_of(tl).measurements)))
    ticks = [float(t.text or "") for t in with_class(root, "text", "tick")]
    assert max(ticks) <= 20  # not 300
    [rect] = [el for w in with_class(root, "g", "window") for el in w.iter(f"{SVG}rect")]
    axis_end = max(float(t.get("x") or 0) for t in with_class(root, "text", "tick"))
    assert float(rect.get("x") or 0) + float(rect.get("width") or 0) >= axis_end
    [m] = context_of(tl).measurements
    assert [el.text for el in with_class(root, "text", "window-label")] == [
        f"assert_restarts_within: window 0–300 s, event at {m.observed:.1f} s, "
        f"both after {m.reference:%H:%M:%S}"]
