"""One self-contained HTML page for a whole run: per test its outcome, key measurement and chart.

The page has no external resource (no script, style sheet, font or image is fetched; the CSS, the
JavaScript and the SVG charts are inline), so it can be mailed, attached to a CI job or opened
offline. Each test shows its outcome, its key measurement against the window the spec allows (a
small gauge and the numbers), the failure text if it failed, and its timeline chart
(:func:`pytest_probes.chart.timeline_svg`, with the expected window drawn). A few lines of plain
JavaScript filter the tests by outcome and by scenario; without JavaScript every test shows. The
layout is one column that fits a phone's width; a chart scrolls sideways there.

Everything that comes from a test (its node id, scenario, helper, pod, failure text) is escaped;
the charts escape their own text. Building the page is pure: the same results give the same bytes.
The plugin's ``--probes-html`` writes it; :func:`render` works without pytest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from pytest_probes.timing import API_TIME_RESOLUTION

OUTCOMES = ("failed", "error", "passed", "skipped")
"""The outcomes a test can have on the page, in the order the filters list them."""

MAX_FAILURE_CHARS = 6000
"""The failure text is cut to its last this many characters (the end says what went wrong)."""


@dataclass(frozen=True)
class TestResult:
    """One test as the page shows it.

    Attributes:
        nodeid: pytest's node id.
        outcome: One of :data:`OUTCOMES`.
        entry: The test's ``--probes-report`` entry (scenario, key measurement, durations).
        chart_svg: Its timeline chart (an SVG document), or ``""`` if none was drawn.
        failure: The failure text pytest reported, or ``""``.
    """

    __test__ = False  # not a pytest test class, despite its name

    nodeid: str
    outcome: str
    entry: Mapping[str, Any]
    chart_svg: str = ""
    failure: str = ""


def render(
    tests: Sequence[TestResult],
    *,
    cluster: Mapping[str, Any] | None = None,
    title: str = "pytest-probes report",
    generated: str = "",
) -> str:
    """Build the page.

    Args:
        tests: The tests, in the order to show them (failures are moved first).
        cluster: What ran them (``k8s_version``, ``runtime``, ``provider``), shown in the header.
        title: The page's title.
        generated: When the run ended, as text for the header (e.g. an ISO time); optional.

    Returns:
        The HTML document.
    """
    ordered = sorted(tests, key=lambda t: (_rank(_outcome(t)), t.nodeid))
    counts = Counter(_outcome(t) for t in ordered)
    scenarios = sorted({_scenario(t) for t in ordered})
    about = [f"{k.replace('_', ' ')}: {v}" for k, v in (cluster or {}).items() if v]
    if generated:
        about.append(f"generated {generated}")
    summary = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) or "no probe tests"
    boxes = "".join(
        f'<label class="pick o-{o}"><input type="checkbox" name="outcome" value="{o}" checked> '
        f"{o} ({counts[o]})</label>" for o in OUTCOMES if counts[o]
    )
    options = "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in scenarios)
    articles = "\n".join(_article(n, t) for n, t in enumerate(ordered))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<div class="top">
<h1>{_e(title)}</h1>
<p class="about">{_e(" · ".join(about))}</p>
<p class="summary">{len(ordered)} tests: {_e(summary)}</p>
<form class="filters" onsubmit="return false">
<fieldset><legend>Outcome</legend>{boxes}</fieldset>
<label class="scenario-pick">Scenario <select id="scenario"><option value="">all scenarios</option>
{options}</select></label>
<output id="shown">{len(ordered)} of {len(ordered)} shown</output>
</form>
</div>
{articles}
</main>
<script>{_JS}</script>
</body>
</html>
"""


def _outcome(test: TestResult) -> str:
    """The test's outcome, ``error`` for anything the page does not know."""
    return test.outcome if test.outcome in OUTCOMES else "error"


def _rank(outcome: str) -> int:
    return OUTCOMES.index(outcome)


def _scenario(test: TestResult) -> str:
    return str(test.entry.get("scenario") or test.nodeid.rsplit("::", 1)[-1])


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _seconds(value: object) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.1f} s"
    return "–"


