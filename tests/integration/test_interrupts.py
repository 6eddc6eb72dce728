"""Ctrl-C, SIGTERM and pytest-timeout in the middle of a live test leak nothing.

An inner pytest run (a subprocess in its own session, like a command typed into a terminal)
deploys a pod, notes its namespace, and sleeps; it is then interrupted — SIGINT to its process
group, as Ctrl-C sends; SIGTERM to its process group, as a CI system cancelling a job sends, or to
the live runner (``scripts/live``) alone; or pytest-timeout's ``--timeout`` firing (signal
method). Afterwards the
test namespace is gone, the cluster follows the keep policy (a cluster the run reused, or kept with
``--probes-keep-cluster``, still runs; one it created otherwise is deleted without a trace), and no
process the run started is left, not even as a zombie.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from pytest_probes.namespaces import leftover_namespaces
from pytest_probes.providers.local import supervisor
from pytest_probes.providers.local.leftovers import footprint, leftovers
from pytest_probes.providers.local.lifecycle import LocalCluster

# Not marked probes: these start clusters of their own and would disturb the timing of the
# scenarios that run concurrently under `pytest -m probes`; they run in the integration phase.

CACHE_DIR = default_cache_dir()  # read before anything changes HOME
REPO = Path(__file__).resolve().parents[2]

INNER = '''
import os, time, pytest

@pytest.mark.probes
def test_sleeps_with_a_pod_running(probes_deploy, probes_namespace, request):
    from pytest_probes._stash import STATE_KEY
    probes_deploy({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                   "spec": {"terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "app", "image": "probes-target"}]}},
                  wait="running")
    with open(os.environ["INNER_MARK"], "w") as handle:
        handle.write(f"{probes_namespace} {request.config.stash[STATE_KEY].run_id}")
    time.sleep(300)
'''


def _descendants(pid: int) -> list[supervisor.ProcessRecord]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        ticks = supervisor.start_ticks(child)
        if ticks is not None:
            found.append(supervisor.ProcessRecord("child", child, ticks, (), Path("/dev/null")))
        todo += children.get(child, [])
    return found


def _run_and_interrupt(
    tmp_path: Path, cluster_name: str, how: str, *extra: str, runner: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run the inner test, interrupt it once its pod runs; return what was seen."""
    (tmp_path / "test_inner.py").write_text(INNER)
    mark = tmp_path / "namespace"
    env = {**os.environ, "INNER_MARK": str(mark),
           "PROBES_QUIET_WAIT": "0",
           "XDG_CACHE_HOME": str(CACHE_DIR.parent),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    argv = [*runner, sys.executable, "-m", "pytest", "test_inner.py", "-m", "probes", "-p",
            "no:cacheprovider", "--probes-cluster-name", cluster_name, *extra]
    if how == "timeout":
        argv += ["-p", "timeout", "--timeout", "20", "--timeout-method", "signal"]
    log = (tmp_path / "inner.log").open("w")
    # SIGINT as a terminal leaves it: a run started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    inner = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not mark.exists() or not mark.read_text():
            assert inner.poll() is None, (tmp_path / "inner.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the inner test did not get its pod running"
            time.sleep(0.2)
        children = _descendants(inner.pid)
        interrupted = time.monotonic()
        if how == "sigint":
            os.killpg(inner.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        elif how == "sigterm":
            os.killpg(inner.pid, signal.SIGTERM)  # what a CI system cancelling a job does
        elif how == "sigterm-runner":
            os.kill(inner.pid, signal.SIGTERM)  # to the runner alone: it passes it on
        code = inner.wait(timeout=120)
        took = time.monotonic() - interrupted
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.wait()
        log.close()
    output = (tmp_path / "inner.log").read_text()
    print(f"{how}: inner pytest exited {code} {took:.1f} s after its pod ran and "
          f"{'the timeout ran' if how == 'timeout' else how + ' was sent'}")
    left = supervisor.wait_vanished(children, timeout=15.0)
    namespace, run_id = mark.read_text().split()
    return {"code": code, "namespace": namespace, "run_id": run_id, "output": output,
            "children": children, "left": left, "took": took}


@pytest.mark.parametrize("how", ["sigint", "sigterm", "timeout"])
def test_an_interrupted_run_on_a_reused_cluster_deletes_its_namespace_and_keeps_the_cluster(
    probes_cluster: Cluster, tmp_path: Path, how: str
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    seen = _run_and_interrupt(tmp_path, probes_cluster.name, how)
    if how in ("sigint", "sigterm"):
        assert seen["code"] == 2 and "KeyboardInterrupt" in seen["output"], seen["output"]
    else:
        assert seen["code"] == 1 and "Timeout" in seen["output"], seen["output"]
    assert "Traceback (most recent call last)" not in seen["output"], seen["output"]
    assert seen["left"] == [], seen["left"]
    api = probes_cluster.api_client()
    core = client.CoreV1Api(api)
    try:
        phase = core.read_namespace(seen["namespace"]).status.phase
    except ApiException as err:
        assert err.status == 404
        phase = "gone"
    assert phase in ("gone", "Terminating"), phase
    assert leftover_namespaces(api, run_id=seen["run_id"]) == []
    if probes_cluster.provider == "local":
        assert LocalCluster(probes_cluster.name, CACHE_DIR).status().running


@pytest.mark.parametrize(("how", "keep"), [("sigint", False), ("sigint", True),
                                           ("sigterm-runner", False)])
def test_an_interrupted_run_deletes_the_cluster_it_created_unless_told_to_keep_it(
    probes_cluster: Cluster, tmp_path: Path, how: str, keep: bool
) -> None:
    if probes_cluster.provider != "local":
        pytest.fail("this test creates a second local cluster; run it with "
                    "--probes-provider local")
    # One cluster per parametrisation: under xdist both run at once.
    suffix = ("keep" if keep else "del") + ("-live" if how != "sigint" else "")
    name = f"{probes_cluster.name}-int-{suffix}"[:40]
    local = LocalCluster(name, CACHE_DIR)
    local.down(lambda line: None)
    try:
        extra = ("--probes-keep-cluster",) if keep else ()
        # The SIGTERM case runs under the live runner, which passes the signal on to pytest.
        runner = (sys.executable, str(REPO / "scripts" / "live")) if how != "sigint" else ()
        seen = _run_and_interrupt(tmp_path, name, how, *extra, runner=runner)
        assert seen["code"] == 2, seen["output"]
        status = local.status()
        if keep:
            assert status.running, seen["output"]
            # The kept cluster's components are the only processes of the run still there.
            kept = {r.pid for r in local.read_state().processes.values()}  # type: ignore[union-attr]
            assert {r.pid for r in seen["left"]} <= kept
            kept_cluster = Cluster(name=name, provider="local",
                                   kubeconfig=local.paths.kubeconfig, k8s_version="",
                                   created=False)
            assert leftover_namespaces(kept_cluster.api_client(), run_id=seen["run_id"]) == []
        else:
            assert not status.exists, seen["output"]
            assert seen["left"] == [], seen["left"]
    finally:
        fp = footprint(local)
        local.down(lambda line: None)
    assert leftovers(fp) == []


def test_namespaces_of_a_run_killed_outright_are_deleted_by_the_next_run(
    probes_cluster: Cluster,
) -> None:
    from pytest_probes.namespaces import create_namespace, delete_orphaned_namespaces

    # A run killed with SIGKILL cannot clean up: here, a process that creates one and exits.
    code = (
        "import sys\nfrom pytest_probes.cluster import Cluster\n"
        "from pytest_probes.namespaces import create_namespace\n"
        f"api = Cluster(name='x', provider='local', kubeconfig={str(probes_cluster.kubeconfig)!r},"
        " k8s_version='', created=False).api_client()\n"
        "create_namespace(api, sys.argv[1], run_id='killed')\n"
    )
    dead = f"probes-killed-run-{secrets.token_hex(3)}"
    subprocess.run([sys.executable, "-c", code, dead], check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    api = probes_cluster.api_client()
    alive = f"probes-live-run-{secrets.token_hex(3)}"
    create_namespace(api, alive, run_id="alive")
    try:
        deleted = delete_orphaned_namespaces(api)
        assert dead in deleted and alive not in deleted
        assert dead not in leftover_namespaces(api, run_id="killed")
        assert alive in leftover_namespaces(api, run_id="alive")
    finally:
        from pytest_probes.namespaces import delete_namespace

        delete_namespace(api, alive)
