"""Helpers shared by the tests: the README's example, seed 000's recorded timeline."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_probes.importers import timeline_from_exports
from pytest_probes.timeline import Timeline

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SEED000 = Path(__file__).resolve().parent / "data" / "seed000"


def readme_probe_example() -> str:
    """The README's example probe test: its first Python block marked ``@pytest.mark.probes``."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README, re.S)
    return next(b for b in blocks if "@pytest.mark.probes" in b)


def seed000_timeline(folder: Path = SEED000, *, namespace: str = "probes") -> Timeline:
    """Seed 000's timeline from its raw captures in ``folder`` (``tests/data/seed000``).

    The folder holds ``events.log`` (event-exporter lines), ``endpoints-watch.txt`` (the watch of
    the ``app-target`` endpoints) and ``pods-before.txt`` (``kubectl get pods -o wide`` before the
    experiment).
    """
    return timeline_from_exports(
        events=folder / "events.log",
        endpoints_watch=folder / "endpoints-watch.txt",
        pods=folder / "pods-before.txt",
        service="app-target",
        namespace=namespace,
    )
