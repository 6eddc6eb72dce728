"""The ``--probes-html`` report of a real run, loaded by a real browser (headless Chromium).

An inner pytest run on the session's cluster runs three scenarios — the README's example, a
readiness gain after a slow start, and one that fails on purpose — with ``--probes-html``. Debian's
Chromium then loads the file, with every host name unresolvable and no proxy, so it can reach
nothing but the file, and the test checks that the screenshots (desktop and phone width) are not
blank, that the page's script ran (it counts the tests it shows) and that the DOM has one chart
per test. ``scripts/bootstrap`` installs the ``chromium`` package; without it this test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from tests.helpers import readme_probe_example
from tests.png import colours

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder

SCENARIOS = '''
import pytest
from pytest_probes import ContainerTiming, assert_ready_within, assert_restarts_within
from pytest_probes.faults import app_start_lag

SLOW = """
apiVersion: v1
kind: Pod
metadata: {name: slow-start}
spec:
  containers:
    - name: app
      image: probes-target
      env: [{name: START_DELAY, value: "5"}, {name: START_MODE, value: refuse}]
      readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
"""

STEADY = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "steady"},
          "spec": {"containers": [{"name": "app", "image": "probes-target"}]}}


@pytest.mark.probes
def test_readiness_follows_a_slow_start(probes_deploy, probes_timeline, _probes_api):
    objects = probes_deploy(SLOW, wait="running")
    started = probes_timeline.wait_first(pod="slow-start", kind="ContainerStarted", timeout=60)
    serving = app_start_lag(_probes_api, probes_timeline.namespace, "slow-start", started.time)
    gain = ContainerTiming.from_pod_spec(objects[0]).readiness_gain(ready_from=serving)
    assert_ready_within(probes_timeline, "slow-start", since=started, within=gain)


@pytest.mark.probes
def test_fails_on_purpose_expecting_a_restart_that_never_comes(probes_deploy, probes_timeline):
    probes_deploy([STEADY], wait="running")
    assert_restarts_within(probes_timeline, "steady", within=1)
'''


def chromium() -> str:
    """The Chromium binary; the test fails (does not skip) without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: the browser test needs Debian's package "
                    "(apt-get install -y chromium; scripts/bootstrap installs it)", pytrace=False)
    return found


def browse(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local file, unable to reach any host (no DNS, no proxy)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={page.parent / 'chromium-profile'}", *args, page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def assert_not_blank(png: Path) -> None:
    """The screenshot has many colours, and no single colour covers nearly all of it."""
    found = colours(png.read_bytes(), step=2)
    total = sum(found.values())
    (_, most), = found.most_common(1)
    assert len(found) > 50 and most / total < 0.95, (
        f"{png}: looks blank: {len(found)} colours, the commonest covers {most / total:.0%}")


@pytest.mark.selftest
def test_html_report_of_a_live_run_renders_in_chromium(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium()  # fail before the inner run when the browser is missing
    pytester.makepyfile(test_example=readme_probe_example(), test_scenarios=SCENARIOS)
    # pytester gives the inner run a temporary HOME; keep the real cache (builds and clusters).
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    result = pytester.runpytest_inprocess(
        "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider",
        "--probes-html", "report.html",
    )
    result.assert_outcomes(passed=2, failed=1)
    page = pytester.path / "report.html"

    dom = browse(page, "--dump-dom").stdout
    assert dom.count('<article class="probe-test') == 3
    assert dom.count('<figure class="chart"><svg') == 3  # one chart per test
    assert dom.count('<g class="window">') == 2  # the failed helper measured nothing
    assert "3 of 3 shown" in dom  # the page's script ran
    assert "expected ≥1 restart within 1 s" in dom
    for width, height, name in ((1280, 2400, "desktop.png"), (390, 1600, "phone.png")):
        shot = pytester.path / name
        browse(page, f"--screenshot={shot}", f"--window-size={width},{height}")
        assert_not_blank(shot)
    keep = os.environ.get("PROBES_HTML_SCREENSHOTS")  # to look at them (docs/ has one)
    if keep:
        for name in ("report.html", "desktop.png", "phone.png"):
            shutil.copy(pytester.path / name, Path(keep) / name)
