"""Posting to the activity stream, as rules and users do: named users and roles become recipients when the
post is made, and the post is announced live to whoever sees it. Reading the stream is services/feed.py."""

from collections.abc import Iterable

from server import events
from server.db import transaction
from server.errors import FieldError, ValidationFailed
from server.models import FeedPost, FeedRecipient, User
from server.rules.notifications import audience

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
