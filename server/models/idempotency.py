"""Idempotency keys of the create mutations: a retried create answers what the first one made."""

from tortoise import fields
from tortoise.models import Model


class IdempotencyKey(Model):
    """One key a client sent with a create. `scope` is the user and the operation (user 7 createDeal), so two
    users or two operations never share a key. `fingerprint` is a hash of the input, to refuse the same key
    with other input. `result_type` and `result_id` name what the create made (empty while it is being made,
    inside the same transaction)."""

    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=100)
    key = fields.CharField(max_length=200)
    fingerprint = fields.CharField(max_length=64)
    result_type = fields.CharField(max_length=20, default="")
    result_id = fields.IntField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_key"
        unique_together = (("scope", "key"),)
        indexes = (("created_at",),)
