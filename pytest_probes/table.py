"""The timeline as a Markdown table: the rows a failure report shows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_probes.records import Record, describe

if TYPE_CHECKING:
    from pytest_probes.timeline import Timeline


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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
