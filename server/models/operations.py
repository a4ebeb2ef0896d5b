"""Heartbeats of the processes that do the work: each worker process and each scheduler writes its row every
few seconds, so /health and the operations page can tell a stalled one from a quiet one."""

from tortoise import fields
from tortoise.models import Model


class WorkerBeat(Model):
    """The last sign of life of one process in one role (worker or scheduler). `name` is role, host and
    process id, so a restarted process writes a new row and the old one ages out."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    role = fields.CharField(max_length=20)
    host = fields.CharField(max_length=200)
    pid = fields.IntField()
    started_at = fields.DatetimeField()
    beat_at = fields.DatetimeField()

    class Meta:
        table = "worker_beat"
        indexes = (("role", "beat_at"),)
