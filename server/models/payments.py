"""Payments recorded against leads and deals (by a person, an integration or the payments webhook)."""

from tortoise import fields
from tortoise.models import Model


class Payment(Model):
    """A payment received for an element. `idempotency_key` makes a retried report the same payment."""

    id = fields.IntField(primary_key=True)
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    amount = fields.DecimalField(max_digits=18, decimal_places=2)
    currency = fields.CharField(max_length=3)
    reference = fields.CharField(max_length=200, default="")
    idempotency_key = fields.CharField(max_length=200, null=True, unique=True)
    recorded_by_id = fields.IntField(null=True)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payment"
        indexes = (("element_type", "element_id"),)
