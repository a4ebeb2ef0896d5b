"""Send email attaches the PDFs of documents made earlier in the run: the email arrives at the real SMTP peer with
the PDF; it waits while the PDF is being made, and fails saying why when the PDF could not be made."""

import io

import pypdf

from server.models import Document, Message
from server.rules import pdf
from tests.documents.conftest import new_deal, offer_template
from tests.support import add_rule, wait_for_runs, wait_until


async def offer_and_email(sales, *, wait_for_pdf: bool) -> None:
    template = await offer_template()
    stage = sales["stages"]["offer"]
    await add_rule(stage, "create_document", {"template": template.id, "wait_for_pdf": wait_for_pdf},
                   key="offer", title="Make the offer")
    await add_rule(stage, "send_email", {"subject": "Your offer {{rules.offer.number}}", "text": "Attached.",
                                         "attachments": "{{rules.offer.document_id}}"},
                   key="mail", title="Send the offer", lane="after_previous")


async def test_the_email_arrives_with_the_offers_pdf_attached(sales, smtp):
    await offer_and_email(sales, wait_for_pdf=False)  # the email is written before the PDF exists: it waits
    deal = await new_deal(sales, title="Acme roof repair", stage="offer")
    runs = await wait_for_runs("deal", deal.id, 2)
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    document = await Document.get(element_type="deal", element_id=deal.id)
    await wait_until(lambda: _sent(deal.id), what="the email sent")
    [received] = smtp.messages()
    assert received.message["Subject"] == f"Your offer {document.number}"
    [attachment] = [part for part in received.message.walk() if part.get_filename()]
    assert attachment.get_filename() == f"{document.number}.pdf"
    assert attachment.get_content_type() == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(attachment.get_payload(decode=True))).pages[0].extract_text()
    assert document.number in text and "Acme roof repair" in text


async def test_an_email_whose_pdf_could_not_be_made_fails_saying_so(sales, smtp, monkeypatch):
    def refuses(html: str, assets: object = None) -> bytes:
        raise pdf.PdfRefused("WeasyPrint could not make the PDF: ValueError: broken")

    monkeypatch.setattr(pdf, "render_pdf", refuses)
    await offer_and_email(sales, wait_for_pdf=False)
    deal = await new_deal(sales, stage="offer")
    _, mail_run = await wait_for_runs("deal", deal.id, 2)
    document = await Document.get(element_type="deal", element_id=deal.id)
    why = (f"the PDF of document {document.number} could not be made: "
           "WeasyPrint could not make the PDF: ValueError: broken")
    if mail_run.status == "failed":  # the PDF failed before the email rule ran: the rule fails
        assert mail_run.error == f"'attachments': {why}"
    else:  # the email was written while the PDF was being made: the message fails
        message = await wait_until(lambda: _with_status(deal.id, "failed"), what="the email failed")
        assert message.reason == f"refused: attachment: {why}"
    assert smtp.messages() == []


async def test_attachments_must_name_documents_of_the_element(sales):
    stage = sales["stages"]["offer"]
    await add_rule(stage, "send_email", {"subject": "Hi", "text": "x", "attachments": "99999"})
    deal = await new_deal(sales, stage="offer")
    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "failed" and run.error == "'attachments': document 99999 is not a document of this deal"


async def _sent(deal_id: int) -> Message | None:
    return await _with_status(deal_id, "sent")


async def _with_status(deal_id: int, status: str) -> Message | None:
    return await Message.filter(element_type="deal", element_id=deal_id, status=status).first()
