"""``assert_crashloop_backoff`` with a restart schedule's histories, on recorded O2.3 runs.

Both timelines were recorded on the local provider, Kubernetes 1.36.3, by the live O2.3 test as it
was before it moved to 17 s lives (seed 1755: every instance is killed ~14 s after it starts).
Restarts 1–3 came at once and the 4th waited for the 20 s back-off in both. In
``o2_3-long-branch.jsonl`` the 4th restart came 24 s after the exit, so the 5th kill landed 39 s
after it, inside the 40 s back-off, and restart 5 waited; in ``o2_3-short-branch.jsonl`` it came
26 s after, the 5th kill 40 s after, and restart 5 followed at once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_probes import ProbeAssertionError, assert_crashloop_backoff
from pytest_probes.assertions import SKIPPED_BACKOFF_HINT, context_of, restart_gaps
from pytest_probes.deploy import load_manifests
from pytest_probes.timeline import Record, Timeline
from pytest_probes.timing import ContainerTiming, RestartSchedule, Window, delay_from

DATA = Path(__file__).resolve().parents[1] / "data" / "timelines"
LONG, SHORT = "o2_3-long-branch.jsonl", "o2_3-short-branch.jsonl"
AT_ONCE, WAITED = False, True


def schedule() -> RestartSchedule:
    """The live test's schedule, from the manifest's probe spec and seed 1755's 8th request."""
    deployment = next(o.doc for o in load_manifests("seed002-degrading-liveness.yaml")
                      if o.doc["kind"] == "Deployment")
    timing = ContainerTiming.from_pod_spec(deployment)
    spec = timing.liveness
    assert spec is not None
    return timing.restart_schedule(
        5, fail_from=delay_from(spec.initial_delay, start="runtime") + 7 * spec.period, exit_code=0,
        kill_duration=timing.kill_duration(exits_on_sigterm_after=0),
        probe_response=Window(0.0, spec.timeout))


def recorded(name: str) -> tuple[Timeline, str, Record]:
    tl = Timeline.load(DATA / name)
    (pod,) = tl.pods()
    return tl, pod, tl.query(pod=pod, kind="ContainerStarted")[0]


@pytest.mark.parametrize(("name", "last"), [(LONG, WAITED), (SHORT, AT_ONCE)])
def test_each_restart_is_checked_against_the_history_the_kubelet_took(name: str,
                                                                      last: bool) -> None:
    tl, pod, started = recorded(name)
    s = schedule()
    gaps = assert_crashloop_backoff(tl, pod, restarts=5, since=started, schedule=s)
    history = [AT_ONCE] * 3 + [WAITED, last]
    assert [g.backed_off for g in gaps] == history
    # The helper measured restart 5 against that history's window, not the hull.
    window = s.given(history)
    assert window is not None and window != s[4]
    measured = context_of(tl).measurements[-1]
    assert (measured.helper, measured.earliest, measured.latest) == (
        "assert_crashloop_backoff", window.earliest, window.latest)
    assert window.contains(measured.observed, slack=1.0)


def test_the_announced_back_off_doubles() -> None:
    tl, pod, _ = recorded(LONG)
    waited = [g for g in restart_gaps(tl, pod) if g.backed_off]
    # "CrashLoopBackOff: back-off 20s ...", then "back-off 40s ...".
    assert [g.backoff for g in waited] == [20.0, 40.0]
    assert all(g.gap >= g.backoff for g in waited if g.backoff is not None)


@pytest.mark.parametrize(("name", "allowed", "hint"), [(LONG, AT_ONCE, False),
                                                      (SHORT, WAITED, True)])
def test_a_history_the_rules_do_not_allow_fails(name: str, allowed: bool, hint: bool) -> None:
    tl, pod, started = recorded(name)
    s = schedule()
    fifth = s.restarts[4]
    assert fifth.paths is not None
    # Pretend the spec only allowed restart 5 one way after the 20 s wait: the other way than
    # the recorded one.
    paths = {h: w for h, w in fifth.paths.items() if h[-1] is allowed}
    narrowed = replace(s, restarts=(*s.restarts[:4], replace(fifth, paths=paths)))
    with pytest.raises(ProbeAssertionError, match="allow no such history") as info:
        assert_crashloop_backoff(tl, pod, restarts=5, since=started, schedule=narrowed)
    # Only a restart that came at once where the rules say it waits can be a skipped step.
    assert (SKIPPED_BACKOFF_HINT in str(info.value)) is hint


