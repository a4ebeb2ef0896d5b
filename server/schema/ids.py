"""IDs are strings on the wire and integers in the database."""

from typing import Any

import strawberry

from server.errors import ValidationFailed
from server.rules.elements import reference_id


def gid(value: int) -> strawberry.ID:
    return strawberry.ID(str(value))


def opt_gid(value: int | None) -> strawberry.ID | None:
    return None if value is None else gid(value)


def to_int(value: Any, field: str) -> int:
    """The id a client sent, as the database holds ids: `abc`, `1e3`, `-1` or 23 digits are refused here,
    naming the argument, instead of reaching the database and failing there."""
    try:
        return reference_id(value, "record")
    except ValueError:
        raise ValidationFailed.one(field, f"'{value}' is not an id") from None


def opt_int(value: Any, field: str) -> int | None:
    return None if value is None else to_int(value, field)
