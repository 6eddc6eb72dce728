"""The benchmark scripts' tables, built from --probes-report files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _report(path: Path, version: str, tests: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"cluster": {"k8s_version": version}, "tests": tests}))
    return path


def test_matrix_table_is_scenario_by_version(tmp_path: Path) -> None:
    matrix = _load("matrix")
    a = _report(tmp_path / "a.json", "v1.33.13", [
        {"nodeid": "t::test_x", "scenario": "x", "outcome": "passed", "event_s": 21.4},
        {"nodeid": "t::test_y", "scenario": "y", "outcome": "failed", "event_s": 9.0},
    ])
    b = _report(tmp_path / "b.json", "v1.36.3", [
        {"nodeid": "t::test_x", "scenario": "x", "outcome": "passed", "event_s": 25.0,
         "properties": {"restarts": 3}},
    ])
    data = json.loads(b.read_text())
    data["cluster"]["runtime"] = "containerd 2.3.7, runc 1.4.4"
    b.write_text(json.dumps(data))
    lines = matrix.build_table([a, b]).splitlines()
    assert lines[0] == "| scenario | v1.33.13 | v1.36.3 |"
    assert lines[2] == "| *runtime* | ? | containerd 2.3.7, runc 1.4.4 |"
    assert lines[3] == "| *passed* | 1/2 | 1/1 |"
    assert lines[4] == "| *pytest* | ? | ? |"
    assert lines[5] == "| x | ✓ 21 s | ✓ 25 s (restarts=3) |"
    assert lines[6] == "| y | ✗ failed 9 s | — |"
    data["cluster"]["provider"] = "kind"
    b.write_text(json.dumps(data))
    assert matrix.build_table([a, b]).splitlines()[0] == "| scenario | v1.33.13 | kind v1.36.3 |"


def test_matrix_gives_each_parameter_set_a_row_and_shows_pytests_summary(tmp_path: Path) -> None:
    matrix = _load("matrix")
    a = _report(tmp_path / "report-local-1.33.json", "v1.33.13", [
        {"nodeid": "t::test_f[one]", "scenario": "f", "outcome": "failed"},
        {"nodeid": "t::test_f[two]", "scenario": "f", "outcome": "passed"},
        {"nodeid": "t::test_g[2]", "scenario": "g[2]", "outcome": "passed"},
    ])
    matrix.summary_path(a).write_text("2 passed, 1 failed, 5 skipped in 315.20s\n")
    assert matrix.summary_path(a).name == "summary-local-1.33.txt"
    lines = matrix.build_table([a]).splitlines()
    assert lines[3:8] == ["| *passed* | 2/3 |", "| *pytest* | 2 passed, 1 failed, 5 skipped in "
                          "315.20s |", "| f[one] | ✗ failed |", "| f[two] | ✓ |", "| g[2] | ✓ |"]
    found = matrix.SUMMARY.search("94 passed, 5 skipped in 315.20s (0:05:15)\n")
    assert found is not None and found.group(1) == "94 passed, 5 skipped in 315.20s"
    assert matrix.SUMMARY.search("tests/live/test_x.py ..s.. [ 72%]") is None


def test_matrix_merges_reports_of_one_version(tmp_path: Path) -> None:
    matrix = _load("matrix")
    full = _report(tmp_path / "report-local-1.33.json", "v1.33.13", [
        {"nodeid": "t::test_x", "scenario": "x", "outcome": "passed"},
        {"nodeid": "t::test_k", "scenario": "k", "outcome": "failed"},
    ])
    again = _report(tmp_path / "report-local-1.33-k.json", "v1.33.13", [
        {"nodeid": "t::test_k", "scenario": "k", "outcome": "passed",
         "properties": {"kubelet restart": "flips"}},
    ])
    matrix.summary_path(full).write_text("1 passed, 1 failed in 300.00s\n")
    matrix.summary_path(again).write_text("1 passed in 80.00s\n")
    lines = matrix.build_table([full, again]).splitlines()
    assert lines[0] == "| scenario | v1.33.13 |"
    assert lines[3:7] == ["| *passed* | 2/2 |",
                          "| *pytest* | 1 passed, 1 failed in 300.00s + 1 passed in 80.00s |",
                          "| k | ✓ (kubelet restart=flips) |", "| x | ✓ |"]
    assert matrix.build_behaviour_table([full, again]).splitlines()[2] == \
        "| k: kubelet restart | flips |"


def test_matrix_behaviour_table_has_a_row_per_recorded_property(tmp_path: Path) -> None:
    matrix = _load("matrix")
    a = _report(tmp_path / "a.json", "v1.33.13", [
        {"nodeid": "t::test_k", "scenario": "kubelet_restart", "outcome": "passed",
         "properties": {"Ready after a kubelet restart": "flips"}},
        {"nodeid": "t::test_x", "scenario": "x", "outcome": "passed"},
    ])
    b = _report(tmp_path / "b.json", "v1.37.2", [
        {"nodeid": "t::test_k", "scenario": "kubelet_restart", "outcome": "failed",
         "properties": {"Ready after a kubelet restart": "stays"}},
        {"nodeid": "t::test_r", "scenario": "restart_rules", "outcome": "passed",
         "properties": {"exit 42": "restarted"}},
    ])
    assert matrix.build_behaviour_table([a, b]).splitlines()[:4] == [
        "| behaviour | v1.33.13 | v1.37.2 |",
        "|---|---|---|",
        "| kubelet_restart: Ready after a kubelet restart | flips | ✗ failed: stays |",
        "| restart_rules: exit 42 | — | restarted |",
    ]
    assert matrix.build_behaviour_table([_report(tmp_path / "c.json", "v1", [])]) == ""


def test_speed_main_reads_a_report_and_judges_the_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    speed = _load("speed")
    entry = {"nodeid": "t::test_x", "scenario": "x", "outcome": "passed", "helper": "h",
             "expected_earliest_s": 20.0, "expected_latest_s": 27.0, "event_s": 21.0,
             "observed_s": 21.3, "latency_s": 0.004, "setup_s": 1.5, "wall_s": 30.0,
             "measurements": [{"latency_s": 0.004}, {"latency_s": None}]}
    assert speed.main(["--report", str(_report(tmp_path / "r.json", "v1", [entry]))]) == 0
    out = capsys.readouterr().out
    assert "| x | h | 20.0–27.0 | 21 | 21.30 | 1.06 | 1.01 | 4 | passed |" in out
    slow = dict(entry, observed_s=30.0)
    assert speed.main(["--report", str(_report(tmp_path / "s.json", "v1", [slow]))]) == 1
    assert "MISS  max ratio returned/earliest: 1.500" in capsys.readouterr().out


def test_the_longest_scenario_is_timed_without_the_runs_set_up_it_waited_for() -> None:
    """A worker's first test waits in its fixtures for the run's set-up (the client, a
    configured cluster, its turn): counted in, it would lengthen the longest scenario and
    flatter the suite's wall / longest ratio. Its own namespace and recorder still count."""
    speed = _load("speed")
    first = {"nodeid": "t::test_a", "scenario": "a", "start": 110.0, "worker": "gw0",
             "fixtures_s": 25.0, "namespace_s": 0.5, "recorder_s": 1.0, "call_s": 175.0,
             "teardown_s": 0.5, "wall_s": 200.5}
    later = {"nodeid": "t::test_b", "scenario": "b", "start": 140.0, "worker": "gw1",
             "fixtures_s": 1.0, "namespace_s": 0.4, "recorder_s": 0.7, "call_s": 30.0,
             "teardown_s": 0.2, "wall_s": 31.2}
    assert speed.own_time(first) == pytest.approx(177.0)
    assert speed.own_time(later) == pytest.approx(31.2)  # fixtures all its own: none taken
    lines = speed.packing([first, later], began=100.0, wall=230.0)
    assert lines[0] == ("first test began 10.0 s after the run started; the longest (a, 177.0 s "
                        "of its own) began its set-up at 10.0 s, its own at 33.5 s")


