"""Fault injection: flip the target app's health at a chosen moment, on any cluster.

The target app (:mod:`pytest_probes.target`) reads flag files in its ``FLAG_DIR`` (``/tmp/probes``
by default): ``fail-liveness``, ``fail-readiness``, ``fail-startup``, ``hang-liveness``,
``hang-readiness``, and ``start-now``, which ends the app's ``START_DELAY``. These helpers create
or remove them with ``kubectl exec``'s API (the pod's exec subresource), and return the moment the
change was made, which tests use as the reference moment for their timing windows.

A probe's ticker keeps its phase (a liveness probe's always; a readiness probe's while the
container is ready), so where a probe will next come is known from the app's log. A change timed a
moment before that probe (:func:`before_next_probe`, then ``set_flag(..., at=...)`` or
:func:`write_file`) is seen by it, so the kubelet acts as early as the probe spec allows from the
change: the luckiest ticker phase, made on purpose. An exec into the pod takes a variable fraction
of a second to start, so the pod itself waits for the chosen moment and reports when it acted.
"""

from __future__ import annotations

import logging
import math
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tenacity import wait_fixed

from pytest_probes._poll import poll
from pytest_probes.errors import ProbesError, ProbesTimeoutError

log = logging.getLogger(__name__)

FLAGS = ("fail-liveness", "fail-readiness", "fail-startup", "hang-liveness", "hang-readiness",
         "start-now")
DEFAULT_FLAG_DIR = "/tmp/probes"

PROBE_LEAD = 2.0
"""Seconds ahead of now that a timed change is planned at the soonest: an exec into the pod and
the start of its ``python3`` take a fraction of a second, up to about a second while many pods
start at once."""

PROBE_MARGIN = 0.3
"""Seconds before the predicted probe that a timed change is made. The pod wakes from its sleep
a few milliseconds late on a quiet node and up to a tenth of a second under load; a probe request
reaches the app a moment after the kubelet's tick, never before."""

_PHASE_TOLERANCE = 0.25
"""Seconds off the last probe's phase beyond which an earlier probe counts as another phase."""

# Runs in the pod (the target image's python3): wait for the moment, change the file atomically,
# print the time it was done. argv: moment (epoch s), path, content, "1" to remove instead.
_AT_SCRIPT = """\
import os, sys, time
at, path, content, remove = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
if not remove:
    with open(path + ".tmp", "w") as f:
        f.write(content)
wait = at - time.time()
if wait > 0:
    time.sleep(wait)
if remove:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
else:
    os.replace(path + ".tmp", path)
print(repr(time.time()))
"""


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
    where = _where(namespace, pod, container)
    try:
        resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
    except Exception as err:
        raise ProbesError(f"cannot exec {shlex.join(command)} in {where}: {err}") from err
    try:
        resp.run_forever(timeout=timeout)
        output = (resp.read_stdout() or "") + (resp.read_stderr() or "")
        try:
            code = resp.returncode
        except ValueError as err:
            # The client parses the error channel's cause as an exit code; a command the runtime
            # could not run at all (its container killed meanwhile: "failed to create exec ...
            # task ... not found") has a message there instead.
            cause = str(err).partition(": ")[2].strip("'") or str(err)
            raise ProbesError(f"cannot exec {shlex.join(command)} in {where}: {cause}") from err
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
    at: datetime | None = None,
) -> datetime:
    """Create (or with ``present=False`` remove) one of the target app's flag files.

    A timed change (``at``) is made at that moment (see :func:`before_next_probe`) by the pod
    itself; otherwise at once.

    Returns:
        Without ``at``: the UTC time just before the exec was issued; the fault is in place from
        then on, at the latest when this function returns. With ``at``: when the pod made the
        change, by its clock (the node's).

    Raises:
        ValueError: ``flag`` is not one of :data:`FLAGS`.
        ProbesError: The exec failed.
    """
    if flag not in FLAGS:
        raise ValueError(f"unknown flag {flag!r}; choose one of {', '.join(FLAGS)}")
    path = f"{flag_dir.rstrip('/')}/{flag}"
    if at is not None:
        return write_file(api_client, namespace, pod, path, "", at=at, remove=not present,
                          container=container)
    script = f"mkdir -p {shlex.quote(flag_dir)} && touch {shlex.quote(path)}" if present else \
        f"rm -f {shlex.quote(path)}"
    moment = datetime.now(UTC)
    exec_in_pod(api_client, namespace, pod, ["sh", "-c", script], container=container)
    log.info("%s %s in %s/%s", "set" if present else "cleared", flag, namespace, pod)
    return moment


def write_file(
    api_client: Any,
    namespace: str,
    pod: str,
    path: str,
    content: str,
    *,
    at: datetime,
    remove: bool = False,
    container: str | None = None,
) -> datetime:
    """Write (or with ``remove=True`` delete) a file in a pod at a chosen moment.

    The pod's ``python3`` (the target image's) sleeps until ``at``, then renames the prepared file
    into place, so a reader never sees it half written. A moment already past acts at once.

    Returns:
        When the pod made the change, by its clock (the node's), UTC.

    Raises:
        ProbesError: The exec failed, or the pod printed no time.
    """
    command = ["python3", "-c", _AT_SCRIPT, repr(at.timestamp()), path, content,
               "1" if remove else "0"]
    wait = max(0.0, (at - datetime.now(UTC)).total_seconds())
    output = exec_in_pod(api_client, namespace, pod, command, container=container,
                         timeout=30.0 + wait)
    try:
        done = datetime.fromtimestamp(float(output.strip().splitlines()[-1]), UTC)
    except (ValueError, IndexError) as err:
        raise ProbesError(f"pod {namespace}/{pod}: writing {path} at {at:%H:%M:%S.%f} printed "
                          f"no time: {output.strip()[-300:] or '(nothing)'}") from err
    late = (done - at).total_seconds()
    log.info("%s %s in %s/%s at %s (%+.3f s)", "deleted" if remove else "wrote", path,
             namespace, pod, done.strftime("%H:%M:%S.%f"), late)
    return done


