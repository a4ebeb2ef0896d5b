"""Cancel booking: every active booking of the element's booking field is cancelled, and its slot is free."""

from typing import Any

from pydantic import Field

from server.errors import ValidationFailed
from server.i18n import N_
from server.models import CustomField
from server.rules import bookings
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, stage_entity_type
from server.rules.context import RunContext


class CancelBookingParams(Params):
    field: str = Field(min_length=1, max_length=64, description="the booking field of the element")


class CancelBooking(Action[CancelBookingParams]):
    key = "cancel_booking"
    title = N_("Cancel booking")
    summary = N_("Cancels the element's bookings, which frees their slots.")
    gives = N_("whether anything was cancelled, and which bookings")
    group = "tasks"
    Params = CancelBookingParams
    outputs = ("cancelled", "booking_ids")
    example = Example("Free the consultation slot", {"field": "consultation"})

    async def prepare_example(self, params: dict[str, Any], *, entity_type: str) -> dict[str, Any]:
        await CustomField.get_or_create(entity_type=entity_type, code=params["field"],
                                        defaults={"name": params["field"].title(), "type": bookings.BOOKING_FIELD_TYPE})
        return params

    async def check(self, params: CancelBookingParams, *, stage_id: int) -> list[tuple[str, str]]:
        try:
            await bookings.check_field(await stage_entity_type(stage_id), params.field)
        except ValidationFailed as exc:
            return [(e.field, e.message) for e in exc.errors]
        return []

    async def execute(self, ctx: RunContext, params: CancelBookingParams) -> Done:
        cancelled = await bookings.cancel(ctx.element_type, ctx.element.id, params.field)
        if cancelled:
            await ctx.add_entry("history", bookings.cancelled_text(cancelled, await bookings.resource_names(cancelled)))
        return Done({"cancelled": len(cancelled), "booking_ids": [b.id for b in cancelled]})

    def describe(self, params: CancelBookingParams, names: Names = NO_NAMES) -> str:
        return f"Cancels every active booking in the booking field “{params.field}”"


ACTION = CancelBooking()
