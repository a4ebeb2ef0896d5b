"""History entry: an "information" entry in the element's history."""

from pydantic import Field

from server.models import User
from server.rules.actions.base import Action, Done, Params, Template, UserId
from server.rules.context import RunContext


class HistoryEntryParams(Params):
    text: Template = Field(min_length=1, max_length=20_000)
    author: UserId | None = None


class HistoryEntry(Action):
    key = "history_entry"
    title = "History entry"
    group = "element"
    Params = HistoryEntryParams
    outputs = ("entry_id",)

    async def check(self, params: HistoryEntryParams, *, stage_id: int) -> list[tuple[str, str]]:
        if params.author is not None and not await User.exists(id=params.author):
            return [("author", f"user {params.author} does not exist")]
        return []

    async def execute(self, ctx: RunContext, params: HistoryEntryParams) -> Done:
        entry = await ctx.add_entry("history", params.text, author_id=params.author)
        return Done({"entry_id": entry.id})

    def describe(self, params: HistoryEntryParams) -> str:
        return f"Adds the history entry “{params.text[:80]}”"


ACTION = HistoryEntry()
