"""The session's clusters by configuration (pytest_probes._pool), with a provider that records."""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from pytest_probes import _pool
from pytest_probes._pool import ClusterPool, finish_workers_clusters, take_down_orphans
from pytest_probes._setup import ControllerCluster, adopted_cluster, ready_info
from pytest_probes.cluster import Cluster, ClusterConfig
from pytest_probes.cluster_settings import ClusterRequest, ClusterSettings
from pytest_probes.errors import UnsupportedSettings
from pytest_probes.leases import Lease
from pytest_probes.namespaces import owner

CAPPED = ClusterSettings.of(kubelet_config={"crashLoopBackOff": {
    "maxContainerRestartPeriod": "10s"}})


class Recording:
    """A provider that brings up nothing and remembers what it was asked for."""

    name = "local"

    def __init__(self, version: str = "v1.37.2", refuse: str | None = None) -> None:
        self.ups: list[ClusterConfig] = []
        self.downs: list[str] = []
        self.version = version
        self.refuse = refuse

    def up(self, config: ClusterConfig, progress: object = None) -> Cluster:
        if self.refuse and config.settings.feature_gates:
            raise UnsupportedSettings(self.refuse)
        self.ups.append(config)
        return Cluster(name=config.name, provider="local", kubeconfig=Path("/nonexistent"),
                       k8s_version=self.version, created=True, settings=config.settings)

    def ensure_target_image(self, cluster: Cluster, progress: object = None) -> str:
        return f"image-of-{cluster.name}"

    def down(self, cluster: Cluster, progress: object = None) -> None:
        self.downs.append(cluster.name)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Recording:
    recording = Recording()
    monkeypatch.setattr(_pool, "get_provider", lambda name: recording)
    return recording


def pool(tmp_path: Path, *, worker: bool = False, version: str | None = None) -> ClusterPool:
    config = ClusterConfig(name="probes", k8s_version=version, cache_dir=tmp_path / "cache")
    return ClusterPool("local", config, run_id="run1", owner="me", worker=worker,
                       progress=lambda line: None)


def test_one_cluster_per_configuration_each_brought_up_once(
        tmp_path: Path, provider: Recording) -> None:
    clusters = pool(tmp_path)
    shared = clusters.default()
    capped = clusters.cluster(CAPPED)
    assert clusters.cluster(ClusterSettings.of(kubelet_config={"crashLoopBackOff": {
        "maxContainerRestartPeriod": "10s"}})) is capped
    assert clusters.default() is shared
    assert [c.name for c in provider.ups] == ["probes", f"probes-{CAPPED.digest}"]
    assert provider.ups[1].settings == CAPPED and provider.ups[0].settings.is_default
    assert clusters.image(capped) == f"image-of-probes-{CAPPED.digest}"
    assert set(clusters.durations) == {"probes", f"probes-{CAPPED.digest}"}


def test_the_run_takes_down_every_cluster_it_created(tmp_path: Path, provider: Recording) -> None:
    clusters = pool(tmp_path)
    clusters.default()
    clusters.cluster(CAPPED)
    clusters.close()
    assert provider.downs == ["probes", f"probes-{CAPPED.digest}"]


def test_a_configured_cluster_another_run_uses_stays(tmp_path: Path, provider: Recording) -> None:
    clusters = pool(tmp_path)
    clusters.cluster(CAPPED)
    other = Lease(tmp_path / "cache", "local", f"probes-{CAPPED.digest}")
    other.acquire(lambda line: None)
    clusters.close()
    assert provider.downs == []
    other.release()


def test_under_xdist_the_controller_takes_down_the_workers_clusters(
        tmp_path: Path, provider: Recording) -> None:
    worker = pool(tmp_path, worker=True)
    worker.default()
    worker.cluster(CAPPED)
    worker.close()
    assert provider.downs == []  # a worker only lets go
    notes = sorted(p.name for p in (tmp_path / "cache" / "runs").iterdir())
    assert notes == [f"run1.cluster-probes-{CAPPED.digest}.json", "run1.cluster-probes.json"]
    note = json.loads((tmp_path / "cache" / "runs" / notes[0]).read_text())
    assert ClusterSettings.from_json(note["settings"]) == CAPPED
    finish_workers_clusters(tmp_path / "cache", "run1", me="me", progress=lambda line: None)
    assert sorted(provider.downs) == sorted(["probes", f"probes-{CAPPED.digest}"])


def test_the_workers_clusters_go_down_side_by_side_after_the_controllers_lease(
        tmp_path: Path, provider: Recording) -> None:
    worker = pool(tmp_path, worker=True)
    worker.default()
    worker.cluster(CAPPED)
    worker.close()
    both_down = threading.Barrier(2, timeout=5)  # only met if the two are taken down at once
    controller_done: Future[None] = Future()
    order: list[str] = []

    def down(cluster: Cluster, progress: object = None) -> None:
        order.append(f"start {cluster.name}")
        if cluster.name != "probes":
            both_down.wait()
        else:
            both_down.wait()
            assert controller_done.done()  # the note of the controller's cluster waited
        order.append(f"end {cluster.name}")

    provider.down = down  # type: ignore[method-assign]
    threading.Timer(0.2, controller_done.set_result, (None,)).start()
    finish_workers_clusters(tmp_path / "cache", "run1", me="me", progress=lambda line: None,
                            after={"probes": controller_done})
    assert sorted(order) == sorted(["start probes", "end probes",
                                    f"start probes-{CAPPED.digest}", f"end probes-{CAPPED.digest}"])


