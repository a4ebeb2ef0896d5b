"""The public link of a document: the page and its PDF for anyone with the token, 404 once revoked, and each
view on the element's timeline as the "document viewed" event a trigger can move the deal on."""

import io

import httpx
import pypdf
import pytest

from server.actor import SYSTEM
from server.app import create_app
from server.models import Deal, DocumentView, TimelineEntry
from server.rules import pdf
from server.services import documents as document_service
from server.services import triggers as trigger_service
from tests.documents.conftest import new_deal, offer_template
from tests.support import wait_until


@pytest.fixture
async def anonymous(db):
    transport = httpx.ASGITransport(app=create_app(runtime=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        yield client


async def ready_document(sales, title: str = "Acme roof") -> document_service.Document:
    template = await offer_template()
    deal = await new_deal(sales, title=title)
    document = await document_service.create_document(template.id, "deal", deal.id, actor=SYSTEM)
    return await wait_until(lambda: _ready(document.id), what="the PDF")


async def _ready(document_id: int) -> document_service.Document | None:
    document = await document_service.Document.get(id=document_id)
    return document if document.pdf_status == "ready" else None


async def test_the_link_shows_the_document_and_its_pdf_without_a_login(sales, anonymous):
    document = await ready_document(sales, title="Acme roof repair")
    page = await anonymous.get(f"/d/{document.token}")
    assert page.status_code == 200
    assert "<h2>Acme roof repair</h2>" in page.text and f'href="/d/{document.token}.pdf"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': nothing runs
    assert page.headers["x-frame-options"] == "DENY"
    assert "no-store" in page.headers["cache-control"]
    pdf_answer = await anonymous.get(f"/d/{document.token}.pdf")
    assert pdf_answer.status_code == 200 and pdf_answer.headers["content-type"] == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf_answer.content)).pages[0].extract_text()
    assert document.number in text and "Acme roof repair" in text


async def test_a_revoked_link_answers_404_like_an_unknown_one(sales, anonymous):
    document = await ready_document(sales)
    await document_service.revoke(document.id, actor=SYSTEM)
    for path in (f"/d/{document.token}", f"/d/{document.token}.pdf", "/d/not-a-token"):
        answer = await anonymous.get(path)
        assert answer.status_code == 404, path
        assert answer.text == "This document link is not valid (it may have been revoked)."
    assert await DocumentView.filter(document_id=document.id).count() == 0


async def test_opening_the_link_is_a_viewed_entry_on_the_deals_timeline_once_per_reader(sales, anonymous):
    document = await ready_document(sales)
    for _ in range(3):  # a reader reloading the page
        assert (await anonymous.get(f"/d/{document.token}")).status_code == 200
    await anonymous.get(f"/d/{document.token}", headers={"User-Agent": "another reader"})
    viewed = await TimelineEntry.filter(element_type="deal", element_id=document.element_id,
                                        text=f"Document {document.number} viewed").count()
    assert viewed == 2
    assert await DocumentView.filter(document_id=document.id).count() == 2


async def test_a_document_viewed_trigger_moves_the_deal(sales, anonymous):
    await trigger_service.create_trigger(sales["stages"]["invoice"].id, trigger_service.TriggerInput(
        trigger_type="document_viewed", name="Offer read"), actor=SYSTEM)
    document = await ready_document(sales)
    await anonymous.get(f"/d/{document.token}")
    deal = await Deal.get(id=document.element_id)
    assert deal.stage_id == sales["stages"]["invoice"].id


async def test_the_pdf_link_says_when_the_pdf_is_not_made_yet(sales, anonymous, worker_paused):
    template = await offer_template()
    deal = await new_deal(sales)
    document = await document_service.create_document(template.id, "deal", deal.id, actor=SYSTEM)
    answer = await anonymous.get(f"/d/{document.token}.pdf")
    assert answer.status_code == 404 and "still being made" in answer.text
    page = await anonymous.get(f"/d/{document.token}")
    assert page.status_code == 200 and ".pdf" not in page.text


async def test_the_stamp_of_the_template_is_in_the_page_and_nothing_else_is_loaded(sales, anonymous):
    stamp = _png()
    template = await offer_template(body='<p>{{deal.title}}</p><img src="{{document.stamp}}">'
                                         '<img src="file:///etc/passwd"><img src="http://example.com/x.png">',
                                    stamp=stamp)
    deal = await new_deal(sales)
    document = await document_service.create_document(template.id, "deal", deal.id, actor=SYSTEM)
    page = await anonymous.get(f"/d/{document.token}")
    assert f'<img src="/d/{document.token}/stamp">' in page.text
    image = await anonymous.get(f"/d/{document.token}/stamp")
    assert image.content == stamp and image.headers["content-type"] == "image/png"
    fetched: list[str] = []
    fetcher = pdf._fetcher({"stamp": stamp})
    for url in ("asset:stamp", "file:///etc/passwd", "http://example.com/x.png", "asset:signature"):
        try:
            fetcher.fetch(url)
            fetched.append(url)
        except ValueError:
            pass
    assert fetched == ["asset:stamp"]
    made = await wait_until(lambda: _ready(document.id), what="the PDF")
    assert len(pypdf.PdfReader(io.BytesIO(await document_service.pdf_of(made) or b"")).pages[0].images) == 1


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00" * 1
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
