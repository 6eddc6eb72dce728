"""The package's extras: the optional dependencies only one part of it needs.

The core dependencies are what every provider needs; the ``local`` extra adds what only the local
provider uses (``cryptography`` for its cluster's certificates, ``tomli-w`` for its containerd
config). pyproject.toml's ``[project.optional-dependencies]`` is the one list of what an extra
holds: :func:`require` reads it back from the installed package's metadata.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Sequence

from pytest_probes.errors import ClusterError

DISTRIBUTION = "pytest-probes"

_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*(?:;(.*))?")


def install_command(extra: str) -> str:
    """The command that installs ``extra``, quoted for a shell."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def missing_extra(
    extra: str, missing: Sequence[str], *, needed_by: str, provider: str | None = None
) -> ClusterError:
    """The error for a part of pytest-probes used without its extra installed.

    Args:
        extra: The extra that provides what is missing (``local``).
        missing: The distributions or modules that are not installed.
        needed_by: Who needs them, e.g. ``the local provider``.
        provider: The provider name the error is about, if any.
    """
    names = " and ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    return ClusterError(
        f"{needed_by} needs {names}, which {verb} not installed: install pytest-probes with its "
        f"{extra!r} extra, `{install_command(extra)}`",
        provider=provider,
    )


def requirements(extra: str) -> list[str]:
    """The distributions ``extra`` adds, from the installed package's metadata.

    Empty where pytest-probes is not installed (run from a source tree), so nothing is checked.
    """
    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    marker = re.compile(rf"""\bextra\s*==\s*["']{re.escape(extra)}["']""")
    names = []
    for line in declared:
        match = _REQUIREMENT.match(line)
        if match and marker.search(match.group(2) or ""):
            names.append(match.group(1))
    return names


def require(extra: str, *, needed_by: str, provider: str | None = None) -> None:
    """Fail unless every distribution of ``extra`` is installed.

    Called before work that takes long (the local provider builds for minutes before it writes
    certificates), so a missing extra is named at once, all of it.

    Raises:
        ClusterError: Some of the extra's distributions are not installed; the message names them
            and the ``pip install`` command.
    """
    missing = []
    for name in requirements(extra):
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        raise missing_extra(extra, missing, needed_by=needed_by, provider=provider)
