"""Reading ``/proc/PID/stat`` (standard library only, so it is cheap to import anywhere)."""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/PID/stat`` (field 1 first), or ``None`` if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    close = raw.rfind(")")
    if close < 0:
        return None
    pid_text = raw[:close].split(" (", 1)[0]
    return [pid_text, raw[raw.find("(") + 1 : close], *raw[close + 2 :].split()]


def start_ticks(pid: int) -> int | None:
    """Return when process ``pid`` started (clock ticks since boot), or ``None`` if it is gone."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 22:
        return None
    return int(fields[21])
