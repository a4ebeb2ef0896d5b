"""Document templates, their number counters, the documents made from them, and each view of a public link."""

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.crm import User


class DocumentTemplate(Model):
    """HTML with the rules' placeholders, for one entity type, and how its documents are numbered.

    A number is the prefix, the period (year or year-month when the counter resets) and the counter, padded to
    `digits`. The stamp and signature are image files in the file store (their keys here).
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    entity_type = fields.CharField(max_length=10, default="deal")
    body = fields.TextField()
    prefix = fields.CharField(max_length=40, default="")
    counter = fields.CharField(max_length=12, default="continuous")  # continuous | yearly | monthly
    digits = fields.IntField(default=3)
    stamp_key = fields.CharField(max_length=200, null=True)
    signature_key = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "document_template"
        ordering = ["name", "id"]


class DocumentCounter(Model):
    """The next number of a template in one period (the empty key for a continuous counter)."""

    id = fields.IntField(primary_key=True)
    template: fields.ForeignKeyRelation[DocumentTemplate] = fields.ForeignKeyField(
        "models.DocumentTemplate", related_name="counters", on_delete=fields.CASCADE
    )
    template_id: int
    period = fields.CharField(max_length=7, default="")
    next_value = fields.IntField(default=1)

    class Meta:
        table = "document_counter"
        unique_together = (("template_id", "period"),)


class Document(Model):
    """One numbered document of an element: its HTML at once, its PDF made by a worker (`pdf_status`).

    The PDF step is durable like a message's delivery: pending with a due time and a lease, attempts counted.
    `token` is the secret of the public link (revoked: the link answers 404).
    """

    id = fields.IntField(primary_key=True)
    template: fields.ForeignKeyNullableRelation[DocumentTemplate] = fields.ForeignKeyField(
        "models.DocumentTemplate", related_name="documents", null=True, on_delete=fields.SET_NULL
    )
    template_id: int | None
    element_type = fields.CharField(max_length=10)
    element_id = fields.IntField()
    title = fields.CharField(max_length=200, default="")
    number = fields.CharField(max_length=80)
    html = fields.TextField()
    pdf_key = fields.CharField(max_length=200, null=True)
    pdf_status = fields.CharField(max_length=10, default="pending")  # pending | rendering | ready | failed
    pdf_error = fields.TextField(null=True)
    pdf_attempts = fields.IntField(default=0)
    pdf_due_at = fields.DatetimeField(null=True)
    pdf_lease_until = fields.DatetimeField(null=True)
    pdf_ms = fields.IntField(null=True)
    token = fields.CharField(max_length=64, unique=True)
    revoked_at = fields.DatetimeField(null=True)
    rule_run_id = fields.IntField(null=True, unique=True)
    created_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "document"
        indexes = (("element_type", "element_id"), ("pdf_status", "pdf_due_at"), ("pdf_status", "pdf_lease_until"))
        ordering = ["-id"]


class DocumentView(Model):
    """Someone opened a document's public link."""

    id = fields.IntField(primary_key=True)
    document: fields.ForeignKeyRelation[Document] = fields.ForeignKeyField(
        "models.Document", related_name="views", on_delete=fields.CASCADE
    )
    document_id: int
    at = fields.DatetimeField(auto_now_add=True)
    ip = fields.CharField(max_length=64, default="")
    agent = fields.CharField(max_length=300, default="")

    class Meta:
        table = "document_view"
        ordering = ["id"]