def test_a_version_too_old_is_known_before_any_cluster_is_made(
        tmp_path: Path, provider: Recording) -> None:
    clusters = pool(tmp_path, version="1.33")
    needs = ClusterRequest(CAPPED, min_version="1.35")
    assert clusters.not_applicable(needs) == "needs Kubernetes ≥ 1.35 (running 1.33.13)"
    assert provider.ups == []
    assert clusters.not_applicable(dataclasses.replace(needs, min_version="1.33")) is None


def test_a_configuration_the_version_refuses_is_refused_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refusing = Recording(refuse="feature gate Foo does not exist in Kubernetes 1.33.13")
    monkeypatch.setattr(_pool, "get_provider", lambda name: refusing)
    clusters = pool(tmp_path)
    gated = ClusterSettings.of({"Foo": True})
    for _ in range(2):
        with pytest.raises(UnsupportedSettings, match="Foo does not exist"):
            clusters.cluster(gated)
    # Its lease is let go: nothing holds the name.
    lease = Lease(tmp_path / "cache", "local", gated.cluster_name("probes"))
    assert lease.finish("someone", lambda: None, lambda line: None) is False


def _gone() -> str:
    """An owner record of a process that has ended (this pid, another start time)."""
    host, pid, ticks, rest = owner().split(":", 3)
    return f"{host}:{pid}:{int(ticks) + 1}:{rest}"


def test_configured_clusters_of_a_killed_run_are_taken_down_by_the_next_run(
        tmp_path: Path, provider: Recording) -> None:
    cache = tmp_path / "cache"
    names = {key: ClusterSettings.of({key: True}).cluster_name("probes") for key in "ABCD"}
    Lease(cache, "local", names["A"]).mark_created(_gone())   # its run was killed
    Lease(cache, "local", names["B"]).mark_created(owner())   # its run is alive (this one)
    Lease(cache, "local", names["C"]).mark_created(None)      # kept
    held = Lease(cache, "local", names["D"])                  # killed creator, but in use
    held.mark_created(_gone())
    held.acquire(lambda line: None)
    Lease(cache, "local", "probes").mark_created(_gone())     # the shared one: not a sweep's
    Lease(cache, "local", "other-a1b2c3").mark_created(_gone())  # another run's cluster name
    gone = take_down_orphans(cache, "local", "probes", me="someone", progress=lambda line: None)
    assert gone == provider.downs == [names["A"]]
    assert take_down_orphans(cache, "existing", "probes", me="x", progress=print) == []
    held.release()


def test_two_processes_never_bring_up_the_same_cluster_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two xdist workers asking for one configured cluster: kind's create of a node container
    # that another create is making fails ("the container name ... is already in use").
    import threading
    import time

    busy = threading.Lock()
    overlaps: list[str] = []

    class Slow(Recording):
        def up(self, config: ClusterConfig, progress: object = None) -> Cluster:
            if not busy.acquire(blocking=False):
                overlaps.append(config.name)
                return super().up(config, progress)
            try:
                time.sleep(0.3)
                return super().up(config, progress)
            finally:
                busy.release()

    slow = Slow()
    monkeypatch.setattr(_pool, "get_provider", lambda name: slow)
    workers = [pool(tmp_path, worker=True) for _ in range(2)]
    threads = [threading.Thread(target=w.cluster, args=(CAPPED,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert overlaps == []
    assert len(slow.ups) == 2  # each brought it up in turn (the second finds it, as a reuse)


def test_a_worker_adopts_the_cluster_its_controller_readied_without_an_up(
        tmp_path: Path, provider: Recording) -> None:
    readied = provider.up(ClusterConfig(name="probes", settings=ClusterSettings()))
    provider.ups.clear()
    lease = Lease(tmp_path / "cache", "local", "probes")
    info = ready_info(ControllerCluster(readied, lease, "localhost/target:1"))
    json.dumps(info)  # it crosses to the worker in its workerinput
    worker = pool(tmp_path, worker=True)
    worker.adopt(*adopted_cluster(info))
    shared = worker.default()
    assert (shared.name, shared.k8s_version, shared.created) == ("probes", "v1.37.2", False)
    assert worker.image(shared) == "localhost/target:1"
    assert provider.ups == []  # no up of its own: the controller's was enough
    worker.close()
    assert provider.downs == []  # the controller decides about the cluster
    assert not (tmp_path / "cache" / "runs").exists()  # and needs no note of it


def test_an_adopted_clusters_image_loader_asks_the_provider_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Path] = []

    class Loading(Recording):
        def up(self, config: ClusterConfig, progress: object = None) -> Cluster:
            cluster = super().up(config, progress)
            return dataclasses.replace(cluster, image_loader=lambda p: loads.append(p) or ["i"])

    loading = Loading()
    monkeypatch.setattr(_pool, "get_provider", lambda name: loading)
    info = ready_info(ControllerCluster(
        Cluster(name="probes", provider="local", kubeconfig=Path("/k"), k8s_version="v1.37.2"),
        Lease(tmp_path / "cache", "local", "probes"), "img"))
    worker = pool(tmp_path, worker=True)
    worker.adopt(*adopted_cluster(info))
    shared = worker.default()
    for archive in ("a.tar", "b.tar"):
        (tmp_path / archive).write_bytes(b"")
    assert shared.load_image(tmp_path / "a.tar") == ["i"]
    assert shared.load_image(tmp_path / "b.tar") == ["i"]
    assert len(loading.ups) == 1 and loads == [tmp_path / "a.tar", tmp_path / "b.tar"]
