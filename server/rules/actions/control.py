"""Control: tell the responsible's supervisor and/or named users that the element reached this point."""

from pydantic import Field, model_validator

from server.errors import ActionError
from server.i18n import N_
from server.models import Notification, User
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, Template, UserIds, unknown_users
from server.rules.context import RunContext
from server.rules.preview import PreviewContext


class ControlParams(Params):
    message: Template = Field(min_length=1, max_length=5_000)
    """what the controller is asked to check (a template)"""
    to_supervisor: bool = True
    """ask the supervisor of the element's responsible"""
    users: UserIds = Field(default_factory=list)
    """further users to ask"""

    @model_validator(mode="after")
    def _someone(self) -> "ControlParams":
        if not self.to_supervisor and not self.users:
            raise ValueError("notify the responsible's supervisor, or name users, or both")
        return self


class Control(Action[ControlParams]):
    key = "control"
    title = N_("Control")
    summary = N_("Tells the responsible's supervisor (or people chosen) that the element got this far.")
    gives = N_("who was notified")
    group = "control"
    Params = ControlParams
    outputs = ("notified",)
    example = Example("Let a manager keep an eye on it", {"message": "{{deal.title}} reached this stage",
                                                          "users": ["manager"]})

    async def check(self, params: ControlParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await unknown_users(users=params.users)

    async def execute(self, ctx: RunContext, params: ControlParams) -> Done:
        sent = await Notification.filter(rule_run_id=ctx.run.id).order_by("id")
        if sent:  # this run's effect is already there
            return Done({"notified": [n.recipient_id for n in sent]})
        recipients = await self._recipients(ctx, params)
        await ctx.notify(recipients, params.message, kind="control")
        return Done({"notified": recipients})

    async def simulate(self, ctx: PreviewContext, params: ControlParams) -> str:
        recipients = await self._recipients(ctx, params)
        return f"notifies {ctx.names.people(recipients)}: “{params.message[:160]}”"

    @staticmethod
    async def _recipients(ctx: RunContext | PreviewContext, params: ControlParams) -> list[int]:
        """The responsible's supervisor (if asked) and the named users who are active, each once; none is an error."""
        wanted: list[int] = []
        if params.to_supervisor and ctx.element.responsible_id:
            responsible = await User.get_or_none(id=ctx.element.responsible_id)
            if responsible is not None and responsible.supervisor_id:
                wanted.append(responsible.supervisor_id)
        recipients = await ctx.audience([*wanted, *params.users])
        if not recipients:
            raise ActionError(f"nobody to notify: the {ctx.element_type}'s responsible has no supervisor"
                              + (" and the named users are inactive or gone" if params.users else ""))
        return recipients

    def describe(self, params: ControlParams, names: Names = NO_NAMES) -> str:
        whom = " and ".join(
            w for w in ("the responsible's supervisor" if params.to_supervisor else "",
                        names.people(params.users) if params.users else "") if w
        )
        return f"Notifies {whom}: “{params.message[:80]}”"


ACTION = Control()
