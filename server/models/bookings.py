"""Bookable resources (employees and things), the services they are booked for, and bookings.

Two active bookings of one resource never overlap: on PostgreSQL an exclusion constraint (migration 0008), on
SQLite the check inside the serialised write transaction (rules/bookings.py).
"""

from tortoise import fields
from tortoise.models import Model

from server.models.crm import User


class Resource(Model):
    """Something booked by the hour: an employee (then `user` is set) or a thing such as a room or a car."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    kind = fields.CharField(max_length=10)  # ResourceKind: employee | thing
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    user_id: int | None
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "resource"


class Service(Model):
    """What a resource is booked for (a consultation, a test drive), with its usual length."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    duration_minutes = fields.IntField(default=60)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "service"


class Booking(Model):
    """A resource booked for an element over [start_at, end_at) under the booking field `field` of the element.
    A rule run books each resource once (rule_run_id with resource_id is unique)."""

    id = fields.IntField(primary_key=True)
    resource: fields.ForeignKeyRelation[Resource] = fields.ForeignKeyField(
        "models.Resource", related_name="bookings", on_delete=fields.CASCADE
    )
    resource_id: int
    service: fields.ForeignKeyNullableRelation[Service] = fields.ForeignKeyField(
        "models.Service", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    service_id: int | None
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    field = fields.CharField(max_length=64)
    start_at = fields.DatetimeField()
    end_at = fields.DatetimeField()
    status = fields.CharField(max_length=10, default="active")  # BookingStatus: active | cancelled
    rule_run_id = fields.IntField(null=True)
    created_by_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    cancelled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "booking"
        indexes = (("element_type", "element_id", "field"), ("resource_id", "start_at"))
        unique_together = (("rule_run_id", "resource_id"),)
