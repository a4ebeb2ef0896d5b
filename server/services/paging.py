"""Keyset pagination by id: a page is `first` rows after the id `after`, stable while rows are added."""

from dataclasses import dataclass
from typing import Any

from tortoise.queryset import QuerySet

MAX_PAGE = 100


@dataclass(frozen=True)
class Slice:
    items: list[Any]
    has_next: bool
    total: int


async def keyset(query: QuerySet, *, first: int, after: int | None, newest_first: bool = True) -> Slice:
    """Rows of `query` ordered by id; one statement for the page (one row more tells if there is a next) and one count."""
    from server.errors import ValidationFailed

    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.one("first", f"must be between 1 and {MAX_PAGE}")
    total = await query.count()
    if after is not None:
        query = query.filter(id__lt=after) if newest_first else query.filter(id__gt=after)
    rows = await query.order_by("-id" if newest_first else "id").limit(first + 1)
    return Slice(rows[:first], len(rows) > first, total)
