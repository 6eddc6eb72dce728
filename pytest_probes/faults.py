"""Fault injection: flip the target app's health at a chosen moment, on any cluster.

The target app (:mod:`pytest_probes.target`) reads flag files in its ``FLAG_DIR`` (``/tmp/probes``
by default): ``fail-liveness``, ``fail-readiness``, ``fail-startup``, ``hang-liveness``,
``hang-readiness``. These helpers create or remove them with ``kubectl exec``'s API (the pod's exec
subresource), and return the moment the change was made, which tests use as the reference moment
for their timing windows.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pytest_probes.errors import ProbesError

log = logging.getLogger(__name__)

FLAGS = ("fail-liveness", "fail-readiness", "fail-startup", "hang-liveness", "hang-readiness")
DEFAULT_FLAG_DIR = "/tmp/probes"


def exec_in_pod(
    api_client: Any,
    namespace: str,
    pod: str,
    command: Sequence[str],
    *,
    container: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Run a command in a pod's container and return its output.

    Raises:
        ProbesError: The exec could not start, or the command failed (its output is included).
    """
    from kubernetes import client
    from kubernetes.stream import stream

    core = client.CoreV1Api(api_client)
    kwargs: dict[str, Any] = {
        "command": list(command),
        "stderr": True,
        "stdin": False,
        "stdout": True,
        "tty": False,
        "_preload_content": False,
        "_request_timeout": timeout,
    }
    if container is not None:
        kwargs["container"] = container
    where = f"pod {namespace}/{pod}" + (f" container {container}" if container else "")
    try:
        resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
    except Exception as err:
        raise ProbesError(f"cannot exec {shlex.join(command)} in {where}: {err}") from err
    try:
        resp.run_forever(timeout=timeout)
        output = (resp.read_stdout() or "") + (resp.read_stderr() or "")
        code = resp.returncode
    finally:
        resp.close()
    if code not in (0, None):
        raise ProbesError(
            f"`{shlex.join(command)}` in {where} exited {code}: {output.strip()[-500:]}"
        )
    return str(output)


def set_flag(
    api_client: Any,
    namespace: str,
    pod: str,
    flag: str,
    *,
    present: bool = True,
    container: str | None = None,
    flag_dir: str = DEFAULT_FLAG_DIR,
) -> datetime:
    """Create (or with ``present=False`` remove) one of the target app's flag files.

    Returns:
        The UTC time just before the exec was issued: the fault is in place from then on, at the
        latest when this function returns.

    Raises:
        ValueError: ``flag`` is not one of :data:`FLAGS`.
        ProbesError: The exec failed.
    """
    if flag not in FLAGS:
        raise ValueError(f"unknown flag {flag!r}; choose one of {', '.join(FLAGS)}")
    path = f"{flag_dir.rstrip('/')}/{flag}"
    script = f"mkdir -p {shlex.quote(flag_dir)} && touch {shlex.quote(path)}" if present else \
        f"rm -f {shlex.quote(path)}"
    moment = datetime.now(UTC)
    exec_in_pod(api_client, namespace, pod, ["sh", "-c", script], container=container)
    log.info("%s %s in %s/%s", "set" if present else "cleared", flag, namespace, pod)
    return moment
