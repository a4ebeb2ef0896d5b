"""Recording what the tracking URLs of an outbound email report: it was opened, a link in it was clicked.

The requests are anonymous (a mail client fetching a pixel, a reader following a link), so the unguessable
message uid, and for a click our signature, are the only authority. A repeated open or click of the same link
costs one indexed read and writes nothing: the message, its timeline entry and its events are written the
first time only (opens: once per message, clicks: once per link), in one transaction. An element event
(`email_opened` / `link_clicked`) is what triggers will start from. A click shows the email was opened too,
so a reader whose client blocks images still counts as having opened it.
"""

from typing import Any

from server import clock
from server.channels import outbox, tracking
from server.db import transaction
from server.errors import ValidationFailed
from server.kinds import Direction
from server.models import ELEMENT_MODELS, Message
from server.rules import elements, engine
from server.rules.triggering import Event, Occurrence
from server.rules.triggers.base import EMAIL_OPENED, LINK_CLICKED

OPENED = "email_opened"
CLICKED = "link_clicked"
# A timeline entry shows this much of a clicked URL (the message keeps all of it).
ENTRY_URL_CHARS = 500


def clicked_links(meta: dict[str, Any]) -> list[str]:
    links = meta.get("clicked_links")
    return list(links) if isinstance(links, list) else []


async def record_open(uid: str) -> None:
    """The pixel of message `uid` was fetched. Unknown uids are ignored: the pixel answers the same for all."""
    if not tracking.is_uid(uid):
        return
    seen = await Message.filter(uid=uid, direction=Direction.outbound).only("id", "opened_at").first()
    if seen is None or seen.opened_at is not None:
        return
    async with transaction():
        # Compare-and-set: of two first fetches at once, one records the open.
        if await Message.filter(id=seen.id, opened_at__isnull=True).update(opened_at=clock.utcnow()):
            await _opened(await Message.get(id=seen.id))


async def record_click(uid: str, url: str, sig: str) -> str:
    """A link of message `uid` was followed: the URL to redirect to, once the signature proves we wrote the
    link. A missing or wrong signature is a `ValidationFailed` naming the parameter, and redirects nowhere."""
    if not url:
        raise ValidationFailed.one("u", "the link has no target URL (u)")
    if not sig:
        raise ValidationFailed.one("s", "the link has no signature (s), so it redirects nowhere")
    if not tracking.trackable(url):
        raise ValidationFailed.one("u", "only http and https links are redirected")
    key = await tracking.verifying_key() if tracking.is_uid(uid) else None
    if key is None or not tracking.signed(key, uid, url, sig):
        raise ValidationFailed.one("s", "the link's signature does not match its message and target URL: the link "
                                        "was changed after we sent it, so it redirects nowhere")
    seen = await Message.filter(uid=uid, direction=Direction.outbound).only("id", "meta").first()
    if seen is None or url in clicked_links(seen.meta or {}):
        return url  # ours (signed), but already recorded, or the message is gone: just redirect
    async with transaction():
        message = await Message.filter(id=seen.id).select_for_update().first()
        if message is None or url in clicked_links(message.meta or {}):
            return url
        now = clock.utcnow()
        first_open = message.opened_at is None
        message.meta = {**(message.meta or {}), "clicked_links": [*clicked_links(message.meta or {}), url]}
        message.clicked_at = message.clicked_at or now
        message.opened_at = message.opened_at or now
        await message.save(update_fields=["meta", "clicked_at", "opened_at"])
        if first_open:
            await _opened(message)
        await _clicked(message, url)
    return url


async def _element(message: Message) -> Any:
    model = ELEMENT_MODELS.get(message.element_type or "")
    if model is None or message.element_id is None:
        return None
    return await model.get_or_none(id=message.element_id)


async def _opened(message: Message) -> None:
    await outbox.message_event(message, tracked="opened", opened_at=_iso(message.opened_at))
    element = await _element(message)
    if element is None or message.element_type is None:
        return  # the element was deleted: the message still knows, there is no timeline to write on
    await elements.add_timeline_entry(message.element_type, element.id, "history",
                                      f"Email “{message.subject}” opened", author_id=None)
    await elements.element_event(message.element_type, element, OPENED, message_id=message.id)
    await engine.fire_triggers(Occurrence(Event(EMAIL_OPENED, {"subject": message.subject, "message_id": message.id}),
                                          element_type=message.element_type, element_id=element.id))


async def _clicked(message: Message, url: str) -> None:
    await outbox.message_event(message, tracked="clicked", url=url, clicked_at=_iso(message.clicked_at))
    element = await _element(message)
    if element is None or message.element_type is None:
        return
    shown = url if len(url) <= ENTRY_URL_CHARS else url[:ENTRY_URL_CHARS] + "…"
    await elements.add_timeline_entry(message.element_type, element.id, "history",
                                      f"Link clicked in “{message.subject}”: {shown}", author_id=None)
    await elements.element_event(message.element_type, element, CLICKED, message_id=message.id, url=url)
    await engine.fire_triggers(Occurrence(
        Event(LINK_CLICKED, {"url": url, "subject": message.subject, "message_id": message.id}),
        element_type=message.element_type, element_id=element.id))


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
