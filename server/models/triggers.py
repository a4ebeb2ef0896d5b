"""Triggers on stages, and the record of every time an event was matched against them."""

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.crm import User
    from server.models.pipelines import Stage


class Trigger(Model):
    """When its event happens to an element of the pipeline, the element moves into `stage` (whose rules start).

    `token` is the secret part of an inbound webhook trigger's URL (other types have none).
    """

    id = fields.IntField(primary_key=True)
    stage: fields.ForeignKeyRelation["Stage"] = fields.ForeignKeyField(
        "models.Stage", related_name="triggers", on_delete=fields.CASCADE
    )
    stage_id: int
    name = fields.CharField(max_length=200)
    trigger_type = fields.CharField(max_length=64)
    settings: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    # OR of AND groups, as a rule's condition: on the element and on `event.<name>`.
    condition: fields.JSONField[list[list[dict[str, Any]]]] = fields.JSONField(default=list)
    allow_back = fields.BooleanField(default=False)
    run_as: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    run_as_id: int | None
    position = fields.IntField(default=0)
    enabled = fields.BooleanField(default=True)
    token = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "trigger"
        ordering = ["position", "id"]


class TriggerActivation(Model):
    """One event matched against the triggers of one element's pipeline: which fired (if any), and for each
    candidate why it did or did not, in words (for the element's explain view)."""

    id = fields.IntField(primary_key=True)
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    event = fields.CharField(max_length=40)
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    trigger_id = fields.IntField(null=True)  # the one that fired
    from_stage_id = fields.IntField(null=True)
    to_stage_id = fields.IntField(null=True)
    outcome = fields.CharField(max_length=20)  # moved | no_match | stopped
    reason = fields.TextField(default="")
    evaluations: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    idempotency_key = fields.CharField(max_length=220, null=True, unique=True)  # <trigger id>:<the caller's key>
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "trigger_activation"
        indexes = (("element_type", "element_id"),)
