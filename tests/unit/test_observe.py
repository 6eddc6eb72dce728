"""``pytest-probes chart`` on a recorded stream, and ``record``'s refusals that need no cluster.

``record`` itself is tested on a real cluster in ``tests/integration/test_observe_cli.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_probes import cli
from pytest_probes.importers import replay_raw

STREAM = Path(__file__).resolve().parents[1] / "data" / "streams" / "liveness-restart.jsonl"


@pytest.mark.parametrize("suffix", [".svg", ".html"])
def test_chart_draws_a_recording_as_svg_or_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    out = tmp_path / f"run{suffix}"
    assert cli.main(["chart", str(STREAM), "-o", str(out)]) == 0
    timeline = replay_raw(STREAM)
    assert f"{len(timeline)} records of namespace {timeline.namespace}" in capsys.readouterr().out
    text = out.read_text()
    assert text.count("<svg") == 1 and "liveness failure" in text
    if suffix == ".html":
        assert text.startswith("<!doctype html>") and "| time | +s |" in text
        # Self-contained: nothing to fetch.
        assert not any(tag in text for tag in ("<script", "<link", "src=", "href=", "@import"))


@pytest.mark.parametrize(
    ("args", "message"),
    [(["chart", "nothing.jsonl", "-o", "x.svg"], "nothing.jsonl does not exist"),
     (["chart", str(STREAM), "-o", "x.png"], "x.png: write the chart to a .svg or a .html"),
     (["record", "--kubeconfig", "no-such-kubeconfig", "-n", "ns", "-o", "x.jsonl"],
      "kubeconfig no-such-kubeconfig does not exist")],
)
def test_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str,
) -> None:
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err


def test_record_refuses_to_overwrite_a_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_probes.observe import record

    kept = tmp_path / "run.jsonl"
    shutil.copy(STREAM, kept)
    before = kept.read_bytes()
    with pytest.raises(Exception, match="exists already; remove it or choose another -o file"):
        record(object(), "ns", kept, duration=1.0, progress=print)
    assert kept.read_bytes() == before


@pytest.mark.parametrize("text", ["0", "-5s", "inf", "ten", "5d"])
def test_record_durations_are_checked_at_parsing(
    capsys: pytest.CaptureFixture[str], text: str
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["record", "--kubeconfig", "k", "-n", "ns", "-o", "x", f"--for={text}"])
    assert info.value.code == 2
    assert "duration" in capsys.readouterr().err
