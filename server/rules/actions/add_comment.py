"""Add comment: a comment on the element's timeline."""

from pydantic import Field

from server.models import User
from server.rules.actions.base import Action, Done, Params, Template, UserId
from server.rules.context import RunContext


class AddCommentParams(Params):
    text: Template = Field(min_length=1, max_length=20_000)
    author: UserId | None = None


class AddComment(Action):
    key = "add_comment"
    title = "Add comment"
    group = "communication"
    Params = AddCommentParams
    outputs = ("comment_id",)

    async def check(self, params: AddCommentParams, *, stage_id: int) -> list[tuple[str, str]]:
        if params.author is not None and not await User.exists(id=params.author):
            return [("author", f"user {params.author} does not exist")]
        return []

    async def execute(self, ctx: RunContext, params: AddCommentParams) -> Done:
        entry = await ctx.add_entry("comment", params.text, author_id=params.author)
        return Done({"comment_id": entry.id})

    def describe(self, params: AddCommentParams) -> str:
        return f"Adds the comment “{params.text[:80]}”"


ACTION = AddComment()