def next_probe(ticks: Sequence[datetime], period: float, *, after: datetime) -> datetime:
    """The first probe at or after ``after`` on the ticker that made ``ticks``.

    ``ticks`` are when the app saw earlier probes (at least one), a ``period`` apart on the
    kubelet's ticker but each a little late by the request's own delay. The recent ones on the
    last one's phase count (not those from before a ticker restart), and the least late of them
    sets the phase.

    Raises:
        ValueError: No ticks, or a period that is not positive.
    """
    if not ticks or period <= 0:
        raise ValueError(f"need at least one probe and a positive period, got {len(ticks)} "
                         f"probes and period {period}")
    last = max(ticks)
    step = timedelta(seconds=period)
    tolerance = min(_PHASE_TOLERANCE, period / 4)
    on_phase = [t + step * round((last - t) / step) for t in ticks
                if (last - t) < 10 * step
                and abs((last - t) / step - round((last - t) / step)) * period <= tolerance]
    base = min(on_phase)
    n = max(0, math.ceil((after - base) / step))
    return base + step * n


def before_next_probe(
    api_client: Any,
    namespace: str,
    pod: str,
    path: str,
    period: float,
    *,
    container: str | None = None,
    lead: float = PROBE_LEAD,
    margin: float = PROBE_MARGIN,
    timeout: float = 60.0,
) -> datetime:
    """A moment just before the next probe of ``path`` at least a lead away (the app's log).

    The moment is :data:`PROBE_MARGIN` before the first probe at least :data:`PROBE_LEAD` away.
    Pass it as ``at`` to :func:`set_flag` or :func:`write_file`: the change is then made just
    before a probe, which sees it. This holds while the probe's ticker keeps its phase: always for
    liveness and startup, and for readiness while the container is ready (a pod sync runs an
    extra readiness probe and restarts the ticker while it is not).

    Raises:
        ProbesTimeoutError: The app logged no request for ``path`` within ``timeout`` seconds.
    """
    from kubernetes import client

    from pytest_probes.target.logline import parse_health_line

    core = client.CoreV1Api(api_client)

    def read() -> tuple[str, list[datetime]]:
        text = core.read_namespaced_pod_log(pod, namespace, container=container) or ""
        return text, [h.time for h in map(parse_health_line, text.splitlines())
                      if h is not None and h.path == path]

    text, ticks = poll(read, until=lambda answer: bool(answer[1]), timeout=timeout,
                       wait=wait_fixed(min(period, 1.0)))
    if not ticks:
        where = _where(namespace, pod, container)
        raise ProbesTimeoutError(
            f"{where}: the target app logged no request for {path} within {timeout:g} s; "
            f"is a probe on that path? Its log ends with: {text.strip()[-500:] or '(empty)'}")
    return before_probe(ticks, period, lead=lead, margin=margin)


def before_probe(
    ticks: Sequence[datetime],
    period: float,
    *,
    lead: float = PROBE_LEAD,
    margin: float = PROBE_MARGIN,
) -> datetime:
    """``margin`` seconds before the first probe at least ``lead`` from now.

    See :func:`next_probe`; for probes whose ticks come from elsewhere than the app's log.
    """
    after = datetime.now(UTC) + timedelta(seconds=lead + margin)
    return next_probe(ticks, period, after=after) - timedelta(seconds=margin)


def _where(namespace: str, pod: str, container: str | None) -> str:
    return f"pod {namespace}/{pod}" + (f" container {container}" if container else "")


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
    log = ""

    def read() -> str:
        nonlocal log
        try:
            # An empty log comes back as None.
            log = core.read_namespaced_pod_log(pod, namespace, container=container) or ""
        except ApiException as err:
            if err.status not in (400, 404):  # 400: the container is not running yet
                raise
        return log

    log = poll(read, until=lambda text: listening_since(text, listener) is not None,
               timeout=timeout, wait=wait_fixed(0.2))
    since = listening_since(log, listener)
    if since is None:
        where = _where(namespace, pod, container)
        raise ProbesTimeoutError(
            f"{where}: the target app did not log 'listening on … ({listener})' within "
            f"{timeout:g} s; its log ends with: {log.strip()[-500:] or '(empty)'}"
        )
    return since, log


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

    With ``origin="serving"`` this is the lag until the app bound its port (when an HTTP or TCP
    probe can first pass): the interpreter's start-up, a fraction of a second on a quiet node,
    seconds while a whole suite starts. With ``"clock"`` it is the moment ``FAIL_AFTER``,
    ``START_DELAY``, ``HANG_AFTER`` and ``EXIT_AFTER`` count from: the process's creation, which
    the runtime does a moment before the container's ``startedAt``. Add it to such a setting to
    time from the container's start. ``started`` is usually the ``ContainerStarted`` record's
    time (whole seconds, so both include the truncated part of that second). A serving lag is
    at least 0; a clock lag is negative when the process was created in the second before
    ``started``.

    Raises:
        ProbesTimeoutError: See :func:`wait_serving`.
    """
    from pytest_probes.target.logline import clock_origin

    serving, log = _wait_serving_log(api_client, namespace, pod, container=container,
                                     timeout=timeout)
    # The clock's line comes before the port's, so the log that shows one shows both.
    if origin == "clock":
        return ((clock_origin(log) or serving) - started).total_seconds()
    return max(0.0, (serving - started).total_seconds())
