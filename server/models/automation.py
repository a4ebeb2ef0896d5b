"""Automation: rules on stages, their revisions, and the durable record of every run."""

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from server.kinds import Lane, RunStatus, StageRunStatus

if TYPE_CHECKING:
    from server.models.crm import User
    from server.models.pipelines import Stage


class Rule(Model):
    """One automation rule of a stage. `key` names it in templates: `{{rules.<key>.code}}`."""

    id = fields.IntField(primary_key=True)
    stage: fields.ForeignKeyRelation["Stage"] = fields.ForeignKeyField(
        "models.Stage", related_name="rules", on_delete=fields.CASCADE
    )
    stage_id: int
    key = fields.CharField(max_length=64)
    title = fields.CharField(max_length=255)
    position = fields.IntField(default=0)
    lane = fields.CharField(max_length=20, default=Lane.parallel.value)
    action_type = fields.CharField(max_length=64)
    params: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    # OR of AND groups: [[{field, op, value}, ...], ...]
    condition: fields.JSONField[list[list[dict[str, Any]]]] = fields.JSONField(default=list)
    timing: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    run_as: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    run_as_id: int | None
    enabled = fields.BooleanField(default=True)
    stop_lane_on_failure = fields.BooleanField(default=False)
    # Paused: its runs that fall due wait (not claimed) until it is resumed. Not part of a revision.
    paused_at = fields.DatetimeField(null=True)
    paused_by_id = fields.IntField(null=True)
    pause_reason = fields.TextField(null=True)
    resumed_at = fields.DatetimeField(null=True)  # failures in a row are counted from here
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "rule"
        ordering = ["position", "id"]
        unique_together = (("stage", "key"),)


class StageRevision(Model):
    """A snapshot of the rules and triggers of a stage after each change, pinned by stage runs."""

    id = fields.IntField(primary_key=True)
    stage: fields.ForeignKeyRelation["Stage"] = fields.ForeignKeyField(
        "models.Stage", related_name="revisions", on_delete=fields.CASCADE
    )
    stage_id: int
    number = fields.IntField()
    rules: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    # None in revisions made before triggers were part of them (a rollback to one leaves triggers alone).
    triggers: fields.JSONField[list[dict[str, Any]] | None] = fields.JSONField(null=True)
    note = fields.CharField(max_length=255, default="", db_default="")  # what changed, in words
    author_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stage_revision"
        unique_together = (("stage", "number"),)


class StageRun(Model):
    """One stay of an element in a stage. `chain_id`/`depth` trace automatic moves for the loop guard."""

    id = fields.IntField(primary_key=True)
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    stage: fields.ForeignKeyRelation["Stage"] = fields.ForeignKeyField(
        "models.Stage", related_name=False, on_delete=fields.CASCADE
    )
    stage_id: int
    revision = fields.IntField(default=0)
    status = fields.CharField(max_length=20, default=StageRunStatus.active.value)
    chain_id = fields.CharField(max_length=36)
    depth = fields.IntField(default=0)
    cause = fields.CharField(max_length=255, default="")
    actor_id = fields.IntField(null=True)
    caused_by_rule_run_id = fields.IntField(null=True)
    entered_at = fields.DatetimeField(auto_now_add=True)
    left_at = fields.DatetimeField(null=True)

    class Meta:
        table = "stage_run"
        indexes = (("element_type", "element_id"), ("chain_id",))


class RuleRun(Model):
    """The durable record of one rule for one stage run. Status changes are compare-and-set."""

    id = fields.IntField(primary_key=True)
    stage_run: fields.ForeignKeyRelation[StageRun] = fields.ForeignKeyField(
        "models.StageRun", related_name="rule_runs", on_delete=fields.CASCADE
    )
    stage_run_id: int
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    rule_id = fields.IntField()
    rule_key = fields.CharField(max_length=64)
    action_type = fields.CharField(max_length=64)
    title = fields.CharField(max_length=255)
    position = fields.IntField(default=0)
    lane = fields.IntField(default=0)
    after_run_id = fields.IntField(null=True)  # the run this one waits for (after previous)
    spec: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)  # the rule as it was in the pinned revision
    status = fields.CharField(max_length=20, default=RunStatus.scheduled.value)
    due_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    lease_until = fields.DatetimeField(null=True)
    waiting_since = fields.DatetimeField(null=True)
    outputs: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    error = fields.TextField(null=True)
    reason = fields.TextField(null=True)
    revision = fields.IntField(null=True)  # a re-run or backfill run's revision (None: its stage run's)
    rerun_as_id = fields.IntField(null=True)  # a failed run re-run: the new run (each failed run once)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "rule_run"
        indexes = (
            ("status", "due_at", "id"),  # the claim, one status at a time: due runs in order, no sort
            ("element_type", "element_id"), ("status", "lease_until"),
            ("stage_run_id", "status"), ("after_run_id",),
            ("status", "finished_at"),  # the operations figures: runs finished (or failed) in the last minute, hour, day
        )
        ordering = ["position", "id"]
