"""The plugin's options, ini keys, marker, fixtures and failure output, through pytester."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest

from pytest_probes.binaries import runtime

SEED000 = Path(__file__).resolve().parents[1] / "data" / "seed000"


def test_options_are_listed_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    group = out[out.index("pytest-probes:"):]
    for noun in ("provider", "k8s-version", "kubeconfig", "cluster-name", "keep-cluster",
                 "timeout-scale", "artifacts-dir", "report", "html", "timeline",
                 "keep-namespace"):
        assert f"--probes-{noun}" in group
    for ini in ("probes_provider", "probes_k8s_version", "probes_kubeconfig",
                "probes_cluster_name", "probes_keep_cluster", "probes_timeout_scale",
                "probes_artifacts_dir", "probes_report", "probes_html", "probes_timeline",
                "probes_keep_namespace"):
        assert ini in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--probes-provider", "minikube"],
         "'minikube' is not a provider; choose one of auto, local, kind, existing"),
        (["--probes-keep-namespace", "sometimes"],
         "'sometimes' is not a mode; choose one of never, failed, always"),
        (["--probes-timeout-scale", "0"], "'0' is not a number above 0 and at most 100"),
        (["--probes-timeout-scale", "fast"], "'fast' is not a number above 0 and at most 100"),
        (["--probes-timeout-scale", "inf"], "'inf' is not a number above 0 and at most 100"),
        (["--probes-timeout-scale", "nan"], "'nan' is not a number above 0 and at most 100"),
        (["--probes-timeout-scale", "1e12"], "'1e12' is not a number above 0 and at most 100"),
        (["--probes-cluster-name", "Probes"], "'Probes' is not a valid cluster name"),
        (["--probes-cluster-name", "über"], "'über' is not a valid cluster name"),
        (["--probes-cluster-name", "-"], "'-' is not a valid cluster name"),
        (["--probes-timeline", "sometimes"], "choose one of never, failure, always"),
        (["--probes-k8s-version", "latest"], "'latest' is not a Kubernetes version"),
        (["--probes-provider", "existing"], "needs --probes-kubeconfig PATH"),
    ],
)
def test_invalid_option_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_ini_keys_apply_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nprobes_provider = local\nprobes_cluster_name = from-ini\n"
        "probes_k8s_version = 1.33\n"
    )
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--probes-cluster-name", "from-cli")
    result.stdout.fnmatch_lines(
        ["probes: provider local, cluster from-cli, Kubernetes 1.33, runtime containerd *"]
    )
    assert result.ret == 0


def test_ini_value_is_validated_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nprobes_timeout_scale = -2\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "probes_timeout_scale: '-2' is not a number above 0" in result.stderr.str()


def test_report_header_has_one_probes_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--probes-provider", "local")
    lines = [ln for ln in result.outlines if ln.startswith("probes:")]
    assert lines == [
        "probes: provider local, cluster probes, Kubernetes provider default, "
        f"runtime containerd {runtime.CONTAINERD.plain_version}, runc {runtime.RUNC.plain_version}"
    ]


def test_report_header_of_other_providers_leaves_the_runtime_to_the_node(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--probes-provider", "kind")
    lines = [ln for ln in result.outlines if ln.startswith("probes:")]
    assert lines == [
        "probes: provider kind, cluster probes, Kubernetes provider default, "
        "runtime as the node reports"
    ]


def test_marker_selects_cluster_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.probes
        def test_live():
            pass

        def test_offline():
            pass
        """
    )
    result = pytester.runpytest("-m", "probes", "--strict-markers", "-v")
    result.stdout.fnmatch_lines(["*test_live PASSED*"])
    result.assert_outcomes(passed=1, deselected=1)


def test_marker_with_arguments_is_rejected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.probes(timeout=5)
        def test_live():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "@pytest.mark.probes takes no arguments (got timeout=5)" in result.stderr.str()


