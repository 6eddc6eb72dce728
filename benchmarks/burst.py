"""How long the target app takes to answer when many pods start at once, as when the suite starts.

A live test times its probes from the container's start, but the app answers only once its
interpreter has started and bound its port; probes that come in between fail ("connection
refused") and count towards ``failureThreshold``. When the suite starts, some 40 pods start at
once beside the test run's own processes, on 2 cores. This script starts ``--pods`` pods of the
target image at once on the local cluster (brought up if needed), optionally beside ``--hogs``
processes that keep a core busy at niceness 0 for at most ``--seconds`` (standing in for the
test run's xdist workers), and prints, over the pods:

* create -> serving: from the create call to the app's "listening" log line;
* started -> serving: from the container's ``startedAt`` (whole seconds) to that line.

Usage::

    python benchmarks/burst.py [--pods 40] [--hogs 8] [--seconds 60] [--cluster-name probes]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def pod_body(name: str, image: str) -> dict[str, Any]:
    """A pod of the target app, without probes."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Never"}],
        },
    }


def summary(values: list[float]) -> str:
    """Median, 90th percentile and maximum, in seconds."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s, max {ordered[-1]:.2f} s"


def wait_gone(core: Any, namespace: str, timeout: float) -> None:
    """Wait until the namespace is deleted, so that a next run starts on a quiet node."""
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(0.5)
    print(f"burst: namespace {namespace} still there after {timeout:g} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the burst once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=40)
    parser.add_argument("--hogs", type=int, default=0, help="busy processes at niceness 0")
    parser.add_argument("--seconds", type=float, default=60.0, help="the hogs' time limit")
    parser.add_argument("--cluster-name", default="probes")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from kubernetes import client

    from pytest_probes.cluster import ClusterConfig, default_cache_dir
    from pytest_probes.errors import ProbesError
    from pytest_probes.faults import wait_serving
    from pytest_probes.namespaces import create_namespace, delete_namespace, namespace_name
    from pytest_probes.providers.local import LocalProvider

    def progress(line: str) -> None:
        print(f"burst: {line}", flush=True)

    local = LocalProvider()
    try:
        cluster = local.up(ClusterConfig(name=args.cluster_name, cache_dir=default_cache_dir()),
                           progress)
        image = local.ensure_target_image(cluster, progress)
    except ProbesError as error:
        print(f"burst: error: {error}", file=sys.stderr)
        return 1
    api = cluster.api_client()
    core: Any = client.CoreV1Api(api)
    namespace = namespace_name("bench-burst")
    create_namespace(api, namespace, run_id="bench-burst")
    hogs = [subprocess.Popen([sys.executable, "-c", HOG.format(seconds=args.seconds)])
            for _ in range(args.hogs)]
    created: dict[str, datetime] = {}
    serving: dict[str, datetime] = {}
    errors: list[str] = []

    def start_and_wait(name: str) -> None:
        try:
            created[name] = datetime.now(UTC)
            core.create_namespaced_pod(namespace, pod_body(name, image))
            serving[name] = wait_serving(api, namespace, name, timeout=args.timeout)
        except Exception as error:  # reported below, the run goes on
            errors.append(f"{name}: {error}")

    try:
        progress(f"starting {args.pods} pods at once beside {args.hogs} busy processes")
        threads = [threading.Thread(target=start_and_wait, args=(f"app-{i}",))
                   for i in range(args.pods)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        started = {
            pod.metadata.name: pod.status.container_statuses[0].state.running.started_at
            for pod in core.list_namespaced_pod(namespace).items
            if pod.status.container_statuses and pod.status.container_statuses[0].state.running
        }
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        delete_namespace(api, namespace)
        wait_gone(core, namespace, args.timeout)
    for error in errors:
        print(f"burst: {error}")
    names = sorted(serving)
    if not names:
        return 1
    total = [(serving[n] - created[n]).total_seconds() for n in names]
    lag = [(serving[n] - started[n]).total_seconds() for n in names if n in started]
    print(f"pods serving: {len(names)}/{args.pods}; busy processes: {args.hogs}")
    print(f"create -> serving:  {summary(total)}")
    print(f"started -> serving: {summary(lag)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
