"""Wait: the element waits for the customer; the lane holds until customer activity or the timeout."""

from datetime import timedelta
from typing import Any

from pydantic import Field, model_validator

from server import clock
from server.i18n import N_
from server.models import Stage
from server.rules import elements
from server.rules.actions.base import CUSTOMER_ACTIVITY, NO_NAMES, Action, Block, Example, Names, Params, Template
from server.rules.context import RunContext
from server.rules.preview import PreviewContext
from server.rules.timing import as_moment


class WaitParams(Params):
    days: int | None = Field(default=None, ge=0, le=3650)
    """how many days to wait"""
    before_field: str | None = None
    """a date field: wait until `days` before that date instead"""
    description: Template = ""
    """what the wait is for (a template); shown on the run"""

    @model_validator(mode="after")
    def _has_timeout(self) -> "WaitParams":
        if self.days is None:
            raise ValueError("give the number of days to wait (or days before a date field)")
        return self


class Wait(Action[WaitParams]):
    key = "wait"
    title = N_("Wait")
    summary = N_("Holds the rules after it until the customer answers or the time runs out.")
    gives = N_("how the wait ended (answer or timeout) and the customer's activity")
    group = "control"
    Params = WaitParams
    outputs = ("ended_by", "activity")
    released_by = (CUSTOMER_ACTIVITY,)
    example = Example("Wait for the reply", {"days": 5, "description": "offer sent"})

    async def check(self, params: WaitParams, *, stage_id: int) -> list[tuple[str, str]]:
        if params.before_field is None:
            return []
        stage = await Stage.get(id=stage_id).prefetch_related("pipeline")
        types = await elements.field_types(stage.pipeline.entity_type)
        if types.get(params.before_field, ("", []))[0] not in ("date", "datetime"):
            return [("before_field", f"'{params.before_field}' is not a date field of a {stage.pipeline.entity_type}")]
        return []

    async def execute(self, ctx: RunContext, params: WaitParams) -> Block:
        until = clock.utcnow() + timedelta(days=params.days or 0)
        if params.before_field:
            anchor = as_moment((await ctx.context()).get(params.before_field), "UTC", None)
            if anchor is not None:
                until = anchor - timedelta(days=params.days or 0)
        ctx.element.waiting_for_customer = True
        await ctx.element.save(update_fields=["waiting_for_customer"])
        if params.description:
            await ctx.add_entry("history", f"Waiting for the customer: {params.description}")
        return Block(until=until, reason=f"waiting for customer activity until {until.isoformat(timespec='minutes')}")

    async def release(self, ctx: RunContext, params: WaitParams, *, ended_by: str) -> dict[str, Any]:
        ctx.element.waiting_for_customer = False
        await ctx.element.save(update_fields=["waiting_for_customer"])
        return {"ended_by": ended_by}

    async def simulate(self, ctx: PreviewContext, params: WaitParams) -> str:
        until = ctx.now + timedelta(days=params.days or 0)
        if params.before_field:
            anchor = as_moment((await ctx.context()).get(params.before_field), "UTC", None)
            if anchor is not None:
                until = anchor - timedelta(days=params.days or 0)
        note = f" (noting “{params.description[:80]}” on the timeline)" if params.description else ""
        return f"waits for the customer until {ctx.when(until)}{note}; the rules after it in its lane wait too"

    def describe(self, params: WaitParams, names: Names = NO_NAMES) -> str:
        if params.before_field:
            return f"Waits for the customer until {params.days} days before {params.before_field}"
        return f"Waits for the customer up to {params.days} days"


ACTION = Wait()
