"""Pipelines and their ordered stages, per element type (lead, deal)."""

from tortoise import fields
from tortoise.models import Model

from server.kinds import StageSemantic


class Pipeline(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    entity_type = fields.CharField(max_length=10)  # lead | deal
    position = fields.IntField(default=0)
    is_default = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    stages: fields.ReverseRelation["Stage"]

    class Meta:
        table = "pipeline"
        ordering = ["position", "id"]


class Stage(Model):
    id = fields.IntField(primary_key=True)
    pipeline: fields.ForeignKeyRelation[Pipeline] = fields.ForeignKeyField(
        "models.Pipeline", related_name="stages", on_delete=fields.CASCADE
    )
    pipeline_id: int
    code = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    position = fields.IntField(default=0)
    semantic = fields.CharField(max_length=20, default=StageSemantic.in_progress.value)
    revision = fields.IntField(default=0)  # current revision number of this stage's rules

    class Meta:
        table = "stage"
        ordering = ["position", "id"]
        unique_together = (("pipeline", "code"),)
