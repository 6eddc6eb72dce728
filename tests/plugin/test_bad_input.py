"""Bad input reaches the user as a message naming the thing and the fix, not a traceback.

These run without a cluster: the library raises the same errors inside ``probes_deploy`` (see
tests/live/test_bad_input.py for the same inputs against a real cluster).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "manifests"


def _run(pytester: pytest.Pytester, body: str, *args: str) -> tuple[pytest.RunResult, float]:
    pytester.makepyfile(test_inner=body)
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return result, time.monotonic() - started


def test_a_library_error_is_shown_as_its_message_without_a_traceback(
    pytester: pytest.Pytester,
) -> None:
    result, took = _run(pytester, f"""
        from pytest_probes.deploy import load_manifests

        def test_missing_file():
            load_manifests("no-such-manifest.yaml")

        def test_malformed_yaml():
            load_manifests({str(DATA / "bad-indent.yaml")!r})

        def test_other_namespace():
            from pytest_probes.deploy import prepare
            prepare(load_manifests({str(DATA / "other-namespace.yaml")!r}), namespace="mine",
                    target_image="img")
    """)
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert "Traceback" not in out and "def test_missing_file" not in out, out
    result.stdout.fnmatch_lines([
        "DeployError: manifest 'no-such-manifest.yaml' not found (not a manifest file); looked "
        "for *Pass an absolute "
        "path*",
        "DeployError: *bad-indent.yaml: invalid YAML in document 1 at line 9, column 6: *Fix the "
        "syntax there*",
        "DeployError: *other-namespace.yaml document 2: Deployment web: metadata.namespace is "
        "'production', but the test deploys into 'mine'. Remove metadata.namespace*",
    ])
    assert took < 30


def test_full_trace_brings_the_traceback_back(pytester: pytest.Pytester) -> None:
    result, _took = _run(pytester, """
        from pytest_probes.deploy import load_manifests

        def test_missing_file():
            load_manifests("no-such-manifest.yaml")
    """, "--tb=long")
    result.assert_outcomes(failed=1)
    assert "def test_missing_file" in result.stdout.str()


def test_a_helper_on_a_pod_that_never_appears_names_the_pod_and_the_fix(
    pytester: pytest.Pytester,
) -> None:
    stream = Path(__file__).resolve().parents[1] / "data" / "streams" / "liveness-restart.jsonl"
    result, took = _run(pytester, f"""
        from pathlib import Path
        from pytest_probes import assert_ready_within
        from pytest_probes.importers import replay_raw

        def test_typo_in_the_pod_name():
            assert_ready_within(replay_raw(Path({str(stream)!r})), "wbe", within=120)
    """)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "no pod matching 'wbe' appeared in namespace" in out
    assert "pods seen: web-" in out
    assert "check the pod name and that the manifest was deployed into this namespace" in out
    assert took < 30
