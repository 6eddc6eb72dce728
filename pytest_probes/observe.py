"""Record any namespace of any cluster, and draw a recording: ``pytest-probes record`` / ``chart``.

After an incident (or before a test exists) the same recorder the fixtures use writes a raw JSON
Lines file — every watch event as received, and the recorder's ``WatchGap`` lines — which
:func:`pytest_probes.importers.replay_raw` turns into a timeline for the helpers, and
:func:`chart` into an SVG or an HTML page. Only ``list`` and ``watch`` on pods, events and
endpointslices in the namespace are needed.
"""

from __future__ import annotations

import html
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_probes.chart import timeline_svg
from pytest_probes.errors import ProbesError
from pytest_probes.importers import replay_raw
from pytest_probes.recorder import Recorder
from pytest_probes.timeline import Timeline

PROGRESS_EVERY = 30.0
"""Seconds between the progress lines of a long recording."""


def api_client_for(kubeconfig: Path, context: str | None) -> Any:
    """A client for ``kubeconfig`` (and ``context``), or a :class:`ProbesError` saying why not."""
    from kubernetes import config

    if not kubeconfig.is_file():
        raise ProbesError(f"kubeconfig {kubeconfig} does not exist; pass the file kubectl uses")
    try:
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context, persist_config=False)
    except (config.ConfigException, ValueError, KeyError, TypeError) as err:
        raise ProbesError(f"kubeconfig {kubeconfig}"
                          + (f" context {context}" if context else "")
                          + f" is not usable: {err}") from err


def record(
    api_client: Any,
    namespace: str,
    output: Path,
    *,
    duration: float | None,
    progress: Callable[[str], None],
    stop: threading.Event | None = None,
) -> Timeline:
    """Record ``namespace`` into ``output`` for ``duration`` seconds (``None``: until stopped).

    Stops early when ``stop`` is set, on Ctrl-C, or on SIGTERM (in the main thread).

    Raises:
        ProbesError: ``output`` exists already (nothing is overwritten), or the namespace does
            not exist.
        WatchError: The namespace cannot be listed (the message names the missing right).
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    if output.exists() and output.stat().st_size:
        raise ProbesError(f"{output} exists already; remove it or choose another -o file")
    try:
        client.CoreV1Api(api_client).read_namespace(namespace, _request_timeout=10)
    except ApiException as err:
        if err.status == 404:
            raise ProbesError(f"namespace {namespace} does not exist in the cluster") from None
        # 403: reading the namespace object needs a cluster-wide right; recording does not.
    except Exception as err:  # urllib3's connection errors
        raise ProbesError(f"the API server of the kubeconfig does not answer: {err}") from None
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    output.parent.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(api_client, namespace, raw_path=output)
    started = time.monotonic()
    try:
        timeline = recorder.start()
        progress(f"recording namespace {namespace} into {output}"
                 + (f" for {duration:g} s" if duration else "") + "; Ctrl-C stops")
        # Hand-written: it waits on the stop Event (Ctrl-C, SIGTERM), saying progress meanwhile.
        while not stop.is_set():
            left = None if duration is None else duration - (time.monotonic() - started)
            if left is not None and left <= 0:
                break
            if stop.wait(PROGRESS_EVERY if left is None else min(left, PROGRESS_EVERY)):
                break
            progress(f"{time.monotonic() - started:.0f} s: {len(timeline)} records")
    except KeyboardInterrupt:
        progress("interrupted; stopping")
    finally:
        timeline = recorder.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    progress(f"recorded {len(timeline)} records in {time.monotonic() - started:.0f} s "
             f"({recorder.gaps} watch gaps) into {output}")
    return timeline


def chart(recording: Path, output: Path) -> Timeline:
    """Draw the raw recording ``recording`` as ``output`` (``.svg``, or ``.html`` with the table).

    Raises:
        ProbesError: The recording is missing or not a raw recording, or ``output`` has another
            suffix.
    """
    if output.suffix not in (".svg", ".html"):
        raise ProbesError(f"{output}: write the chart to a .svg or a .html file")
    if not recording.is_file():
        raise ProbesError(f"{recording} does not exist; record one with `pytest-probes record`")
    timeline = replay_raw(recording)
    title = f"{recording.name}: namespace {timeline.namespace}"
    svg = timeline_svg(timeline, title=title)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".svg":
        output.write_text(svg, encoding="utf-8")
    else:
        output.write_text(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><div style=\"overflow-x:auto\">{svg}</div>"
            f"<pre>{html.escape(timeline.to_markdown())}</pre></body></html>\n",
            encoding="utf-8")
    return timeline
