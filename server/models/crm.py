"""CRM data the rules act on: people, clients, leads and deals, and what happens to them."""

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from server.errors import ValidationFailed
from server.kinds import ElementType, Role

if TYPE_CHECKING:
    from server.models.pipelines import Pipeline, Stage


class User(Model):
    """An employee. Working hours are `{"days": [0..6 Mon=0], "start": "09:00", "end": "18:00"}`."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254, unique=True)
    role = fields.CharField(max_length=20, default=Role.employee.value)
    supervisor: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name="reports", null=True, on_delete=fields.SET_NULL
    )
    supervisor_id: int | None
    timezone = fields.CharField(max_length=64, default="UTC")
    locale = fields.CharField(max_length=8, null=True)  # the admin's language (en, de); none: the instance default
    working_hours: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    absent = fields.BooleanField(default=False)
    password_hash = fields.CharField(max_length=255, null=True)
    totp_secret = fields.CharField(max_length=64, null=True)
    totp_confirmed = fields.BooleanField(default=False, db_default=False)
    totp_last_step = fields.BigIntField(null=True)  # the last accepted TOTP time step: a code is used once
    calendar_token = fields.CharField(max_length=64, null=True, unique=True)  # secret of the .ics feed URL
    active = fields.BooleanField(default=True, db_default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user"


def default_work_days() -> list[int]:
    return [0, 1, 2, 3, 4]


class WorkCalendar(Model):
    """Working time of the company: one row, used by rules timed only in working time."""

    id = fields.IntField(primary_key=True)
    timezone = fields.CharField(max_length=64, default="UTC")
    work_days: fields.JSONField[list[int]] = fields.JSONField(default=default_work_days)
    day_start = fields.CharField(max_length=5, default="09:00")
    day_end = fields.CharField(max_length=5, default="18:00")
    holidays: fields.JSONField[list[str]] = fields.JSONField(default=list)  # ISO dates

    class Meta:
        table = "work_calendar"


class CustomField(Model):
    """A custom field definition: values live in the `custom` JSON of the element under `code`."""

    id = fields.IntField(primary_key=True)
    entity_type = fields.CharField(max_length=10)  # lead | deal | contact | company
    code = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    type = fields.CharField(max_length=20)  # string text number money date datetime bool select user booking
    options: fields.JSONField[list[Any]] = fields.JSONField(default=list)  # choices for select
    required = fields.BooleanField(default=False)

    class Meta:
        table = "custom_field"
        unique_together = (("entity_type", "code"),)


class Company(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    # [{"value": ..., "type": ...}] first first (server/rules/clients.py checks them): EmailType / PhoneType
    emails: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    phones: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    responsible: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    responsible_id: int | None
    custom: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "company"


class Contact(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    # [{"value": ..., "type": ...}] first first (server/rules/clients.py checks them): EmailType / PhoneType
    emails: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    phones: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    company: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="contacts", null=True, on_delete=fields.SET_NULL
    )
    company_id: int | None
    responsible: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    responsible_id: int | None
    custom: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact"


class Element(Model):
    """What leads and deals share: the fields the engine moves, times and templates."""

    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=255)
    pipeline: fields.ForeignKeyRelation["Pipeline"] = fields.ForeignKeyField(
        "models.Pipeline", related_name=False, on_delete=fields.RESTRICT
    )
    pipeline_id: int
    stage: fields.ForeignKeyRelation["Stage"] = fields.ForeignKeyField(
        "models.Stage", related_name=False, on_delete=fields.RESTRICT
    )
    stage_id: int
    responsible: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    responsible_id: int | None
    company: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    company_id: int | None
    amount = fields.DecimalField(max_digits=18, decimal_places=2, null=True)
    currency = fields.CharField(max_length=3, default="EUR")
    waiting_for_customer = fields.BooleanField(default=False)
    custom: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        abstract = True


class Lead(Element):
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    contact_id: int | None
    source = fields.CharField(max_length=100, default="")
    is_repeat = fields.BooleanField(default=False)
    converted_deal_id = fields.IntField(null=True)  # set by Create from (convert lead)

    class Meta:
        table = "lead"


class Deal(Element):
    close_date = fields.DateField(null=True)

    class Meta:
        table = "deal"


# Runs, timeline, audit and events name an element by (element_type, element_id): the type picks the model.
ELEMENT_MODELS: dict[str, type[Lead] | type[Deal]] = {ElementType.lead: Lead, ElementType.deal: Deal}


def model_for(element_type: str) -> type[Lead] | type[Deal]:
    try:
        return ELEMENT_MODELS[element_type]
    except KeyError:
        raise ValidationFailed.one("element_type", f"'{element_type}' is not lead or deal") from None


class DealContact(Model):
    """Ordered contacts of a deal: the first one is the contact of templates and conditions."""

    id = fields.IntField(primary_key=True)
    deal: fields.ForeignKeyRelation[Deal] = fields.ForeignKeyField(
        "models.Deal", related_name="contact_links", on_delete=fields.CASCADE
    )
    deal_id: int
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name=False, on_delete=fields.CASCADE
    )
    contact_id: int
    position = fields.IntField(default=0)

    class Meta:
        table = "deal_contact"
        unique_together = (("deal", "contact"),)
        ordering = ["position", "id"]


# Rows below point at an element by (element_type, element_id) without a foreign key, so the
# timeline, audit trail and run log survive the element's deletion.


class TimelineEntry(Model):
    id = fields.IntField(primary_key=True)
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    kind = fields.CharField(max_length=20)  # comment | history | automation
    text = fields.TextField()
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    author_id: int | None
    rule_run_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "timeline_entry"
        indexes = (("element_type", "element_id"),)
        ordering = ["id"]


class AuditEntry(Model):
    """Who or what changed an element: one row per changed field (or stage move)."""

    id = fields.IntField(primary_key=True)
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    field = fields.CharField(max_length=100)
    old_value = fields.TextField(null=True)  # JSON text
    new_value = fields.TextField(null=True)
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    actor_id: int | None
    rule_run_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_entry"
        indexes = (("element_type", "element_id"),)
        ordering = ["id"]


class Task(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=255)
    description = fields.TextField(default="")
    creator: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    creator_id: int | None
    responsible: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    responsible_id: int | None
    participants: fields.JSONField[list[int]] = fields.JSONField(default=list)  # user ids
    deadline = fields.DatetimeField(null=True)
    priority = fields.CharField(max_length=10, default="normal")  # low | normal | high
    status = fields.CharField(max_length=20, default="open")  # open | closed
    element_type = fields.CharField(max_length=10, null=True)
    element_id = fields.IntField(null=True)
    rule_run_id = fields.IntField(null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "task"
        indexes = (("element_type", "element_id"),)


class CustomerActivity(Model):
    """Inbound customer activity on an element (email, call, message, form): ends Wait rules."""

    id = fields.IntField(primary_key=True)
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    kind = fields.CharField(max_length=20)  # email | call | message | form
    text = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customer_activity"
        indexes = (("element_type", "element_id"),)
