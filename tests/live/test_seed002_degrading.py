"""Seed 002, O2.1–O2.3: a server that degrades with every health check, liveness as heartbeat.

``/healthz`` counts its requests and fails with probability count%. The manifest fixes the random
seed, so the request that starts the first run of ``failureThreshold`` failures is known in
advance (:func:`first_failing_run`) and every window still comes from the probe spec.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

import pytest

from pytest_probes import (
    ContainerTiming,
    Timeline,
    assert_crashloop_backoff,
    assert_probe_failures,
    assert_restarts_within,
)
from pytest_probes._poll import poll
from pytest_probes.deploy import Deployer, load_manifests
from pytest_probes.faults import app_start_lag, exec_in_pod
from pytest_probes.timing import RestartSchedule, Window, delay_from

pytestmark = pytest.mark.probes

POD = "failweb"


def first_failing_run(seed: int, threshold: int) -> int:
    """The 1-based request number that starts the first ``threshold`` failures in a row.

    Mirrors the target app: request ``n`` fails iff ``Random(seed).random()`` (its n-th draw)
    is below ``n / 100`` (``pytest_probes/target/server.py``, DEGRADE).
    """
    rng = random.Random(seed)
    run = 0
    for n in range(1, 101):
        run = run + 1 if rng.random() < n / 100 else 0
        if run == threshold:
            return n - threshold + 1
    raise AssertionError("request 100 always fails")


def _deploy(deploy: Deployer, *, seed: int | None = None) -> tuple[ContainerTiming,
                                                                  list[dict[str, Any]]]:
    docs = [o.doc for o in load_manifests("seed002-degrading-liveness.yaml")]
    if seed is not None:
        for doc in docs:
            if doc["kind"] == "Deployment":
                for env in doc["spec"]["template"]["spec"]["containers"][0]["env"]:
                    if env["name"] == "DEGRADE_SEED":
                        env["value"] = str(seed)
    objects = deploy(docs, wait="running")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return ContainerTiming.from_pod_spec(deployment), objects


def _windows(timing: ContainerTiming, objects: list[dict[str, Any]], n: int,
             serving: float) -> RestartSchedule:
    """Restart windows, counting the requests from when the first instance's app served.

    Each new instance's app serves quickly, but the first one can be late when the whole suite
    starts at once; then its requests, and so every restart, come that much later (rounded up to
    the probe's next tick: up to one period more).
    """
    spec = timing.liveness
    assert spec is not None
    assert serving < spec.initial_delay + (spec.failure_threshold - 1) * spec.period, \
        f"the app served {serving:.1f} s after start: start-up failures alone kill it"
    late = max(0.0, serving - delay_from(spec.initial_delay, start="runtime"))
    shift = Window(late, late + spec.period) if late > 0 else Window(0.0, 0.0)
    return _schedule(timing, objects, n).shifted(shift)


def _schedule(timing: ContainerTiming, objects: list[dict[str, Any]], n: int) -> RestartSchedule:
    spec = timing.liveness
    assert spec is not None
    env = {e["name"]: e.get("value") for e in
           next(o for o in objects if o["kind"] == "Deployment")
           ["spec"]["template"]["spec"]["containers"][0]["env"]}
    k = first_failing_run(int(env["DEGRADE_SEED"]), spec.failure_threshold)
    # Probes are not sent before the initial delay (which can pass up to a second early, see
    # delay_from); the k-th comes k-1 periods after the first.
    fail_from = delay_from(spec.initial_delay, start="runtime") + (k - 1) * spec.period
    return timing.restart_schedule(n, fail_from=fail_from, exit_code=0,
                                   kill_duration=timing.kill_duration(exits_on_sigterm_after=0),
                                   probe_response=Window(0.0, spec.timeout))


_GET = """
import json, sys, time, urllib.error, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
for _ in range(int(sys.argv[3])):
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080" + sys.argv[1], timeout=5) as r:
                print(json.dumps([r.status, r.read().decode()]), flush=True)
        except urllib.error.HTTPError as err:
            print(json.dumps([err.code, err.read().decode()]), flush=True)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        break
"""


def _get(api: Any, namespace: str, pod: str, path: str, *, connect_within: float = 10.0
         ) -> tuple[int, str]:
    """GET from inside the pod, on its loopback; the app may still be starting to listen.

    From inside, so that the request goes where it is meant to on every provider: a pod IP is
    reachable from the host on the local provider's bridge only.
    """
    return _gets(api, namespace, pod, path, 1, connect_within=connect_within)[0]


def _gets(api: Any, namespace: str, pod: str, path: str, count: int, *,
          connect_within: float = 10.0) -> list[tuple[int, str]]:
    """``count`` GETs of ``path`` one after another, by one process in the pod (one exec)."""
    out = exec_in_pod(api, namespace, pod,
                      ["python3", "-c", _GET, path, str(connect_within), str(count)])
    answers = [json.loads(line) for line in out.strip().splitlines() if line.startswith("[")]
    assert len(answers) == count, out[-2000:]
    return [(int(status), str(body)) for status, body in answers]


def test_o2_1_healthz_counts_requests_and_fails_more_often_as_the_count_grows(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O2.1: /healthz counts its requests and fails more often as the count grows."""
    timing, objects = _deploy(probes_deploy)
    (pod,) = probes_deploy.pods(objects)
    name, namespace = pod["metadata"]["name"], probes_timeline.namespace
    status, body = _get(_probes_api, namespace, name, "/")
    assert (status, body.strip()) == (200, "Hello, World!")
    # Ten requests from one process in the pod: one exec, not ten (an exec starts a Python in
    # the pod, 2-3 s each on a loaded 2-core node, and liveness may kill the degrading app
    # meanwhile: an exec into the killed container fails).
    answers = _gets(_probes_api, namespace, name, "/healthz", 10)
    counts = []
    for status, body in answers:
        m = re.fullmatch(r"(OK|Server Error) (\d+)\s*", body)
        assert m, body
        assert status == (200 if m.group(1) == "OK" else 500), (status, body)
        counts.append(int(m.group(2)))
    # Strictly increasing within one instance (the kubelet's liveness requests count too, so
    # gaps are allowed). Liveness may still kill the degrading app between the requests (O2.2;
    # a CI run with one exec per request saw [6, 9, 10, 13, 15, 18, 1, 2, ...]): its successor
    # counts from 1 again. Each drop must be a restart the timeline shows.
    drops = sum(1 for before, after in itertools.pairwise(counts) if after <= before)
    if drops:
        restarts = poll(lambda: probes_timeline.query(pod=name, kind="ContainerRestarted"),
                        until=lambda found: len(found) >= drops, timeout=timing.status_lag)
        assert len(restarts) >= drops, (counts, restarts)
    info = json.loads(_get(_probes_api, namespace, name, "/info")[1])
    assert info["counters"]["degrade"] >= counts[-1]


def test_o2_2_liveness_kills_the_degraded_container_and_the_count_starts_again(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O2.2: liveness kills the degraded container, and the count starts again."""
    api = _probes_api
    tl = probes_timeline
    timing, objects = _deploy(probes_deploy)
    (pod,) = probes_deploy.pods(objects)
    name = pod["metadata"]["name"]
    started = tl.wait_first(pod=name, kind="ContainerStarted", timeout=30)
    serving = app_start_lag(api, tl.namespace, name, started.time)
    schedule = _windows(timing, objects, 2, serving)
    restarts = assert_restarts_within(tl, name, restarts=2, since=started, within=schedule[1])
    assert_restarts_within(tl, name, since=started, within=schedule[0])
    assert all(r.data["previous"]["exitCode"] == 0 for r in restarts)  # killed, then exit 0
    assert_probe_failures(tl, name, probe="liveness", count=3,
                          message="HTTP probe failed with statuscode: 500", since=started)
    # The counter lives in the process: the new container counts from 1 again.
    count = json.loads(_get(api, tl.namespace, name, "/info")[1])["counters"]["degrade"]
    since_restart = (tl.server_now() - restarts[-1].time).total_seconds()  # after the count
    spec = timing.liveness
    assert spec is not None
    assert count <= since_restart / spec.period + 1, (count, since_restart)


def test_o2_3_frequent_restarts_bring_crashloopbackoff_starting_at_10s_and_doubling(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """O2.3: frequent restarts bring CrashLoopBackOff, starting at 10 s and doubling.

    The manifest's seed kills every instance after ~26 s, longer than the first back-off
    steps; this seed (3401) fails three times in a row from the 11th request, so instances live
    ~17 s and the back-off (10 s, 20 s, 40 s ...) overtakes them within a few restarts.

    Restarts 1–3 come at once (the back-off entry goes to 10, 20, 40 s behind them) and the 4th
    kill lands in the 20 s back-off. How late the kubelet's jittered requeue ends that back-off
    (up to half of it from 1.35) decides whether the 5th kill, ~17 s after restart 4, lands in
    the 40 s one: restart 5 then waits 40 s more (and the kubelet announces ``back-off 40s``),
    else it comes at once. With equal lives no seed avoids that choice, so the schedule keeps
    both histories and each restart is checked against the one the kubelet took.

    Why 17 s: the later the 5th kill, the more of the 20 s back-off's jitter it outlasts, so
    restart 5 mostly follows at once; and when it waits, the 40 s back-off's own jitter (up to
    20 s) is a smaller part of the whole. Lives of 14 s (seed 1755) waited in about half the
    runs and then came up to 1.18 x the earliest the spec allows; lives must stay under 20 s
    for the 4th kill to land in back-off."""
    api = _probes_api
    tl = probes_timeline
    timing, objects = _deploy(probes_deploy, seed=3401)
    (pod,) = probes_deploy.pods(objects)
    name = pod["metadata"]["name"]
    started = tl.wait_first(pod=name, kind="ContainerStarted", timeout=30)
    serving = app_start_lag(api, tl.namespace, name, started.time)
    schedule = _windows(timing, objects, 5, serving)
    assert first_failing_run(3401, 3) == 11
    gaps = assert_crashloop_backoff(tl, name, restarts=5, since=started, schedule=schedule)
    assert any(g.backed_off for g in gaps)
