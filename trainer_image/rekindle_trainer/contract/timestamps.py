"""RFC 3339 timestamps as Kubernetes writes them, to and from aware datetimes.

The engine never reads the clock: callers pass ``now``. These helpers only
convert, so that status documents and Python values agree exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(value: datetime) -> str:
    """``2026-11-26T10:00:00Z``; fractions of a second are kept when present."""
    if value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset); raise ``ValueError`` otherwise."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not an RFC 3339 timestamp like 2026-11-26T10:00:00Z"
        ) from exc
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; write it like 2026-11-26T10:00:00Z")
    return value.astimezone(UTC)
