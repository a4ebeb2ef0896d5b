"""What a dry run lets an action see: the element, its rendered context and read helpers, and nothing that writes
or sends. `Action.simulate` gets a `PreviewContext`; it has no method an effect could go through (`RunContext` has
them all), so no simulate can reach a real effect (rules/dry_run.py builds it)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from server.models import Element
from server.rules.names import Names


class ElementView(Protocol):
    """What a run context and a preview context both give: the element and its template context (read only)."""

    element_type: str
    element: Element
    actor_id: int | None

    async def context(self) -> dict[str, Any]:
        """The element as templates and conditions see it."""
        ...


class PreviewContext(ElementView, Protocol):
    """A dry run's context: reads only."""

    names: Names
    now: datetime  # the moment the dry run pretends the element enters the stage

    async def audience(self, user_ids: Iterable[int] = (), roles: Iterable[str] = ()) -> list[int]:
        """The active users named or holding one of `roles`: who a notification would reach."""
        ...

    async def timezone_of(self, user_id: int | None) -> str:
        """The user's time zone (the company's when there is no such user)."""
        ...

    def when(self, moment: datetime, tz_name: str | None = None) -> str:
        """A moment as a person reads it ("Thu 3 Dec 2026 10:00 Europe/Berlin"), in `tz_name` or the company's zone."""
        ...
