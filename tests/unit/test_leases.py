"""Leases: the creator's end spares a cluster in use; the last user takes it down after it.

Real ``flock`` locks on files: two :class:`Lease` objects are two open files, which the kernel
locks against each other as it would two processes. The cluster itself is a callback here; the
integration test ``test_leases_two_runs.py`` runs it with two pytest processes and a real cluster.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from pytest_probes.errors import ClusterError
from pytest_probes.leases import Lease
from pytest_probes.namespaces import owner

A_LIVE = owner()
B_LIVE = "b-host:1:1:boot:pid:[1]"  # not ours to judge, so never "gone"


def _gone() -> str:
    """An owner record of a process that has ended (this pid, another start time)."""
    host, pid, _ticks, rest = A_LIVE.split(":", 3)
    return ":".join([host, pid, "1", rest])


class Downs:
    def __init__(self) -> None:
        self.calls = 0
        self.lines: list[str] = []

    def down(self) -> None:
        self.calls += 1


def test_the_creator_takes_down_its_cluster_when_nobody_else_uses_it(tmp_path: Path) -> None:
    seen = Downs()
    a = Lease(tmp_path, "local", "probes")
    a.acquire(seen.lines.append)
    a.mark_created(A_LIVE)
    assert a.finish(A_LIVE, seen.down, seen.lines.append)
    assert seen.calls == 1 and a.creator() is None


def test_the_creator_ending_first_leaves_the_cluster_and_the_last_user_takes_it_down(
    tmp_path: Path,
) -> None:
    seen = Downs()
    a, b = Lease(tmp_path, "local", "probes"), Lease(tmp_path, "local", "probes")
    a.acquire(seen.lines.append)
    a.mark_created(_gone())  # A's record, as it will read once A's process has ended
    b.acquire(seen.lines.append)
    assert not a.finish(_gone(), seen.down, seen.lines.append)
    assert seen.calls == 0
    assert "another run is still using it" in seen.lines[-1]
    assert b.finish(B_LIVE, seen.down, seen.lines.append)
    assert seen.calls == 1
    assert "this run was the last to use it" in seen.lines[-1]


def test_a_user_does_not_take_down_a_cluster_whose_creator_still_runs(tmp_path: Path) -> None:
    seen = Downs()
    a, b = Lease(tmp_path, "kind", "probes"), Lease(tmp_path, "kind", "probes")
    a.acquire(seen.lines.append)
    a.mark_created(A_LIVE)
    b.acquire(seen.lines.append)
    assert not b.finish(B_LIVE, seen.down, seen.lines.append)
    assert seen.calls == 0 and a.creator() == A_LIVE
    assert a.finish(A_LIVE, seen.down, seen.lines.append)
    assert seen.calls == 1


def test_a_kept_cluster_and_one_nobody_we_know_created_stay(tmp_path: Path) -> None:
    seen = Downs()
    a = Lease(tmp_path, "local", "probes")
    a.mark_created(_gone())
    a.mark_created(None)  # re-created with --probes-keep-cluster: the old record goes
    a.acquire(seen.lines.append)
    assert not a.finish(A_LIVE, seen.down, seen.lines.append)
    b = Lease(tmp_path, "local", "other")
    assert not b.finish(A_LIVE, seen.down, seen.lines.append)
    assert seen.calls == 0


def test_leases_of_other_clusters_and_providers_do_not_count(tmp_path: Path) -> None:
    seen = Downs()
    ours = Lease(tmp_path, "local", "probes")
    others = [Lease(tmp_path, "local", "probes-2"), Lease(tmp_path, "kind", "probes")]
    for other in others:
        other.acquire(seen.lines.append)
    ours.acquire(seen.lines.append)
    ours.mark_created(A_LIVE)
    assert ours.finish(A_LIVE, seen.down, seen.lines.append)


def test_a_run_waits_for_another_runs_teardown_and_says_so(tmp_path: Path) -> None:
    seen = Downs()
    lease = Lease(tmp_path, "local", "probes")
    lease.path.parent.mkdir(parents=True)
    with open(lease.path, "a+") as teardown:
        fcntl.flock(teardown, fcntl.LOCK_EX)
        with pytest.raises(ClusterError, match=r"taking down the local cluster probes for over"):
            lease.acquire(seen.lines.append, timeout=0.5)
    assert not lease.held
    assert "waiting for another run to finish taking down" in seen.lines[0]
    lease.acquire(seen.lines.append, timeout=0.5)  # the teardown is over
    assert lease.held
    lease.release()
    assert not lease.held


def test_the_lease_directory_and_a_new_cache_directory_are_private(tmp_path: Path) -> None:
    import stat

    cache = tmp_path / "fresh" / "pytest-probes"
    lease = Lease(cache, "local", "probes")
    lease.acquire(lambda line: None)
    lease.release()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(lease.path.parent.stat().st_mode) == 0o700


def test_an_unsafe_cache_directory_is_refused_before_any_lease(tmp_path: Path) -> None:
    cache = tmp_path / "open"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    with pytest.raises(ClusterError, match="chmod go-w"):
        Lease(cache, "local", "probes").acquire(lambda line: None)
    assert not (cache / "leases").exists()
