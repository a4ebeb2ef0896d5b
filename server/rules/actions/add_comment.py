"""Add comment: a comment on the element's timeline."""

from typing import ClassVar

from pydantic import Field

from server.i18n import N_
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, Template, UserId, unknown_users
from server.rules.context import RunContext


class EntryParams(Params):
    text: Template = Field(min_length=1, max_length=20_000)
    """the text (a template)"""
    author: UserId | None = None
    """whose name it carries; empty: the run-as user"""


class AddComment(Action[EntryParams]):
    key = "add_comment"
    title = N_("Add comment")
    summary = N_("Writes a comment on the element's timeline.")
    gives = N_("the comment")
    group = "communication"
    Params = EntryParams
    outputs = ("comment_id",)
    example = Example("Note the offer", {"text": "Offer sent for {{deal.title}}"})
    kind: ClassVar[str] = "comment"
    database_only = True

    async def check(self, params: EntryParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await unknown_users(author=params.author)

    async def execute(self, ctx: RunContext, params: EntryParams) -> Done:
        entry = await ctx.add_entry(self.kind, params.text, author_id=params.author)
        return Done({self.outputs[0]: entry.id})

    def describe(self, params: EntryParams, names: Names = NO_NAMES) -> str:
        return f"Adds the {self.kind} “{params.text[:80]}”"


ACTION = AddComment()
