"""Document templates (saved with their placeholders checked like a rule's), previews against an element, the
documents of an element, revoking a public link, and a view of it (recorded, on the timeline, an event)."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from server import clock, files
from server.db import transaction
from server.errors import FieldError, NotFound, ValidationFailed
from server.models import Document, DocumentTemplate, DocumentView, model_for
from server.rules import documents, elements, engine, pdf, templates
from server.rules.actions.create_document import public_link
from server.rules.triggering import Event, Occurrence
from server.rules.triggers.base import DOCUMENT_VIEWED
from server.services.access import Acting, require_admin, require_element
from server.services.elements import require_visible
from server.services.paging import MAX_PAGE

ENTITY_TYPES = ("deal", "lead")
COUNTERS = documents.COUNTERS
MAX_IMAGE_BYTES = 2_000_000
IMAGE_TYPES = {b"\x89PNG": "png", b"\xff\xd8": "jpg"}
VIEW_AGAIN_S = 600  # a view from the same address and browser within this is the same view


@dataclass
class TemplateInput:
    """A document template as a client submits it; fields left None keep their value on update."""

    name: str | None = None
    entity_type: str | None = None
    body: str | None = None
    prefix: str | None = None
    counter: str | None = None
    digits: int | None = None
    stamp: bytes | None = None  # a PNG or JPEG; b"" removes it
    signature: bytes | None = None


async def list_templates(*, actor: Acting, limit: int = MAX_PAGE) -> list[DocumentTemplate]:
    return await DocumentTemplate.all().order_by("name", "id").limit(limit)


async def get_template(template_id: int, *, actor: Acting) -> DocumentTemplate:
    template = await DocumentTemplate.get_or_none(id=template_id)
    if template is None:
        raise NotFound("document template", template_id)
    return template


async def _validated(values: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    name = (values.get("name") or "").strip()
    if not name:
        errors.append(FieldError("name", "give the template a name"))
    elif len(name) > 200:
        errors.append(FieldError("name", "must be at most 200 characters"))
    if values["entity_type"] not in ENTITY_TYPES:
        errors.append(FieldError("entity_type", "must be 'deal' or 'lead'"))
    if values["counter"] not in documents.COUNTERS:
        errors.append(FieldError("counter", f"must be one of: {', '.join(documents.COUNTERS)}"))
    if not isinstance(values["digits"], int) or not 1 <= values["digits"] <= 9:
        errors.append(FieldError("digits", "must be between 1 and 9"))
    if len(values.get("prefix") or "") > 40:
        errors.append(FieldError("prefix", "must be at most 40 characters"))
    body = values.get("body") or ""
    if not body.strip():
        errors.append(FieldError("body", "write the document's HTML"))
    elif values["entity_type"] in ENTITY_TYPES:
        try:
            problems = templates.unknown_names(body, await documents.names(values["entity_type"]))
        except ValueError as exc:
            problems = [str(exc)]
        if problems:
            errors.append(FieldError("body", "; ".join(problems)))
    for name in documents.ASSETS:
        image = values.get(name)
        if image and (len(image) > MAX_IMAGE_BYTES or not any(image.startswith(m) for m in IMAGE_TYPES)):
            errors.append(FieldError(name, f"must be a PNG or JPEG image of at most {MAX_IMAGE_BYTES // 1_000_000} MB"))
    return errors


async def save_template(data: TemplateInput, *, template_id: int | None = None, actor: Acting) -> DocumentTemplate:
    """Create (no `template_id`) or update a template; ValidationFailed naming each bad field."""
    require_admin(actor)
    template = await get_template(template_id, actor=actor) if template_id is not None else None
    current = {"name": "", "entity_type": "deal", "body": "", "prefix": "", "counter": "continuous", "digits": 3}
    if template is not None:
        current = {k: getattr(template, k) for k in current}
    values = {**current, **{k: v for k, v in vars(data).items() if v is not None}}
    errors = await _validated(values)
    if errors:
        raise ValidationFailed(errors)
    images = {name: values.pop(name, None) for name in documents.ASSETS}
    async with transaction():
        if template is None:
            template = await DocumentTemplate.create(**values)
        else:
            template.update_from_dict(values)
            await template.save()
        for name, image in images.items():
            if image is None:
                continue
            key = None
            if image:
                key = f"templates/{template.id}/{name}.{next(e for m, e in IMAGE_TYPES.items() if image.startswith(m))}"
                await files.store().put(key, image)
            setattr(template, f"{name}_key", key)
        await template.save()
    return template


async def delete_template(template_id: int, *, actor: Acting) -> None:
    require_admin(actor)
    template = await get_template(template_id, actor=actor)
    await template.delete()  # its documents keep their number and HTML (template set to null)


async def preview(*, body: str, entity_type: str, element_id: int, template_id: int | None = None,
                  actor: Acting) -> str:
    """The HTML a document of `body` would have for the element now (the next number, nothing taken).
    ValidationFailed for a template that does not render (naming the placeholder)."""
    element = await elements.load(entity_type, element_id)
    require_element(actor, element)
    template = await DocumentTemplate.get_or_none(id=template_id) if template_id else None
    number = await documents.peek_number(template) if template else "PREVIEW"
    try:
        problems = templates.unknown_names(body, await documents.names(entity_type))
    except ValueError as exc:
        problems = [str(exc)]
    if problems:
        raise ValidationFailed([FieldError("body", "; ".join(problems))])
    context = documents.document_context(await documents.element_context(entity_type, element), entity_type,
                                         number=number, at=clock.utcnow())
    try:
        return await templates.render_async(body, context)
    except Exception as exc:  # an ActionError naming the empty placeholder
        raise ValidationFailed([FieldError("body", str(exc))]) from exc


async def create_document(template_id: int, element_type: str, element_id: int, *, actor: Acting) -> Document:
    """A document made by hand from a template (the same numbering and PDF step as the action's)."""
    template = await get_template(template_id, actor=actor)
    if template.entity_type != element_type:
        raise ValidationFailed([FieldError("template", f"“{template.name}” is a template for {template.entity_type}s")])
    async with transaction():
        element = await elements.load(element_type, element_id, lock=True)
        require_element(actor, element)
        document = await documents.create(template, element_type, element,
                                          await documents.element_context(element_type, element),
                                          created_by_id=actor.user_id)
        await elements.add_timeline_entry(element_type, element_id, "history",
                                          f"Document {document.number} ({template.name}) created",
                                          author_id=actor.user_id)
    return document


async def element_documents(element_type: str, element_id: int, *, actor: Acting,
                            limit: int = MAX_PAGE) -> list[Document]:
    """The element's documents, newest first."""
    model_for(element_type)
    await require_visible(actor, element_type, element_id)
    return await Document.filter(element_type=element_type, element_id=element_id).order_by("-id").limit(limit)


async def get_document(document_id: int, *, actor: Acting) -> Document:
    document = await Document.get_or_none(id=document_id)
    if document is None:
        raise NotFound("document", document_id)
    await require_visible(actor, document.element_type, document.element_id)
    return document


async def revoke(document_id: int, *, actor: Acting) -> Document:
    """The public link answers 404 from now on (the document stays on the element)."""
    document = await get_document(document_id, actor=actor)
    if document.revoked_at is None:
        async with transaction():
            document.revoked_at = clock.utcnow()
            await document.save(update_fields=["revoked_at"])
            await elements.add_timeline_entry(document.element_type, document.element_id, "history",
                                              f"Public link of document {document.number} revoked",
                                              author_id=actor.user_id)
    return document


async def pdf_of(document: Document) -> bytes | None:
    """The PDF's bytes, None while it is not made (or could not be)."""
    if document.pdf_status != "ready" or not document.pdf_key:
        return None
    try:
        return await files.store().get(document.pdf_key)
    except FileNotFoundError:
        return None


def link_of(document: Document) -> str:
    return public_link(document)


def pdf_unavailable() -> str | None:
    """Why this machine cannot make PDFs (WeasyPrint's libraries missing), for the admin; None when it can."""
    return pdf.unavailable_reason()


# ---------------------------------------------------------------- the public link


async def public_document(token: str) -> Document | None:
    """The document of a public link; None for an unknown or revoked one (the answer is the same 404)."""
    if not token or len(token) > 64:
        return None
    document = await Document.get_or_none(token=token)
    return None if document is None or document.revoked_at is not None else document


async def asset_of(document: Document, name: str) -> bytes | None:
    """The stamp or signature image a document's page shows (its template's), None when there is none."""
    if name not in documents.ASSETS or document.template_id is None:
        return None
    template = await DocumentTemplate.get_or_none(id=document.template_id)
    key = getattr(template, f"{name}_key", None) if template else None
    if not key:
        return None
    try:
        return await files.store().get(key)
    except FileNotFoundError:
        return None


def image_type(data: bytes) -> str:
    return next((f"image/{'jpeg' if e == 'jpg' else e}" for m, e in IMAGE_TYPES.items() if data.startswith(m)),
                "application/octet-stream")


async def record_view(document: Document, *, ip: str, agent: str) -> bool:
    """Someone opened the public link: a view, an entry on the element's timeline, the "document viewed" event.

    A reader reloading the page (the same address and browser within VIEW_AGAIN_S) is one view: an anonymous
    link must not let anyone fill a timeline or fire triggers in a loop. False when it was not recorded."""
    since = clock.utcnow() - timedelta(seconds=VIEW_AGAIN_S)
    if await DocumentView.filter(document_id=document.id, ip=ip[:64], agent=agent[:300], at__gte=since).exists():
        return False
    async with transaction():
        await DocumentView.create(document_id=document.id, ip=ip[:64], agent=agent[:300])
        await elements.add_timeline_entry(document.element_type, document.element_id, "history",
                                          f"Document {document.number} viewed", author_id=None)
        await engine.fire_triggers(Occurrence(
            Event(DOCUMENT_VIEWED, {"document_id": document.id, "number": document.number}),
            element_type=document.element_type, element_id=document.element_id))
    return True
