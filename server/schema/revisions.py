"""Revisions, re-runs, backfills and pausing in GraphQL: a stage's history with diffs and rollback, re-running
failed runs (counted first), applying a rule to the elements already in its stage, pausing a rule.
services/revisions.py and services/reruns.py decide; all of it is for admins."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from server import models
from server.rules import revisions
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, opt_gid, to_int
from server.schema.types import Rule, RuleRun, jsonable
from server.services import reruns as rerun_service
from server.services import revisions as revision_service
from server.services.paging import MAX_PAGE

Refusals = ValidationError | NotFoundError | ForbiddenError


@strawberry.type(description="A stage's rules and triggers after one change: who made it, when, and what.")
class StageRevision:
    number: int
    note: str
    author_id: strawberry.ID | None
    author_name: str | None
    created_at: datetime
    rules: JSON
    triggers: JSON | None = strawberry.field(description="None for revisions made before triggers were kept.")

    @classmethod
    def of(cls, row: models.StageRevision, names: dict[int, str]) -> "StageRevision":
        return cls(number=row.number, note=row.note, author_id=opt_gid(row.author_id),
                   author_name=names.get(row.author_id) if row.author_id is not None else None,
                   created_at=row.created_at, rules=jsonable(row.rules),
                   triggers=jsonable(row.triggers) if row.triggers is not None else None)


@strawberry.type
class StageRevisions:
    stage_id: strawberry.ID
    revisions: list[StageRevision]


@strawberry.type(description="One field that differs; params and settings are compared key by key (`params.text`).")
class FieldChange:
    field: str
    old: JSON | None
    new: JSON | None


@strawberry.type
class ItemChange:
    id: strawberry.ID
    name: str
    changes: list[FieldChange]


@strawberry.type(description="Rules (or triggers) added, removed, and changed field by field.")
class PartDiff:
    added: list[JSON]
    removed: list[JSON]
    changed: list[ItemChange]

    @classmethod
    def of(cls, part: revisions.Part) -> "PartDiff":
        return cls(added=[jsonable(a) for a in part.added], removed=[jsonable(r) for r in part.removed],
                   changed=[ItemChange(id=gid(c.id), name=c.name, changes=[
                       FieldChange(field=f.name, old=jsonable(f.old), new=jsonable(f.new)) for f in c.changes])
                       for c in part.changed])


@strawberry.type
class StageRevisionDiff:
    older: int
    newer: int
    rules: PartDiff
    triggers: PartDiff
    triggers_known: bool = strawberry.field(description="False when a revision predates triggers in revisions.")

    @classmethod
    def of(cls, diff: revisions.Diff) -> "StageRevisionDiff":
        return cls(older=diff.older, newer=diff.newer, rules=PartDiff.of(diff.rules),
                   triggers=PartDiff.of(diff.triggers), triggers_known=diff.triggers_known)


@strawberry.type(description="How many runs a re-run or backfill covers; once confirmed, when the first and last "
                             "batch are due.")
class RerunPlan:
    count: int
    scheduled: bool
    first_due_at: datetime | None
    last_due_at: datetime | None

    @classmethod
    def of(cls, plan: rerun_service.Plan) -> "RerunPlan":
        return cls(count=plan.count, scheduled=plan.scheduled, first_due_at=plan.first_due_at,
                   last_due_at=plan.last_due_at)


@strawberry.input(description="Which failed runs: finished in [failedAfter, failedBefore), error text containing "
                              "`errorContains` (any case).")
class FailedRunFilter:
    failed_after: datetime | None = None
    failed_before: datetime | None = None
    error_contains: str | None = None


StageRevisionsLookup = Annotated[StageRevisions | Refusals, strawberry.union("StageRevisionsLookup")]
StageRevisionDiffLookup = Annotated[StageRevisionDiff | Refusals, strawberry.union("StageRevisionDiffLookup")]
RollbackResult = Annotated[StageRevision | Refusals, strawberry.union("RollbackResult")]
RerunRunResult = Annotated[RuleRun | Refusals, strawberry.union("RerunRunResult")]
RerunPlanResult = Annotated[RerunPlan | Refusals, strawberry.union("RerunPlanResult")]
PauseResult = Annotated[Rule | Refusals, strawberry.union("PauseResult")]


async def _with_names(rows: list[models.StageRevision]) -> tuple[list[models.StageRevision], dict[int, str]]:
    return rows, await revision_service.authors(rows)


@strawberry.type
class RevisionQuery:
    @strawberry.field(description=f"Admins only: a stage's revisions, newest first: at most `first` (up to "
                                  f"{MAX_PAGE}), older than revision `before` for the next page.")
    async def stage_revisions(self, info: Info, stage_id: strawberry.ID, first: int = MAX_PAGE,
                              before: int | None = None) -> StageRevisionsLookup:
        actor = actor_of(info)
        stage = to_int(stage_id, "stage_id")

        async def load() -> StageRevisions:
            rows, names = await _with_names(await revision_service.stage_revisions(
                stage, actor=actor, first=first, before=before))
            return StageRevisions(stage_id=gid(stage), revisions=[StageRevision.of(r, names) for r in rows])

        return await result_of(load)

    @strawberry.field(description="Admins only: what changed from revision `from` to revision `to`.")
    async def stage_revision_diff(self, info: Info, stage_id: strawberry.ID,
                                  from_: Annotated[int, strawberry.argument(name="from")],
                                  to: int) -> StageRevisionDiffLookup:
        actor = actor_of(info)
        stage = to_int(stage_id, "stage_id")
        return await result_of(lambda: revision_service.revision_diff(stage, from_, to, actor=actor),
                               StageRevisionDiff.of)


@strawberry.type
class RevisionMutation:
    @strawberry.mutation(description="Admins only. A new revision equal to `toRevision`: its rules and triggers "
                                     "come back. Runs already made keep the revision they pinned.")
    async def rollback_stage(self, info: Info, stage_id: strawberry.ID, to_revision: int) -> RollbackResult:
        actor = actor_of(info)
        stage = to_int(stage_id, "stage_id")

        async def roll() -> StageRevision:
            row = await revision_service.rollback_stage(stage, to_revision, actor=actor)
            return StageRevision.of(row, await revision_service.authors([row]))

        return await result_of(roll)

    @strawberry.mutation(description="Admins only. A new run of a failed run's rule for the same stay, as the "
                                     "rule is now; a failed run is re-run once.")
    async def rerun_run(self, info: Info, run_id: strawberry.ID) -> RerunRunResult:
        actor = actor_of(info)
        run = to_int(run_id, "run_id")
        return await result_of(lambda: rerun_service.rerun_run(run, actor=actor), RuleRun.of)

    @strawberry.mutation(description="Admins only. With `confirm: false` the count of the rule's failed runs the "
                                     "filter names; with `confirm: true` (and the count seen as `expectedCount`) "
                                     "they are re-run, made due in batches behind live work.")
    async def rerun_failed_runs(self, info: Info, rule_id: strawberry.ID, filter: FailedRunFilter | None = None,
                                confirm: bool = False, expected_count: int | None = None) -> RerunPlanResult:
        actor = actor_of(info)
        rule = to_int(rule_id, "rule_id")
        where = filter or FailedRunFilter()
        return await result_of(lambda: rerun_service.rerun_failed_runs(
            rule, rerun_service.FailedFilter(where.failed_after, where.failed_before, where.error_contains),
            confirm=confirm, expected=expected_count, actor=actor), RerunPlan.of)

    @strawberry.mutation(description="Admins only. With `confirm: false` the count of elements in the rule's stage "
                                     "it has not run for; with `confirm: true` it runs for each, in batches.")
    async def backfill_rule(self, info: Info, rule_id: strawberry.ID, confirm: bool = False,
                            expected_count: int | None = None) -> RerunPlanResult:
        actor = actor_of(info)
        rule = to_int(rule_id, "rule_id")
        return await result_of(lambda: rerun_service.backfill_rule(
            rule, confirm=confirm, expected=expected_count, actor=actor), RerunPlan.of)

    @strawberry.mutation(description="Admins only. Its runs that fall due wait, with the reason shown.")
    async def pause_rule(self, info: Info, rule_id: strawberry.ID) -> PauseResult:
        actor = actor_of(info)
        rule = to_int(rule_id, "rule_id")
        return await result_of(lambda: rerun_service.pause_rule(rule, actor=actor), Rule.of)

    @strawberry.mutation(description="Admins only. The runs that waited go now.")
    async def resume_rule(self, info: Info, rule_id: strawberry.ID) -> PauseResult:
        actor = actor_of(info)
        rule = to_int(rule_id, "rule_id")
        return await result_of(lambda: rerun_service.resume_rule(rule, actor=actor), Rule.of)


