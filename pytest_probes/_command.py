"""Running a provider's external commands (kind, docker, ctr, ...) with errors that explain."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)


def last_lines(text: str | bytes, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a command's output."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def without_stack_traces(text: str) -> str:
    """Drop the frames of Go stack traces (a function line, then its tab-indented file line).

    kind prints kubeadm's output and then the stack of the error it wraps; its last lines are
    frames, and the lines that say what went wrong come before them.
    """
    lines = text.splitlines()
    kept = []
    for index, line in enumerate(lines):
        frame_file = line.startswith("\t")
        frame_function = index + 1 < len(lines) and lines[index + 1].startswith("\t") and (
            " " not in line.strip())
        if not (frame_file or frame_function):
            kept.append(line)
    return "\n".join(kept)


def run_command(
    command: Sequence[str],
    *,
    what: str,
    timeout: float,
    provider: str,
    hint: str = "",
    missing: str = "is not installed or not on PATH",
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise a :class:`ClusterError` keeping command, exit code and stderr tail.

    Args:
        command: The command line.
        what: What it does, to start each message with (``creating kind cluster x``).
        timeout: Seconds it may take.
        provider: The provider named in the error.
        hint: Appended to each message.
        missing: Says that ``command[0]`` could not be found.
    """
    log.debug("running %s", " ".join(command))
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as err:
        raise ClusterError(
            f"{what}: {command[0]} {missing}. {hint}".strip(), provider=provider, command=command
        ) from err
    except subprocess.TimeoutExpired as err:
        raise ClusterError(
            f"{what}: `{' '.join(command)}` did not finish within {timeout:.0f} s. {hint}".strip(),
            provider=provider,
            command=command,
            stderr_tail=last_lines(err.stderr or b""),
        ) from err
    if done.returncode != 0:
        tail = last_lines(without_stack_traces(done.stderr or done.stdout or ""))
        # Tools such as kind print their error first and a stack trace after it.
        headline = next((line for line in (done.stderr or "").splitlines()
                         if line.startswith(("ERROR:", "Error:", "error:"))), "")
        if headline and headline not in tail:
            tail = f"{headline}\n...\n{tail}"
        raise ClusterError(
            f"{what}: `{' '.join(command)}` exited with {done.returncode}: {tail}. {hint}".strip(),
            provider=provider,
            command=command,
            returncode=done.returncode,
            stderr_tail=tail,
        )
    return done
