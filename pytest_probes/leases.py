"""Leases: a run never takes down a cluster that another run is still using.

Every run holds a *shared* ``flock`` on the cluster's lease file for as long as it uses the
cluster, taken before the provider's ``up`` (so a run that reuses a cluster is counted from the
moment it finds it). Taking the cluster down needs the *exclusive* lock, tried without waiting:
while any other run holds a lease, the cluster stays. The kernel drops a lock with the process
that held it, so a killed run holds nothing and blocks nobody.

Who takes it down: the run that created the cluster (and was not told to keep it) writes its
owner record (:func:`pytest_probes.namespaces.owner`) next to the lease. At its end, every run
lets go of its lease and tries the exclusive lock; the one that gets it takes the cluster down
if the record names itself or a process that is gone. So when the creator ends first, the last
run still using the cluster takes it down after it; a cluster created with
``--probes-keep-cluster``, or by nobody we know, stays.

A run that starts while another takes the cluster down waits for the exclusive holder (a
``down`` takes seconds) and then finds no cluster, and creates one.

``fcntl`` directly, not the filelock package: filelock has no shared locks.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from pytest_probes.cluster import Progress, trusted_cache_dir
from pytest_probes.errors import ClusterError
from pytest_probes.namespaces import owner_gone

WAIT_FOR_TEARDOWN_S = 600.0
"""How long a run waits for another run's ``down`` of the same cluster (a local ``down`` takes
some 10 s, a kind one some 5 s; a holder for longer is stuck)."""


def _stem(cache_dir: Path, provider: str, name: str) -> Path:
    return cache_dir / "leases" / f"{provider}-{name}"


class Lease:
    """This run's shared hold on one cluster (see the module docstring)."""

    def __init__(self, cache_dir: Path, provider: str, name: str) -> None:
        self.cache_dir = cache_dir
        stem = _stem(cache_dir, provider, name)
        self.path = stem.with_suffix(".lease")
        self.owner_path = stem.with_suffix(".owner")
        self.cluster = f"{provider} cluster {name}"
        self._handle: IO[str] | None = None

    def _directory(self) -> None:
        """Make the lease directory 0700 inside a cache directory that is safe to use."""
        trusted_cache_dir(self.cache_dir)  # created 0700 if missing, refused if unsafe
        self.path.parent.mkdir(mode=0o700, exist_ok=True)

    @property
    def held(self) -> bool:
        """Whether this run holds its shared lock now."""
        return self._handle is not None

    def acquire(self, progress: Progress, *, timeout: float = WAIT_FOR_TEARDOWN_S) -> None:
        """Take the shared lock, waiting while another run takes the cluster down.

        Raises:
            ClusterError: The exclusive holder kept the lock for more than ``timeout`` seconds,
                or the cache directory is not safe to use (see :func:`trusted_cache_dir`).
        """
        if self._handle is not None:
            return
        self._directory()
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another run to finish taking down the {self.cluster}")
            try:
                for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.2),
                                        retry=retry_if_exception_type(BlockingIOError),
                                        reraise=True):
                    with attempt:
                        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise ClusterError(
                    f"another run has been taking down the {self.cluster} for over "
                    f"{timeout:.0f} s (lock {self.path}); stop that process or remove the lock"
                ) from None
        self._handle = handle

    def release(self) -> None:
        """Let go of the shared lock (idempotent)."""
        if self._handle is not None:
            self._handle.close()  # closing the last descriptor drops the flock
            self._handle = None

    def mark_created(self, creator: str | None) -> None:
        """Record who created the cluster and takes it down (``None``: it is to be kept)."""
        if creator is None:
            self.owner_path.unlink(missing_ok=True)
            return
        self._directory()
        tmp = self.owner_path.with_suffix(f".owner.{os.getpid()}")
        tmp.write_text(creator + "\n", encoding="utf-8")
        tmp.replace(self.owner_path)

    def creator(self) -> str | None:
        """The creator's owner record, if the cluster is to be taken down by it or after it."""
        try:
            return self.owner_path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def finish(self, me: str, down: Callable[[], None], progress: Progress) -> bool:
        """End this run's use: release, and take the cluster down if this run is the one to.

        Args:
            me: This run's owner record (under xdist, the controller's).
            down: Takes the cluster down (the provider's ``down``).
            progress: Receives what was decided, when it is not the plain case.

        Returns:
            Whether ``down`` was called.
        """
        self.release()
        self._directory()
        with open(self.path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.creator() == me:
                    progress(f"leaving the {self.cluster} running: another run is still using "
                             "it; the last run to finish takes it down")
                return False
            creator = self.creator()
            if creator is None or (creator != me and not owner_gone(creator)):
                return False
            if creator != me:
                progress(f"the run that created the {self.cluster} has ended; this run was the "
                         "last to use it")
            down()
            self.owner_path.unlink(missing_ok=True)
            return True
