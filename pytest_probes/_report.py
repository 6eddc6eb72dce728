"""What the plugin reports of a probe test and of the run.

A test's entry (its scenario fields and key measurement), its JUnit properties, its timeline
chart and artifacts, and the run's HTML page.

Kept apart from :mod:`pytest_probes.plugin` (the hooks) so each stays one concern; the hooks
call these.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_probes._stash import ProbesState, report_entry
from pytest_probes.assertions.context import context_of
from pytest_probes.chart import timeline_svg
from pytest_probes.html_report import TestResult, render

log = logging.getLogger(__name__)


def junit_properties(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """The key measurement of a report entry as JUnit ``<property>`` name/value pairs.

    ``probes.window`` is the window the spec allows (seconds after the reference), ``probes.event``
    when the record that satisfied the helper came, ``probes.observed`` when the helper returned
    (both after the reference, on the server's clock).
    """
    if "helper" not in entry:
        return []
    out = [("probes.helper", str(entry["helper"])),
           ("probes.window", f"{entry['expected_earliest_s']:g}-{entry['expected_latest_s']:g} s"),
           ("probes.event", f"{entry['event_s']:g} s")]
    if entry.get("observed_s") is not None:
        out.append(("probes.observed", f"{entry['observed_s']:g} s"))
    return out


TIMELINE_SECTION = "probes timeline"


def test_fields(item: pytest.Item) -> dict[str, Any]:
    """The scenario's name and what the test recorded with pytest's ``record_property``."""
    name = getattr(item, "originalname", None) or item.name
    fields: dict[str, Any] = {"scenario": name.removeprefix("test_")}
    # What a test recorded with pytest's record_property (an observed count, say).
    observed = {str(k): v for k, v in item.user_properties if not str(k).startswith("probes.")}
    if observed:
        fields["properties"] = observed
    return fields


def scenario_fields(item: pytest.Item, timeline: Any) -> dict[str, Any]:
    """The scenario's name, what it recorded, and its key measurement."""
    fields = test_fields(item)
    measurements = list(context_of(timeline).measurements)
    fields["measurements"] = [m.to_json() for m in measurements]
    # The key measurement: the condition the spec allows the most time for, among those the
    # helper was waiting for when it happened (one that had happened before the helper was
    # called says nothing about how fast helpers return).
    key = _key_measurement(measurements)
    if key is not None:
        fields.update(
            helper=key.helper,
            expected_earliest_s=round(key.earliest, 3),
            expected_latest_s=round(key.latest, 3),
            event_s=round(key.observed, 3),
            observed_s=None if key.returned is None else round(key.returned, 3),
            latency_s=None if key.latency is None else round(key.latency, 3),
        )
    return fields


def _key_measurement(measurements: list[Any]) -> Any:
    """The key measurement: the condition the spec allows the most time for.

    Among those the helper was waiting for when it happened (one that had happened before the
    helper was called says nothing about how fast helpers return); ``None`` without any.
    """
    waited = [m for m in measurements if m.latency is not None] or measurements
    return max(reversed(waited), key=lambda m: m.earliest) if waited else None


def timeline_chart(timeline: Any, *, title: str, pattern_id: str = "gap") -> str | None:
    """The timeline's SVG chart with its key measurement's window, ``None`` if drawing failed."""
    key = _key_measurement(list(context_of(timeline).measurements))
    try:
        return timeline_svg(timeline, title=title, windows=[key] if key else [],
                            pattern_id=pattern_id)
    except Exception:  # a chart bug must not hide the test's own failure
        log.exception("cannot draw the timeline chart of namespace %s", timeline.namespace)
        return None


def save_timeline_artifacts(timeline: Any, folder: Path, *, title: str = "") -> None:
    """Write the timeline as JSON Lines and as an SVG chart into ``folder``."""
    timeline.save(folder / "timeline.jsonl")
    svg = timeline_chart(timeline, title=title)
    if svg is not None:
        (folder / "timeline.svg").write_text(svg, encoding="utf-8")


def artifact_folder(base: Path, nodeid: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in nodeid)
    return base / safe[-150:]



def write_html(state: ProbesState, cluster: dict[str, Any]) -> None:
    """Write ``--probes-html``: the tests with a report entry (the probe tests), in one page."""
    assert state.html_path is not None
    tests = []
    for entry in state.report:
        seen = state.html_tests.get(entry["nodeid"], {})
        tests.append(TestResult(
            nodeid=entry["nodeid"], outcome=seen.get("outcome", entry.get("outcome", "passed")),
            entry=entry, chart_svg=seen.get("chart", ""), failure=seen.get("failure", "")))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    state.html_path.parent.mkdir(parents=True, exist_ok=True)
    state.html_path.write_text(render(tests, cluster=cluster, generated=generated),
                               encoding="utf-8")


def note_phase(entry: dict[str, Any], report: pytest.TestReport) -> bool:
    """Note a phase's duration in a test's entry; tell whether its outcome was noted now.

    The outcome is noted at the call, or at a failed set-up. pytest's whole set-up phase is
    ``fixtures_s``; ``setup_s`` is the test's own, summed at teardown. At the set-up, ``start``
    (when pytest began setting the test up, seconds since the epoch) and ``worker`` (the
    pytest-xdist worker, e.g. ``gw3``) show how the run was packed.
    """
    key = "fixtures_s" if report.when == "setup" else f"{report.when}_s"
    entry[key] = round(report.duration, 3)
    if report.when == "setup":
        start = getattr(report, "start", None)  # pytest >= 8.1
        if start:
            entry["start"] = round(start, 3)
        if worker := os.environ.get("PYTEST_XDIST_WORKER"):
            entry["worker"] = worker
    if report.when == "call" or (report.when == "setup" and report.failed):
        entry["outcome"] = report.outcome
        return True
    return False


def finish_entry(entry: dict[str, Any], fields: dict[str, Any], state: ProbesState) -> None:
    """Complete a test's entry at teardown: ``fields``, the cluster's, and its wall time."""
    entry.update(fields)
    for field in ("k8s_version", "runtime", "provider"):
        entry.setdefault(field, state.cluster_info.get(field))
    entry["wall_s"] = round(sum(entry.get(phase, 0.0)
                                for phase in ("fixtures_s", "call_s", "teardown_s")), 3)


def entry_without_timeline(item: pytest.Item, report: pytest.TestReport,
                           state: ProbesState) -> None:
    """Fill in the entry of a probe test that records no shared timeline.

    A test on a cluster of its own (the kubelet restart's) still has its outcome, wall time and
    what it recorded with ``record_property`` in the report, for ``make matrix``.
    """
    if report.skipped:
        return
    entry = report_entry(item)
    note_phase(entry, report)
    if report.when == "teardown" and "outcome" in entry:
        finish_entry(entry, test_fields(item), state)
        report.pytest_probes_entry = entry  # type: ignore[attr-defined]