def _article(n: int, test: TestResult) -> str:
    entry = test.entry
    outcome = _outcome(test)
    failure = test.failure[-MAX_FAILURE_CHARS:]
    parts = [
        f'<article class="probe-test o-{outcome}" id="t{n}" data-outcome="{outcome}" '
        f'data-scenario="{_e(_scenario(test))}">',
        f'<h2><span class="badge o-{outcome}">{outcome}</span> {_e(_scenario(test))}</h2>',
        f'<p class="nodeid"><code>{_e(test.nodeid)}</code></p>',
        _key_measurement(entry),
    ]
    if failure:
        parts.append(f'<details class="failure" open><summary>failure</summary>'
                     f"<pre>{_e(failure)}</pre></details>")
    if test.chart_svg:
        parts.append(f'<figure class="chart">{test.chart_svg}</figure>')
    else:
        parts.append('<figure class="chart missing"><p>no timeline chart</p></figure>')
    parts.append(_measurements(entry))
    parts.append("</article>")
    return "\n".join(parts)


def _key_measurement(entry: Mapping[str, Any]) -> str:
    durations = (f"wall {_seconds(entry.get('wall_s'))}, set-up {_seconds(entry.get('setup_s'))}"
                 f" (deploy {_seconds(entry.get('deploy_s'))})")
    if "helper" not in entry:
        return (f'<p class="key none">no timing window asserted · {_e(durations)}</p>')
    earliest, latest = entry.get("expected_earliest_s"), entry.get("expected_latest_s")
    event, observed = entry.get("event_s"), entry.get("observed_s")
    verdict, inside = _verdict(earliest, latest, event)
    rows = [
        ("helper", str(entry["helper"])),
        ("window", f"{_num(earliest)}–{_num(latest)} s after the reference"),
        ("event", f"{_seconds(event)} ({verdict})"),
        ("helper returned", _seconds(observed)),
        ("latency", _seconds(entry.get("latency_s"))),
        ("durations", durations),
    ]
    cells = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return (f'<div class="key {"inside" if inside else "outside"}">'
            f"{_gauge(earliest, latest, event, observed)}<dl>{cells}</dl></div>")


def _verdict(earliest: object, latest: object, event: object) -> tuple[str, bool]:
    """Whether the event came in the window, as the helpers judge it.

    Times the API gives have whole seconds (:data:`~pytest_probes.timing.API_TIME_RESOLUTION`),
    so the helpers accept an event that far outside either end; the page says so.
    """
    if not all(isinstance(v, int | float) for v in (earliest, latest, event)):
        return "no window", False
    assert isinstance(earliest, int | float) and isinstance(latest, int | float)
    assert isinstance(event, int | float)
    if earliest <= event <= latest:
        return "inside the window", True
    if earliest - API_TIME_RESOLUTION <= event <= latest + API_TIME_RESOLUTION:
        return (f"inside the window within the API's {API_TIME_RESOLUTION:g} s time "
                "resolution"), True
    return "outside the window", False


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "?"


def _gauge(earliest: object, latest: object, event: object, observed: object) -> str:
    """A one-line SVG: the window as a band on a scale from 0, the event and the return as ticks."""
    points = [v for v in (earliest, latest, event, observed)
              if isinstance(v, int | float) and math.isfinite(v)]
    if not points:
        return ""
    scale = max(max(points) * 1.1, 1.0)

    def at(value: float) -> float:
        return 4 + max(value, 0.0) / scale * 392

    out = ['<svg class="gauge" viewBox="0 0 400 30" width="400" height="30" role="img" '
           'aria-label="window and event">',
           '<line x1="4" x2="396" y1="15" y2="15" stroke="#999"/>']
    if isinstance(earliest, int | float) and isinstance(latest, int | float):
        right = at(latest) if math.isfinite(latest) else 396.0
        out.append(f'<rect x="{at(earliest):.1f}" y="6" width="{max(right - at(earliest), 2):.1f}"'
                   ' height="18" fill="#fdd835" fill-opacity="0.5" stroke="#e6a100"/>')
    if isinstance(observed, int | float) and math.isfinite(observed):
        out.append(f'<line x1="{at(observed):.1f}" x2="{at(observed):.1f}" y1="8" y2="22" '
                   'stroke="#555" stroke-dasharray="2,2"/>')
    if isinstance(event, int | float) and math.isfinite(event):
        out.append(f'<line x1="{at(event):.1f}" x2="{at(event):.1f}" y1="2" y2="28" '
                   'stroke="#d94801" stroke-width="3"/>')
    out.append("</svg>")
    return "".join(out)