def test_fixtures_are_registered_under_their_public_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--fixtures")
    out = result.stdout.str()
    for name in ("probes_cluster", "probes_namespace", "probes_deploy", "probes_timeline",
                 "probes_target_image", "probes_faults"):
        assert name in out


def _recorded_timeline_conftest(pytester: pytest.Pytester) -> None:
    data = pytester.path / "seed000"
    shutil.copytree(SEED000, data)
    pytester.makeconftest(
        """
        from pathlib import Path
        import pytest
        from pytest_probes._stash import TIMELINE_KEY
        from tests.helpers import seed000_timeline

        @pytest.fixture
        def probes_timeline(request):
            tl = seed000_timeline(Path(__file__).parent / "seed000")
            request.node.stash[TIMELINE_KEY] = tl
            return tl
        """
    )


def test_failed_helper_reports_expected_observed_and_the_timeline(
    pytester: pytest.Pytester,
) -> None:
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        from pytest_probes import assert_restarts_within

        def test_other_pod_restarts(probes_timeline):
            assert_restarts_within(probes_timeline, "app-target-68b8b88575-psd9m", within=60)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pod probes/app-target-68b8b88575-psd9m: expected ≥1 restart within 60 s of "
            "01:51:51; observed restarts app-target-68b8b88575-psd9m: 0*",
            "*probes timeline*",
            "*| time | +s | source | pod | event | endpoints after |*",
        ]
    )
    # The helper hides its own frames: the failure points at the test line.
    assert "pytest_probes/assertions/" not in result.stdout.str().split("probes timeline")[0].split(
        "def test_other_pod_restarts")[1].split("E   ")[0]


def test_timeline_always_mode_shows_table_for_passing_tests(pytester: pytest.Pytester) -> None:
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        from pytest_probes import assert_restarts_within

        def test_excluded_pod_restarts(probes_timeline):
            assert_restarts_within(probes_timeline, "app-target-68b8b88575-86gg8", restarts=2,
                                   within=100)
        """
    )
    result = pytester.runpytest("--probes-timeline", "always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*probes timelines (passed)*",
                                 "*test_excluded_pod_restarts*", "*| time | +s |*", "*Killing*"])
    quiet = pytester.runpytest()
    assert "probes timelines" not in quiet.stdout.str()


def test_artifacts_and_json_report_are_written(pytester: pytest.Pytester) -> None:
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        from pytest_probes import assert_never_ready_for, assert_restarts_within

        def test_fails(probes_timeline):
            assert_restarts_within(probes_timeline, "app-target-68b8b88575-qkdrh", within=5)

        def test_passes(probes_timeline, record_property):
            record_property("restarts", 2)
            assert_restarts_within(probes_timeline, "app-target", within=100)
        """
    )
    result = pytester.runpytest("--probes-artifacts-dir", "arts", "--probes-report", "r.json")
    result.assert_outcomes(passed=1, failed=1)
    saved = list((pytester.path / "arts").glob("*/timeline.jsonl"))
    assert len(saved) == 1 and "test_fails" in saved[0].parent.name
    assert (saved[0].parent / "timeline.svg").read_text().startswith("<svg")
    import json

    report = json.loads((pytester.path / "r.json").read_text())
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in report["tests"]}
    assert outcomes == {"test_fails": "failed", "test_passes": "passed"}
    assert all("wall_s" in t and "setup_s" in t for t in report["tests"])
    passed = next(t for t in report["tests"] if t["outcome"] == "passed")
    # The key measurement: the restart, counted from the start of the recording.
    assert passed["scenario"] == "passes"
    assert passed["helper"] == "assert_restarts_within"
    assert passed["expected_earliest_s"] == 0.0 and passed["expected_latest_s"] == 100.0
    assert 0 < passed["event_s"] <= 100
    assert passed["observed_s"] is None  # a recorded timeline: nothing waited
    assert passed["properties"] == {"restarts": 2}


