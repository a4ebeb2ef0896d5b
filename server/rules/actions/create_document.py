"""Create CRM document: a numbered document of the element from a template; its PDF is made by a worker, and
the lane may wait until it exists."""

from typing import Annotated, Any

from pydantic import Field

from server.config import settings
from server.errors import ActionError
from server.i18n import N_
from server.models import Document, DocumentTemplate, Pipeline, Stage
from server.rules import documents, templates
from server.rules.actions.base import (
    FIELD_MAP, NO_NAMES, Action, Block, Done, DocumentTemplateId, Example, Names, Outcome, Params,
)
from server.rules.context import RunContext
from server.rules.preview import PreviewContext


class CreateDocumentParams(Params):
    template: DocumentTemplateId
    """the document template the document is made from"""
    fields: Annotated[dict[str, Any], FIELD_MAP] = Field(
        default_factory=dict, description="values the document shows instead of the element's (templates allowed)")
    wait_for_pdf: bool = False
    """the run waits until the PDF is made (later rules can attach it)"""


def public_link(document: Document) -> str:
    return f"{settings().public_url.rstrip('/')}/d/{document.token}"


class CreateDocument(Action[CreateDocumentParams]):
    key = "create_document"
    title = N_("Create CRM document")
    summary = N_("Makes a numbered document (offer, invoice) from a template, with its PDF.")
    gives = N_("the document, its number and its public link")
    group = "documents"
    Params = CreateDocumentParams
    outputs = ("document_id", "number", "link")
    example = Example("Make the offer", {"template": "Offer", "fields": {"title": "Offer: {{deal.title}}"},
                                         "wait_for_pdf": True})

    async def check(self, params: CreateDocumentParams, *, stage_id: int) -> list[tuple[str, str]]:
        template = await DocumentTemplate.get_or_none(id=params.template)
        if template is None:
            return [("template", f"document template {params.template} does not exist")]
        stage = await Stage.get(id=stage_id)
        pipeline = await Pipeline.get(id=stage.pipeline_id)
        if template.entity_type != pipeline.entity_type:
            return [("template", f"“{template.name}” is a template for {template.entity_type}s, this pipeline "
                                 f"holds {pipeline.entity_type}s")]
        return []

    async def execute(self, ctx: RunContext, params: CreateDocumentParams) -> Outcome:
        template = await DocumentTemplate.get_or_none(id=params.template)
        if template is None:
            raise ActionError(f"document template {params.template} no longer exists")
        base = await ctx.context()
        overrides = {name: await templates.render_async(value, base) if isinstance(value, str) else value
                     for name, value in params.fields.items()}
        document = await documents.create(template, ctx.element_type, ctx.element, base, overrides=overrides,
                                          rule_run_id=ctx.run.id, created_by_id=ctx.actor_id)
        await ctx.add_entry("automation", f"Document {document.number} ({template.name}) created")
        outputs = {"document_id": document.id, "number": document.number, "link": public_link(document)}
        if params.wait_for_pdf and document.pdf_status != "ready":
            return Block(until=None, reason=f"waiting for the PDF of document {document.number}", outputs=outputs)
        return Done(outputs)

    async def release(self, ctx: RunContext, params: CreateDocumentParams, *, ended_by: str) -> dict[str, Any]:
        return {}  # the outputs were given when the document was made

    async def simulate(self, ctx: PreviewContext, params: CreateDocumentParams) -> str:
        template = await DocumentTemplate.get_or_none(id=params.template)
        if template is None:
            raise ActionError(f"document template {params.template} no longer exists")
        text = f"creates the document {await documents.peek_number(template)} from the template “{template.name}”"
        if params.fields:
            text += f" with {', '.join(f'{k} = {str(v)[:60]}' for k, v in params.fields.items())}"
        return text + " and waits for its PDF" if params.wait_for_pdf else text

    def describe(self, params: CreateDocumentParams, names: Names = NO_NAMES) -> str:
        text = f"Creates a document from template {params.template}"
        if params.fields:
            text += f" with {', '.join(f'{k} = {str(v)[:40]}' for k, v in params.fields.items())}"
        return text + " and waits for its PDF" if params.wait_for_pdf else text


ACTION = CreateDocument()
