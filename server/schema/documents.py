"""Documents in GraphQL: document templates (admins write them; placeholders checked like a rule's), a preview
against a deal, the documents of an element with their public link and PDF, and revoking a link.
services/documents.py decides who may do what."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from server import models
from server.config import settings
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import gid, to_int
from server.services import documents as document_service
from server.services.paging import page_size


@strawberry.type
class DocumentTemplate:
    id: strawberry.ID
    name: str
    entity_type: str
    body: str = strawberry.field(description="HTML with the rules' placeholders ({{deal.title}}), {{own.name}} "
                                             "and the other company details, {{document.number}}, "
                                             "{{document.date}}, {{document.stamp}} and {{document.signature}}.")
    prefix: str
    counter: str = strawberry.field(description="continuous, yearly or monthly (the number starts again at 1)")
    digits: int
    has_stamp: bool
    has_signature: bool
    updated_at: datetime

    @classmethod
    def of(cls, row: models.DocumentTemplate) -> "DocumentTemplate":
        return cls(id=gid(row.id), name=row.name, entity_type=row.entity_type, body=row.body, prefix=row.prefix,
                   counter=row.counter, digits=row.digits, has_stamp=bool(row.stamp_key),
                   has_signature=bool(row.signature_key), updated_at=row.updated_at)


@strawberry.type
class Document:
    id: strawberry.ID
    number: str
    title: str
    element_type: str
    element_id: strawberry.ID
    template_id: strawberry.ID | None
    pdf_status: str = strawberry.field(description="pending, rendering, ready or failed")
    pdf_error: str | None
    public_link: str | None = strawberry.field(description="Anyone with it sees the document; null once revoked.")
    pdf_url: str | None = strawberry.field(description="The PDF, for a signed-in admin or manager or the element's "
                                                       "responsible; null until it is ready.")
    revoked_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: models.Document) -> "Document":
        base = settings().public_url.rstrip("/")
        return cls(id=gid(row.id), number=row.number, title=row.title, element_type=row.element_type,
                   element_id=gid(row.element_id), template_id=gid(row.template_id) if row.template_id else None,
                   pdf_status=row.pdf_status, pdf_error=row.pdf_error,
                   public_link=None if row.revoked_at else document_service.link_of(row),
                   pdf_url=f"{base}/admin/documents/{row.id}.pdf" if row.pdf_status == "ready" else None,
                   revoked_at=row.revoked_at, created_at=row.created_at)


@strawberry.type
class DocumentPreview:
    html: str


@strawberry.input
class DocumentTemplateInput:
    """Fields left out keep their value on update."""

    name: str | None = None
    entity_type: str | None = None
    body: str | None = None
    prefix: str | None = None
    counter: str | None = None
    digits: int | None = None

    def to_service(self) -> document_service.TemplateInput:
        return document_service.TemplateInput(name=self.name, entity_type=self.entity_type, body=self.body,
                                              prefix=self.prefix, counter=self.counter, digits=self.digits)


Refusals = ValidationError | NotFoundError | ForbiddenError
DocumentTemplateResult = Annotated[DocumentTemplate | Refusals, strawberry.union("DocumentTemplateResult")]
DocumentResult = Annotated[Document | Refusals, strawberry.union("DocumentResult")]
PreviewResult = Annotated[DocumentPreview | Refusals, strawberry.union("DocumentPreviewResult")]


@strawberry.type
class DocumentQuery:
    @strawberry.field(description="The document templates by name, the first `first` (at most 100).")
    async def document_templates(self, info: Info, first: int = 50) -> list[DocumentTemplate]:
        rows = await document_service.list_templates(actor=actor_of(info), limit=page_size(first))
        return [DocumentTemplate.of(t) for t in rows]

    @strawberry.field(description="The documents of a lead or deal, newest first: the first `first` (at most 100).")
    async def documents(self, info: Info, element_type: str, element_id: strawberry.ID,
                        first: int = 50) -> list[Document]:
        rows = await document_service.element_documents(element_type, to_int(element_id, "element_id"),
                                                        actor=actor_of(info), limit=page_size(first))
        return [Document.of(r) for r in rows]

    @strawberry.field(description="The HTML a document from the template (or from `body`, as typed) would have "
                                  "for the deal now, with the next number; nothing is saved or numbered.")
    async def preview_document(self, info: Info, deal_id: strawberry.ID, template_id: strawberry.ID | None = None,
                               body: str | None = None) -> PreviewResult:
        actor = actor_of(info)

        async def preview() -> DocumentPreview:
            template = (await document_service.get_template(to_int(template_id, "template_id"), actor=actor)
                        if template_id is not None else None)
            text = body if body is not None else template.body if template else ""
            return DocumentPreview(html=await document_service.preview(
                body=text, entity_type="deal", element_id=to_int(deal_id, "deal_id"),
                template_id=template.id if template else None, actor=actor))

        return await result_of(preview)


@strawberry.type
class DocumentMutation:
    @strawberry.mutation(description="Admins only. Unknown placeholders are refused, with a did-you-mean.")
    async def create_document_template(self, info: Info, input: DocumentTemplateInput) -> DocumentTemplateResult:
        actor = actor_of(info)
        return await result_of(lambda: document_service.save_template(input.to_service(), actor=actor),
                               DocumentTemplate.of)

    @strawberry.mutation(description="Admins only. Documents already made keep their HTML and number.")
    async def update_document_template(self, info: Info, id: strawberry.ID,
                                       input: DocumentTemplateInput) -> DocumentTemplateResult:
        actor = actor_of(info)
        return await result_of(lambda: document_service.save_template(
            input.to_service(), template_id=to_int(id, "id"), actor=actor), DocumentTemplate.of)

    @strawberry.mutation(description="A numbered document of the element from the template, by whoever may work "
                                     "on the element; its PDF is made by a worker (`pdfStatus`).")
    async def create_document(self, info: Info, template_id: strawberry.ID, element_type: str,
                              element_id: strawberry.ID) -> DocumentResult:
        actor = actor_of(info)
        return await result_of(lambda: document_service.create_document(
            to_int(template_id, "template_id"), element_type, to_int(element_id, "element_id"), actor=actor),
            Document.of)

    @strawberry.mutation(description="The public link answers 404 from now on; the document stays on the element.")
    async def revoke_document(self, info: Info, id: strawberry.ID) -> DocumentResult:
        actor = actor_of(info)
        return await result_of(lambda: document_service.revoke(to_int(id, "id"), actor=actor), Document.of)
