"""Record a raw watch stream from a real cluster, for the reducer's unit tests.

Usage: python tests/data/streams/record.py KUBECONFIG TARGET_IMAGE OUT.jsonl

Deploys two replicas of the target app with liveness and readiness probes under a Service,
injects a liveness failure into one pod, and records every raw watch event of the namespace
(Events, Pods, EndpointSlices) until the pod has restarted and is back in the endpoints.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kubernetes import config

from pytest_probes import Recorder
from pytest_probes.deploy import Deployer
from pytest_probes.faults import set_flag
from pytest_probes.namespaces import create_namespace, delete_namespace, namespace_name

MANIFEST = Path(__file__).resolve().parents[2] / "live" / "test_liveness_restart.py"


def main(kubeconfig: str, image: str, out: str) -> None:
    manifest = MANIFEST.read_text().split('MANIFEST = """', 1)[1].split('"""', 1)[0]
    api = config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    ns = namespace_name("stream")
    create_namespace(api, ns, run_id="record")
    Path(out).unlink(missing_ok=True)
    recorder = Recorder(api, ns, raw_path=Path(out))
    tl = recorder.start()
    try:
        deployer = Deployer(api, ns, target_image=image)
        objects = deployer.apply(manifest, wait="ready")
        victim = sorted(p["metadata"]["name"] for p in deployer.pods(objects))[0]
        set_flag(api, ns, victim, "fail-liveness")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if tl.query(pod=victim, kind="ContainerRestarted") and \
                    tl.query(pod=victim, kind="EndpointAdded")[1:]:
                break
            time.sleep(0.5)
        time.sleep(2)
    finally:
        recorder.stop()
        delete_namespace(api, ns)
    print(tl.to_markdown())


if __name__ == "__main__":
    main(*sys.argv[1:4])
