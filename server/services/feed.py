"""The activity stream: posts to users, roles or everyone; who sees a post is fixed when it is posted.

Posting is server/rules/feed.py (rules post too), re-exported here for the faces.
"""

from collections.abc import Iterable

from tortoise.expressions import Q, Subquery

from server.errors import Forbidden
from server.db import column
from server.models import FeedPost, FeedRecipient
from server.rules.feed import MAX_BODY_CHARS, MAX_TITLE_CHARS, payload, post
from server.services.access import Acting, Actor
from server.services.paging import Slice, keyset

__all__ = ["MAX_BODY_CHARS", "MAX_TITLE_CHARS", "create_post", "list_visible", "payload", "post", "recipients"]


async def create_post(
    actor: Actor, *, title: str, body: str, user_ids: Iterable[int] = (), roles: Iterable[str] = (),
    everyone: bool = False,
) -> FeedPost:
    """A user's own post: they are its author."""
    return await post(title=title, body=body, author_id=actor.user_id, user_ids=user_ids, roles=roles,
                      everyone=everyone)


def _visible_to(user_id: int) -> Q:
    return Q(to_everyone=True) | Q(author_id=user_id) | Q(recipients__user_id=user_id)


async def list_visible(user_id: int, *, actor: Acting, first: int = 50, after: int | None = None) -> Slice:
    """Posts `user_id` sees (to everyone, to them, or by them), newest first.

    Each user reads their own stream; admins may read anyone's.
    """
    if isinstance(actor, Actor) and actor.user_id != user_id and not actor.is_admin:
        raise Forbidden("you may only read your own activity stream")
    visible = FeedPost.filter(id__in=Subquery(FeedPost.filter(_visible_to(user_id)).values("id")))
    return await keyset(visible, first=first, after=after)


async def recipients(post_id: int) -> list[int]:
    """The user ids a post was addressed to by name or role (besides `to_everyone`)."""
    return await column(FeedRecipient.filter(post_id=post_id).order_by("user_id"), "user_id")
