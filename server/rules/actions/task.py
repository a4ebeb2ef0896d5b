"""Task: a task linked to the element; optionally the lane waits until it is closed."""

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from server import clock
from server.i18n import N_
from server.models import Task
from server.rules.actions.base import (
    NO_NAMES,
    USERS,
    Action,
    Block,
    Done,
    Example,
    Names,
    Outcome,
    Params,
    Template,
    UserId,
    unknown_users,
)
from server.rules.context import RunContext
from server.rules.preview import PreviewContext


class TaskParams(Params):
    title: Template = Field(min_length=1, max_length=255)
    """the task's title (a template)"""
    description: Template = ""
    """what is to be done (a template); empty: no description"""
    responsible: UserId | None = None
    """who does it; empty: the element's responsible"""
    creator: UserId | None = None
    """who set it; empty: the run-as user"""
    participants: Annotated[list[int], USERS] = Field(default_factory=list)
    """who else takes part"""
    deadline_days: int | None = Field(default=None, ge=0, le=3650)
    """due this many days after the run; empty: no deadline"""
    priority: Literal["low", "normal", "high"] = "normal"
    """the task's priority"""
    wait_until_closed: bool = False
    """the run waits until the task is closed (later rules in its lane wait too)"""


class CreateTask(Action[TaskParams]):
    key = "task"
    title = N_("Task")
    summary = N_("Gives someone a task with a deadline; later rules can wait until it is closed.")
    gives = N_("the task, when it was closed and how the wait ended")
    group = "tasks"
    Params = TaskParams
    outputs = ("task_id", "closed_at", "ended_by")
    example = Example("Prepare the contract", {"title": "Prepare the contract for {{deal.title}}", "deadline_days": 2,
                                               "wait_until_closed": True})

    async def check(self, params: TaskParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await unknown_users(
            responsible=params.responsible, creator=params.creator, participants=params.participants
        )

    async def execute(self, ctx: RunContext, params: TaskParams) -> Outcome:
        task = await Task.create(
            title=params.title, description=params.description,
            responsible_id=params.responsible or ctx.element.responsible_id,
            creator_id=params.creator or ctx.actor_id, participants=params.participants,
            deadline=clock.utcnow() + timedelta(days=params.deadline_days) if params.deadline_days is not None else None,
            priority=params.priority, element_type=ctx.element_type, element_id=ctx.element.id,
            rule_run_id=ctx.run.id,
        )
        if params.wait_until_closed:
            return Block(until=None, reason=f"waiting until task {task.id} is closed", outputs={"task_id": task.id})
        return Done({"task_id": task.id})

    async def release(self, ctx: RunContext, params: TaskParams, *, ended_by: str) -> dict[str, object]:
        task = await Task.get_or_none(rule_run_id=ctx.run.id)
        closed = task.closed_at.isoformat() if task and task.closed_at else None
        return {"closed_at": closed, "ended_by": ended_by}

    async def simulate(self, ctx: PreviewContext, params: TaskParams) -> str:
        responsible = params.responsible or ctx.element.responsible_id
        if responsible is None:
            who = "nobody (the element has no responsible)"
        else:
            who = ctx.names.user(responsible)
        text = f"creates the task “{params.title[:80]}” for {who}"
        if params.deadline_days is not None:
            deadline = ctx.now + timedelta(days=params.deadline_days)
            text += f", due {ctx.when(deadline, await ctx.timezone_of(responsible))}"
        if params.participants:
            text += f", with {ctx.names.people(params.participants)}"
        return text + (", and waits until it is closed" if params.wait_until_closed else "")

    def describe(self, params: TaskParams, names: Names = NO_NAMES) -> str:
        text = f"Creates the task “{params.title[:80]}”"
        return text + " and waits until it is closed" if params.wait_until_closed else text


ACTION = CreateTask()
