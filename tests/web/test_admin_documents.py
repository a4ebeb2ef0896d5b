"""Document templates in the admin over plain HTTP, against `pipewright serve` with the demo data: the form
refuses an unknown placeholder inline with a did-you-mean, the preview fragment renders against a chosen deal,
and a deal's page lists its documents with the PDF and a revoke button that makes the public link 404."""

from tests.web.test_admin_triggers import logged_in, rows
from tests.support import wait_until
from tests.support.admin import Server, csrf_of


async def test_a_template_is_checked_previewed_and_its_documents_shown_and_revoked(server: Server) -> None:
    async with logged_in(server, "documents-admin@example.com") as http:
        listing = await http.get("/admin/documents/templates")
        assert listing.status_code == 200 and ">Offer</a>" in listing.text  # the demo's template
        form = await http.get("/admin/documents/templates/new")
        token = csrf_of(form.text)
        refused = await http.post("/admin/documents/templates/new", data={
            "csrf_token": token, "name": "Invoice", "entity_type": "deal", "counter": "monthly", "digits": "3",
            "prefix": "IN-", "body": "<p>{{deal.titel}}</p>"})
        assert refused.status_code == 422
        assert "did you mean &#39;deal.title&#39;?" in refused.text or "did you mean 'deal.title'?" in refused.text
        [(deal_id, title)] = rows(server, "SELECT id, title FROM deal ORDER BY id LIMIT 1")
        preview = await http.post("/admin/documents/templates/preview", data={
            "csrf_token": token, "body": "<h2>{{deal.title}}</h2> {{document.number}}", "preview_deal": str(deal_id)})
        assert preview.status_code == 200 and f"<h2>{title}</h2> PREVIEW" in preview.text

        [(template_id,)] = rows(server, "SELECT id FROM document_template WHERE name = 'Offer'")
        made = await http.post(f"/admin/documents/templates/{template_id}", data={
            "csrf_token": token, "name": "Offer", "entity_type": "deal", "counter": "yearly", "digits": "3",
            "prefix": "OF-", "body": "<h1>{{document.number}}</h1><p>{{deal.title}}</p>"})
        assert made.status_code == 303 and made.headers["location"].endswith(f"/{template_id}?done=saved")
        edited = await http.get(f"/admin/documents/templates/{template_id}")
        assert "&lt;h1&gt;{{document.number}}&lt;/h1&gt;" in edited.text and 'value="monthly"' in edited.text


async def test_a_deals_documents_have_a_pdf_download_and_a_revoke_that_404s_the_link(server: Server) -> None:
    async with logged_in(server, "documents-revoke@example.com") as http:
        found = await wait_until(lambda: _a_ready_document(server), timeout_s=60, what="a demo document's PDF")
        document_id, element_id, token = found
        page = await http.get(f"/admin/deals/{element_id}")
        assert f'href="/admin/documents/{document_id}.pdf"' in page.text
        pdf = await http.get(f"/admin/documents/{document_id}.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert (await http.get(f"/d/{token}")).status_code == 200
        revoked = await http.post(f"/admin/documents/{document_id}/revoke", data={"csrf_token": csrf_of(page.text)})
        assert revoked.status_code == 303
        assert (await http.get(f"/d/{token}")).status_code == 404
        assert "revoked" in (await http.get(f"/admin/deals/{element_id}")).text


async def _a_ready_document(server: Server) -> tuple[int, int, str] | None:
    found = rows(server, "SELECT id, element_id, token FROM document WHERE pdf_status = 'ready' "
                         "AND revoked_at IS NULL ORDER BY id LIMIT 1")
    return (int(found[0][0]), int(found[0][1]), str(found[0][2])) if found else None
