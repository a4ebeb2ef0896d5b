"""The one source of 'now' (timezone-aware UTC), so tests and the engine agree on time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
