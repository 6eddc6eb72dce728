"""The HTML report: one article and chart per test, filters, no external resource, escaped text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pytest_probes import assert_restarts_within
from pytest_probes.assertions.context import context_of
from pytest_probes.chart import timeline_svg
from pytest_probes.html_report import TestResult, render
from pytest_probes.importers import replay_raw
from pytest_probes.timeline import Timeline

STREAMS = Path(__file__).resolve().parents[1] / "data" / "streams"


class Page(HTMLParser):
    """The elements of a page: (tag, attributes) in document order, and the scripts' text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def having(self, tag: str, cls: str = "") -> list[dict[str, str | None]]:
        return [a for t, a in self.elements
                if t == tag and (not cls or cls in (a.get("class") or "").split())]


def recorded(name: str, *, within: float) -> tuple[Timeline, dict[str, Any]]:
    """A recorded timeline after a helper checked it, and the report entry the plugin makes."""
    tl = replay_raw(STREAMS / f"{name}.jsonl")
    assert_restarts_within(tl, "web" if name == "liveness-restart" else "test", within=within)
    [m] = context_of(tl).measurements
    entry = {"nodeid": f"tests/test_x.py::test_{name.replace('-', '_')}",
             "scenario": name.replace("-", "_"), "helper": m.helper,
             "expected_earliest_s": m.earliest, "expected_latest_s": m.latest,
             "event_s": round(m.observed, 3), "observed_s": None, "latency_s": None,
             "wall_s": 21.5, "setup_s": 3.2, "deploy_s": 2.9,
             "measurements": [m.to_json() for m in context_of(tl).measurements]}
    return tl, entry


def results() -> list[TestResult]:
    out = []
    for n, (name, within, outcome) in enumerate([("liveness-restart", 12, "passed"),
                                                 ("onfailure-liveness-stop", 100, "passed")]):
        tl, entry = recorded(name, within=within)
        out.append(TestResult(entry["nodeid"], outcome, entry,
                              timeline_svg(tl, title=entry["nodeid"],
                                           windows=context_of(tl).measurements,
                                           pattern_id=f"gap-{n}")))
    out.append(TestResult("tests/test_x.py::test_no_window", "failed",
                          {"nodeid": "tests/test_x.py::test_no_window", "scenario": "no_window"},
                          "", "E   AssertionError: expected ≥1 restart within 1 s"))
    return out


def test_one_article_and_one_chart_per_test_failures_first() -> None:
    page = Page(render(results(), cluster={"k8s_version": "v1.37.2", "provider": "local"}))
    articles = page.having("article", "probe-test")
    assert [a["data-outcome"] for a in articles] == ["failed", "passed", "passed"]
    assert [a["data-scenario"] for a in articles] == [
        "no_window", "liveness_restart", "onfailure_liveness_stop"]
    assert len(page.having("figure", "chart")) == 3
    # Two drawn charts (the third test had none), each with its window; one gauge per window.
    assert len([a for t, a in page.elements if t == "svg" and "xmlns" in a]) == 2
    assert len(page.having("g", "window")) == 2
    assert len(page.having("svg", "gauge")) == 2
    # The filters: one checkbox per outcome present, one option per scenario (and "all").
    assert [a["value"] for a in page.having("input")] == ["failed", "passed"]
    assert [a["value"] for a in page.having("option")] == [
        "", "liveness_restart", "no_window", "onfailure_liveness_stop"]


def test_the_key_measurement_is_shown_against_its_window() -> None:
    text = render(results())
    assert "<dt>window</dt><dd>0–12 s after the reference</dd>" in text
    assert re.search(r"<dt>event</dt><dd>\d+\.\d s \(inside the window\)</dd>", text)
    assert "no timing window asserted" in text
    assert "expected ≥1 restart within 1 s" in text
    assert "1 failed, 2 passed" in text


def test_the_page_fetches_nothing() -> None:
    text = render(results())
    page = Page(text)
    for tag, attrs in page.elements:
        for name, value in attrs.items():
            assert name not in ("src", "href", "srcset", "action", "poster", "data"), (tag, name)
            if name == "xmlns":
                assert value == "http://www.w3.org/2000/svg"
    assert not page.having("link") and not page.having("img") and not page.having("iframe")
    assert [a for a in page.having("script")] == [{}]  # one inline script, no src
    assert "@import" not in text and "@font-face" not in text
    assert re.findall(r"url\((?!#)", text) == []
    # Addresses appear only as text (an event's message), never in an attribute but the SVG's
    # namespace.
    assert {v for _, a in page.elements for v in a.values() if v and "//" in v} == {
        "http://www.w3.org/2000/svg"}


def test_names_and_failure_text_are_escaped() -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    entry = {"nodeid": f"t.py::test_x[{evil}]", "scenario": f"x{evil}", "helper": evil,
             "expected_earliest_s": 1, "expected_latest_s": 2, "event_s": 5,
             "measurements": [{"helper": evil, "pod": evil, "reference": evil}]}
    text = render([TestResult(entry["nodeid"], "failed", entry, "", f"</pre>{evil}")],
                  title=evil, cluster={"runtime": evil})
    page = Page(text)
    assert len(page.having("script")) == 1 and not page.having("img")
    assert not [a for _, a in page.elements for name in a if name.startswith("on")
                and name != "onsubmit"]
    assert page.having("article")[0]["data-scenario"] == f"x{evil}"
    assert "(outside the window)" in text


def test_an_event_a_whole_second_early_counts_as_the_helpers_count_it() -> None:
    entry = {"nodeid": "t.py::test_z", "helper": "assert_ready_within",
             "expected_earliest_s": 5.404, "expected_latest_s": 8.404, "event_s": 5.0}
    text = render([TestResult("t.py::test_z", "passed", entry)])
    assert "5.0 s (inside the window within the API&#x27;s 1 s time resolution)" in text
    assert '<div class="key inside">' in text


def test_unknown_outcomes_show_as_errors_and_output_is_deterministic() -> None:
    odd = TestResult("t.py::test_y", "xpassed?", {"nodeid": "t.py::test_y"})
    page = Page(render([odd]))
    assert page.having("article")[0]["data-outcome"] == "error"
    assert render(results(), generated="x") == render(results(), generated="x")
    assert "no probe tests" in render([])
