"""Helpers shared by the tests: the README's example, seed 000's recorded timeline, scripts."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from pytest_probes.importers import timeline_from_exports
from pytest_probes.timeline import Record, Timeline

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SEED000 = Path(__file__).resolve().parent / "data" / "seed000"
STREAMS = Path(__file__).resolve().parent / "data" / "streams"
"""Raw watch streams a recorder saved (replay them with ``importers.replay_raw``)."""
LIVENESS_RESTART = STREAMS / "liveness-restart.jsonl"
"""Two pods of the Deployment ``web`` behind the Service ``web``: :data:`VICTIM` fails its liveness
probe from 16:59:45, is killed at 16:59:49 and restarts at 16:59:50; :data:`BYSTANDER` runs on."""
VICTIM = "web-77f9f5cf79-65npl"
BYSTANDER = "web-77f9f5cf79-f5gtx"


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


def first_record(tl: Timeline, pod: str, kind: str) -> Record:
    """The first record of ``kind`` about ``pod``; the test fails if there is none."""
    found = tl.first(pod=pod, kind=kind)
    assert found is not None
    return found


def load_script(path: Path) -> ModuleType:
    """Import one of ``scripts/`` (files without ``.py``) as a module, for its functions."""
    name = path.name.replace("-", "_") + "_script"
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
