"""Containers' log lines as timeline records: one ``LogLine`` record a line.

A line of ``kubectl logs --timestamps`` output (the API's ``timestamps=true``) starts with the time
the container runtime wrote it, in the CRI log format; the record is dated by that time, not by
when the line was read. Pure: the recorder reads the logs
(:meth:`~pytest_probes.recorder.Recorder.follow_logs`) and hands each line here.
"""

from __future__ import annotations

from pytest_probes.apitime import parse_time
from pytest_probes.records import Record


def log_line_record(
    namespace: str, pod: str, container: str, line: str, *, instance: str = ""
) -> Record | None:
    """A ``LogLine`` record from one line of ``kubectl logs --timestamps`` output.

    The timestamp is the container runtime's, taken when the line was written (the CRI log
    format); ``None`` for a line without one.
    """
    stamp, _, text = line.partition(" ")
    try:
        when = parse_time(stamp)
    except ValueError:
        return None
    if when is None:
        return None
    return Record(time=when, source="log", kind="LogLine", namespace=namespace, pod=pod,
                  container=container, message=text.rstrip("\n"),
                  data={"instance": instance} if instance else {})