def test_json_report_has_probe_tests_without_a_timeline(pytester: pytest.Pytester) -> None:
    # A probe test on a cluster of its own (the kubelet restart's) records no shared timeline;
    # its outcome and what it recorded still reach the report (make matrix's behaviour rows).
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.probes
        def test_own_cluster(record_property):
            record_property("kubelet restart", "Ready stays")

        @pytest.mark.probes
        def test_own_cluster_fails():
            assert False

        @pytest.mark.probes
        def test_not_applicable():
            pytest.skip("needs Kubernetes >= 1.35")

        def test_not_a_probe_test():
            pass
        """
    )
    result = pytester.runpytest("--probes-report", "r.json")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    import json

    tests = {t["scenario"]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert sorted(tests) == ["own_cluster", "own_cluster_fails"]
    assert tests["own_cluster"]["outcome"] == "passed"
    assert tests["own_cluster"]["properties"] == {"kubelet restart": "Ready stays"}
    assert tests["own_cluster"]["wall_s"] >= 0
    assert tests["own_cluster_fails"]["outcome"] == "failed"


def test_json_report_collects_entries_from_xdist_workers(pytester: pytest.Pytester) -> None:
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        import pytest
        from pytest_probes import assert_restarts_within

        @pytest.mark.parametrize("n", range(4))
        def test_restart(probes_timeline, n):
            assert_restarts_within(probes_timeline, "app-target", within=100)
        """
    )
    result = pytester.runpytest("-n", "2", "--probes-report", "r.json")
    result.assert_outcomes(passed=4)
    import json

    report = json.loads((pytester.path / "r.json").read_text())
    assert sorted(t["nodeid"] for t in report["tests"]) == [
        f"test_json_report_collects_entries_from_xdist_workers.py::test_restart[{n}]"
        for n in range(4)
    ]
    assert {t["scenario"] for t in report["tests"]} == {"restart"}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_html_report_has_every_probe_test_with_its_outcome_and_chart(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        import pytest
        from pytest_probes import assert_restarts_within

        @pytest.mark.parametrize("n", range(3))
        def test_restart(probes_timeline, n):
            assert_restarts_within(probes_timeline, "app-target", within=100)

        def test_fails(probes_timeline):
            assert_restarts_within(probes_timeline, "app-target-68b8b88575-qkdrh", within=5)

        def test_not_a_probe_test():
            pass
        """
    )
    result = pytester.runpytest(*xdist, "--probes-html", "out/report.html",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    text = (pytester.path / "out" / "report.html").read_text()
    outcomes = re.findall(r'<article class="probe-test o-(\w+)"', text)
    assert outcomes == ["failed", "passed", "passed", "passed"]
    assert text.count('<figure class="chart"><svg') == 4
    assert text.count('<g class="window">') == 3  # the failed helper recorded no measurement
    assert 'data-scenario="restart"' in text and "not_a_probe_test" not in text
    assert "expected ≥1 restart within 5 s" in text  # the failure text
    # One hatching id per chart: the page's ids stay unique.
    ids = re.findall(r'<pattern id="([^"]+)"', text)
    assert len(ids) == len(set(ids)) == 4


def test_xdist_workers_share_the_controllers_run_id_and_nested_runs_get_their_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pytest started inside a test (pytester, a CLI under test) must not inherit the outer
    # run's id: the controller deletes the cluster its run's workers created, by run id.
    monkeypatch.setenv("ID_DIR", str(pytester.path))
    pytester.makepyfile(
        """
        import os
        from pathlib import Path
        import pytest
        from pytest_probes._stash import STATE_KEY

        @pytest.mark.parametrize("n", range(4))
        def test_id(request, n):
            run_id = request.config.stash[STATE_KEY].run_id
            assert run_id and not [k for k in os.environ if k.startswith("PYTEST_PROBES")]
            (Path(os.environ["ID_DIR"]) / f"id-{n}.txt").write_text(run_id)
        """
    )
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)
    ids = {p.read_text() for p in pytester.path.glob("id-*.txt")}
    assert len(ids) == 1
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)
    assert {p.read_text() for p in pytester.path.glob("id-*.txt")}.isdisjoint(ids)


@pytest.mark.parametrize(
    ("marker", "options", "expected"),
    [
        # Each of the two longest opens a worker; the shortest follows the longest.
        ("@pytest.mark.probes", [], [["b", "a"], ["d", "c"]]),
        # Switched off, or tests that are not probe tests: pytest's own order.
        ("@pytest.mark.probes", ["--probes-order=none"], [["a", "b"], ["c", "d"]]),
        ("", [], [["a", "b"], ["c", "d"]]),
    ],
    ids=["probe-tests", "order-none", "other-tests"],
)
def test_xdist_workers_start_the_longest_tests_first_by_the_last_runs_durations(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, marker: str,
    options: list[str], expected: list[list[str]],
) -> None:
    monkeypatch.setenv("RAN_DIR", str(pytester.path))
    pytester.makepyfile(
        test_order=f"""
        import os
        from pathlib import Path
        import pytest

        {marker}
        @pytest.mark.parametrize("name", ["a", "b", "c", "d"])
        def test_t(name):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            with open(Path(os.environ["RAN_DIR"]) / f"ran-{{worker}}.txt", "a") as out:
                out.write(name + "\\n")
        """
    )
    import json

    durations = {f"test_order.py::test_t[{name}]": seconds
                 for name, seconds in {"a": 1.0, "b": 100.0, "c": 2.0, "d": 50.0}.items()}
    cache = pytester.path / ".pytest_cache" / "v" / "pytest-probes"
    cache.mkdir(parents=True)
    (cache / "durations").write_text(json.dumps(durations))
    pytester.runpytest("-n", "2", *options).assert_outcomes(passed=4)
    ran = sorted(p.read_text().split() for p in pytester.path.glob("ran-*.txt"))
    assert ran == expected


@pytest.mark.parametrize(
    ("cached", "expected"),
    [
        # No cache (a fresh clone, -p no:cacheprovider): the project's file orders the run.
        (None, [["b", "a"], ["d", "c"]]),
        # The cache knows "c" as the longest now: its figure wins over the file's, so "c" opens
        # a worker and takes the shortest ("a") with it.
        ({"c": 500.0}, [["b", "d"], ["c", "a"]]),
    ],
    ids=["file-only", "cache-over-file"],
)
def test_the_durations_file_orders_the_tests_the_cache_does_not_know(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
    cached: dict[str, float] | None, expected: list[list[str]],
) -> None:
    import json

    monkeypatch.setenv("RAN_DIR", str(pytester.path))
    pytester.makepyfile(
        test_order="""
        import os
        from pathlib import Path
        import pytest

        @pytest.mark.probes
        @pytest.mark.parametrize("name", ["a", "b", "c", "d"])
        def test_t(name):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            with open(Path(os.environ["RAN_DIR"]) / f"ran-{worker}.txt", "a") as out:
                out.write(name + "\\n")
        """
    )
    node = "test_order.py::test_t[{}]".format
    (pytester.path / "ci").mkdir()
    (pytester.path / "ci" / "durations.json").write_text(json.dumps(
        {node(n): s for n, s in {"a": 1.0, "b": 100.0, "c": 2.0, "d": 50.0}.items()}))
    pytester.makeini("[pytest]\nprobes_durations_file = ci/durations.json\n")
    options = ["-p", "no:cacheprovider"]
    if cached is not None:
        options = []
        cache = pytester.path / ".pytest_cache" / "v" / "pytest-probes"
        cache.mkdir(parents=True)
        (cache / "durations").write_text(json.dumps({node(n): s for n, s in cached.items()}))
    pytester.runpytest("-n", "2", *options).assert_outcomes(passed=4)
    ran = sorted(p.read_text().split() for p in pytester.path.glob("ran-*.txt"))
    assert ran == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the durations file"),
        ("{not json", "not JSON"),
        ('{"t.py::test": "slow"}', "not an object of test node ids to seconds"),
    ],
    ids=["missing", "not-json", "not-seconds"],
)
def test_a_bad_durations_file_is_a_usage_error_naming_it_and_the_fix(
    pytester: pytest.Pytester, content: str | None, message: str
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    path = pytester.path / "durations.json"
    if content is not None:
        path.write_text(content)
    result = pytester.runpytest(f"--probes-durations-file={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--probes-durations-file*{path}*{message}*"
                                 "pytest-probes durations*"])


def test_passed_live_tests_durations_are_kept_for_the_next_run(pytester: pytest.Pytester) -> None:
    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        import pytest
        from pytest_probes import assert_restarts_within

        @pytest.mark.parametrize("n", range(3))
        def test_restart(probes_timeline, n):
            assert n < 2
            assert_restarts_within(probes_timeline, "app-target", within=100)
        """
    )
    pytester.runpytest("-n", "2").assert_outcomes(passed=2, failed=1)
    import json

    saved = json.loads(
        (pytester.path / ".pytest_cache" / "v" / "pytest-probes" / "durations").read_text()
    )
    assert sorted(saved) == [
        f"test_passed_live_tests_durations_are_kept_for_the_next_run.py::test_restart[{n}]"
        for n in range(2)
    ]
    assert all(isinstance(v, float) and v >= 0 for v in saved.values())


