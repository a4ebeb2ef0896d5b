"""Create CRM document through the engine: the number, the HTML at once, the PDF by the worker, the lane held
until the PDF exists, and a render failure failing the run with WeasyPrint's message."""

import io

import pypdf

from server import clock, files
from server.models import Document, TimelineEntry
from server.rules import pdf
from tests.documents.conftest import new_deal, offer_template
from tests.support import add_rule, wait_for_runs


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


async def test_a_rule_makes_a_numbered_document_whose_pdf_shows_the_number_and_the_deal(sales):
    template = await offer_template()
    await add_rule(sales["stages"]["offer"], "create_document", {"template": template.id, "wait_for_pdf": True},
                   key="offer", title="Make the offer")
    await add_rule(sales["stages"]["offer"], "add_comment", {"text": "Sent {{rules.offer.number}}"},
                   key="note", title="Note", lane="after_previous")
    deal = await new_deal(sales, title="Acme roof repair", stage="offer")

    runs = await wait_for_runs("deal", deal.id, 2)
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [(r.status, r.error) for r in runs]
    document = await Document.get(element_type="deal", element_id=deal.id)
    assert document.number == f"OF-{clock.utcnow():%Y}-001"
    assert document.pdf_status == "ready"
    assert runs[0].outputs == {"document_id": document.id, "number": document.number,
                               "link": f"/d/{document.token}"}
    text = pdf_text(await files.store().get(document.pdf_key or ""))
    assert document.number in text and "Acme roof repair" in text and "Carla Jung" in text
    entries = await TimelineEntry.filter(element_type="deal", element_id=deal.id).values_list("text", flat=True)
    assert f"Document {document.number} (Offer) created" in entries
    assert f"Sent {document.number}" in entries  # the next rule of the lane ran after the PDF, with the number


async def test_a_title_with_markup_is_shown_as_text(sales):
    template = await offer_template()
    await add_rule(sales["stages"]["offer"], "create_document", {"template": template.id})
    deal = await new_deal(sales, title="<script>alert(1)</script> roof", stage="offer")
    await wait_for_runs("deal", deal.id, 1)
    document = await Document.get(element_type="deal", element_id=deal.id)
    assert "<script>" not in document.html and "&lt;script&gt;alert(1)&lt;/script&gt; roof" in document.html


async def test_field_overrides_show_instead_of_the_elements_values(sales):
    template = await offer_template()
    await add_rule(sales["stages"]["offer"], "create_document",
                   {"template": template.id, "fields": {"title": "Roof, revised for {{deal.company.name}}"}})
    deal = await new_deal(sales, stage="offer")
    await wait_for_runs("deal", deal.id, 1)
    document = await Document.get(element_type="deal", element_id=deal.id)
    assert "<h2>Roof, revised for Acme GmbH</h2>" in document.html


async def test_a_render_failure_fails_the_waiting_run_with_weasyprints_message(sales, monkeypatch):
    def refuses(html: str, assets: object = None) -> bytes:
        raise pdf.PdfRefused("WeasyPrint could not make the PDF: ValueError: broken table layout")

    monkeypatch.setattr(pdf, "render_pdf", refuses)  # WeasyPrint is the boundary; its real refusals vary by version
    template = await offer_template()
    await add_rule(sales["stages"]["offer"], "create_document", {"template": template.id, "wait_for_pdf": True})
    deal = await new_deal(sales, stage="offer")
    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "failed"
    document = await Document.get(element_type="deal", element_id=deal.id)
    assert run.error == f"document {document.number}: WeasyPrint could not make the PDF: ValueError: broken table layout"
    assert document.pdf_status == "failed" and "broken table layout" in (document.pdf_error or "")
    assert "<h1>Offer" in document.html  # the HTML is kept


async def test_missing_system_libraries_are_said_in_the_run_and_the_html_is_kept(sales, monkeypatch):
    def missing() -> object:
        raise pdf.PdfUnavailable(pdf.MISSING_LIBRARIES.format(detail="cannot load library 'libpango-1.0-0'"))

    monkeypatch.setattr(pdf, "_weasyprint", missing)
    template = await offer_template()
    await add_rule(sales["stages"]["offer"], "create_document", {"template": template.id, "wait_for_pdf": True})
    deal = await new_deal(sales, stage="offer")
    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "failed" and "system libraries (Pango) are missing" in (run.error or "")
    assert "libpango-1.0-0" in (run.error or "")
    assert (await Document.get(element_type="deal", element_id=deal.id)).html.startswith("<h1>Offer")


async def test_a_retried_run_makes_one_document(sales):
    template = await offer_template()
    await add_rule(sales["stages"]["offer"], "create_document", {"template": template.id})
    deal = await new_deal(sales, stage="offer")
    [run] = await wait_for_runs("deal", deal.id, 1)
    from server.db import transaction
    from server.models import DocumentTemplate
    from server.rules import documents, elements

    async with transaction():
        again = await documents.create(await DocumentTemplate.get(id=template.id), "deal",
                                       await elements.load("deal", deal.id), {}, rule_run_id=run.id)
    assert again.id == (await Document.get(rule_run_id=run.id)).id
    assert await Document.filter(element_type="deal", element_id=deal.id).count() == 1


async def test_a_rendering_attempt_that_lost_its_worker_is_made_again(sales, worker_paused):
    template = await offer_template()
    deal = await new_deal(sales)
    from server.actor import SYSTEM
    from server.services import documents as document_service

    document = await document_service.create_document(template.id, "deal", deal.id, actor=SYSTEM)
    await Document.filter(id=document.id).update(pdf_status="rendering", pdf_attempts=1, pdf_lease_until=clock.utcnow())
    assert await pdf.recover_expired(orphaned=True) == [document.id]
    assert await pdf.make(document.id) == "ready"
    assert (await Document.get(id=document.id)).pdf_attempts == 2
