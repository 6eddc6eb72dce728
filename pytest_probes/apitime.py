"""API timestamps: RFC 3339 text as the API server writes it, to aware UTC datetimes and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_time(value: str | datetime | None) -> datetime | None:
    """Parse an API timestamp (RFC 3339, ``Z`` or offset, optional fraction) into aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits; the API may send 9.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        tail = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tail = rest[i:]
                break
            digits += ch
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with microseconds only when present."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def plus(when: datetime, seconds: float) -> datetime:
    """``when`` plus a number of seconds."""
    return when + timedelta(seconds=seconds)
