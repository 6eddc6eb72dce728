"""Two pytest runs share a cluster: the one that created it ends first and leaves it running for
the other, whose end takes it down (:mod:`pytest_probes.leases`).

Run A creates a local cluster of its own and holds its test until run B (under pytest-xdist, so
the controller's path is the one taken) has reused the cluster; A then ends. B waits for A's
process to be gone, deploys a pod on the cluster and waits for it to run, and ends. Afterwards the
cluster is gone and nothing of it is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from pytest_probes.providers.local.leftovers import footprint, leftovers
from pytest_probes.providers.local.lifecycle import LocalCluster

# Not marked probes: it starts a cluster of its own (see test_interrupts.py).

CACHE_DIR = default_cache_dir()
REPO = Path(__file__).resolve().parents[2]

INNER = '''
import os, time
from pathlib import Path
import pytest

def wait_for(path, seconds=300):
    deadline = time.monotonic() + seconds
    while not Path(path).exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.2)

def run_a_pod(probes_deploy):
    probes_deploy({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                   "spec": {"terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "app", "image": "probes-target"}]}},
                  wait="running")

@pytest.mark.probes
def test_a_creates(probes_cluster, probes_deploy):
    assert probes_cluster.created
    run_a_pod(probes_deploy)
    Path(os.environ["A_READY"]).touch()
    wait_for(os.environ["B_STARTED"])

@pytest.mark.probes
def test_b_reuses(probes_cluster, probes_deploy):
    assert not probes_cluster.created
    Path(os.environ["B_STARTED"]).touch()
    wait_for(os.environ["A_DONE"])
    run_a_pod(probes_deploy)  # the cluster A created still serves B after A's end
'''


def _start(tmp_path: Path, which: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XDG_CACHE_HOME": str(CACHE_DIR.parent),
           "A_READY": str(tmp_path / "a-ready"), "B_STARTED": str(tmp_path / "b-started"),
           "A_DONE": str(tmp_path / "a-done"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "pytest", f"test_inner.py::test_{which}", "-m", "probes",
            "-p", "no:cacheprovider", "--probes-cluster-name", name, "-s", *extra]
    log = (tmp_path / f"{which}.log").open("w")
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_file(path: Path, runs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        for run, log in zip(runs, logs, strict=True):
            assert run.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.2)


def test_the_creator_ending_first_leaves_the_cluster_to_the_run_still_using_it(
    probes_cluster: Cluster, tmp_path: Path
) -> None:
    name = f"{probes_cluster.name}-lease"[:40]
    local = LocalCluster(name, CACHE_DIR)
    local.down(lambda line: None)
    (tmp_path / "test_inner.py").write_text(INNER)
    a_log, b_log = tmp_path / "a_creates.log", tmp_path / "b_reuses.log"
    a = _start(tmp_path, "a_creates", name)
    b = None
    try:
        _wait_file(tmp_path / "a-ready", [a], [a_log])
        b = _start(tmp_path, "b_reuses", name, "-n", "1")
        _wait_file(tmp_path / "b-started", [a, b], [a_log, b_log])
        assert a.wait(timeout=120) == 0, a_log.read_text()[-3000:]
        assert local.status().running, a_log.read_text()[-3000:]
        assert "another run is still using it" in a_log.read_text(), a_log.read_text()[-3000:]
        fp = footprint(local)
        (tmp_path / "a-done").touch()
        assert b.wait(timeout=300) == 0, b_log.read_text()[-3000:]
        assert "1 passed" in b_log.read_text(), b_log.read_text()[-3000:]
        assert "this run was the last to use it" in b_log.read_text(), b_log.read_text()[-3000:]
        assert not local.status().exists, b_log.read_text()[-3000:]
        assert leftovers(fp) == []
    finally:
        for run in (a, b):
            if run is not None and run.poll() is None:
                run.kill()
                run.wait()
        local.down(lambda line: None)
