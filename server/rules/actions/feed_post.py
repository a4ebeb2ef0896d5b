"""Activity stream message: a feed post with sender, recipients (users, roles or everyone), title and text."""

from pydantic import Field, model_validator

from server.i18n import N_
from server.models import FeedPost
from server.rules.actions.base import (
    NO_NAMES,
    Action,
    Done,
    Example,
    Names,
    Params,
    Roles,
    Template,
    UserId,
    UserIds,
    unknown_users,
)
from server.rules.context import RunContext


class FeedPostParams(Params):
    title: Template = Field(default="", max_length=255)
    """the post's title (a template); empty: none"""
    text: Template = Field(min_length=1, max_length=20_000)
    """the post (a template)"""
    sender: UserId | None = None
    """who posts it; empty: the run-as user"""
    everyone: bool = False
    """everyone sees it (users and roles are then not needed)"""
    users: UserIds = Field(default_factory=list)
    """users who see it"""
    roles: Roles = Field(default_factory=list)
    """roles whose users see it"""

    @model_validator(mode="after")
    def _someone(self) -> "FeedPostParams":
        if not self.everyone and not self.users and not self.roles:
            raise ValueError("post to everyone, or name users or roles (admin, manager, employee)")
        return self


class PostToFeed(Action[FeedPostParams]):
    key = "feed_post"
    title = N_("Activity stream message")
    summary = N_("Posts a message to the activity stream, for people, roles or everyone.")
    gives = N_("the post")
    group = "communication"
    Params = FeedPostParams
    outputs = ("post_id",)
    database_only = True
    example = Example("Announce it", {"title": "News", "text": "{{deal.title}} moved on", "everyone": True})

    async def check(self, params: FeedPostParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await unknown_users(sender=params.sender, users=params.users)

    async def execute(self, ctx: RunContext, params: FeedPostParams) -> Done:
        existing = await FeedPost.get_or_none(rule_run_id=ctx.run.id)
        if existing is not None:  # this run's effect is already there
            return Done({"post_id": existing.id})
        post = await ctx.post_to_feed(
            title=params.title, body=params.text, author_id=params.sender,
            user_ids=params.users, roles=params.roles, everyone=params.everyone,
        )
        return Done({"post_id": post.id})

    def describe(self, params: FeedPostParams, names: Names = NO_NAMES) -> str:
        whom = "everyone" if params.everyone else ", ".join(
            [names.people(params.users)] * bool(params.users) + [f"every {r}" for r in params.roles]
        )
        return f"Posts “{(params.title or params.text)[:80]}” to the activity stream of {whom}"


ACTION = PostToFeed()