SHORT_HISTORY = (AT_ONCE,) * 3 + (WAITED, AT_ONCE)
"""The history of ``o2_3-short-branch.jsonl``, whose restart 5 came at +96 s."""


def with_fifth_window(s: RestartSchedule, shift: float) -> RestartSchedule:
    """``s`` with the window of restart 5 in :data:`SHORT_HISTORY` moved by ``shift`` seconds."""
    short = s.given(SHORT_HISTORY)
    fifth = s.restarts[4]
    assert short is not None and fifth.paths is not None
    paths = {**fifth.paths, SHORT_HISTORY: short.shifted(shift)}
    return replace(s, restarts=(*s.restarts[:4], replace(fifth, paths=paths)))


def test_a_restart_outside_its_history_window_fails_though_inside_the_hull() -> None:
    tl, pod, started = recorded(SHORT)
    s = schedule()
    # A history window that starts later (still inside the hull) must reject restart 5, which a
    # hull-only check cannot.
    moved = with_fifth_window(s, 10)
    late = moved.given(SHORT_HISTORY)
    assert late is not None and s[4].contains(late.earliest) and s[4].contains(late.latest)
    with pytest.raises(ProbeAssertionError, match=r"restart 5 at \+96 s, outside") as info:
        assert_crashloop_backoff(tl, pod, restarts=5, since=started, schedule=moved)
    # It came before its window: the hint names the kubelet's one way to skip a back-off step.
    assert SKIPPED_BACKOFF_HINT in str(info.value)


def test_a_restart_after_its_window_fails_without_the_skipped_back_off_hint() -> None:
    tl, pod, started = recorded(SHORT)
    with pytest.raises(ProbeAssertionError, match=r"restart 5 at \+96 s, outside") as info:
        assert_crashloop_backoff(tl, pod, restarts=5, since=started,
                                 schedule=with_fifth_window(schedule(), -45))  # to 49-93 s
    assert SKIPPED_BACKOFF_HINT not in str(info.value)


def test_an_announced_back_off_the_schedule_does_not_give_fails() -> None:
    tl, pod, started = recorded(LONG)
    s = schedule()
    fifth = s.restarts[4]
    wrong = replace(s, restarts=(*s.restarts[:4], replace(fifth, backoff=Window.at(80.0))))
    with pytest.raises(ProbeAssertionError, match="back-off of 40 s"):
        assert_crashloop_backoff(tl, pod, restarts=5, since=started, schedule=wrong)


SIDECAR = "upstream-s7-sidecar-restart-count.jsonl"
"""Upstream's "Probing restartable init container should have monotonically increasing restart
count", recorded by its live test on the local provider, Kubernetes 1.37.2: the sidecar
``liveness`` (the target app, ``/healthz`` failing 10 s after start, exits 0 on SIGTERM) was
restarted at once four times, then waited 57 s. Its status never showed a CrashLoopBackOff wait:
``convertToAPIContainerStatuses`` leaves an init container whose newest instance exited 0 as
``Terminated`` (``pkg/kubelet/kubelet_pods.go``); only the kubelet's ``BackOff`` Events show it."""


def test_a_sidecar_that_exited_0_shows_its_back_off_by_the_event_only() -> None:
    tl = Timeline.load(DATA / SIDECAR)
    (pod,) = tl.pods()
    assert not tl.query(pod=pod, kind="ContainerWaiting",
                        where=lambda r: r.data.get("reason") == "CrashLoopBackOff")
    started = tl.query(pod=pod, kind="ContainerStarted", container="liveness")[0]
    gaps = assert_crashloop_backoff(tl, pod, restarts=5, since=started, container="liveness",
                                    within=Window(0, 300))
    assert [g.backed_off for g in gaps] == [AT_ONCE] * 4 + [WAITED]
    # The Event does not say how long the back-off is.
    assert gaps[-1].backoff is None and gaps[-1].gap >= 40
    # Without the Events nothing shows the wait: the helper says so.
    bare = Timeline(tl.namespace, [r for r in tl.records if r.kind != "BackOff"])
    assert [g.backed_off for g in restart_gaps(bare, pod)] == [AT_ONCE] * 5
    with pytest.raises(ProbeAssertionError, match="BackOff Event"):
        assert_crashloop_backoff(bare, pod, restarts=5, since=started, container="liveness",
                                 within=Window(0, 300))
