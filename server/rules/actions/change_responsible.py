"""Change responsible: pick the next responsible from a list (first, random or round robin), skipping absent users.

The round robin position is one row per rule, locked for the run's transaction, so several
workers hand elements out in turn without two taking the same position.
"""

import secrets
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from server.errors import ActionError
from server.i18n import N_
from server.models import RoundRobinCursor, User
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, UserIds, unknown_users
from server.rules.context import RunContext
from server.rules.preview import PreviewContext


class ChangeResponsibleParams(Params):
    users: UserIds = Field(min_length=1, max_length=200)
    """the users to choose the new responsible from"""
    mode: Literal["first", "random", "round_robin"] = "first"
    """how one is chosen: the first, at random, or each in turn (round_robin)"""
    skip_absent: bool = True
    """pass over users marked absent"""


class ChangeResponsible(Action[ChangeResponsibleParams]):
    key = "change_responsible"
    title = N_("Change responsible")
    summary = N_("Hands the element to the next person of a list (first, random or in turn), skipping the absent.")
    gives = N_("the new responsible")
    group = "element"
    Params = ChangeResponsibleParams
    outputs = ("responsible_id",)
    example = Example("Hand over to a manager", {"users": ["manager"], "mode": "first"})

    async def check(self, params: ChangeResponsibleParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await unknown_users(users=params.users)

    async def execute(self, ctx: RunContext, params: ChangeResponsibleParams) -> Done:
        people = {u.id: u for u in await User.filter(id__in=params.users)}

        def available(user_id: int) -> bool:
            user = people.get(user_id)
            return user is not None and user.active and not (params.skip_absent and user.absent)

        if params.mode == "round_robin":
            chosen = await self._round_robin(ctx.run.rule_id, params.users, available)
        else:
            candidates = [u for u in params.users if available(u)]
            chosen = None if not candidates else (
                candidates[0] if params.mode == "first" else secrets.choice(candidates)
            )
        if chosen is None:
            raise ActionError("no user of the list can take it: every one is absent, inactive or gone")
        await ctx.change_fields({"responsible": chosen})
        return Done({"responsible_id": chosen})

    async def _round_robin(self, rule_id: int, users: list[int], available: Callable[[int], bool]) -> int | None:
        # Insert-if-missing, then lock: a concurrent first run waits for the other's row instead of failing.
        await RoundRobinCursor.bulk_create([RoundRobinCursor(rule_id=rule_id, position=0)], ignore_conflicts=True)
        # `.only(...)`, not `values_list`: Tortoise drops FOR UPDATE from a values query.
        cursor = await RoundRobinCursor.filter(rule_id=rule_id).select_for_update().only("id", "position").first()
        assert cursor is not None
        for step in range(len(users)):
            index = (cursor.position + step) % len(users)
            if available(users[index]):
                await RoundRobinCursor.filter(id=cursor.id).update(position=(index + 1) % len(users))
                return users[index]
        return None

    async def simulate(self, ctx: PreviewContext, params: ChangeResponsibleParams) -> str:
        people = {u.id: u for u in await User.filter(id__in=params.users)}
        candidates = [i for i in params.users if (u := people.get(i)) is not None and u.active
                      and not (params.skip_absent and u.absent)]
        if not candidates:
            raise ActionError("no user of the list can take it: every one is absent, inactive or gone")
        if params.mode == "first":
            return f"makes {ctx.names.user(candidates[0])} the responsible"
        how = "at random" if params.mode == "random" else "in turn (round robin)"
        return f"makes one of {ctx.names.people(candidates)} the responsible, chosen {how}"

    def describe(self, params: ChangeResponsibleParams, names: Names = NO_NAMES) -> str:
        mode = {"first": "the first", "random": "a random", "round_robin": "the next (round robin)"}[params.mode]
        skip = " present" if params.skip_absent else ""
        return f"Makes {mode}{skip} of {names.people(params.users)} the responsible"


ACTION = ChangeResponsible()
