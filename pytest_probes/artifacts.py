"""What a failed test leaves behind for a person to read: pod objects and container logs.

The plugin calls :func:`collect_namespace` for a failed test when ``--probes-artifacts-dir`` is
given, next to the timeline it saves; it works without pytest too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def collect_namespace(api_client: Any, namespace: str, folder: Path) -> list[Path]:
    """Write the namespace's pods (``pods.json``) and every container's current and previous log.

    Logs go to ``logs/<pod>.<container>.log`` and ``logs/<pod>.<container>.previous.log``; a log
    the kubelet no longer has is skipped. Nothing here raises: a failure to collect is logged and
    the rest is still written, since this runs while a test is already failing.

    Returns:
        The files written.
    """
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    written: list[Path] = []
    folder.mkdir(parents=True, exist_ok=True)
    try:
        pods = core.list_namespaced_pod(namespace, _preload_content=False)
        payload = json.loads(pods.data)
    except Exception as err:  # best effort while a test is failing
        log.warning("cannot list pods of %s for artifacts: %s", namespace, err)
        return written
    target = folder / "pods.json"
    target.write_text(json.dumps(payload.get("items", []), indent=2, sort_keys=True))
    written.append(target)
    logs = folder / "logs"
    for pod in payload.get("items", []):
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
        for container in containers:
            for previous in (False, True):
                try:
                    text = core.read_namespaced_pod_log(
                        name, namespace, container=container, previous=previous,
                        _request_timeout=10,
                    )
                except Exception as err:  # e.g. no previous instance
                    log.debug("no %slog for %s/%s: %s", "previous " if previous else "", name,
                              container, err)
                    continue
                logs.mkdir(exist_ok=True)
                suffix = ".previous.log" if previous else ".log"
                path = logs / f"{name}.{container}{suffix}"
                path.write_text(str(text))
                written.append(path)
    return written
