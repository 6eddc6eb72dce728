"""Where the next probe comes, from when the app saw the earlier ones (faults.next_probe)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.stream.ws_client import WSClient

from pytest_probes.faults import next_probe

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_the_next_probe_is_a_whole_number_of_periods_after_the_last() -> None:
    assert next_probe(at(1.0, 4.0, 7.0), 3, after=T0 + timedelta(seconds=11.5)) == at(13.0)[0]
    assert next_probe(at(1.0, 4.0, 7.0), 3, after=T0 + timedelta(seconds=13.0)) == at(13.0)[0]


def test_the_least_late_request_sets_the_phase() -> None:
    # Each request reaches the app a little after the kubelet's tick; the earliest is nearest.
    ticks = at(1.04, 4.20, 7.01, 10.12)
    assert next_probe(ticks, 3, after=T0 + timedelta(seconds=11)) == at(13.01)[0]


def test_probes_before_a_ticker_restart_do_not_count() -> None:
    # Readiness while not ready: a pod sync ran a probe at 8.4 and restarted the ticker.
    ticks = at(1.0, 4.0, 7.0, 8.4, 11.4)
    assert next_probe(ticks, 3, after=T0 + timedelta(seconds=12)) == at(14.4)[0]


def test_a_moment_before_the_last_probe_gives_the_last_probe() -> None:
    assert next_probe(at(5.0), 2, after=T0) == at(5.0)[0]


@pytest.mark.parametrize(("ticks", "period"), [([], 1.0), (at(1.0), 0.0)])
def test_no_probes_or_no_period_is_an_error(ticks: list[datetime], period: float) -> None:
    with pytest.raises(ValueError, match="at least one probe and a positive period"):
        next_probe(ticks, period, after=T0)


class _ClosedExec:
    """What the client's exec stream holds once the API server has closed it: the error channel
    as the API server sent it, read by the client's own ``returncode``."""

    def __init__(self, error_channel: str) -> None:
        self._returncode = None
        self._error = error_channel

    def run_forever(self, timeout: float) -> None:
        pass

    def is_open(self) -> bool:
        return False

    def read_stdout(self) -> str:
        return ""

    def read_stderr(self) -> str:
        return ""

    def read_channel(self, channel: int) -> str:
        return self._error

    def close(self) -> None:
        pass

    returncode = WSClient.returncode


# The error channel of an exec into a container that liveness had just killed (a fresh clone's
# make probes, O2.1 on a loaded node).
KILLED = (
    '{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command'
    ' in container: failed to exec in container: failed to create exec \\"3b3dd2d1\\": task '
    '3cdb4faa06c2 not found","reason":"InternalError","details":{"causes":[{"message":"Internal '
    'error occurred: error executing command in container: failed to exec in container: failed '
    'to create exec \\"3b3dd2d1\\": task 3cdb4faa06c2 not found"}]},"code":500}')


def test_an_exec_the_runtime_could_not_run_is_a_probes_error_naming_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kubernetes.stream

    from pytest_probes.errors import ProbesError
    from pytest_probes.faults import exec_in_pod

    monkeypatch.setattr(kubernetes.stream, "stream", lambda *a, **k: _ClosedExec(KILLED))
    with pytest.raises(ProbesError, match=r"cannot exec true in pod ns/p: Internal error "
                                          r"occurred: .* task 3cdb4faa06c2 not found$"):
        exec_in_pod(None, "ns", "p", ["true"])
    # A command that ran and failed keeps its exit code.
    failed = ('{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":'
              '{"causes":[{"reason":"ExitCode","message":"3"}]}}')
    monkeypatch.setattr(kubernetes.stream, "stream", lambda *a, **k: _ClosedExec(failed))
    with pytest.raises(ProbesError, match=r"`true` in pod ns/p exited 3"):
        exec_in_pod(None, "ns", "p", ["true"])
