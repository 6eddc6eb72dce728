"""``pytest-probes record`` on a real cluster, then ``chart`` and the helpers on what it wrote.

A pod whose liveness probe fails from its start is deployed into a namespace of the shared cluster
while ``record`` runs as a user would run it (a separate process, the cluster's kubeconfig); once
the pod has restarted, SIGTERM ends the recording early. The recording replays into a timeline on
which ``assert_restarts_within`` passes with the window from the probe spec, and ``chart`` draws it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from pytest_probes import Cluster, ContainerTiming, assert_restarts_within
from pytest_probes.deploy import Deployer
from pytest_probes.importers import replay_raw
from pytest_probes.namespaces import create_namespace, delete_namespace, namespace_name

# Not marked probes: a plain integration test on the shared cluster.

REPO = Path(__file__).resolve().parents[2]

POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "failing"},
    "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "app", "image": "probes-target",
        "livenessProbe": {"httpGet": {"path": "/no-such-path", "port": 8080},
                          "periodSeconds": 2, "failureThreshold": 1}}]},
}


def test_record_writes_a_recording_the_helpers_and_chart_read(
    probes_cluster: Cluster, probes_target_image: str, tmp_path: Path
) -> None:
    out = tmp_path / "run.jsonl"
    with probes_cluster.api_client() as api:
        namespace = namespace_name("record-cli")
        create_namespace(api, namespace, run_id="record-cli")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        recording = subprocess.Popen(
            [sys.executable, "-m", "pytest_probes", "record", "--kubeconfig",
             str(probes_cluster.kubeconfig), "-n", namespace, "-o", str(out), "--for", "10m"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deploy = Deployer(api, namespace, target_image=probes_target_image)
        try:
            deploy(POD, wait="running")
            core = client.CoreV1Api(api)
            deadline = time.monotonic() + 120
            while not core.read_namespaced_pod("failing", namespace).status.container_statuses[
                    0].restart_count:
                assert recording.poll() is None, recording.communicate()[0]
                assert time.monotonic() < deadline, "the pod did not restart within 120 s"
                time.sleep(1)
            time.sleep(3)  # the restart reaches the watch
            recording.send_signal(signal.SIGTERM)
            output, _ = recording.communicate(timeout=30)
        finally:
            if recording.poll() is None:
                recording.kill()
            deploy.close()
            delete_namespace(api, namespace)
    assert recording.returncode == 0, output
    assert f"recording namespace {namespace} into {out}" in output
    assert "recorded " in output and "0 watch gaps" in output, output
    timeline = replay_raw(out)
    started = timeline.first(pod="failing", kind="ContainerStarted")
    assert started is not None, timeline.to_markdown()
    timing = ContainerTiming.from_pod_spec(POD)
    window = timing.restart_schedule(
        1, fail_from=0.0, kill_duration=timing.kill_duration(exits_on_sigterm_after=0.0))[0]
    assert_restarts_within(timeline, "failing", restarts=1, since=started, within=window)
    svg = tmp_path / "run.svg"
    chart = subprocess.run([sys.executable, "-m", "pytest_probes", "chart", str(out), "-o",
                            str(svg)], env=env, capture_output=True, text=True, check=False)
    assert chart.returncode == 0, chart.stderr
    assert svg.read_text().count("<svg") == 1 and "failing" in svg.read_text()
