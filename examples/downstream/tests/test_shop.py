"""How the shop's probes behave when it hangs, crashes or stops answering.

The faults act from outside the app (``probes_faults``), so the app stays as it is; every window
comes from the probe spec by the kubelet's rules (``ContainerTiming``).
"""

from pathlib import Path

import pytest
import yaml

from pytest_probes import (
    ContainerTiming,
    assert_endpoint_removed_after,
    assert_restarts_within,
    assert_terminated,
)
from pytest_probes.timing import Window, endpoints_follow

pytestmark = pytest.mark.probes

MANIFEST = Path(__file__).parents[1] / "manifests" / "shop.yaml"
DEPLOYMENT = next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d["kind"] == "Deployment")
TIMING = ContainerTiming.from_pod_spec(DEPLOYMENT)


@pytest.fixture
def shop(probes_deploy, probes_timeline):
    """The shop deployed and ready; the start of its container."""
    probes_deploy(MANIFEST, wait="ready")
    return probes_timeline.wait_first(pod="shop", kind="ContainerStarted", timeout=60)


def test_a_hung_shop_is_restarted_by_its_liveness_probe(shop, probes_timeline, probes_faults):
    """Hung (every process stopped): the liveness probe times out and the kubelet restarts it."""
    frozen = probes_faults.freeze("shop")
    fail_from = (frozen - shop.time).total_seconds()
    # A stopped process ignores SIGTERM: the kubelet's SIGKILL ends the grace period.
    kill = TIMING.kill_duration(exits_on_sigterm_after=None)
    schedule = TIMING.restart_schedule(1, fail_from=fail_from, kill_duration=kill)
    assert_restarts_within(probes_timeline, "shop", restarts=1, since=shop, within=schedule[0])


def test_a_crashed_shop_exits_137_and_comes_back(shop, probes_timeline, probes_faults):
    """Crashed (SIGKILL): exit code 137, restarted without back-off the first time."""
    killed = probes_faults.kill("shop")
    assert_terminated(probes_timeline, "shop", since=killed, exit_code=137,
                      within=Window(0.0, TIMING.status_lag))
    run = (killed - shop.time).total_seconds()
    schedule = TIMING.restart_schedule(1, crash=True, run_until_kill=run)
    assert_restarts_within(probes_timeline, "shop", restarts=1, since=shop, within=schedule[0])


def test_a_shop_that_stops_answering_leaves_the_service(shop, probes_timeline, probes_faults):
    """Unreachable (its port blocked in its own network namespace): out of the endpoints."""
    blocked = probes_faults.block_port("shop", 8080, for_s=15)
    fail_from = (blocked - shop.time).total_seconds()
    loss = TIMING.readiness_loss(fail_from=fail_from).shifted(-fail_from)
    assert_endpoint_removed_after(probes_timeline, "shop", after=blocked, since=blocked,
                                  within=endpoints_follow(loss))
