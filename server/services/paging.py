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


def page_size(first: int, field: str = "first") -> int:
    """How many items a client asked for, within 1..MAX_PAGE: every list that can grow is bounded so."""
    from server.errors import ValidationFailed

    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.one(field, f"must be between 1 and {MAX_PAGE}")
    return first


async def oldest_first(query: QuerySet[Any], *, first: int | None, after: int | None) -> list[Any]:
    """Rows of `query` by id after the id `after` (an element's log, read in order): at most `first`."""
    if after is not None:
        query = query.filter(id__gt=after)
    query = query.order_by("id")
    return await (query if first is None else query.limit(page_size(first)))


async def keyset(query: QuerySet[Any], *, first: int, after: int | None, newest_first: bool = True) -> Slice:
    """Rows of `query` ordered by id; one statement for the page (one row more tells if there is a next) and one count."""
    page_size(first)
    total = await query.count()
    if after is not None:
        query = query.filter(id__lt=after) if newest_first else query.filter(id__gt=after)
    rows = await query.order_by("-id" if newest_first else "id").limit(first + 1)
    return Slice(rows[:first], len(rows) > first, total)
