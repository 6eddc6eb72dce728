"""``pytest-probes durations``: a durations file from the passed tests of --probes-report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_probes.cli import main


def _report(path: Path, tests: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"cluster": {}, "tests": tests}))
    return path


def test_the_passed_tests_are_merged_over_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "durations.json"
    out.write_text(json.dumps({"t.py::old": 5.0, "t.py::a": 1.0}))
    report = _report(tmp_path / "r.json", [
        {"nodeid": "t.py::a", "outcome": "passed", "wall_s": 42.04},
        {"nodeid": "t.py::b", "outcome": "failed", "wall_s": 7.0},
    ])
    assert main(["durations", str(report), "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == {"t.py::a": 42.0, "t.py::old": 5.0}
    assert "1 duration(s) written, 2 in all" in capsys.readouterr().out


def test_a_file_that_is_no_report_is_named_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "durations.json"
    bad = tmp_path / "bad.json"
    bad.write_text('{"tests": 3}')
    assert main(["durations", str(bad), "-o", str(out)]) == 1
    assert f"{bad}: not a --probes-report" in capsys.readouterr().err
    only_failed = _report(tmp_path / "r.json", [{"nodeid": "t::a", "outcome": "failed",
                                                  "wall_s": 1.0}])
    assert main(["durations", str(only_failed), "-o", str(out)]) == 1
    assert "no passed probe test" in capsys.readouterr().err
    assert not out.exists()
