"""``pytest-probes explain``: windows from the timing math, findings with reason and fix.

The seed manifests are the recorded data: the findings on them are the faults the seeds' own
experiments were about (seed 001's readiness probe on the wrong port, O1.5's liveness that runs
before readiness could pass).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_probes import cli
from pytest_probes.deploy import load_manifest_paths, load_manifests
from pytest_probes.errors import DeployError
from pytest_probes.explain import STEADY, explain, render
from pytest_probes.timing import ContainerTiming, Window

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def _pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "p"}},
            "spec": {"containers": [{"name": "app", "image": "x", **container}], **spec}}


def _probe(path: str = "/healthz", port: Any = 8080, **fields: Any) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, **fields}


def _codes(docs: list[dict[str, Any]]) -> list[str]:
    return [f.code for f in explain(load_manifests(docs)).findings]


def test_windows_are_the_timing_maths_from_a_steady_state_failure() -> None:
    doc = _pod({"ports": [{"containerPort": 8080}],
                "livenessProbe": _probe(initialDelaySeconds=5, periodSeconds=5),
                "readinessProbe": _probe("/ready", initialDelaySeconds=5, periodSeconds=5)})
    (report,) = explain(load_manifests(doc)).containers
    timing = ContainerTiming.from_pod_spec(doc)
    kill = timing.first_liveness_kill(fail_from=STEADY).shifted(-STEADY)
    # The worked example of first_liveness_kill: the third failing tick 10-15 s after the
    # failure (9 s: the first one's request reached the app within the 1 s timeout), its result
    # within the timeout, the kill reaction 1 s + 1 s allowance.
    assert report.windows["liveness_kill"] == kill == Window(9, 18)
    assert report.windows["endpoint_removed"] == Window(9, 18)  # readiness loss, +1 s endpoints
    assert report.windows["ready_after_start"] == timing.readiness_gain()
    assert report.windows["restart"] == kill + timing.restart_after_kill(
        exits_on_sigterm_after=0.0).hull(timing.restart_after_kill(exits_on_sigterm_after=None))
    assert report.windows["startup_budget"] is None
    assert len(report.crash_loop) == 6
    assert report.crash_loop[1].earliest == 10  # the first back-off


def test_without_probes_a_hung_pod_keeps_its_traffic_and_is_never_restarted() -> None:
    (report,) = explain(load_manifests(_pod({}))).containers
    assert report.windows["endpoint_removed"] is None and report.windows["restart"] is None
    assert "keeps its traffic" in report.notes["endpoint_removed"]


@pytest.mark.parametrize(
    ("container", "spec", "code"),
    [
        ({"livenessProbe": _probe(periodSeconds=2, timeoutSeconds=2)}, {},
         "timeout-not-below-period"),
        ({"livenessProbe": _probe(periodSeconds=2, failureThreshold=3),
          "readinessProbe": _probe("/ready", initialDelaySeconds=30)}, {},
         "liveness-before-readiness"),
        ({"startupProbe": _probe(periodSeconds=2, failureThreshold=5),
          "livenessProbe": _probe(initialDelaySeconds=60)}, {}, "startup-budget-short"),
        ({"livenessProbe": _probe(), "readinessProbe": _probe()}, {},
         "identical-liveness-and-readiness"),
        ({"ports": [{"containerPort": 8080}], "readinessProbe": _probe(port=8081)}, {},
         "undeclared-probe-port"),
        ({"readinessProbe": _probe(port="http")}, {}, "undeclared-probe-port"),
        ({"lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 40"]}}}}, {},
         "grace-shorter-than-prestop"),
        ({"lifecycle": {"preStop": {"sleep": {"seconds": 20}}}},
         {"terminationGracePeriodSeconds": 10}, "grace-shorter-than-prestop"),
    ],
)
def test_each_finding_and_its_absence_when_the_spec_is_sound(
    container: dict[str, Any], spec: dict[str, Any], code: str
) -> None:
    assert code in _codes([_pod({"ports": [{"containerPort": 8080, "name": "web"}],
                                 **container}, **spec)])


def test_a_sound_spec_has_no_findings() -> None:
    doc = _pod({"ports": [{"containerPort": 8080, "name": "http"}],
                "startupProbe": _probe("/started", port="http", periodSeconds=2,
                                       failureThreshold=30),
                "livenessProbe": _probe("/alive", periodSeconds=10, failureThreshold=3),
                "readinessProbe": _probe("/ready", periodSeconds=5),
                "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}},
               terminationGracePeriodSeconds=30)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"selector": {"app": "p"}, "ports": [{"port": 80}]}}
    assert _codes([doc, service]) == []


def test_a_service_selecting_pods_without_readiness_is_found() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"selector": {"app": "p"}}}
    other = {**service, "metadata": {"name": "t"}, "spec": {"selector": {"app": "q"}}}
    found = explain(load_manifests([_pod({}), service, other])).findings
    assert [(f.code, f.where) for f in found] == [("service-without-readiness", "Service/s")]


def test_the_seed_manifests_show_what_the_seeds_were_about() -> None:
    found = explain(load_manifest_paths([MANIFESTS])).findings
    codes = {(f.code, f.where.split(" ")[0]) for f in found}
    assert ("undeclared-probe-port", "Deployment/hello-server") in codes  # seed 001's port 8081
    assert ("liveness-before-readiness", "Pod/httpserver-independent") in codes  # O1.5
    for finding in found:
        assert finding.reason and finding.fix


def test_cli_formats_stdin_directories_and_strict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = yaml.safe_dump_all([_pod({"ports": [{"containerPort": 8080}],
                                     "livenessProbe": _probe(), "readinessProbe": _probe()})])
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cli.main(["explain", "-", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["containers"][0]["windows"]["liveness_kill"] == [19.0, 33.0]
    assert [f["code"] for f in out["findings"]] == ["identical-liveness-and-readiness"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text(text)
    assert cli.main(["explain", str(tmp_path), "--strict", "--format", "markdown"]) == 1
    markdown = capsys.readouterr().out
    assert "| stops answering -> first liveness kill (Killing) | 19–33 s |" in markdown
    assert "[identical-liveness-and-readiness]" in markdown


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("missing.yaml", None, "missing.yaml: no such file or directory"),
     ("empty", "", "holds no *.yaml"),
     ("bad.yaml", "kind: Pod\n  x: [", "invalid YAML"),
     ("badprobe.yaml", yaml.safe_dump(_pod({"livenessProbe": _probe(periodSeconds=-1)})),
      "container app")],
)
def test_cli_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str | None,
    message: str,
) -> None:
    path = tmp_path / name
    if content == "":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    assert cli.main(["explain", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    with pytest.raises(DeployError):
        explain(load_manifest_paths([path]))


def test_render_text_lists_every_container_and_the_findings() -> None:
    found = explain(load_manifest_paths([MANIFESTS / "seed001-startup.yaml"]))
    text = render(found, "text")
    assert "start -> killed if the startup probe never passes" in text
    assert text.count(" container ") >= len(found.containers)


def test_emit_test_writes_a_test_per_liveness_and_served_readiness_probe(tmp_path: Path) -> None:
    from pytest_probes.emit import emit_tests

    paths = [MANIFESTS / "seed001-liveness-readiness-independent.yaml",
             MANIFESTS / "seed000-app-target.yaml"]
    text = emit_tests(load_manifest_paths(paths), paths)
    compile(text, "test_emitted.py", "exec")
    names = [line.split("(")[0][4:] for line in text.splitlines() if line.startswith("def test_")]
    assert names == [
        "test_pod_httpserver_independent_httpserver_hung_is_restarted_within_its_liveness_window",
        "test_deployment_app_target_app_target_hung_is_restarted_within_its_liveness_window",
        "test_deployment_app_target_app_target_unreachable_leaves_the_endpoints_within_its_"
        "readiness_window"]
    assert str(paths[0].resolve()) in text and "probes_faults.freeze(" in text


def test_emit_test_refuses_stdin_and_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = tmp_path / "test_mine.py"
    kept.write_text("# mine\n")
    manifest = str(MANIFESTS / "seed001-liveness.yaml")
    assert cli.main(["explain", manifest, "--emit-test", str(kept)]) == 1
    assert "exists already" in capsys.readouterr().err and kept.read_text() == "# mine\n"
    assert cli.main(["explain", "-", "--emit-test", str(tmp_path / "new.py")]) == 1
    assert "needs manifest files" in capsys.readouterr().err
