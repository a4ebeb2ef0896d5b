"""Slow comment (tests only): works `seconds` (waiting, as on a slow peer), then comments on the element."""

import asyncio

from pydantic import Field

from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, Template
from server.rules.context import RunContext


class SlowParams(Params):
    text: Template = Field(min_length=1)
    seconds: float = Field(ge=0, le=600)


class SlowComment(Action[SlowParams]):
    key = "slow_comment"
    title = "Slow comment"
    group = "communication"
    Params = SlowParams
    outputs = ("comment_id",)
    example = Example("Comment slowly", {"text": "slow", "seconds": 0})

    async def execute(self, ctx: RunContext, params: SlowParams) -> Done:
        await asyncio.sleep(params.seconds)
        entry = await ctx.add_entry("comment", params.text)
        return Done({"comment_id": entry.id})

    def describe(self, params: SlowParams, names: Names = NO_NAMES) -> str:
        return f"Comments “{params.text}” after {params.seconds:g} s"


ACTION = SlowComment()
