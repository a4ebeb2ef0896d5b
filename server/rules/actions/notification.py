"""Notification: an in-app notification from a sender to users and roles, live to subscribers."""

from pydantic import Field, model_validator

from server.i18n import N_
from server.models import Notification
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
from server.rules.preview import PreviewContext


class NotificationParams(Params):
    text: Template = Field(min_length=1, max_length=5_000)
    """the notification (a template)"""
    sender: UserId | None = None
    """who sends it; empty: the run-as user"""
    users: UserIds = Field(default_factory=list)
    """users who get it"""
    roles: Roles = Field(default_factory=list)
    """roles whose users get it"""

    @model_validator(mode="after")
    def _someone(self) -> "NotificationParams":
        if not self.users and not self.roles:
            raise ValueError("name the users or roles (admin, manager, employee) to notify")
        return self


class Notify(Action[NotificationParams]):
    key = "notification"
    title = N_("Notification")
    summary = N_("Sends a notification in the admin to the people chosen.")
    gives = N_("who was notified")
    group = "communication"
    Params = NotificationParams
    outputs = ("notified",)
    database_only = True
    example = Example("Tell the managers", {"text": "New deal: {{deal.title}}", "roles": ["manager"]})

    async def check(self, params: NotificationParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await unknown_users(sender=params.sender, users=params.users)

    async def execute(self, ctx: RunContext, params: NotificationParams) -> Done:
        sent = await Notification.filter(rule_run_id=ctx.run.id).order_by("id")
        if sent:  # this run's effect is already there
            return Done({"notified": [n.recipient_id for n in sent]})
        recipients = await ctx.audience(params.users, params.roles)
        await ctx.notify(recipients, params.text, kind="notification", sender_id=params.sender)
        return Done({"notified": recipients})

    async def simulate(self, ctx: PreviewContext, params: NotificationParams) -> str:
        recipients = await ctx.audience(params.users, params.roles)
        return f"notifies {ctx.names.people(recipients)}: “{params.text[:160]}”"

    def describe(self, params: NotificationParams, names: Names = NO_NAMES) -> str:
        whom = [names.people(params.users)] if params.users else []
        whom += [f"every {role}" for role in params.roles]
        return f"Notifies {', '.join(whom)}: “{params.text[:80]}”"


ACTION = Notify()
