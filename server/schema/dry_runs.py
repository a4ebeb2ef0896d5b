"""Dry run and explain in GraphQL: "what would entering this stage now do to the element", and "why did each rule of
the element do what it did". Both read only; services/dry_runs.py and services/explain.py check who may ask."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from server.kinds import RunStatus, StageRunStatus
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, to_int
from server.services import dry_runs as dry_run_service
from server.services import explain as explain_service
from server.services.designer import ActivationView


@strawberry.type
class RulePreview:
    """One rule of the stage as a dry run sees it: would it act, when, with what, doing what."""

    rule_id: strawberry.ID
    key: str
    title: str
    action_type: str
    action_title: str
    lane: int = strawberry.field(description="1, 2, … as the board numbers the stage's lanes.")
    enabled: bool
    timing: str = strawberry.field(description="The rule's timing in words.")
    due_at: datetime | None = strawberry.field(description="None: the rule would be skipped (an empty anchor date).")
    due: str = strawberry.field(description="The due time in words, or why there is none.")
    condition_met: bool | None = strawberry.field(description="None: the rule has no condition.")
    condition: str = strawberry.field(description="The condition's outcome in words, with the values it saw.")
    params: JSON = strawberry.field(description="The params rendered against the element.")
    effect: str = strawberry.field(description="What the action would do, in words.")
    problem: str | None = strawberry.field(description="The error the run would fail with, if any.")
    would_act: bool
    sentence: str = strawberry.field(description="The rule's outcome in one sentence.")

    @classmethod
    def of(cls, preview: dry_run_service.RulePreview) -> "RulePreview":
        return cls(rule_id=gid(preview.rule_id), key=preview.key, title=preview.title, action_type=preview.action_type,
                   action_title=preview.action_title, lane=preview.lane, enabled=preview.enabled,
                   timing=preview.timing, due_at=preview.due_at, due=preview.due,
                   condition_met=preview.condition_met, condition=preview.condition, params=JSON(preview.params),
                   effect=preview.effect, problem=preview.problem, would_act=preview.would_act,
                   sentence=preview.sentence)


@strawberry.type
class DryRun:
    """What entering the stage now would do to the element. Nothing was written or sent to find out."""

    element_type: str
    element_id: strawberry.ID
    element_title: str
    stage_id: strawberry.ID
    stage_name: str
    revision: int = strawberry.field(description="The revision of the stage's rules in force.")
    at: datetime = strawberry.field(description="The moment the element was pretended to enter.")
    rules: list[RulePreview]
    triggers: list[str] = strawberry.field(description="The stage's triggers in words: what moves an element here.")

    @classmethod
    def of(cls, run: dry_run_service.DryRun) -> "DryRun":
        return cls(element_type=run.element_type, element_id=gid(run.element_id), element_title=run.element_title,
                   stage_id=gid(run.stage_id), stage_name=run.stage_name, revision=run.revision, at=run.at,
                   rules=[RulePreview.of(p) for p in run.rules], triggers=run.triggers)


@strawberry.type
class RunExplanation:
    run_id: strawberry.ID
    rule_id: strawberry.ID
    title: str
    action_type: str
    status: RunStatus
    sentence: str = strawberry.field(description="Why the run is where it is, in one sentence.")
    reason: str | None
    error: str | None
    attempts: int
    due_at: datetime | None = strawberry.field(description="When it is due, its retry, or when its wait times out.")
    finished_at: datetime | None


@strawberry.type
class StayExplanation:
    """One stay of the element in a stage: how it got there, and what each rule did."""

    stage_run_id: strawberry.ID
    stage_id: strawberry.ID
    stage_name: str
    status: StageRunStatus
    entered_at: datetime
    left_at: datetime | None
    revision: int
    sentence: str
    runs: list[RunExplanation]


@strawberry.type
class ActivationExplanation:
    """An event matched against the element's triggers: what happened and why each candidate did or did not move it."""

    activation_id: strawberry.ID
    event: str
    outcome: str
    evaluations: list[str]
    created_at: datetime


@strawberry.type
class Explanation:
    element_type: str
    element_id: strawberry.ID
    stays: list[StayExplanation] = strawberry.field(description="Newest first, at most 50.")
    activations: list[ActivationExplanation] = strawberry.field(description="Newest first, at most 50.")

    @classmethod
    def of(cls, explanation: explain_service.Explanation) -> "Explanation":
        return cls(
            element_type=explanation.element_type, element_id=gid(explanation.element_id),
            stays=[StayExplanation(
                stage_run_id=gid(s.stage_run_id), stage_id=gid(s.stage_id), stage_name=s.stage_name,
                status=StageRunStatus(s.status), entered_at=s.entered_at, left_at=s.left_at, revision=s.revision,
                sentence=s.sentence, runs=[RunExplanation(
                    run_id=gid(r.run_id), rule_id=gid(r.rule_id), title=r.title, action_type=r.action_type,
                    status=RunStatus(r.status), sentence=r.sentence, reason=r.reason, error=r.error,
                    attempts=r.attempts, due_at=r.due_at, finished_at=r.finished_at) for r in s.runs],
            ) for s in explanation.stays],
            activations=[_activation(a) for a in explanation.activations],
        )


def _activation(view: ActivationView) -> ActivationExplanation:
    return ActivationExplanation(activation_id=gid(view.activation.id), event=view.event, outcome=view.outcome,
                                 evaluations=view.evaluations, created_at=view.activation.created_at)


DryRunResult = Annotated[DryRun | ValidationError | NotFoundError | ForbiddenError, strawberry.union("DryRunResult")]
ExplainResult = Annotated[Explanation | ValidationError | NotFoundError | ForbiddenError,
                          strawberry.union("ExplainResult")]


@strawberry.type
class DryRunQuery:
    @strawberry.field(description="What would happen if the element entered the stage (of its pipeline) now: per "
                                  "rule the condition with its values, the due time, the rendered params and the "
                                  "effect in words. Reads only: nothing is written or sent.")
    async def dry_run(self, info: Info, element_id: strawberry.ID, stage_id: strawberry.ID) -> DryRunResult:
        actor = actor_of(info)

        async def work() -> Any:
            return await dry_run_service.dry_run(to_int(element_id, "element_id"), to_int(stage_id, "stage_id"),
                                                 actor=actor)

        return await result_of(work, DryRun.of)

    @strawberry.field(description="Why each rule of the element ran, was skipped, cancelled, failed, stopped or "
                                  "waits, and which trigger moved it, in sentences.")
    async def explain(self, info: Info, element_type: str, element_id: strawberry.ID) -> ExplainResult:
        actor = actor_of(info)

        async def work() -> Any:
            return await explain_service.explain(element_type, to_int(element_id, "element_id"), actor=actor)

        return await result_of(work, Explanation.of)
