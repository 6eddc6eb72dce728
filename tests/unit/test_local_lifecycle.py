"""Local cluster lifecycle logic that needs no Kubernetes: waits, status, teardown of processes."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import node, supervisor
from pytest_probes.providers.local.config import COMPONENTS, ClusterState
from pytest_probes.providers.local.controlplane import Ports
from pytest_probes.providers.local.lifecycle import LocalCluster

SH = shutil.which("sh") or "/bin/sh"
SLEEP = shutil.which("sleep") or "/bin/sleep"


def _cluster(tmp_path: Path) -> LocalCluster:
    return LocalCluster(f"unit-{uuid.uuid4().hex[:8]}", tmp_path)


def _state(local: LocalCluster) -> ClusterState:
    return ClusterState(
        name=local.name,
        version="1.34.4",
        created="2026-01-01T00:00:00+00:00",
        ports=Ports(1, 2, 3, 4, 5, 6, 7),
        network=node.PodNetwork(127),
        node_name=f"{local.name}-node",
        snapshotter="native",
        socket=str(local.paths.socket),
        cache_dir=str(local.cache_dir),
    )


@pytest.mark.parametrize("name", ["", "a b", "x" * 41, "../up", "a_b"])
def test_cluster_names_are_checked(tmp_path: Path, name: str):
    with pytest.raises(ClusterError, match="invalid cluster name"):
        LocalCluster(name, tmp_path)


def test_wait_fails_at_once_when_the_component_exits_quoting_its_log(tmp_path: Path):
    local = _cluster(tmp_path)
    state = _state(local)
    record = supervisor.start(
        "etcd",
        [SH, "-c", "echo 'fatal: bad flag --nope'; exit 2"],
        log_path=local.paths.log("etcd"),
        pid_path=local.paths.pid_file("etcd"),
    )
    state.processes["etcd"] = record
    with pytest.raises(ClusterError) as info:
        local._wait(state, "etcd", lambda: False, timeout=30)
    message = str(info.value)
    assert "etcd exited during start-up" in message
    assert str(local.paths.log("etcd")) in message
    assert "fatal: bad flag --nope" in info.value.stderr_tail


def test_wait_times_out_naming_what_it_waited_for(tmp_path: Path):
    local = _cluster(tmp_path)
    state = _state(local)
    record = supervisor.start(
        "kubelet",
        [SLEEP, "30"],
        log_path=local.paths.log("kubelet"),
        pid_path=local.paths.pid_file("kubelet"),
    )
    state.processes["kubelet"] = record
    try:
        with pytest.raises(
            ClusterError, match=r"kubelet did not make it: waited 0 s for node x Ready"
        ):
            local._wait(state, "kubelet", lambda: False, timeout=0.2, what="node x Ready")
    finally:
        supervisor.stop(record, timeout=1)


def test_wait_returns_when_the_condition_holds(tmp_path: Path):
    local = _cluster(tmp_path)
    calls = []

    def condition() -> bool:
        calls.append(1)
        return len(calls) >= 3

    local._wait(_state(local), "etcd", condition, timeout=10)
    assert len(calls) == 3


def test_status_of_a_cluster_that_does_not_exist(tmp_path: Path):
    status = _cluster(tmp_path).status()
    assert not status.exists and not status.running
    assert "not created" in status.render()


def test_status_sees_dead_processes_and_down_removes_the_rest(tmp_path: Path):
    local = _cluster(tmp_path)
    state = _state(local)
    local.paths.root.mkdir(parents=True)
    alive = supervisor.start(
        "kube-scheduler",
        [SH, "-c", f"{SLEEP} 30; : {local.paths.root}"],
        log_path=local.paths.log("kube-scheduler"),
        pid_path=local.paths.pid_file("kube-scheduler"),
    )
    gone = supervisor.start(
        "etcd",
        [SH, "-c", "exit 0"],
        log_path=local.paths.log("etcd"),
        pid_path=local.paths.pid_file("etcd"),
    )
    supervisor.wait_gone([gone], timeout=5)
    state.processes.update({"kube-scheduler": alive, "etcd": gone})
    local.paths.state_file.write_text(json.dumps(state.to_json()))

    status = local.status()
    assert status.exists and not status.running
    by_name = {c.name: c for c in status.components}
    assert [c.name for c in status.components] == list(COMPONENTS)
    assert by_name["kube-scheduler"].alive and by_name["kube-scheduler"].pid == alive.pid
    assert not by_name["etcd"].alive
    assert by_name["kubelet"].pid is None
    rendered = status.render()
    assert "NOT healthy" in rendered and "DEAD" in rendered

    lines: list[str] = []
    local.down(lines.append)
    assert not supervisor.is_alive(alive)
    assert not local.paths.root.exists()
    assert lines and lines[-1].startswith(f"cluster {local.name} deleted (")
    local.down(lines.append)
    assert "does not exist" in lines[-1]


def test_cli_status_of_a_missing_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from pytest_probes import cli

    assert cli.main(["cluster", "status", "--name", "absent", "--cache-dir", str(tmp_path)]) == 0
    assert "cluster absent: not created" in capsys.readouterr().out


def test_cli_up_with_an_unknown_version_fails_listing_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from pytest_probes import cli

    code = cli.main(
        ["cluster", "up", "--name", "x", "--k8s-version", "1.20", "--cache-dir", str(tmp_path)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the local provider cannot build Kubernetes '1.20'")
    assert "1.34 (= 1.34.4)" in err
    assert not (tmp_path / "clusters" / "x").exists()


def test_cli_down_all_brings_down_every_cluster_of_the_cache_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from pytest_probes import cli

    for name in ("first", "second"):
        (tmp_path / "clusters" / name).mkdir(parents=True)
    assert cli.main(["cluster", "down", "--all", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 cluster(s) brought down: first, second" in out
    assert not [p for p in (tmp_path / "clusters").iterdir() if not p.name.endswith(".lock")]
    assert cli.main(["cluster", "down", "--all", "--cache-dir", str(tmp_path)]) == 0
    assert "0 cluster(s) brought down: none" in capsys.readouterr().out


def test_cli_requires_an_action(capsys: pytest.CaptureFixture[str]):
    from pytest_probes import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["cluster"])
    assert info.value.code == 2


def test_wait_names_any_started_process_that_died(tmp_path: Path):
    local = _cluster(tmp_path)
    state = _state(local)
    waiting = supervisor.start(
        "kubelet",
        [SLEEP, "30"],
        log_path=local.paths.log("kubelet"),
        pid_path=local.paths.pid_file("kubelet"),
    )
    died = supervisor.start(
        "containerd",
        [SH, "-c", "echo 'containerd: cannot bind socket'; exit 1"],
        log_path=local.paths.log("containerd"),
        pid_path=local.paths.pid_file("containerd"),
    )
    state.processes.update({"kubelet": waiting, "containerd": died})
    try:
        with pytest.raises(ClusterError, match="containerd exited during start-up") as info:
            local._wait(state, "kubelet", lambda: False, timeout=30, what="node Ready")
        assert "cannot bind socket" in str(info.value)
    finally:
        supervisor.stop(waiting, timeout=1)


def test_down_leaves_unrelated_processes_that_read_the_cluster_logs_alone(tmp_path: Path):
    import sys

    local = _cluster(tmp_path)
    local.paths.logs.mkdir(parents=True)
    log_file = local.paths.log("kubelet")
    log_file.write_text("I1121 kubelet log\n")
    reader = supervisor.start(
        "reader",
        [sys.executable, "-c", "import time; time.sleep(30)", str(log_file)],
        log_path=tmp_path / "reader.log",
        pid_path=tmp_path / "reader.pid",
    )
    try:
        local.down(lambda _line: None)
        assert supervisor.is_alive(reader)
        assert not local.paths.root.exists()
    finally:
        supervisor.stop(reader, timeout=1)


def _with_kubelet(tmp_path: Path) -> tuple[LocalCluster, supervisor.ProcessRecord]:
    local = _cluster(tmp_path)
    state = _state(local)
    local.paths.root.mkdir(parents=True)
    kubelet = supervisor.start(
        "kubelet",
        [SH, "-c", f"exec {SLEEP} 30; : {local.paths.root}"],
        log_path=local.paths.log("kubelet"),
        pid_path=local.paths.pid_file("kubelet"),
    )
    state.processes["kubelet"] = kubelet
    local.paths.state_file.write_text(json.dumps(state.to_json()))
    return local, kubelet


def test_restart_kubelet_starts_the_same_command_and_waits_for_its_lease_renewal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    from datetime import UTC, datetime, timedelta

    local, old = _with_kubelet(tmp_path)
    beats = iter([None, datetime(2000, 1, 1, tzinfo=UTC)])  # nothing yet, then a stale one
    monkeypatch.setattr(local._api, "node_lease_renewed", lambda state: next(
        beats, datetime.now(UTC) + timedelta(seconds=2)))
    try:
        restart = local.restart_kubelet(timeout=10)
        assert not supervisor.is_alive(old)
        new = local.read_state().processes["kubelet"]  # type: ignore[union-attr]
        assert new.pid != old.pid and new.argv == old.argv and supervisor.is_alive(new)
        assert restart.stopped <= restart.started <= restart.reporting
    finally:
        local.down(lambda line: None)


def test_restart_kubelet_names_a_kubelet_that_never_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    local, _ = _with_kubelet(tmp_path)
    monkeypatch.setattr(local._api, "node_lease_renewed", lambda state: None)
    try:
        with pytest.raises(ClusterError, match=r"kubelet.*renew its Lease after the restart"):
            local.restart_kubelet(timeout=0.5)
    finally:
        local.down(lambda line: None)
