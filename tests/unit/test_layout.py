"""The repository's layout that ``tests/conftest.py`` relies on: live tests live in tests/live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import live_only

ROOT = Path(__file__).resolve().parents[2]

RECORDER = '''
import json, os

def pytest_collection_modifyitems(items):
    with open(os.environ["MARKS_OUT"], "w") as out:
        json.dump({i.nodeid: sorted({m.name for m in i.iter_markers()}) for i in items}, out)
'''


def test_only_tests_live_holds_probe_and_selftest_tests_and_others_carry_known_marks(
        tmp_path: Path) -> None:
    (tmp_path / "marks_recorder.py").write_text(RECORDER)
    out = tmp_path / "marks.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "marks_recorder", "tests"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "MARKS_OUT": str(out)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    marks = json.loads(out.read_text())
    live = {n for n in marks if n.startswith("tests/live/")}
    assert len(live) > 50 and len(marks) - len(live) > 500, len(marks)  # both sides were seen
    for nodeid, names in marks.items():
        if nodeid.startswith("tests/live/"):
            assert {"probes", "selftest"} & set(names), nodeid
        else:
            assert set(names) <= {"parametrize", "skipif", "usefixtures"}, (nodeid, names)


def test_a_live_only_marker_expression_is_recognised() -> None:
    assert live_only("probes") and live_only("selftest") and live_only("probes or selftest")
    assert live_only("probes and not selftest")
    for expression in ("", "not probes", "not probes and not selftest", "parametrize",
                       "not selftest", "probes or parametrize", "(("):
        assert not live_only(expression), expression
