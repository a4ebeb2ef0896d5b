"""Activity: a CRM activity for the responsible(s), with start, duration, reminder and auto-complete.

Schedule call and Schedule meeting are this action with another kind; they also notify.
"""

from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from server import clock
from server.errors import ActionError
from server.i18n import N_
from server.models import Activity, User
from server.rules import elements
from server.rules.actions.base import (
    NO_NAMES,
    Action,
    Done,
    Example,
    Names,
    Params,
    Template,
    UserIds,
    stage_entity_type,
    unknown_users,
)
from server.rules.context import RunContext
from server.rules.preview import ElementView, PreviewContext
from server.rules.timing import UNITS, HhMm, as_moment, describe_start, zone


class ActivityParams(Params):
    subject: Template = Field(min_length=1, max_length=255)
    """the activity's subject (a template)"""
    description: Template = ""
    """what the activity is about (a template); empty: no description"""
    # Start: `start_in` units from now, or from the date field `start_field` (then it may be negative).
    start_in: int = Field(default=1, ge=-100_000, le=100_000)
    """when it starts: this many start units after the run (negative: before start_field)"""
    start_unit: Literal["minutes", "hours", "days"] = "hours"
    """the unit of start_in"""
    start_field: str | None = None
    """a date field of the element to count start_in from; empty: from the run"""
    start_time: HhMm = None
    """HH:MM on the start day, in the first responsible's time zone; empty: the time the count gives"""
    duration_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    """how long it lasts, in minutes"""
    important: bool = False
    """marked important"""
    reminder_minutes: int | None = Field(default=None, ge=0, le=28 * 24 * 60)
    """remind the responsibles this many minutes before it starts; empty: no reminder"""
    responsibles: UserIds = Field(default_factory=list)
    """who does it; empty: the element's responsible"""
    auto_complete: bool = False
    """completed by itself when the element changes stage"""

    @model_validator(mode="after")
    def _start_not_before_now(self) -> "ActivityParams":
        if self.start_in < 0 and not self.start_field:
            raise ValueError("a start before now needs a date field to count back from (start_field)")
        return self

    def describe_start(self) -> str:
        return describe_start(self.start_in, self.start_unit, self.start_field or "", self.start_time)


class CreateActivity(Action[ActivityParams]):
    key = "activity"
    title = N_("Activity")
    summary = N_("Plans an activity (call, meeting, to-do) in the responsible's calendar.")
    gives = N_("the new activity (one per person it is for) and when it starts")
    group = "tasks"
    Params = ActivityParams
    outputs = ("activity_id", "activity_ids", "start_at")
    example = Example("Prepare the offer", {"subject": "Prepare the offer for {{deal.title}}", "start_in": 1,
                                            "start_unit": "days", "duration_minutes": 45})
    kind: ClassVar[str] = "activity"
    notifies: ClassVar[bool] = False

    async def check(self, params: ActivityParams, *, stage_id: int) -> list[tuple[str, str]]:
        problems = await unknown_users(responsibles=params.responsibles)
        if params.start_field and params.start_field != "created_at":
            entity_type = await stage_entity_type(stage_id)
            field_type = (await elements.field_types(entity_type)).get(params.start_field, ("", []))[0]
            if field_type not in ("date", "datetime"):
                problems.append(("start_field", f"'{params.start_field}' is not a date field of a {entity_type}"))
        return problems

    async def execute(self, ctx: RunContext, params: ActivityParams) -> Done:
        existing = await Activity.filter(rule_run_id=ctx.run.id).order_by("id")
        if existing:  # this run's effect is already there
            return self._done(existing)
        wanted = params.responsibles or ([ctx.element.responsible_id] if ctx.element.responsible_id else [])
        if not wanted:
            raise ActionError(f"the {ctx.element_type} has no responsible and the rule names none")
        users = {u.id: u for u in await User.filter(id__in=wanted)}
        people = [users[i] for i in dict.fromkeys(wanted) if i in users]
        if not people:
            raise ActionError(f"none of the responsible users {wanted} exists any more")
        start = await self._start(ctx, params, people[0].timezone)
        end = start + timedelta(minutes=params.duration_minutes)
        created = [
            await Activity.create(
                kind=self.kind, subject=params.subject, description=params.description, start_at=start, end_at=end,
                important=params.important, reminder_minutes=params.reminder_minutes, responsible_id=person.id,
                element_type=ctx.element_type, element_id=ctx.element.id, auto_complete=params.auto_complete,
                rule_run_id=ctx.run.id,
            )
            for person in people
        ]
        if self.notifies:
            for person, activity in zip(people, created, strict=True):
                local = activity.start_at.astimezone(zone(person.timezone))
                await ctx.notify(
                    [person.id], f"{self.title.removeprefix('Schedule ').capitalize()} scheduled: {params.subject}, "
                    f"{local:%Y-%m-%d %H:%M} ({person.timezone})", kind=self.kind,
                )
        return self._done(created)

    def _done(self, activities: list[Activity]) -> Done:
        return Done({
            "activity_id": activities[0].id, "activity_ids": [a.id for a in activities],
            "start_at": activities[0].start_at.isoformat(),
        })

    async def _start(self, ctx: ElementView, params: ActivityParams, tz_name: str) -> datetime:
        offset = params.start_in * UNITS[params.start_unit]
        if params.start_field:
            anchor = as_moment((await ctx.context()).get(params.start_field), tz_name, None)
            if anchor is None:
                raise ActionError(f"the {ctx.element_type}'s {params.start_field} is empty: the activity has no start")
            start = anchor + offset
        else:
            start = clock.utcnow() + offset
        if params.start_time:
            start = as_moment(start.astimezone(zone(tz_name)).date(), tz_name, params.start_time) or start
        return start.astimezone(UTC).replace(microsecond=0)

    async def simulate(self, ctx: PreviewContext, params: ActivityParams) -> str:
        wanted = params.responsibles or ([ctx.element.responsible_id] if ctx.element.responsible_id else [])
        if not wanted:
            raise ActionError(f"the {ctx.element_type} has no responsible and the rule names none")
        tz_name = await ctx.timezone_of(wanted[0])
        start = await self._start(ctx, params, tz_name)
        text = (f"creates the {self.kind} “{params.subject[:80]}” for {ctx.names.people(wanted)}, "
                f"{ctx.when(start, tz_name)}, {params.duration_minutes} minutes")
        if params.reminder_minutes is not None:
            text += f", reminding {params.reminder_minutes} minutes before"
        if self.notifies:
            text += ", and notifies them"
        return text + (", completed when the element changes stage" if params.auto_complete else "")

    def describe(self, params: ActivityParams, names: Names = NO_NAMES) -> str:
        who = names.people(params.responsibles) if params.responsibles else "the responsible"
        text = (f"Creates the {self.kind} “{params.subject[:80]}” for {who}, starting {params.describe_start()}, "
                f"{params.duration_minutes} minutes")
        if self.notifies:
            text += ", and notifies them"
        return text + (", completed when the element changes stage" if params.auto_complete else "")


ACTION = CreateActivity()
