"""The exceptions pytest-probes raises.

Every error derives from :class:`ProbesError` and keeps the facts it reports as attributes, so a
caller can act on them without parsing the message.  :class:`ProbeAssertionError` also derives from
:class:`AssertionError`, so pytest reports a failed expectation as a test failure, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


class ProbesError(Exception):
    """Base class of every error raised by pytest-probes."""


class ClusterError(ProbesError):
    """A cluster could not be created, reached, used or deleted.

    Attributes:
        provider: The provider name (``local``, ``kind``, ``existing``) or ``None``.
        command: The command that failed, if a subprocess failed.
        returncode: Its exit code.
        stderr_tail: The last lines of its standard error.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        command: Sequence[str] | None = None,
        returncode: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        self.provider = provider
        self.command = list(command) if command is not None else None
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(message)


class UnsupportedSettings(ClusterError):
    """The cluster configuration a test asks for does not exist in the running version.

    A feature gate the version does not know, or one locked against the value asked for: the
    test is not applicable to this version (the plugin skips it with this message).
    """


class DeployError(ProbesError):
    """A manifest could not be read, understood or applied.

    Attributes:
        source: The file name or ``<text>``/``<dict>`` the manifest came from.
        index: The document index inside a multi-document source, if known.
        kind: The object kind, if known.
        name: The object name, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        index: int | None = None,
        kind: str | None = None,
        name: str | None = None,
    ) -> None:
        self.source = source
        self.index = index
        self.kind = kind
        self.name = name
        super().__init__(message)


class WatchError(ProbesError):
    """The recorder could not list or watch a resource after retrying."""


class ProbesTimeoutError(ProbesError, TimeoutError):
    """A wait ran out of time before its condition held.

    Attributes:
        what: What was waited for.
        timeout: The timeout in seconds.
    """

    def __init__(self, message: str, *, what: str = "", timeout: float | None = None) -> None:
        self.what = what
        self.timeout = timeout
        super().__init__(message)


class ProbeAssertionError(ProbesError, AssertionError):
    """A timeline did not show what an assertion helper expected.

    Attributes:
        namespace: The namespace of the timeline.
        pod: The pod name or prefix the helper was asked about.
        expected: What was expected, in words.
        observed: What was observed, in words.
        window: The time window ``(start, end)`` in seconds relative to the reference moment.
        rows: The timeline rows that matter, rendered as a Markdown table.
        details: Anything else the helper found, by name.
    """

    def __init__(
        self,
        message: str,
        *,
        namespace: str | None = None,
        pod: str | None = None,
        expected: str = "",
        observed: str = "",
        window: tuple[float, float] | None = None,
        rows: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.namespace = namespace
        self.pod = pod
        self.expected = expected
        self.observed = observed
        self.window = window
        self.rows = rows
        self.details = dict(details or {})
        super().__init__(message)


class InconclusiveError(ProbeAssertionError):
    """The timeline cannot show what a helper asserts is absent: the recording had a gap.

    After a ``410 Gone`` or an API server restart the recorder lists again, and the list shows only
    the net change since the watch broke: a pod that lost and regained Ready in between, or an
    address removed and added back, left no record. A helper whose verdict rests on absence
    (``assert_never_ready_for``, ``assert_endpoint_kept_for``, ``assert_no_restarts_for``) raises
    this instead of passing when such a gap (a ``WatchGap`` record) overlaps its window.

    Attributes:
        gaps: The ``WatchGap`` records that overlap the window.
    """

    def __init__(self, message: str, *, gaps: Any = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.gaps = tuple(gaps)


class DiagnosedFailure(ProbeAssertionError):
    """A wait ended early because the cluster can no longer reach the expected state.

    Raised for ImagePullBackOff, CreateContainerConfigError, Unschedulable pods and the like, so a
    test fails at once with the diagnosis instead of running out its timeout.
    """


def api_message(err: BaseException) -> str:
    """Return the ``message`` of a Kubernetes API error body, or the error text."""
    body = getattr(err, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message) if message else body[:500]
    return str(err)