def _measurements(entry: Mapping[str, Any]) -> str:
    found = entry.get("measurements") or []
    if not found:
        return ""
    head = "".join(f"<th>{h}</th>" for h in
                   ("helper", "pod", "reference", "window", "event", "returned"))
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in (
            m.get("helper", ""), m.get("pod", ""), m.get("reference", ""),
            f"{_num(m.get('earliest_s'))}–{_num(m.get('latest_s'))} s",
            _seconds(m.get("observed_s")), _seconds(m.get("returned_s")),
        )) + "</tr>"
        for m in found if isinstance(m, Mapping)
    )
    return (f'<details class="measurements"><summary>every measurement ({len(found)})</summary>'
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
            "</table></div></details>")


# Class names of the page avoid the charts' own (header, note, tick, grid, band, marker, window,
# legend): an inline SVG's <style> applies to the whole page.
_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1d;
background:#f4f5f7}
main{max-width:1120px;margin:0 auto;padding:12px}
.top{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:12px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h1{font-size:1.35em;margin:0 0 4px}
h2{font-size:1.1em;margin:0 0 4px;overflow-wrap:anywhere}
.about,.summary{margin:2px 0;color:#444;overflow-wrap:anywhere}
.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin-top:8px}
fieldset{border:0;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:6px}
fieldset legend{float:left;margin-right:6px;font-weight:600}
.pick{border:1px solid #ccc;border-radius:14px;padding:2px 10px;cursor:pointer;white-space:nowrap}
select{font:inherit;max-width:100%}
.scenario-pick{font-weight:600;max-width:100%}
#shown{color:#555}
.probe-test{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:12px;
border-left:6px solid #999;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.probe-test.o-passed{border-left-color:#31a354}
.probe-test.o-failed,.probe-test.o-error{border-left-color:#d62728}
.probe-test.o-skipped{border-left-color:#bbb}
[hidden]{display:none!important}
.badge{display:inline-block;font-size:.78em;text-transform:uppercase;letter-spacing:.04em;
padding:1px 8px;border-radius:10px;color:#fff;background:#777;vertical-align:2px}
.badge.o-passed{background:#2b8a3e}
.badge.o-failed,.badge.o-error{background:#c92a2a}
.nodeid{margin:0 0 8px;font-size:.85em;color:#555;overflow-wrap:anywhere}
.key{display:flex;flex-wrap:wrap;gap:8px 20px;align-items:flex-start;margin-bottom:8px}
.key dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
.key dt{color:#555}
.key dd{margin:0;overflow-wrap:anywhere}
.key.outside dd:nth-of-type(3){color:#c92a2a;font-weight:600}
.gauge{max-width:100%;height:auto}
.chart{margin:8px 0;overflow-x:auto;-webkit-overflow-scrolling:touch}
.chart svg{display:block;width:100%;height:auto;min-width:560px}
.chart.missing p{color:#777}
.failure pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff5f5;padding:8px;
border-radius:4px;font-size:.82em;max-height:24em;overflow:auto}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85em}
th,td{text-align:left;padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap}
summary{cursor:pointer;color:#333}
@media (max-width:600px){
body{font-size:14px}
main{padding:6px}
.top,.probe-test{padding:10px}
.key dl{grid-template-columns:1fr}
.key dt{font-size:.8em;margin-top:4px}
}
"""

_JS = """
(function () {
  var tests = Array.prototype.slice.call(document.querySelectorAll("article.probe-test"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=outcome]"));
  var scenario = document.getElementById("scenario");
  var shown = document.getElementById("shown");
  function apply() {
    var wanted = {};
    boxes.forEach(function (box) { wanted[box.value] = box.checked; });
    var pick = scenario.value, count = 0;
    tests.forEach(function (test) {
      var show = wanted[test.dataset.outcome] && (!pick || test.dataset.scenario === pick);
      test.hidden = !show;
      if (show) { count += 1; }
    });
    shown.textContent = count + " of " + tests.length + " shown";
  }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  scenario.addEventListener("change", apply);
  apply();
})();
"""