def test_sigterm_stops_the_run_as_ctrl_c_does_and_fixtures_are_torn_down(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CI system cancelling a job sends SIGTERM: the run ends as on Ctrl-C (KeyboardInterrupt),
    # so session fixtures such as probes_cluster tear down; a second SIGTERM during that
    # clean-up is ignored.
    pytester.makepyfile(
        """
        import os, signal, time
        import pytest

        @pytest.fixture(scope="session")
        def resource(tmp_path_factory):
            yield
            os.kill(os.getpid(), signal.SIGTERM)  # a second one, during clean-up
            with open(os.environ["TORN_DOWN"], "w") as handle:
                handle.write("yes")

        def test_runs_until_terminated(resource):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)

        def test_never_starts():
            pass
        """
    )
    marker = pytester.path / "torn-down"
    monkeypatch.setenv("TORN_DOWN", str(marker))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert marker.read_text() == "yes"
    assert "test_never_starts PASSED" not in result.stdout.str()


def test_the_sigterm_handler_is_put_back_after_the_run(pytester: pytest.Pytester) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    pytester.makepyfile(
        """
        import signal

        def test_handler_installed():
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")  # in this process
    result.assert_outcomes(passed=1)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_junit_has_the_key_measurement_as_properties_not_a_python_repr(
    pytester: pytest.Pytester,
) -> None:
    import xml.etree.ElementTree as ET

    _recorded_timeline_conftest(pytester)
    pytester.makepyfile(
        """
        from pytest_probes import assert_restarts_within

        def test_passes(probes_timeline, record_property):
            record_property("restarts", 2)
            assert_restarts_within(probes_timeline, "app-target", within=100)
        """
    )
    result = pytester.runpytest("--junitxml", "junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    case = ET.parse(pytester.path / "junit.xml").getroot().find(".//testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["probes.helper"] == "assert_restarts_within"
    assert props["probes.window"] == "0-100 s"
    assert props["probes.event"].endswith(" s") and 0 < float(props["probes.event"][:-2]) <= 100
    assert "probes.observed" not in props  # a recorded timeline: no helper waited
    assert props["restarts"] == "2"
    assert not any(value.startswith(("{", "[")) for value in props.values()), props
