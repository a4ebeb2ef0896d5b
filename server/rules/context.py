"""The port an action acts through: its run, the element, the rendered context, and every effect it may have
on the rest of the system. The engine implements it (`engine.EngineRunContext`); an action imports neither the
engine nor a service, so the engine can import every action without a cycle.
"""

from collections.abc import Iterable
from typing import Any, Protocol

from server.models import Element, FeedPost, Message, Notification, RuleRun, Stage, TimelineEntry


class RunContext(Protocol):
    run: RuleRun
    element_type: str
    element: Element
    actor_id: int | None  # the user on whose behalf the rule acts; the default author of what it creates

    async def context(self) -> dict[str, Any]:
        """The element as templates and conditions see it; built on first use (it costs queries)."""
        ...

    async def add_entry(self, kind: str, text: str, *, author_id: int | None = None) -> TimelineEntry:
        """A timeline entry attributed to this run (and to its author, by default the run-as user)."""
        ...

    async def change_fields(self, changes: dict[str, Any], *, actor_id: int | None = None) -> list[str]:
        """Write already coerced field values of the element, each real change audited as this run's, and
        move the runs timed against a changed date. Returns the names that changed."""
        ...

    async def audience(self, user_ids: Iterable[int] = (), roles: Iterable[str] = ()) -> list[int]:
        """The active users named or holding one of `roles`, each once: who a notification would reach."""
        ...

    async def notify(self, recipient_ids: Iterable[int], text: str, *, kind: str,
                     sender_id: int | None = None) -> list[Notification]:
        """A notification about the element to each recipient, from `sender_id` (default: the run-as user)."""
        ...

    async def post_to_feed(self, *, title: str, body: str, author_id: int | None = None, user_ids: Iterable[int] = (),
                           roles: Iterable[str] = (), everyone: bool = False) -> FeedPost:
        """An activity stream post about the element, by `author_id` (default: the run-as user)."""
        ...

    async def move_to(self, stage: Stage, *, actor_id: int | None = None) -> None:
        """An automatic stage change of the element: it continues this run's causal chain (the loop guard counts it)."""
        ...

    async def enter_stage(self, element_type: str, element: Element, stage: Stage, *, reason: str) -> None:
        """Another element this run made (a deal from a lead) enters `stage`, continuing this run's chain."""
        ...

    async def delete_element(self, *, reason: str) -> None:
        """Delete the element: its pending runs are cancelled with `reason` (this run finishes on its own)."""
        ...

    async def fire_event(self, kind: str, data: dict[str, Any]) -> None:
        """Something happened to the element because of this run (a resource booked): its triggers may move it,
        continuing this run's chain."""
        ...

    async def send_message(self, *, channel: str, recipient: str, text: str, sender: str, sender_name: str = "",
                           subject: str = "", html: str = "", meta: dict[str, Any] | None = None) -> Message:
        """An outbound email or SMS about the element, written to the outbox with this run and delivered after
        it commits (retried by its own attempts). A repeated run gets the message its first attempt wrote."""
        ...