def test_speed_refuses_a_report_path_of_its_own_in_the_pytest_arguments(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A second ``--probes-report`` would win over the script's and leave it nothing to read."""
    speed = _load("speed")
    with pytest.raises(SystemExit) as exit_:
        speed.main(["--", "--probes-report", "mine.json"])
    assert exit_.value.code == 2
    assert "give --save-report PATH instead" in capsys.readouterr().err


def test_burst_summary_and_pod() -> None:
    burst = _load("burst")
    assert burst.summary([3.0, 1.0, 2.0, 10.0]) == "median 2.50 s, p90 10.00 s, max 10.00 s"
    pod = burst.pod_body("app-1", "localhost/x:1")
    assert pod["metadata"]["name"] == "app-1"
    assert pod["spec"]["containers"][0]["image"] == "localhost/x:1"
    assert "livenessProbe" not in pod["spec"]["containers"][0]


def test_every_bad_input_of_the_table_is_answered_with_a_clear_error(tmp_path: Path) -> None:
    bad = _load("bad_inputs")
    tmp_path.chmod(0o700)
    cases = bad.cases(tmp_path)
    assert len(cases) >= 20
    for kind, call in cases:
        with pytest.raises(Exception) as info:
            call()
        assert "Traceback" not in str(info.value), kind
        if isinstance(info.value, bad.CommandFailed):
            assert str(info.value).startswith(("exit 4: ERROR:", "exit 0: cluster")), kind
        else:
            assert type(info.value).__name__ in (
                "ValueError", "TypeError", "DeployError", "ClusterError"), (kind, info.value)


def test_down_of_a_cluster_that_never_existed_says_so_and_leaves_no_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_probes.cli import main

    cache = tmp_path / "cache"
    assert main(["cluster", "down", "--name", "never-used", "--cache-dir", str(cache)]) == 0
    assert "cluster never-used does not exist; nothing to do" in capsys.readouterr().out
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_the_command_line_refuses_a_cluster_name_that_is_no_dns_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_probes.cli import main

    assert main(["cluster", "down", "--name", "Probes", "--cache-dir", str(tmp_path)]) == 1
    assert "'Probes' is not a valid cluster name" in capsys.readouterr().err
