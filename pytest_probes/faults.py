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
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pytest_probes.errors import ProbesError, ProbesTimeoutError

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


def wait_serving(
    api_client: Any,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    listener: str = "main",
    timeout: float = 30.0,
) -> datetime:
    """Wait until the target app in a pod has bound its port; return when it did (from its log).

    A container counts as started before its process listens, and probes that come in between
    fail with "connection refused" (and count towards ``failureThreshold``). Tests that inject a
    fault wait for this, then for one probe period, so that start-up failures no longer count.

    Raises:
        ProbesTimeoutError: The app did not log that it listens within ``timeout`` seconds (the
            message includes the end of its log).
    """
    return _wait_serving_log(api_client, namespace, pod, container=container,
                             listener=listener, timeout=timeout)[0]


def _wait_serving_log(
    api_client: Any,
    namespace: str,
    pod: str,
    *,
    container: str | None,
    listener: str = "main",
    timeout: float,
) -> tuple[datetime, str]:
    """:func:`wait_serving`, also returning the log it read."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from pytest_probes.target.logline import listening_since

    core = client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    log = ""
    while True:
        try:
            # An empty log comes back as None.
            log = core.read_namespaced_pod_log(pod, namespace, container=container) or ""
        except ApiException as err:
            if err.status not in (400, 404):  # 400: the container is not running yet
                raise
        since = listening_since(log, listener)
        if since is not None:
            return since, log
        if time.monotonic() >= deadline:
            where = f"pod {namespace}/{pod}" + (f" container {container}" if container else "")
            raise ProbesTimeoutError(
                f"{where}: the target app did not log 'listening on … ({listener})' within "
                f"{timeout:g} s; its log ends with: {log.strip()[-500:] or '(empty)'}"
            )
        time.sleep(0.2)


def app_start_lag(
    api_client: Any,
    namespace: str,
    pod: str,
    started: datetime,
    *,
    container: str | None = None,
    timeout: float = 30.0,
    origin: Literal["serving", "clock"] = "serving",
) -> float:
    """Seconds from ``started`` until the target app in ``pod`` served, or started its clock.

    The app follows the container's ``startedAt`` by the interpreter's start-up: a fraction of
    a second on a quiet node, seconds while a whole suite starts. With ``origin="serving"`` this
    is the lag until it bound its port (when an HTTP or TCP probe can first pass); with
    ``"clock"``, until its own clock started, which ``FAIL_AFTER``, ``START_DELAY``,
    ``HANG_AFTER`` and ``EXIT_AFTER`` count from (a moment before it binds). Add that to such a
    setting to time from the container's start. ``started`` is usually the
    ``ContainerStarted`` record's time (whole seconds, so the lag includes the truncated part of
    that second). Returns 0 if the moment is not later than ``started``.

    Raises:
        ProbesTimeoutError: See :func:`wait_serving`.
    """
    from pytest_probes.target.logline import clock_origin

    serving, log = _wait_serving_log(api_client, namespace, pod, container=container,
                                     timeout=timeout)
    # The clock's line comes before the port's, so the log that shows one shows both.
    moment = (clock_origin(log) or serving) if origin == "clock" else serving
    return max(0.0, (moment - started).total_seconds())
