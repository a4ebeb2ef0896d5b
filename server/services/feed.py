"""The activity stream: posts to users, roles or everyone; who sees a post is fixed when it is posted."""

from collections.abc import Iterable

from tortoise.expressions import Q, Subquery

from server import events
from server.db import transaction
from server.errors import FieldError, Forbidden, ValidationFailed
from server.models import FeedPost, FeedRecipient, User
from server.services.access import Actor
from server.services.notifications import audience
from server.services.paging import Slice, keyset

MAX_TITLE_CHARS = 255  # the column
MAX_BODY_CHARS = 20_000  # as a comment: a post is read in a stream, not a document


def payload(post: FeedPost) -> dict[str, object]:
    """What live subscribers receive: a small JSON view of the row."""
    return {
        "id": post.id, "title": post.title, "body": post.body, "author_id": post.author_id,
        "to_everyone": post.to_everyone, "element_type": post.element_type, "element_id": post.element_id,
        "created_at": post.created_at.isoformat(),
    }


async def post(
    *,
    title: str,
    body: str,
    author_id: int | None,
    user_ids: Iterable[int] = (),
    roles: Iterable[str] = (),
    everyone: bool = False,
    element_type: str | None = None,
    element_id: int | None = None,
    rule_run_id: int | None = None,
) -> FeedPost:
    """Post to the stream. Named users and roles are resolved to recipients now; `everyone` includes later users."""
    if not body.strip():
        raise ValidationFailed.one("body", "write something to post")
    errors = [FieldError(name, f"must be at most {limit} characters")
              for name, text, limit in (("title", title, MAX_TITLE_CHARS), ("body", body, MAX_BODY_CHARS))
              if len(text) > limit]
    if errors:
        raise ValidationFailed(errors)
    recipients = await audience(user_ids, roles)
    if not everyone and not recipients:
        raise ValidationFailed.one("recipients", "name users or roles (active ones), or post to everyone")
    async with transaction():  # joins the rule run's transaction when a rule posts
        feed_post = await FeedPost.create(
            author_id=author_id, title=title, body=body, to_everyone=everyone,
            element_type=element_type, element_id=element_id, rule_run_id=rule_run_id,
        )
        for user_id in recipients:
            await FeedRecipient.create(post_id=feed_post.id, user_id=user_id)
        seen_by = recipients
        if everyone:
            seen_by = [u.id for u in await User.filter(active=True).order_by("id").only("id")]
        if author_id is not None and author_id not in seen_by:
            seen_by = [*seen_by, author_id]
        await events.emit("feed", payload(feed_post), element_type=element_type, element_id=element_id,
                          audience=seen_by)
    return feed_post


async def create_post(
    actor: Actor, *, title: str, body: str, user_ids: Iterable[int] = (), roles: Iterable[str] = (),
    everyone: bool = False,
) -> FeedPost:
    """A user's own post: they are its author."""
    return await post(title=title, body=body, author_id=actor.user_id, user_ids=user_ids, roles=roles,
                      everyone=everyone)


def _visible_to(user_id: int) -> Q:
    return Q(to_everyone=True) | Q(author_id=user_id) | Q(recipients__user_id=user_id)


async def list_visible(user_id: int, *, actor: Actor | None, first: int = 50, after: int | None = None) -> Slice:
    """Posts `user_id` sees (to everyone, to them, or by them), newest first.

    Each user reads their own stream; admins may read anyone's.
    """
    if actor is not None and actor.user_id != user_id and not actor.is_admin:
        raise Forbidden("you may only read your own activity stream")
    visible = FeedPost.filter(id__in=Subquery(FeedPost.filter(_visible_to(user_id)).values("id")))
    return await keyset(visible, first=first, after=after)


async def recipients(post_id: int) -> list[int]:
    """The user ids a post was addressed to by name or role (besides `to_everyone`)."""
    return list(await FeedRecipient.filter(post_id=post_id).order_by("user_id").values_list("user_id", flat=True))
